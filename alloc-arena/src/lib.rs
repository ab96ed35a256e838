//! A user arena after Go's runtime arenas: allocate many values with one lifetime, free them all
//! at once, run their `Drop`, and make a use after free fault instead of corrupting memory.
//!
//! ```
//! use alloc_arena::Arena;
//! let arena = Arena::new();
//! let name = arena.alloc_str("parser");
//! let nodes = arena.alloc_slice_fill_with(3, |i| vec![i; i]); // Vec needs Drop: it runs
//! let mut map = hashbrown::HashMap::new_in(&arena);          // collections live in it too
//! map.insert(&*name, nodes.len());
//! assert_eq!(map[name], 3);
//! drop(map);
//! arena.free(); // drops the three Vecs, quarantines the chunks
//! ```
//!
//! # Design
//!
//! - **Chunks and bump allocation.** An arena is an `alloc_bump::BumpRegion` (the chunk code is
//!   shared, not copied) configured for fixed 1 MiB chunks from a [`ChunkPool`]. A block larger
//!   than a quarter of a chunk gets a dedicated run, as Go sends such objects to the general
//!   heap, so a new chunk never abandons more than 25 % of the old one.
//! - **Drop.** Values whose type needs `Drop` carry a 24-byte header linking them into a list
//!   through the arena, newest first; [`Arena::reset`], [`Arena::scope`] and freeing the arena
//!   drop them in reverse order of allocation. Types without `Drop` get no header (the choice is
//!   made at compile time), so bumpalo-style use costs nothing extra. Go's answer, separate ends
//!   of a chunk for values with and without pointers, serves its garbage collector; a list needs
//!   no second finger and keeps values in allocation order. A panicking `Drop` still lets every
//!   other value drop, exactly once; see `drops.rs`. The list erases each value's type, so the
//!   methods that run `Drop` take only `T: Send + 'static`: the arena may drop the value on
//!   another thread, after every borrow of the caller's has ended. Values that borrow (a graph of
//!   nodes pointing at each other) go through [`Arena::alloc_no_drop`], which takes any `T` and
//!   never runs its `Drop`, as bumpalo does.
//! - **Quarantine.** Freeing an arena gives its chunks back to the pool, which releases their
//!   memory to the OS and makes them inaccessible (`PROT_NONE`), keeping them out of use until
//!   the quarantine budget is exceeded ([`PoolConfig::quarantine`]); then the oldest are recycled.
//!   No garbage collector can prove that no raw pointer still points into a freed chunk, so the
//!   budget is what bounds the address space this costs.
//! - **Threads.** [`Arena`] is `Send` and cheap: each thread takes its own from a shared, `Sync`
//!   [`ChunkPool`] ([`Arena::in_pool`]; [`Arena::new`] uses the process-wide pool).
//!   [`SharedArena`] is one `Sync` arena behind a spin lock, for values that many threads add to.
//!
//! # Which values cross threads, and why that is sound
//!
//! - `Arena` is `Send` (derived: its drop list is an atomic pointer, its region a `Local` over a
//!   `Send` page source) and `!Sync` (the `Local` front). Moving it moves every stored value to
//!   the new thread, which drops them: only `Send` values are registered for `Drop`. Values
//!   stored with `alloc_no_drop` are never touched again once the arena moves (every reference
//!   to them borrowed the arena, and moving it ends those borrows).
//! - `SharedArena` is `Send` and `Sync` (derived: a `Locked` region and an atomic drop list).
//!   Any thread may register a value and any thread may drop the arena: registered values are
//!   `Send`. A reference handed out by `alloc` goes only to the thread that asked for it.
//! - `PoolSource` is `Send` by an `unsafe impl` (its `Cell`s hold an address compared at unmap
//!   and a flag, never shared); `ChunkPool` is `Send` and `Sync` by `unsafe impl`s whose runs
//!   are owned by the pool and reached only under its mutex.
//!
//! ```compile_fail,E0277
//! fn sync<T: Sync>(_: &T) {}
//! sync(&alloc_arena::Arena::new()); // error: an `Arena` is for one thread at a time
//! ```
//!
//! ```compile_fail,E0277
//! let arena = alloc_arena::SharedArena::new();
//! arena.alloc(std::rc::Rc::new(1)); // error: dropped by whichever thread drops the arena
//! ```
//!
//! ```compile_fail,E0277
//! let arena = alloc_arena::Arena::new();
//! arena.alloc_slice_fill_with(2, |_| std::rc::Rc::new(1)); // error: `Rc` is not `Send`
//! ```
//!
//! ```compile_fail,E0277
//! let arena = alloc_arena::Arena::new();
//! arena.alloc_with(|| std::rc::Rc::new(1)); // error: `Rc` is not `Send`
//! ```
//!
//! ```compile_fail,E0597
//! let arena = alloc_arena::Arena::new();
//! {
//!     let local = String::from("short-lived");
//!     arena.alloc_slice_fill_with(1, |_| vec![local.as_str()]); // error: `local` dies first
//! }
//! ```
//!
//! ```compile_fail,E0597
//! let arena = alloc_arena::SharedArena::new();
//! {
//!     let local = 7u8;
//!     arena.try_alloc(vec![&local]).unwrap(); // error: `local` dies before the arena
//! }
//! ```
//!
//! # When a use after free is detected
//!
//! Safe code cannot use a value past [`Arena::reset`] or [`Arena::free`] at all (the borrow
//! checker refuses; see the compile-fail examples on those methods). For raw pointers, a read or
//! write into a freed arena faults (SIGSEGV) when the byte lies in a chunk or dedicated run that
//! is in quarantine. It does **not** fault when:
//!
//! - the byte lies in the arena's newest chunk, which goes warm to the next arena (Go reuses the
//!   partly used chunk the same way), unless [`PoolConfig::quarantine_newest`] is set;
//! - the chunk has left quarantine because the budget was exceeded, and is in use again;
//! - the arena was only [`reset`](Arena::reset) or rewound, not freed: it keeps its chunks to
//!   refill them (that is what a reset is for), and the individual `deallocate` of the newest
//!   block through the `Allocator` interface gives its bytes straight back.

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod drops;
mod pool;

