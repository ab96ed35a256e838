//! The pool: shared state (the span heap underneath, the map of its segments, abandoned
//! segments, heap records) and the front every thread calls.
//!
//! - **allocate** (up to 16 KiB, alignment up to 16; no header): the calling thread's heap (one
//!   thread-local compare), the class's current slab, a pop from its local list, the block's
//!   state bit set. No atomic read-modify-write, no lock.
//! - **free**: the segment from the pointer's high bits (checked against the segment map), the
//!   slab from bits 16..22 (its class is the block's), the block's state bits (which catch a
//!   double free and a pointer that is not a block in use); then, when the calling thread owns the
//!   slab, a plain store of the bit and the local list; otherwise one `fetch_or` of the remote bit
//!   (and, for a word's first, a swap that raises the slab's pending flag), which hands the
//!   block to the owner: it takes the bits back when it runs out of local blocks.
//! - everything larger, or aligned above 16, goes to the span heap underneath (behind a lock).

use crate::heap::{owned_by, Counters, HeapRecord, SegmentSource, ThreadHeap};
use crate::protocol::Refused;
use crate::segment::{self, Segment, ALL_FREE, FIRST_SLAB, GRANULE, SEGMENT, SEGMENT_SHIFT, SLABS};
use crate::tls::{self, Entry};
use crate::Classes;
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Corruption, Owns, SharedLayer, SharedResizeFn, SizeOf, UsableSize, Validate};
use alloc_core::source::{Access, Decommit, PageSource, Protect};
use alloc_core::stats::{Counting, Stats};
use alloc_core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use alloc_core::sync::remote_list::{Link, RemoteList};
use alloc_core::{ptr, Abort, AllocError, DefaultSource, Layout, Locked, SizeClasses, SpinLock};
use alloc_span::{SpanConfig, SpanHeap};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

/// The largest pool block: 16 KiB (no header: the whole block is the caller's).
pub const MAX_SMALL: usize = 1 << 14;
/// Requests up to this many bytes find their slab through the thread heap's direct table, by
/// the size alone (no size-class computation): a caller that tests this bound before
/// [`MAX_SMALL`] gives the common sizes one compare instead of two.
pub const DIRECT_MAX: usize = crate::heap::DIRECT_MAX;
/// The largest alignment pool blocks have (larger ones go to the span heap).
pub const MAX_ALIGN: usize = 16;

/// The span heap under the pool: arenas from 16 MiB, so 4 MiB-aligned segments fit with little
/// left over; up to 256 MiB of free spans kept for reuse (the span heap counts them whole, though
/// only the pages a program touched are resident), where the span heap's default of 64 MiB made
/// two threads cycling 5-25 MiB blocks (`compare --programs`, malloc-large) give pages back to
/// the OS on nearly every free: 2.2 s there against 0.45 s, at 4.5 against 13-20 MiB of peak RSS.
/// Pages free for 5 s still go back.
const SPAN: SpanConfig =
    SpanConfig { first_arena: 16 << 20, max_arena: 64 << 20, retain: 256 << 20, ..SpanConfig::DEFAULT };

type Large<S, E> = Locked<SpanHeap<S, E, Counting>, SpinLock>;

/// Slab guard pages in place now, over every guarded pool of the process (each splits a
/// mapping in three: two more of the kernel's memory areas, of which a process has 65,530 by
/// default, `vm.max_map_count`).
static GUARD_PAGES: AtomicUsize = AtomicUsize::new(0);

/// At most this many slab guard pages at once (32,768 of the kernel's memory areas, half the
/// default limit: the guards of 260 fully used segments, about 1 GiB of small blocks); past
/// it, a slab starts without its guard (its last page still holds no block).
const GUARD_BUDGET: usize = 16_384;

/// Sets the access of a range of the source's pages: [`Protect::protect`] for a source that
/// has it, chosen where the pool is made (`Pool::with_guarded_source`).
type GuardFn<S> = unsafe fn(&S, NonNull<u8>, usize, Access);

/// [`GuardFn`] for a source with [`Protect`].
///
/// # Safety
///
/// As for [`Protect::protect`].
unsafe fn protect_with<S: Protect>(source: &S, ptr: NonNull<u8>, size: usize, access: Access) {
    // SAFETY: the caller's guarantees.
    unsafe { source.protect(ptr, size, access) }
}

/// Segments as bits: address bits 22..48 split 10/16 into a first level kept inline and
/// second-level bitmaps of 8 KiB taken from the span heap when a segment first lands in their
/// 256 GiB range.
struct SegmentMap {
    l1: [AtomicPtr<AtomicU64>; 1 << 10],
}

const L2_WORDS: usize = (1 << 16) / 64;

impl SegmentMap {
    fn split(seg: usize) -> Option<(usize, usize, u64)> {
        let i = seg >> SEGMENT_SHIFT;
        if i >> 26 != 0 {
            return None;
        }
        Some((i >> 16, (i & 0xffff) / 64, 1 << (i % 64)))
    }

    /// Whether `seg` is one of the pool's segments. Relaxed: a pointer into a segment reached the
    /// caller through whatever published it, after the bit was set.
    #[inline(always)]
    fn contains(&self, seg: usize) -> bool {
        let Some((a, w, bit)) = Self::split(seg) else { return false };
        let l2 = self.l1[a].load(Ordering::Acquire);
        // SAFETY: second-level bitmaps stay mapped while the pool lives; w < L2_WORDS.
        !l2.is_null() && unsafe { (*l2.add(w)).load(Ordering::Relaxed) } & bit != 0
    }

    /// How many segments are marked (for the validator; under the pool's lock).
    fn count(&self) -> usize {
        let mut n = 0;
        for t in &self.l1 {
            let l2 = t.load(Ordering::Acquire);
            if l2.is_null() {
                continue;
            }
            for w in 0..L2_WORDS {
                // SAFETY: second-level bitmaps stay mapped while the pool lives; w < L2_WORDS.
                n += unsafe { (*l2.add(w)).load(Ordering::Relaxed) }.count_ones() as usize;
            }
        }
        n
    }

    /// Sets or clears `seg`'s bit (under the pool's lock; `alloc` gives a zeroed 8 KiB table).
    fn set(&self, seg: usize, on: bool, alloc: impl FnOnce() -> Option<NonNull<AtomicU64>>) -> bool {
        let Some((a, w, bit)) = Self::split(seg) else { return false };
        let mut l2 = self.l1[a].load(Ordering::Acquire);
        if l2.is_null() {
            if !on {
                return true;
            }
            let Some(t) = alloc() else { return false };
            // Release: the zeroed table is visible to whoever loads the pointer.
            self.l1[a].store(t.as_ptr(), Ordering::Release);
            l2 = t.as_ptr();
        }
        // SAFETY: a mapped table; w < L2_WORDS.
        let word = unsafe { &*l2.add(w) };
        if on {
            word.fetch_or(bit, Ordering::Release);
        } else {
            word.fetch_and(!bit, Ordering::Release);
        }
        true
    }
}

/// Words of [`ALL_SEGMENTS`]: one bit per possible segment of the address space (48 bits on
/// 64-bit targets).
#[cfg(all(target_pointer_width = "64", not(miri)))]
const ALL_WORDS: usize = 1 << (48 - SEGMENT_SHIFT as usize - 6);
/// Under Miri, 32 KiB covering the low 1 TiB of addresses, where Miri places its allocations:
/// Miri's end-of-run checks walk every static, and 8 MiB of them took it 5 minutes. A segment
/// past the map would be refused (every free of it reported), so a miss shows, it is not silent.
#[cfg(all(target_pointer_width = "64", miri))]
const ALL_WORDS: usize = 1 << (40 - SEGMENT_SHIFT as usize - 6);
#[cfg(not(target_pointer_width = "64"))]
const ALL_WORDS: usize = 1 << (usize::BITS as usize - SEGMENT_SHIFT as usize - 6);

/// Every pool's segments, one bit each: what the free path reads (one load, no table to find
/// first), with the pool's id in the segment's header to say whose it is. 8 MiB of zero pages
/// in `.bss` on 64-bit targets, touched only where segments are (one 4 KiB page of it covers
/// 128 GiB of address space). Each pool's own [`SegmentMap`] stays the authority for `owns`,
/// the validator and misuse reports.
static ALL_SEGMENTS: [AtomicU64; ALL_WORDS] = [const { AtomicU64::new(0) }; ALL_WORDS];

/// Whether `seg` (a segment-aligned address) is a segment of some pool. Relaxed: a pointer into
/// a segment reached the caller through whatever published it, after the bit was set.
#[inline(always)]
fn any_pools(seg: usize) -> bool {
    let i = seg >> SEGMENT_SHIFT;
    match ALL_SEGMENTS.get(i / 64) {
        Some(w) => w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0,
        None => false,
    }
}

/// The header of segment `seg_addr` when it is a segment of some pool (whose: its `pool` field).
#[inline(always)]
fn any_segment<'a>(seg_addr: usize) -> Option<&'a Segment> {
    if !any_pools(seg_addr) {
        return None;
    }
    // SAFETY: the bit says a pool's segment is mapped there, and a segment lives while blocks of
    // it can be named (its own pool gives it back only when nothing in it is in use; a pointer
    // into another pool's segment is the caller's misuse, and only read here).
    Some(unsafe { segment_at(seg_addr) })
}

/// Sets or clears `seg`'s bit in [`ALL_SEGMENTS`] (addresses past the map are never segments:
/// `new_segment` refuses them through the pool's own map first).
fn mark_any(seg: usize, on: bool) {
    let i = seg >> SEGMENT_SHIFT;
    if let Some(w) = ALL_SEGMENTS.get(i / 64) {
        if on {
            w.fetch_or(1 << (i % 64), Ordering::Release);
        } else {
            w.fetch_and(!(1 << (i % 64)), Ordering::Release);
        }
    }
}

/// The lock-protected part of the pool.
struct Shared {
    /// Every segment.
    segments: Option<NonNull<Segment>>,
    /// Every heap record ever made (they are recycled, never freed before the pool).
    heaps: Option<NonNull<HeapRecord>>,
    /// Records of threads that exited, for new threads.
    free_heaps: Option<NonNull<HeapRecord>>,
    /// Segments given back to the span heap, and taken from it, over the pool's life.
    segments_returned: usize,
    segments_made: usize,
}

/// The pool's shared state, kept in a block of its own span heap (its address never changes,
/// so thread-local caches can point at it).
pub(crate) struct PoolInner<S: PageSource + Decommit, E: ErrorPolicy> {
    id: u64,
    large: Large<S, E>,
    map: SegmentMap,
    abandoned: RemoteList,
    shared: lock_api::Mutex<SpinLock, Shared>,
    errors: E,
    /// This pool's entry on the list of live pools, for thread exits (see [`while_alive`]).
    live: LiveNode,
    /// Whether segments have guard pages (around the header, `segment::GUARDS`, and at the end
    /// of each slab that served a class), and how they are made to fault.
    guard: Option<GuardFn<S>>,
}

/// A live pool's entry on the global list.
struct LiveNode {
    id: u64,
    next: Option<NonNull<LiveNode>>,
}

// SAFETY: the list is only touched under `LIVE`'s lock.
unsafe impl Send for LiveList {}

struct LiveList(Option<NonNull<LiveNode>>);

/// Pools alive now. A thread exit abandons a pool's heap under this lock, and a pool's drop
/// removes itself under it first, so the two never overlap.
static LIVE: lock_api::Mutex<SpinLock, LiveList> = lock_api::Mutex::new(LiveList(None));

/// Pool ids: unique for the process's life.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The id of a pool not made yet: no thread's cache holds it (an empty entry's id is 0, and
/// made pools count up from 1), so the fast paths, which look the calling thread's heap up by
/// the pool's id, miss without first asking whether the pool is made.
const UNMADE: u64 = u64::MAX;

/// Runs `f` if the pool `id` is alive, holding it alive while `f` runs.
pub(crate) fn while_alive(id: u64, f: impl FnOnce()) {
    let live = LIVE.lock();
    let mut cur = live.0;
    while let Some(n) = cur {
        // SAFETY: nodes on the list live in their pools, which are alive while listed.
        let node = unsafe { n.as_ref() };
        if node.id == id {
            f();
            return;
        }
        cur = node.next;
    }
}

impl<S: PageSource + Decommit + Send, E: ErrorPolicy + Send + Sync> PoolInner<S, E> {
    /// The header of segment `seg_addr` when it is one of this pool's: a bit of
    /// [`ALL_SEGMENTS`] and the id in the header.
    #[inline(always)]
    fn segment(&self, seg_addr: usize) -> Option<&Segment> {
        any_segment(seg_addr).filter(|seg| seg.pool == self.id)
    }

    #[inline(always)]
    fn report(&self, kind: ErrorKind, addr: usize) {
        self.errors.report(HeapError::new(kind, addr));
    }

    /// Whether this pool's segments have guard pages: made with `with_guarded_source` over a
    /// source whose pages are no larger than the guards.
    fn guards_segments(&self) -> bool {
        self.guard.is_some() && segment::GUARD.is_multiple_of(self.large.lock().source().page_size())
    }

    /// Makes the empty pages around the header of the fresh segment at `base` fault.
    fn guard_header(&self, base: NonNull<u8>) {
        let Some(guard) = self.guard else { return };
        let large = self.large.lock();
        for (offset, len) in segment::GUARDS {
            // SAFETY: page-aligned ranges (offsets and lengths are multiples of 4 KiB, a
            // multiple of the page size: `guards_segments`) of a segment mapped from this
            // source through the span heap, holding nothing: no field of the header lies in
            // them, and no block.
            unsafe { guard(large.source(), base.byte_add(offset), len, Access::None) };
        }
    }

    /// Makes every page of segment `seg` usable again (before it goes back to the span heap, or
    /// the pool is dropped): one call for the header's guards and the slabs'.
    fn unguard(&self, seg: &Segment) {
        let Some(guard) = self.guard.filter(|_| seg.tail != 0) else { return };
        GUARD_PAGES.fetch_sub(seg.guarded.get().count_ones() as usize, Ordering::Relaxed);
        seg.guarded.set(0);
        // SAFETY: the whole segment, mapped from this source through the span heap; nothing in
        // it is accessed through the pages made usable.
        unsafe { guard(self.large.lock().source(), seg.base, SEGMENT, Access::ReadWrite) };
    }

    /// A block of the span heap for the pool's own metadata.
    fn meta(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.large.allocate_zeroed(layout).ok().map(|b| b.cast())
    }
}

impl<S: PageSource + Decommit + Send, E: ErrorPolicy + Send + Sync> SegmentSource for PoolInner<S, E> {
    fn new_segment(&self, owner: *mut ThreadHeap) -> Option<NonNull<Segment>> {
        let layout = Layout::from_size_align(SEGMENT, SEGMENT).ok()?;
        let base = self.large.allocate(layout).ok()?.cast::<u8>();
        // The segment is found again from a block's address alone (`segment_at`), with the
        // provenance of the whole segment, not the block pointer's (which a caller may have
        // narrowed to the block through a reference).
        let _ = base.as_ptr().expose_provenance();
        let guarded = self.guards_segments();
        // SAFETY: a fresh segment-sized, segment-aligned block, ours.
        let seg = unsafe { Segment::init(base, owner, self.id, if guarded { segment::GUARD } else { 0 }) };
        let mut shared = self.shared.lock();
        let table = Layout::from_size_align(L2_WORDS * 8, 64).ok()?;
        if !self.map.set(base.as_ptr() as usize, true, || self.meta(table).map(NonNull::cast)) {
            drop(shared);
            // SAFETY: the block just allocated, unused.
            unsafe { self.large.deallocate(base, layout) };
            return None;
        }
        mark_any(base.as_ptr() as usize, true);
        link_segment(&mut shared, seg);
        shared.segments_made += 1;
        drop(shared);
        if guarded {
            self.guard_header(base);
        }
        Some(seg)
    }

