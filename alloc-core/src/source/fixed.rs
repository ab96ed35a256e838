//! A fixed buffer as a page source, for `no_std` targets without an OS and for tests.
//!
//! Runs are carved upward from the start of the buffer. Unmapping the topmost run gives its
//! space back; unmapping any other run leaves a hole that is not reused (the allocator above
//! keeps its own free lists, so this only matters for sources shared by many short runs).

use super::{Decommit, PageSource};
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The granule of a fixed buffer: small, since embedded heaps are small.
const GRANULE: usize = 256;

/// Runs carved from one caller-provided buffer. `!Sync` (one thread at a time); put the layer
/// on it behind a lock to share it.
#[derive(Debug)]
pub struct FixedSource<'buf> {
    /// Start of the buffer, with the buffer's provenance.
    base: NonNull<u8>,
    /// Address one past the buffer's end.
    end: usize,
    /// First address not handed out; always in `base..=end`.
    top: Cell<usize>,
    _buf: PhantomData<&'buf mut [u8]>,
}

// SAFETY: the source owns its buffer exclusively for 'buf; moving it to another thread moves
// that ownership (it stays `!Sync` through the `Cell`).
unsafe impl Send for FixedSource<'_> {}

impl<'buf> FixedSource<'buf> {
    /// A source over `buf`, borrowed mutably for as long as the source (and the allocator on it)
    /// lives.
    pub fn new(buf: &'buf mut [u8]) -> Self {
        let len = buf.len();
        // SAFETY: the borrow is exclusive for 'buf and covers `len` bytes.
        unsafe { Self::from_raw(NonNull::from(buf).cast(), len) }
    }

    /// A source over `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base..base+len` is valid for reads and writes, and used by nothing else, for `'buf`.
    pub unsafe fn from_raw(base: NonNull<u8>, len: usize) -> Self {
        let start = base.as_ptr() as usize;
        FixedSource { base, end: start + len, top: Cell::new(start), _buf: PhantomData }
    }

    /// Bytes not yet handed out.
    pub fn remaining(&self) -> usize {
        self.end - self.top.get()
    }
}

// SAFETY: runs are disjoint sub-ranges of the buffer (each starts at or above `top`, which then
// moves past it), aligned as asked, valid for 'buf.
unsafe impl PageSource for FixedSource<'_> {
    fn page_size(&self) -> usize {
        GRANULE
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let start = crate::ptr::align_up(self.top.get(), align.max(GRANULE))?;
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.top.set(end);
        // SAFETY: start lies within the buffer (start < end <= self.end).
        Some(unsafe { crate::ptr::with_addr(self.base, start) })
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        let start = ptr.as_ptr() as usize;
        if start + size == self.top.get() {
            self.top.set(start);
        }
    }

    /// Zeroes the range (there is no OS to give it to), so layers that return memory run their
    /// code unchanged over a buffer, under Miri included.
    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller's guarantees are `decommit`'s.
        unsafe { self.decommit(ptr, size) };
        true
    }

    fn discard_zeroes(&self) -> bool {
        true
    }
}

// SAFETY: there is no OS to give the memory to; the range stays usable and is zeroed, which is
// what `decommit_zeroes` promises (so heaps that scavenge run unchanged over a buffer).
unsafe impl Decommit for FixedSource<'_> {
    unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller names a range of a run from this buffer it no longer needs.
        unsafe { ptr.as_ptr().write_bytes(0, size) }
    }

    fn decommit_zeroes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carves_aligned_runs_and_fails_when_full() {
        let mut buf = std::vec![0u8; 8192];
        let s = FixedSource::new(&mut buf);
        let a = s.map(1024, 1024).unwrap();
        assert_eq!(a.as_ptr() as usize % 1024, 0);
        let b = s.map(256, 256).unwrap();
        assert!(b.as_ptr() as usize >= a.as_ptr() as usize + 1024);
        assert!(s.map(1 << 20, 256).is_none());
        // SAFETY: b is the topmost run; giving it back lets the next map reuse its space.
        unsafe { s.unmap(b, 256) };
        assert_eq!(s.map(256, 256).unwrap(), b);
    }
}
