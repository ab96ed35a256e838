//! The span heap layer: blocks are runs of whole pages (spans) carved from arenas.
//!
//! - **allocate**: round the request up to pages, take the best-fitting free span (exact-size
//!   lists, then a treap: O(1) or O(log n)), split off what is not needed, and map the span's
//!   first and last page to it. No free span fits: map a new arena (4 MiB doubling to 64 MiB, or
//!   as large as the request) and try again. Requests of [`SpanConfig::huge`] bytes or more get a
//!   mapping of their own, unmapped at their free.
//! - **deallocate**: find the span through the arena index and the page map (O(1)), check the
//!   pointer is the start of a span in use and the layout fits it (else report through the
//!   error policy), coalesce with free neighbours, and put it back.
//! - **resize in place**: shrink by splitting the tail off; grow into a free right neighbour.
//! - **scavenge**: free pages go back to the OS (`madvise(MADV_DONTNEED)`) when they have been
//!   free longer than [`SpanConfig::delay_ns`] or when more than [`SpanConfig::retain`] bytes of
//!   free memory are resident, oldest first; [`SpanHeap::trim`] returns all of it at once.
//!   Returned pages are marked clean in the arena's bitmap: reused, they need no zeroing, and an
//!   `allocate_zeroed` over fresh or returned pages writes nothing.

use crate::arena::HeapArena;
use crate::free::FreeSpans;
use crate::index::{ArenaIndex, GRANULE};
use crate::meta::MetaPool;
use crate::span::{SpanDesc, State};
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Corruption, Layer, Owns, ResizeFn, SizeOf, UsableSize, Validate};
use alloc_core::source::{Access, Decommit, PageSource, Protect};
use alloc_core::stats::{NoStats, StatsPolicy};
use alloc_core::{ptr, Abort, AllocError, Layout};
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The heap's tunables.
#[derive(Copy, Clone, Debug)]
pub struct SpanConfig {
    /// Free bytes kept resident for reuse; past this the oldest free pages go back to the OS.
    pub retain: usize,
    /// Free pages older than this (nanoseconds) go back to the OS at the next free; `u64::MAX`
    /// never by age.
    pub delay_ns: u64,
    /// Requests of at least this many bytes get a mapping of their own, unmapped at their free.
    pub huge: usize,
    /// The first arena's size; arenas double up to `max_arena` (or are as large as a request).
    pub first_arena: usize,
    /// The largest arena mapped ahead of need.
    pub max_arena: usize,
    /// Ask the OS for transparent huge pages on arenas (`MADV_HUGEPAGE`). Off by default: on the
    /// `large-spans` benchmark it bought no time once pages were resident, made first touches
    /// slower (2 MiB zeroed at a time), and coarsens what scavenging can return.
    pub huge_pages: bool,
    /// The clock the age policy reads, in nanoseconds (`None`: no clock, byte limit only).
    pub clock: fn() -> Option<u64>,
}

impl SpanConfig {
    /// The defaults: keep up to 64 MiB of free memory resident, return pages free for 5 s,
    /// map requests of 1 GiB or more directly, arenas from 4 MiB to 64 MiB, no huge pages.
    pub const DEFAULT: SpanConfig = SpanConfig {
        retain: 64 << 20,
        delay_ns: 5_000_000_000,
        huge: 1 << 30,
        first_arena: 4 << 20,
        max_arena: 64 << 20,
        huge_pages: false,
        clock: alloc_core::clock::now_ns,
    };
}

impl Default for SpanConfig {
    fn default() -> Self {
        SpanConfig::DEFAULT
    }
}

/// The guard-page policy slot (a debugging aid): with [`GuardPages`] every span is followed by a
/// page that faults on any access, so a write past a block stops the program at once.
pub trait GuardPolicy<S> {
    /// Guard pages after each span.
    const PAGES: usize;

    /// Makes `len` bytes at `at` fault on access.
    ///
    /// # Safety
    ///
    /// A page-aligned range of a run from `source` that holds nothing in use.
    unsafe fn arm(source: &S, at: NonNull<u8>, len: usize);

    /// Makes the range usable again.
    ///
    /// # Safety
    ///
    /// A range armed before.
    unsafe fn disarm(source: &S, at: NonNull<u8>, len: usize);
}

/// No guard pages (the default).
#[derive(Copy, Clone, Debug, Default)]
pub struct NoGuards;

impl<S> GuardPolicy<S> for NoGuards {
    const PAGES: usize = 0;
    #[inline(always)]
    unsafe fn arm(_: &S, _: NonNull<u8>, _: usize) {}
    #[inline(always)]
    unsafe fn disarm(_: &S, _: NonNull<u8>, _: usize) {}
}

/// One `PROT_NONE` page after every span (needs a source with [`Protect`]).
#[derive(Copy, Clone, Debug, Default)]
pub struct GuardPages;

impl<S: Protect> GuardPolicy<S> for GuardPages {
    const PAGES: usize = 1;
    unsafe fn arm(source: &S, at: NonNull<u8>, len: usize) {
        // SAFETY: the caller names a page range of ours holding nothing in use.
        unsafe { source.protect(at, len, Access::None) }
    }
    unsafe fn disarm(source: &S, at: NonNull<u8>, len: usize) {
        // SAFETY: as above.
        unsafe { source.protect(at, len, Access::ReadWrite) }
    }
}

/// What the heap holds, in bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanStats {
    /// In spans in use (whole pages, guard pages included).
    pub in_use: usize,
    /// Free and resident: reused without a page fault, or returned by the next scavenge.
    pub idle: usize,
    /// Free and returned to the OS (or never touched): costs no memory.
    pub released: usize,
    /// Mapped from the page source: arenas, huge mappings, and the heap's own metadata.
    pub mapped: usize,
    /// Bytes returned to the OS by scavenging over the heap's life.
    pub scavenged: usize,
    /// Spans in use, huge ones included.
    pub live_spans: usize,
    /// Free spans.
    pub free_spans: usize,
    /// Regular arenas mapped.
    pub arenas: usize,
    /// Blocks with a mapping of their own.
    pub huge_spans: usize,
}

/// Where a span taken off the free structures sat on the scavenger's list, so what is split off
/// it can go back in the same place (keeping the list oldest first).
#[derive(Copy, Clone)]
enum DirtyPos {
    /// It was not on the list (all its pages clean).
    Off,
    /// It followed this span (`None`: it was the head).
    After(Option<NonNull<SpanDesc>>),
}

/// The page-span heap over page source `S`, with error policy `E`, statistics policy `C` and
/// guard-page policy `G`.
pub struct SpanHeap<
    S: PageSource + Decommit,
    E: ErrorPolicy = Abort,
    C: StatsPolicy = NoStats,
    G: GuardPolicy<S> = NoGuards,
> {
    source: S,
    config: SpanConfig,
    /// The page size and its log2; 0 until the first allocation reads them from the source.
    page: usize,
    shift: u32,
    index: ArenaIndex,
    /// Every arena, regular and huge, newest first.
    arenas: Option<NonNull<HeapArena>>,
    span_records: MetaPool<SpanDesc>,
    arena_records: MetaPool<HeapArena>,
    free: FreeSpans,
    /// Free spans with dirty pages, oldest first.
    dirty_head: Option<NonNull<SpanDesc>>,
    dirty_tail: Option<NonNull<SpanDesc>>,
    /// Clean pages in free spans.
    clean_free: usize,
    /// Pages in spans in use (regular arenas).
    in_use_pages: usize,
    live_spans: usize,
    /// Bytes of regular arenas and of huge mappings.
    arena_bytes: usize,
    regular_arenas: usize,
    huge_bytes: usize,
    huge_spans: usize,
    /// The next arena's size.
    next_arena: usize,
    /// When the age policy last looked.
    last_age_check: u64,
    scavenged: usize,
    errors: E,
    stats: C,
    _guard: PhantomData<G>,
}

// SAFETY: the heap owns its arenas, metadata and the spans in them exclusively; moving it moves
// that ownership (the raw pointers inside point only into memory it mapped).
unsafe impl<S: PageSource + Decommit + Send, E: ErrorPolicy + Send, C: StatsPolicy + Send, G: GuardPolicy<S>> Send
    for SpanHeap<S, E, C, G>
{
}

/// A span descriptor, borrowed for one step.
///
/// # Safety
///
/// `p` is a live descriptor of a heap the caller holds (exclusively, to write through it), and
/// no other reference to the descriptor is used while this one lives. The heap's structures (the
/// page maps, the free spans, the scavenger's list, an arena's huge span) hold only live
/// descriptors, and the private methods below that take a descriptor take one from them.
#[inline(always)]
unsafe fn sp<'a>(p: NonNull<SpanDesc>) -> &'a mut SpanDesc {
    // SAFETY: as the caller promises.
    unsafe { &mut *p.as_ptr() }
}

/// A span descriptor, borrowed shared for reading (several may coexist).
///
/// # Safety
///
/// As for [`sp`], except that other shared references may coexist; no `&mut` does.
#[inline(always)]
unsafe fn spr<'a>(p: NonNull<SpanDesc>) -> &'a SpanDesc {
    // SAFETY: as the caller promises.
    unsafe { &*p.as_ptr() }
}