    fn free_segment(&self, seg: NonNull<Segment>) {
        // SAFETY: a live header of this pool's (the caller gives it back once).
        let header = unsafe { seg.as_ref() };
        let base = header.base;
        {
            let mut shared = self.shared.lock();
            mark_any(base.as_ptr() as usize, false);
            self.map.set(base.as_ptr() as usize, false, || None);
            unlink_segment(&mut shared, seg);
            shared.segments_returned += 1;
        }
        self.unguard(header);
        crate::sanitize::released(base, SEGMENT);
        // SAFETY: the segment has no block in use; it came from the span heap with this layout.
        unsafe { self.large.deallocate(base, Layout::from_size_align_unchecked(SEGMENT, SEGMENT)) };
    }

    fn adopt(&self) -> Option<NonNull<Segment>> {
        let first = self.abandoned.take_all()?;
        // SAFETY: the chain was taken: we own it; give back all but the first.
        if let Some(rest) = unsafe { Link::next(first) } {
            let mut last = rest;
            // SAFETY: as above.
            while let Some(n) = unsafe { Link::next(last) } {
                last = n;
            }
            // SAFETY: the rest of the chain, ours until pushed back.
            unsafe { self.abandoned.push_chain(rest, last) };
        }
        Some(first.cast())
    }

    fn guard_slab(&self, seg: NonNull<Segment>, i: usize) -> bool {
        let Some(guard) = self.guard else { return false };
        if GUARD_PAGES.fetch_add(1, Ordering::Relaxed) >= GUARD_BUDGET {
            GUARD_PAGES.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        // SAFETY: the caller's segment of this pool, mapped while it is named.
        let seg = unsafe { seg.as_ref() };
        let end = seg.slab_start(i) + segment::SLAB;
        // SAFETY: the last page of the slab (page-aligned: `tail` is set only where the pages
        // are no larger), in a segment mapped from this source; it holds no block (`tail`).
        unsafe { guard(self.large.lock().source(), seg.at(end - segment::GUARD), segment::GUARD, Access::None) };
        true
    }

    fn abandon(&self, seg: NonNull<Segment>) {
        // SAFETY: the segment is the caller's to give up; its link is its first field.
        unsafe { self.abandoned.push(seg.cast()) };
    }
}

fn link_segment(shared: &mut Shared, seg: NonNull<Segment>) {
    // SAFETY: segment headers are valid while their segment is the pool's; under the lock.
    unsafe {
        (*seg.as_ptr()).all_prev.set(None);
        (*seg.as_ptr()).all_next.set(shared.segments);
        if let Some(n) = shared.segments {
            (*n.as_ptr()).all_prev.set(Some(seg));
        }
    }
    shared.segments = Some(seg);
}

fn unlink_segment(shared: &mut Shared, seg: NonNull<Segment>) {
    // SAFETY: as above.
    unsafe {
        let (prev, next) = ((*seg.as_ptr()).all_prev.get(), (*seg.as_ptr()).all_next.get());
        match prev {
            Some(p) => (*p.as_ptr()).all_next.set(next),
            None => shared.segments = next,
        }
        if let Some(n) = next {
            (*n.as_ptr()).all_prev.set(prev);
        }
    }
}

/// Abandons `heap` of a type-erased pool (the thread-exit hook's entry point).
///
/// # Safety
///
/// `inner` is a live `PoolInner<S, E>` and `heap` the calling thread's heap of it.
unsafe fn abandon_erased<S: PageSource + Decommit + Send, E: ErrorPolicy + Send + Sync>(
    inner: *const (),
    heap: *mut ThreadHeap,
) {
    // SAFETY: the caller's guarantees.
    let inner = unsafe { &*inner.cast::<PoolInner<S, E>>() };
    // SAFETY: as above: the heap is the calling thread's.
    unsafe { (*heap).abandon(inner) };
    // SAFETY: as above.
    if let Some(addr) = unsafe { (*heap).take_refused() } {
        inner.report(ErrorKind::DoubleFree, addr);
    }
    let record = HeapRecord::of(heap);
    let mut shared = inner.shared.lock();
    // SAFETY: a record of this pool; its links are written under the lock held here.
    unsafe { (*record.as_ptr()).free_next = shared.free_heaps };
    shared.free_heaps = Some(record);
}

/// The lock-free pool.
///
/// `Pool::new()` is `const`, so it can be a `#[global_allocator]`; its state is made on first use.
/// `&Pool` is an `allocator_api2::alloc::Allocator`; `Pool` is `GlobalAlloc`.
///
/// What a small block holds when handed out: a block handed out before (freed since, by any
/// thread) holds what its last owner left in it, but for its first word, where the pool
/// links free blocks; a block never handed out since its slab took its class (carved
/// afresh) has its second word zero and the rest as the memory was. A layer that keeps a mark
/// in the second word of the blocks it frees (as `alloc-malloc`'s `hardened` preset does)
/// therefore finds its mark only in blocks it freed.
pub struct Pool<S: PageSource + Decommit + Send + Sync = DefaultSource, E: ErrorPolicy + Send + Sync = Abort> {
    inner: AtomicPtr<PoolInner<S, E>>,
    /// 0: not made; 1: being made; 2: ready.
    state: AtomicU8,
    id: AtomicU64,
    /// The page source, until the state is made (taken by the one thread that makes it).
    source: UnsafeCell<Option<S>>,
    /// Set by `with_guarded_source`: how to make the guard pages (around each segment's header,
    /// at the end of its slabs) fault.
    guard: Option<GuardFn<S>>,
}

// SAFETY: `source` is only touched by the one thread that wins the 0 -> 1 state change; every
// other field is atomic or points at state built for concurrent use.
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Sync for Pool<S, E> {}
// SAFETY: as above; the state moves with the pool (its address is in a block of its own).
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Send for Pool<S, E> {}

impl Pool {
    /// A pool over the OS page source; maps nothing until the first allocation.
    pub const fn new() -> Self {
        Pool::with_source(DefaultSource::new())
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

/// What the pool holds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of pool blocks in use (whole blocks: their class sizes).
    pub small_live: usize,
    /// Pool blocks handed out over the pool's life.
    pub small_allocations: usize,
    /// The span heap's counters: its live bytes are the large blocks (and the pool's segments
    /// and metadata, which it holds as blocks).
    pub large: Stats,
    /// Segments held now.
    pub segments: usize,
    /// Segments taken from the span heap over the pool's life.
    pub segments_made: usize,
    /// Segments given back to the span heap over the pool's life.
    pub segments_returned: usize,
    /// Thread heap records made.
    pub heaps: usize,
    /// Thread heap records free for new threads (their threads exited).
    pub free_heaps: usize,
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// A pool over `source`; maps nothing until the first allocation.
    pub const fn with_source(source: S) -> Self {
        Pool {
            inner: AtomicPtr::new(core::ptr::null_mut()),
            state: AtomicU8::new(0),
            id: AtomicU64::new(UNMADE),
            source: UnsafeCell::new(Some(source)),
            guard: None,
        }
    }
}

impl<S: PageSource + Decommit + Protect + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// A pool over `source` with guard pages, which fault on any access: the page before each
    /// segment's header and the pages after it, up to the segment's first slab of blocks, and
    /// the last page of each slab once it has served a class (that page then holds no block:
    /// a slab holds 1/16 fewer of the smallest blocks). An overflow off a slab faults there
    /// instead of reaching the next slab's blocks (another size class), and one off whatever
    /// lies before a segment (a large block, say) instead of rewriting the slab descriptors
    /// and state bits that every free of the segment trusts.
    ///
    /// The cost is system calls, none on the allocation and free paths: two `protect` calls
    /// when a segment is made, one when a slab first serves a class in its segment's life, one
    /// when the segment goes back to the span heap. Each slab guard splits a mapping, and the
    /// kernel limits a process's mappings (65,530 by default), so at most 16,384 slab guards
    /// are in place at once over the process; past that, slabs start without one. No guards
    /// where the source's pages are larger than 4 KiB.
    ///
    /// Fresh blocks come in a random order within each 4 KiB the pool carves (a plain pool
    /// hands them out in address order): two allocations in a row are neighbours only by chance.
    ///
    /// ```
    /// use alloc_core::DefaultSource;
    /// use alloc_pool_lockfree::Pool;
    /// use std::alloc::{GlobalAlloc, Layout};
    ///
    /// static POOL: Pool = Pool::with_guarded_source(DefaultSource::new());
    /// let layout = Layout::new::<[u64; 4]>();
    /// // SAFETY: a layout of non-zero size; the block is freed once, with it.
    /// unsafe {
    ///     let block = POOL.alloc(layout);
    ///     assert!(!block.is_null());
    ///     block.write_bytes(7, layout.size());
    ///     POOL.dealloc(block, layout);
    /// }
    /// ```
    pub const fn with_guarded_source(source: S) -> Self {
        let mut pool = Pool::with_source(source);
        pool.guard = Some(protect_with::<S>);
        pool
    }
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// The shared state, made on first use.
    #[inline(always)]
    fn inner(&self) -> Option<&PoolInner<S, E>> {
        // Acquire: pairs with the Release store of the thread that made it.
        let p = self.inner.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: once published, the state lives until the pool is dropped.
            return Some(unsafe { &*p });
        }
        self.make()
    }

    #[cold]
    #[inline(never)]
    fn make(&self) -> Option<&PoolInner<S, E>> {
        loop {
            match self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => break,
                Err(2) => {
                    let p = self.inner.load(Ordering::Acquire);
                    // SAFETY: published, as above.
                    return (!p.is_null()).then(|| unsafe { &*p });
                }
                Err(_) => alloc_core::sync::atomic::spin_hint(),
            }
        }
        // SAFETY: we won the 0 -> 1 change: the source is ours to take.
        let Some(source) = (unsafe { (*self.source.get()).take() }) else {
            self.state.store(0, Ordering::Release);
            return None;
        };
        // The span heap is made once, inside its lock, and moved once, into the state's block;
        // the other fields are written in place. A `PoolInner` built whole around a heap built
        // apart kept three copies of the 10.6 KiB heap in this frame (31 KiB of stack touched on
        // the first allocating thread, 24 KB of a small C program's RSS beyond mimalloc's).
        let mut large: Large<S, E> = Locked::new(SpanHeap::with_config(source, SPAN));
        let layout = Layout::new::<PoolInner<S, E>>();
        let Ok(block) = alloc_core::Layer::allocate(large.get_mut(), layout) else {
            // Out of memory: give the source back and let a later call try again.
            // SAFETY: we still hold the 1 state: the slot is ours.
            unsafe { *self.source.get() = Some(large.into_inner().into_source()) };
            self.state.store(0, Ordering::Release);
            return None;
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let p = block.cast::<PoolInner<S, E>>();
        // SAFETY: a fresh block sized and aligned for the state; every field is written before
        // the state is published; the heap moves into it (it holds no pointer to itself); the
        // map's first level is null pointers, whose bytes are zeroes.
        unsafe {
            let q = p.as_ptr();
            core::ptr::addr_of_mut!((*q).id).write(id);
            core::ptr::addr_of_mut!((*q).large).write(large);
            core::ptr::addr_of_mut!((*q).map).write_bytes(0, 1);
            core::ptr::addr_of_mut!((*q).abandoned).write(RemoteList::new());
            core::ptr::addr_of_mut!((*q).shared).write(lock_api::Mutex::new(Shared {
                segments: None,
                heaps: None,
                free_heaps: None,
                segments_returned: 0,
                segments_made: 0,
            }));
            core::ptr::addr_of_mut!((*q).errors).write(E::INIT);
            core::ptr::addr_of_mut!((*q).live).write(LiveNode { id, next: None });
            core::ptr::addr_of_mut!((*q).guard).write(self.guard);
            let mut live = LIVE.lock();
            (*p.as_ptr()).live.next = live.0;
            live.0 = Some(NonNull::from(&mut (*p.as_ptr()).live));
        }
        self.id.store(id, Ordering::Relaxed);
        self.inner.store(p.as_ptr(), Ordering::Release);
        self.state.store(2, Ordering::Release);
        // SAFETY: just made and published.
        Some(unsafe { &*p.as_ptr() })
    }

    /// The calling thread's heap, made (or recycled) on first use.
    #[inline(always)]
    fn heap(&self, inner: &PoolInner<S, E>) -> Option<*mut ThreadHeap> {
        match tls::lookup(inner.id) {
            Some(h) => Some(h),
            None => self.new_heap(inner),
        }
    }

    #[cold]
    #[inline(never)]
    fn new_heap(&self, inner: &PoolInner<S, E>) -> Option<*mut ThreadHeap> {
        let recycled = {
            let mut shared = inner.shared.lock();
            let h = shared.free_heaps;
            if let Some(h) = h {
                // SAFETY: records on the free list are the pool's, unused.
                shared.free_heaps = unsafe { (*h.as_ptr()).free_next };
            }
            h
        };
        let record = match recycled {
            Some(r) => {
                // SAFETY: an unused record; its heap readied for this thread.
                unsafe { (*HeapRecord::heap(r)).reuse() };
                r
            }
            None => {
                let r = inner.meta(Layout::new::<HeapRecord>())?.cast::<HeapRecord>();
                // SAFETY: a fresh block sized and aligned for a record, kept until the pool goes.
                unsafe { HeapRecord::init(r) };
                let mut shared = inner.shared.lock();
                // SAFETY: the new record, ours; links under the lock.
                unsafe { (*r.as_ptr()).all_next = shared.heaps };
                shared.heaps = Some(r);
                r
            }
        };
        let heap = HeapRecord::heap(record);
        let entry = Entry {
            id: inner.id,
            inner: (inner as *const PoolInner<S, E>).cast(),
            heap,
            abandon: Some(abandon_erased::<S, E>),
        };
        if let Some(evicted) = tls::insert(entry) {
            if let Some(abandon) = evicted.abandon {
                // SAFETY: the evicted heap is this thread's; its pool is checked alive.
                while_alive(evicted.id, || unsafe { abandon(evicted.inner, evicted.heap) });
            }
        }
        Some(heap)
    }

    /// Statistics (each counter read on its own: a snapshot taken while threads allocate is not
    /// one instant).
    pub fn stats(&self) -> PoolStats {
        let Some(inner) = self.inner_if_made() else { return PoolStats::default() };
        let shared = inner.shared.lock();
        let mut s = PoolStats { large: inner.large.lock().counters().get(), ..PoolStats::default() };
        let mut cur = shared.heaps;
        while let Some(h) = cur {
            // SAFETY: records live until the pool is dropped. Only their counters (atomics) and
            // list links (written under the lock held here) are read, each through the record's
            // pointer: its thread may be changing the rest, so no reference to the whole record.
            let (n, next) = unsafe {
                let h = h.as_ptr();
                ((*h).counters.allocations.load(Ordering::Relaxed), (*h).all_next)
            };
            s.small_allocations += n;
            s.heaps += 1;
            cur = next;
        }
        let mut cur = shared.free_heaps;
        while let Some(h) = cur {
            s.free_heaps += 1;
            // SAFETY: as above.
            cur = unsafe { (*h.as_ptr()).free_next };
        }
        let mut cur = shared.segments;
        while let Some(g) = cur {
            s.segments += 1;
            // SAFETY: segments on the list are the pool's, mapped while the lock held here keeps
            // them listed. Only atomics are read (a slab's class and state bits), which their
            // owners may be changing: each slab's count is a snapshot.
            let seg = unsafe { g.as_ref() };
            for (i, slab) in seg.slabs.iter().enumerate().skip(FIRST_SLAB) {
                if let Some(c) = slab.class() {
                    let state = seg.slab_state(i);
                    let blocks: u32 = state.iter().map(|w| w.load()).map(|(a, r)| (a & !r).count_ones()).sum();
                    s.small_live += blocks as usize * crate::block_size(c);
                }
            }
            cur = seg.all_next.get();
        }
        s.segments_made = shared.segments_made;
        s.segments_returned = shared.segments_returned;
        s
    }

    /// Bytes the program holds: pool payloads in use, and large blocks.
    pub fn live_bytes(&self) -> usize {
        let s = self.stats();
        let Some(inner) = self.inner_if_made() else { return 0 };
        // The span heap's live bytes include the pool's own segments and metadata blocks.
        let own = s.segments * SEGMENT + self.meta_bytes(inner);
        s.small_live.wrapping_add(s.large.bytes_live.saturating_sub(own))
    }