pub use pool::{ChunkPool, PoolConfig, PoolRef, PoolSource, PoolStats};

use alloc_bump::{BumpConfig, BumpRegion};
use alloc_core::stats::{Counting, NoStats, Stats, StatsPolicy};
use alloc_core::{AllocError, Allocator, Layout, Local, Locked, SpinLock};
use core::ptr::NonNull;
use drops::{DropList, Mark};

/// The region an arena allocates from.
type Region<P, C> = BumpRegion<PoolSource<P>, C>;

/// Chunks of the pool's size, dedicated runs above a quarter of one, chunks kept on reset.
fn region_config(chunk: usize) -> BumpConfig {
    BumpConfig { first_chunk: chunk, max_chunk: chunk, dedicated_above: chunk / 4, keep_chunks: true }
}

/// What an arena holds, and what its pool holds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes handed out since the last reset, alignment padding and drop headers included.
    pub allocated: usize,
    /// Bytes of chunks and dedicated runs the arena holds.
    pub capacity: usize,
    /// Bytes the arena holds but has not handed out: chunk headers, the unused tails of full
    /// chunks, and chunks kept empty by a reset.
    pub wasted: usize,
    /// Chunks and dedicated runs the arena holds.
    pub chunks: usize,
    /// Bytes in the pool's quarantine (from every arena of the pool).
    pub quarantined: usize,
    /// Bytes the pool has given back to the OS by quarantining, over its life.
    pub released: usize,
}

/// A point to go back to with [`Arena::rewind`].
#[derive(Copy, Clone, Debug)]
pub struct Checkpoint {
    region: alloc_bump::Checkpoint,
    drops: Mark,
}

#[cold]
#[inline(never)]
fn out_of_memory(layout: Layout) -> ! {
    panic!("alloc-arena: out of memory allocating {} bytes aligned to {}", layout.size(), layout.align())
}

