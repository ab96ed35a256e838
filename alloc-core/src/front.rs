//! Fronts: how a layer meets its users. Every front answers zero-size requests itself (unless the
//! layer sets [`Layer::ZERO_SIZE_OK`]), zeroes memory for `allocate_zeroed` only where the layer
//! does not already know it is zero, and reallocates by resizing in place where the layer can
//! ([`Layer::RESIZE`]), else by moving, so every allocator behaves the same at its edges.
//!
//! - [`Local`]: one thread, no lock, `!Sync`; `allocator_api2::alloc::Allocator` for `&Local`.
//! - [`Locked`]: an exclusive layer behind a lock policy (default [`SpinLock`]), which makes it a
//!   [`SharedLayer`]; `GlobalAlloc` and `Allocator`.
//! - [`shared_front!`](crate::shared_front): `GlobalAlloc` and `Allocator` for any
//!   [`SharedLayer`] type (a lock-free pool, a per-thread-cache allocator).
//!
//! A single-threaded layer never becomes `Sync` by an `unsafe impl` hoping no second thread
//! exists: it goes behind [`Locked`], or (wasm32 without threads) behind a documented wrapper.
//!
//! Exclusive operations (reset, replacing the layer, tuning) need `&mut` to the front, which no
//! borrower of the front can hold at the same time as a block borrowed from it:
//!
//! ```compile_fail,E0596
//! # use alloc_core::{layer::{Layer, Reset}, Locked, AllocError, Layout};
//! # use core::ptr::NonNull;
//! # struct Heap;
//! # unsafe impl Layer for Heap {
//! #     fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
//! #     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
//! # }
//! # impl Reset for Heap { fn reset(&mut self) {} }
//! let heap = Locked::<_>::new(Heap);
//! let v = allocator_api2::vec::Vec::<u8, _>::new_in(&heap);
//! heap.lock().reset(); // the guard only gives `&Heap`: reset needs `&mut`
//! drop(v);
//! ```
//!
//! ```compile_fail,E0594
//! # use alloc_core::{layer::Layer, Locked, AllocError, Layout};
//! # use core::ptr::NonNull;
//! # struct Heap;
//! # unsafe impl Layer for Heap {
//! #     fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
//! #     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
//! # }
//! let heap = Locked::<_>::new(Heap);
//! *heap.lock() = Heap; // replacing the layer while blocks are out is refused too
//! ```
//!
//! ```compile_fail,E0502
//! # use alloc_core::{layer::{Layer, Reset}, Locked, AllocError, Layout};
//! # use core::ptr::NonNull;
//! # struct Heap;
//! # unsafe impl Layer for Heap {
//! #     fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
//! #     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
//! # }
//! # impl Reset for Heap { fn reset(&mut self) {} }
//! let mut heap = Locked::<_>::new(Heap);
//! let v = allocator_api2::vec::Vec::<u8, _>::new_in(&heap);
//! heap.get_mut().reset(); // `&mut` access needs every borrow, the vector's included, to end
//! drop(v);
//! ```