    /// Bytes of the span heap the pool holds for itself (its state, records, segment maps).
    fn meta_bytes(&self, inner: &PoolInner<S, E>) -> usize {
        let page = inner.large.lock().source().page_size();
        let round = |n: usize| n.next_multiple_of(page);
        let mut n = round(core::mem::size_of::<PoolInner<S, E>>());
        let shared = inner.shared.lock();
        let mut cur = shared.heaps;
        while let Some(h) = cur {
            n += round(core::mem::size_of::<HeapRecord>());
            // SAFETY: as in `stats`.
            cur = unsafe { (*h.as_ptr()).all_next };
        }
        n + inner.map.l1.iter().filter(|p| !p.load(Ordering::Relaxed).is_null()).count() * round(L2_WORDS * 8)
    }

    /// Takes every lock of the pool and keeps it held, for `pthread_atfork`'s prepare handler: a
    /// fork while another thread holds one would leave it held forever in the child. Release
    /// with [`Pool::unlock_after_fork`] in both the parent and the child.
    pub fn lock_for_fork(&self) {
        core::mem::forget(LIVE.lock());
        if let Some(inner) = self.inner_if_made() {
            core::mem::forget(inner.shared.lock());
            inner.large.lock_for_fork();
        }
    }

    /// Releases what [`Pool::lock_for_fork`] took.
    ///
    /// # Safety
    ///
    /// This thread called `lock_for_fork` (or is the child of the fork that followed it) and
    /// has not released since.
    pub unsafe fn unlock_after_fork(&self) {
        if let Some(inner) = self.inner_if_made() {
            // SAFETY: held since `lock_for_fork`, as the caller promises.
            unsafe {
                inner.large.unlock_after_fork();
                inner.shared.force_unlock();
            }
        }
        // SAFETY: as above.
        unsafe { LIVE.force_unlock() };
    }

    fn inner_if_made(&self) -> Option<&PoolInner<S, E>> {
        let p = self.inner.load(Ordering::Acquire);
        // SAFETY: published, as in `inner`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// The error policy (for [`alloc_core::Count`], what was detected).
    pub fn errors(&self) -> Option<&E> {
        self.inner_if_made().map(|i| &i.errors)
    }

    /// Gives memory back: the calling thread's empty slabs and segments, abandoned segments with
    /// nothing in use, and then the span heap's free pages (scavenged). Returns the bytes the
    /// span heap gave back to the OS.
    pub fn trim(&self) -> usize {
        let Some(inner) = self.inner_if_made() else { return 0 };
        if let Some(h) = tls::lookup(inner.id) {
            // SAFETY: the calling thread's heap.
            unsafe { (*h).trim(inner) };
            // SAFETY: as above.
            if let Some(addr) = unsafe { (*h).take_refused() } {
                inner.report(ErrorKind::DoubleFree, addr);
            }
        }
        // Adopt the abandoned segments into a temporary heap that gives back what is empty and
        // abandons the rest again.
        let scratch_counters = Counters::default();
        let mut scratch = ThreadHeap::new(NonNull::from(&scratch_counters));
        while let Some(g) = inner.adopt() {
            scratch.adopt(g);
        }
        scratch.trim(inner);
        scratch.abandon(inner);
        if let Some(addr) = scratch.take_refused() {
            inner.report(ErrorKind::DoubleFree, addr);
        }
        // SAFETY: the span heap's scavenge needs exclusive access: the lock gives it, and
        // scavenging frees no block anyone uses (only free pages and empty arenas).
        unsafe { inner.large.lock_exclusive().trim() }
    }
}

/// What a free left for its out-of-line part ([`Pool::free_unsized_fast`] returns it,
/// [`Pool::free_unsized_rest`] takes it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct FreeLeft(u8);

/// What a free off the common path has left to do ([`Pool::slow_free`]): a constant
/// parameter, so that each kind is its own function called from its own place.
mod slow {
    /// Report a pointer that is not a block start in one of the pool's slabs.
    pub const BAD_POINTER: u8 = 0;
    /// A layout of another class than the block's.
    pub const OTHER_LAYOUT: u8 = 1;
    /// The block's state bits refused the free: no block in use starts there.
    pub const NOT_IN_USE: u8 = 2;
    /// A block this thread's first cached heap does not own.
    pub const REMOTE: u8 = 3;
    /// Not in a pool segment: a large block, or a foreign pointer.
    pub const LARGE: u8 = 4;
    /// Done, but the block's slab is left with no block in use: release it.
    pub const RELEASE: u8 = 5;
    /// The calling thread's first cached heap is not this pool's: nothing looked at yet.
    pub const NO_HEAP: u8 = 6;
    /// Nothing to do: a zero-size layout's pointer, which is no block.
    pub const NOTHING: u8 = 7;
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// Whether `layout` is served by the slabs: 1 to [`MAX_SMALL`] bytes (one compare for both
    /// bounds), aligned to [`MAX_ALIGN`] at most. Zero-size layouts are not: the pool answers
    /// them itself ([`SharedLayer::ZERO_SIZE_OK`]), off the common path. (Folding the alignment
    /// into the same compare, `size - 1 | (align - 1) << 10 < MAX_SMALL`, compiled to as many
    /// instructions: 2026-12-02.)
    #[inline(always)]
    fn small(layout: Layout) -> bool {
        layout.size().wrapping_sub(1) < MAX_SMALL && layout.align() <= MAX_ALIGN
    }

    /// The segment of `ptr` and whether `heap` (the calling thread's first cached heap, if it is
    /// this pool's) owns it, then [`Pool::free_in`]. The segment `heap` knows (the last one a
    /// free found it owned: most frees are into it) needs one compare; any other goes through
    /// the map of every pool's segments, and `NOT_SEGMENT` (what is left when no pool has a
    /// segment there) when the map has none.
    #[inline(always)]
    fn free_fast<const NOT_SEGMENT: u8>(
        &self,
        ptr: NonNull<u8>,
        layout: Option<Layout>,
        heap: Option<*mut ThreadHeap>,
    ) -> Result<(), FreeLeft> {
        let seg_addr = Segment::of(ptr.as_ptr() as usize);
        match heap {
            // SAFETY: the calling thread's heap (the cache entry says so), touched by it alone.
            Some(h) if unsafe { (*h).knows(seg_addr) } => {
                // SAFETY: a segment `h` owns is mapped while it does, and only this thread (whose
                // heap it is) could give it back.
                self.free_in(unsafe { segment_at(seg_addr) }, ptr, layout, heap, true)
            }
            _ => match any_segment(seg_addr) {
                Some(seg) => self.free_in(seg, ptr, layout, heap, false),
                None => Err(FreeLeft(NOT_SEGMENT)),
            },
        }
    }

    /// [`SharedLayer::deallocate`] of a pointer outside the segment the calling thread's heap
    /// (`heap`, if it is this pool's; null if not) knows: another segment of any pool's, through
    /// the map of them all, or none ([`Pool::free_not_in_segment`]). The heap comes as a
    /// nullable pointer, not an `Option` (two registers, the tag written on the common path
    /// before its compare, until 2026-12-03).
    #[inline(never)]
    fn free_sized_elsewhere(&self, ptr: NonNull<u8>, layout: Layout, heap: *mut ThreadHeap) {
        let heap = (!heap.is_null()).then_some(heap);
        match any_segment(Segment::of(ptr.as_ptr() as usize)) {
            Some(seg) => {
                if let Err(left) = self.free_in(seg, ptr, Some(layout), heap, false) {
                    self.free_rest(ptr, left)
                }
            }
            None => self.free_not_in_segment(ptr, layout),
        }
    }

    /// A free with `layout` of a pointer in no segment of any pool: nothing for a zero-size
    /// layout, the span heap's free for a large one, and a report for a small one (no slab
    /// holds the pointer).
    #[cold]
    #[inline(never)]
    fn free_not_in_segment(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        if Self::small(layout) {
            return self.slow_free::<{ slow::BAD_POINTER }>(ptr);
        }
        let Some(inner) = self.inner_if_made() else { return };
        // SAFETY: the caller's large block and layout (the span heap checks the pointer).
        unsafe { inner.large.deallocate(ptr, layout) }
    }

    /// Hands a free to the out-of-line function for what [`Pool::free_in`] left. Each kind's
    /// call is its own (the kind is a constant wherever `free_in` is inlined).
    #[inline(always)]
    fn free_rest(&self, ptr: NonNull<u8>, left: FreeLeft) {
        match left.0 {
            slow::BAD_POINTER => self.slow_free::<{ slow::BAD_POINTER }>(ptr),
            slow::OTHER_LAYOUT => self.slow_free::<{ slow::OTHER_LAYOUT }>(ptr),
            slow::NOT_IN_USE => self.slow_free::<{ slow::NOT_IN_USE }>(ptr),
            slow::REMOTE => self.free_remote_quick(ptr),
            slow::RELEASE => self.slow_free::<{ slow::RELEASE }>(ptr),
            slow::NO_HEAP => self.free_without_heap(ptr),
            slow::NOTHING => {}
            _ => self.slow_free::<{ slow::LARGE }>(ptr),
        }
    }

    /// A free off the common path, with the pool's state; a free into a pool never made is of
    /// a pointer it never gave out (the fast path does not ask whether the pool is made: a pool
    /// not made has an id no thread's cache holds).
    ///
    /// The pointer travels by value, in a register, and what to do is a constant: a closure
    /// capturing them by reference (as this took until 2026-12-01) made every free spill the
    /// pointer to the stack three times and set up a stack frame, on the common path too; one
    /// function taking the kind as an argument had the common path load each kind's number
    /// before its branch.
    #[cold]
    #[inline(never)]
    fn slow_free<const WHAT: u8>(&self, ptr: NonNull<u8>) {
        let addr = ptr.as_ptr() as usize;
        let Some(inner) = self.inner_if_made() else {
            return E::INIT.report(HeapError::new(ErrorKind::ForeignPointer, addr));
        };
        match WHAT {
            slow::BAD_POINTER => self.bad_pointer(inner, ptr),
            slow::OTHER_LAYOUT => self.free_other_layout(inner, addr),
            slow::NOT_IN_USE => self.refused(inner, addr, Refused::NotInUse),
            slow::REMOTE => self.free_remote(inner, addr),
            slow::RELEASE => self.release_emptied(addr),
            _ => self.free_large_unsized(inner, ptr),
        }
    }

    /// The pool's id ([`UNMADE`] until it is made), which the calling thread's cache is keyed by.
    #[inline(always)]
    fn id(&self) -> u64 {
        // Relaxed: a thread finds its heap under this id only after it made that heap, which
        // it did after it saw the pool made (acquire); any other value just misses.
        self.id.load(Ordering::Relaxed)
    }

    /// [`Pool::free_small`] once the segment is known to be some pool's, with `heap` the
    /// calling thread's first cached heap if it is this pool's, and `owned` true when that heap
    /// is known to own the segment ([`ThreadHeap::knows`]). Whose the segment is is checked
    /// off the common path: a block this thread's heap owns is this pool's (a heap belongs to
    /// one pool, and the thread's cache entry is checked against this pool's id); every other
    /// path compares the segment's pool id before it writes anything.
    #[inline(always)]
    fn free_in(
        &self,
        seg: &Segment,
        ptr: NonNull<u8>,
        layout: Option<Layout>,
        heap: Option<*mut ThreadHeap>,
        owned: bool,
    ) -> Result<(), FreeLeft> {
        let addr = ptr.as_ptr() as usize;
        let idx = segment::slab_index(addr);
        if !addr.is_multiple_of(GRANULE) {
            return Err(FreeLeft(slow::BAD_POINTER));
        }
        let slab = &seg.slabs[idx];
        match layout {
            // A slab that serves no class (the header slabs, free ones) fits no size: its
            // `fits_span` is 0. So a free with a layout needs no class, and a pointer into such
            // a slab is refused here too, as one of another class (which then tells them apart).
            // An alignment past MAX_ALIGN is of a block the span heap made, never a slab's.
            Some(l) => {
                if l.align() > MAX_ALIGN {
                    // A zero-size layout's pointer is dangling, its alignment as an address:
                    // no block, even where a segment happens to start there.
                    return Err(FreeLeft(if l.size() == 0 { slow::NOTHING } else { slow::OTHER_LAYOUT }));
                }
                if !slab.fits(l.size()) {
                    // Not a zero-size layout's own dangling pointer (aligned to 16 or less, it
                    // lies in the first 16 bytes, where no segment starts): a block's pointer
                    // with a size of 0 is a wrong layout like any other, reported (until
                    // 2026-12-03 it was let pass silently, and the size kept for that test
                    // cost a register copy on the common path).
                    return Err(FreeLeft(slow::OTHER_LAYOUT));
                }
            }
            None => {
                if slab.class().is_none() {
                    return Err(FreeLeft(slow::BAD_POINTER));
                }
            }
        }
        let (w, bit) = seg.bits(addr);
        match heap {
            Some(h) if owned || owned_by(&seg.owner, h) => {
                if !owned {
                    // SAFETY: the calling thread's heap, which owns the segment (just read).
                    unsafe { (*h).know(Segment::of(addr)) };
                }
                // The owner's free reads only the allocated bit: a clear one is all it refuses
                // (`NotInUse`, which the slow path tells apart: a double free, or no block).
                if w.free_owner(bit).is_err() {
                    return Err(FreeLeft(slow::NOT_IN_USE));
                }
                // The segment's provenance, not the caller's (which may cover less than the
                // first word, where the free list links).
                let b = seg.at(addr);
                crate::sanitize::freed(b, || slab.block.get());
                // SAFETY: this thread's heap owns the slab, and it won the block.
                if unsafe { (*h).free_local_push(NonNull::from(slab), b) } {
                    return Err(FreeLeft(slow::RELEASE));
                }
                Ok(())
            }
            _ => Err(FreeLeft(slow::REMOTE)),
        }
    }

    /// The slab of the block this thread just freed at `addr` has no block in use left and is
    /// not current: it goes back to its segment.
    #[cold]
    #[inline(never)]
    fn release_emptied(&self, addr: usize) {
        let (seg, idx, c) = block_at(addr);
        if let Some(h) = tls::lookup_first(self.id()) {
            // SAFETY: this thread's heap, which owns the slab (it just freed a block of it).
            unsafe { (*h).release_empty(NonNull::from(&seg.slabs[idx]), c) };
            // SAFETY: as above.
            if let (Some(addr), Some(inner)) = (unsafe { (*h).take_refused() }, self.inner_if_made()) {
                inner.report(ErrorKind::DoubleFree, addr);
            }
        }
    }

    /// A free whose layout is of another class than the block's: a double free or a pointer
    /// that is no block when the block is not in use, otherwise a wrong layout.
    #[cold]
    #[inline(never)]
    fn free_other_layout(&self, inner: &PoolInner<S, E>, addr: usize) {
        let (seg, idx, _) = block_at(addr);
        // A slab that serves no class fits no layout (`free_in` does not read the class).
        if seg.pool != inner.id || seg.slabs[idx].class().is_none() {
            return self.bad_pointer(inner, seg.at(addr));
        }
        let (w, bit) = seg.bits(addr);
        if !w.in_use(bit) {
            return self.refused(inner, addr, Refused::NotInUse);
        }
        inner.report(ErrorKind::WrongLayout, addr)
    }

    /// A block freed by a thread whose first cached heap does not own it: the owner's local list
    /// if this thread owns it after all, otherwise its remote bit (the owner takes it from there).
    #[cold]
    #[inline(never)]
    fn free_remote(&self, inner: &PoolInner<S, E>, addr: usize) {
        let (seg, idx, c) = block_at(addr);
        if seg.pool != inner.id {
            return self.bad_pointer(inner, seg.at(addr));
        }
        let slab = &seg.slabs[idx];
        let (w, bit) = seg.bits(addr);
        let b = seg.at(addr);
        match tls::lookup(inner.id) {
            Some(h) if owned_by(&seg.owner, h) => {
                if let Err(why) = w.free_owner(bit) {
                    return self.refused(inner, addr, why);
                }
                crate::sanitize::freed(b, || crate::block_size(c));
                // SAFETY: this thread's heap owns the slab, and it won the block.
                unsafe { (*h).free_local(NonNull::from(slab), b, c) }
            }
            _ => match w.free_other(bit, || crate::sanitize::freed(b, || crate::block_size(c))) {
                Ok(first) => {
                    if first {
                        slab.lists.note_remote();
                    }
                }
                Err(why) => self.refused(inner, addr, why),
            },
        }
    }

