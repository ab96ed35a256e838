//! The chunk pool: where arenas get their chunks and where freed chunks wait in quarantine.
//!
//! Arenas take fixed-size chunks ([`PoolConfig::chunk`]) and, for blocks too large to share a
//! chunk, dedicated runs sized to them. When an arena is freed, every run it held comes back here:
//!
//! - the arena's newest chunk (partly used, its memory warm) goes onto the **reuse list**, handed
//!   to the next arena as it is, unless [`PoolConfig::quarantine_newest`] is set;
//! - every other run is **quarantined**: its memory is given back to the OS (`MADV_DONTNEED`) and
//!   its pages made inaccessible (`PROT_NONE`), so a raw pointer kept into the freed arena faults
//!   on its next read or write instead of reading someone else's data;
//! - when the quarantine holds more than [`PoolConfig::quarantine`] bytes, the oldest runs leave
//!   it: chunks are made accessible again and go to the **ready list** (their pages still given
//!   back, so they read as zero and cost no memory until touched); dedicated runs are unmapped.
//!
//! Runs come from a span heap (`alloc_span::SpanHeap`) over the pool's page source, so taking a
//! chunk or a dedicated run, and giving back a dedicated block freed on its own while its arena
//! lives, cost no system call. Records of the lists live in the pool (a `Vec`/`VecDeque` under a mutex), never inside the
//! chunks, so quarantined pages are never touched. Returning a run that is already in the pool is
//! reported as a double free with its address.

use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::source::{Access, Decommit, PageSource, Protect};
use alloc_core::{Abort, Layer, Layout, MmapSource};
use alloc_span::SpanHeap;
use core::cell::Cell;
use core::ptr::NonNull;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How a [`ChunkPool`] sizes chunks and how long freed memory stays in quarantine.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes per chunk (a multiple of the page size). Blocks larger than a quarter of it get a
    /// dedicated run, which caps the space a full chunk wastes at 25 %.
    pub chunk: usize,
    /// Bytes of address space freed arenas may hold in quarantine (their memory is already
    /// given back to the OS); past it, the oldest runs are recycled.
    pub quarantine: usize,
    /// Also quarantine the newest chunk of a freed arena instead of handing it to the next
    /// arena warm: every use after free faults (until recycled), at the price of a fresh chunk
    /// (page faults) for every arena.
    pub quarantine_newest: bool,
}

impl PoolConfig {
    /// 1 MiB chunks, 256 MiB of quarantine, the newest chunk reused.
    pub const DEFAULT: PoolConfig = PoolConfig { chunk: 1 << 20, quarantine: 256 << 20, quarantine_newest: false };
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig::DEFAULT
    }
}

/// What a pool holds now and has done.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes taken from the span heap and not yet given back (in arenas, quarantine or the lists).
    pub mapped: usize,
    /// Bytes in quarantine (inaccessible, memory given back).
    pub quarantined: usize,
    /// Bytes of chunks on the ready list (accessible, memory given back).
    pub ready: usize,
    /// Bytes of chunks on the reuse list (accessible and warm).
    pub reusable: usize,
    /// Bytes given back to the OS by quarantining, over the pool's life.
    pub released: usize,
    /// Runs that left quarantine, over the pool's life.
    pub recycled: usize,
}

struct Lists<S: PageSource + Decommit> {
    /// Where every run comes from and finally goes back to: a span heap, so chunks and
    /// dedicated runs reuse freed pages without a system call.
    heap: SpanHeap<S>,
    /// Oldest first: (base, size).
    quarantine: VecDeque<(NonNull<u8>, usize)>,
    ready: Vec<NonNull<u8>>,
    reuse: Vec<NonNull<u8>>,
    stats: PoolStats,
}

impl<S: PageSource + Decommit> Lists<S> {
    fn page(&self) -> usize {
        self.heap.source().page_size()
    }

