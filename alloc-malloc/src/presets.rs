//! The presets: one static allocator each, behind a common [`Backend`] interface that works
//! from a pointer alone (C's `free(ptr)` gives no size).

use alloc_core::compose::Header;
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Layer, Owns, SizeOf, UsableSize};
use alloc_core::{front, Abort, DefaultSource, Layout, Locked, SpinLock};
use alloc_pool_lockfree::Pool;
use alloc_segregated::SegregatedHeap;
use alloc_span::SpanHeap;
use core::ptr::NonNull;

/// What the C entry points need of an allocator.
pub trait Backend: Sync {
    /// A block of `layout`, zeroed with `zero`; `None` when memory runs out.
    fn alloc(&self, layout: Layout, zero: bool) -> Option<NonNull<u8>>;
    /// The layout the live block at `ptr` was allocated with; `None` when `ptr` is not one (the
    /// allocator may already have reported and aborted).
    ///
    /// # Safety
    ///
    /// `ptr` is non-null.
    unsafe fn layout_of(&self, ptr: NonNull<u8>) -> Option<Layout>;
    /// Frees the block at `ptr`, allocated with `layout`.
    ///
    /// # Safety
    ///
    /// `ptr` is live with `layout`, as `layout_of` said.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout);
    /// Moves or resizes the block to `new`, keeping its bytes; `None` leaves it untouched.
    ///
    /// # Safety
    ///
    /// `ptr` is live with `old`.
    unsafe fn realloc(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Option<NonNull<u8>>;
    /// Bytes usable at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is live with `layout`.
    unsafe fn usable(&self, ptr: NonNull<u8>, layout: Layout) -> usize;
    /// What is wrong with freeing `ptr`, where `layout_of` found no live block: a double free,
    /// an interior pointer, a pointer this allocator never gave out, a smashed canary.
    fn misuse(&self, ptr: NonNull<u8>) -> HeapError;
    /// Takes every lock (before `fork`).
    fn lock_for_fork(&self);
    /// Releases them (after `fork`, in parent and child).
    ///
    /// # Safety
    ///
    /// After `lock_for_fork` on this thread.
    unsafe fn unlock_after_fork(&self);
}

/// The pool: thread-safe without a lock.
impl Backend for Pool {
    fn alloc(&self, layout: Layout, zero: bool) -> Option<NonNull<u8>> {
        let mut layer = self;
        let r = if zero { front::allocate_zeroed(&mut layer, layout) } else { front::allocate(&mut layer, layout) };
        r.ok().map(NonNull::cast)
    }
    unsafe fn layout_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: the pool's `size_of` takes any address (it finds `ptr` in its segment map or
        // the span heap's index first), so the free path needs no `owns` before it.
        unsafe { self.size_of(ptr) }
    }
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        let mut layer = self;
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { front::deallocate(&mut layer, ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Option<NonNull<u8>> {
        let mut layer = self;
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { front::reallocate(&mut layer, ptr, old, new, false) }.ok().map(NonNull::cast)
    }
    unsafe fn usable(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.usable_size(ptr, layout) }
    }
    fn misuse(&self, ptr: NonNull<u8>) -> HeapError {
        // SAFETY: any address: the pool checks its segment map and the span heap its index
        // before reading near `ptr`.
        unsafe { self.misuse_at(ptr) }
    }
    fn lock_for_fork(&self) {
        Pool::lock_for_fork(self);
    }
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Pool::unlock_after_fork(self) }
    }
}

/// A layer behind a spin lock, any layer that can find a block's size from its address. A C
/// program may pass any address: the layer is asked whether it owns it before `SizeOf` reads
/// anything near it.
impl<L: Layer + Owns + SizeOf + UsableSize + Send> Backend for Locked<L, SpinLock> {
    fn alloc(&self, layout: Layout, zero: bool) -> Option<NonNull<u8>> {
        // SAFETY: the guard is used to allocate only; nothing is reset or replaced.
        let mut l = unsafe { self.lock_exclusive() };
        let r = if zero { front::allocate_zeroed(&mut *l, layout) } else { front::allocate(&mut *l, layout) };
        r.ok().map(NonNull::cast)
    }
    unsafe fn layout_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        let l = self.lock();
        // SAFETY: asked only for an address the layer owns (`SizeOf`'s precondition).
        l.owns(ptr).then(|| unsafe { l.size_of(ptr) }).flatten()
    }
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the guard frees the caller's block only.
        let mut l = unsafe { self.lock_exclusive() };
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { front::deallocate(&mut *l, ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Option<NonNull<u8>> {
        // SAFETY: the guard resizes the caller's block only.
        let mut l = unsafe { self.lock_exclusive() };
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { front::reallocate(&mut *l, ptr, old, new, false) }.ok().map(NonNull::cast)
    }
    unsafe fn usable(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.lock().usable_size(ptr, layout) }
    }
    fn misuse(&self, ptr: NonNull<u8>) -> HeapError {
        let l = self.lock();
        if !l.owns(ptr) {
            return HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize);
        }
        // SAFETY: an address the layer owns.
        unsafe { l.misuse_at(ptr) }
    }
    fn lock_for_fork(&self) {
        Locked::lock_for_fork(self);
    }
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Locked::unlock_after_fork(self) }
    }
}

/// `general` and `pool`: the lock-free size-class pool with per-thread caches, over the span
/// heap for large and over-aligned blocks.
pub static POOL: Pool = Pool::new();

/// `segregated`: alloc-segregated's bins behind a spin lock, a 16-byte header giving each block
/// its size.
pub static SEGREGATED: Locked<SegregatedWithSizes, SpinLock> =
    Locked::new(Header::new(SegregatedHeap::new(DefaultSource::new())));

/// The segregated bins with a size header.
pub type SegregatedWithSizes = Header<SegregatedHeap<DefaultSource>, Abort, false>;

/// `span`: the page-span heap behind a spin lock (a page per block at least: for programs of
/// large buffers).
pub static SPAN: Locked<SpanHeap<DefaultSource>, SpinLock> = Locked::new(SpanHeap::new(DefaultSource::new()));

/// Reports a bad free, and aborts.
pub fn report(err: HeapError) {
    Abort.report(err);
}
