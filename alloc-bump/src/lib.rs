#![doc = include_str!("../README.md")]
#![no_std]

mod chunk;
mod region;

pub use region::{BumpConfig, BumpRegion, BumpStats, Checkpoint, MAX_CHUNK, MIN_CHUNK};

use alloc_core::front::{self, Local};
use alloc_core::layer::Reset;
use alloc_core::source::PageSource;
use alloc_core::stats::{Counting, NoStats, Stats, StatsPolicy};
use alloc_core::{AllocError, Layout, Locked, SpinLock};

/// A bump arena for one thread: `alloc` values into it, use `&Bump` as an
/// `allocator_api2::alloc::Allocator`, and free everything at once with [`Bump::reset`] or
/// at the end of a [`Bump::scope`]. `!Sync` by construction; see [`GlobalBump`] for threads.
///
/// Values allocated with [`Bump::alloc`] are never dropped (like bumpalo): use it for data
/// without destructors, or drop them yourself.
///
/// `!Sync` (its `Local` front): one thread at a time, `Send` to move it.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>(_: &T) {}
/// shared_between_threads(&alloc_bump::Bump::new());
/// ```
pub struct Bump<S: PageSource = BumpSource, C: StatsPolicy = NoStats> {
    region: Local<BumpRegion<S, C>>,
}

impl Bump {
    /// An empty arena over the OS page source; maps nothing until the first allocation.
    pub const fn new() -> Self {
        Bump::with_source(BumpSource::new())
    }
}

impl Bump<BumpSource, Counting> {
    /// An empty arena that also counts live bytes and blocks and their peaks ([`Bump::stats`]);
    /// a few instructions more per allocation than [`Bump::new`].
    pub const fn with_stats() -> Self {
        Bump::with_source(BumpSource::new())
    }
}

impl Default for Bump {
    fn default() -> Self {
        Bump::new()
    }
}

impl<S: PageSource, C: StatsPolicy> Bump<S, C> {
    /// An empty arena over `source` (a [`alloc_core::FixedSource`] for `no_std`, a
    /// [`alloc_core::Limited`] one to cap its memory).
    pub const fn with_source(source: S) -> Self {
        Bump { region: Local::new(BumpRegion::new(source)) }
    }