use crate::layer::{Corruption, Layer, Owns, SharedLayer, SizeOf, UsableSize, Validate};
use crate::sync::SpinLock;
use crate::{ptr, AllocError, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

/// Allocates through `layer`, answering zero-size requests with a dangling aligned pointer.
#[inline(always)]
pub fn allocate<L: Layer>(layer: &mut L, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    if !L::ZERO_SIZE_OK && layout.size() == 0 {
        return Ok(ptr::block(ptr::dangling(layout.align()), 0));
    }
    layer.allocate(layout)
}

/// Allocates zeroed memory through `layer` (which skips the `memset` where it knows the block is
/// already zero).
#[inline]
pub fn allocate_zeroed<L: Layer>(layer: &mut L, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    if !L::ZERO_SIZE_OK && layout.size() == 0 {
        return Ok(ptr::block(ptr::dangling(layout.align()), 0));
    }
    layer.allocate_zeroed(layout)
}

/// Frees through `layer`; zero-size blocks are dangling and ignored.
///
/// # Safety
///
/// `ptr` is currently allocated from this front and `layout` fits it.
#[inline(always)]
pub unsafe fn deallocate<L: Layer>(layer: &mut L, ptr: NonNull<u8>, layout: Layout) {
    if L::ZERO_SIZE_OK || layout.size() != 0 {
        // SAFETY: a non-empty block from the layer, as the caller guarantees.
        unsafe { layer.deallocate(ptr, layout) }
    }
}

/// Resizes the block at `ptr` from `old` to `new` (size and alignment), in place where the layer
/// can and the address suits `new`'s alignment, otherwise by moving. Keeps the first
/// `min(old, new)` bytes; with `zero`, bytes past the old size read as zero. On `Err` the old
/// block is untouched.
///
/// # Safety
///
/// `ptr` is currently allocated from this front and `old` fits it.
pub unsafe fn reallocate<L: Layer>(
    layer: &mut L,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
    zero: bool,
) -> Result<NonNull<[u8]>, AllocError> {
    // Layers that handle zero sizes themselves hand out real blocks for them, which must be
    // resized and freed like any other.
    if !L::ZERO_SIZE_OK && old.size() == 0 {
        return if zero { allocate_zeroed(layer, new) } else { allocate(layer, new) };
    }
    if !L::ZERO_SIZE_OK && new.size() == 0 {
        // SAFETY: the caller's block, freed once.
        unsafe { layer.deallocate(ptr, old) };
        return Ok(ptr::block(ptr::dangling(new.align()), 0));
    }
    if let Some(resize) = L::RESIZE {
        // An address that does not suit the new alignment cannot stay where it is (the first test
        // folds away where the alignment is known not to grow, as in `GlobalAlloc::realloc`).
        if new.align() <= old.align() || ptr::is_aligned(ptr.as_ptr() as usize, new.align()) {
            // SAFETY: the caller's block with a fitting layout, aligned for `new`; new.size() > 0
            // unless the layer takes zero sizes.
            if let Ok(len) = unsafe { resize(layer, ptr, old, new) } {
                if zero && len > old.size() {
                    // SAFETY: the block is now valid for `len` bytes.
                    unsafe { ptr.as_ptr().add(old.size()).write_bytes(0, len - old.size()) };
                }
                return Ok(ptr::block(ptr, len));
            }
        }
    }
    let fresh = if zero { layer.allocate_zeroed(new)? } else { layer.allocate(new)? };
    // SAFETY: both blocks are live and disjoint; we copy the bytes both hold, then free the old.
    unsafe {
        core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), old.size().min(new.size()));
        layer.deallocate(ptr, old);
    }
    Ok(fresh)
}

/// The `GlobalAlloc` entry points over any layer, each refusing at compile time a layer that may
/// panic ([`Layer::PANICS`]): unwinding out of `GlobalAlloc` is undefined behaviour.
pub mod global {
    use super::*;

    /// Fails to compile for a layer whose methods may panic.
    #[inline(always)]
    const fn assert_no_unwind<L: Layer>() {
        const {
            assert!(
                !L::PANICS,
                "this layer may panic (a `Panic` error policy?); behind GlobalAlloc a panic would \
                 unwind out of the allocator: use `Abort` or `Count`"
            )
        }
    }

