//! The layer contract: one required trait and the optional capabilities.
//!
//! A capability a layer cannot really provide is left unimplemented, so compositions know at
//! compile time what they may rely on (D's allocator building blocks work the same way).

use crate::{AllocError, Layout};
use core::ptr::NonNull;

/// A layer of an allocator: hands out blocks for a [`Layout`] and takes them back.
///
/// Layers take `&mut self` and know nothing of threads; [`crate::Local`] and [`crate::Locked`]
/// decide how a layer is shared. Fronts never pass a zero-size layout to a layer (they answer those
/// with a dangling pointer themselves), so a layer may assume `layout.size() > 0`, unless it sets
/// [`Layer::ZERO_SIZE_OK`].
///
/// # Safety
///
/// Implementors promise that a block returned by [`Layer::allocate`]:
/// - is valid for reads and writes of its whole returned length, which is at least `layout.size()`;
/// - is aligned to `layout.align()`;
/// - is disjoint from every other block currently allocated from this layer;
/// - stays valid until it is passed to [`Layer::deallocate`], the layer is reset or dropped.
pub unsafe trait Layer {
    /// True when the layer itself answers zero-size requests with a non-null aligned pointer and
    /// takes them back as a no-op, so fronts can skip their own check on the fast path.
    const ZERO_SIZE_OK: bool = false;

    /// Allocates a block that fits `layout`, or reports that it cannot.
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;

    /// Gives a block back.
    ///
    /// # Safety
    ///
    /// - `ptr` is currently allocated from this layer;
    /// - `layout` fits the block: it is the layout it was allocated (or last resized) with.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout);
}

/// Capability: change a block's size without moving it.
///
/// # Safety
///
/// On `Ok(len)` the block, still at `ptr`, is valid for `len >= new_size` bytes and keeps its first
/// `min(old.size(), new_size)` bytes; on `Err` the block is unchanged.
pub unsafe trait Resize: Layer {
    /// Grows or shrinks the block at `ptr` to `new_size` bytes in place, returning its new usable
    /// length, or `Err` when it cannot (the caller then moves the block).
    ///
    /// # Safety
    ///
    /// - `ptr` is currently allocated from this layer and `old` fits it;
    /// - `new_size > 0`, unless the layer sets [`Layer::ZERO_SIZE_OK`].
    unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<usize, AllocError>;
}

/// Capability: the usable length of a block, which may exceed what was asked for.
pub trait UsableSize: Layer {
    /// The number of bytes the caller may use at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is currently allocated from this layer and `layout` fits it.
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize;
}

/// Capability: tell whether an address lies in memory this layer hands out. Needed to route a
/// free through a fallback composition.
pub trait Owns: Layer {
    /// True when `ptr` points into memory managed by this layer (allocated or not).
    fn owns(&self, ptr: NonNull<u8>) -> bool;
}

/// Capability: recover a block's layout from its address alone (the paper's `getmeta`); this is
/// what C `free(ptr)` and `malloc_usable_size(ptr)` need.
pub trait SizeOf: Layer {
    /// The layout the block at `ptr` can be deallocated with, or `None` when `ptr` is not the start
    /// of a block currently allocated from this layer (as far as the layer can tell).
    ///
    /// # Safety
    ///
    /// `ptr` is an address this layer [`Owns`] or one the caller got from it; the layer may read
    /// its own metadata near `ptr`.
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout>;
}

/// Capability: free every block at once.
pub trait Reset: Layer {
    /// Frees every block. The layer may keep some memory mapped for reuse.
    ///
    /// Taking `&mut self` means no block can be reached through a borrow of the layer any more;
    /// raw pointers still held by the caller dangle afterwards.
    fn reset(&mut self);
}