    /// Runs `f` on the region; `f` must not allocate from this arena again.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut BumpRegion<S, C>) -> R) -> R {
        // SAFETY: every caller passes a closure that only calls region methods, which never
        // call back into this `Bump`.
        unsafe { self.region.with(f) }
    }

    /// Moves `value` into the arena and returns a reference to it, or `Err` when memory runs out.
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call returns a fresh block disjoint from every other; the arena pattern"
    )]
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, AllocError> {
        let p = self.with(|r| front::allocate(r, Layout::new::<T>()))?.cast::<T>();
        // SAFETY: a fresh block sized and aligned for T, valid until reset (which needs &mut self,
        // so not while this borrow lives); written before the reference is made.
        unsafe {
            p.as_ptr().write(value);
            Ok(&mut *p.as_ptr())
        }
    }

    /// Moves `value` into the arena. Panics when memory runs out (use `try_alloc` to handle it).
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call returns a fresh block disjoint from every other; the arena pattern"
    )]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        match self.try_alloc(value) {
            Ok(r) => r,
            Err(_) => out_of_memory(Layout::new::<T>()),
        }
    }

    /// Copies `src` into the arena.
    #[allow(
        clippy::mut_from_ref,
        reason = "each call returns a fresh block disjoint from every other; the arena pattern"
    )]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        let layout = Layout::for_value(src);
        let p = match self.with(|r| front::allocate(r, layout)) {
            Ok(p) => p.cast::<T>(),
            Err(_) => out_of_memory(layout),
        };
        // SAFETY: a fresh block for `src.len()` values of T, disjoint from `src`.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            core::slice::from_raw_parts_mut(p.as_ptr(), src.len())
        }
    }

    /// Copies `s` into the arena.
    #[allow(
        clippy::mut_from_ref,
        reason = "each call returns a fresh block disjoint from every other; the arena pattern"
    )]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: the bytes were copied from a valid str.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// Frees everything, keeping the newest chunk mapped for reuse. Needs `&mut self`, so no
    /// block borrowed from the arena can outlive it:
    ///
    /// ```compile_fail,E0502
    /// let mut bump = alloc_bump::Bump::new();
    /// let mut v = allocator_api2::vec::Vec::new_in(&bump);
    /// v.push(1u32);
    /// bump.reset(); // error: `bump` is still borrowed by `v`
    /// v.push(2);
    /// ```
    ///
    /// ```compile_fail,E0502
    /// let mut bump = alloc_bump::Bump::new();
    /// let x = bump.alloc(41u64);
    /// bump.reset(); // error: `x` still borrows the arena
    /// *x += 1;
    /// ```
    pub fn reset(&mut self) {
        self.region.get_mut().reset();
    }

    /// Runs `f` with this arena and frees everything `f` allocated when it returns. Nothing
    /// allocated inside can escape: the result type cannot borrow from the arena. `f` gets
    /// `&Bump`: it can allocate, not reset or nest a scope (those need `&mut`):
    ///
    /// ```compile_fail,E0596
    /// let mut bump = alloc_bump::Bump::new();
    /// bump.scope(|b| b.reset()); // error: `b` is a shared reference
    /// ```
    ///
    /// ```
    /// let mut bump = alloc_bump::Bump::new();
    /// let kept = bump.alloc(1u64) as *const u64;
    /// let sum = bump.scope(|b| (0..1000u64).map(|i| *b.alloc(i)).sum::<u64>());
    /// assert_eq!(sum, 499_500);
    /// assert_eq!(bump.bump_stats().allocated, 8); // only the value from before the scope
    /// # let _ = kept;
    /// ```
    pub fn scope<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let cp = self.region.get_mut().checkpoint();
        let result = f(self);
        // SAFETY: cp is from this region, taken just now; `f`'s borrows have ended and R cannot
        // hold one (f works for any lifetime of its argument), so nothing allocated in the scope
        // is reachable.
        unsafe { self.region.get_mut().rewind(cp) };
        result
    }

    /// A checkpoint to [`Bump::rewind`] to.
    pub fn checkpoint(&self) -> Checkpoint {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.checkpoint()) }
    }

    /// Frees everything allocated since `cp`.
    ///
    /// # Safety
    ///
    /// - `cp` came from this arena and no reset or rewind to an earlier point happened since;
    /// - nothing allocated after `cp` is used afterwards (prefer [`Bump::scope`], which proves it).
    pub unsafe fn rewind(&self, cp: Checkpoint) {
        // SAFETY: forwarded with the caller's guarantees.
        self.with(|r| unsafe { r.rewind(cp) })
    }

    /// Bytes handed out, chunk capacity, overhead.
    pub fn bump_stats(&self) -> BumpStats {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.bump_stats()) }
    }

    /// True when `ptr` lies in one of the arena's chunks.
    pub fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        self.region.owns(ptr)
    }

    /// Walks the region's chunks and checks every invariant ([`alloc_core::Validate`]).
    pub fn validate(&self) -> Result<(), alloc_core::Corruption> {
        self.region.validate()
    }

    /// The region itself (its source, its counters).
    pub fn region(&mut self) -> &mut BumpRegion<S, C> {
        self.region.get_mut()
    }
}

impl<S: PageSource> Bump<S, Counting> {
    /// Live bytes and blocks, peak, mapped and returned bytes.
    pub fn stats(&self) -> Stats {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.counters().get()) }
    }
}

#[cold]
#[inline(never)]
fn out_of_memory(layout: Layout) -> ! {
    panic!("alloc-bump: out of memory allocating {} bytes aligned to {}", layout.size(), layout.align())
}

alloc_core::forward_allocator!([S: PageSource, C: StatsPolicy] Bump<S, C> => region);