    /// `GlobalAlloc::alloc`.
    #[inline(always)]
    pub fn alloc<L: Layer>(layer: &mut L, layout: Layout) -> *mut u8 {
        assert_no_unwind::<L>();
        match allocate(layer, layout) {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }

    /// `GlobalAlloc::alloc_zeroed`.
    #[inline]
    pub fn alloc_zeroed<L: Layer>(layer: &mut L, layout: Layout) -> *mut u8 {
        assert_no_unwind::<L>();
        match allocate_zeroed(layer, layout) {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }

    /// `GlobalAlloc::dealloc`.
    ///
    /// # Safety
    ///
    /// As for `GlobalAlloc::dealloc`.
    #[inline(always)]
    pub unsafe fn dealloc<L: Layer>(layer: &mut L, ptr: *mut u8, layout: Layout) {
        assert_no_unwind::<L>();
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's caller hands back a block from `alloc` with its layout.
            unsafe { deallocate(layer, ptr, layout) }
        }
    }

    /// `GlobalAlloc::realloc`.
    ///
    /// # Safety
    ///
    /// As for `GlobalAlloc::realloc`.
    #[inline]
    pub unsafe fn realloc<L: Layer>(layer: &mut L, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        assert_no_unwind::<L>();
        // SAFETY: `layout.align()` is a power of two, and GlobalAlloc's caller promises that
        // `new_size` rounded up to it does not pass `isize::MAX`.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: GlobalAlloc's caller hands back a live block, which `alloc` never gives as null.
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        // SAFETY: GlobalAlloc's caller hands back a live block with its layout.
        match unsafe { reallocate(layer, ptr, layout, new, false) } {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }
}

/// Implements `GlobalAlloc` for a [`SharedLayer`] type and `allocator_api2::alloc::Allocator` for
/// a shared reference to it, through the fronts' common edge handling.
///
/// `shared_front!([L: Layer + Send, R: lock_api::RawMutex + Sync] Locked<L, R>);`
#[macro_export]
macro_rules! shared_front {
    ([$($generics:tt)*] $ty:ty) => {
        // SAFETY: every call goes to the shared layer through the fronts' edge handling; the
        // layer keeps `SharedLayer`'s promises for concurrent callers, and `global::*` refuses at
        // compile time a layer that may panic, so nothing unwinds out of `GlobalAlloc`.
        unsafe impl<$($generics)*> core::alloc::GlobalAlloc for $ty {
            #[inline]
            unsafe fn alloc(&self, layout: $crate::Layout) -> *mut u8 {
                $crate::front::global::alloc(&mut &*self, layout)
            }
            #[inline]
            unsafe fn alloc_zeroed(&self, layout: $crate::Layout) -> *mut u8 {
                $crate::front::global::alloc_zeroed(&mut &*self, layout)
            }
            #[inline]
            unsafe fn dealloc(&self, ptr: *mut u8, layout: $crate::Layout) {
                // SAFETY: forwarded with GlobalAlloc's guarantees.
                unsafe { $crate::front::global::dealloc(&mut &*self, ptr, layout) }
            }
            #[inline]
            unsafe fn realloc(&self, ptr: *mut u8, layout: $crate::Layout, new_size: usize) -> *mut u8 {
                // SAFETY: forwarded with GlobalAlloc's guarantees.
                unsafe { $crate::front::global::realloc(&mut &*self, ptr, layout, new_size) }
            }
        }

        // SAFETY: as above; blocks stay valid while `&$ty` is borrowed, since freeing everything
        // at once needs `&mut` (or drop).
        $crate::__allocator_impl!([$($generics)*] $ty, shared);
    };
}

/// A layer used from one thread: no lock, and the type is `!Sync`, so the compiler keeps it on
/// its thread. `&Local<L>` is an `allocator_api2::alloc::Allocator`.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<alloc_core::Local<alloc_core::compose::Counted<(), alloc_core::NoStats>>>();
/// ```
///
/// `Local<L>` is `Send` when `L` is: moving the front moves the layer and every block it owns.
#[derive(Debug)]
pub struct Local<L> {
    /// The layer. Only reached through `with`, whose callers never re-enter.
    layer: UnsafeCell<L>,
}

impl<L> Local<L> {
    /// Wraps `layer`.
    pub const fn new(layer: L) -> Self {
        Local { layer: UnsafeCell::new(layer) }
    }

    /// The layer, through exclusive access.
    pub fn get_mut(&mut self) -> &mut L {
        self.layer.get_mut()
    }

    /// Unwraps the layer.
    pub fn into_inner(self) -> L {
        self.layer.into_inner()
    }

    /// Runs `f` on the layer through a shared reference to the front.
    ///
    /// # Safety
    ///
    /// `f` must not reach this same `Local` again (no re-entrant allocation through it), so the
    /// `&mut L` it gets is the only reference to the layer while it runs; and `f` must not free
    /// blocks it does not own (no reset, no replacing the layer): other borrowers of the front
    /// may hold blocks.
    #[inline(always)]
    pub unsafe fn with<R>(&self, f: impl FnOnce(&mut L) -> R) -> R {
        // SAFETY: `Local` is `!Sync` (UnsafeCell), so no other thread holds a reference; the
        // caller promises no re-entry on this thread, so this is the only live `&mut L`.
        f(unsafe { &mut *self.layer.get() })
    }

    /// Shared access to the layer: `f` gets `&L`.
    ///
    /// # Safety
    ///
    /// `f` must not reach this same `Local` to allocate, free or resize through it (directly, or
    /// through a thread-local or anything else that leads back to it): that would make a
    /// `&mut L` while `f`'s `&L` is live. A safe closure could do exactly that, so this is
    /// `unsafe`; the safe queries below ([`Local::validate`], [`Local::owns`]) and the allocator
    /// crates' own accessors call it with closures that only read.
    ///
    /// ```compile_fail,E0133
    /// # use alloc_core::{layer::Layer, Local, AllocError, Allocator, Layout};
    /// # use core::ptr::NonNull;
    /// # struct Heap;
    /// # unsafe impl Layer for Heap {
    /// #     fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
    /// #     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
    /// # }
    /// let heap = Local::new(Heap);
    /// heap.inspect(|_shared| {
    ///     // re-entry would make `&mut Heap` while `_shared` is live: refused without `unsafe`
    ///     let _ = (&heap).allocate(Layout::new::<u64>());
    /// });
    /// ```
    #[inline]
    pub unsafe fn inspect<R>(&self, f: impl FnOnce(&L) -> R) -> R {
        // SAFETY: no `&mut L` is live: every `with` call has returned (this one runs on the same
        // thread, `Local` being `!Sync`, and `with`'s closures do not call back into the front),
        // and the caller promises `f` does not reach the front to make one.
        f(unsafe { &*self.layer.get() })
    }
}

impl<L: Layer> Local<L> {
    /// Walks the layer's structures and reports the first inconsistency.
    pub fn validate(&self) -> Result<(), Corruption>
    where
        L: Validate,
    {
        // SAFETY: `Validate::validate` of a `Layer` never calls back into a front that holds the
        // layer (the `Layer` contract).
        unsafe { self.inspect(L::validate) }
    }

    /// True when `ptr` lies in memory the layer manages.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool
    where
        L: Owns,
    {
        // SAFETY: as for `validate`.
        unsafe { self.inspect(|l| l.owns(ptr)) }
    }
}

// SAFETY: blocks come from the layer (valid, aligned, disjoint per `Layer`'s contract) or are
// dangling zero-size blocks; they stay valid until freed, or until the `Local` is reset through
// `&mut` or dropped, neither possible while `&Local` is borrowed. Layer calls never re-enter the
// front.
crate::__allocator_impl!([L: Layer] Local<L>, local);

/// The one writing of `allocator_api2`'s six `Allocator` methods for `&$ty`, each through the
/// fronts' edge handling ([`allocate`], [`deallocate`], [`reallocate`], ...) on the layer that
/// `$reach` names: `local` (`$ty` is a [`Local`]), `shared` (`$ty` is a [`SharedLayer`]), or
/// `field NAME` (`$ty` holds a [`Local`] in field `NAME`). The caller's `unsafe impl` promise is
/// that of the front `$reach` leads to.
#[doc(hidden)]
#[macro_export]
macro_rules! __allocator_impl {
    ([$($generics:tt)*] $ty:ty, $($reach:tt)+) => {
        // SAFETY: the invoker's promise (above the invocation): the front `$reach` leads to hands
        // out blocks that keep `Allocator`'s contract while `&$ty` is borrowed.
        unsafe impl<$($generics)*> $crate::Allocator for &$ty {
            #[inline(always)]
            fn allocate(&self, layout: $crate::Layout) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                $crate::__reach!($($reach)+, self, |l| $crate::front::allocate(l, layout))
            }
            #[inline]
            fn allocate_zeroed(&self, layout: $crate::Layout) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                $crate::__reach!($($reach)+, self, |l| $crate::front::allocate_zeroed(l, layout))
            }
            #[inline(always)]
            unsafe fn deallocate(&self, ptr: core::ptr::NonNull<u8>, layout: $crate::Layout) {
                // SAFETY: the caller's block and layout (this method's contract).
                $crate::__reach!($($reach)+, self, |l| unsafe { $crate::front::deallocate(l, ptr, layout) })
            }
            $crate::__allocator_resize!([$($reach)+] grow false, grow_zeroed true, shrink false);
        }
    };
}