/// An arena record, borrowed for writing its fields.
///
/// # Safety
///
/// `p` is a live arena record of a heap the caller holds exclusively (on its arena list or in
/// its index), and no other reference to it is used while this one lives.
#[inline(always)]
unsafe fn ar<'a>(p: NonNull<HeapArena>) -> &'a mut HeapArena {
    // SAFETY: as the caller promises.
    unsafe { &mut *p.as_ptr() }
}

/// An arena record, borrowed shared (its page map and bitmap are written through raw pointers,
/// which a shared borrow of the record allows).
///
/// # Safety
///
/// As for [`ar`], except that other shared references may coexist; no `&mut` does.
#[inline(always)]
unsafe fn arr<'a>(p: NonNull<HeapArena>) -> &'a HeapArena {
    // SAFETY: as the caller promises.
    unsafe { &*p.as_ptr() }
}

#[cfg(test)]
impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> SpanHeap<S, E, C, G> {
    /// Tests: the count of live spans, to throw it off (and put it back) where a validator
    /// must see it.
    pub(crate) fn live_spans_mut(&mut self) -> &mut usize {
        &mut self.live_spans
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> SpanHeap<S, E, C, G> {
    /// An empty heap with the default configuration; maps nothing until the first allocation.
    pub const fn new(source: S) -> Self {
        Self::with_config(source, SpanConfig::DEFAULT)
    }

    /// An empty heap with `config`.
    pub const fn with_config(source: S, config: SpanConfig) -> Self {
        SpanHeap {
            source,
            config,
            page: 0,
            shift: 0,
            index: ArenaIndex::new(),
            arenas: None,
            span_records: MetaPool::new(),
            arena_records: MetaPool::new(),
            free: FreeSpans::new(),
            dirty_head: None,
            dirty_tail: None,
            clean_free: 0,
            in_use_pages: 0,
            live_spans: 0,
            arena_bytes: 0,
            regular_arenas: 0,
            huge_bytes: 0,
            huge_spans: 0,
            next_arena: config.first_arena,
            last_age_check: 0,
            scavenged: 0,
            errors: E::INIT,
            stats: C::INIT,
            _guard: PhantomData,
        }
    }

    /// Gives every page back and returns the page source.
    pub fn into_source(self) -> S {
        let mut me = core::mem::ManuallyDrop::new(self);
        me.release_everything();
        // SAFETY: `me` is never used or dropped again; the source is moved out exactly once.
        unsafe { core::ptr::read(&me.source) }
    }

    /// Unmaps every arena, huge mapping and metadata page (what `Drop` does).
    fn release_everything(&mut self) {
        while let Some(a) = self.arenas {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            let r = unsafe { arr(a) };
            self.arenas = r.next;
            self.stats.on_unmap(r.map_len);
            // SAFETY: no block is in use any more (drop, or `into_source` taking `self`); each
            // arena is its own mapping.
            unsafe { self.source.unmap(r.map_base, r.map_len) };
        }
        // SAFETY: nothing uses the tables or records any more.
        unsafe {
            self.index.release_all(&self.source);
            self.span_records.release_all(&self.source);
            self.arena_records.release_all(&self.source);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SpanConfig {
        &self.config
    }

    /// The error policy (for [`alloc_core::Count`], what was detected).
    pub fn errors(&self) -> &E {
        &self.errors
    }

    /// The statistics policy (for [`alloc_core::Counting`], `.get()` gives the counters).
    pub fn counters(&self) -> &C {
        &self.stats
    }

    /// The page source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// In use, idle, released and mapped bytes, and span and arena counts.
    pub fn span_stats(&self) -> SpanStats {
        let page = self.page;
        SpanStats {
            in_use: (self.in_use_pages * page) + self.huge_bytes,
            idle: (self.free.pages - self.clean_free) * page,
            released: self.clean_free * page,
            mapped: self.arena_bytes
                + self.huge_bytes
                + self.index.mapped
                + self.span_records.mapped
                + self.arena_records.mapped,
            scavenged: self.scavenged,
            live_spans: self.live_spans,
            free_spans: self.free.count,
            arenas: self.regular_arenas,
            huge_spans: self.huge_spans,
        }
    }

    #[inline(always)]
    fn init(&mut self) {
        if self.page == 0 {
            self.page = self.source.page_size();
            self.shift = self.page.trailing_zeros();
        }
    }

    #[cold]
    #[inline(never)]
    fn report(&self, kind: ErrorKind, addr: usize) {
        self.errors.report(HeapError::new(kind, addr));
    }

    /// The page pointer for `addr` inside `arena`'s mapping (its provenance).
    #[inline(always)]
    fn at(&self, arena: NonNull<HeapArena>, addr: usize) -> NonNull<u8> {
        // SAFETY: callers pass addresses inside the arena's mapping.
        unsafe { ptr::with_addr(arr(arena).map_base, addr) }
    }

    /// Page index of `addr` in its regular arena.
    #[inline(always)]
    fn page_of(&self, arena: NonNull<HeapArena>, addr: usize) -> usize {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        (addr - unsafe { arr(arena) }.start) >> self.shift
    }

    /// Points the page map's first and last entries of `p` at it.
    fn map_span(&self, p: NonNull<SpanDesc>) {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, pages, arena) = (unsafe { sp(p) }.start, unsafe { sp(p) }.pages, unsafe { sp(p) }.arena);
        let first = self.page_of(arena, start);
        // SAFETY: the span lies in its arena: first + pages <= arena pages.
        unsafe {
            arr(arena).set_map(first, Some(p));
            arr(arena).set_map(first + pages - 1, Some(p));
        }
    }

    /// A new descriptor; `None` when the metadata pool is out of memory.
    fn new_span(
        &mut self,
        start: usize,
        pages: usize,
        state: State,
        arena: NonNull<HeapArena>,
    ) -> Option<NonNull<SpanDesc>> {
        self.span_records.alloc(&self.source, SpanDesc::new(start, pages, state, arena))
    }

    fn drop_span(&mut self, p: NonNull<SpanDesc>) {
        // SAFETY: the descriptor is off every structure and unused from here on.
        unsafe { self.span_records.free(p) }
    }

    // ---- the scavenger's list ----

    fn dirty_unlink(&mut self, p: NonNull<SpanDesc>) -> DirtyPos {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if !unsafe { sp(p) }.on_dirty {
            return DirtyPos::Off;
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (prev, next) = (unsafe { sp(p) }.dirty_prev, unsafe { sp(p) }.dirty_next);
        match prev {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            Some(q) => unsafe { sp(q) }.dirty_next = next,
            None => self.dirty_head = next,
        }
        match next {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            Some(q) => unsafe { sp(q) }.dirty_prev = prev,
            None => self.dirty_tail = prev,
        }
        // SAFETY: `p`: descriptors from the heap's own structures (see `sp`), one borrow per write.
        unsafe {
            sp(p).on_dirty = false;
            sp(p).dirty_prev = None;
            sp(p).dirty_next = None;
        }
        DirtyPos::After(prev)
    }

    /// Links `p` after `prev` (`None`: at the head).
    fn dirty_link_after(&mut self, prev: Option<NonNull<SpanDesc>>, p: NonNull<SpanDesc>) {
        let next = match prev {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            Some(q) => unsafe { sp(q) }.dirty_next,
            None => self.dirty_head,
        };
        // SAFETY: `p`: descriptors from the heap's own structures (see `sp`), one borrow per write.
        unsafe {
            sp(p).dirty_prev = prev;
            sp(p).dirty_next = next;
            sp(p).on_dirty = true;
        }
        match prev {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            Some(q) => unsafe { sp(q) }.dirty_next = Some(p),
            None => self.dirty_head = Some(p),
        }
        match next {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            Some(q) => unsafe { sp(q) }.dirty_prev = Some(p),
            None => self.dirty_tail = Some(p),
        }
    }

    /// Whether the free span `p` has dirty pages.
    #[inline]
    fn has_dirty(&self, p: NonNull<SpanDesc>) -> bool {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { spr(p) }.clean < unsafe { spr(p) }.pages
    }

    /// Clean pages of `p`'s arena in `start..start + pages << shift` (0 without looking when
    /// the span they come from has none).
    fn clean_in(&self, from: NonNull<SpanDesc>, start: usize, pages: usize) -> usize {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if unsafe { spr(from) }.clean == 0 {
            return 0;
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if unsafe { spr(from) }.clean == unsafe { spr(from) }.pages {
            return pages;
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let arena = unsafe { spr(from) }.arena;
        let first = self.page_of(arena, start);
        // SAFETY: the range lies in the span, in its arena.
        unsafe { arr(arena).count_clean(first, first + pages) }
    }

    // ---- free structures ----

    /// Takes a free span off the free structures and the scavenger's list.
    fn take_free(&mut self, p: NonNull<SpanDesc>) -> DirtyPos {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { self.free.remove(p) };
        self.dirty_unlink(p)
    }

    /// Puts the free span `p` back: free structures, page map, and the scavenger's list at `pos`
    /// (or at the tail, as freed now) when it has dirty pages.
    fn put_free(&mut self, p: NonNull<SpanDesc>, pos: Option<DirtyPos>) {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.state = State::Free;
        self.map_span(p);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { self.free.insert(p) };
        if self.has_dirty(p) {
            match pos {
                Some(DirtyPos::After(prev)) => self.dirty_link_after(prev, p),
                Some(DirtyPos::Off) | None => {
                    let tail = self.dirty_tail;
                    self.dirty_link_after(tail, p)
                }
            }
        }
    }

    /// Splits the free span `p` (already taken off the free structures) so that it keeps its
    /// first `keep` pages, and puts the rest back as a free span at `pos`.
    fn split_tail(&mut self, p: NonNull<SpanDesc>, keep: usize, pos: DirtyPos) -> Result<(), AllocError> {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, pages, arena, freed_at) =
            (unsafe { sp(p) }.start, unsafe { sp(p) }.pages, unsafe { sp(p) }.arena, unsafe { sp(p) }.freed_at);
        if pages == keep {
            return Ok(());
        }
        let rest_start = start + (keep << self.shift);
        // Count whichever part is smaller; the other gets the difference.
        let rest_clean = if keep < pages - keep {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.clean - self.clean_in(p, start, keep)
        } else {
            self.clean_in(p, rest_start, pages - keep)
        };
        let rest = self.new_span(rest_start, pages - keep, State::Free, arena).ok_or(AllocError)?;
        // SAFETY: `p` and `rest`: descriptors from the heap's own structures (see `sp`), one borrow per write.
        unsafe {
            sp(rest).freed_at = freed_at;
            sp(rest).clean = rest_clean;
            sp(p).clean -= rest_clean;
            sp(p).pages = keep;
        }
        self.put_free(rest, Some(pos));
        Ok(())
    }

    /// Splits the first `head` pages off the free span `p` (off the free structures) as a free
    /// span of their own, put back at `pos`; `p` keeps the rest.
    fn split_head(&mut self, p: NonNull<SpanDesc>, head: usize, pos: DirtyPos) -> Result<(), AllocError> {
        if head == 0 {
            return Ok(());
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, arena, freed_at) = (unsafe { sp(p) }.start, unsafe { sp(p) }.arena, unsafe { sp(p) }.freed_at);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let pages = unsafe { sp(p) }.pages;
        let head_clean = if head <= pages - head {
            self.clean_in(p, start, head)
        } else {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.clean - self.clean_in(p, start + (head << self.shift), pages - head)
        };
        let h = self.new_span(start, head, State::Free, arena).ok_or(AllocError)?;
        // SAFETY: `h` and `p`: descriptors from the heap's own structures (see `sp`), one borrow per write.
        unsafe {
            sp(h).freed_at = freed_at;
            sp(h).clean = head_clean;
            sp(p).clean -= head_clean;
            sp(p).start += head << self.shift;
            sp(p).pages -= head;
        }
        self.put_free(h, Some(pos));
        Ok(())
    }

    // ---- growth ----

    /// Maps a new arena with at least `pages` usable pages, as one free span.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, pages: usize) -> Result<(), AllocError> {
        let page = self.page;
        let need = pages.checked_mul(page).ok_or(AllocError)?;
        // The smallest whole number of granules whose usable part holds `need` bytes.
        let mut total = need.checked_add(GRANULE - 1).ok_or(AllocError)? & !(GRANULE - 1);
        while total - HeapArena::meta_bytes(total / page, page) < need {
            total = total.checked_add(GRANULE).ok_or(AllocError)?;
        }
        let preferred = self.next_arena.max(total).next_multiple_of(GRANULE);
        // The records first (a chunk of metadata is small), so a tight budget fails before the
        // arena is mapped rather than after.
        let placeholder = HeapArena {
            map_base: NonNull::dangling(),
            map_len: 0,
            start: 0,
            pages: 0,
            page_map: core::ptr::null_mut(),
            clean: core::ptr::null_mut(),
            huge: None,
            next: None,
        };
        let arena = self.arena_records.alloc(&self.source, placeholder).ok_or(AllocError)?;
        let Some(span) = self.new_span(0, 0, State::Free, arena) else {
            // SAFETY: the record goes back unused.
            unsafe { self.arena_records.free(arena) };
            return Err(AllocError);
        };
        // The preferred size, or just what is needed when that is too much for the source (the
        // index may need a table too).
        let sizes = [preferred, total];
        let tries = if preferred == total { &sizes[..1] } else { &sizes[..] };
        let mut mapped = None;
        for &size in tries {
            let Some(base) = self.source.map(size, GRANULE) else { continue };
            if self.index.set(&self.source, base.as_ptr() as usize, size, Some(arena)) {
                mapped = Some((base, size));
                break;
            }
            // SAFETY: our fresh mapping, unused.
            unsafe { self.source.unmap(base, size) };
        }
        let Some((base, size)) = mapped else {
            self.drop_span(span);
            // SAFETY: the record goes back unused.
            unsafe { self.arena_records.free(arena) };
            return Err(AllocError);
        };
        if self.config.huge_pages {
            self.source.prefer_huge_pages(base, size);
        }
        let meta = HeapArena::meta_bytes(size / page, page);
        if !self.source.maps_zeroed() {
            // SAFETY: the metadata pages of the fresh mapping: an empty page map, no clean page.
            unsafe { base.as_ptr().write_bytes(0, meta) };
        }
        let usable = (size - meta) >> self.shift;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        *unsafe { ar(arena) } = HeapArena {
            map_base: base,
            map_len: size,
            start: base.as_ptr() as usize + meta,
            pages: usable,
            page_map: base.as_ptr().cast(),
            // SAFETY: the bitmap follows the page map inside the metadata pages.
            clean: unsafe { base.as_ptr().add((size / page) * core::mem::size_of::<Option<NonNull<SpanDesc>>>()) }
                .cast(),
            huge: None,
            next: self.arenas,
        };
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        *unsafe { sp(span) } = SpanDesc::new(unsafe { arr(arena) }.start, usable, State::Free, arena);
        if self.source.maps_zeroed() {
            // SAFETY: `usable` pages of a regular arena.
            let n = unsafe { arr(arena).set_clean(0, usable, true) };
            self.clean_free += n;
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(span) }.clean = n;
        }
        self.arenas = Some(arena);
        self.regular_arenas += 1;
        self.arena_bytes += size;
        self.stats.on_map(size);
        self.next_arena = (self.next_arena * 2).min(self.config.max_arena).max(self.config.first_arena);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(span) }.freed_at = self.now();
        self.put_free(span, None);
        Ok(())
    }

    /// The clock, read only when the age policy is on.
    #[inline]
    fn now(&self) -> u64 {
        if self.config.delay_ns == u64::MAX {
            return 0;
        }
        (self.config.clock)().unwrap_or(0)
    }

    // ---- allocation ----

    fn allocate_inner(&mut self, layout: Layout, zero: bool) -> Result<NonNull<[u8]>, AllocError> {
        self.init();
        if layout.size() >= self.config.huge {
            return self.allocate_huge(layout, zero);
        }
        let page = self.page;
        let data = layout.size().max(1).div_ceil(page);
        let pages = data + G::PAGES;
        // An alignment above a page: take enough to align inside, give the head back.
        let slack = if layout.align() > page { (layout.align() >> self.shift) - 1 } else { 0 };
        let want = pages.checked_add(slack).ok_or(AllocError)?;
        if want > (isize::MAX as usize) >> self.shift {
            return Err(AllocError);
        }
        let align = layout.align();
        let shift = self.shift;
        let aligned_fit = || {
            self.free.best_fit_where(pages, want, |s| {
                let end = s.start + (s.pages << shift);
                ptr::align_up(s.start, align).is_some_and(|a| a <= end && (end - a) >> shift >= pages)
            })
        };
        let found =
            if slack > 0 { aligned_fit().or_else(|| self.free.best_fit(want)) } else { self.free.best_fit(want) };
        let p = match found {
            Some(p) => p,
            None => {
                self.grow(want)?;
                self.free.best_fit(want).ok_or(AllocError)?
            }
        };
        let pos = self.take_free(p);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let start = unsafe { sp(p) }.start;
        let head = (ptr::align_up(start, layout.align()).ok_or(AllocError)? - start) >> self.shift;
        if self.split_head(p, head, pos).and_then(|_| self.split_tail(p, pages, pos)).is_err() {
            // Out of metadata: put the span back whole.
            self.put_free(p, Some(pos));
            return Err(AllocError);
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.state = State::InUse;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.size = layout.size();
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.align = layout.align();
        self.map_span(p);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, arena, clean) = (unsafe { sp(p) }.start, unsafe { sp(p) }.arena, unsafe { sp(p) }.clean);
        let first = self.page_of(arena, start);
        if zero && clean == 0 {
            // SAFETY: the span's data pages, all dirty.
            unsafe { self.at(arena, start).as_ptr().write_bytes(0, data << self.shift) };
        } else if zero {
            // Only pages that are not clean (fresh from the OS, or given back to it) need zeroes.
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            let (map_base, shift) = (unsafe { arr(arena) }.map_base, self.shift);
            // SAFETY: the span's data pages lie in its arena; dirty runs are written with zeroes.
            unsafe {
                arr(arena).dirty_runs(first, first + data, |a, b| {
                    let at = ptr::with_addr(map_base, start + ((a - first) << shift));
                    at.as_ptr().write_bytes(0, (b - a) << shift);
                });
            }
        }
        if clean > 0 {
            // SAFETY: the span lies in its arena.
            self.clean_free -= unsafe { arr(arena).set_clean(first, first + pages, false) };
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.clean = 0;
        }
        if G::PAGES > 0 {
            // SAFETY: the guard page after the data, ours and unused.
            unsafe { G::arm(&self.source, self.at(arena, start + (data << self.shift)), G::PAGES << self.shift) };
        }
        self.in_use_pages += pages;
        self.live_spans += 1;
        let len = data << self.shift;
        self.stats.on_alloc(len);
        Ok(ptr::block(self.at(arena, start), len))
    }

    /// A block with a mapping of its own.
    #[cold]
    #[inline(never)]
    fn allocate_huge(&mut self, layout: Layout, zero: bool) -> Result<NonNull<[u8]>, AllocError> {
        let page = self.page;
        let data = layout.size().checked_next_multiple_of(page).ok_or(AllocError)?;
        let guard = G::PAGES << self.shift;
        // Whole granules, so the index never shares one with another mapping.
        let len = data.checked_add(guard).and_then(|n| n.checked_next_multiple_of(GRANULE)).ok_or(AllocError)?;
        if len > isize::MAX as usize {
            return Err(AllocError);
        }
        let base = self.source.map(len, layout.align().max(GRANULE)).ok_or(AllocError)?;
        let start = base.as_ptr() as usize;
        let record = HeapArena {
            map_base: base,
            map_len: len,
            start,
            pages: len >> self.shift,
            page_map: core::ptr::null_mut(),
            clean: core::ptr::null_mut(),
            huge: None,
            next: self.arenas,
        };
        let undo = |h: &mut Self| {
            // SAFETY: our fresh mapping, unused.
            unsafe { h.source.unmap(base, len) }
        };
        let Some(arena) = self.arena_records.alloc(&self.source, record) else {
            undo(self);
            return Err(AllocError);
        };
        let Some(span) = self.new_span(start, len >> self.shift, State::InUse, arena) else {
            // SAFETY: the record goes back unused.
            unsafe { self.arena_records.free(arena) };
            undo(self);
            return Err(AllocError);
        };
        if !self.index.set(&self.source, start, len, Some(arena)) {
            self.drop_span(span);
            // SAFETY: as above.
            unsafe { self.arena_records.free(arena) };
            undo(self);
            return Err(AllocError);
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { ar(arena) }.huge = Some(span);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(span) }.size = layout.size();
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(span) }.align = layout.align();
        self.arenas = Some(arena);
        if zero && !self.source.maps_zeroed() {
            // SAFETY: the block's bytes in our fresh mapping.
            unsafe { base.as_ptr().write_bytes(0, data) };
        }
        if guard > 0 {
            // SAFETY: the pages after the block in our own mapping.
            unsafe { G::arm(&self.source, base.add(data), len - data) };
        }
        self.huge_bytes += len;
        self.huge_spans += 1;
        self.live_spans += 1;
        self.stats.on_map(len);
        self.stats.on_alloc(data);
        Ok(ptr::block(base, data))
    }

    // ---- lookup and misuse ----

    /// The span in use that starts at `addr` and that `layout` fits, or what is wrong.
    fn lookup(&self, addr: usize, layout: Option<Layout>) -> Result<NonNull<SpanDesc>, ErrorKind> {
        let arena = self.index.get(addr).ok_or(ErrorKind::ForeignPointer)?;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let a = unsafe { arr(arena) };
        let p = if let Some(h) = a.huge {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if unsafe { sp(h) }.start != addr {
                return Err(ErrorKind::InteriorPointer);
            }
            h
        } else {
            if addr < a.start || addr >= a.end(self.shift) {
                return Err(ErrorKind::ForeignPointer);
            }
            if addr & (self.page - 1) != 0 {
                return Err(ErrorKind::InteriorPointer);
            }
            // SAFETY: the page lies in this regular arena.
            match unsafe { a.map(self.page_of(arena, addr)) } {
                // SAFETY: descriptors from the heap's own structures (see `sp`).
                Some(p) if unsafe { sp(p) }.start == addr && unsafe { sp(p) }.state == State::InUse => p,
                // SAFETY: descriptors from the heap's own structures (see `sp`).
                Some(p) if unsafe { sp(p) }.start == addr => return Err(ErrorKind::DoubleFree),
                _ => return Err(self.classify(arena, addr)),
            }
        };
        if let Some(l) = layout {
            let usable = self.usable(p);
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            let s = unsafe { spr(p) };
            if l.size() < s.size || l.size() > usable || l.align() != s.align {
                return Err(ErrorKind::WrongLayout);
            }
        }
        Ok(p)
    }

    /// What a page-aligned address that starts no span is: inside a span in use (interior), or
    /// in free pages (most likely freed before). Walks the arena's spans: the error path only.
    #[cold]
    fn classify(&self, arena: NonNull<HeapArena>, addr: usize) -> ErrorKind {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let a = unsafe { arr(arena) };
        let mut i = 0;
        while i < a.pages {
            // SAFETY: i < pages; every span's first page maps to it.
            let Some(p) = (unsafe { a.map(i) }) else { return ErrorKind::ForeignPointer };
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            let s = unsafe { spr(p) };
            let end = s.start + (s.pages << self.shift);
            if addr < end {
                return if s.state == State::InUse { ErrorKind::InteriorPointer } else { ErrorKind::DoubleFree };
            }
            i += s.pages;
        }
        ErrorKind::ForeignPointer
    }

    /// Usable bytes of the span in use `p`.
    #[inline]
    fn usable(&self, p: NonNull<SpanDesc>) -> usize {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let s = unsafe { spr(p) };
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if unsafe { arr(s.arena) }.huge.is_some() {
            s.size.next_multiple_of(self.page)
        } else {
            (s.pages - G::PAGES) << self.shift
        }
    }

    // ---- freeing ----

    fn free_span(&mut self, p: NonNull<SpanDesc>) {
        let len = self.usable(p);
        self.stats.on_free(len);
        self.live_spans -= 1;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let arena = unsafe { sp(p) }.arena;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if unsafe { arr(arena) }.huge.is_some() {
            return self.free_huge(arena, p);
        }
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, pages) = (unsafe { sp(p) }.start, unsafe { sp(p) }.pages);
        if G::PAGES > 0 {
            let data = pages - G::PAGES;
            // SAFETY: the span's own guard pages, armed at allocation.
            unsafe { G::disarm(&self.source, self.at(arena, start + (data << self.shift)), G::PAGES << self.shift) };
        }
        self.in_use_pages -= pages;
        self.release(p);
    }

    /// Makes `p` (out of use, off every structure) free: merged with the free spans on both
    /// sides, put back, and the scavenging policy applied.
    fn release(&mut self, p: NonNull<SpanDesc>) {
        let now = self.now();
        // SAFETY: `p` is a descriptor of this heap (see `sp`), borrowed for these writes only.
        let (arena, start) = unsafe {
            let span = sp(p);
            span.state = State::Free;
            span.freed_at = now;
            (span.arena, span.start)
        };
        let first = self.page_of(arena, start);
        // SAFETY: first - 1 < pages, in the arena record `p` names.
        if let Some(l) = (first > 0).then(|| unsafe { arr(arena).map(first - 1) }).flatten() {
            // SAFETY: the page map holds live descriptors; a copy of the left neighbour's fields.
            let (ls, lp, lc, free) = unsafe { (spr(l).start, spr(l).pages, spr(l).clean, spr(l).state == State::Free) };
            if free && ls + (lp << self.shift) == start {
                self.take_free(l);
                // SAFETY: `p`, borrowed for these writes only.
                unsafe {
                    let span = sp(p);
                    span.start = ls;
                    span.pages += lp;
                    span.clean += lc;
                }
                self.drop_span(l);
            }
        }
        // SAFETY: `p` and its arena record, read.
        let (start, pages, arena_pages) = unsafe { (spr(p).start, spr(p).pages, arr(arena).pages) };
        let next = self.page_of(arena, start) + pages;
        // SAFETY: next < pages, in the arena record `p` names.
        if let Some(r) = (next < arena_pages).then(|| unsafe { arr(arena).map(next) }).flatten() {
            // SAFETY: the page map holds live descriptors; a copy of the right neighbour's fields.
            let (rs, rp, rc, free) = unsafe { (spr(r).start, spr(r).pages, spr(r).clean, spr(r).state == State::Free) };
            if free && rs == start + (pages << self.shift) {
                self.take_free(r);
                // SAFETY: `p`, borrowed for these writes only.
                unsafe {
                    let span = sp(p);
                    span.pages += rp;
                    span.clean += rc;
                }
                self.drop_span(r);
            }
        }
        self.put_free(p, None);
        self.scavenge_by_policy(now);
    }

    fn free_huge(&mut self, arena: NonNull<HeapArena>, p: NonNull<SpanDesc>) {
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let a = unsafe { arr(arena) };
        let (base, len) = (a.map_base, a.map_len);
        self.index.set(&self.source, base.as_ptr() as usize, len, None);
        self.unlink_arena(arena);
        self.drop_span(p);
        // SAFETY: the record is off the list and unused.
        unsafe { self.arena_records.free(arena) };
        // SAFETY: the block's own mapping; its block was just freed (munmap drops any guard).
        unsafe { self.source.unmap(base, len) };
        self.huge_bytes -= len;
        self.huge_spans -= 1;
        self.stats.on_unmap(len);
    }

    fn unlink_arena(&mut self, arena: NonNull<HeapArena>) {
        let mut cur = &mut self.arenas;
        while let Some(a) = *cur {
            if a == arena {
                // SAFETY: descriptors from the heap's own structures (see `sp`).
                *cur = unsafe { arr(a) }.next;
                return;
            }
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            cur = &mut unsafe { ar(a) }.next;
        }
    }

    // ---- scavenging ----

    /// Returns the dirty pages of the free span `p` (on the scavenger's list) to the OS.
    fn scavenge_span(&mut self, p: NonNull<SpanDesc>) {
        self.dirty_unlink(p);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, pages, arena, clean) =
            (unsafe { sp(p) }.start, unsafe { sp(p) }.pages, unsafe { sp(p) }.arena, unsafe { sp(p) }.clean);
        let first = self.page_of(arena, start);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (map_base, shift) = (unsafe { arr(arena) }.map_base, self.shift);
        let mut returned = 0usize;
        let source = &self.source;
        if clean == 0 {
            // SAFETY: the span is free: none of its pages hold data anyone uses.
            unsafe { source.decommit(self.at(arena, start), pages << shift) };
            returned = pages;
        } else {
            // SAFETY: as above, one run of dirty pages at a time.
            unsafe {
                arr(arena).dirty_runs(first, first + pages, |a, b| {
                    source.decommit(ptr::with_addr(map_base, start + ((a - first) << shift)), (b - a) << shift);
                    returned += b - a;
                });
            }
        }
        if self.source.decommit_zeroes() {
            // SAFETY: the span lies in its arena.
            self.clean_free += unsafe { arr(arena).set_clean(first, first + pages, true) };
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.clean = pages;
        }
        self.scavenged += returned << shift;
    }

    /// The policy, checked at every free: oldest free pages go back while more than `retain`
    /// bytes of free memory are resident, and any free for longer than `delay_ns`.
    fn scavenge_by_policy(&mut self, now: u64) {
        let retain_pages = self.config.retain >> self.shift;
        while self.free.pages - self.clean_free > retain_pages {
            let Some(oldest) = self.dirty_head else { break };
            self.scavenge_span(oldest);
        }
        if self.config.delay_ns == u64::MAX || self.dirty_head.is_none() {
            return;
        }
        // Look at ages only every eighth of the delay.
        if now.saturating_sub(self.last_age_check) < self.config.delay_ns / 8 {
            return;
        }
        self.last_age_check = now;
        while let Some(oldest) = self.dirty_head {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if unsafe { sp(oldest) }.freed_at.saturating_add(self.config.delay_ns) > now {
                break;
            }
            self.scavenge_span(oldest);
        }
    }

    /// The old name of [`SpanHeap::trim`].
    #[deprecated(since = "0.1.0", note = "renamed to `trim`, the workspace's one verb for giving memory back")]
    pub fn scavenge(&mut self) -> usize {
        self.trim()
    }

    /// Returns every free page to the OS, and unmaps every arena that is entirely free.
    /// Returns the bytes given back. (`trim`, as every allocator of the workspace names giving
    /// memory back; the pages go back by themselves past [`SpanConfig::retain`] and
    /// [`SpanConfig::delay_ns`], which the docs call scavenging.)
    pub fn trim(&mut self) -> usize {
        let before = self.scavenged;
        while let Some(oldest) = self.dirty_head {
            self.scavenge_span(oldest);
        }
        let mut released = self.scavenged - before;
        let mut cur = self.arenas;
        while let Some(a) = cur {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            cur = unsafe { arr(a) }.next;
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if unsafe { arr(a) }.huge.is_some() {
                continue;
            }
            // SAFETY: page 0 of a regular arena; it always maps to the first span.
            let Some(first) = (unsafe { arr(a).map(0) }) else { continue };
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if unsafe { sp(first) }.state == State::Free && unsafe { sp(first) }.pages == unsafe { arr(a) }.pages {
                released += self.unmap_arena(a, first);
            }
        }
        released
    }

    /// Unmaps a regular arena whose only span, `whole`, is free.
    fn unmap_arena(&mut self, arena: NonNull<HeapArena>, whole: NonNull<SpanDesc>) -> usize {
        self.take_free(whole);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        self.clean_free -= unsafe { spr(whole) }.clean;
        self.drop_span(whole);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (base, len) = (unsafe { arr(arena) }.map_base, unsafe { arr(arena) }.map_len);
        self.index.set(&self.source, base.as_ptr() as usize, len, None);
        self.unlink_arena(arena);
        // SAFETY: the record is off the list and unused.
        unsafe { self.arena_records.free(arena) };
        // SAFETY: nothing in the arena is in use.
        unsafe { self.source.unmap(base, len) };
        self.regular_arenas -= 1;
        self.arena_bytes -= len;
        self.stats.on_unmap(len);
        len
    }
}