impl<S: PageSource, C: StatsPolicy> core::fmt::Debug for Bump<S, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bump").field("stats", &self.bump_stats()).finish()
    }
}

/// A bump region behind a spin lock: `Sync`, usable as `#[global_allocator]` for programs that
/// allocate, exit, and never need memory back (build tools, short-lived CLIs).
///
/// ```
/// use alloc_bump::GlobalBump;
/// static HEAP: GlobalBump = GlobalBump::new(alloc_bump::BumpRegion::new(alloc_bump::BumpSource::new()));
/// // #[global_allocator] would make it the program's allocator; here it is used directly.
/// let v = allocator_api2::vec::Vec::<u32, _>::with_capacity_in(10, &HEAP);
/// assert!(v.capacity() >= 10);
/// ```
pub type GlobalBump<S = BumpSource, C = NoStats> = Locked<BumpRegion<S, C>, SpinLock>;

/// Where [`Bump::new`] gets its chunks. On native targets, a span heap over the OS
/// (`alloc_span::SpanSource`): chunks a reset frees and dedicated chunks of large blocks go back
/// to it and are handed out again without a system call or a page fault, instead of being
/// unmapped and mapped afresh. On wasm32, `memory.grow` directly.
#[cfg(not(target_arch = "wasm32"))]
pub type BumpSource = alloc_span::SpanSource;
/// Where [`Bump::new`] gets its chunks: `memory.grow` on wasm32.
#[cfg(target_arch = "wasm32")]
pub type BumpSource = alloc_core::DefaultSource;

impl<S: PageSource, C: StatsPolicy> alloc_core::Validate for Bump<S, C> {
    /// [`Bump::validate`].
    fn validate(&self) -> Result<(), alloc_core::Corruption> {
        Bump::validate(self)
    }
}

// SAFETY: [`Bump::owns`]: true exactly for addresses in the memory the front's layer manages
// (its chunks, runs or pages), so a caller that routes frees by it frees into the right heap.
unsafe impl<S: PageSource, C: StatsPolicy> alloc_core::Owns for Bump<S, C> {
    fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        Bump::owns(self, ptr)
    }
}

impl<S: PageSource> alloc_core::Statistics for Bump<S, Counting> {
    /// [`Bump::stats`].
    fn stats(&self) -> alloc_core::Stats {
        Bump::stats(self)
    }
}

impl<S: PageSource, C: StatsPolicy> alloc_core::Reset for Bump<S, C> {
    /// [`Bump::reset`].
    fn reset(&mut self) {
        Bump::reset(self);
    }
}

// SAFETY: the region's answer (the size asked for, which the block holds).
unsafe impl<S: PageSource, C: StatsPolicy> alloc_core::UsableSize for Bump<S, C> {
    unsafe fn usable_size(&self, ptr: core::ptr::NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { alloc_core::UsableSize::usable_size(&self.region, ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// The front's `validate` is the region's: a chunk header broken through the region is
    /// named by the front. Debug shows the statistics.
    #[test]
    fn validate_and_debug_reach_the_region() {
        let mut bump = Bump::new();
        bump.alloc(7u64);
        assert_eq!(bump.validate(), Ok(()));
        bump.region().corrupt_current_chunk_for_test(1);
        let got = bump.validate().err().map(|c| c.what);
        bump.region().corrupt_current_chunk_for_test(usize::MAX);
        assert_eq!(got, Some("limit is not the current chunk's end"));
        assert_eq!(bump.validate(), Ok(()));
        // The trait's `validate` (what generic code and the conformance suite call) is the same.
        bump.region().corrupt_current_chunk_for_test(1);
        let got = alloc_core::Validate::validate(&bump).err().map(|c| c.what);
        bump.region().corrupt_current_chunk_for_test(usize::MAX);
        assert_eq!(got, Some("limit is not the current chunk's end"));
        let text = std::format!("{bump:?}");
        assert!(text.starts_with("Bump { stats: BumpStats {") && text.contains("allocated: 8"), "{text}");
    }
}
