//! Small correct layers that exercise the fronts' own code: every allocator crate sets
//! `ZERO_SIZE_OK` and resizes in place, so without these the fronts' zero-size path, their
//! alignment check before an in-place resize, and the moving realloc of a layer without
//! [`alloc_core::Resize`] would never run.

use alloc_core::layer::{Layer, ResizeFn};
use alloc_core::source::PageSource;
use alloc_core::{AllocError, Layout, Limited, MmapSource};
use core::ptr::NonNull;

/// Every block is a run of whole pages of its own from a page source. `RESIZE` says whether it
/// sets [`Layer::RESIZE`] (shrinking in place by giving the tail pages back, growing in place
/// within its last page) or leaves realloc to the fronts.
pub struct Pages<const RESIZE: bool> {
    source: Limited<MmapSource>,
}

impl<const RESIZE: bool> Pages<RESIZE> {
    /// A layer over `source`.
    pub fn new(source: Limited<MmapSource>) -> Self {
        Pages { source }
    }

    /// Bytes mapped now: every live block's pages.
    pub fn mapped(&self) -> usize {
        self.source.used()
    }

    fn len(&self, size: usize) -> usize {
        size.next_multiple_of(self.source.page_size())
    }
}

// SAFETY: every block is a fresh mapping of its own, at least as long as asked and aligned as
// asked; it is unmapped only at its free (with a length computed from a fitting size, which
// rounds to the same page count). Nothing panics.
unsafe impl<const RESIZE: bool> Layer for Pages<RESIZE> {
    // The in-place promise stated at `Resize` is kept by `resize_in_place` (its doc says how).
    const RESIZE: Option<ResizeFn<Self>> = if RESIZE { Some(Self::resize_in_place) } else { None };

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let len = layout.size().checked_next_multiple_of(self.source.page_size()).ok_or(AllocError)?;
        let p = self.source.map(len, layout.align()).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, len))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // Fresh pages from mmap are zero.
        self.allocate(layout)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let len = self.len(layout.size());
        // SAFETY: the caller's block, mapped with this many pages.
        unsafe { self.source.unmap(ptr, len) }
    }
}

impl<const RESIZE: bool> Pages<RESIZE> {
    /// Resizes the block in place (this layer's [`Layer::RESIZE`]): the block keeps its address and
    /// contents; shrinking unmaps only pages past the new length, growing succeeds only within
    /// pages the block already has.
    ///
    /// # Safety
    ///
    /// As for `alloc_core::layer::Resize::resize_in_place`.
    pub unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError> {
        // The address suits `new`'s alignment: the fronts check that before calling (this layer
        // relies on it, so the check stays tested).
        let (old_len, new_len) = (self.len(old.size()), self.len(new.size()));
        if new_len > old_len {
            return Err(AllocError);
        }
        if new_len < old_len {
            // SAFETY: the tail pages of the caller's block, no longer used.
            unsafe { self.source.unmap(ptr.add(new_len), old_len - new_len) };
        }
        Ok(new_len)
    }
}
