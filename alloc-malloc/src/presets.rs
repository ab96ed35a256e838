//! The presets: one static allocator each, behind a common [`Backend`] interface that works
//! from a pointer alone (C's `free(ptr)` gives no size).

use alloc_core::compose::Header;
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Owns, SharedLayer, SizeOf, UsableSize};
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
    /// A unique address for `malloc(0)` that no access may touch, where the allocator gives one
    /// (`None`: `malloc(0)` gets a one-byte block).
    fn alloc_zero_sized(&self) -> Option<NonNull<u8>> {
        None
    }
    /// Whether a sized or aligned free (`free_sized`, C++'s sized `operator delete`) is checked
    /// against the block ([`Backend::free_sized`]); otherwise it is freed as `free` does.
    fn checks_sized_frees(&self) -> bool {
        false
    }
    /// A sized free, checked: a size (or alignment) that is not the block's is reported. Called
    /// only where [`Backend::checks_sized_frees`] is true.
    ///
    /// # Safety
    ///
    /// `ptr` is non-null; any address (it is checked).
    unsafe fn free_sized(&self, ptr: NonNull<u8>, size: usize, align: Option<usize>) {
        // SAFETY: the caller's pointer, looked up before it is freed.
        match unsafe { self.layout_of(ptr) } {
            Some(l) if l.size() == size && align.is_none_or(|a| a == l.align()) => {
                // SAFETY: a live block with its own layout.
                unsafe { self.free(ptr, l) }
            }
            Some(_) => report(HeapError::new(ErrorKind::SizedMismatch, ptr.as_ptr() as usize)),
            None => report(self.misuse(ptr)),
        }
    }
}

/// Taking and releasing every lock an allocator has around `fork`, so the child does not
/// inherit a lock some other thread of the parent held.
pub trait ForkLocks {
    /// Takes every lock (before `fork`).
    fn lock_for_fork(&self);
    /// Releases them (after `fork`, in parent and child).
    ///
    /// # Safety
    ///
    /// After `lock_for_fork` on this thread.
    unsafe fn unlock_after_fork(&self);
}

impl ForkLocks for Pool {
    fn lock_for_fork(&self) {
        Pool::lock_for_fork(self);
    }
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Pool::unlock_after_fork(self) }
    }
}

impl<L: Send, R: lock_api::RawMutex + Sync> ForkLocks for Locked<L, R> {
    fn lock_for_fork(&self) {
        Locked::lock_for_fork(self);
    }
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Locked::unlock_after_fork(self) }
    }
}

/// Every shared layer that can find a block's size from its address serves C: the pool, any
/// layer behind [`Locked`], a composition of alloc-core's combinators, a user's own layer. A C
/// program may pass any address: the layer is asked whether it owns it before `SizeOf` reads
/// anything near it.
impl<T: SharedLayer + Owns + SizeOf + UsableSize + ForkLocks> Backend for T {
    fn alloc(&self, layout: Layout, zero: bool) -> Option<NonNull<u8>> {
        let mut layer = self;
        let r = if zero { front::allocate_zeroed(&mut layer, layout) } else { front::allocate(&mut layer, layout) };
        r.ok().map(NonNull::cast)
    }
    unsafe fn layout_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: asked only for an address the layer owns (`SizeOf`'s precondition).
        self.owns(ptr).then(|| unsafe { self.size_of(ptr) }).flatten()
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
        if !self.owns(ptr) {
            return HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize);
        }
        // SAFETY: an address the layer owns.
        unsafe { self.misuse_at(ptr) }
    }
    fn lock_for_fork(&self) {
        ForkLocks::lock_for_fork(self);
    }
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ForkLocks::unlock_after_fork(self) }
    }
}

/// A preset: the name `ALLOC_MALLOC_PRESET` gives it, and its allocator.
pub struct Preset {
    /// The value of `ALLOC_MALLOC_PRESET` that picks it.
    pub name: &'static str,
    /// The allocator.
    pub backend: &'static (dyn Backend + 'static),
    /// Which direct path `malloc` and `free` may take past the `dyn` call, when no trace is
    /// recorded.
    pub direct: Direct,
}

/// A direct path of the C entry points, for the presets whose speed is the point.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Direct {
    /// Every call through [`Backend`].
    No,
    /// Straight into the `general` pool's fast paths.
    Pool,
    /// Straight into the hardened preset's checks.
    Hardened,
}

/// Every preset, one line each; the first is the default. Serving another allocator through
/// the C socket is one more line here (and a `static` of it): any [`SharedLayer`] with
/// [`Owns`], [`SizeOf`] and [`UsableSize`] is a [`Backend`], for instance a layer of your own
/// behind `Locked`, or one composed from `alloc_core::compose`
/// (`static MINE: Locked<Header<MyLayer>> = Locked::new(Header::new(MyLayer::new()));`).
///
/// Not public ([`names`] gives the names): a public table would make every allocator it names
/// public too, so that other crates could reach them through it, and a public static is reached
/// through the GOT, one instruction and one load more on every `malloc` and `free`.
pub(crate) static PRESETS: [Preset; 5] = [
    Preset { name: "general", backend: &POOL, direct: Direct::Pool },
    Preset { name: "pool", backend: &POOL, direct: Direct::Pool },
    Preset { name: "segregated", backend: &SEGREGATED, direct: Direct::No },
    Preset { name: "hardened", backend: &crate::hardened::Hardened, direct: Direct::Hardened },
    Preset { name: "span", backend: &SPAN, direct: Direct::No },
];

/// The presets' names, in the table's order (the first is the default).
pub fn names() -> [&'static str; PRESETS.len()] {
    let mut out = [""; PRESETS.len()];
    for (o, p) in out.iter_mut().zip(&PRESETS) {
        *o = p.name;
    }
    out
}

/// `general` and `pool`: the lock-free size-class pool with per-thread caches, over the span
/// heap for large and over-aligned blocks.
pub(crate) static POOL: Pool = Pool::new();

/// `general` and `pool` while a trace is recorded: the same pool type, but a pool of its own,
/// reached through [`Backend`] alone. `malloc` and `free` try `POOL`'s fast paths before they
/// look at the preset (a thread has a heap of `POOL` only under `general` or `pool`, so under
/// any other preset those paths find none and fall through); they skip the trace, so a traced
/// run must never give `POOL` a heap.
pub(crate) static POOL_TRACED: Pool = Pool::new();

/// The preset picked in place of `general` or `pool` when a trace is recorded.
pub(crate) static TRACED: Preset = Preset { name: "general", backend: &POOL_TRACED, direct: Direct::No };

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
