//! The layer contract: the exclusive side ([`Layer`], `&mut self`), the shared side
//! ([`SharedLayer`], `&self` from many threads), and the optional capabilities.
//!
//! A capability a layer cannot really provide is left unimplemented, so compositions know at
//! compile time what they may rely on (D's allocator building blocks work the same way). Fronts
//! learn whether a layer resizes in place from [`Layer::RESIZE`], a constant that is `None` unless
//! the layer implements [`Resize`]: a layer without it works behind every front, and `realloc`
//! then moves the block.

use crate::{AllocError, Layout};
use core::ptr::NonNull;

/// In-place resizing of an exclusive layer, as a constant the fronts can test at compile time
/// ([`Layer::RESIZE`]; the promise its function keeps is stated at [`Resize`]).
pub type ResizeFn<L> = unsafe fn(&mut L, NonNull<u8>, Layout, Layout) -> Result<usize, AllocError>;

/// In-place resizing of a shared layer ([`SharedLayer::RESIZE`]).
pub type SharedResizeFn<L> = unsafe fn(&L, NonNull<u8>, Layout, Layout) -> Result<usize, AllocError>;

/// A layer of an allocator: hands out blocks for a [`Layout`] and takes them back.
///
/// Layers take `&mut self` and know nothing of threads; [`crate::Local`] and [`crate::Locked`]
/// decide how a layer is shared ([`SharedLayer`] is the side of the contract for layers that
/// threads call at once). Fronts never pass a zero-size layout to a layer (they answer those with
/// a dangling pointer themselves), so a layer may assume `layout.size() > 0`, unless it sets
/// [`Layer::ZERO_SIZE_OK`].
///
/// # Safety
///
/// Implementors promise that a block returned by [`Layer::allocate`] or
/// [`Layer::allocate_zeroed`]:
/// - is valid for reads and writes of its whole returned length, which is at least `layout.size()`;
/// - is aligned to `layout.align()`;
/// - is disjoint from every other block currently allocated from this layer;
/// - stays valid until it is passed to [`Layer::deallocate`], the layer is reset or dropped;
///
/// and that `allocate_zeroed` returns a block whose whole returned length reads as zero.
///
/// **No method unwinds** unless [`Layer::PANICS`] is `true`: failures are `Err(AllocError)`,
/// detected misuse goes to the layer's error policy, and internal invariant checks abort
/// ([`crate::error::fatal`]) rather than panic. `GlobalAlloc` must not unwind, so the fronts that
/// implement it refuse a layer with `PANICS = true` at compile time.
///
/// When [`Layer::RESIZE`] is `Some(f)`, `f` keeps the in-place resize promise stated at
/// [`Resize`].
///
/// **No method calls back into a front that holds this layer** (its own methods, and those of
/// the capability traits it implements: [`Validate`], [`Owns`], [`SizeOf`], [`UsableSize`],
/// [`crate::Statistics`]):
/// the fronts hand a layer `&mut self` or `&self` without a lock of their own on the strength of
/// this, and a call back would make a second reference to the layer while the first is live.
pub unsafe trait Layer {
    /// True when the layer itself answers zero-size requests with a non-null aligned pointer and
    /// takes them back as a no-op, so fronts can skip their own check on the fast path.
    const ZERO_SIZE_OK: bool = false;

    /// True when a method may panic (an error policy such as [`crate::Panic`]). Such a layer
    /// cannot sit behind `GlobalAlloc`; the fronts check this at compile time.
    const PANICS: bool = false;

    /// In-place resizing, where the layer has it: `Some(f)`, where `f` keeps the promise stated
    /// at [`Resize`] (the one place a layer says it resizes in place). `None` (the default) makes
    /// every front move blocks on realloc.
    const RESIZE: Option<ResizeFn<Self>> = None;

    /// Allocates a block that fits `layout`, or reports that it cannot.
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;

    /// Allocates a block whose whole length reads as zero. The default zeroes what `allocate`
    /// returns; layers that know a block is already zero (fresh pages from a source that maps
    /// zeroed memory, pages the OS zeroed when they were returned) skip the `memset`, so a large
    /// `calloc` does not make its pages resident.
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.allocate(layout)?;
        // SAFETY: the block was just allocated and is valid for its whole length.
        unsafe { block.cast::<u8>().as_ptr().write_bytes(0, block.len()) };
        Ok(block)
    }

    /// Gives a block back.
    ///
    /// # Safety
    ///
    /// - `ptr` is currently allocated from this layer;
    /// - `layout` fits the block: its alignment is the one the block was allocated (or last
    ///   resized) with, and its size lies between the size asked for then and the length returned.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout);
}