    /// Reports a free of a pointer that is not in one of the pool's slabs, or not 16-aligned.
    #[cold]
    #[inline(never)]
    fn bad_pointer(&self, inner: &PoolInner<S, E>, ptr: NonNull<u8>) {
        let addr = ptr.as_ptr() as usize;
        let in_pool = inner.map.contains(Segment::of(addr)) && segment::slab_index(addr) >= FIRST_SLAB;
        let in_slab =
            // SAFETY: the segment map holds the segment (checked first).
            in_pool && unsafe { segment_at(Segment::of(addr)) }.slabs[segment::slab_index(addr)].class().is_some();
        let kind = if in_slab { ErrorKind::InteriorPointer } else { ErrorKind::ForeignPointer };
        inner.report(kind, addr);
    }

    /// Everything `allocate` does not do inline: the pool's first use, a thread's first
    /// allocation, a slab run dry, large blocks.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(ptr::block(ptr::dangling(layout.align()), 0));
        }
        let inner = self.inner().ok_or(AllocError)?;
        if Self::small(layout) {
            let c = Classes::class_of(layout.size());
            let heap = self.heap(inner).ok_or(AllocError)?;
            // SAFETY: the calling thread's heap.
            let p = unsafe { (*heap).alloc(inner, c) };
            // SAFETY: as above.
            if let Some(addr) = unsafe { (*heap).take_refused() } {
                inner.report(ErrorKind::DoubleFree, addr);
            }
            return Ok(ptr::block(p.ok_or(AllocError)?, crate::block_size(c)));
        }
        inner.large.allocate(layout)
    }

    /// Reports a free the block's state bits refused.
    #[cold]
    #[inline(never)]
    fn refused(&self, inner: &PoolInner<S, E>, addr: usize, why: Refused) {
        let (seg, idx, c) = block_at(addr);
        let kind = match why {
            Refused::AlreadyFree => ErrorKind::DoubleFree,
            Refused::NotInUse => not_in_use(seg, idx, c, addr),
        };
        inner.report(kind, addr);
    }

    /// The class of the block starting at `ptr`, if it is a pool block in use. The state bit of
    /// a granule is only ever set at the start of a block, so no division is needed to reject an
    /// interior pointer.
    #[inline]
    fn live_block(&self, inner: &PoolInner<S, E>, ptr: NonNull<u8>) -> Option<usize> {
        let addr = ptr.as_ptr() as usize;
        let idx = segment::slab_index(addr);
        if idx < FIRST_SLAB || !addr.is_multiple_of(GRANULE) {
            return None;
        }
        let seg = inner.segment(Segment::of(addr))?;
        let c = seg.slabs[idx].class()?;
        let (w, bit) = seg.bits(addr);
        w.in_use(bit).then_some(c)
    }

    /// C's `free(ptr)`: frees the block at `ptr` with no layout, in one pass (the segment map
    /// says whether it is a pool block; the span heap's index whether it is a large one), and
    /// reports whatever is wrong with it: a double free, an interior pointer, a pointer the pool
    /// never gave out. With a panicking error policy, a report from a thread that has no heap of
    /// this pool (one that only frees) aborts the process instead of unwinding (its path is
    /// `extern "C"`, for speed: see [`Pool::free_unsized_rest`]).
    ///
    /// # Safety
    ///
    /// `ptr` is a block this pool allocated and nobody frees again, unless the caller wants the
    /// misuse reported (through the error policy). No reference to the block's memory lives on.
    #[inline(always)]
    pub unsafe fn free_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: as the caller promises.
        if let Err(left) = unsafe { self.free_unsized_fast(ptr) } {
            self.free_rest(ptr, left)
        }
    }

    /// [`Pool::free_unsized`]'s common path alone (a small block of this thread's heap, freed
    /// once): `Err` says what is left for [`Pool::free_unsized_rest`] (another thread's block,
    /// a large block, a misuse to report). With no call out on this path, a caller that
    /// tail-calls the rest needs no stack frame (alloc-malloc's `free`).
    ///
    /// # Safety
    ///
    /// As for [`Pool::free_unsized`].
    ///
    /// The thread's heap is looked up first: a thread with none of this pool's at the front of
    /// its cache leaves at once, the pointer not yet looked at (alloc-malloc tries this before
    /// it looks at its preset: under the presets that do not use this pool it is the quickest
    /// way out).
    #[inline(always)]
    pub unsafe fn free_unsized_fast(&self, ptr: NonNull<u8>) -> Result<(), FreeLeft> {
        let Some(h) = tls::lookup_first(self.id()) else { return Err(FreeLeft(slow::NO_HEAP)) };
        self.free_fast::<{ slow::LARGE }>(ptr, None, Some(h))
    }

    /// [`Pool::free_unsized`] on a thread whose first cached heap is not this pool's (a thread
    /// that only frees, or that used another pool since): a block of a pool segment goes on to
    /// [`Pool::free_remote_quick`] when it passes `free_in`'s checks.
    ///
    /// `extern "C"` (it cannot unwind: a panic of the error policy aborts here), so that
    /// [`Pool::free_unsized_rest`], `extern "C"` too, reaches it by a jump: a thread that only
    /// frees (a consumer's) comes here on every free, and until 2026-12-03 went through
    /// `free_rest`'s table of kinds with a call and a stack frame (13 instructions a free).
    #[cold]
    #[inline(never)]
    extern "C" fn free_without_heap(&self, ptr: NonNull<u8>) {
        let Some(seg) = any_segment(Segment::of(ptr.as_ptr() as usize)) else {
            return self.slow_free::<{ slow::LARGE }>(ptr);
        };
        // With no heap, `free_in` checks the pointer and leaves the block to the remote path.
        match self.free_in(seg, ptr, None, None, false) {
            Ok(()) => {}
            Err(FreeLeft(slow::REMOTE)) => self.free_remote_in(seg, ptr, None),
            Err(left) => self.free_rest(ptr, left),
        }
    }

    /// The rest of a free [`Pool::free_unsized_fast`] did not finish, with what it said was left.
    ///
    /// `extern "C"`, so that a C entry point (alloc-malloc's `free`) can reach it by a tail call
    /// (it cannot tail-call a function that may unwind): a panic of the error policy's report
    /// aborts the process here instead of unwinding (the other paths of a panicking policy
    /// still unwind).
    ///
    /// # Safety
    ///
    /// As for [`Pool::free_unsized`]; `left` is what `free_unsized_fast(ptr)` just returned.
    #[cold]
    #[inline(never)]
    pub unsafe extern "C" fn free_unsized_rest(&self, ptr: NonNull<u8>, left: FreeLeft) {
        if left.0 == slow::NO_HEAP {
            return self.free_without_heap(ptr);
        }
        self.free_left(ptr, left)
    }

    /// [`Pool::free_unsized_rest`] for every kind but a thread with no heap: out of line and
    /// `extern "C"` like it, so that the test for that kind stays one compare and a jump (in
    /// line, the compiler folded it into the table of kinds, behind a stack frame).
    #[cold]
    #[inline(never)]
    extern "C" fn free_left(&self, ptr: NonNull<u8>, left: FreeLeft) {
        self.free_rest(ptr, left)
    }

    /// A free [`Pool::free_in`] left as another thread's block, in one function: the block's
    /// remote bit is set when this pool owns the segment, no heap of this thread owns
    /// it, and the block's state bits let the free through. Everything else (another pool's
    /// segment, this thread's heap after all, a misuse) takes the full path, which decides and
    /// reports as before. Until 2026-12-02 every remote free took that path: five nested calls,
    /// the segment and class found twice, and a scan of the thread's whole cache for a heap a
    /// thread that only frees does not have (166 instructions per free in xmalloc-test's shape).
    #[cold]
    #[inline(never)]
    fn free_remote_quick(&self, ptr: NonNull<u8>) {
        // SAFETY: `free_in` found the segment in the map of all pools' segments (REMOTE comes
        // from there alone), and a segment lives while blocks of it can be named.
        let seg = unsafe { segment_at(Segment::of(ptr.as_ptr() as usize)) };
        self.free_remote_in(seg, ptr, tls::lookup_first(self.id()))
    }

    /// [`Pool::free_remote_quick`] with the segment found and `first`, the calling thread's
    /// first cached heap if it is this pool's.
    #[inline(always)]
    fn free_remote_in(&self, seg: &Segment, ptr: NonNull<u8>, first: Option<*mut ThreadHeap>) {
        let addr = ptr.as_ptr() as usize;
        let id = self.id();
        // A pool not made has an id no segment has.
        if seg.pool != id {
            return self.slow_free::<{ slow::REMOTE }>(ptr);
        }
        let mine = match first {
            // A thread has one heap per pool: its front entry is this pool's.
            Some(h) => owned_by(&seg.owner, h),
            // A heap of this pool further back in the cache (rare: several pools), or none.
            None => tls::holds(id),
        };
        if mine {
            return self.slow_free::<{ slow::REMOTE }>(ptr);
        }
        let slab = &seg.slabs[segment::slab_index(addr)];
        let (w, bit) = seg.bits(addr);
        match w.free_other(bit, || crate::sanitize::freed(seg.at(addr), || slab.block.get())) {
            // The block is the owner's from here on.
            Ok(first) => {
                if first {
                    slab.lists.note_remote();
                }
            }
            Err(why) => self.refused_remote(addr, why),
        }
    }

    /// [`Pool::refused`] for [`Pool::free_remote_quick`], which has no `PoolInner` at hand.
    #[cold]
    #[inline(never)]
    fn refused_remote(&self, addr: usize, why: Refused) {
        if let Some(inner) = self.inner_if_made() {
            self.refused(inner, addr, why)
        }
    }

    /// `allocate`'s fast path alone, for `size` bytes (at most [`MAX_SMALL`]) aligned to 16: a
    /// block of the calling thread's current slab of the size's class, or `None` wherever
    /// `allocate` would do more (the pool's or the thread's first use, a slab run dry, a block
    /// refused at hand-out), where the caller goes on with [`Pool::allocate_small_slow`]. With
    /// no call out on this path, a caller that tail-calls its slow path needs no stack frame
    /// (alloc-malloc's `malloc`).
    #[inline(always)]
    pub fn allocate_small_fast(&self, size: usize) -> Option<NonNull<u8>> {
        // A safe function: a larger size gets no block (not a smaller class's), in release
        // builds too. alloc-malloc's caller tests the same bound first, so this folds away there.
        if size > MAX_SMALL {
            return None;
        }
        let heap = tls::lookup_first(self.id())?;
        if size <= DIRECT_MAX {
            // SAFETY: the calling thread's heap.
            unsafe { (*heap).alloc_direct(size) }.map(|(p, _)| p)
        } else {
            // SAFETY: as above.
            unsafe { (*heap).alloc_fast(Classes::class_of(size)) }
        }
    }

    /// What `allocate` does for `size` bytes aligned to 16 once [`Pool::allocate_small_fast`]
    /// gave `None`: the pool's or the thread's first use, a slab refilled, a misuse found at
    /// hand-out reported.
    #[cold]
    #[inline(never)]
    pub fn allocate_small_slow(&self, size: usize) -> Result<NonNull<[u8]>, AllocError> {
        // 0 bytes: the smallest block, as on the fast path (a unique pointer, as `malloc(0)`
        // must give), not the dangling one a zero-size layout gets.
        let layout = Layout::from_size_align(size.max(1), MAX_ALIGN).map_err(|_| AllocError)?;
        self.allocate_slow(layout)
    }

    /// The block size of the slab `ptr` lies in, when it is a 16-aligned address in one of this
    /// pool's slabs that serves a class (whether a block in use starts there is not checked:
    /// [`SizeOf::size_of`] does that). For a layer on top that keeps its own per-block state
    /// in the block (alloc-malloc's `hardened` preset): one segment lookup, no state bits.
    ///
    /// # Safety
    ///
    /// No thread gives `ptr`'s segment back while this runs: `ptr` is in a block of this pool
    /// that is allocated (or freed by the caller and not yet past the free), or any address
    /// while no other thread trims or exits. The segment bitmap says whether a segment is
    /// mapped, and the segment header is read next; a segment given back in between would be
    /// read after it was unmapped.
    #[inline]
    pub unsafe fn slab_block_size(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: as the caller promises.
        unsafe { self.slab_block(ptr) }.map(|(_, len)| len)
    }

    /// [`Pool::slab_block_size`] with the slab's size class: `(class, block size)`, the class
    /// numbered as [`alloc_core::Quarters<14>`] numbers its classes (the pool's classes). A layer
    /// that keeps blocks per class needs it, and would otherwise work it out again from the size.
    ///
    /// # Safety
    ///
    /// As for [`Pool::slab_block_size`].
    #[inline]
    pub unsafe fn slab_block(&self, ptr: NonNull<u8>) -> Option<(usize, usize)> {
        let addr = ptr.as_ptr() as usize;
        if !addr.is_multiple_of(GRANULE) {
            return None;
        }
        let seg_addr = Segment::of(addr);
        let seg = match tls::lookup_first(self.id()) {
            // The segment the thread's heap knows it owns (as on the free path): no map to read.
            // SAFETY: the calling thread's heap; a segment it owns stays mapped while it does.
            Some(h) if unsafe { (*h).knows(seg_addr) } => unsafe { segment_at(seg_addr) },
            _ => self.inner_if_made()?.segment(seg_addr)?,
        };
        let slab = &seg.slabs[segment::slab_index(addr)];
        Some((slab.class()?, slab.block.get()))
    }

    /// [`Pool::slab_block`] for an address that must be where a block starts: `None` as well
    /// when `ptr` lies inside a block of its slab. For a layer that checks the blocks the pool
    /// hands it (alloc-malloc's `hardened`: the pool's free lists are in band, and an overflow
    /// into a free block can forge the link its next allocation follows). A division: meant
    /// for slow paths.
    ///
    /// # Safety
    ///
    /// As for [`Pool::slab_block_size`].
    #[inline]
    pub unsafe fn slab_block_start(&self, ptr: NonNull<u8>) -> Option<(usize, usize)> {
        // SAFETY: as the caller promises.
        let (c, len) = unsafe { self.slab_block(ptr) }?;
        // Slabs start on SLAB boundaries, their first block at the slab's start.
        ((ptr.as_ptr() as usize % segment::SLAB).is_multiple_of(len)).then_some((c, len))
    }

    #[cold]
    #[inline(never)]
    fn free_large_unsized(&self, inner: &PoolInner<S, E>, ptr: NonNull<u8>) {
        if !inner.large.owns(ptr) {
            return inner.report(ErrorKind::ForeignPointer, ptr.as_ptr() as usize);
        }
        // SAFETY: an address the span heap owns; it reads only its own metadata.
        match unsafe { inner.large.size_of(ptr) } {
            // SAFETY: a live large block with the layout the span heap gave.
            Some(l) => unsafe { inner.large.deallocate(ptr, l) },
            // SAFETY: as above.
            None => inner.errors.report(unsafe { inner.large.misuse_at(ptr) }),
        }
    }
}

/// The segment, slab index and class of an address in a slab that serves a class (what the free
/// path found; its cold paths look it up again rather than carry it).
fn block_at<'a>(addr: usize) -> (&'a Segment, usize, usize) {
    // SAFETY: only called for addresses the free path found in one of the pool's segments,
    // which stays mapped while the free runs.
    let seg = unsafe { segment_at(Segment::of(addr)) };
    let idx = segment::slab_index(addr);
    (seg, idx, seg.slabs[idx].class().unwrap_or(0))
}

/// Why a block start (or a granule inside a block) of slab `idx` is not a block in use: an
/// interior pointer off the class's block boundaries, a double free for a block carved before,
/// a pointer the pool never gave out past the blocks carved so far.
fn not_in_use(seg: &Segment, idx: usize, c: usize, addr: usize) -> ErrorKind {
    let off = addr - seg.slab_start(idx);
    let size = crate::block_size(c);
    if !off.is_multiple_of(size) {
        ErrorKind::InteriorPointer
    } else if off / size < seg.slabs[idx].bump.get() {
        ErrorKind::DoubleFree
    } else {
        ErrorKind::ForeignPointer
    }
}

