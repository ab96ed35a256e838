//! Statistics every allocator reports, as a policy slot: [`Counting`] keeps the counters,
//! [`NoStats`] compiles them away for the fastest compositions. Shared layers, updated from many
//! threads through `&self`, take a [`SharedStatsPolicy`]: [`AtomicCounting`] or [`NoStats`].

#[cfg(not(loom))]
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of an allocator's counters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks allocated and not yet freed: the usable lengths handed out (a size class
    /// or page rounding included), so a block freed with any layout that fits it counts the same.
    pub bytes_live: usize,
    /// Blocks allocated and not yet freed.
    pub blocks_live: usize,
    /// The highest `bytes_live` seen.
    pub peak_bytes_live: usize,
    /// Bytes currently mapped from the page source.
    pub bytes_mapped: usize,
    /// The highest `bytes_mapped` seen.
    pub peak_bytes_mapped: usize,
    /// Bytes given back to the page source over the allocator's life.
    pub bytes_returned: usize,
    /// Allocations served over the allocator's life.
    pub allocations: u64,
}

impl Stats {
    /// Mapped bytes per live byte, or `None` when nothing is live.
    pub fn overhead_ratio(&self) -> Option<f64> {
        (self.bytes_live > 0).then(|| self.bytes_mapped as f64 / self.bytes_live as f64)
    }
}

/// Capability: an allocator that keeps every counter of [`Stats`] (its statistics policy is
/// [`Counting`]): the counters now. Implemented by the layers and fronts that count, and passed
/// on by [`crate::Local`], [`crate::Locked`] and [`crate::compose::Counted`], so tools (the
/// conformance suite, a dashboard) read any of them the same way.
pub trait Statistics {
    /// Live bytes and blocks, peaks, mapped and returned bytes.
    fn stats(&self) -> Stats;
}

/// The statistics policy slot.
pub trait StatsPolicy: Default {
    /// The zeroed policy, for `const` constructors of global allocators.
    const INIT: Self;
    /// A block of `size` bytes was handed out.
    fn on_alloc(&mut self, size: usize);
    /// A block of `size` bytes came back.
    fn on_free(&mut self, size: usize);
    /// A block changed from `old` to `new` bytes.
    fn on_resize(&mut self, old: usize, new: usize);
    /// `bytes` were mapped from the page source.
    fn on_map(&mut self, bytes: usize);
    /// `bytes` were given back to the page source.
    fn on_unmap(&mut self, bytes: usize);
    /// Live bytes and blocks now (zero when not counted).
    fn live(&self) -> (usize, usize);
    /// Sets the live counters after freeing many blocks at once (reset, rewind to a checkpoint).
    fn restore_live(&mut self, bytes: usize, blocks: usize);
}

/// Keeps every counter of [`Stats`]: a few adds per operation.
#[derive(Copy, Clone, Debug, Default)]
pub struct Counting(Stats);

impl Counting {
    /// A zeroed counter set, usable in `const` constructors.
    pub const fn new() -> Self {
        Counting(Stats {
            bytes_live: 0,
            blocks_live: 0,
            peak_bytes_live: 0,
            bytes_mapped: 0,
            peak_bytes_mapped: 0,
            bytes_returned: 0,
            allocations: 0,
        })
    }

    /// The counters now.
    pub fn get(&self) -> Stats {
        self.0
    }
}

impl StatsPolicy for Counting {
    const INIT: Self = Counting::new();
    #[inline(always)]
    fn on_alloc(&mut self, size: usize) {
        let s = &mut self.0;
        s.bytes_live += size;
        s.blocks_live += 1;
        s.allocations += 1;
        if s.bytes_live > s.peak_bytes_live {
            s.peak_bytes_live = s.bytes_live;
        }
    }

    #[inline(always)]
    fn on_free(&mut self, size: usize) {
        let s = &mut self.0;
        // Saturating: a misuse (wrong size at free) must not turn statistics into a panic.
        s.bytes_live = s.bytes_live.saturating_sub(size);
        s.blocks_live = s.blocks_live.saturating_sub(1);
    }