/// `Allocator::grow`, `grow_zeroed` and `shrink` for [`__allocator_impl`]: each is the fronts'
/// [`reallocate`], zeroing the new tail or not.
#[doc(hidden)]
#[macro_export]
macro_rules! __allocator_resize {
    ([$($reach:tt)+] $method:ident $zeroed:literal $(, $more:ident $more_zeroed:literal)*) => {
        unsafe fn $method(
            &self,
            ptr: core::ptr::NonNull<u8>,
            old: $crate::Layout,
            new: $crate::Layout,
        ) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
            // SAFETY: the caller's block and layouts (this method's contract).
            $crate::__reach!($($reach)+, self, |l| unsafe { $crate::front::reallocate(l, ptr, old, new, $zeroed) })
        }
        $crate::__allocator_resize!([$($reach)+] $($more $more_zeroed),*);
    };
    ([$($reach:tt)+]) => {};
}

/// How [`__allocator_impl`] reaches the layer of `$s` (a `&&Front`) to run `$body` on it as `$l`.
#[doc(hidden)]
#[macro_export]
macro_rules! __reach {
    (local, $s:expr, |$l:ident| $body:expr) => {{
        let body = |$l: &mut _| $body;
        // SAFETY: the fronts' functions do not re-enter the `Local` (layer calls never call back
        // into a front), so the `&mut` the closure gets is the only one. Called by path, so
        // `$s` must be a `Local`: no other type's `with` can stand in for it.
        unsafe { $crate::front::Local::with(*$s, body) }
    }};
    (field $f:ident, $s:expr, |$l:ident| $body:expr) => {{
        let body = |$l: &mut _| $body;
        // SAFETY: as for `local`, on the `Local` in the field (by path: the field must be a
        // `Local`, so `forward_allocator!`, a safe macro, cannot call some other `with`).
        unsafe { $crate::front::Local::with(&$s.$f, body) }
    }};
    (shared, $s:expr, |$l:ident| $body:expr) => {{
        let $l = &mut &**$s;
        $body
    }};
}