/// The header of the segment at `seg_addr`, with the provenance `new_segment` exposed.
///
/// # Safety
///
/// The segment map says `seg_addr` is a segment of this pool, and the segment stays mapped for
/// `'a` (segments are given back only under the pool's lock, by their owner, when empty).
#[inline(always)]
unsafe fn segment_at<'a>(seg_addr: usize) -> &'a Segment {
    // The header's offset is added to a pointer, not to the address: LLVM then folds it into
    // the offsets of the fields read (with `seg_addr + HEADER` it kept an `or` on every free).
    // SAFETY: as the caller promises: an initialised header whose provenance was exposed when
    // the segment was made.
    unsafe { &*core::ptr::with_exposed_provenance::<u8>(seg_addr).add(segment::HEADER).cast::<Segment>() }
}

// SAFETY: pool blocks are carved from slabs of segments the pool owns, each handed to one
// caller at a time (popped from a list only its owner pops, or carved by the owner), aligned to
// 16 (slabs start on 64 KiB boundaries, class sizes are multiples of 16); a block's state bits
// let exactly one free of it through to a list; freed blocks return through a list ordered by
// release/acquire before reuse; large blocks are the span heap's. Nothing panics unless the
// error policy does.
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> SharedLayer for Pool<S, E> {
    /// Zero-size layouts are answered here, off the common path (a dangling pointer, a no-op
    /// free), so the fronts test nothing first: `small`'s one compare covers both bounds.
    const ZERO_SIZE_OK: bool = true;
    const PANICS: bool = E::PANICS;
    const RESIZE: Option<SharedResizeFn<Self>> = Some(resize::<S, E>);

    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // The fast path: a small block from the current slab of this thread's heap. The sizes
        // of the direct table first (1 to `DIRECT_MAX` bytes, one compare for both bounds):
        // tested under `MAX_SMALL` first, they took two compares (until 2026-12-03).
        if layout.size().wrapping_sub(1) < DIRECT_MAX && layout.align() <= MAX_ALIGN {
            if let Some(heap) = tls::lookup_first(self.id()) {
                // SAFETY: the calling thread's heap.
                if let Some((p, s)) = unsafe { (*heap).alloc_direct(layout.size()) } {
                    // SAFETY: the slab the calling thread's heap just handed a block of.
                    return Ok(ptr::block(p, unsafe { crate::heap::block_len(s) }));
                }
            }
            // The size alone goes on (every slab block is aligned to 16): the alignment's
            // register is free once it is tested. Kept to the end for the full
            // `allocate_slow`, it made one register too many on the common path, saved and
            // restored on every call where `allocate` is not inlined (until 2026-12-03).
            return self.allocate_small_slow(layout.size());
        }
        if Self::small(layout) {
            if let Some(heap) = tls::lookup_first(self.id()) {
                let c = Classes::class_of(layout.size());
                // SAFETY: the calling thread's heap.
                if let Some(p) = unsafe { (*heap).alloc_fast(c) } {
                    return Ok(ptr::block(p, crate::block_size(c)));
                }
            }
            return self.allocate_small_slow(layout.size());
        }
        self.allocate_slow(layout)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(ptr::block(ptr::dangling(layout.align()), 0));
        }
        let inner = self.inner().ok_or(AllocError)?;
        if Self::small(layout) {
            let b = SharedLayer::allocate(self, layout)?;
            // SAFETY: a fresh block of b.len() bytes.
            unsafe { b.cast::<u8>().as_ptr().write_bytes(0, b.len()) };
            return Ok(b);
        }
        // The span heap knows which of its pages are still zero.
        inner.large.allocate_zeroed(layout)
    }

    // The pointer picks the path, not the layout: a block in the segment this thread's heap
    // knows is freed in line (the layout's size checked against the slab's class and its
    // alignment against MAX_ALIGN); every other pointer goes to `free_sized_elsewhere`, one
    // call. Testing the layout first (`Pool::small`) was seven instructions of every free until
    // 2026-12-02; the other segments' frees kept in line too made every free save and restore
    // two registers.
    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let seg_addr = Segment::of(ptr.as_ptr() as usize);
        let heap = tls::lookup_first(self.id());
        match heap {
            // SAFETY: the calling thread's heap (the cache entry says so), touched by it alone.
            Some(h) if unsafe { (*h).knows(seg_addr) } => {
                // SAFETY: a segment `h` owns is mapped while it does, and only this thread
                // (whose heap it is) could give it back.
                if let Err(left) = self.free_in(unsafe { segment_at(seg_addr) }, ptr, Some(layout), heap, true) {
                    self.free_rest(ptr, left)
                }
            }
            _ => self.free_sized_elsewhere(ptr, layout, heap.unwrap_or(core::ptr::null_mut())),
        }
    }
}

/// In place while the new layout needs the block's class (realloc returns the same pointer
/// while the new size fits it); large blocks resize in the span heap.
///
/// # Safety
///
/// As for `Resize::resize_in_place`.
unsafe fn resize<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync>(
    pool: &Pool<S, E>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    // A zero-size block is dangling: the front moves it (allocates, frees as a no-op).
    if old.size() == 0 || new.size() == 0 {
        return Err(AllocError);
    }
    let inner = pool.inner_if_made().ok_or(AllocError)?;
    match (Pool::<S, E>::small(old), Pool::<S, E>::small(new)) {
        (true, true) => {
            let c = Classes::class_of(old.size());
            if Classes::class_of(new.size()) != c {
                return Err(AllocError);
            }
            let live = pool.live_block(inner, ptr).ok_or(AllocError)?;
            if live != c {
                inner.report(ErrorKind::WrongLayout, ptr.as_ptr() as usize);
                return Err(AllocError);
            }
            Ok(crate::block_size(c))
        }
        (false, false) => match <Large<S, E> as SharedLayer>::RESIZE {
            // SAFETY: forwarded with the caller's guarantees.
            Some(f) => unsafe { f(&inner.large, ptr, old, new) },
            None => Err(AllocError),
        },
        _ => Err(AllocError),
    }
}

alloc_core::shared_front!([S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync] Pool<S, E>);

// SAFETY: a pool block's layout is its class's block size, answered only when the block's state
// bits say it is in use, after the segment map says the segment is the pool's; the span heap
// answers for the rest. Only reads.
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> SizeOf for Pool<S, E> {
    /// A layout the block can be freed with: its whole block (the pool keeps no size per block)
    /// for pool blocks, the span heap's answer otherwise. Any address may be asked, owned or not
    /// (wider than the trait's precondition): the segment map and the span heap's index are
    /// looked up before anything near `ptr` is read.
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        let inner = self.inner_if_made()?;
        if inner.segment(Segment::of(ptr.as_ptr() as usize)).is_some() {
            let c = self.live_block(inner, ptr)?;
            return Layout::from_size_align(crate::block_size(c), MAX_ALIGN).ok();
        }
        if !inner.large.owns(ptr) {
            return None;
        }
        // SAFETY: the span heap only reads its own metadata after finding `ptr` in its index.
        unsafe { inner.large.size_of(ptr) }
    }

    /// What is wrong with freeing `ptr` when [`SizeOf::size_of`] found no live block there (C's
    /// `free(ptr)` has no layout to check): a double free for a block carved before, an interior
    /// pointer when it lies in a slab off a block start, otherwise a pointer the pool never gave
    /// out.
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        HeapError::new(self.misuse_kind(ptr), ptr.as_ptr() as usize)
    }
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// The kind of misuse behind [`SizeOf::misuse_at`].
    fn misuse_kind(&self, ptr: NonNull<u8>) -> ErrorKind {
        let Some(inner) = self.inner_if_made() else { return ErrorKind::ForeignPointer };
        let addr = ptr.as_ptr() as usize;
        let seg_addr = Segment::of(addr);
        let idx = segment::slab_index(addr);
        if !inner.map.contains(seg_addr) {
            if !inner.large.owns(ptr) {
                return ErrorKind::ForeignPointer;
            }
            // SAFETY: an address the span heap owns; it reads only its own metadata.
            return unsafe { inner.large.misuse_at(ptr) }.kind;
        }
        if idx < FIRST_SLAB || !addr.is_multiple_of(GRANULE) {
            return ErrorKind::InteriorPointer;
        }
        // SAFETY: the segment map holds `seg_addr`, and a segment lives while blocks of it can be
        // named: checked just above.
        let seg = unsafe { segment_at(seg_addr) };
        match seg.slabs[idx].class() {
            Some(c) => not_in_use(seg, idx, c, addr),
            None => ErrorKind::InteriorPointer,
        }
    }
}

// SAFETY: a small block's class size (every size up to it has the same class, and the block has
// no header), the span heap's answer for large blocks.
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> UsableSize for Pool<S, E> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let Some(inner) = self.inner_if_made() else { return 0 };
        if Self::small(layout) {
            return crate::block_size(Classes::class_of(layout.size()));
        }
        if layout.size() == 0 {
            return 0;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { inner.large.usable_size(ptr, layout) }
    }
}

// SAFETY: true for the slabs of the pool's segments (found in its segment map) and the span
// heap's memory; every block lies in one or the other.
unsafe impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Owns for Pool<S, E> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        let Some(inner) = self.inner_if_made() else { return false };
        let addr = ptr.as_ptr() as usize;
        if inner.map.contains(Segment::of(addr)) {
            return segment::slab_index(addr) >= FIRST_SLAB;
        }
        inner.large.owns(ptr)
    }
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Validate for Pool<S, E> {
    /// Walks every segment and slab: counts (blocks in use, on the local list, on the remote
    /// list, carved) agree with each other and with the state bits, every free block lies at a
    /// block boundary of its slab with state bits that say free, no state bit is set off a
    /// carved block's start, and the lists end; then the span heap's own validator. Call it when no other
    /// thread uses the pool.
    fn validate(&self) -> Result<(), Corruption> {
        let Some(inner) = self.inner_if_made() else { return Ok(()) };
        let bad = |what, addr| Err(Corruption { what, addr });
        let shared = inner.shared.lock();
        // Records of exited threads: no segment may still name one as its owner.
        let mut exited = Vec::new();
        let mut rec = shared.free_heaps;
        while let Some(r) = rec {
            if exited.len() > 1 << 20 {
                return bad("list of exited threads' records loops", r.as_ptr() as usize);
            }
            exited.push(r.as_ptr() as usize);
            // SAFETY: records are never freed before the pool; their links change under the lock.
            rec = unsafe { r.as_ref() }.free_next;
        }
        let mine = tls::lookup(inner.id);
        let mut segments = 0usize;
        let mut cur = shared.segments;
        while let Some(g) = cur {
            // SAFETY: the pool's segment; the caller keeps other threads away.
            let seg = unsafe { &*g.as_ptr() };
            cur = seg.all_next.get();
            segments += 1;
            if segments > shared.segments_made {
                return bad("segment list is longer than the segments made (a loop?)", g.as_ptr() as usize);
            }
            if !inner.map.contains(g.as_ptr() as usize) {
                return bad("segment is not in the segment map", g.as_ptr() as usize);
            }
            if !any_pools(g.as_ptr() as usize) || seg.pool != inner.id {
                return bad(
                    "segment is missing from the map of every pool's segments, or names another pool",
                    g.as_ptr() as usize,
                );
            }
            let owner = seg.owner.load(Ordering::Relaxed);
            if !owner.is_null() && exited.contains(&(HeapRecord::of(owner).as_ptr() as usize)) {
                return bad("segment names the heap of a thread that exited as its owner", g.as_ptr() as usize);
            }
            if seg.slabs[..FIRST_SLAB].iter().any(|s| s.class().is_some() || s.fits_span.get() != 0) {
                return bad("a header slab serves a class (frees into it would be taken)", g.as_ptr() as usize);
            }
            // The owner's own facts (its known segment, its current slabs), where the owner is
            // the calling thread's heap: reached through the thread's cache, not through the
            // segment's owner field (whose pointer is older than the heap's last use).
            let heap = mine.filter(|&h| h == owner);
            // SAFETY: the calling thread's heap, not in use during this call.
            let known = heap.map(|h| unsafe { (*h).known() });
            if let Some(k) = known.filter(|&k| k != crate::heap::NO_SEGMENT) {
                // SAFETY: read only once the segment map says a segment of this pool is there.
                if !inner.map.contains(k) || unsafe { segment_at(k) }.owner.load(Ordering::Relaxed) != owner {
                    return bad("a heap takes frees into a segment it does not own as its own", k);
                }
            }
            for i in FIRST_SLAB..SLABS {
                let slab = &seg.slabs[i];
                let free_bit = seg.free_slabs.get() >> i & 1 != 0;
                let Some(c) = slab.class() else {
                    if !free_bit {
                        return bad("slab serves no class but is not marked free", seg.slab_start(i));
                    }
                    if slab.fits_span.get() != 0 || slab.current.get() {
                        return bad(
                            "slab serves no class but takes frees with a layout, or is current",
                            seg.slab_start(i),
                        );
                    }
                    continue;
                };
                // SAFETY: as for `known`.
                let current = heap.map(|h| unsafe { (*h).current(c) } == Some(NonNull::from(slab)));
                if current.is_some_and(|cur| slab.current.get() != cur) {
                    return bad("slab's current flag is not its heap's current slab of its class", seg.slab_start(i));
                }
                if free_bit {
                    return bad("slab serves a class but is marked free", seg.slab_start(i));
                }
                let size = crate::block_size(c);
                let carved = slab.bump.get();
                if slab.block.get() != size
                    || !slab.fits(size)
                    || slab.fits(size + 1)
                    || (c > 0 && slab.fits(crate::block_size(c - 1)))
                {
                    return bad("slab's range of layout sizes is not its class's", seg.slab_start(i));
                }
                if carved > slab.capacity.get() || slab.capacity.get() != (segment::SLAB - seg.tail) / size {
                    return bad("slab carved past its capacity", seg.slab_start(i));
                }
                let start = seg.slab_start(i);
                // A block on the local list: on a block boundary of the carved part, its
                // allocated and remote bits both clear.
                let check = |b: NonNull<Link>| -> Result<(), Corruption> {
                    let a = b.as_ptr() as usize;
                    if a < start || !(a - start).is_multiple_of(size) || (a - start) / size >= carved {
                        return bad("free block off its slab's block boundaries", a);
                    }
                    let (w, bit) = seg.bits(a);
                    let (alloc, rem) = w.load();
                    if alloc & bit != 0 || rem & bit != 0 {
                        return bad("free block's state bits do not say free", a);
                    }
                    Ok(())
                };
                // SAFETY: the owner is not running (the caller's promise), so reading its list is
                // as good as the owner reading it.
                let (mut local, mut node) = (0, unsafe { slab.lists.local_head() });
                while let Some(b) = node {
                    check(b)?;
                    local += 1;
                    if local > slab.capacity.get() {
                        return bad("local free list loops", start);
                    }
                    // SAFETY: a block on the owner's list.
                    node = unsafe { Link::next(b) };
                }
                // SAFETY: as above.
                let used = unsafe { slab.lists.used() };
                if used + local != carved {
                    return bad("blocks in use and free do not add up to the blocks carved", start);
                }
                // The state bits: set only at the start of a carved block, as many allocated as
                // blocks counted in use (remote frees not taken back yet included); a remote bit
                // only on an allocated block, and only under a raised pending flag (one that is
                // not would never be taken back).
                let (mut allocated, mut remotes) = (0, 0);
                for (k, w) in seg.slab_state(i).iter().enumerate() {
                    let (a, r) = w.load();
                    if r & !a != 0 {
                        return bad("a block is marked freed by another thread but not in use", start);
                    }
                    let mut bits = a;
                    while bits != 0 {
                        let off = (k * 64 + bits.trailing_zeros() as usize) * GRANULE;
                        if !off.is_multiple_of(size) || off / size >= carved {
                            return bad("a state bit is set off the carved blocks' starts", start + off);
                        }
                        bits &= bits - 1;
                    }
                    allocated += a.count_ones() as usize;
                    remotes += r.count_ones() as usize;
                }
                if allocated != used {
                    return bad("state bits disagree with the blocks in use", start);
                }
                if remotes != 0 && !slab.lists.has_remote() {
                    return bad("blocks freed by another thread wait under a lowered pending flag", start);
                }
            }
            if seg.free_slabs.get() & !ALL_FREE != 0 {
                return bad("segment's header slab is marked free", g.as_ptr() as usize);
            }
        }
        if segments != shared.segments_made - shared.segments_returned {
            return bad("segments on the list differ from those made and not given back", segments);
        }
        if inner.map.count() != segments {
            return bad("segment map marks a segment that is not the pool's (given back and left marked?)", segments);
        }
        drop(shared);
        inner.large.validate()
    }
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Drop for Pool<S, E> {
    fn drop(&mut self) {
        let p = *self.inner.get_mut();
        if p.is_null() {
            return;
        }
        // SAFETY: the state was made and is still ours.
        let id = unsafe { (*p).id };
        {
            // Off the live list first: a thread exiting from now on skips this pool.
            let mut live = LIVE.lock();
            let mut cur = &mut live.0;
            while let Some(n) = *cur {
                // SAFETY: listed nodes live in live pools.
                if unsafe { n.as_ref() }.id == id {
                    // SAFETY: as above.
                    *cur = unsafe { n.as_ref() }.next;
                    break;
                }
                // SAFETY: as above.
                cur = unsafe { &mut (*n.as_ptr()).next };
            }
        }
        tls::forget(id);
        // SAFETY: as below: the state was made, and no thread uses the pool any more.
        let shared = unsafe { &(*p).shared };
        {
            // Off the map of every pool's segments before the span heap unmaps them: a stale
            // bit made a free into another pool (of a large block the OS later mapped where a
            // segment had been) read that memory as a segment header (until 2026-12-02).
            // Their guard pages are made usable again too: the source gets back the pages it
            // gave, as it gave them.
            let shared = shared.lock();
            let mut cur = shared.segments;
            while let Some(g) = cur {
                mark_any(g.as_ptr() as usize, false);
                // SAFETY: the pool's segments, mapped until its span heap is dropped below.
                let seg = unsafe { g.as_ref() };
                // SAFETY: the state was made, and no thread uses the pool any more.
                unsafe { (*p).unguard(seg) };
                cur = seg.all_next.get();
            }
        }
        // SAFETY: the state is read out of its block (the span heap inside it owns the block and
        // unmaps it with everything else when dropped); no thread uses the pool any more (`&mut`).
        let inner = unsafe { p.read() };
        drop(inner);
    }
}

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> core::fmt::Debug for Pool<S, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pool").field("stats", &self.stats()).finish()
    }
}

