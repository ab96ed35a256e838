//! The segregated heap layer: one free list per size class over a bump region of page runs.
//!
//! - **allocate**: compute the class (five instructions), pop its list; when the list is empty,
//!   bump a block off the current run (cold path), mapping a new run when that one is spent.
//! - **deallocate**: push on the class's list, after two cheap checks: the block must be aligned
//!   like every block of its class (else: interior or misaligned pointer), and must not already be
//!   the list's head (else: an immediate double free). A page-sized or larger block at the top of
//!   the run gives the top back instead.
//! - **resize in place**: free when the new size stays in the block's class; growth into a larger
//!   class happens in place when the block ends at the top of the run.
//!
//! Padding skipped while aligning a bump, and the unused tail of a spent run, are carved into
//! naturally aligned blocks on the class lists, so nothing the source gave is lost.

use crate::class::{class_align, class_align_mask, class_of, class_size, CLASSES, MIN_BLOCK};
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Layer, Resize, UsableSize};
use alloc_core::source::PageSource;
use alloc_core::stats::{NoStats, StatsPolicy};
use alloc_core::{ptr, Abort, AllocError, FreeList, Layout};
use core::ptr::NonNull;

/// The record of one run mapped from the source, linking every run so `Drop` can give them back.
/// It sits at the start of a regular run, and in one extra page after the block of a run made
/// for a single large block (so the block keeps its alignment).
#[repr(C)]
struct RunHeader {
    /// The run mapped before this one.
    prev: Option<NonNull<RunHeader>>,
    /// Start of the mapping.
    base: NonNull<u8>,
    /// Bytes mapped.
    len: usize,
}

/// Bytes reserved for the header at the start of a regular run: a multiple of 16, so the bump
/// top stays aligned for the smallest class.
const RUN_HEADER: usize = 32;
const _: () = assert!(core::mem::size_of::<RunHeader>() <= RUN_HEADER && RUN_HEADER.is_multiple_of(MIN_BLOCK));

/// Size of the first run mapped from the source; runs double up to [`MAX_RUN`].
pub const FIRST_RUN: usize = 64 << 10;
/// Runs stop doubling here; a block larger than the next run gets a run of its own.
pub const MAX_RUN: usize = 1 << 20;

/// The segregated heap over page source `S`, with error policy `E` and statistics policy `C`.
pub struct SegregatedHeap<S: PageSource, E: ErrorPolicy = Abort, C: StatsPolicy = NoStats> {
    /// One LIFO list per class; every block on list `c` is `class_size(c)` long and aligned to
    /// `class_align(c)`.
    lists: [FreeList; CLASSES],
    /// Next free address of the current run; `top <= end`, both 0 before the first run.
    top: usize,
    /// One past the current run.
    end: usize,
    /// The current run's base (provenance for addresses in it).
    base: NonNull<u8>,
    /// Size of the next regular run.
    next_run: usize,
    /// Every run mapped, newest first.
    runs: Option<NonNull<RunHeader>>,
    source: S,
    errors: E,
    stats: C,
}

// SAFETY: the heap owns its runs and the free blocks on its lists; moving it moves that ownership.
unsafe impl<S: PageSource + Send, E: ErrorPolicy + Send, C: StatsPolicy + Send> Send for SegregatedHeap<S, E, C> {}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> SegregatedHeap<S, E, C> {
    /// An empty heap; maps nothing until the first allocation.
    pub const fn new(source: S) -> Self {
        SegregatedHeap {
            lists: [const { FreeList::new() }; CLASSES],
            top: 0,
            end: 0,
            base: NonNull::dangling(),
            next_run: FIRST_RUN,
            runs: None,
            source,
            errors: E::INIT,
            stats: C::INIT,
        }
    }

    /// The error policy (for [`alloc_core::Count`], what was detected).
    pub fn errors(&self) -> &E {
        &self.errors
    }

    /// The statistics policy (for [`alloc_core::Counting`], `.get()` gives the counters).
    pub fn counters(&self) -> &C {
        &self.stats
    }

    /// Free blocks waiting on each class's list (walks the lists: for tests and diagnostics).
    pub fn free_blocks(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for (c, list) in self.lists.iter().enumerate() {
            let mut n = 0;
            let mut cur = list.peek();
            while let Some(p) = cur {
                n += 1;
                // SAFETY: p is a block on the list; its first word is the link to the next one.
                cur = unsafe { p.cast::<Option<NonNull<u8>>>().as_ptr().read() };
            }
            counts[c] = n;
        }
        counts
    }

    /// True when `addr` lies in the current run (not in a block's own run next to it).
    #[inline(always)]
    fn in_run(&self, addr: usize) -> bool {
        addr >= self.base.as_ptr() as usize && addr < self.end
    }

    /// Bumps a block of class `c` aligned to `align` off the current run, if it fits.
    fn bump(&mut self, c: usize, align: usize) -> Option<NonNull<u8>> {
        let start = ptr::align_up(self.top, align)?;
        let end = start.checked_add(class_size(c))?;
        if self.top == 0 || end > self.end {
            return None;
        }
        self.carve(self.top, start);
        self.top = end;
        // SAFETY: start..end lies in the current run, inside `base`'s mapping.
        Some(unsafe { ptr::with_addr(self.base, start) })
    }