impl<L: Layer + Validate> Validate for Local<L> {
    /// [`Local::validate`].
    fn validate(&self) -> Result<(), Corruption> {
        Local::validate(self)
    }
}

// SAFETY: the layer's own answer (its `Owns` promise), read through a shared reference.
unsafe impl<L: Layer + Owns> Owns for Local<L> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        Local::owns(self, ptr)
    }
}

impl<L: Layer + crate::Statistics> crate::Statistics for Local<L> {
    fn stats(&self) -> crate::Stats {
        // SAFETY: `Statistics::stats` of a layer only reads its counters; it does not reach a
        // front (the `Layer` contract).
        unsafe { self.inspect(|l| l.stats()) }
    }
}

// SAFETY: the layer's own answer (its `UsableSize` promise), read through a shared reference.
unsafe impl<L: Layer + crate::UsableSize> crate::UsableSize for Local<L> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: only reads the layer (the `Layer` contract: no call back into the front); the
        // caller's block and layout.
        unsafe { self.inspect(|l| l.usable_size(ptr, layout)) }
    }
}

// SAFETY: the layer's own answers (its `SizeOf` promise), read through a shared reference.
unsafe impl<L: Layer + crate::SizeOf> crate::SizeOf for Local<L> {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: as above; the caller's guarantees.
        unsafe { self.inspect(|l| l.size_of(ptr)) }
    }
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> crate::HeapError {
        // SAFETY: as above.
        unsafe { self.inspect(|l| l.misuse_at(ptr)) }
    }
}

impl<L: Layer + crate::Reset> crate::Reset for Local<L> {
    fn reset(&mut self) {
        self.get_mut().reset();
    }
}

impl<L: Layer + crate::Trim> crate::Trim for Local<L> {
    fn trim(&mut self) {
        self.get_mut().trim();
    }
}

/// An exclusive layer behind a lock policy `R` (any `lock_api::RawMutex`; [`SpinLock`] by
/// default): the bridge from [`Layer`] to [`SharedLayer`]. `Sync`, usable as
/// `#[global_allocator]` and as `allocator_api2::alloc::Allocator` through `&Locked`.
///
/// `Locked<L>` is `Sync` only when `L` is `Send`, since whichever thread holds the lock uses the
/// layer (lock_api's `Mutex` rule):
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>() {}
/// struct ThreadBound(std::rc::Rc<u8>);
/// shared_between_threads::<alloc_core::Locked<ThreadBound>>();
/// ```
///
/// Shared access ([`Locked::lock`]) gives `&L` only: statistics and queries. Exclusive
/// operations (reset, replacing the layer) need [`Locked::get_mut`], or the `unsafe`
/// [`Locked::lock_exclusive`] with its stated contract.
///
/// The allocator crates name theirs (`GlobalBump`, `GlobalSegregated`, `GlobalSpan`); as a
/// program's allocator:
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: alloc_segregated::GlobalSegregated =
///     alloc_segregated::GlobalSegregated::new(alloc_segregated::SegregatedHeap::new(alloc_core::MmapSource::new()));
/// ```
pub struct Locked<L, R = SpinLock> {
    inner: lock_api::Mutex<R, L>,
}