/// The typed allocation methods, the same for [`Arena`] and [`SharedArena`]: each needs
/// `self.block(layout)` and `self.drops`.
///
/// The methods that run `Drop` take `T: Send + 'static`. The drop list erases `T`, so the type
/// system no longer sees what a stored value borrows or which thread may drop it: a value that
/// borrowed a local would be dropped after the local died (its `Drop` writing into freed stack or
/// heap memory), and an `Rc` would be dropped on whichever thread drops the arena. `'static` and
/// `Send` are what the erased list can still vouch for. Values that borrow (graph nodes pointing
/// at other arena values, `&str` fields) go through `alloc_no_drop`, which takes any `T` and never
/// runs its `Drop`, as bumpalo does; leaking is safe, a late `Drop` is not.
macro_rules! typed_api {
    () => {
        /// Moves `value` into the arena, or `Err` when memory runs out. Its `Drop` runs when the
        /// arena is reset or freed, possibly on another thread, hence `T: Send + 'static` (see
        /// [`Arena::alloc_no_drop`] for values that borrow).
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn try_alloc<T: Send + 'static>(&self, value: T) -> Result<&mut T, AllocError> {
            let block = self.block(drops::one_layout::<T>().0)?;
            // SAFETY: a fresh block laid out for T and its header; the value is written at once,
            // and the reference lives no longer than `&self`, while reset and free need `self`
            // exclusively. T is 'static and Send, so dropping it later, on any thread, is sound.
            unsafe {
                let p = self.drops.register_one::<T>(block);
                p.as_ptr().write(value);
                Ok(&mut *p.as_ptr())
            }
        }

        /// Moves `value` into the arena. Panics when memory runs out. Its `Drop` runs when the
        /// arena is reset or freed.
        ///
        /// A value that borrows something shorter-lived than `'static` is refused: the arena
        /// would run its `Drop` after the borrow ended.
        ///
        /// ```compile_fail,E0597
        /// struct Scribble<'a>(&'a mut Vec<u64>);
        /// impl Drop for Scribble<'_> {
        ///     fn drop(&mut self) { self.0.push(1) }
        /// }
        /// let mut arena = alloc_arena::Arena::new();
        /// {
        ///     let mut v = Vec::new();
        ///     arena.alloc(Scribble(&mut v)); // error: `v` does not live long enough
        /// }
        /// arena.reset();
        /// ```
        ///
        /// So is a value that must stay on its thread (the arena may be dropped on another):
        ///
        /// ```compile_fail,E0277
        /// let arena = alloc_arena::Arena::new();
        /// arena.alloc(std::rc::Rc::new(1)); // error: `Rc<i32>` cannot be sent between threads
        /// ```
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc<T: Send + 'static>(&self, value: T) -> &mut T {
            match self.try_alloc(value) {
                Ok(r) => r,
                Err(_) => out_of_memory(drops::one_layout::<T>().0),
            }
        }

        /// Moves the value `f` makes into the arena. `f` may allocate from the arena itself: it
        /// runs before the block is taken, with no borrow of the region held.
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc_with<T: Send + 'static>(&self, f: impl FnOnce() -> T) -> &mut T {
            self.alloc(f())
        }

        /// Moves `value` into the arena, or `Err` when memory runs out; its `Drop` never runs
        /// (the memory is freed with the arena, as bumpalo does). Takes any `T`: values that
        /// borrow from the arena itself, such as graph nodes.
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn try_alloc_no_drop<T>(&self, value: T) -> Result<&mut T, AllocError> {
            let p = self.block(Layout::new::<T>())?.cast::<T>();
            // SAFETY: a fresh block laid out for T, written at once; nothing registers it for
            // `Drop`, so its borrows and thread need outlive only the returned reference.
            unsafe {
                p.as_ptr().write(value);
                Ok(&mut *p.as_ptr())
            }
        }

        /// Moves `value` into the arena; its `Drop` never runs. Panics when memory runs out.
        ///
        /// ```
        /// use std::cell::Cell;
        /// struct Node<'a> { value: u32, next: Cell<Option<&'a Node<'a>>> }
        /// let arena = alloc_arena::Arena::new();
        /// let a = arena.alloc_no_drop(Node { value: 1, next: Cell::new(None) });
        /// let b = arena.alloc_no_drop(Node { value: 2, next: Cell::new(Some(a)) });
        /// a.next.set(Some(b)); // a cycle through the arena
        /// assert_eq!(a.next.get().unwrap().next.get().unwrap().value, 1);
        /// ```
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
            match self.try_alloc_no_drop(value) {
                Ok(r) => r,
                Err(_) => out_of_memory(Layout::new::<T>()),
            }
        }

        /// Copies `src` into the arena.
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
            let layout = Layout::for_value(src);
            let p = match self.block(layout) {
                Ok(p) => p.cast::<T>(),
                Err(_) => out_of_memory(layout),
            };
            // SAFETY: a fresh block for `src.len()` values of T, disjoint from `src`; Copy types
            // have no Drop to register.
            unsafe {
                core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
                core::slice::from_raw_parts_mut(p.as_ptr(), src.len())
            }
        }

        /// A slice of `len` values made by `f(0)`, `f(1)`, ...; their `Drop` runs when the arena is
        /// reset or freed (if `f` panics, the values made so far are dropped then too). `f` may
        /// allocate from the arena: it runs between element writes, with no borrow of the region
        /// held, and what it registers for `Drop` lies after this slice's entry (dropped first).
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc_slice_fill_with<T: Send + 'static>(&self, len: usize, mut f: impl FnMut(usize) -> T) -> &mut [T] {
            let Some((layout, _)) = drops::many_layout::<T>(len) else { out_of_memory(Layout::new::<T>()) };
            let block = match self.block(layout) {
                Ok(p) => p,
                Err(_) => out_of_memory(layout),
            };
            // SAFETY: a fresh block laid out for the header and `len` Ts. Element i is written
            // before it is counted, so the registry only ever drops initialised elements, and
            // the slice is made once all are written. T is 'static and Send.
            unsafe {
                let (first, entry) = self.drops.register_many::<T>(block, len);
                for i in 0..len {
                    first.as_ptr().add(i).write(f(i));
                    drops::grew(entry);
                }
                core::slice::from_raw_parts_mut(first.as_ptr(), len)
            }
        }

        /// Copies `s` into the arena.
        #[allow(clippy::mut_from_ref, reason = "each call returns a fresh block disjoint from every other")]
        pub fn alloc_str(&self, s: &str) -> &mut str {
            let bytes = self.alloc_slice_copy(s.as_bytes());
            // SAFETY: the bytes were copied from a valid str.
            unsafe { core::str::from_utf8_unchecked_mut(bytes) }
        }
    };
}

