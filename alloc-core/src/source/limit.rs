//! A page source that fails once a byte budget is used up, and counts what passes through it:
//! how the conformance suite and the fuzz targets drive every allocator into out-of-memory on
//! purpose, and check that it gives every page back.

use super::{Access, Decommit, PageSource, Protect};
use crate::sync::atomic::{AtomicUsize, Ordering};
use core::ptr::NonNull;

/// Counts of what a page source mapped, kept outside the allocator so they can be read after it
/// was dropped (did it give every page back?).
#[derive(Debug, Default)]
pub struct Meter {
    mapped: AtomicUsize,
    peak: AtomicUsize,
    maps: AtomicUsize,
}

impl Meter {
    /// A meter at zero.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Meter { mapped: AtomicUsize::new(0), peak: AtomicUsize::new(0), maps: AtomicUsize::new(0) }
    }

    /// A meter at zero (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Self {
        Meter { mapped: AtomicUsize::new(0), peak: AtomicUsize::new(0), maps: AtomicUsize::new(0) }
    }

    /// Bytes mapped now.
    pub fn mapped(&self) -> usize {
        // Relaxed: read after the calls that changed it returned on this thread or were joined.
        self.mapped.load(Ordering::Relaxed)
    }

    /// The most bytes mapped at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// How many runs were mapped in all.
    pub fn maps(&self) -> usize {
        self.maps.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes mapped (what [`Limited`] calls; also for test doubles that hold memory
    /// without a page source).
    pub fn record_map(&self, n: usize) {
        let now = self.mapped.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.maps.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` bytes given back.
    pub fn record_unmap(&self, n: usize) {
        self.mapped.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Wraps a source and refuses to map past `budget` bytes at once. `Sync` when the inner source
/// is, so shared layers can use it.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    budget: usize,
    /// Bytes currently mapped through this wrapper; always `<= budget`.
    used: AtomicUsize,
    /// Where mapped bytes are also counted, to be read after the allocator is gone.
    meter: Option<&'static Meter>,
}

impl<S> Limited<S> {
    /// `inner`, limited to `budget` bytes mapped at once.
    #[cfg(not(loom))]
    pub const fn new(inner: S, budget: usize) -> Self {
        Limited { inner, budget, used: AtomicUsize::new(0), meter: None }
    }

    /// `inner`, limited to `budget` bytes mapped at once (loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new(inner: S, budget: usize) -> Self {
        Limited { inner, budget, used: AtomicUsize::new(0), meter: None }
    }

    /// Also counts every mapped and unmapped byte in `meter`.
    pub const fn metered(mut self, meter: &'static Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Bytes mapped now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Claims `size` bytes of the budget, then maps with `map`; gives the claim back if the
    /// inner source refuses.
    fn claimed(&self, size: usize, map: impl FnOnce() -> Option<NonNull<u8>>) -> Option<NonNull<u8>>
    where
        S: PageSource,
    {
        // A CAS loop, so threads sharing the source cannot overshoot the budget together.
        // Relaxed: the counter is the only data the CAS protects.
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let want = used.checked_add(size).filter(|&n| n <= self.budget)?;
            match self.used.compare_exchange_weak(used, want, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        match map() {
            Some(p) => {
                if let Some(m) = self.meter {
                    m.record_map(size);
                }
                Some(p)
            }
            None => {
                self.used.fetch_sub(size, Ordering::Relaxed);
                None
            }
        }
    }
}

// SAFETY: runs come from `inner` unchanged; the wrapper only refuses some requests.
unsafe impl<S: PageSource> PageSource for Limited<S> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.claimed(size, || self.inner.map(size, align))
    }

    fn map_zeroed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.claimed(size, || self.inner.map_zeroed(size, align))
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        self.used.fetch_sub(size, Ordering::Relaxed);
        if let Some(m) = self.meter {
            m.record_unmap(size);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.unmap(ptr, size) }
    }

    fn maps_zeroed(&self) -> bool {
        self.inner.maps_zeroed()
    }

    fn prefer_huge_pages(&self, ptr: NonNull<u8>, size: usize) {
        self.inner.prefer_huge_pages(ptr, size)
    }

    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.discard(ptr, size) }
    }

    fn discard_zeroes(&self) -> bool {
        self.inner.discard_zeroes()
    }
}

// SAFETY: forwarded to `inner`.
unsafe impl<S: Decommit> Decommit for Limited<S> {
    unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.decommit(ptr, size) }
    }
    fn decommit_zeroes(&self) -> bool {
        self.inner.decommit_zeroes()
    }
}

// SAFETY: forwarded to `inner`.
unsafe impl<S: Protect> Protect for Limited<S> {
    unsafe fn protect(&self, ptr: NonNull<u8>, size: usize, access: Access) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.protect(ptr, size, access) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedSource;

    #[test]
    fn refuses_past_the_budget_and_recovers_after_unmap() {
        static METER: Meter = Meter::new();
        let mut buf = std::vec![0u8; 1 << 16];
        let s = Limited::new(FixedSource::new(&mut buf), 4096).metered(&METER);
        let a = s.map(4096, 256).unwrap();
        assert!(s.map(256, 256).is_none());
        assert_eq!((METER.mapped(), METER.maps()), (4096, 1));
        // SAFETY: a is a run from s.
        unsafe { s.unmap(a, 4096) };
        assert_eq!((s.used(), METER.mapped(), METER.peak()), (0, 0, 4096));
        assert!(s.map(256, 256).is_some());
    }
}