/// The shared side of the contract: a layer that many threads call at once through `&self`
/// (a lock-free pool, a per-thread-cache allocator, or any [`Layer`] behind [`crate::Locked`]).
///
/// `&L` for a shared layer `L` is itself a [`Layer`], so every front and combinator written for
/// exclusive layers serves shared ones too.
///
/// # Safety
///
/// The promises of [`Layer`], for calls made concurrently from any number of threads: a block
/// is disjoint from every block allocated and not yet freed through any thread, and may be freed
/// (or resized) from a thread other than the one that allocated it.
pub unsafe trait SharedLayer: Sync {
    /// As [`Layer::ZERO_SIZE_OK`].
    const ZERO_SIZE_OK: bool = false;
    /// As [`Layer::PANICS`].
    const PANICS: bool = false;
    /// As [`Layer::RESIZE`], through `&self`.
    const RESIZE: Option<SharedResizeFn<Self>> = None;

    /// As [`Layer::allocate`].
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;

    /// As [`Layer::allocate_zeroed`].
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.allocate(layout)?;
        // SAFETY: the block was just allocated and is valid for its whole length.
        unsafe { block.cast::<u8>().as_ptr().write_bytes(0, block.len()) };
        Ok(block)
    }

    /// As [`Layer::deallocate`], from any thread.
    ///
    /// # Safety
    ///
    /// As for [`Layer::deallocate`].
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);
}

/// Forwards `&L`'s in-place resize to the shared layer's, where it has one.
///
/// # Safety
///
/// As for [`Resize::resize_in_place`].
unsafe fn shared_resize<L: SharedLayer + ?Sized>(
    layer: &mut &L,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    match L::RESIZE {
        // SAFETY: forwarded with the caller's guarantees.
        Some(f) => unsafe { f(*layer, ptr, old, new) },
        None => Err(AllocError),
    }
}

// SAFETY: every call goes to the shared layer, which keeps the promises of `Layer` for
// concurrent callers, so a fortiori for this one.
unsafe impl<L: SharedLayer + ?Sized> Layer for &L {
    const ZERO_SIZE_OK: bool = L::ZERO_SIZE_OK;
    const PANICS: bool = L::PANICS;
    const RESIZE: Option<ResizeFn<Self>> = match L::RESIZE {
        Some(_) => Some(shared_resize::<L>),
        None => None,
    };

    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (**self).allocate(layout)
    }

    #[inline(always)]
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (**self).allocate_zeroed(layout)
    }

    #[inline(always)]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).deallocate(ptr, layout) }
    }
}