    #[inline(always)]
    fn on_resize(&mut self, old: usize, new: usize) {
        let s = &mut self.0;
        s.bytes_live = s.bytes_live.saturating_sub(old) + new;
        if s.bytes_live > s.peak_bytes_live {
            s.peak_bytes_live = s.bytes_live;
        }
    }

    fn on_map(&mut self, bytes: usize) {
        let s = &mut self.0;
        s.bytes_mapped += bytes;
        if s.bytes_mapped > s.peak_bytes_mapped {
            s.peak_bytes_mapped = s.bytes_mapped;
        }
    }

    fn on_unmap(&mut self, bytes: usize) {
        let s = &mut self.0;
        s.bytes_mapped = s.bytes_mapped.saturating_sub(bytes);
        s.bytes_returned += bytes;
    }

    fn live(&self) -> (usize, usize) {
        (self.0.bytes_live, self.0.blocks_live)
    }

    fn restore_live(&mut self, bytes: usize, blocks: usize) {
        self.0.bytes_live = bytes;
        self.0.blocks_live = blocks;
    }
}

/// Keeps nothing; every hook compiles to nothing.
#[derive(Copy, Clone, Debug, Default)]
pub struct NoStats;

impl StatsPolicy for NoStats {
    const INIT: Self = NoStats;
    #[inline(always)]
    fn on_alloc(&mut self, _: usize) {}
    #[inline(always)]
    fn on_free(&mut self, _: usize) {}
    #[inline(always)]
    fn on_resize(&mut self, _: usize, _: usize) {}
    #[inline(always)]
    fn on_map(&mut self, _: usize) {}
    #[inline(always)]
    fn on_unmap(&mut self, _: usize) {}
    fn live(&self) -> (usize, usize) {
        (0, 0)
    }
    fn restore_live(&mut self, _: usize, _: usize) {}
}

const _: () = assert!(core::mem::size_of::<NoStats>() == 0);

/// The statistics policy slot of a [`crate::SharedLayer`]: the same hooks through `&self`.
pub trait SharedStatsPolicy: Sync {
    /// The zeroed policy, for `const` constructors of global allocators.
    const INIT: Self;
    /// A block of `size` bytes was handed out.
    fn on_alloc(&self, size: usize);
    /// A block of `size` bytes came back.
    fn on_free(&self, size: usize);
    /// A block changed from `old` to `new` bytes.
    fn on_resize(&self, old: usize, new: usize);
    /// `bytes` were mapped from the page source.
    fn on_map(&self, bytes: usize);
    /// `bytes` were given back to the page source.
    fn on_unmap(&self, bytes: usize);
    /// The counters now (each read on its own: a snapshot taken while other threads allocate is
    /// not one instant).
    fn snapshot(&self) -> Stats;
}

impl SharedStatsPolicy for NoStats {
    const INIT: Self = NoStats;
    #[inline(always)]
    fn on_alloc(&self, _: usize) {}
    #[inline(always)]
    fn on_free(&self, _: usize) {}
    #[inline(always)]
    fn on_resize(&self, _: usize, _: usize) {}
    #[inline(always)]
    fn on_map(&self, _: usize) {}
    #[inline(always)]
    fn on_unmap(&self, _: usize) {}
    fn snapshot(&self) -> Stats {
        Stats::default()
    }
}

/// Every counter of [`Stats`] as an atomic: a few read-modify-writes per operation, contended
/// when many threads allocate at once (per-thread counters, as the lock-free pool keeps, avoid
/// that). Not built under loom, whose atomics have no `const` constructor.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub struct AtomicCounting {
    bytes_live: AtomicUsize,
    blocks_live: AtomicUsize,
    peak_bytes_live: AtomicUsize,
    bytes_mapped: AtomicUsize,
    peak_bytes_mapped: AtomicUsize,
    bytes_returned: AtomicUsize,
    allocations: AtomicU64,
}