// SAFETY: every block is the data pages of a span taken off the free structures (so disjoint
// from every span in use), aligned by the head split, and stays mapped until its free, the heap's
// drop, or (for arenas entirely free) an explicit scavenge, which only unmaps arenas with no span
// in use. Zeroed blocks have every page not known clean written with zeroes. Nothing panics
// unless the error policy does (`PANICS`).
unsafe impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> Layer
    for SpanHeap<S, E, C, G>
{
    const PANICS: bool = E::PANICS;
    // The in-place promise stated at `Resize` is kept by `resize_in_place` (its doc says how).
    const RESIZE: Option<ResizeFn<Self>> = Some(Self::resize_in_place);

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_inner(layout, false)
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_inner(layout, true)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let addr = ptr.as_ptr() as usize;
        match self.lookup(addr, Some(layout)) {
            Ok(p) => self.free_span(p),
            Err(kind) => self.report(kind, addr),
        }
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> SpanHeap<S, E, C, G> {
    /// Resizes the block in place (this layer's [`Layer::RESIZE`]): the block keeps its address;
    /// shrinking gives whole tail pages back as a free span; growing claims pages of the free span
    /// right after it, which nobody uses. Bytes are untouched.
    ///
    /// # Safety
    ///
    /// As for [`alloc_core::layer::Resize::resize_in_place`].
    pub unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError> {
        let addr = ptr.as_ptr() as usize;
        let p = match self.lookup(addr, Some(old)) {
            Ok(p) => p,
            Err(kind) => {
                self.report(kind, addr);
                return Err(AllocError);
            }
        };
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let arena = unsafe { sp(p) }.arena;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        if unsafe { arr(arena) }.huge.is_some() {
            // A block with its own mapping stays in it while the new size fits.
            if new.size() > self.usable(p) || new.size() < self.config.huge / 2 {
                return Err(AllocError);
            }
            let old_len = self.usable(p);
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.size = new.size();
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.align = new.align();
            self.stats.on_resize(old_len, self.usable(p));
            return Ok(self.usable(p));
        }
        if new.size() >= self.config.huge {
            return Err(AllocError);
        }
        let old_len = self.usable(p);
        let data = new.size().max(1).div_ceil(self.page);
        let pages = data + G::PAGES;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        let (start, have) = (unsafe { sp(p) }.start, unsafe { sp(p) }.pages);
        let old_data = have - G::PAGES;
        if pages > have {
            // Grow into the free span on the right, if it is large enough.
            let next = self.page_of(arena, start) + have;
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if next >= unsafe { arr(arena) }.pages {
                return Err(AllocError);
            }
            // SAFETY: next < pages.
            let Some(r) = (unsafe { arr(arena).map(next) }) else { return Err(AllocError) };
            // SAFETY: the page map holds live descriptors; read only.
            let right = unsafe { spr(r) };
            if right.state != State::Free || right.start != start + (have << self.shift) || have + right.pages < pages {
                return Err(AllocError);
            }
            let pos = self.take_free(r);
            if self.split_tail(r, pages - have, pos).is_err() {
                self.put_free(r, Some(pos));
                return Err(AllocError);
            }
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            if unsafe { spr(r) }.clean > 0 {
                // SAFETY: descriptors from the heap's own structures (see `sp`).
                let first = self.page_of(arena, unsafe { sp(r) }.start);
                // SAFETY: the claimed pages lie in the arena.
                self.clean_free -= unsafe { arr(arena).set_clean(first, first + (pages - have), false) };
            }
            self.drop_span(r);
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.pages = pages;
            self.in_use_pages += pages - have;
            if G::PAGES > 0 {
                // SAFETY: the old guard pages are data now.
                unsafe {
                    G::disarm(&self.source, self.at(arena, start + (old_data << self.shift)), G::PAGES << self.shift)
                };
            }
        } else if pages < have {
            // Give the tail pages back, merged with a free span after them.
            let Some(t) = self.new_span(start + (pages << self.shift), have - pages, State::Free, arena) else {
                return Err(AllocError);
            };
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.pages = pages;
            self.in_use_pages -= have - pages;
            if G::PAGES > 0 {
                // SAFETY: the old guard pages, armed at allocation, now in the tail given back.
                unsafe {
                    G::disarm(&self.source, self.at(arena, start + (old_data << self.shift)), G::PAGES << self.shift)
                };
            }
            self.map_span(p);
            self.release(t);
        }
        if G::PAGES > 0 && pages != have {
            // SAFETY: the new guard pages after the kept data, ours.
            unsafe { G::arm(&self.source, self.at(arena, start + (data << self.shift)), G::PAGES << self.shift) };
        }
        self.map_span(p);
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.size = new.size();
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        unsafe { sp(p) }.align = new.align();
        self.stats.on_resize(old_len, data << self.shift);
        Ok(data << self.shift)
    }
}

// SAFETY: the span's data pages (guard pages excluded), all the block's own; `lookup` accepts a
// free with any size from the one asked up to this.
unsafe impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> UsableSize
    for SpanHeap<S, E, C, G>
{
    unsafe fn usable_size(&self, ptr: NonNull<u8>, _layout: Layout) -> usize {
        self.lookup(ptr.as_ptr() as usize, None).map_or(0, |p| self.usable(p))
    }
}

// SAFETY: `lookup` finds the span in use that starts at `ptr` through the arena index and the
// page map (any address may be asked: it reads only the heap's own metadata), and the layout is
// the one recorded for it at allocation or resize.
unsafe impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> SizeOf
    for SpanHeap<S, E, C, G>
{
    /// O(1): the arena index, then the page map.
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        let p = self.lookup(ptr.as_ptr() as usize, None).ok()?;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        Layout::from_size_align(unsafe { sp(p) }.size, unsafe { sp(p) }.align).ok()
    }

    /// A freed span's first page is a double free, a page inside a span an interior pointer,
    /// anything outside the arenas foreign.
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        let kind = self.lookup(ptr.as_ptr() as usize, None).err().unwrap_or(ErrorKind::WrongLayout);
        HeapError::new(kind, ptr.as_ptr() as usize)
    }
}