/// Shared access to a [`Locked`] layer: derefs to `&L` while holding the lock. It cannot give
/// `&mut L`, so it cannot reset or replace the layer while blocks are out.
pub struct LockedRef<'a, L, R: lock_api::RawMutex> {
    guard: lock_api::MutexGuard<'a, R, L>,
}

impl<L, R: lock_api::RawMutex> core::ops::Deref for LockedRef<'_, L, R> {
    type Target = L;
    fn deref(&self) -> &L {
        &self.guard
    }
}

impl<L, R: lock_api::RawMutex> Locked<L, R> {
    /// Wraps `layer`; `const` so it can initialise a `static` global allocator.
    pub const fn new(layer: L) -> Self {
        Locked { inner: lock_api::Mutex::new(layer) }
    }

    /// Locks and gives shared access to the layer (statistics, queries, validation).
    pub fn lock(&self) -> LockedRef<'_, L, R> {
        LockedRef { guard: self.inner.lock() }
    }

    /// Locks and gives exclusive access through a shared reference, for a global allocator
    /// that must be reset or tuned in place.
    ///
    /// # Safety
    ///
    /// While the guard lives, nothing may free or invalidate a block that is still in use: no
    /// block allocated from this front (by any thread) is used after a reset, and the layer is
    /// not replaced while blocks from it are live.
    pub unsafe fn lock_exclusive(&self) -> lock_api::MutexGuard<'_, R, L> {
        self.inner.lock()
    }

    /// The layer, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut L {
        self.inner.get_mut()
    }

    /// Unwraps the layer.
    pub fn into_inner(self) -> L {
        self.inner.into_inner()
    }

    /// Takes the lock and keeps it held past this call, for `pthread_atfork`'s prepare handler
    /// (a fork while another thread holds the lock would leave it held forever in the child).
    pub fn lock_for_fork(&self) {
        core::mem::forget(self.inner.lock());
    }

    /// Releases the lock [`Locked::lock_for_fork`] took.
    ///
    /// # Safety
    ///
    /// This thread took the lock with `lock_for_fork` (or is the child of the fork that
    /// followed) and has not released it since.
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: held since `lock_for_fork`, as the caller promises; no guard refers to it.
        unsafe { self.inner.force_unlock() }
    }

    /// Whether some thread holds the lock now (a snapshot: for tests of fork handlers).
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

impl<L: core::fmt::Debug, R: lock_api::RawMutex> core::fmt::Debug for Locked<L, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.inner.try_lock() {
            Some(l) => f.debug_struct("Locked").field("layer", &*l).finish(),
            None => f.write_str("Locked { <locked> }"),
        }
    }
}

/// Resizes through the lock (the layer's own in-place resize, where it has one).
///
/// # Safety
///
/// As for [`crate::layer::Resize::resize_in_place`].
unsafe fn locked_resize<L: Layer + Send, R: lock_api::RawMutex + Sync>(
    locked: &Locked<L, R>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    match L::RESIZE {
        // SAFETY: forwarded with the caller's guarantees, under the lock.
        Some(f) => unsafe { f(&mut *locked.inner.lock(), ptr, old, new) },
        None => Err(AllocError),
    }
}

// SAFETY: every call holds the lock for its whole duration, so the layer sees one caller at a
// time and keeps `Layer`'s promises; `L: Send` because the layer is used from whichever thread
// holds the lock.
unsafe impl<L: Layer + Send, R: lock_api::RawMutex + Sync> SharedLayer for Locked<L, R> {
    const ZERO_SIZE_OK: bool = L::ZERO_SIZE_OK;
    const PANICS: bool = L::PANICS;
    const RESIZE: Option<crate::layer::SharedResizeFn<Self>> = match L::RESIZE {
        Some(_) => Some(locked_resize::<L, R>),
        None => None,
    };

    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.inner.lock().allocate(layout)
    }

    #[inline]
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.inner.lock().allocate_zeroed(layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's block and layout, under the lock.
        unsafe { self.inner.lock().deallocate(ptr, layout) }
    }
}

crate::shared_front!([L: Layer + Send, R: lock_api::RawMutex + Sync] Locked<L, R>);

