//! A page source that fails once a byte budget is used up: how the conformance suite and the
//! fuzz targets drive every allocator into out-of-memory on purpose.

use super::{Access, Decommit, PageSource, Protect};
use core::ptr::NonNull;

/// Wraps a source and refuses to map past `budget` bytes at once.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    budget: usize,
    /// Bytes currently mapped through this wrapper; always `<= budget`.
    used: usize,
}

impl<S> Limited<S> {
    /// `inner`, limited to `budget` bytes mapped at once.
    pub const fn new(inner: S, budget: usize) -> Self {
        Limited { inner, budget, used: 0 }
    }

    /// Bytes mapped now.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

// SAFETY: runs come from `inner` unchanged; the wrapper only refuses some requests.
unsafe impl<S: PageSource> PageSource for Limited<S> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn map(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let used = self.used.checked_add(size)?;
        if used > self.budget {
            return None;
        }
        let p = self.inner.map(size, align)?;
        self.used = used;
        Some(p)
    }

    unsafe fn unmap(&mut self, ptr: NonNull<u8>, size: usize) {
        self.used -= size;
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.unmap(ptr, size) }
    }

    fn maps_zeroed(&self) -> bool {
        self.inner.maps_zeroed()
    }
}

// SAFETY: forwarded to `inner`.
unsafe impl<S: Decommit> Decommit for Limited<S> {
    unsafe fn decommit(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.decommit(ptr, size) }
    }
}

// SAFETY: forwarded to `inner`.
unsafe impl<S: Protect> Protect for Limited<S> {
    unsafe fn protect(&mut self, ptr: NonNull<u8>, size: usize, access: Access) {
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
        let mut buf = std::vec![0u8; 1 << 16];
        let mut s = Limited::new(FixedSource::new(&mut buf), 4096);
        let a = s.map(4096, 256).unwrap();
        assert!(s.map(256, 256).is_none());
        // SAFETY: a is a run from s.
        unsafe { s.unmap(a, 4096) };
        assert_eq!(s.used(), 0);
        assert!(s.map(256, 256).is_some());
    }
}
