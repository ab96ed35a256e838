//! Deliberately broken allocators, and a trusted reference, to prove the suite can fail.
//!
//! [`Faulty`] is a plain bump allocator over one private mapping with one defect switched on by
//! its const parameter; with [`NONE`] it is correct and must pass. Every defect stays inside the
//! private mapping, so a broken allocator cannot corrupt the test process's own heap while the
//! suite finds it out. [`Reference`] is the system allocator with a byte budget: the trusted
//! baseline the suite is validated against, threads included.

use alloc_core::source::{PageSource, Reserve};
use alloc_core::MmapSource;
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use core::cell::Cell;
use core::ptr::NonNull;
use std::alloc::{GlobalAlloc, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// No defect: a correct bump allocator.
pub const NONE: u8 = 0;
/// Every 16th block overlaps the tail of the block before it by 8 bytes.
pub const OVERLAPS: u8 = 1;
/// Blocks asked to be aligned to 16 or more come back 8 bytes off.
pub const MISALIGNS: u8 = 2;
/// Growing a block moves it and copies only half of its bytes.
pub const LOSES_BYTES_ON_REALLOC: u8 = 3;
/// The memory budget is ignored.
pub const IGNORES_LIMIT: u8 = 4;
/// `allocate_zeroed` forgets to zero.
pub const DIRTY_ZEROED: u8 = 5;

/// Address space reserved for one `Faulty` (pages are touched only as blocks are used).
const ARENA: usize = 1 << 32;

/// A bump allocator with defect `D`.
pub struct Faulty<const D: u8> {
    base: NonNull<u8>,
    /// Offset of the next free byte.
    next: Cell<usize>,
    /// Start offset of the newest block, to build overlaps from.
    newest: Cell<usize>,
    budget: usize,
    count: Cell<u64>,
}

impl<const D: u8> Faulty<D> {
    /// A fresh allocator that hands out at most `budget` bytes (unless `D` ignores it).
    pub fn new(budget: usize) -> Self {
        let mut src = MmapSource::new();
        let base = src.reserve(ARENA, 4096).expect("reserve the broken allocator's arena");
        // SAFETY: committing our own fresh reservation (MAP_NORESERVE: pages cost nothing until touched).
        assert!(unsafe { src.commit(base, ARENA) }, "commit the broken allocator's arena");
        Faulty { base, next: Cell::new(0), newest: Cell::new(0), budget, count: Cell::new(0) }
    }

    fn bump(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let n = self.count.get() + 1;
        self.count.set(n);
        let mut start = alloc_core::ptr::align_up(self.next.get(), layout.align()).ok_or(AllocError)?;
        if D == OVERLAPS && n.is_multiple_of(16) && start >= self.newest.get() + 8 && start >= 8 {
            start -= 8;
        }
        if D == MISALIGNS && layout.align() >= 16 {
            start += 8;
        }
        let end = start.checked_add(layout.size()).ok_or(AllocError)?;
        let limit = if D == IGNORES_LIMIT { ARENA } else { self.budget.min(ARENA) };
        if end > limit {
            return Err(AllocError);
        }
        self.next.set(end);
        self.newest.set(start);
        // SAFETY: start..end lies inside the committed arena.
        Ok(NonNull::slice_from_raw_parts(unsafe { self.base.add(start) }, layout.size()))
    }
}

impl<const D: u8> Drop for Faulty<D> {
    fn drop(&mut self) {
        // SAFETY: the arena is ours and no block outlives the allocator (the suite frees first).
        unsafe { MmapSource::new().unmap(self.base, ARENA) }
    }
}

// SAFETY: (for D == NONE) blocks are disjoint, aligned ranges of a private mapping that lives as
// long as the allocator. The other values of D break this on purpose, inside the mapping only.
unsafe impl<const D: u8> Allocator for &Faulty<D> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0));
        }
        self.bump(layout)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.allocate(layout)?;
        if D != DIRTY_ZEROED {
            // SAFETY: a fresh block of b.len() bytes.
            unsafe { b.cast::<u8>().as_ptr().write_bytes(0, b.len()) };
        }
        Ok(b)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // The newest block gives its bytes back, so LIFO frees reclaim (and memory is reused,
        // which is what lets the zeroing and out-of-memory properties see anything).
        let start = (ptr.as_ptr() as usize).wrapping_sub(self.base.as_ptr() as usize);
        if layout.size() != 0 && start.wrapping_add(layout.size()) == self.next.get() {
            self.next.set(start);
        }
    }

    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.allocate(new)?;
        let keep = if D == LOSES_BYTES_ON_REALLOC { old.size() / 2 } else { old.size() };
        // SAFETY: both blocks lie in the arena; `keep <= old.size() <= new.size()`. `copy`, not
        // `copy_nonoverlapping`: a broken allocator's blocks may overlap.
        unsafe { core::ptr::copy(ptr.as_ptr(), b.cast::<u8>().as_ptr(), keep) };
        Ok(b)
    }

    unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        let b = unsafe { self.grow(ptr, old, new)? };
        if D != DIRTY_ZEROED {
            // SAFETY: the new block is valid for b.len() >= old.size() bytes.
            unsafe { b.cast::<u8>().as_ptr().add(old.size()).write_bytes(0, b.len() - old.size()) };
        }
        Ok(b)
    }

    unsafe fn shrink(&self, ptr: NonNull<u8>, _old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.allocate(new)?;
        // SAFETY: both blocks lie in the arena; `new.size() <= old.size()`. May overlap, as above.
        unsafe { core::ptr::copy(ptr.as_ptr(), b.cast::<u8>().as_ptr(), new.size()) };
        Ok(b)
    }
}