/// Capability: change a block's size (and alignment) without moving it, on every layer.
///
/// A layer says that it resizes in place **once**, in its [`Layer`] impl:
/// `const RESIZE: Option<ResizeFn<Self>> = Some(its_resize_fn);`. That constant is what the
/// fronts test at compile time, and this trait, implemented for every layer, calls it: there is
/// no second statement that could disagree with the first. Where `RESIZE` is `None`,
/// [`Resize::resize_in_place`] is `Err` and every front moves the block.
///
/// The function named in `RESIZE` keeps the promise below, as part of the `unsafe impl Layer`:
/// on `Ok(len)` the block, still at `ptr`, is valid for `len >= new.size()` bytes, satisfies
/// `new`'s alignment, fits `new` (it can be freed or resized with it from then on), and keeps its
/// first `min(old.size(), new.size())` bytes; on `Err` the block is unchanged. A layer whose
/// blocks carry their layout (a size class) must check that the block's class under `new` is
/// still the block's class: a block kept in place under a layout of another class is freed onto
/// that class's list, and the next allocation of that class overlaps a live neighbour.
///
/// ```
/// use alloc_core::layer::{Layer, Resize, ResizeFn};
/// use alloc_core::{AllocError, Layout};
/// use core::ptr::NonNull;
///
/// /// One fixed 64-byte block that any size up to 64 fits in place.
/// struct One([u8; 64], bool);
///
/// impl One {
///     unsafe fn resize(&mut self, _: NonNull<u8>, _: Layout, new: Layout) -> Result<usize, AllocError> {
///         if new.size() <= 64 && new.align() <= 1 { Ok(64) } else { Err(AllocError) }
///     }
/// }
///
/// // SAFETY: one block, handed out once at a time; `resize` keeps it where it is.
/// unsafe impl Layer for One {
///     const RESIZE: Option<ResizeFn<Self>> = Some(Self::resize);
///     fn allocate(&mut self, l: Layout) -> Result<NonNull<[u8]>, AllocError> {
///         if self.1 || l.size() > 64 || l.align() > 1 { return Err(AllocError) }
///         self.1 = true;
///         Ok(NonNull::from(&mut self.0[..]))
///     }
///     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) { self.1 = false }
/// }
///
/// let mut one = One([0; 64], false);
/// let p = one.allocate(Layout::new::<u8>()).unwrap().cast::<u8>();
/// // SAFETY: `p` is live with a layout of one byte.
/// unsafe {
///     assert_eq!(one.resize_in_place(p, Layout::new::<u8>(), Layout::new::<[u8; 48]>()), Ok(64));
///     assert_eq!(one.resize_in_place(p, Layout::new::<[u8; 48]>(), Layout::new::<[u8; 80]>()), Err(AllocError));
/// }
/// ```
pub trait Resize: Layer {
    /// Grows or shrinks the block at `ptr` from `old` to `new` in place through the layer's
    /// [`Layer::RESIZE`], returning its new usable length, or `Err` when it cannot (the caller
    /// then moves the block; always `Err` where `RESIZE` is `None`).
    ///
    /// # Safety
    ///
    /// - `ptr` is currently allocated from this layer and `old` fits it;
    /// - `ptr` is aligned to `new.align()`;
    /// - `new.size() > 0`, unless the layer sets [`Layer::ZERO_SIZE_OK`].
    unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError>;
}

impl<L: Layer> Resize for L {
    #[inline(always)]
    unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError> {
        match L::RESIZE {
            // SAFETY: forwarded with the caller's guarantees; `f` keeps the promise of `RESIZE`.
            Some(f) => unsafe { f(self, ptr, old, new) },
            None => Err(AllocError),
        }
    }
}

/// Capability: the usable length of a block, which may exceed what was asked for.
///
/// ```compile_fail,E0200
/// struct Liar;
/// impl alloc_core::layer::UsableSize for Liar {
///     unsafe fn usable_size(&self, _: core::ptr::NonNull<u8>, l: core::alloc::Layout) -> usize { l.size() * 2 }
/// }
/// ```
///
/// # Safety
///
/// The answer decides how many bytes a caller writes (C's `malloc_usable_size`, a `Vec` that
/// takes the spare capacity): for a block currently allocated from this layer with a layout that
/// fits it, [`UsableSize::usable_size`] returns `n >= layout.size()` such that the block is valid
/// for reads and writes of `n` bytes without touching another block or the layer's metadata (a
/// canary included), and every size from `layout.size()` to `n` fits the block when freeing it.
pub unsafe trait UsableSize {
    /// The number of bytes the caller may use at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is currently allocated from this layer and `layout` fits it.
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize;
}

/// Capability: tell whether an address lies in memory this layer hands out. Needed to route a
/// free through a fallback composition.
///
/// A wrong answer frees a block into the wrong layer, so implementing it takes `unsafe`:
///
/// ```compile_fail,E0200
/// struct Liar;
/// impl alloc_core::Owns for Liar {
///     fn owns(&self, _: core::ptr::NonNull<u8>) -> bool { true }
/// }
/// ```
///
/// # Safety
///
/// The answer decides which layer a block is freed to ([`crate::compose::Fallback`]) and
/// whether a layer's metadata near `ptr` may be read ([`SizeOf`]): [`Owns::owns`] returns `true`
/// for every address inside a block currently allocated from this layer, `false` for every block
/// of any other allocator, and never reads memory the layer does not manage, so any address may
/// be asked about.
pub unsafe trait Owns {
    /// True when `ptr` points into memory managed by this layer (allocated or not).
    fn owns(&self, ptr: NonNull<u8>) -> bool;
}