/// An arena for one thread at a time (`Send`, not `Sync`): allocate through `&self`, free
/// everything with [`Arena::reset`], [`Arena::scope`] or [`Arena::free`] (or by dropping it).
///
/// `P` names the chunk pool ([`PoolRef`]: the global one by default, a `&'static` or `Arc` one
/// shared by threads, or a pool of its own); `C` is the statistics policy ([`Counting`] for
/// live bytes and peaks).
pub struct Arena<P: PoolRef = &'static ChunkPool, C: StatsPolicy = NoStats> {
    drops: DropList<false>,
    region: Local<Region<P, C>>,
}

impl Arena {
    /// An empty arena over the process-wide pool; takes no chunk until the first allocation.
    pub fn new() -> Self {
        Arena::in_pool(ChunkPool::global())
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

impl<P: PoolRef> Arena<P> {
    /// An empty arena taking its chunks from `pool`.
    pub fn in_pool(pool: P) -> Self {
        Arena::with_stats_policy(pool)
    }
}

impl<P: PoolRef, C: StatsPolicy> Arena<P, C> {
    /// An empty arena over `pool` with statistics policy `C` (`Arena::<_, Counting>::with_stats_policy`).
    pub fn with_stats_policy(pool: P) -> Self {
        let chunk = pool.pool().chunk_size();
        Arena {
            drops: DropList::new(),
            region: Local::new(BumpRegion::with_config(PoolSource::new(pool), region_config(chunk))),
        }
    }

    #[inline(always)]
    fn block(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        (&self.region).allocate(layout).map(NonNull::cast)
    }

    typed_api!();

    /// Drops every value (newest first) and frees every block, keeping the chunks to refill.
    /// Needs `&mut self`, so nothing borrowed from the arena survives it:
    ///
    /// ```compile_fail,E0502
    /// let mut arena = alloc_arena::Arena::new();
    /// let x = arena.alloc(41u64);
    /// arena.reset(); // error: `x` still borrows the arena
    /// *x += 1;
    /// ```
    pub fn reset(&mut self) {
        // SAFETY: `&mut self`: no value of the arena is borrowed; the chunks are still mapped.
        unsafe { self.drops.run_until(drops::empty()) };
        reset_region(self.region.get_mut());
    }

    /// Frees the arena: drops every value and quarantines its chunks (the same as dropping it,
    /// said out loud). It takes the arena by value, so neither a second free nor a use after it
    /// compiles:
    ///
    /// ```compile_fail,E0505
    /// let arena = alloc_arena::Arena::new();
    /// let x = arena.alloc(1u8);
    /// arena.free(); // error: cannot move out of `arena` while `x` borrows it
    /// assert_eq!(*x, 1);
    /// ```
    ///
    /// ```compile_fail,E0382
    /// let arena = alloc_arena::Arena::new();
    /// arena.free();
    /// arena.free(); // error: use of moved value (Go panics with "arena double free" here)
    /// ```
    pub fn free(self) {}

    /// Runs `f` with this arena, then drops and frees everything `f` allocated. Nothing allocated
    /// inside can escape: the result type cannot borrow from the arena. `f` gets `&Arena`, so it
    /// can allocate but not reset, free or open a nested scope (those need `&mut`):
    ///
    /// ```compile_fail,E0596
    /// let mut arena = alloc_arena::Arena::new();
    /// arena.scope(|a| a.scope(|b| *b.alloc(1u8))); // error: `a` is a shared reference
    /// ```
    ///
    /// ```
    /// let mut arena = alloc_arena::Arena::new();
    /// let total = arena.scope(|a| (0..1000u64).map(|i| *a.alloc(i)).sum::<u64>());
    /// assert_eq!(total, 499_500);
    /// assert_eq!(arena.stats().allocated, 0);
    /// ```
    pub fn scope<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let cp = self.checkpoint();
        let result = f(self);
        // SAFETY: the checkpoint was taken just now on this arena; `f`'s borrows have ended and
        // R cannot hold one, so nothing allocated in the scope is reachable.
        unsafe { self.rewind(cp) };
        result
    }

    /// Where the arena stands now, to [`Arena::rewind`] to.
    pub fn checkpoint(&self) -> Checkpoint {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        Checkpoint { region: unsafe { self.region.inspect(|r| r.checkpoint()) }, drops: self.drops.mark() }
    }

    /// Drops and frees everything allocated since `cp`.
    ///
    /// # Safety
    ///
    /// `cp` came from this arena, no reset or rewind to an earlier point happened since, and
    /// nothing allocated after `cp` is used afterwards (prefer [`Arena::scope`], which proves it).
    pub unsafe fn rewind(&mut self, cp: Checkpoint) {
        // SAFETY: as the caller promises.
        unsafe {
            self.drops.run_until(cp.drops);
            let r = self.region.get_mut();
            r.source().set_freeing(true);
            r.rewind(cp.region);
            r.source().set_freeing(false);
        }
    }

    /// What the arena holds and what its pool holds.
    pub fn stats(&self) -> ArenaStats {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(region_stats) }
    }

