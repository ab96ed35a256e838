//! Fronts: how a layer meets its users. Both fronts answer zero-size requests themselves, zero
//! memory for `allocate_zeroed`, and realloc by resizing in place where the layer can, else by
//! moving, so every allocator behaves the same at its edges.
//!
//! - [`Local`]: one thread, no lock, `!Sync`; `allocator_api2::alloc::Allocator` for `&Local`.
//! - [`Locked`]: a lock policy (default [`SpinLock`]); `GlobalAlloc` and `Allocator`.
//!
//! A single-threaded layer never becomes `Sync` by an `unsafe impl` hoping no second thread
//! exists: it goes behind [`Locked`], or (wasm32 without threads) behind a documented wrapper.

use crate::layer::{Layer, Resize};
use crate::sync::SpinLock;
use crate::{ptr, AllocError, Allocator, Layout};
use core::alloc::GlobalAlloc;
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

/// Allocates zeroed memory through `layer`.
#[inline]
pub fn allocate_zeroed<L: Layer>(layer: &mut L, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    let block = allocate(layer, layout)?;
    // SAFETY: the block was just allocated and is valid for its whole length.
    unsafe { block.cast::<u8>().as_ptr().write_bytes(0, block.len()) };
    Ok(block)
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

/// Resizes the block at `ptr` from `old` to `new`, in place where the layer can and the address
/// suits `new`'s alignment, otherwise by moving. Keeps the first `min(old, new)` bytes; with
/// `zero`, bytes past the old size read as zero. On `Err` the old block is untouched.
///
/// # Safety
///
/// `ptr` is currently allocated from this front and `old` fits it.
pub unsafe fn reallocate<L: Resize>(
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
    if ptr::is_aligned(ptr.as_ptr() as usize, new.align()) {
        // SAFETY: the caller's block with a fitting layout; new.size() > 0 unless the layer
        // takes zero sizes.
        if let Ok(len) = unsafe { layer.resize_in_place(ptr, old, new.size()) } {
            if zero && len > old.size() {
                // SAFETY: the block is now valid for `len` bytes.
                unsafe { ptr.as_ptr().add(old.size()).write_bytes(0, len - old.size()) };
            }
            return Ok(ptr::block(ptr, len));
        }
    }
    let fresh = if zero { allocate_zeroed(layer, new)? } else { layer.allocate(new)? };
    // SAFETY: both blocks are live and disjoint; we copy the bytes both hold, then free the old.
    unsafe {
        core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), old.size().min(new.size()));
        layer.deallocate(ptr, old);
    }
    Ok(fresh)
}

/// A layer used from one thread: no lock, and the type is `!Sync`, so the compiler keeps it on
/// its thread. `&Local<L>` is an `allocator_api2::alloc::Allocator`.
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
    /// `&mut L` it gets is the only reference to the layer while it runs.
    #[inline(always)]
    pub unsafe fn with<R>(&self, f: impl FnOnce(&mut L) -> R) -> R {
        // SAFETY: `Local` is `!Sync` (UnsafeCell), so no other thread holds a reference; the
        // caller promises no re-entry on this thread, so this is the only live `&mut L`.
        f(unsafe { &mut *self.layer.get() })
    }
}

// SAFETY: blocks come from the layer (valid, aligned, disjoint per `Layer`'s contract) or are
// dangling zero-size blocks; they stay valid until freed, or until the `Local` is reset through
// `&mut` or dropped, neither possible while `&Local` is borrowed. Layer calls never re-enter the
// front.
unsafe impl<L: Resize> Allocator for &Local<L> {
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: `allocate` does not re-enter this front.
        unsafe { self.with(|l| allocate(l, layout)) }
    }

    #[inline]
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: as above.
        unsafe { self.with(|l| allocate_zeroed(l, layout)) }
    }

    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's block and layout; no re-entry.
        unsafe { self.with(|l| deallocate(l, ptr, layout)) }
    }

    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout; no re-entry.
        unsafe { self.with(|l| reallocate(l, ptr, old, new, false)) }
    }

    unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout; no re-entry.
        unsafe { self.with(|l| reallocate(l, ptr, old, new, true)) }
    }

    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout; no re-entry.
        unsafe { self.with(|l| reallocate(l, ptr, old, new, false)) }
    }
}

/// A layer behind a lock policy `R` (any `lock_api::RawMutex`; [`SpinLock`] by default): `Sync`,
/// usable as `#[global_allocator]` and as `allocator_api2::alloc::Allocator` through `&Locked`.
///
/// Any layer with [`Resize`] goes behind it; the allocator crates name theirs (`GlobalBump`,
/// `GlobalSegregated`). As a program's allocator:
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: alloc_segregated::GlobalSegregated =
///     alloc_segregated::GlobalSegregated::new(alloc_segregated::SegregatedHeap::new(alloc_core::MmapSource::new()));
/// ```
///
/// The crate-level example puts a small layer behind `Locked` and uses it through `&Locked`.
pub struct Locked<L, R = SpinLock> {
    inner: lock_api::Mutex<R, L>,
}