    /// The layout of a run of `size` bytes; `None` when no run can be that large.
    fn run_layout(&self, size: usize) -> Option<Layout> {
        Layout::from_size_align(size, self.page()).ok()
    }

    /// Gives a run back to the span heap.
    ///
    /// # Safety
    ///
    /// The run came from `heap` with that size, is accessible, and is not used afterwards.
    unsafe fn release(&mut self, p: NonNull<u8>, size: usize) {
        // A run that was handed out has a valid layout.
        let Some(layout) = self.run_layout(size) else { return };
        self.stats.mapped -= size;
        // SAFETY: as the caller promises.
        unsafe { self.heap.deallocate(p, layout) };
    }
}

/// What becomes of a run given back to the pool.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// An arena's newest chunk: onto the reuse list, warm.
    Warm,
    /// Freed with its arena (free, reset, rewind): into quarantine.
    Quarantine,
    /// A dedicated block freed on its own while its arena lives: straight back to the heap.
    Direct,
}

/// A thread-safe source of arena chunks with a quarantine for freed ones (see the module docs).
///
/// One pool can serve many arenas on many threads ([`crate::Arena::in_pool`]); the process-wide
/// [`ChunkPool::global`] serves [`crate::Arena::new`]. Runs come from a span heap
/// (`alloc_span`) over the page source `S`.
///
/// ```
/// use alloc_arena::{Arena, ChunkPool, PoolConfig};
/// static POOL: ChunkPool = ChunkPool::with_config(alloc_core::MmapSource::new(), PoolConfig::DEFAULT);
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         s.spawn(move || {
///             let arena = Arena::in_pool(&POOL);
///             let v = arena.alloc_slice_fill_with(1000, |i| i as u64 * t);
///             assert_eq!(v[999], 999 * t);
///         });
///     }
/// });
/// assert!(POOL.stats().mapped >= 1 << 20);
/// ```
pub struct ChunkPool<S: PageSource + Protect + Decommit = MmapSource, E: ErrorPolicy = Abort> {
    config: PoolConfig,
    lists: Mutex<Lists<S>>,
    errors: E,
}

// SAFETY: the pointers in the lists are runs the pool owns exclusively (no arena holds them any
// more); every access to the lists and the heap goes through the mutex. The error policy is
// shared only when it is `Sync`.
unsafe impl<S: PageSource + Protect + Decommit + Send, E: ErrorPolicy + Sync> Sync for ChunkPool<S, E> {}
// SAFETY: as above; moving the pool moves the ownership of its runs.
unsafe impl<S: PageSource + Protect + Decommit + Send, E: ErrorPolicy + Send> Send for ChunkPool<S, E> {}

static GLOBAL: ChunkPool = ChunkPool::new(MmapSource::new());

impl ChunkPool {
    /// The process-wide pool over the OS that [`crate::Arena::new`] uses.
    pub fn global() -> &'static ChunkPool {
        &GLOBAL
    }
}

impl<S: PageSource + Protect + Decommit> ChunkPool<S> {
    /// A pool over `source` with [`PoolConfig::DEFAULT`], reporting misuse by aborting.
    pub const fn new(source: S) -> Self {
        ChunkPool::with_config(source, PoolConfig::DEFAULT)
    }

    /// A pool over `source` with `config`, reporting misuse by aborting.
    pub const fn with_config(source: S, config: PoolConfig) -> Self {
        ChunkPool::with_policy(source, config, Abort)
    }
}

impl<S: PageSource + Protect + Decommit, E: ErrorPolicy> ChunkPool<S, E> {
    /// A pool over `source` with `config`, reporting misuse through `errors`.
    pub const fn with_policy(source: S, config: PoolConfig, errors: E) -> Self {
        ChunkPool {
            config,
            lists: Mutex::new(Lists {
                heap: SpanHeap::new(source),
                quarantine: VecDeque::new(),
                ready: Vec::new(),
                reuse: Vec::new(),
                stats: PoolStats { mapped: 0, quarantined: 0, ready: 0, reusable: 0, released: 0, recycled: 0 },
            }),
            errors,
        }
    }

    /// The configuration.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// The error policy (a [`alloc_core::Count`] one tells what was detected).
    pub fn errors(&self) -> &E {
        &self.errors
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PoolStats {
        self.lists().stats
    }

    /// Checks the pool's own books: the bytes it says it took from its span heap are the bytes
    /// the heap has in use, the quarantine's and the lists' counters add up, no run waits on two
    /// lists, and the span heap validates.
    pub fn validate(&self) -> Result<(), alloc_core::Corruption> {
        let bad = |what, addr| Err(alloc_core::Corruption { what, addr });
        // Before the lock: the chunk size reads the page size under it.
        let chunk = self.chunk_size();
        let l = self.lists();
        let heap = l.heap.span_stats();
        if l.stats.mapped != heap.in_use {
            return bad("pool's mapped bytes differ from what its span heap has in use", l.stats.mapped);
        }
        let quarantined: usize = l.quarantine.iter().map(|&(_, n)| n).sum();
        if quarantined != l.stats.quarantined {
            return bad("quarantined bytes differ from the runs in quarantine", quarantined);
        }
        if l.ready.len() * chunk != l.stats.ready || l.reuse.len() * chunk != l.stats.reusable {
            return bad("ready or reusable bytes differ from the chunks on their lists", l.ready.len());
        }
        let mut seen: Vec<usize> = l.quarantine.iter().map(|&(p, _)| p.as_ptr() as usize).collect();
        seen.extend(l.ready.iter().chain(&l.reuse).map(|p| p.as_ptr() as usize));
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return bad("a run waits on two lists at once", w[0]);
        }
        alloc_core::Validate::validate(&l.heap)
    }

    /// Adds `delta` (wrapping) to the mapped-bytes counter, so a test can see `validate` catch it.
    #[cfg(test)]
    pub(crate) fn corrupt_mapped_for_test(&self, delta: usize) {
        let mut l = self.lists();
        l.stats.mapped = l.stats.mapped.wrapping_add(delta);
    }

    /// The page size of the source.
    pub fn page_size(&self) -> usize {
        self.lists().page()
    }

    /// The chunk size rounded to whole pages.
    pub fn chunk_size(&self) -> usize {
        let page = self.page_size();
        self.config.chunk.next_multiple_of(page).max(page)
    }

    fn lists(&self) -> MutexGuard<'_, Lists<S>> {
        // A panic while holding the lock cannot leave the lists half-updated: every update is a
        // single push or pop followed by counter arithmetic.
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a run of `size` bytes: a chunk from the reuse list (warm, holding old data unless
    /// `zero`), then the ready list, then the span heap. With `zero`, the run reads as zero.
    fn take(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        let chunk = self.chunk_size();
        let mut l = self.lists();
        if align > l.page() {
            return None;
        }
        if size == chunk {
            let warm = if zero { None } else { l.reuse.pop() };
            if let Some(p) = warm {
                l.stats.reusable -= size;
                return Some(p);
            }
            if let Some(p) = l.ready.pop() {
                l.stats.ready -= size;
                if zero && !l.heap.source().decommit_zeroes() {
                    // SAFETY: a chunk the pool owns, accessible, `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0, size) };
                }
                return Some(p);
            }
            if let Some(p) = l.reuse.pop() {
                l.stats.reusable -= size;
                drop(l);
                // SAFETY: a chunk the pool owns, accessible, `size` bytes.
                unsafe { p.as_ptr().write_bytes(0, size) };
                return Some(p);
            }
        }
        let layout = l.run_layout(size)?;
        let run = if zero { l.heap.allocate_zeroed(layout) } else { l.heap.allocate(layout) };
        let p = run.ok()?.cast::<u8>();
        l.stats.mapped += size;
        Some(p)
    }

    /// Takes a run back (see [`Return`]).
    ///
    /// # Safety
    ///
    /// `ptr..ptr+size` is a run this pool handed out, and nothing uses it afterwards (a use
    /// faults while it is quarantined).
    pub(crate) unsafe fn give_back(&self, ptr: NonNull<u8>, size: usize, how: Return) {
        let chunk = self.chunk_size();
        let mut l = self.lists();
        let held = l.quarantine.iter().any(|&(p, _)| p == ptr) || l.ready.contains(&ptr) || l.reuse.contains(&ptr);
        if held {
            drop(l);
            self.errors.report(HeapError::new(ErrorKind::DoubleFree, ptr.as_ptr() as usize));
            return;
        }
        match how {
            Return::Warm if size == chunk && !self.config.quarantine_newest => {
                l.reuse.push(ptr);
                l.stats.reusable += size;
                return;
            }
            // SAFETY: the caller gives the run up; it came from the heap with this size.
            Return::Direct => return unsafe { l.release(ptr, size) },
            _ => {}
        }
        // SAFETY: the caller gives the run up; it is a page-aligned run of ours. Its memory goes
        // back first, then every access is made to fault.
        unsafe {
            l.heap.source().decommit(ptr, size);
            l.heap.source().protect(ptr, size, Access::None);
        }
        l.quarantine.push_back((ptr, size));
        l.stats.quarantined += size;
        l.stats.released += size;
        while l.stats.quarantined > self.config.quarantine {
            let Some((p, n)) = l.quarantine.pop_front() else { break };
            l.stats.quarantined -= n;
            l.stats.recycled += 1;
            // SAFETY: a quarantined run of ours; its pages were given back, so it reads as zero
            // (where decommit zeroes) once accessible again.
            unsafe { l.heap.source().protect(p, n, Access::ReadWrite) };
            if n == chunk {
                l.ready.push(p);
                l.stats.ready += n;
            } else {
                // SAFETY: a dedicated run of ours, accessible again, unused.
                unsafe { l.release(p, n) };
            }
        }
    }

    /// Gives every chunk on the ready and reuse lists back to the span heap, and the heap's free
    /// pages back to the OS (quarantined runs stay until recycled or the pool is dropped).
    /// Returns the bytes given back to the heap.
    pub fn trim(&self) -> usize {
        let chunk = self.chunk_size();
        let mut l = self.lists();
        let mut runs = core::mem::take(&mut l.ready);
        runs.append(&mut l.reuse);
        for &p in &runs {
            // SAFETY: chunks on the lists are ours, accessible and unused.
            unsafe { l.release(p, chunk) };
        }
        l.stats.ready = 0;
        l.stats.reusable = 0;
        l.heap.trim();
        runs.len() * chunk
    }
}

/// Something that gives access to a [`ChunkPool`]: a reference to a shared one (`&'static
/// ChunkPool` for [`ChunkPool::global`]), an `Arc`, or the pool itself (an arena that owns its
/// pool gives every page back to the OS when it is dropped).
///
/// # Safety
///
/// [`PoolRef::pool`] returns the same pool every time it is called, for as long as the value
/// lives and on whichever thread it is moved to: an arena gives its runs back to the pool it
/// took them from, and a run given to another pool would be handed out by both.
pub unsafe trait PoolRef {
    /// The pool's page source.
    type Source: PageSource + Protect + Decommit;
    /// The pool's error policy.
    type Errors: ErrorPolicy;
    /// The pool.
    fn pool(&self) -> &ChunkPool<Self::Source, Self::Errors>;
}

// SAFETY: a reference names one pool for its whole life.
unsafe impl<S: PageSource + Protect + Decommit, E: ErrorPolicy> PoolRef for &ChunkPool<S, E> {
    type Source = S;
    type Errors = E;
    fn pool(&self) -> &ChunkPool<S, E> {
        self
    }
}

// SAFETY: an `Arc` names one pool for its whole life.
unsafe impl<S: PageSource + Protect + Decommit, E: ErrorPolicy> PoolRef for std::sync::Arc<ChunkPool<S, E>> {
    type Source = S;
    type Errors = E;
    fn pool(&self) -> &ChunkPool<S, E> {
        self
    }
}

// SAFETY: the pool itself, moved only with the arena that owns it.
unsafe impl<S: PageSource + Protect + Decommit, E: ErrorPolicy> PoolRef for ChunkPool<S, E> {
    type Source = S;
    type Errors = E;
    fn pool(&self) -> &ChunkPool<S, E> {
        self
    }
}

/// An arena's page source: runs from its pool, and back into the pool's quarantine. The run
/// named by [`PoolSource::keep_warm`] goes onto the reuse list instead.
pub struct PoolSource<P: PoolRef> {
    pool: P,
    warm: Cell<Option<NonNull<u8>>>,
    freeing: Cell<bool>,
}

impl<P: PoolRef> PoolSource<P> {
    /// A source over `pool`.
    pub const fn new(pool: P) -> Self {
        PoolSource { pool, warm: Cell::new(None), freeing: Cell::new(false) }
    }

    /// The pool.
    pub fn pool(&self) -> &ChunkPool<P::Source, P::Errors> {
        self.pool.pool()
    }

    /// When the run at `ptr` is given back, put it on the reuse list rather than in quarantine.
    pub fn keep_warm(&self, ptr: Option<NonNull<u8>>) {
        self.warm.set(ptr);
    }

    /// Whether runs given back now are freed with their arena (quarantined) or one by one
    /// while the arena lives (a dedicated block's `deallocate`: back to the heap at once).
    pub fn set_freeing(&self, freeing: bool) {
        self.freeing.set(freeing);
    }
}

// SAFETY: the warm mark is an address compared at `unmap`, never dereferenced; the pool handle
// moves with the source.
unsafe impl<P: PoolRef + Send> Send for PoolSource<P> {}

// SAFETY: runs come from the pool's source (fresh, or chunks the pool owns exclusively), sized
// and aligned as asked; a run given back is owned by the pool from then on. `map_zeroed` returns
// a fresh or ready chunk (zero) or zeroes a warm one.
unsafe impl<P: PoolRef> PageSource for PoolSource<P> {
    fn page_size(&self) -> usize {
        self.pool().page_size()
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.pool().take(size, align, false)
    }

    fn map_zeroed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.pool().take(size, align, true)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        let how = if self.warm.get() == Some(ptr) {
            self.warm.set(None);
            Return::Warm
        } else if self.freeing.get() {
            Return::Quarantine
        } else {
            Return::Direct
        };
        // SAFETY: forwarded with the caller's guarantees; the run came from this pool.
        unsafe { self.pool().give_back(ptr, size, how) }
    }
}

// SAFETY: the pool's own runs, given back quarantined, are its to hand out again.
unsafe impl<S: PageSource + Protect + Decommit, E: ErrorPolicy> PageSource for ChunkPool<S, E> {
    fn page_size(&self) -> usize {
        ChunkPool::page_size(self)
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.take(size, align, false)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.give_back(ptr, size, Return::Quarantine) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 64 << 10;

    /// A pool holding one run in each place: `a` recycled onto the ready list, `b` in quarantine
    /// (which holds one chunk), `c` on the reuse list, `d` handed out.
    fn pool_with_every_list() -> (ChunkPool, [NonNull<u8>; 4]) {
        let config = PoolConfig { chunk: CHUNK, quarantine: CHUNK, quarantine_newest: false };
        let pool = ChunkPool::with_config(MmapSource::new(), config);
        assert_eq!(pool.config(), config);
        let runs = [0; 4].map(|_| pool.take(CHUNK, pool.page_size(), false).unwrap());
        // SAFETY: runs of this pool, given back once and never used again by the test.
        unsafe {
            pool.give_back(runs[0], CHUNK, Return::Quarantine);
            pool.give_back(runs[1], CHUNK, Return::Quarantine);
            pool.give_back(runs[2], CHUNK, Return::Warm);
        }
        let s = pool.stats();
        assert_eq!((s.ready, s.quarantined, s.reusable, s.mapped, s.recycled), (CHUNK, CHUNK, CHUNK, 4 * CHUNK, 1));
        assert_eq!(pool.validate(), Ok(()));
        (pool, runs)
    }

    fn reported(
        pool: &ChunkPool,
        corrupt: impl Fn(&mut Lists<MmapSource>),
        undo: impl Fn(&mut Lists<MmapSource>),
    ) -> &'static str {
        corrupt(&mut pool.lists());
        let what = pool.validate().map(|()| "nothing").unwrap_or_else(|c| c.what);
        undo(&mut pool.lists());
        assert_eq!(pool.validate(), Ok(()));
        what
    }

    #[test]
    fn validate_reports_each_book_that_disagrees_with_the_lists() {
        let (pool, runs) = pool_with_every_list();
        let mapped = reported(&pool, |l| l.stats.mapped += 4096, |l| l.stats.mapped -= 4096);
        assert!(mapped.contains("mapped bytes"), "{mapped}");
        let q = reported(&pool, |l| l.stats.quarantined -= CHUNK, |l| l.stats.quarantined += CHUNK);
        assert!(q.contains("quarantined bytes"), "{q}");
        // Each of the two list counters alone.
        let ready = reported(&pool, |l| l.stats.ready += CHUNK, |l| l.stats.ready -= CHUNK);
        let reuse = reported(&pool, |l| l.stats.reusable -= CHUNK, |l| l.stats.reusable += CHUNK);
        for what in [ready, reuse] {
            assert!(what.contains("ready or reusable"), "{what}");
        }
        let twice = reported(
            &pool,
            |l| {
                l.reuse.push(runs[0]);
                l.stats.reusable += CHUNK;
            },
            |l| {
                l.reuse.pop();
                l.stats.reusable -= CHUNK;
            },
        );
        assert!(twice.contains("two lists"), "{twice}");
    }

    #[test]
    fn taking_from_each_list_keeps_the_books() {
        let (pool, [_, _, c, _]) = pool_with_every_list();
        // Not zeroed: the warm chunk first.
        assert_eq!(pool.take(CHUNK, 4096, false), Some(c));
        assert_eq!(pool.stats().reusable, 0);
        // Then the ready one.
        pool.take(CHUNK, 4096, false).unwrap();
        assert_eq!((pool.stats().ready, pool.stats().mapped), (0, 4 * CHUNK));
        assert_eq!(pool.validate(), Ok(()));
        // Then the span heap.
        pool.take(CHUNK, 4096, true).unwrap();
        assert_eq!(pool.stats().mapped, 5 * CHUNK);
        assert_eq!(pool.validate(), Ok(()));
    }

    #[test]
    fn trim_returns_the_bytes_of_the_chunks_on_the_lists() {
        let (pool, _) = pool_with_every_list();
        assert_eq!(pool.trim(), 2 * CHUNK);
        let s = pool.stats();
        assert_eq!((s.ready, s.reusable, s.quarantined, s.mapped), (0, 0, CHUNK, 2 * CHUNK));
        assert_eq!(pool.validate(), Ok(()));
        assert_eq!(pool.trim(), 0);
    }

    #[test]
    fn the_pool_as_a_page_source_has_its_pages() {
        let pool = ChunkPool::new(MmapSource::new());
        let page = MmapSource::new().page_size();
        assert_eq!(PageSource::page_size(&pool), page);
        assert_eq!(pool.chunk_size(), PoolConfig::DEFAULT.chunk);
    }
}