    /// What the chunk pool holds now. (No reference to the pool is handed out: an arena that owns
    /// its pool keeps it inside the region that every allocation borrows exclusively.)
    pub fn pool_stats(&self) -> PoolStats {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.source().pool().stats()) }
    }

    /// True when `ptr` lies in one of the arena's chunks or dedicated runs.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.region.owns(ptr)
    }

    /// Trims the chunk pool ([`ChunkPool::trim`]): chunks waiting on its lists go back to its
    /// span heap, and that heap's free pages to the OS. The arena's own chunks and blocks stay.
    /// Returns the bytes given back to the span heap.
    pub fn trim_pool(&mut self) -> usize {
        self.region.get_mut().source().pool().trim()
    }

    /// Walks the arena's chunks and checks every invariant, then its chunk pool's books
    /// ([`ChunkPool::validate`]).
    pub fn validate(&self) -> Result<(), alloc_core::Corruption> {
        self.region.validate()?;
        // SAFETY: the closure only reads the pool; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.source().pool().validate()) }
    }
}

impl<P: PoolRef> Arena<P, Counting> {
    /// Live bytes and blocks, peaks, mapped bytes.
    pub fn counters(&self) -> Stats {
        // SAFETY: the closure only reads the region; it cannot reach this front.
        unsafe { self.region.inspect(|r| r.counters().get()) }
    }
}

fn region_stats<P: PoolRef, C: StatsPolicy>(r: &Region<P, C>) -> ArenaStats {
    let b = r.bump_stats();
    let p = r.source().pool().stats();
    ArenaStats {
        allocated: b.allocated,
        capacity: b.capacity,
        wasted: b.overhead(),
        chunks: b.chunks,
        quarantined: p.quarantined,
        released: p.released,
    }
}

/// Frees every block: dedicated runs go into quarantine, chunks are kept for reuse.
fn reset_region<P: PoolRef, C: StatsPolicy>(region: &mut Region<P, C>) {
    region.source().set_freeing(true);
    alloc_core::layer::Reset::reset(region);
    region.source().set_freeing(false);
}