#[cfg(not(loom))]
impl AtomicCounting {
    /// Zeroed counters, usable in `const` constructors.
    pub const fn new() -> Self {
        AtomicCounting {
            bytes_live: AtomicUsize::new(0),
            blocks_live: AtomicUsize::new(0),
            peak_bytes_live: AtomicUsize::new(0),
            bytes_mapped: AtomicUsize::new(0),
            peak_bytes_mapped: AtomicUsize::new(0),
            bytes_returned: AtomicUsize::new(0),
            allocations: AtomicU64::new(0),
        }
    }
}

// Relaxed everywhere: these are statistics, not synchronisation; a snapshot is read after the
// threads that changed them were joined or is allowed to be slightly behind.
#[cfg(not(loom))]
impl SharedStatsPolicy for AtomicCounting {
    #[allow(clippy::declare_interior_mutable_const, reason = "an initial value, copied into each allocator")]
    const INIT: Self = AtomicCounting::new();

    #[inline]
    fn on_alloc(&self, size: usize) {
        let now = self.bytes_live.fetch_add(size, Ordering::Relaxed).wrapping_add(size);
        self.peak_bytes_live.fetch_max(now, Ordering::Relaxed);
        self.blocks_live.fetch_add(1, Ordering::Relaxed);
        self.allocations.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    fn on_free(&self, size: usize) {
        self.bytes_live.fetch_sub(size, Ordering::Relaxed);
        self.blocks_live.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn on_resize(&self, old: usize, new: usize) {
        if new >= old {
            let now = self.bytes_live.fetch_add(new - old, Ordering::Relaxed).wrapping_add(new - old);
            self.peak_bytes_live.fetch_max(now, Ordering::Relaxed);
        } else {
            self.bytes_live.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    fn on_map(&self, bytes: usize) {
        let now = self.bytes_mapped.fetch_add(bytes, Ordering::Relaxed).wrapping_add(bytes);
        self.peak_bytes_mapped.fetch_max(now, Ordering::Relaxed);
    }

    fn on_unmap(&self, bytes: usize) {
        self.bytes_mapped.fetch_sub(bytes, Ordering::Relaxed);
        self.bytes_returned.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Stats {
        Stats {
            bytes_live: self.bytes_live.load(Ordering::Relaxed),
            blocks_live: self.blocks_live.load(Ordering::Relaxed),
            peak_bytes_live: self.peak_bytes_live.load(Ordering::Relaxed),
            bytes_mapped: self.bytes_mapped.load(Ordering::Relaxed),
            peak_bytes_mapped: self.peak_bytes_mapped.load(Ordering::Relaxed),
            bytes_returned: self.bytes_returned.load(Ordering::Relaxed),
            allocations: self.allocations.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_tracks_live_peak_and_mapping() {
        let mut c = Counting::new();
        c.on_map(4096);
        c.on_alloc(100);
        c.on_alloc(50);
        c.on_free(100);
        c.on_resize(50, 70);
        c.on_unmap(4096);
        let s = c.get();
        assert_eq!(s.bytes_live, 70);
        assert_eq!(s.blocks_live, 1);
        assert_eq!(s.peak_bytes_live, 150);
        assert_eq!(s.bytes_mapped, 0);
        assert_eq!(s.peak_bytes_mapped, 4096);
        assert_eq!(s.bytes_returned, 4096);
        assert_eq!(s.allocations, 2);
    }

    #[test]
    fn atomic_counting_agrees_with_counting() {
        let (mut c, a) = (Counting::new(), AtomicCounting::new());
        for (op, n) in [(0, 100usize), (0, 50), (1, 100), (2, 70), (3, 4096), (4, 4096)] {
            match op {
                0 => (c.on_alloc(n), a.on_alloc(n)),
                1 => (c.on_free(n), a.on_free(n)),
                2 => (c.on_resize(50, n), a.on_resize(50, n)),
                3 => (c.on_map(n), a.on_map(n)),
                _ => (c.on_unmap(n), a.on_unmap(n)),
            };
        }
        assert_eq!(c.get(), a.snapshot());
    }
}