    /// Puts `from..to` (16-aligned, in the current run, unused) on the class lists as the largest
    /// naturally aligned blocks that tile it.
    fn carve(&mut self, mut from: usize, to: usize) {
        while to - from >= MIN_BLOCK {
            // The largest class whose block starts aligned at `from` and fits before `to`.
            let fit = usize::BITS - 1 - (to - from).leading_zeros();
            let aligned = from.trailing_zeros();
            let shift = fit.min(aligned).min(usize::BITS - 1);
            let c = (shift - crate::class::MIN_SHIFT) as usize;
            let c = c.min(class_of(NATURAL, 1));
            // SAFETY: from..from+class_size(c) is unused memory of the current run, 16-aligned,
            // and aligned to its class (shift <= trailing zeros of `from`).
            unsafe { self.lists[c].push(ptr::with_addr(self.base, from)) };
            from += class_size(c);
        }
    }

    #[cold]
    #[inline(never)]
    fn allocate_slow(&mut self, c: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        // Over-page alignment: the list's blocks are only page-aligned, so look at the head.
        if align > class_align(c) {
            if let Some(p) = self.lists[c].peek() {
                if ptr::is_aligned(p.as_ptr() as usize, align) {
                    return self.lists[c].pop().ok_or(AllocError);
                }
            }
        }
        let align = align.max(class_align(c));
        if let Some(p) = self.bump(c, align) {
            return Ok(p);
        }
        let page = self.source.page_size();
        let size = ptr::align_up(class_size(c), page).ok_or(AllocError)?;
        if size > self.next_run / 2 {
            // A run of its own, sized to the block, with its header in one page after it; the
            // current run keeps serving.
            let len = size.checked_add(page).ok_or(AllocError)?;
            let p = self.source.map(len, align.max(page)).ok_or(AllocError)?;
            // SAFETY: `size` bytes into a run of `size + page` bytes, page-aligned.
            self.record_run(p, len, unsafe { ptr::add(p, size) });
            return Ok(p);
        }
        // A fresh run; when the full size is not available, try one just big enough.
        let need = size + page;
        let (run, len) = match self.source.map(self.next_run, page) {
            Some(r) => (r, self.next_run),
            None => (self.source.map(need, page).ok_or(AllocError)?, need),
        };
        self.record_run(run, len, run);
        if self.top != 0 {
            self.carve(self.top, self.end);
        }
        self.base = run;
        self.top = run.as_ptr() as usize + RUN_HEADER;
        self.end = run.as_ptr() as usize + len;
        self.next_run = (self.next_run * 2).min(MAX_RUN);
        self.bump(c, align).ok_or(AllocError)
    }

    /// Links a fresh run into the run list, its header written at `at`.
    fn record_run(&mut self, base: NonNull<u8>, len: usize, at: NonNull<u8>) {
        let h = at.cast::<RunHeader>();
        // SAFETY: `at` is a 16-aligned spot in the fresh run with room for the header, which no
        // block will ever cover (regular runs bump from past it; a large block ends before it).
        unsafe { h.as_ptr().write(RunHeader { prev: self.runs, base, len }) };
        self.runs = Some(h);
        self.stats.on_map(len);
    }

    #[cold]
    #[inline(never)]
    fn report(&self, kind: ErrorKind, p: NonNull<u8>) {
        self.errors.report(HeapError::new(kind, p.as_ptr() as usize));
    }
}

/// The largest class `carve` makes: a page. Bigger free spans are cut into pages.
const NATURAL: usize = crate::class::NATURAL_ALIGN_MAX;

// SAFETY: every block handed out is a whole class block: popped from its class's list (whose
// blocks are class-sized, class-aligned and free) or bumped fresh from a run at the required
// alignment; a block is on at most one list, and lists hold only freed or never-used memory.
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> Layer for SegregatedHeap<S, E, C> {
    /// A zero-size request is served from class 0 (or the class of its alignment) like any
    /// other: a real, aligned block, freed and resized as usual.
    const ZERO_SIZE_OK: bool = true;

    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let c = class_of(layout.size(), layout.align());
        let p = match self.lists[c].pop() {
            Some(p) if layout.align() <= NATURAL => p,
            popped => {
                if let Some(p) = popped {
                    // SAFETY: just popped from this list, so free and of this class.
                    unsafe { self.lists[c].push(p) };
                }
                self.allocate_slow(c, layout.align())?
            }
        };
        self.stats.on_alloc(layout.size());
        Ok(ptr::block(p, class_size(c)))
    }

    #[inline(always)]
    unsafe fn deallocate(&mut self, p: NonNull<u8>, layout: Layout) {
        let c = class_of(layout.size(), layout.align());
        let addr = p.as_ptr() as usize;
        if addr & class_align_mask(c) != 0 {
            return self.report(ErrorKind::InteriorPointer, p);
        }
        if self.lists[c].peek() == Some(p) {
            return self.report(ErrorKind::DoubleFree, p);
        }
        self.stats.on_free(layout.size());
        if class_size(c) >= NATURAL && addr + class_size(c) == self.top && self.in_run(addr) {
            // Give the heap top back rather than parking a large block on a list.
            self.top = addr;
            return;
        }
        // SAFETY: the caller frees a live block of this class (it was allocated with a layout of
        // the same class); it is class-aligned (checked) and not the list's head (checked).
        unsafe { self.lists[c].push(p) }
    }
}