/// Drops the values, then lets the region give its runs back to quarantine, its newest chunk
/// warm.
fn free_region<P: PoolRef, C: StatsPolicy, const SHARED: bool>(
    drops: &mut DropList<SHARED>,
    region: &mut Region<P, C>,
) {
    region.source().set_freeing(true);
    region.source().keep_warm(region.current_chunk());
    // SAFETY: exclusive access: nothing borrowed from the arena is alive; the chunks are mapped
    // until the region is dropped right after.
    unsafe { drops.run_until(drops::empty()) };
}

impl<P: PoolRef, C: StatsPolicy> Drop for Arena<P, C> {
    fn drop(&mut self) {
        free_region(&mut self.drops, self.region.get_mut());
    }
}

alloc_core::forward_allocator!([P: PoolRef, C: StatsPolicy] Arena<P, C> => region);

impl<P: PoolRef, C: StatsPolicy> core::fmt::Debug for Arena<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena").field("stats", &self.stats()).finish()
    }
}

/// One arena for many threads (`Sync`): allocation takes a spin lock, registering a value for
/// `Drop` is a lock-free push. For mostly-private allocation, prefer an [`Arena`] per thread
/// over a shared [`ChunkPool`].
///
/// ```
/// let arena = alloc_arena::SharedArena::new();
/// let names: Vec<&str> = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..4).map(|i| {
///         let a = &arena;
///         s.spawn(move || &*a.alloc_str(&format!("worker {i}")))
///     }).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert_eq!(names[3], "worker 3");
/// ```
pub struct SharedArena<P: PoolRef + Send = &'static ChunkPool, C: StatsPolicy + Send = NoStats> {
    drops: DropList<true>,
    region: Locked<Region<P, C>, SpinLock>,
}

impl SharedArena {
    /// An empty shared arena over the process-wide pool.
    pub fn new() -> Self {
        SharedArena::in_pool(ChunkPool::global())
    }
}

impl Default for SharedArena {
    fn default() -> Self {
        SharedArena::new()
    }
}

impl<P: PoolRef + Send> SharedArena<P> {
    /// An empty shared arena taking its chunks from `pool`.
    pub fn in_pool(pool: P) -> Self {
        SharedArena::with_stats_policy(pool)
    }
}

impl<P: PoolRef + Send, C: StatsPolicy + Send> SharedArena<P, C> {
    /// An empty shared arena over `pool` with statistics policy `C`.
    pub fn with_stats_policy(pool: P) -> Self {
        let chunk = pool.pool().chunk_size();
        SharedArena {
            drops: DropList::new(),
            region: Locked::new(BumpRegion::with_config(PoolSource::new(pool), region_config(chunk))),
        }
    }

    #[inline(always)]
    fn block(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        (&self.region).allocate(layout).map(NonNull::cast)
    }

    typed_api!();

    /// Drops every value and frees every block, keeping the chunks (see [`Arena::reset`]).
    pub fn reset(&mut self) {
        // SAFETY: `&mut self`: nothing borrowed from the arena is alive.
        unsafe { self.drops.run_until(drops::empty()) };
        reset_region(self.region.get_mut());
    }

    /// Frees the arena (see [`Arena::free`]).
    pub fn free(self) {}

    /// What the arena holds and what its pool holds.
    pub fn stats(&self) -> ArenaStats {
        region_stats(&self.region.lock())
    }

    /// Walks the arena's chunks and checks every invariant, then its chunk pool's books.
    pub fn validate(&self) -> Result<(), alloc_core::Corruption> {
        let region = self.region.lock();
        alloc_core::Validate::validate(&*region)?;
        region.source().pool().validate()
    }

    /// True when `ptr` lies in one of the arena's chunks or dedicated runs.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool {
        alloc_core::Owns::owns(&*self.region.lock(), ptr)
    }
}

impl<P: PoolRef + Send> SharedArena<P, Counting> {
    /// Live bytes and blocks, peaks, mapped bytes.
    pub fn counters(&self) -> Stats {
        self.region.lock().counters().get()
    }
}

impl<P: PoolRef + Send, C: StatsPolicy + Send> Drop for SharedArena<P, C> {
    fn drop(&mut self) {
        free_region(&mut self.drops, self.region.get_mut());
    }
}

