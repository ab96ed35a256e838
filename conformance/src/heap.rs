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