// SAFETY: true exactly for the pages of the heap's arenas and huge blocks, found in its own
// index; every block lies in them.
unsafe impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> Owns for SpanHeap<S, E, C, G> {
    /// O(1): the arena index; true for the pages of arenas (not their metadata) and of huge blocks.
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        let addr = ptr.as_ptr() as usize;
        // SAFETY: descriptors from the heap's own structures (see `sp`).
        self.index
            .get(addr)
            .is_some_and(|a| addr >= unsafe { arr(a) }.start && addr < unsafe { arr(a) }.end(self.shift))
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> Validate for SpanHeap<S, E, C, G> {
    /// Walks every arena span by span (they must tile it, be mapped from their first and last
    /// page, and no two free spans may touch), checks the free structures (tree order and heap
    /// order, exact-size lists) and the scavenger's list, and that every counter agrees.
    fn validate(&self) -> Result<(), Corruption> {
        let bad = |what, addr| Err(Corruption { what, addr });
        if self.page == 0 {
            return if self.arenas.is_none() { Ok(()) } else { bad("arenas before the page size was read", 0) };
        }
        let (mut free_spans, mut free_pages, mut clean, mut in_use, mut live, mut huge) = (0, 0, 0, 0, 0, 0);
        let (mut arena_bytes, mut regular) = (0, 0);
        let mut cur = self.arenas;
        while let Some(a) = cur {
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            let r = unsafe { arr(a) };
            cur = r.next;
            if self.index.get(r.map_base.as_ptr() as usize) != Some(a) {
                return bad("arena is not in the index", r.start);
            }
            if let Some(h) = r.huge {
                // SAFETY: an arena's huge span is a live descriptor; read only.
                let span = unsafe { spr(h) };
                if span.state != State::InUse || span.start != r.start || span.arena != a || span.pages != r.pages {
                    return bad("huge arena's span is inconsistent", r.start);
                }
                huge += r.map_len;
                live += 1;
                continue;
            }
            regular += 1;
            arena_bytes += r.map_len;
            let mut i = 0;
            let mut prev_free = false;
            while i < r.pages {
                // SAFETY: i < pages.
                let Some(p) = (unsafe { r.map(i) }) else {
                    return bad("page map has no span at a span's first page", r.start + (i << self.shift));
                };
                // SAFETY: descriptors from the heap's own structures (see `sp`).
                let s = unsafe { spr(p) };
                let at = r.start + (i << self.shift);
                if s.start != at || s.arena != a || s.pages == 0 || i + s.pages > r.pages {
                    return bad("span does not start where the previous one ended", at);
                }
                // SAFETY: the last page of the span lies in the arena.
                if unsafe { r.map(i + s.pages - 1) } != Some(p) {
                    return bad("span's last page does not map to it", at);
                }
                match s.state {
                    State::Free => {
                        if prev_free {
                            return bad("two free spans touch (not coalesced)", at);
                        }
                        free_spans += 1;
                        free_pages += s.pages;
                        // SAFETY: the span's pages lie in the arena.
                        let c = unsafe { r.count_clean(i, i + s.pages) };
                        if c != s.clean {
                            return bad("free span's count of clean pages disagrees with the bitmap", at);
                        }
                        clean += c;
                        if (c < s.pages) != s.on_dirty {
                            return bad(
                                "free span with dirty pages is not on the scavenger's list, or a clean one is",
                                at,
                            );
                        }
                    }
                    State::InUse => {
                        // SAFETY: as above.
                        if unsafe { r.count_clean(i, i + s.pages) } != 0 {
                            return bad("span in use has pages marked clean", at);
                        }
                        if s.size > (s.pages - G::PAGES) << self.shift || !s.align.is_power_of_two() {
                            return bad("span in use records a size it cannot hold", at);
                        }
                        in_use += s.pages;
                        live += 1;
                    }
                }
                prev_free = s.state == State::Free;
                i += s.pages;
            }
        }
        if free_spans != self.free.count || free_pages != self.free.pages {
            return bad("free span count or pages disagree with the arenas", free_pages);
        }
        let mut listed = 0;
        if !self.free.for_each(|p, k| {
            listed += 1;
            // SAFETY: descriptors from the heap's own structures (see `sp`).
            unsafe { sp(p) }.state == State::Free && (k == 0 || unsafe { sp(p) }.pages == k)
        }) {
            return bad("free structures out of order, or holding a span in use", 0);
        }
        if listed != free_spans {
            return bad("free structures do not hold every free span exactly once", listed);
        }
        let (mut prev, mut cur, mut n) = (None, self.dirty_head, 0);
        while let Some(p) = cur {
            n += 1;
            // SAFETY: the scavenger's list holds live descriptors; read only.
            let span = unsafe { spr(p) };
            if n > free_spans || span.dirty_prev != prev || !span.on_dirty || span.state != State::Free {
                return bad("scavenger's list is broken", span.start);
            }
            prev = cur;
            cur = span.dirty_next;
        }
        if prev != self.dirty_tail {
            return bad("scavenger's list tail is wrong", 0);
        }
        if clean != self.clean_free || in_use != self.in_use_pages || live != self.live_spans || huge != self.huge_bytes
        {
            return bad("page counters disagree with the arenas", clean);
        }
        if arena_bytes != self.arena_bytes || regular != self.regular_arenas {
            return bad("arena counters disagree with the arena list", arena_bytes);
        }
        Ok(())
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> Drop for SpanHeap<S, E, C, G> {
    /// Gives every arena, huge mapping and metadata page back.
    fn drop(&mut self) {
        self.release_everything();
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> core::fmt::Debug
    for SpanHeap<S, E, C, G>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpanHeap").field("stats", &self.span_stats()).finish_non_exhaustive()
    }
}

/// Small tests over a fixed buffer, sized so Miri can check the page map, the free structures
/// and provenance (`cargo +nightly miri test -p alloc-span --lib`); the conformance suite covers
/// the rest.
impl<S: PageSource + Decommit, E: ErrorPolicy, G: GuardPolicy<S>> alloc_core::Statistics
    for SpanHeap<S, E, alloc_core::Counting, G>
{
    fn stats(&self) -> alloc_core::Stats {
        self.counters().get()
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> alloc_core::Trim
    for SpanHeap<S, E, C, G>
{
    /// [`SpanHeap::trim`].
    fn trim(&mut self) {
        SpanHeap::trim(self);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc_core::{Count, FixedSource};
    use std::vec::Vec;

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn allocate_split_coalesce_resize_and_scavenge_over_a_buffer() {
        // The index wants a 2 MiB-aligned arena and a table: a 12 MiB buffer holds both.
        let mut buf = std::vec![0u8; 12 << 20];
        let config = SpanConfig { first_arena: 2 << 20, max_arena: 2 << 20, retain: 4096, ..SpanConfig::DEFAULT };
        let mut h: SpanHeap<FixedSource<'_>, Count> = SpanHeap::with_config(FixedSource::new(&mut buf), config);
        let page = h.source().page_size();
        let mut blocks = Vec::new();
        for (i, size) in [1, page, 3 * page + 1, 10 * page, 100].into_iter().enumerate() {
            let b = h.allocate(l(size, 8)).unwrap();
            // SAFETY: a fresh block of b.len() bytes.
            unsafe { b.cast::<u8>().as_ptr().write_bytes(i as u8 + 1, b.len()) };
            blocks.push((b.cast::<u8>(), l(size, 8), i as u8 + 1));
        }
        assert_eq!(h.validate(), Ok(()));
        // Free every other block, then the rest: spans coalesce back into one.
        for (p, layout, _) in blocks.iter().step_by(2) {
            // SAFETY: live blocks with their layouts.
            unsafe { h.deallocate(*p, *layout) };
        }
        assert_eq!(h.validate(), Ok(()));
        let (p, layout, fill) = blocks[1];
        // SAFETY: p is live with `layout`; it grows into its freed right neighbour.
        let g = unsafe { h.resize_in_place(p, layout, l(3 * page, 8)) }.unwrap();
        assert_eq!(g, 3 * page);
        // SAFETY: the first `page` bytes were kept.
        assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), page) }.iter().all(|&b| b == fill));
        // SAFETY: shrink it back in place.
        assert_eq!(unsafe { h.resize_in_place(p, l(3 * page, 8), l(page, 8)) }, Ok(page));
        // SAFETY: live blocks with their (current) layouts.
        unsafe {
            h.deallocate(p, l(page, 8));
            h.deallocate(blocks[3].0, blocks[3].1);
        }
        assert_eq!(h.span_stats().live_spans, 0);
        assert_eq!(h.validate(), Ok(()));
        // Misuse is reported, not followed.
        // SAFETY: a double free under the Count policy: reported and ignored.
        unsafe { h.deallocate(blocks[0].0, blocks[0].1) };
        assert_eq!(h.errors().last().map(|e| e.kind), Some(ErrorKind::DoubleFree));
        h.trim();
        assert_eq!(h.span_stats().idle, 0);
        assert_eq!(h.validate(), Ok(()));
    }

    /// With guard pages, a span in use holds one page less than it spans: a size that reaches
    /// into the guard page is named.
    #[test]
    fn validate_names_a_size_reaching_into_the_guard_page() {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count, NoStats, GuardPages> = SpanHeap::new(MmapSource::new());
        let page = h.source().page_size();
        let p = h.allocate(l(3 * page, 8)).unwrap().cast::<u8>();
        assert_eq!(h.validate(), Ok(()));
        let s = h.lookup(p.as_ptr() as usize, None).unwrap();
        // SAFETY: the live heap's own descriptor; nothing else runs on it now.
        unsafe { sp(s) }.size = 3 * page + 1;
        let got = h.validate().err().map(|c| c.what);
        // SAFETY: as above.
        unsafe { sp(s) }.size = 3 * page;
        assert_eq!(got, Some("span in use records a size it cannot hold"));
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(p, l(3 * page, 8)) };
        assert_eq!(h.validate(), Ok(()));
    }

    /// The scavenger's list: a span whose link back disagrees with the list is named alone
    /// (its other facts right). And `Debug` shows the heap's statistics.
    #[test]
    fn validate_names_a_broken_link_back_in_the_scavengers_list() {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::new(MmapSource::new());
        let page = h.source().page_size();
        let blocks: Vec<_> = (0..4).map(|_| h.allocate(l(2 * page, 8)).unwrap().cast::<u8>()).collect();
        for &b in &blocks[..3] {
            // SAFETY: the block is ours: made dirty, then freed below.
            unsafe { b.as_ptr().write_bytes(1, 2 * page) };
        }
        // Two dirty free spans, apart (the second block stays live between them).
        // SAFETY: live blocks with their layout.
        unsafe {
            h.deallocate(blocks[0], l(2 * page, 8));
            h.deallocate(blocks[2], l(2 * page, 8));
        }
        assert_eq!(h.validate(), Ok(()));
        let head = h.dirty_head.unwrap();
        // SAFETY: the live heap's own descriptor; nothing else runs on it now.
        let second = unsafe { sp(head) }.dirty_next.expect("two spans on the list");
        // SAFETY: as above.
        unsafe { sp(second) }.dirty_prev = Some(second);
        let got = h.validate().err().map(|c| c.what);
        // SAFETY: as above.
        unsafe { sp(second) }.dirty_prev = Some(head);
        assert_eq!(got, Some("scavenger's list is broken"));
        assert_eq!(h.validate(), Ok(()));
        let shown = std::format!("{h:?}");
        assert!(shown.starts_with("SpanHeap") && shown.contains("in_use"), "{shown}");
        // The old name of `trim` gives the two dirty spans back.
        #[allow(deprecated)]
        let back = h.scavenge();
        assert!(back >= 4 * page, "{back}");
        assert_eq!(h.span_stats().idle, 0);
        // SAFETY: live blocks with their layout.
        unsafe {
            h.deallocate(blocks[1], l(2 * page, 8));
            h.deallocate(blocks[3], l(2 * page, 8));
        }
    }

    /// An over-aligned block taken from a hole just its size splits off a head of most of the
    /// hole: the piece put back keeps an exact count of its clean pages (the validator compares
    /// it with the bitmap), counted from the smaller part.
    #[test]
    fn an_aligned_block_in_a_clean_hole_leaves_an_exact_clean_count() {
        // The hole starts 1 or 4 pages past a 16-page boundary: a head of 15 or 12 pages.
        for past in [1, 4] {
            aligned_block_in_a_clean_hole(past);
        }
    }

    fn aligned_block_in_a_clean_hole(past: usize) {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::new(MmapSource::new());
        let page = h.source().page_size();
        let align = 16 * page;
        // Single pages until the next block would start `past` pages past a 16-page boundary.
        let mut fill = std::vec![h.allocate(l(page, 8)).unwrap().cast::<u8>()];
        while (fill.last().unwrap().as_ptr() as usize + page) % align != past * page {
            fill.push(h.allocate(l(page, 8)).unwrap().cast::<u8>());
        }
        let hole = h.allocate(l(16 * page, 8)).unwrap().cast::<u8>();
        assert_eq!(hole.as_ptr() as usize % align, past * page);
        let after = h.allocate(l(page, 8)).unwrap().cast::<u8>();
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(hole, l(16 * page, 8)) };
        // The hole's pages go back to the OS: clean.
        h.trim();
        assert_eq!(h.validate(), Ok(()));
        // One page aligned to 16 needs 16 pages: the hole, with its first 16 - past split off.
        let a = Layout::from_size_align(page, align).unwrap();
        let p = h.allocate(a).unwrap().cast::<u8>();
        assert_eq!(p.as_ptr() as usize, hole.as_ptr() as usize + (16 - past) * page);
        assert_eq!(h.validate(), Ok(()), "a head of {} pages", 16 - past);
        // SAFETY: live blocks with their layouts.
        unsafe {
            h.deallocate(p, a);
            h.deallocate(after, l(page, 8));
            for b in fill {
                h.deallocate(b, l(page, 8));
            }
        }
        assert_eq!(h.validate(), Ok(()));
    }

    /// With guard pages, a block's usable size is its pages but the guard.
    #[test]
    fn usable_size_stops_before_the_guard_page() {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count, NoStats, GuardPages> = SpanHeap::new(MmapSource::new());
        let page = h.source().page_size();
        let layout = l(3 * page - 100, 8);
        let p = h.allocate(layout).unwrap().cast::<u8>();
        // SAFETY: a live block of this heap with its layout.
        assert_eq!(unsafe { UsableSize::usable_size(&h, p, layout) }, 3 * page);
        // SAFETY: as above.
        unsafe { h.deallocate(p, layout) };
    }

    /// What a bad free inside the heap's pages is: inside a live span (on any of its pages,
    /// the last one too, which the page map also names) an interior pointer; inside free pages
    /// past a live span a double free.
    #[test]
    fn misuse_inside_spans_is_named_by_the_span_it_falls_in() {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::new(MmapSource::new());
        let page = h.source().page_size();
        let first = h.allocate(l(2 * page, 8)).unwrap().cast::<u8>();
        let freed = h.allocate(l(4 * page, 8)).unwrap().cast::<u8>();
        let live = h.allocate(l(4 * page, 8)).unwrap().cast::<u8>();
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(freed, l(4 * page, 8)) };
        let kind = |h: &SpanHeap<MmapSource, Count>, p: NonNull<u8>, pages: usize| {
            // SAFETY: an address in the heap's pages; only metadata is read.
            unsafe { SizeOf::misuse_at(h, p.map_addr(|a| a.checked_add(pages * page).unwrap())) }.kind
        };
        assert_eq!(kind(&h, live, 3), ErrorKind::InteriorPointer, "the last page of a live span");
        assert_eq!(kind(&h, live, 1), ErrorKind::InteriorPointer);
        assert_eq!(kind(&h, freed, 1), ErrorKind::DoubleFree, "free pages after the first span");
        assert_eq!(kind(&h, freed, 0), ErrorKind::DoubleFree);
        assert_eq!(kind(&h, first, 1), ErrorKind::InteriorPointer);
        // SAFETY: live blocks with their layouts.
        unsafe {
            h.deallocate(first, l(2 * page, 8));
            h.deallocate(live, l(4 * page, 8));
        }
    }

    /// Arenas come in the sizes the configuration says: the first is `first_arena` bytes, and
    /// a span larger than what is left gets an arena that holds it (its metadata included), not
    /// a runaway one.
    #[test]
    #[cfg_attr(miri, ignore = "maps 54 MiB of arenas and walks their page maps")]
    fn arenas_are_as_large_as_the_configuration_and_the_request_say() {
        use alloc_core::MmapSource;
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::new(MmapSource::new());
        let first = SpanConfig::DEFAULT.first_arena;
        // 1 MiB blocks until a second arena is needed: it is twice the first.
        let mib = l(1 << 20, 8);
        let mut blocks = std::vec![h.allocate(mib).unwrap().cast::<u8>()];
        assert_eq!((h.span_stats().arenas, h.arena_bytes), (1, first));
        while h.span_stats().arenas == 1 {
            blocks.push(h.allocate(mib).unwrap().cast::<u8>());
        }
        assert_eq!(h.arena_bytes, first + 2 * first, "arenas double from the first");
        // A span larger than the next arena would be: an arena that holds it, not a runaway one.
        let big = 40 << 20;
        let before = h.arena_bytes;
        let p = h.allocate(l(big, 8)).unwrap().cast::<u8>();
        let grown = h.arena_bytes - before;
        assert!(grown >= big && grown <= big + (2 << 20), "a 40 MiB span in an arena of {grown} bytes");
        assert_eq!(h.validate(), Ok(()));
        // SAFETY: live blocks with their layouts.
        unsafe {
            h.deallocate(p, l(big, 8));
            for b in blocks {
                h.deallocate(b, mib);
            }
        }
    }

    /// Free pages beyond `retain` bytes go back at a free; exactly `retain` bytes of them stay.
    #[test]
    fn exactly_the_retained_pages_stay_resident() {
        use alloc_core::MmapSource;
        let page = 4096;
        let config = SpanConfig { retain: 8 * page, delay_ns: u64::MAX, ..SpanConfig::DEFAULT };
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::with_config(MmapSource::new(), config);
        assert_eq!(h.source().page_size(), page);
        let a = h.allocate(l(8 * page, 8)).unwrap().cast::<u8>();
        let keep = h.allocate(l(page, 8)).unwrap().cast::<u8>();
        // SAFETY: the block's 8 pages are ours: made dirty.
        unsafe { a.as_ptr().write_bytes(1, 8 * page) };
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(a, l(8 * page, 8)) };
        assert_eq!(h.span_stats().idle, 8 * page, "8 dirty free pages: at the limit, kept");
        let b = h.allocate(l(page, 8)).unwrap().cast::<u8>();
        // SAFETY: as above.
        unsafe { b.as_ptr().write_bytes(1, page) };
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(b, l(page, 8)) };
        assert!(h.span_stats().idle <= 8 * page, "past the limit, the oldest go back");
        // A trim gives back every free page: all of them released, none idle.
        h.trim();
        let st = h.span_stats();
        assert_eq!((st.idle, st.released), (0, h.free.pages * page), "{st:?}");
        assert!(st.released > 0);
        // SAFETY: as above.
        unsafe { h.deallocate(keep, l(page, 8)) };
    }

    /// The validator names a huge arena whose span record disagrees with it, and a page map
    /// entry missing at a span's first page (with that page's address); each broken alone on a
    /// live heap, then put back.
    #[test]
    fn validate_names_a_broken_huge_span_and_a_missing_page_map_entry() {
        use alloc_core::MmapSource;
        let config = SpanConfig { huge: 1 << 20, ..SpanConfig::DEFAULT };
        let mut h: SpanHeap<MmapSource, Count> = SpanHeap::with_config(MmapSource::new(), config);
        let page = h.source().page_size();
        let big = h.allocate(l(2 << 20, 8)).unwrap().cast::<u8>();
        let small = h.allocate(l(3 * page, 8)).unwrap().cast::<u8>();
        let after = h.allocate(l(page, 8)).unwrap().cast::<u8>();
        assert_eq!(h.validate(), Ok(()));
        let what = |h: &SpanHeap<MmapSource, Count>| h.validate().err().map(|c| (c.what, c.addr));
        // The huge arena's span, moved by a page.
        let a = h.index.get(big.as_ptr() as usize).unwrap();
        // SAFETY: the live heap's own descriptors; nothing else runs on it now.
        let hs = unsafe { arr(a) }.huge.unwrap();
        // SAFETY: as above.
        unsafe { sp(hs) }.start += page;
        let got = what(&h);
        // SAFETY: as above.
        unsafe { sp(hs) }.start -= page;
        assert_eq!(got.map(|(w, _)| w), Some("huge arena's span is inconsistent"));
        // ... or one page longer than its mapping.
        // SAFETY: as above.
        unsafe { sp(hs) }.pages += 1;
        let got = what(&h);
        // SAFETY: as above.
        unsafe { sp(hs) }.pages -= 1;
        assert_eq!(got.map(|(w, _)| w), Some("huge arena's span is inconsistent"));
        // A live span's descriptor naming no arena it lies in.
        let s0 = h.lookup(small.as_ptr() as usize, None).unwrap();
        // SAFETY: as above.
        let arena = unsafe { sp(s0) }.arena;
        // SAFETY: as above.
        unsafe { sp(s0) }.arena = NonNull::dangling();
        let got = what(&h);
        // SAFETY: as above.
        unsafe { sp(s0) }.arena = arena;
        assert_eq!(got, Some(("span does not start where the previous one ended", small.as_ptr() as usize)));
        // A span in use recording a size past its pages, or an alignment that is no power of
        // two, each alone.
        // SAFETY: as above.
        let (size, align) = (unsafe { sp(s0) }.size, unsafe { sp(s0) }.align);
        // SAFETY: as above.
        unsafe { sp(s0) }.size = 3 * page + 1;
        let got = what(&h);
        // SAFETY: as above.
        unsafe { sp(s0) }.size = size;
        assert_eq!(got.map(|(w, _)| w), Some("span in use records a size it cannot hold"));
        // SAFETY: as above.
        unsafe { sp(s0) }.align = 3;
        let got = what(&h);
        // SAFETY: as above.
        unsafe { sp(s0) }.align = align;
        assert_eq!(got.map(|(w, _)| w), Some("span in use records a size it cannot hold"));
        // The free structures' span count, alone.
        h.free.count += 1;
        let got = what(&h);
        h.free.count -= 1;
        assert_eq!(got.map(|(w, _)| w), Some("free span count or pages disagree with the arenas"));
        // The heap's counters, each off by one alone.
        h.live_spans += 1;
        let got = what(&h);
        h.live_spans -= 1;
        assert_eq!(got.map(|(w, _)| w), Some("page counters disagree with the arenas"));
        h.huge_bytes += page;
        let got = what(&h);
        h.huge_bytes -= page;
        assert_eq!(got.map(|(w, _)| w), Some("page counters disagree with the arenas"));
        h.in_use_pages += 1;
        let got = what(&h);
        h.in_use_pages -= 1;
        assert_eq!(got.map(|(w, _)| w), Some("page counters disagree with the arenas"));
        h.clean_free += 1;
        let got = what(&h);
        h.clean_free -= 1;
        assert_eq!(got.map(|(w, _)| w), Some("page counters disagree with the arenas"));
        // An address in an arena's mapping but before its first page (its metadata) is no
        // block of the heap: foreign, not looked up in the page map.
        let a = h.index.get(small.as_ptr() as usize).unwrap();
        // SAFETY: as above.
        let (meta, start) = (unsafe { arr(a) }.map_base, unsafe { arr(a) }.start);
        assert!((meta.as_ptr() as usize) < start);
        // SAFETY: an address the index maps to the heap's arena; only metadata is read.
        assert_eq!(unsafe { SizeOf::misuse_at(&h, meta) }.kind, ErrorKind::ForeignPointer);
        // The page map entry of the first page of `after`.
        let addr = after.as_ptr() as usize;
        let a = h.index.get(addr).unwrap();
        // SAFETY: as above.
        let r = unsafe { arr(a) };
        let i = (addr - r.start) >> h.shift;
        // SAFETY: i is a page of the arena; the entry is put back below.
        let entry = unsafe { r.map(i) };
        // SAFETY: as above.
        unsafe { r.set_map(i, None) };
        let got = what(&h);
        // SAFETY: as above.
        unsafe { r.set_map(i, entry) };
        assert_eq!(got, Some(("page map has no span at a span's first page", addr)));
        assert_eq!(h.validate(), Ok(()));
        // SAFETY: live blocks with their layouts.
        unsafe {
            h.deallocate(big, l(2 << 20, 8));
            h.deallocate(small, l(3 * page, 8));
            h.deallocate(after, l(page, 8));
        }
        assert_eq!(h.validate(), Ok(()));
    }
}
