//! Statistics every allocator reports, as a policy slot: [`Counting`] keeps the counters,
//! [`NoStats`] compiles them away for the fastest compositions.

/// A snapshot of an allocator's counters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks allocated and not yet freed (as requested, not rounded).
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
}