impl<L: crate::Reset, R: lock_api::RawMutex> crate::Reset for Locked<L, R> {
    fn reset(&mut self) {
        self.get_mut().reset();
    }
}

impl<L: crate::Trim, R: lock_api::RawMutex> crate::Trim for Locked<L, R> {
    fn trim(&mut self) {
        self.get_mut().trim();
    }
}

impl<L: crate::Statistics, R: lock_api::RawMutex> crate::Statistics for Locked<L, R> {
    fn stats(&self) -> crate::Stats {
        self.lock().stats()
    }
}

impl<L: Validate, R: lock_api::RawMutex> Validate for Locked<L, R> {
    fn validate(&self) -> Result<(), Corruption> {
        self.inner.lock().validate()
    }
}

// SAFETY: the layer's answer, under the lock.
unsafe impl<L: Owns, R: lock_api::RawMutex> Owns for Locked<L, R> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.inner.lock().owns(ptr)
    }
}

// SAFETY: the layer's answers, under the lock.
unsafe impl<L: SizeOf, R: lock_api::RawMutex> SizeOf for Locked<L, R> {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: forwarded with the caller's guarantees, under the lock.
        unsafe { self.inner.lock().size_of(ptr) }
    }
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> crate::HeapError {
        // SAFETY: forwarded with the caller's guarantees, under the lock.
        unsafe { self.inner.lock().misuse_at(ptr) }
    }
}

// SAFETY: the layer's answer, under the lock.
unsafe impl<L: UsableSize, R: lock_api::RawMutex> UsableSize for Locked<L, R> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees, under the lock.
        unsafe { self.inner.lock().usable_size(ptr, layout) }
    }
}

/// Implements `allocator_api2::alloc::Allocator` for `&Wrapper` by forwarding every call to
/// the [`Local`] front in one of its fields. Used by the allocator crates' own front types.
///
/// `forward_allocator!([S: PageSource] Bump<S> => region);`
///
/// The field must be a [`Local`]: the generated code reaches the layer through `Local`'s
/// `unsafe` access by path, so a field of another type with a method of the same name is refused.
///
/// ```compile_fail,E0308
/// struct Lookalike;
/// impl Lookalike {
///     unsafe fn with<R>(&self, f: impl FnOnce(&mut Lookalike) -> R) -> R {
///         f(&mut Lookalike)
///     }
/// }
/// struct Wrapper {
///     heap: Lookalike,
/// }
/// alloc_core::forward_allocator!([] Wrapper => heap);
/// ```
#[macro_export]
macro_rules! forward_allocator {
    ([$($generics:tt)*] $ty:ty => $field:ident) => {
        // SAFETY: every call goes to the `Local` front over the layer, which upholds the contract;
        // the wrapper frees everything only through `&mut self` or drop, neither possible while
        // `&Wrapper` is borrowed.
        $crate::__allocator_impl!([$($generics)*] $ty, field $field);
    };
}

/// A layer as the global allocator of a wasm32 module built without the `atomics` target
/// feature: such a module has exactly one thread, so no lock is needed and none is taken.
///
/// This is the one place a single-threaded layer is made `Sync`, and it only exists where the
/// platform guarantees a second thread cannot appear; everywhere else, use [`Locked`].
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub struct WasmSingleThread<L> {
    inner: Local<L>,
}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl<L> WasmSingleThread<L> {
    /// Wraps `layer`; `const` for a `static`.
    pub const fn new(layer: L) -> Self {
        WasmSingleThread { inner: Local::new(layer) }
    }
}

// SAFETY: wasm32 without the atomics feature cannot share memory between threads (there is no
// shared memory and no thread spawn), so every access comes from the one thread.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<L> Sync for WasmSingleThread<L> {}

// SAFETY: forwarded to the layer on the only thread through the fronts' edge handling, which
// refuses a panicking layer at compile time; layer calls never re-enter. Not `#[inline]`: in a
// wasm module, code size matters more than a call.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<L: Layer> core::alloc::GlobalAlloc for WasmSingleThread<L> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: no re-entry (see above).
        unsafe { self.inner.with(|l| global::alloc(l, layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's caller hands back a block from `alloc` with its layout.
        unsafe { self.inner.with(|l| global::dealloc(l, ptr, layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's caller hands back a live block with its layout.
        unsafe { self.inner.with(|l| global::realloc(l, ptr, layout, new_size)) }
    }
}