/// `Faulty<D>` as a conformance subject.
pub struct FaultySubject<const D: u8>;

impl<const D: u8> crate::Subject for FaultySubject<D> {
    type Alloc = Faulty<D>;
    fn new() -> Faulty<D> {
        Faulty::new(ARENA)
    }
    fn with_budget(budget: usize) -> Faulty<D> {
        Faulty::new(budget)
    }
}

/// The system allocator (glibc on Linux) with a byte budget and a live-byte count: the trusted
/// baseline. `Sync`.
pub struct Reference {
    budget: usize,
    live: AtomicUsize,
}

impl Reference {
    /// Serves at most `budget` live bytes.
    pub fn new(budget: usize) -> Self {
        Reference { budget, live: AtomicUsize::new(0) }
    }

    /// Bytes live now.
    pub fn live(&self) -> usize {
        // Relaxed: read after the threads that changed it were joined.
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: blocks come from the system allocator with the caller's layout; the budget only
// refuses requests.
unsafe impl Allocator for &Reference {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0));
        }
        // Relaxed: the budget is a limit on a sum, not a synchronisation point.
        let before = self.live.fetch_add(layout.size(), Ordering::Relaxed);
        if before.checked_add(layout.size()).is_none_or(|n| n > self.budget) {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            return Err(AllocError);
        }
        // SAFETY: a non-zero-size layout.
        let p = unsafe { System.alloc(layout) };
        match NonNull::new(p) {
            Some(p) => Ok(NonNull::slice_from_raw_parts(p, layout.size())),
            None => {
                self.live.fetch_sub(layout.size(), Ordering::Relaxed);
                Err(AllocError)
            }
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's block, from System with this layout.
            unsafe { System.dealloc(ptr.as_ptr(), layout) }
        }
    }
}

/// [`Reference`] as a conformance subject.
pub struct ReferenceSubject;

impl crate::Subject for ReferenceSubject {
    type Alloc = Reference;
    fn new() -> Reference {
        Reference::new(usize::MAX)
    }
    fn with_budget(budget: usize) -> Reference {
        Reference::new(budget)
    }
}

impl crate::SharedSubject for ReferenceSubject {
    fn live_bytes(heap: &Reference) -> usize {
        heap.live()
    }
}
