//! [`Heap`]: what the suite needs of an allocator, implemented for every `A` whose shared
//! reference is an `allocator_api2` `Allocator` (so the bound travels with `Subject::Alloc`).

use allocator_api2::alloc::{AllocError, Allocator};
use core::alloc::Layout;
use core::ptr::NonNull;

/// An allocator used through a shared reference.
pub trait Heap {
    /// `Allocator::allocate`.
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;
    /// `Allocator::allocate_zeroed`.
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;
    /// `Allocator::deallocate`.
    ///
    /// # Safety
    ///
    /// As for `Allocator::deallocate`: `ptr` is currently allocated from this heap and `layout`
    /// fits it.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);
    /// `Allocator::grow` or `grow_zeroed`.
    ///
    /// # Safety
    ///
    /// As for `Allocator::grow`: `ptr` is currently allocated, `old` fits it, `new.size() >= old.size()`.
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError>;
    /// `Allocator::shrink`.
    ///
    /// # Safety
    ///
    /// As for `Allocator::shrink`: `ptr` is currently allocated, `old` fits it, `new.size() <= old.size()`.
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError>;
}

impl<A> Heap for A
where
    for<'a> &'a A: Allocator,
{
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        Allocator::allocate(&self, layout)
    }
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        Allocator::allocate_zeroed(&self, layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Allocator::deallocate(&self, ptr, layout) }
    }
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if zeroed {
                Allocator::grow_zeroed(&self, ptr, old, new)
            } else {
                Allocator::grow(&self, ptr, old, new)
            }
        }
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Allocator::shrink(&self, ptr, old, new) }
    }
}

/// A shared borrow of a heap, itself a heap: lets several models (one per thread) drive one
/// `Sync` allocator.
pub struct Borrowed<'a, H: ?Sized>(pub &'a H);

impl<H: Heap + ?Sized> Heap for Borrowed<'_, H> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.0.allocate(layout)
    }
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.0.allocate_zeroed(layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.deallocate(ptr, layout) }
    }
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.grow(ptr, old, new, zeroed) }
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.shrink(ptr, old, new) }
    }
}

/// A `GlobalAlloc` driven as a [`Heap`], so the suite can check the `GlobalAlloc` entry points
/// (`alloc`, `alloc_zeroed`, `realloc`, `dealloc`) and not only `allocator_api2`'s. Zero-size
/// requests never reach it (that is undefined behaviour for `GlobalAlloc`): they get a dangling
/// pointer here. A resize that changes the alignment moves the block by hand, since `realloc`
/// keeps the alignment.
pub struct ViaGlobalAlloc<'a, G: ?Sized>(pub &'a G);

impl<G: core::alloc::GlobalAlloc + ?Sized> ViaGlobalAlloc<'_, G> {
    fn dangling(layout: Layout) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0)
    }

    /// # Safety
    ///
    /// As for `Allocator::grow` / `shrink`.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() == 0 || new.size() == 0 || old.align() != new.align() {
            let fresh = if zeroed { self.allocate_zeroed(new)? } else { self.allocate(new)? };
            // SAFETY: both blocks are live and disjoint; copy what both hold, then free the old.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), old.size().min(new.size()));
                self.deallocate(ptr, old);
            }
            return Ok(fresh);
        }
        // SAFETY: a live block from this allocator with layout `old`; non-zero new size.
        let p = unsafe { self.0.realloc(ptr.as_ptr(), old, new.size()) };
        let p = NonNull::new(p).ok_or(AllocError)?;
        if zeroed && new.size() > old.size() {
            // SAFETY: the block is valid for new.size() bytes.
            unsafe { p.as_ptr().add(old.size()).write_bytes(0, new.size() - old.size()) };
        }
        Ok(NonNull::slice_from_raw_parts(p, new.size()))
    }
}

impl<G: core::alloc::GlobalAlloc + ?Sized> Heap for ViaGlobalAlloc<'_, G> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(Self::dangling(layout));
        }
        // SAFETY: a non-zero size.
        let p = unsafe { self.0.alloc(layout) };
        NonNull::new(p).map(|p| NonNull::slice_from_raw_parts(p, layout.size())).ok_or(AllocError)
    }
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(Self::dangling(layout));
        }
        // SAFETY: a non-zero size.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        NonNull::new(p).map(|p| NonNull::slice_from_raw_parts(p, layout.size())).ok_or(AllocError)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: the caller's block, from `alloc` with this layout.
            unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
        }
    }
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.resize(ptr, old, new, zeroed) }
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.resize(ptr, old, new, false) }
    }
}