// SAFETY: a block keeps its address; within its class nothing changes; growing into a larger
// class at the top of the run claims the bytes up to the new class size from the run, which are
// unused, and only when the block is aligned for the larger class.
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> Resize for SegregatedHeap<S, E, C> {
    #[inline]
    unsafe fn resize_in_place(&mut self, p: NonNull<u8>, old: Layout, new_size: usize) -> Result<usize, AllocError> {
        let c = class_of(old.size(), old.align());
        let n = class_of(new_size, old.align());
        if n == c {
            self.stats.on_resize(old.size(), new_size);
            return Ok(class_size(c));
        }
        let addr = p.as_ptr() as usize;
        if n > c
            && addr + class_size(c) == self.top
            && self.in_run(addr)
            && ptr::is_aligned(addr, class_align(n))
            && class_size(n) <= self.end - addr
        {
            self.top = addr + class_size(n);
            self.stats.on_resize(old.size(), new_size);
            return Ok(class_size(n));
        }
        Err(AllocError)
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> UsableSize for SegregatedHeap<S, E, C> {
    unsafe fn usable_size(&self, _p: NonNull<u8>, layout: Layout) -> usize {
        class_size(class_of(layout.size(), layout.align()))
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> Drop for SegregatedHeap<S, E, C> {
    /// Gives every run back to the page source: a heap that is dropped (an allocator value, not
    /// a global) keeps nothing mapped.
    fn drop(&mut self) {
        while let Some(h) = self.runs {
            // SAFETY: headers in the list are initialised and their runs mapped; the header is
            // read before its run is unmapped, and no block can be in use once the heap is dropped.
            unsafe {
                let run = h.as_ptr().read();
                self.runs = run.prev;
                self.stats.on_unmap(run.len);
                self.source.unmap(run.base, run.len);
            }
        }
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy> core::fmt::Debug for SegregatedHeap<S, E, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SegregatedHeap")
            .field("top", &format_args!("{:#x}", self.top))
            .field("end", &format_args!("{:#x}", self.end))
            .finish_non_exhaustive()
    }
}

/// Small tests over a fixed buffer, sized so Miri can check the free-list links and provenance
/// (`cargo +nightly miri test -p alloc-segregated --lib`); the conformance suite covers the rest.
#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc_core::{Count, FixedSource};
    use std::vec;

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_reuse_carve_and_grow_over_a_buffer() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let a = h.allocate(l(20, 4)).unwrap().cast::<u8>();
        let b = h.allocate(l(100, 64)).unwrap().cast::<u8>();
        let big = h.allocate(l(5000, 8)).unwrap().cast::<u8>();
        assert_eq!(b.as_ptr() as usize % 64, 0);
        // SAFETY: live blocks of at least these sizes.
        unsafe {
            a.as_ptr().write_bytes(1, 32);
            b.as_ptr().write_bytes(2, 128);
            big.as_ptr().write_bytes(3, 8192);
            h.deallocate(a, l(20, 4));
            h.deallocate(b, l(100, 64));
        }
        // Freed blocks come back from their class's list.
        assert_eq!(h.allocate(l(30, 8)).unwrap().cast::<u8>(), a);
        assert_eq!(h.allocate(l(128, 1)).unwrap().cast::<u8>(), b);
        // The large block sits at the top of the run: it grows in place into the next class.
        // SAFETY: big is live with this layout.
        let grown = unsafe { h.resize_in_place(big, l(5000, 8), 12_000) };
        assert_eq!(grown, Ok(16384));
        // SAFETY: the block is now 16 KiB and keeps its bytes.
        unsafe {
            assert_eq!(*big.as_ptr().add(8191), 3);
            big.as_ptr().add(16383).write(4);
            h.deallocate(big, l(12_000, 8));
        }
        assert_eq!(h.errors().detected(), 0);
        // An immediate double free is reported and ignored.
        let c = h.allocate(l(48, 8)).unwrap().cast::<u8>();
        // SAFETY: the second free is the misuse under test; Count records it.
        unsafe {
            h.deallocate(c, l(48, 8));
            h.deallocate(c, l(48, 8));
        }
        assert_eq!(h.errors().detected(), 1);
        // Exhausting the buffer fails cleanly, and small blocks still come from the lists.
        while h.allocate(l(4096, 8)).is_ok() {}
        assert!(h.allocate(l(40, 8)).is_ok());
    }
}