impl<L, R: lock_api::RawMutex> Locked<L, R> {
    /// Wraps `layer`; `const` so it can initialise a `static` global allocator.
    pub const fn new(layer: L) -> Self {
        Locked { inner: lock_api::Mutex::new(layer) }
    }

    /// Locks and gives access to the layer (statistics, reset, tuning).
    pub fn lock(&self) -> lock_api::MutexGuard<'_, R, L> {
        self.inner.lock()
    }

    /// The layer, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut L {
        self.inner.get_mut()
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

// SAFETY: every call holds the lock for its whole duration, so the layer sees one caller at a
// time; blocks satisfy `Layer`'s contract and the fronts' zero-size rule. Layers never panic on
// allocation paths (errors become null), so nothing unwinds out of `GlobalAlloc`.
unsafe impl<L: Resize + Send, R: lock_api::RawMutex + Sync> GlobalAlloc for Locked<L, R> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match allocate(&mut *self.inner.lock(), layout) {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match allocate_zeroed(&mut *self.inner.lock(), layout) {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's caller hands back a block from `alloc` with its layout.
            unsafe { deallocate(&mut *self.inner.lock(), ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let Some(ptr) = NonNull::new(ptr) else {
            return core::ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's caller hands back a live block with its layout.
        match unsafe { reallocate(&mut *self.inner.lock(), ptr, layout, new, false) } {
            Ok(b) => b.cast().as_ptr(),
            Err(_) => core::ptr::null_mut(),
        }
    }
}

// SAFETY: as for `GlobalAlloc` above; blocks stay valid while `&Locked` is borrowed.
unsafe impl<L: Resize + Send, R: lock_api::RawMutex + Sync> Allocator for &Locked<L, R> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        allocate(&mut *self.inner.lock(), layout)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        allocate_zeroed(&mut *self.inner.lock(), layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's block and layout.
        unsafe { deallocate(&mut *self.inner.lock(), ptr, layout) }
    }

    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout.
        unsafe { reallocate(&mut *self.inner.lock(), ptr, old, new, false) }
    }

    unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout.
        unsafe { reallocate(&mut *self.inner.lock(), ptr, old, new, true) }
    }

    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's block and layout.
        unsafe { reallocate(&mut *self.inner.lock(), ptr, old, new, false) }
    }
}

/// Implements `allocator_api2::alloc::Allocator` for `&Wrapper` by forwarding every call to
/// the [`Local`] front in one of its fields. Used by the allocator crates' own front types.
///
/// `forward_allocator!([S: PageSource] Bump<S> => region);`
#[macro_export]
macro_rules! forward_allocator {
    ([$($generics:tt)*] $ty:ty => $field:ident) => {
        // SAFETY: every call goes to the `Local` front over the layer, which upholds the contract;
        // the wrapper frees everything only through `&mut self` or drop, neither possible while
        // `&Wrapper` is borrowed.
        unsafe impl<$($generics)*> $crate::Allocator for &$ty {
            #[inline(always)]
            fn allocate(&self, layout: $crate::Layout) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                (&self.$field).allocate(layout)
            }
            fn allocate_zeroed(&self, layout: $crate::Layout) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                (&self.$field).allocate_zeroed(layout)
            }
            #[inline(always)]
            unsafe fn deallocate(&self, ptr: core::ptr::NonNull<u8>, layout: $crate::Layout) {
                // SAFETY: forwarded with the caller's guarantees.
                unsafe { (&self.$field).deallocate(ptr, layout) }
            }
            unsafe fn grow(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old: $crate::Layout,
                new: $crate::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                // SAFETY: forwarded with the caller's guarantees.
                unsafe { (&self.$field).grow(ptr, old, new) }
            }
            unsafe fn grow_zeroed(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old: $crate::Layout,
                new: $crate::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                // SAFETY: forwarded with the caller's guarantees.
                unsafe { (&self.$field).grow_zeroed(ptr, old, new) }
            }
            unsafe fn shrink(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old: $crate::Layout,
                new: $crate::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::AllocError> {
                // SAFETY: forwarded with the caller's guarantees.
                unsafe { (&self.$field).shrink(ptr, old, new) }
            }
        }
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

// SAFETY: forwarded to the `Local` front on the only thread; layer calls never re-enter. Not
// `#[inline]`: in a wasm module, code size matters more than a call, and `realloc` reuses these.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<L: Resize> GlobalAlloc for WasmSingleThread<L> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        (&self.inner).allocate(layout).map_or(core::ptr::null_mut(), |b| b.cast().as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's caller hands back a block from `alloc` with its layout.
            unsafe { (&self.inner).deallocate(p, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(p), Ok(new)) = (NonNull::new(ptr), Layout::from_size_align(new_size, layout.align())) else {
            return core::ptr::null_mut();
        };
        if layout.size() != 0 && new_size != 0 {
            // SAFETY: a live block with its layout; no re-entry.
            if unsafe { self.inner.with(|l| l.resize_in_place(p, layout, new_size)) }.is_ok() {
                return ptr;
            }
        }
        // SAFETY: GlobalAlloc's contract for the new block; both blocks are live and disjoint
        // while the prefix is copied, then the old one is freed once.
        unsafe {
            let q = self.alloc(new);
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            q
        }
    }
}