/// Capability: recover a block's layout from its address alone (the paper's `getmeta`); this is
/// what C `free(ptr)` and `malloc_usable_size(ptr)` need.
///
/// ```compile_fail,E0200
/// struct Liar;
/// impl alloc_core::SizeOf for Liar {
///     unsafe fn size_of(&self, _: core::ptr::NonNull<u8>) -> Option<core::alloc::Layout> { None }
///     unsafe fn misuse_at(&self, p: core::ptr::NonNull<u8>) -> alloc_core::HeapError {
///         alloc_core::HeapError::new(alloc_core::ErrorKind::ForeignPointer, p.as_ptr() as usize)
///     }
/// }
/// ```
///
/// # Safety
///
/// The answer is passed straight to `deallocate` (C's `free(ptr)` has nothing else):
/// [`SizeOf::size_of`] returns `Some(layout)` only with a layout that fits the block starting at
/// `ptr` when that block is currently allocated from this layer (a size from the one it was asked
/// for to the one it returned, an alignment at least the one asked for that `ptr` has: a layer
/// that keeps no size per block answers with its size class's); for the start of such a block it
/// returns `Some`. For any other address the layer [`Owns`] it returns `None` (as far as the
/// layer's metadata can tell: an address that forges a block's metadata is undetectable misuse,
/// documented per allocator). Both methods only read, and report nothing: the caller reports.
pub unsafe trait SizeOf {
    /// The layout the block at `ptr` can be deallocated with, or `None` when `ptr` is not the start
    /// of a block currently allocated from this layer (as far as the layer can tell).
    ///
    /// # Safety
    ///
    /// `ptr` is an address this layer [`Owns`] (the layer may read its own metadata near it).
    /// Callers with an arbitrary address (a C program's `free`) ask [`Owns::owns`] first.
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout>;

    /// What is wrong with `ptr` when [`SizeOf::size_of`] found no block in use there, for the
    /// report line: a double free, an interior pointer, a pointer the layer never gave out, a
    /// smashed canary (at the canary's address).
    ///
    /// # Safety
    ///
    /// As for [`SizeOf::size_of`].
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> crate::HeapError;
}

/// Capability: free every block at once. Layers have it, and the fronts over them
/// ([`crate::Local`], [`crate::Locked`]) and the allocator crates' own fronts pass it on.
pub trait Reset {
    /// Frees every block. The layer may keep some memory mapped for reuse.
    ///
    /// Taking `&mut self` means no block can be reached through a borrow of the layer any more;
    /// raw pointers still held by the caller dangle afterwards.
    fn reset(&mut self);
}

/// Capability: give memory back to the page source while blocks stay live (the one verb the
/// workspace uses for it: free pages, cached chunks, empty runs go back; every live block stays
/// where it is, intact).
pub trait Trim {
    /// Gives back what the allocator may give back now.
    fn trim(&mut self);
}

/// What a heap validator found: the first inconsistency in an allocator's own structures.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// What is inconsistent, in the allocator's words.
    pub what: &'static str,
    /// The address of the block, list node or span involved.
    pub addr: usize,
}

impl core::fmt::Display for Corruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "heap validation failed: {} at {:#x}", self.what, self.addr)
    }
}

/// Capability: a heap validator (as talc's `scan_for_errors`): walks the allocator's own
/// structures (free lists, run and chunk lists, span trees, page maps) and reports the first
/// inconsistency. Costs nothing unless called; the conformance suite calls it after operations
/// and the fuzz targets with their `validate` feature.
pub trait Validate {
    /// Checks every invariant the allocator keeps. Call it when no other thread is using the
    /// allocator.
    fn validate(&self) -> Result<(), Corruption>;
}

impl<T: Validate + ?Sized> Validate for &T {
    fn validate(&self) -> Result<(), Corruption> {
        (**self).validate()
    }
}

// SAFETY: the referent's answer.
unsafe impl<T: Owns + ?Sized> Owns for &T {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        (**self).owns(ptr)
    }
}

// SAFETY: the referent's answers.
unsafe impl<T: SizeOf + ?Sized> SizeOf for &T {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).size_of(ptr) }
    }
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> crate::HeapError {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).misuse_at(ptr) }
    }
}

// SAFETY: the referent's answer.
unsafe impl<T: UsableSize + ?Sized> UsableSize for &T {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).usable_size(ptr, layout) }
    }
}

/// Debug-build invariant check that aborts with the report line instead of panicking, for code
/// on allocation paths (a panic there could unwind out of `GlobalAlloc`). Compiles to nothing in
/// release builds.
#[macro_export]
macro_rules! debug_check {
    ($cond:expr, $($msg:tt)+) => {
        if cfg!(debug_assertions) && !$cond {
            $crate::error::fatal(format_args!($($msg)+))
        }
    };
}