// SAFETY: every call goes to the locked front over the region, which upholds the contract; the
// arena frees everything only through `&mut self` or drop, neither possible while `&SharedArena`
// is borrowed.
unsafe impl<P: PoolRef + Send, C: StatsPolicy + Send> Allocator for &SharedArena<P, C> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (&self.region).allocate(layout)
    }
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (&self.region).allocate_zeroed(layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (&self.region).deallocate(ptr, layout) }
    }
    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (&self.region).grow(ptr, old, new) }
    }
    unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (&self.region).grow_zeroed(ptr, old, new) }
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (&self.region).shrink(ptr, old, new) }
    }
}

impl<P: PoolRef + Send, C: StatsPolicy + Send> core::fmt::Debug for SharedArena<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedArena").field("stats", &self.stats()).finish()
    }
}

impl<P: PoolRef, C: StatsPolicy> alloc_core::Validate for Arena<P, C> {
    /// [`Arena::validate`].
    fn validate(&self) -> Result<(), alloc_core::Corruption> {
        Arena::validate(self)
    }
}

// SAFETY: [`Arena::owns`]: true exactly for addresses in the memory the front's layer manages
// (its chunks, runs or pages), so a caller that routes frees by it frees into the right heap.
unsafe impl<P: PoolRef, C: StatsPolicy> alloc_core::Owns for Arena<P, C> {
    fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        Arena::owns(self, ptr)
    }
}

impl<P: PoolRef + Send, C: StatsPolicy + Send> alloc_core::Validate for SharedArena<P, C> {
    /// [`SharedArena::validate`].
    fn validate(&self) -> Result<(), alloc_core::Corruption> {
        SharedArena::validate(self)
    }
}

// SAFETY: [`SharedArena::owns`]: true exactly for addresses in the memory the front's layer manages
// (its chunks, runs or pages), so a caller that routes frees by it frees into the right heap.
unsafe impl<P: PoolRef + Send, C: StatsPolicy + Send> alloc_core::Owns for SharedArena<P, C> {
    fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        SharedArena::owns(self, ptr)
    }
}

impl<P: PoolRef> alloc_core::Statistics for Arena<P, Counting> {
    /// [`Arena::counters`].
    fn stats(&self) -> alloc_core::Stats {
        Arena::counters(self)
    }
}

impl<P: PoolRef + Send> alloc_core::Statistics for SharedArena<P, Counting> {
    /// [`SharedArena::counters`].
    fn stats(&self) -> alloc_core::Stats {
        SharedArena::counters(self)
    }
}

impl<P: PoolRef, C: StatsPolicy> alloc_core::Reset for Arena<P, C> {
    /// [`Arena::reset`].
    fn reset(&mut self) {
        Arena::reset(self);
    }
}

impl<P: PoolRef, C: StatsPolicy> alloc_core::Trim for Arena<P, C> {
    /// [`Arena::trim_pool`]: the arena's own chunks and blocks stay.
    fn trim(&mut self) {
        self.trim_pool();
    }
}

impl<P: PoolRef + Send, C: StatsPolicy + Send> alloc_core::Reset for SharedArena<P, C> {
    /// [`SharedArena::reset`].
    fn reset(&mut self) {
        SharedArena::reset(self);
    }
}

// SAFETY: the region's answer (the size asked for, which the block holds).
unsafe impl<P: PoolRef, C: StatsPolicy> alloc_core::UsableSize for Arena<P, C> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { alloc_core::UsableSize::usable_size(&self.region, ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_walks_into_the_pool_for_both_fronts() {
        let pool = ChunkPool::new(alloc_core::MmapSource::new());
        let arena = Arena::in_pool(&pool);
        let shared = SharedArena::in_pool(&pool);
        arena.alloc(7u64);
        shared.alloc(7u64);
        assert_eq!((arena.validate(), shared.validate()), (Ok(()), Ok(())));
        // Books of the pool that no longer match its span heap: both fronts must say so.
        pool.corrupt_mapped_for_test(4096);
        let (a, s) = (arena.validate(), shared.validate());
        pool.corrupt_mapped_for_test(4096usize.wrapping_neg());
        assert!(a.is_err_and(|c| c.what.contains("mapped")), "{a:?}");
        assert!(s.is_err_and(|c| c.what.contains("mapped")), "{s:?}");
        assert_eq!(arena.validate(), Ok(()));
    }

    #[test]
    fn debug_shows_the_statistics() {
        let arena = Arena::new();
        arena.alloc([1u8; 100]);
        let text = format!("{arena:?}");
        assert!(text.starts_with("Arena { stats: ArenaStats {") && text.contains("allocated: 100"), "{text}");
    }
}