/// A test over a buffer instead of mmap, sized so Miri can check the fast paths, remote frees
/// from a second thread, misuse reports and trim (`cargo +nightly miri test -p
/// alloc-pool-lockfree --lib`); the conformance suite covers the rest.
impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> alloc_core::Trim for Pool<S, E> {
    /// [`Pool::trim`].
    fn trim(&mut self) {
        Pool::trim(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc_core::{Count, FixedSource, MmapSource};
    #[cfg(target_os = "linux")]
    use conformance::misuse::protection;
    use core::num::NonZeroUsize;

    /// A fixed buffer behind a lock: the pool wants a source threads can share.
    struct Shared(std::sync::Mutex<FixedSource<'static>>);

    // SAFETY: forwarded to the buffer's source under the lock.
    unsafe impl PageSource for Shared {
        fn page_size(&self) -> usize {
            self.0.lock().unwrap().page_size()
        }
        fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
            self.0.lock().unwrap().map(size, align)
        }
        unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.lock().unwrap().unmap(ptr, size) }
        }
        fn maps_zeroed(&self) -> bool {
            self.0.lock().unwrap().maps_zeroed()
        }
    }

    // SAFETY: as above.
    unsafe impl Decommit for Shared {
        unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.lock().unwrap().decommit(ptr, size) }
        }
        fn decommit_zeroes(&self) -> bool {
            self.0.lock().unwrap().decommit_zeroes()
        }
    }

    fn l(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// What the pool's `Count` policy recorded last: the kind and the address.
    fn last_report<S: PageSource + Decommit + Send + Sync>(pool: &Pool<S, Count>) -> Option<(ErrorKind, usize)> {
        pool.errors().unwrap().last().map(|e| (e.kind, e.addr))
    }

    /// The system's pages, refused while `fail` is set.
    struct Flaky {
        fail: std::sync::atomic::AtomicBool,
        pages: MmapSource,
    }

    // SAFETY: forwarded to the system's source, or no run at all.
    unsafe impl PageSource for Flaky {
        fn page_size(&self) -> usize {
            self.pages.page_size()
        }
        fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
            if self.fail.load(Ordering::Relaxed) {
                return None;
            }
            self.pages.map(size, align)
        }
        unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.pages.unmap(ptr, size) }
        }
        fn maps_zeroed(&self) -> bool {
            self.pages.maps_zeroed()
        }
    }

    // SAFETY: as above.
    unsafe impl Decommit for Flaky {
        unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.pages.decommit(ptr, size) }
        }
        fn decommit_zeroes(&self) -> bool {
            self.pages.decommit_zeroes()
        }
    }

    /// The fork handler holds every lock of the pool (the live-pool list, the shared lists, the
    /// span heap) until it unlocks, and gives them back: one left out would be held forever in
    /// a child forked while another thread held it, which the fork test cannot make happen.
    #[test]
    fn the_fork_handler_holds_every_lock_and_gives_them_back() {
        let pool = Pool::new();
        let b = pool.allocate(Layout::new::<u64>()).unwrap();
        let inner = pool.inner_if_made().unwrap();
        pool.lock_for_fork();
        let held = (LIVE.is_locked(), inner.shared.is_locked(), inner.large.is_locked());
        // SAFETY: taken just above, by this thread.
        unsafe { pool.unlock_after_fork() };
        assert_eq!(held, (true, true, true), "(live pools, shared lists, span heap) held across fork");
        assert!(!inner.shared.is_locked() && !inner.large.is_locked(), "and given back");
        // Other tests' pools take the live-pool lock too: given back means it can be taken.
        assert!((0..10_000_000).any(|_| LIVE.try_lock().is_some()), "the live-pool lock given back");
        // SAFETY: live with this layout.
        unsafe { pool.deallocate(b.cast(), Layout::new::<u64>()) };
    }

    #[test]
    fn a_pool_whose_first_use_finds_no_memory_is_made_by_a_later_call() {
        let source = Flaky { fail: std::sync::atomic::AtomicBool::new(true), pages: MmapSource::new() };
        let pool: Pool<Flaky, Count> = Pool::with_source(source);
        // The state's block cannot be had: no pool yet, and the source is kept for later.
        assert!(pool.allocate(l(64)).is_err());
        assert!(pool.allocate(l(1 << 20)).is_err());
        assert!(pool.errors().is_none(), "not made");
        // SAFETY: the pool is not made; nothing of it is in use.
        let source = unsafe { (*pool.source.get()).as_ref().expect("the source was given back") };
        source.fail.store(false, Ordering::Relaxed);
        let b = pool.allocate(l(64)).unwrap().cast::<u8>();
        // SAFETY: a fresh block of 64 bytes, freed once with its layout.
        unsafe {
            b.as_ptr().write_bytes(0x5a, 64);
            pool.deallocate(b, l(64));
        }
        assert_eq!(pool.errors().unwrap().detected(), 0);
        assert_eq!(pool.validate(), Ok(()));
    }

    #[test]
    fn local_and_remote_frees_misuse_and_trim_over_a_buffer() {
        // The span heap's first arena (16 MiB) and room to align it.
        let raw = Box::into_raw(vec![0u8; 24 << 20].into_boxed_slice());
        // SAFETY: the buffer is freed below, after the pool that uses it is dropped.
        let buf: &'static mut [u8] = unsafe { &mut *raw };
        let pool: Pool<Shared, Count> = Pool::with_source(Shared(std::sync::Mutex::new(FixedSource::new(buf))));
        let mut blocks = Vec::new();
        for (i, size) in [1usize, 16, 100, 1000, 5000, 20_000].into_iter().enumerate() {
            let b = pool.allocate(l(size)).unwrap();
            // SAFETY: a fresh block of b.len() bytes.
            unsafe { b.cast::<u8>().as_ptr().write_bytes(i as u8 + 1, b.len()) };
            blocks.push((b.cast::<u8>(), l(size), i as u8 + 1));
        }
        assert_eq!(pool.validate(), Ok(()));
        // Half are freed by another thread: their slabs' owner takes them back by their remote bits.
        let theirs: Vec<_> = blocks.drain(..3).map(|(p, l, f)| (p.as_ptr() as usize, l, f)).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for (addr, layout, fill) in theirs {
                    let p = NonNull::new(addr as *mut u8).unwrap();
                    // SAFETY: live blocks with their layouts, handed to this thread; the fill
                    // was written before the spawn.
                    unsafe {
                        assert!(core::slice::from_raw_parts(p.as_ptr(), layout.size()).iter().all(|&b| b == fill));
                        pool.deallocate(p, layout);
                    }
                }
            });
        });
        // The owner takes them back when it next needs a block of those classes.
        let again = pool.allocate(l(16)).unwrap();
        for (p, layout, _) in blocks.iter().copied() {
            // SAFETY: live blocks with their layouts.
            unsafe { pool.deallocate(p, layout) };
        }
        // SAFETY: as above.
        unsafe { pool.deallocate(again.cast(), l(16)) };
        assert_eq!(pool.live_bytes(), 0);
        // A double free is reported and ignored.
        // SAFETY: under the Count policy the pool reports it and does nothing else.
        unsafe { pool.deallocate(again.cast(), l(16)) };
        assert_eq!(pool.errors().unwrap().detected(), 1);
        assert_eq!(last_report(&pool).map(|(kind, _)| kind), Some(ErrorKind::DoubleFree));
        assert_eq!(pool.validate(), Ok(()));
        pool.trim();
        assert_eq!(pool.stats().segments, 0);
        drop(pool);
        // SAFETY: the pool is gone; nothing uses the buffer.
        drop(unsafe { Box::from_raw(raw) });
    }

    /// Each fact `validate` checks about a slab, broken alone (and put back): it must be named.
    #[test]
    fn validate_names_each_slab_fact_that_is_off() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(64);
        let blocks: Vec<_> = (0..4).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        // SAFETY: live blocks with their layout, freed once: the local list is [1] -> [2].
        unsafe {
            pool.deallocate(blocks[2], size);
            pool.deallocate(blocks[1], size);
        }
        assert_eq!(pool.validate(), Ok(()));
        let addr = blocks[0].as_ptr() as usize;
        // SAFETY: the pool's segment, live while its blocks are.
        let seg = unsafe { segment_at(Segment::of(addr)) };
        let slab = &seg.slabs[segment::slab_index(addr)];
        let named = |expect: &str| {
            let what = pool.validate().err().map_or("nothing", |c| c.what);
            assert!(what.contains(expect), "expected {expect:?}, got {what:?}");
        };
        let (block, low, span) = (slab.block.get(), slab.fits_low.get(), slab.fits_span.get());
        slab.block.set(block + GRANULE);
        named("range of layout sizes");
        slab.block.set(block);
        // The class below's sizes accepted too, with the top still right.
        slab.fits_low.set(low - GRANULE);
        slab.fits_span.set(span + GRANULE);
        named("range of layout sizes");
        // One byte past the block accepted.
        slab.fits_low.set(low);
        slab.fits_span.set(span + 1);
        named("range of layout sizes");
        slab.fits_span.set(span);
        assert_eq!(pool.validate(), Ok(()));
        // The slab is its class's current one: its flag says so, and must.
        assert!(slab.current.get());
        slab.current.set(false);
        named("current flag");
        slab.current.set(true);
        // A free slab that would take a free with a layout (`free_in` reads no class then).
        let other = &seg.slabs[SLABS - 1];
        assert!(other.class().is_none());
        other.fits_span.set(GRANULE);
        named("takes frees with a layout");
        other.fits_span.set(0);
        other.current.set(true);
        named("takes frees with a layout, or is current");
        other.current.set(false);
        assert_eq!(pool.validate(), Ok(()));
        // The thread's heap knows its segment (it freed into it above); naming one it does not
        // own would take frees into memory that is not its own as its own.
        let heap = tls::lookup_first(pool.id()).unwrap();
        // SAFETY: this thread's heap; nothing else runs on this pool now.
        unsafe {
            assert_eq!((*heap).known(), Segment::of(addr));
            (*heap).know(Segment::of(addr) + segment::SEGMENT);
        }
        named("segment it does not own");
        // SAFETY: as above.
        unsafe { (*heap).know(Segment::of(addr)) };
        assert_eq!(pool.validate(), Ok(()));
        // A capacity that is not the class's (larger: nothing is carved past it).
        let capacity = slab.capacity.get();
        slab.capacity.set(capacity + 1);
        let got = pool.validate().err().map_or("nothing", |c| c.what);
        slab.capacity.set(capacity);
        assert_eq!(got, "slab carved past its capacity");
        // A block in use whose allocated bit is clear: only the final count sees it.
        let (w, bit) = seg.bits(addr);
        w.free_owner(bit).unwrap();
        let got = pool.validate().err().map_or("nothing", |c| c.what);
        w.hand_out(bit).unwrap();
        assert_eq!(got, "state bits disagree with the blocks in use");
        assert_eq!(pool.validate(), Ok(()));
        // A remote bit set with the slab's pending flag down: the owner would never look.
        assert_eq!(w.set_remote_late(bit), Ok(true));
        let got = pool.validate().err().map_or("nothing", |c| c.what);
        assert_eq!(w.take_remote(), (bit, 0));
        w.hand_out(bit).unwrap();
        assert_eq!(got, "blocks freed by another thread wait under a lowered pending flag");
        assert_eq!(pool.validate(), Ok(()));
        // A free block's link pointing into the middle of a block in use (read and written as a
        // pointer: the link it holds, to the blocks carved after it, keeps its provenance).
        let link = blocks[2].cast::<*mut u8>();
        // SAFETY: a free block of the pool: its first word is the list's link, and nothing else
        // runs on this pool now.
        let old = unsafe { link.read() };
        // SAFETY: as above.
        unsafe { link.write(blocks[0].as_ptr().with_addr(addr + 8)) };
        named("free block off its slab's block boundaries");
        // ... or to the first block the slab has not carved (on a block boundary, past the part
        // carved: the first allocation carved every block that starts on the slab's first page).
        let uncarved = addr + crate::heap::CARVE;
        // SAFETY: as above.
        unsafe { link.write(blocks[0].as_ptr().with_addr(uncarved)) };
        named("free block off its slab's block boundaries");
        // SAFETY: as above.
        unsafe { link.write(old) };
        assert_eq!(pool.validate(), Ok(()));
        // An allocated bit set for that uncarved block.
        let (w, bit) = seg.bits(uncarved);
        w.hand_out(bit).unwrap();
        let got = pool.validate().err().map_or("nothing", |c| c.what);
        w.free_owner(bit).unwrap();
        assert_eq!(got, "a state bit is set off the carved blocks' starts");
        assert_eq!(pool.validate(), Ok(()));
        // SAFETY: live blocks with their layout.
        unsafe {
            for &b in [&blocks[0], &blocks[3]] {
                pool.deallocate(b, size);
            }
        }
        assert_eq!(pool.errors().unwrap().detected(), 0);
    }

    #[test]
    fn small_is_the_two_bounds_for_every_size_near_them_and_every_alignment() {
        let sizes = [0, 1, 2, 15, 16, 17, MAX_SMALL - 1, MAX_SMALL, MAX_SMALL + 1, 2 * MAX_SMALL, 1 << 40];
        let mut checked = 0;
        for align in (0..usize::BITS).map(|k| 1usize << k) {
            for size in sizes.into_iter().chain([(isize::MAX as usize + 1).saturating_sub(align)]) {
                let Ok(l) = Layout::from_size_align(size, align) else { continue };
                let plain = (1..=MAX_SMALL).contains(&size) && align <= MAX_ALIGN;
                assert_eq!(Pool::<MmapSource>::small(l), plain, "size {size}, align {align}");
                checked += 1;
            }
        }
        // Every alignment up to isize's bound (2^62 on 64-bit targets) was tried.
        assert!(checked > 12 * usize::BITS as usize - 24, "{checked}");
    }

    #[test]
    fn the_largest_small_size_is_a_slab_block_and_one_more_byte_a_span() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let top = pool.allocate(l(MAX_SMALL)).unwrap();
        assert_eq!(top.len(), MAX_SMALL, "the last class's block, exactly");
        let past = pool.allocate(l(MAX_SMALL + 1)).unwrap();
        let (top, past) = (top.cast::<u8>(), past.cast::<u8>());
        // SAFETY: live blocks; `slab_block` only reads the pool's maps and headers.
        assert!(unsafe { pool.slab_block(top) }.is_some());
        // SAFETY: as above.
        assert!(unsafe { pool.slab_block(past) }.is_none(), "one byte more is the span heap's");
        // SAFETY: live blocks with their layouts, freed once.
        unsafe {
            pool.deallocate(top, l(MAX_SMALL));
            pool.deallocate(past, l(MAX_SMALL + 1));
        }
        assert_eq!(pool.errors().unwrap().detected(), 0);
        assert_eq!(pool.validate(), Ok(()));
    }

    #[test]
    fn a_free_with_a_layout_into_a_slab_serving_no_class_is_a_foreign_pointer() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let b = pool.allocate(l(64)).unwrap().cast::<u8>();
        let seg = Segment::of(b.as_ptr() as usize);
        // The last slab of a fresh segment serves nobody yet, and its state row was never
        // written; a header slab serves nobody ever. Neither fits any layout.
        for at in [seg + (SLABS - 1) * segment::SLAB, seg + 4096] {
            // SAFETY: a pointer the pool never handed out: the misuse is reported (`Count`).
            unsafe { pool.deallocate(b.with_addr(NonZeroUsize::new(at).unwrap()), l(64)) };
            assert_eq!(last_report(&pool), Some((ErrorKind::ForeignPointer, at)));
        }
        // SAFETY: the live block with its layout.
        unsafe { pool.deallocate(b, l(64)) };
        assert_eq!(pool.errors().unwrap().detected(), 2);
        assert_eq!(pool.validate(), Ok(()));
    }

    #[test]
    fn a_free_into_a_slab_given_back_is_a_foreign_pointer() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(8192);
        // Eight fill a slab; the ninth starts another, which becomes the class's current one.
        let blocks: Vec<_> = (0..9).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        let (first, idx) = (blocks[0], segment::slab_index(blocks[0].as_ptr() as usize));
        assert!(blocks[..8].iter().all(|b| segment::slab_index(b.as_ptr() as usize) == idx));
        // SAFETY: live blocks with their layout, freed once.
        unsafe { blocks[..8].iter().for_each(|&b| pool.deallocate(b, size)) };
        // SAFETY: the pool's segment, live while the ninth block is.
        let seg = unsafe { segment_at(Segment::of(first.as_ptr() as usize)) };
        assert!(seg.slabs[idx].class().is_none(), "emptied and not current: given back");
        // Its count of blocks carved is stale: it is not asked (the slab serves nobody).
        // SAFETY: a block freed already: the misuse is reported (`Count`).
        unsafe { pool.deallocate(first, size) };
        assert_eq!(last_report(&pool), Some((ErrorKind::ForeignPointer, first.as_ptr() as usize)));
        // SAFETY: the live block with its layout.
        unsafe { pool.deallocate(blocks[8], size) };
        assert_eq!(pool.errors().unwrap().detected(), 1);
        assert_eq!(pool.validate(), Ok(()));
    }

    #[test]
    fn a_heap_forgets_the_segment_it_gives_back() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(64);
        let p = pool.allocate(size).unwrap().cast::<u8>();
        // SAFETY: a live block with its layout, freed once.
        unsafe { pool.deallocate(p, size) };
        let heap = tls::lookup_first(pool.id()).unwrap();
        let seg = Segment::of(p.as_ptr() as usize);
        // SAFETY: this thread's heap.
        assert_eq!(unsafe { (*heap).known() }, seg, "a free into its own segment makes it known");
        // SAFETY: as above.
        assert!(unsafe { (*heap).knows(seg) } && !unsafe { (*heap).knows(seg + segment::SEGMENT) });
        pool.trim();
        assert!(!pool.inner().unwrap().map.contains(seg), "the empty segment went back");
        // Known still, a free of an address in that memory would be taken as one of its blocks.
        // SAFETY: as above.
        assert_eq!(unsafe { (*heap).known() }, crate::heap::NO_SEGMENT);
        // SAFETY: a pointer the pool no longer has: the misuse is reported (`Count`).
        unsafe { pool.deallocate(p, size) };
        assert_eq!(pool.errors().unwrap().detected(), 1);
        assert_eq!(pool.validate(), Ok(()));
    }

    /// A block carved afresh has its second word zero whatever its slab's memory held (here a
    /// slab that served a larger class, every byte written): what the `hardened` preset relies
    /// on to tell the blocks it freed (its freed key in that word) from fresh ones. Without it
    /// larson under `hardened` aborted with a false `write after free` in about one run in
    /// ten (an old freed key over bytes another class's free list had written).
    #[test]
    fn a_freshly_carved_blocks_second_word_is_zero_over_old_bytes() {
        const SLAB_BLOCKS_MAX: usize = segment::SLAB / 320;
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let (old, new) = (l(384), l(320));
        let slab_of = |p: NonNull<u8>| p.as_ptr() as usize >> segment::SLAB_SHIFT;
        let mut blocks = vec![];
        loop {
            let p = pool.allocate(old).unwrap().cast::<u8>();
            // SAFETY: a live block of 384 bytes.
            unsafe { p.write_bytes(0xa5, 384) };
            blocks.push(p);
            if slab_of(p) != slab_of(blocks[0]) {
                break;
            }
        }
        let first = slab_of(blocks[0]);
        for &p in &blocks[..blocks.len() - 1] {
            // SAFETY: live blocks with their layout, freed once; the last (another slab's, the
            // class's current one) stays, so the emptied slab goes back to the segment.
            unsafe { pool.deallocate(p, old) };
        }
        let (mut fresh, mut old_bytes) = (0, 0);
        for _ in 0..2 * SLAB_BLOCKS_MAX {
            let p = pool.allocate(new).unwrap().cast::<u8>();
            if slab_of(p) == first {
                fresh += 1;
                // SAFETY: a live block of 320 bytes.
                let words = unsafe { p.cast::<u64>().add(1).read() };
                assert_eq!(words, 0, "{p:?}: a fresh block's second word");
                // SAFETY: as above.
                old_bytes += usize::from(unsafe { p.cast::<u64>().add(2).read() } == 0xa5a5_a5a5_a5a5_a5a5);
            }
        }
        assert!(fresh > 100, "the class-320 blocks took the emptied slab ({fresh} there)");
        assert!(old_bytes > 100, "the rest of a fresh block is what the slab held ({old_bytes})");
        assert_eq!(pool.errors().unwrap().detected(), 0);
    }

    /// One test at a time counts the process's slab guards.
    static GUARD_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Past the budget of slab guards a slab starts without one (its last page still holds no
    /// block), and takes one when it starts again with the budget back; a pool's guards leave
    /// the count when the pool goes.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "reads /proc/self/maps")]
    fn past_the_budget_a_slab_starts_without_its_guard() {
        use segment::{GUARD, SLAB};
        let _one = GUARD_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let before = GUARD_PAGES.load(Ordering::Relaxed);
        let slab_end = |p: NonNull<u8>| (p.as_ptr() as usize | (SLAB - 1)) + 1;
        let rw = Some("rw-p".to_string());
        {
            let pool: Pool<MmapSource, Count> = Pool::with_guarded_source(MmapSource::new());
            GUARD_PAGES.store(GUARD_BUDGET, Ordering::Relaxed);
            let p = pool.allocate(l(64)).unwrap().cast::<u8>();
            // SAFETY: a live block's segment.
            let seg = unsafe { segment_at(Segment::of(p.as_ptr() as usize)) };
            let slab = &seg.slabs[segment::slab_index(p.as_ptr() as usize)];
            assert_eq!(protection(slab_end(p) - 1), rw, "no guard past the budget");
            assert_eq!(slab.capacity.get(), (SLAB - GUARD) / 64, "and no block in its place");
            assert_eq!((seg.guarded.get(), GUARD_PAGES.load(Ordering::Relaxed)), (0, GUARD_BUDGET));
            GUARD_PAGES.store(before, Ordering::Relaxed);
            let q = pool.allocate(l(128)).unwrap().cast::<u8>();
            assert_eq!(protection(slab_end(q) - 1).as_deref(), Some("---p"), "under it, a guard");
            assert_eq!(GUARD_PAGES.load(Ordering::Relaxed), before + 1);
            // SAFETY: live blocks with their layouts, freed once.
            unsafe {
                pool.deallocate(p, l(64));
                pool.deallocate(q, l(128));
            }
        }
        assert_eq!(GUARD_PAGES.load(Ordering::Relaxed), before, "the dropped pool's guards are off the count");
    }

    /// A guarded pool's segments keep their headers between inaccessible pages, and each slab
    /// that served a class ends in one, all made usable again when the segment goes back to the
    /// span heap; an unguarded pool's are untouched.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "reads /proc/self/maps")]
    fn a_guarded_pools_segment_headers_lie_between_pages_that_fault() {
        use segment::{HEADER, HEADER_END, SLAB};
        let _one = GUARD_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let size = l(64);
        let guarded: Pool<MmapSource, Count> = Pool::with_guarded_source(MmapSource::new());
        let plain: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let (p, q) = (guarded.allocate(size).unwrap().cast::<u8>(), plain.allocate(size).unwrap().cast::<u8>());
        let (g, s) = (Segment::of(p.as_ptr() as usize), Segment::of(q.as_ptr() as usize));
        let first_slab = FIRST_SLAB * SLAB;
        let at = |seg: usize| {
            [0, HEADER - 1, HEADER, HEADER_END - 1, HEADER_END, first_slab - 1, first_slab].map(|o| protection(seg + o))
        };
        let (n, rw) = (Some("---p".to_string()), Some("rw-p".to_string()));
        assert_eq!(
            at(g),
            [n.clone(), n.clone(), rw.clone(), rw.clone(), n.clone(), n.clone(), rw.clone()],
            "guard page, header, guard pages, first slab"
        );
        assert_eq!(at(s), [(); 7].map(|_| rw.clone()), "no guards without `with_guarded_source`");
        // The block's slab ends in a guard page, which holds no block; the plain pool's slab
        // has blocks up to its end.
        let slab_end = |p: NonNull<u8>| (p.as_ptr() as usize | (SLAB - 1)) + 1;
        assert_eq!(protection(slab_end(p) - 1), n, "the guarded slab's last page");
        assert_eq!(protection(slab_end(p) - segment::GUARD - 1), rw, "the page before it");
        assert_eq!(protection(slab_end(q) - 1), rw);
        // SAFETY: the live blocks' segments.
        let (gs, ss) = unsafe { (segment_at(g), segment_at(s)) };
        let slab = |seg: &Segment, p: NonNull<u8>| seg.slabs[segment::slab_index(p.as_ptr() as usize)].capacity.get();
        assert_eq!((slab(gs, p), slab(ss, q)), ((SLAB - segment::GUARD) / 64, SLAB / 64), "blocks a slab holds");
        // Only the slabs that served a class have their guard: a segment a thread barely uses
        // costs few system calls.
        assert_eq!(gs.guarded.get(), 1 << segment::slab_index(p.as_ptr() as usize));
        assert_eq!(protection(slab_end(p) + SLAB - 1), rw, "the next slab, unused, has no guard yet");
        // A slab that starts again (another class, once emptied) keeps its one guard: no second
        // system call, nor a second count against the budget.
        let count = GUARD_PAGES.load(Ordering::Relaxed);
        let r = guarded.allocate(l(128)).unwrap().cast::<u8>();
        assert_eq!((protection(slab_end(r) - 1), GUARD_PAGES.load(Ordering::Relaxed)), (n.clone(), count + 1));
        // SAFETY: a live block with its layout, freed once.
        unsafe { guarded.deallocate(r, l(128)) };
        guarded.trim();
        assert!(guarded.inner().unwrap().map.contains(g), "the segment stays: `p` is live");
        let r2 = guarded.allocate(l(256)).unwrap().cast::<u8>();
        assert_eq!(slab_end(r2), slab_end(r), "the emptied slab serves the next class");
        assert_eq!((protection(slab_end(r2) - 1), GUARD_PAGES.load(Ordering::Relaxed)), (n.clone(), count + 1));
        // SAFETY: as above.
        unsafe { guarded.deallocate(r2, l(256)) };
        // SAFETY: live blocks with their layouts, freed once.
        unsafe {
            guarded.deallocate(p, size);
            plain.deallocate(q, size);
        }
        guarded.trim();
        assert!(!guarded.inner().unwrap().map.contains(g), "the empty segment went back");
        // The span heap keeps the run (mapped, its pages given back to the OS): usable again.
        assert_eq!(at(g), [(); 7].map(|_| rw.clone()), "the guards are lifted before the span heap has it back");
        assert_eq!(protection(slab_end(p) - 1), rw, "and the slabs' guards");
        assert_eq!(guarded.errors().unwrap().detected(), 0);
        assert_eq!(guarded.validate(), Ok(()));
    }

    /// A guarded pool hands a fresh page's blocks out in a random order (each block once, all
    /// of the page's before the next page's); a plain pool in address order.
    #[test]
    #[cfg_attr(miri, ignore = "mprotect")]
    fn a_guarded_pool_carves_in_a_random_order() {
        let _one = GUARD_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        // The offsets, in blocks from the page's start, of a fresh pool's first 64 blocks of 64
        // bytes (one 4 KiB page's).
        let first_page = |pool: &Pool<MmapSource, Count>| {
            let blocks: Vec<usize> =
                (0..64).map(|_| pool.allocate(l(64)).unwrap().cast::<u8>().as_ptr() as usize).collect();
            let page = blocks.iter().min().unwrap() & !(crate::heap::CARVE - 1);
            let order: Vec<usize> = blocks.iter().map(|b| (b - page) / 64).collect();
            for &b in &blocks {
                // SAFETY: live blocks with their layout, each freed once.
                unsafe { pool.deallocate(NonNull::new(b as *mut u8).unwrap(), l(64)) };
            }
            order
        };
        let plain: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let in_order: Vec<usize> = (0..64).collect();
        assert_eq!(first_page(&plain), in_order);
        let orders: Vec<Vec<usize>> = (0..3)
            .map(|_| {
                let guarded: Pool<MmapSource, Count> = Pool::with_guarded_source(MmapSource::new());
                let order = first_page(&guarded);
                assert_eq!(guarded.validate(), Ok(()));
                order
            })
            .collect();
        for order in &orders {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, in_order, "each block of the page once: {order:?}");
            // 64! orders; address order by chance: about 1 in 10^89.
            assert_ne!(*order, in_order);
        }
        // Three pools, three seeds: their first two blocks are not all alike (by chance: about
        // 1 in 16 million).
        assert!(orders.iter().any(|o| o[0] != orders[0][0]) || orders.iter().any(|o| o[1] != orders[0][1]));
    }

    #[test]
    fn slab_block_names_a_blocks_class_and_size_and_nothing_else() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let x = 0u128;
        // SAFETY: any address (the pool's maps are checked first); the pool is not made yet.
        assert_eq!(unsafe { pool.slab_block(NonNull::from(&x).cast()) }, None, "no pool yet");
        for size in [1, 16, 17, 100, 1000, 5000, MAX_SMALL] {
            let p = pool.allocate(l(size)).unwrap().cast::<u8>();
            let c = <Classes as alloc_core::SizeClasses>::class_of(size);
            // SAFETY: a live block of the pool, then addresses its maps turn away.
            unsafe {
                assert_eq!(pool.slab_block(p), Some((c, crate::block_size(c))), "{size} B");
                assert_eq!(pool.slab_block_size(p), Some(crate::block_size(c)), "{size} B");
                assert_eq!(pool.slab_block(p.byte_add(8)), None, "{size} B: not 16-aligned");
                assert_eq!(pool.slab_block(NonNull::from(&x).cast()), None, "a foreign pointer");
                let header = p.with_addr(core::num::NonZeroUsize::new(Segment::of(p.addr().get()) + 4096).unwrap());
                assert_eq!(pool.slab_block(header), None, "{size} B: the segment's header");
                // A block's start, and an address 16 bytes into it (a block of 16: the next
                // block's start; `slab_block` names both).
                assert_eq!(pool.slab_block_start(p), Some((c, crate::block_size(c))), "{size} B");
                let inside = p.byte_add(16);
                assert_eq!(pool.slab_block(inside), Some((c, crate::block_size(c))), "{size} B");
                let expected = (crate::block_size(c) == 16).then_some((c, 16));
                assert_eq!(pool.slab_block_start(inside), expected, "{size} B: 16 bytes in");
                pool.deallocate(p, l(size));
            }
        }
    }

    /// The kind a misuse is reported as: a double free of any carved block (not only the first
    /// of its slab; carved blocks not handed out yet are free too), a foreign pointer for a block
    /// start not carved yet, interior pointers.
    #[test]
    fn misuse_kinds_inside_a_slab() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(64);
        let blocks: Vec<_> = (0..3).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        // SAFETY: a live block with its layout, freed once.
        unsafe { pool.deallocate(blocks[2], size) };
        let base = blocks[0].as_ptr() as usize;
        let at = |a: usize| NonNull::new(blocks[0].as_ptr().with_addr(a)).unwrap();
        let kind = |a: usize| {
            // SAFETY: an address in one of the pool's slabs (which the pool owns).
            unsafe { SizeOf::misuse_at(&pool, at(a)) }.kind
        };
        assert_eq!(kind(base + 128), ErrorKind::DoubleFree, "the third block, freed");
        assert_eq!(kind(base + 640), ErrorKind::DoubleFree, "carved with the first, never handed out");
        assert_eq!(kind(base + crate::heap::CARVE + 640), ErrorKind::ForeignPointer, "a block never carved");
        assert_eq!(kind(base + 72), ErrorKind::InteriorPointer, "inside the second block");
        assert_eq!(kind(base + 8), ErrorKind::InteriorPointer, "off the granules");
        // SAFETY: the misuse under test (Count: reported only).
        unsafe { pool.deallocate(blocks[2], size) };
        assert_eq!(last_report(&pool).map(|(kind, _)| kind), Some(ErrorKind::DoubleFree));
        assert_eq!(format!("{pool:?}").split_whitespace().next(), Some("Pool"));
        // SAFETY: live blocks with their layout.
        unsafe {
            pool.deallocate(blocks[0], size);
            pool.deallocate(blocks[1], size);
        }
    }

    /// Two frees of one block at once, by its owner and by another thread, that both got past
    /// the state bits (the other thread loaded the allocated bit before the owner's free cleared
    /// it), emulated step by step: the block ends on the owner's local list with its remote bit
    /// set. Returns its address and the slab's other live blocks (enough before it that the
    /// block is neither its slab's first nor in the first state word, so a report at any other
    /// granule is told from it).
    fn free_twice_at_once(pool: &Pool<MmapSource, Count>, size: Layout) -> (usize, Vec<NonNull<u8>>) {
        let mut keep: Vec<_> = (0..70).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        let a = pool.allocate(size).unwrap().cast::<u8>();
        keep.push(pool.allocate(size).unwrap().cast::<u8>());
        let addr = a.as_ptr() as usize;
        // The other thread's free, first half: the block is in use.
        // SAFETY: the block is live, in a segment of this pool.
        let seg = unsafe { segment_at(Segment::of(addr)) };
        let slab = &seg.slabs[segment::slab_index(addr)];
        let (w, bit) = seg.bits(addr);
        assert!(w.in_use(bit));
        // The owner's free, whole: onto its local list.
        // SAFETY: a live block with its layout.
        unsafe { pool.deallocate(a, size) };
        assert_eq!(pool.errors().unwrap().detected(), 0);
        // The other thread's free, second half: the remote bit (the word's first), and the flag.
        assert_eq!(w.set_remote_late(bit), Ok(true));
        slab.lists.note_remote();
        (addr, keep)
    }

    /// Allocates `n` blocks of `size`, checks `addr` is among them at most once, frees them and
    /// `keep`, and checks the pool reported exactly one misuse, a double free at `addr`.
    fn hand_out_once_and_free(pool: &Pool<MmapSource, Count>, size: Layout, addr: usize, keep: Vec<NonNull<u8>>) {
        let next: Vec<_> = (0..4).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        let handed = next.iter().filter(|p| p.as_ptr() as usize == addr).count();
        assert!(handed <= 1, "the block was handed out {handed} times");
        assert_eq!(pool.validate(), Ok(()));
        for p in next.into_iter().chain(keep) {
            // SAFETY: live blocks with their layout.
            unsafe { pool.deallocate(p, size) };
        }
        let errors = pool.errors().unwrap();
        assert_eq!(errors.detected(), 1);
        assert_eq!(errors.last().map(|e| (e.kind, e.addr)), Some((ErrorKind::DoubleFree, addr)));
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
    }

    /// The raced double free, found when the owner hands the block out again (it comes off the
    /// local list first): refused there, reported at its address, handed out once.
    #[test]
    fn a_double_free_raced_by_the_owner_and_another_thread_is_reported_at_hand_out() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(48);
        let (addr, keep) = free_twice_at_once(&pool, size);
        // The next allocation of the class pops the block and refuses it (its remote bit is then
        // taken back once, and the block may be this very allocation).
        let p = pool.allocate(size).unwrap().cast::<u8>();
        assert_eq!(last_report(&pool), Some((ErrorKind::DoubleFree, addr)));
        // SAFETY: a live block with its layout.
        unsafe { pool.deallocate(p, size) };
        hand_out_once_and_free(&pool, size, addr, keep);
    }

    /// The raced double free, found when the owner takes the remote bits back first (a trim
    /// collects every slab's): the block's bit is refused there and reported at its address.
    #[test]
    fn a_double_free_raced_by_the_owner_and_another_thread_is_reported_at_take_back() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(48);
        let (addr, keep) = free_twice_at_once(&pool, size);
        pool.trim();
        assert_eq!(last_report(&pool), Some((ErrorKind::DoubleFree, addr)));
        hand_out_once_and_free(&pool, size, addr, keep);
    }

    /// `allocate`'s two halves as a front end calls them: the fast path alone has nothing
    /// before the thread's first use, takes the blocks the slow path carved with its first and
    /// freed blocks (it carves none itself) and refuses a block its hand-out finds freed twice;
    /// the slow path after it gives a block and reports what the fast path found, at its address.
    #[test]
    fn the_fast_path_alone_then_the_slow_path_report_what_the_fast_one_found() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        assert!(pool.allocate_small_fast(48).is_none(), "no heap before the first use");
        let mut live = Vec::new();
        for size in [48, 5000] {
            let first = pool.allocate_small_slow(size).unwrap();
            let block = crate::block_size(Classes::class_of(size));
            assert_eq!(first.len(), block);
            // The slow path carved every block that starts on the first one's page (one for
            // blocks past a page); the fast path takes them in address order, then nothing.
            let carved: Vec<_> = core::iter::from_fn(|| pool.allocate_small_fast(size)).collect();
            assert_eq!(carved.len(), crate::heap::CARVE.div_ceil(block) - 1, "{size} B");
            for (i, p) in carved.iter().enumerate() {
                assert_eq!(p.as_ptr() as usize, first.cast::<u8>().as_ptr() as usize + (i + 1) * block);
            }
            live.extend(carved.into_iter().map(|p| (p, size)));
            if size == 48 {
                // The next carve starts inside the second page (86 blocks of 48 bytes end 32
                // bytes into it): the blocks that start on that page, up to its end.
                let next = pool.allocate_small_slow(size).unwrap();
                let at = next.cast::<u8>().as_ptr() as usize % crate::heap::CARVE;
                assert_eq!(at, 32);
                let carved: Vec<_> = core::iter::from_fn(|| pool.allocate_small_fast(size)).collect();
                assert_eq!(carved.len(), (crate::heap::CARVE - 32).div_ceil(block) - 1);
                live.push((next.cast(), size));
                live.extend(carved.into_iter().map(|p| (p, size)));
            }
            // SAFETY: a live block with a layout of its class.
            unsafe { pool.deallocate(first.cast(), l(size)) };
            let again = pool.allocate_small_fast(size).expect("the block just freed");
            assert_eq!(again, first.cast());
            live.push((again, size));
        }
        assert!(pool.allocate_small_fast(MAX_SMALL + 1).is_none(), "past the small sizes: no block");
        let (addr, keep) = free_twice_at_once(&pool, l(48));
        assert!(pool.allocate_small_fast(48).is_none(), "the block freed twice is refused");
        assert_eq!(pool.errors().unwrap().detected(), 0, "not reported yet");
        let p = pool.allocate_small_slow(48).unwrap().cast::<u8>();
        assert_eq!(last_report(&pool), Some((ErrorKind::DoubleFree, addr)));
        live.push((p, 48));
        live.extend(keep.into_iter().map(|k| (k, 48)));
        for (p, size) in live {
            // SAFETY: live blocks; a layout of their class.
            unsafe { pool.deallocate(p, l(size)) };
        }
        assert_eq!(pool.errors().unwrap().detected(), 1);
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
    }

    /// A dropped pool's segments leave the map of every pool's segments: the span heap unmaps
    /// them, and a free into another pool of a block the OS maps there later must not read that
    /// memory as a segment header.
    #[test]
    #[cfg_attr(miri, ignore = "mmap")]
    fn a_dropped_pools_segments_leave_the_map_of_all_segments() {
        let pool: Pool<alloc_core::MmapSource, Count> = Pool::with_source(alloc_core::MmapSource::new());
        let l = Layout::from_size_align(48, 8).unwrap();
        let p = pool.allocate(l).unwrap().cast::<u8>();
        let seg = Segment::of(p.as_ptr() as usize);
        assert!(any_pools(seg));
        // SAFETY: a live block with its layout.
        unsafe { pool.deallocate(p, l) };
        drop(pool);
        assert!(!any_pools(seg), "the map still says a segment is mapped at {seg:#x}");
    }

    /// A segment given back clears its own bit in the map every pool's free path reads (a free
    /// into it must not read a header that is gone), and only its own: the pool's other segment, in the same word of the map (the buffer is
    /// aligned to the 256 MiB a word covers), still takes its blocks back.
    #[test]
    #[cfg_attr(miri, ignore = "a 64 MiB buffer: 76 s of the CI's Miri step")]
    fn a_segment_given_back_leaves_its_neighbours_marked() {
        let layout = Layout::from_size_align(64 << 20, 256 << 20).unwrap();
        // SAFETY: a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!raw.is_null());
        // SAFETY: 64 MiB just allocated, zeroed, freed below after the pool is dropped.
        let buf: &'static mut [u8] = unsafe { core::slice::from_raw_parts_mut(raw, 64 << 20) };
        let pool: Pool<Shared, Count> = Pool::with_source(Shared(std::sync::Mutex::new(FixedSource::new(buf))));
        let size = l(MAX_SMALL);
        // More 16 KiB blocks than one 4 MiB segment holds.
        let blocks: Vec<_> = (0..300).map(|_| pool.allocate(size).unwrap().cast::<u8>()).collect();
        let seg = |p: &NonNull<u8>| Segment::of(p.as_ptr() as usize);
        let first = seg(&blocks[0]);
        let (kept, rest): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|p| seg(p) == first);
        assert!(!rest.is_empty() && rest.iter().all(|p| (seg(p) ^ first) >> 28 == 0), "one word of the map");
        let second = seg(&rest[0]);
        for p in rest {
            // SAFETY: live blocks with their layout.
            unsafe { pool.deallocate(p, size) };
        }
        assert_eq!(pool.stats().segments, 2);
        pool.trim();
        assert_eq!(pool.stats().segments, 1, "the empty segment went back");
        assert!(!any_pools(second), "the segment given back is no longer marked");
        assert!(any_pools(first), "the other segment is still marked");
        for p in kept {
            // SAFETY: live blocks with their layout.
            unsafe { pool.deallocate(p, size) };
        }
        assert_eq!(pool.errors().unwrap().detected(), 0, "{:?}", pool.errors().unwrap().last());
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
        drop(pool);
        // SAFETY: the pool is gone; allocated above with this layout.
        unsafe { std::alloc::dealloc(raw, layout) };
    }

    /// A slab whose every block was freed by another thread, while the owner had moved on to a
    /// newer slab, is used again when that one is spent: its pending flag makes it usable, and
    /// the owner takes the blocks back instead of carving a new slab.
    #[test]
    fn a_slab_freed_remotely_is_used_again_before_a_new_one() {
        let pool: Pool<MmapSource, Count> = Pool::with_source(MmapSource::new());
        let size = l(MAX_SMALL);
        let slab_of = |p: &NonNull<u8>| p.as_ptr() as usize >> segment::SLAB_SHIFT;
        // Fill the first slab; the block after it starts the second.
        let mut first = vec![pool.allocate(size).unwrap().cast::<u8>()];
        let second = loop {
            let p = pool.allocate(size).unwrap().cast::<u8>();
            if slab_of(&p) != slab_of(&first[0]) {
                break vec![p];
            }
            first.push(p);
        };
        let mut second = second;
        // Another thread frees the whole first slab.
        let theirs: Vec<usize> = first.iter().map(|p| p.as_ptr() as usize).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for &a in &theirs {
                    // SAFETY: live blocks with their layout, handed to this thread.
                    unsafe { pool.deallocate(NonNull::new(a as *mut u8).unwrap(), size) };
                }
            });
        });
        // The second slab runs out; the next blocks are the first slab's again.
        while second.len() < first.len() {
            second.push(pool.allocate(size).unwrap().cast::<u8>());
        }
        assert!(second.iter().all(|p| slab_of(p) == slab_of(&second[0])));
        let mut again: Vec<usize> =
            (0..first.len()).map(|_| pool.allocate(size).unwrap().as_ptr().cast::<u8>() as usize).collect();
        again.sort_unstable();
        let mut theirs = theirs;
        theirs.sort_unstable();
        assert_eq!(again, theirs, "the remotely freed slab is reused");
        assert_eq!(pool.errors().unwrap().detected(), 0);
        for a in again.into_iter().chain(second.iter().map(|p| p.as_ptr() as usize)) {
            // SAFETY: live blocks with their layout.
            unsafe { pool.deallocate(NonNull::new(a as *mut u8).unwrap(), size) };
        }
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
    }

    /// A pool over memory that is not zero (a buffer full of 0xff, as a page source may hand
    /// out recycled memory): everything the pool relies on is written when a segment or slab
    /// starts, not assumed zero.
    #[test]
    fn a_pool_over_dirty_memory_starts_its_slabs_clean() {
        let raw = Box::into_raw(vec![0xffu8; 24 << 20].into_boxed_slice());
        // SAFETY: the buffer is freed below, after the pool that uses it is dropped.
        let buf: &'static mut [u8] = unsafe { &mut *raw };
        let pool: Pool<Shared, Count> = Pool::with_source(Shared(std::sync::Mutex::new(FixedSource::new(buf))));
        let blocks: Vec<_> =
            [16usize, 48, 100, 1000, 3000].iter().map(|&n| (pool.allocate(l(n)).unwrap(), n)).collect();
        assert_eq!(pool.validate(), Ok(()));
        for &(b, n) in &blocks {
            // SAFETY: live blocks with their layouts, freed once.
            unsafe { pool.deallocate(b.cast(), l(n)) };
        }
        assert_eq!(pool.errors().unwrap().detected(), 0, "{:?}", pool.errors().unwrap().last());
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
        drop(pool);
        // SAFETY: the pool is gone; nothing uses the buffer.
        drop(unsafe { Box::from_raw(raw) });
    }
}
