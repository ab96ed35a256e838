//! Thread heaps: each thread that allocates from a pool gets one, with a list of slabs per size
//! class and the segments they live in. Everything here is touched by the heap's owner thread
//! only (allocation, local frees, collecting remote frees, finding and starting slabs); other
//! threads reach a heap's slabs through their state bits' remote half alone.

use crate::protocol::Refused;
use crate::segment::{Segment, Slab, ALL_FREE, FIRST_SLAB, GRANULE, SLABS};
use crate::Classes;
use alloc_core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use alloc_core::sync::remote_list::Link;
use alloc_core::SizeClasses;
use core::cell::UnsafeCell;
use core::ptr::NonNull;

/// Slabs looked at, when the current one is spent, before starting a new one.
const SCAN: usize = 16;

/// One size class's slabs in a heap.
#[derive(Copy, Clone)]
pub(crate) struct Bin {
    /// The slab allocations come from.
    pub current: Option<NonNull<Slab>>,
    /// Every slab of the class the heap holds (the current one included).
    pub head: Option<NonNull<Slab>>,
    pub tail: Option<NonNull<Slab>>,
}

const EMPTY_BIN: Bin = Bin { current: None, head: None, tail: None };

/// What a heap needs from its pool to get and give back segments.
pub(crate) trait SegmentSource {
    /// A fresh segment owned by `owner`, its header written, registered as the pool's.
    fn new_segment(&self, owner: *mut ThreadHeap) -> Option<NonNull<Segment>>;
    /// Gives a segment with no block in use back.
    fn free_segment(&self, seg: NonNull<Segment>);
    /// An abandoned segment to adopt, if any.
    fn adopt(&self) -> Option<NonNull<Segment>>;
    /// Hands a segment with blocks in use over to whichever thread adopts it.
    fn abandon(&self, seg: NonNull<Segment>);
    /// Makes the last page of slab `i` of `seg` (a segment with a `tail`) fault; false when it
    /// did not (the process's budget of guard pages is spent).
    fn guard_slab(&self, seg: NonNull<Segment>, i: usize) -> bool;
}

/// A heap's counter of allocations. Written by the owner only (a load and a store, no
/// read-modify-write), read by anyone. (Bytes in use are counted from the slabs' state bits
/// when statistics are asked for, so the fast paths keep no byte counters.)
#[derive(Default)]
pub(crate) struct Counters {
    pub allocations: AtomicUsize,
}

/// A heap record as the pool keeps it: the owner's part in a cell, the parts other threads read
/// (the counters, under the pool's lock the list links) beside it, so the owner's exclusive
/// borrow of its heap never covers what others read.
#[repr(C)]
pub(crate) struct HeapRecord {
    /// First, so a heap's address is its record's.
    heap: UnsafeCell<ThreadHeap>,
    pub counters: Counters,
    /// Every heap record of the pool (for statistics), and the pool's list of records free for
    /// a new thread; both under the pool's lock.
    pub all_next: Option<NonNull<HeapRecord>>,
    pub free_next: Option<NonNull<HeapRecord>>,
}

impl HeapRecord {
    /// Writes a fresh record at `p`.
    ///
    /// # Safety
    ///
    /// `p` is valid for writes of a record, and stays where it is while the record is used.
    pub unsafe fn init(p: NonNull<HeapRecord>) {
        let p = p.as_ptr();
        // SAFETY: the caller's guarantees; each field written once, the heap pointing at its
        // sibling counters.
        unsafe {
            core::ptr::addr_of_mut!((*p).counters).write(Counters::default());
            core::ptr::addr_of_mut!((*p).all_next).write(None);
            core::ptr::addr_of_mut!((*p).free_next).write(None);
            let counters = NonNull::new_unchecked(core::ptr::addr_of_mut!((*p).counters));
            UnsafeCell::raw_get(core::ptr::addr_of!((*p).heap)).write(ThreadHeap::new(counters));
        }
    }

    /// The owner's part of record `p`.
    pub fn heap(p: NonNull<HeapRecord>) -> *mut ThreadHeap {
        // SAFETY: a projection of a live record, no reference made.
        UnsafeCell::raw_get(unsafe { core::ptr::addr_of!((*p.as_ptr()).heap) })
    }

    /// The record a heap is the owner's part of.
    pub fn of(h: *mut ThreadHeap) -> NonNull<HeapRecord> {
        // SAFETY: heaps the pool hands out live at offset 0 of their records (repr(C)).
        unsafe { NonNull::new_unchecked(h.cast::<HeapRecord>()) }
    }
}

/// Requests up to this many bytes find their slab in [`ThreadHeap`]'s direct table (one index,
/// no size-class computation: mimalloc's `pages_free_direct`).
pub(crate) const DIRECT_MAX: usize = 1024;
/// Entries of the direct table: one per 16 bytes of request, 0 through [`DIRECT_MAX`].
const DIRECT: usize = DIRECT_MAX / 16 + 1;

/// [`ThreadHeap`]'s known segment when it knows none: not segment-aligned, so no segment address
/// (0 included, which a pointer into the first 4 MiB would give) equals it.
pub(crate) const NO_SEGMENT: usize = 1;

/// A thread's cache of a pool: touched by its owner thread alone.
pub(crate) struct ThreadHeap {
    /// The current slab of the class of each request size up to [`DIRECT_MAX`], by
    /// `(size + 15) / 16`: `bins[c].current` for every size of class `c` (kept so by
    /// [`ThreadHeap::set_current`]).
    direct: [Option<NonNull<Slab>>; DIRECT],
    bins: [Bin; Classes::COUNT],
    /// Segments owned, newest first.
    segments: Option<NonNull<Segment>>,
    /// The address of a segment this heap owns ([`NO_SEGMENT`]: none), the last one a free from this thread
    /// found it owned: a free into it needs neither the map of every pool's segments nor the
    /// segment's owner (one compare instead, mimalloc's `thread_id` test). Cleared when the
    /// segment leaves the heap ([`ThreadHeap::segment_remove`]), which only this thread does.
    known: usize,
    /// The record's counters (outside the owner's part, read by other threads).
    counters: NonNull<Counters>,
    /// The first block found freed twice at once since the pool last asked (0: none): the heap
    /// has no error policy, so the pool reports it (see [`ThreadHeap::take_refused`]).
    refused: usize,
}

/// A slab descriptor borrowed for one step.
///
/// # Safety
///
/// `s` is a slab descriptor in the header of a segment that stays mapped for `'a` (a segment of
/// the pool: its own heap's, or one reached through a live block's address); the fields other
/// threads may change are atomics, and the ones only the owner changes are changed by this
/// thread alone while the reference lives.
#[inline(always)]
unsafe fn sl<'a>(s: NonNull<Slab>) -> &'a Slab {
    // SAFETY: as the caller promises.
    unsafe { &*s.as_ptr() }
}

/// The block size of slab `s`, one `alloc_direct` handed a block of.
///
/// # Safety
///
/// `s` is a slab of the calling thread's heap (mapped while named).
#[inline(always)]
pub(crate) unsafe fn block_len(s: NonNull<Slab>) -> usize {
    // SAFETY: as the caller promises.
    unsafe { sl(s) }.block.get()
}

/// A segment header borrowed for one step.
///
/// # Safety
///
/// As for [`sl`]: `s` is the header of a segment that stays mapped for `'a`.
#[inline(always)]
unsafe fn sg<'a>(s: NonNull<Segment>) -> &'a Segment {
    // SAFETY: as the caller promises.
    unsafe { &*s.as_ptr() }
}

/// The segment a slab descriptor lives in.
#[inline(always)]
fn segment_of(s: NonNull<Slab>) -> NonNull<Segment> {
    // SAFETY: slab descriptors live in their segment's header, inside the segment.
    unsafe { Segment::header_of(s.cast()) }
}

/// Carves the blocks of slab `slab` (of `g`) at indices `order` (of `block` bytes from `first`
/// on; at least one), to be handed out in that order: each one's second word zeroed, all but
/// the first put on the slab's local list, the first returned for the caller to hand out.
///
/// The second word zero is the pool's promise for a block never handed out since its slab took
/// its class, whatever the slab's memory held before: a layer that marks its freed blocks there
/// (the `hardened` preset: the freed key, then a zero check at reuse) tells a block it freed
/// from one carved afresh over old bytes, after the slab served another class or the memory
/// another segment (until 2026-12-02 such a block could carry an old freed key over bytes of
/// another class's blocks: a `write after free` reported in a correct program).
#[inline(always)]
fn carve(
    slab: &Slab,
    g: &Segment,
    first: usize,
    block: usize,
    mut order: impl DoubleEndedIterator<Item = usize>,
) -> NonNull<Link> {
    let fresh = |k: usize| {
        let b = g.at(first + k * block).cast::<usize>();
        // SAFETY: a block just carved (16 bytes or more), nobody else's.
        unsafe { b.add(1).write(0) };
        b.cast::<Link>()
    };
    let head = order.next().unwrap_or(0);
    // Pushed last to first: the local list hands them out first to last.
    for k in order.rev() {
        // SAFETY: the caller's heap owns the slab; a block just carved.
        unsafe { slab.lists.push_carved(fresh(k)) };
    }
    // SAFETY: as above.
    unsafe { slab.lists.count_carved() };
    fresh(head)
}

/// A guarded pool's carve of the `n` blocks of `block` bytes from `first` on (in slab
/// `slab` of `g`): each block's second word zeroed as in the plain carve, all but one put
/// on the slab's local list in a random order (a Fisher-Yates shuffle), that one returned
/// for the caller to hand out. A plain carve hands blocks out in address order, so two
/// fresh allocations in a row are neighbours, which heap grooming counts on (mimalloc's
/// secure mode shuffles its fresh free lists for the same reason); here the next fresh block
/// is any of the carve's (up to 4 KiB, [`CARVE`]: `log2(n)` bits, 7 for 32-byte blocks). Only
/// on the slow path of a guarded pool, by the heap that owns the slab (and the segment, whose
/// generator it advances).
#[cold]
#[inline(never)]
fn carve_shuffled(slab: &Slab, g: &Segment, first: usize, n: usize, block: usize) -> NonNull<Link> {
    debug_assert!((1..=CARVE / 16).contains(&n));
    let mut rng = match g.rng.get() {
        0 => alloc_core::secret::fresh(g.base.as_ptr() as usize) as u64 | 1,
        r => r,
    };
    let mut order = [0u16; CARVE / 16];
    for (k, o) in order.iter_mut().enumerate().take(n) {
        *o = k as u16;
    }
    for k in (1..n).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A multiply-shift into 0..=k (no division; the bias is under k / 2^32).
        let j = ((rng >> 32) * (k as u64 + 1)) >> 32;
        order.swap(k, j as usize);
    }
    g.rng.set(rng);
    carve(slab, g, first, block, order[..n].iter().map(|&k| k as usize))
}

impl ThreadHeap {
    /// A fresh heap counting into `counters`.
    pub fn new(counters: NonNull<Counters>) -> Self {
        ThreadHeap {
            direct: [None; DIRECT],
            bins: [EMPTY_BIN; Classes::COUNT],
            segments: None,
            known: NO_SEGMENT,
            counters,
            refused: 0,
        }
    }

    /// Readies a recycled heap for a new thread (its counters keep counting).
    pub fn reuse(&mut self) {
        self.bins = [EMPTY_BIN; Classes::COUNT];
        self.direct = [None; DIRECT];
        self.segments = None;
        self.known = NO_SEGMENT;
        self.refused = 0;
    }

    /// Whether `seg` (a segment-aligned address) is the segment [`ThreadHeap::know`] last
    /// named: one this heap owns.
    #[inline(always)]
    pub fn knows(&self, seg: usize) -> bool {
        self.known == seg
    }

    /// The segment [`ThreadHeap::knows`] (for the validator).
    pub fn known(&self) -> usize {
        self.known
    }

    /// Class `c`'s current slab (for the validator).
    pub fn current(&self, c: usize) -> Option<NonNull<Slab>> {
        self.bins[c].current
    }

    /// Remembers `seg`, a segment this heap owns (its owner field says so), for
    /// [`ThreadHeap::knows`].
    #[inline(always)]
    pub fn know(&mut self, seg: usize) {
        self.known = seg;
    }

    /// The block found freed twice (by its owner and another thread at once) since the last
    /// call, for the pool to report.
    pub fn take_refused(&mut self) -> Option<usize> {
        let a = core::mem::replace(&mut self.refused, 0);
        (a != 0).then_some(a)
    }

    /// Inline (two instructions, on a branch the common path skips): a call here made
    /// alloc-malloc's `malloc` keep a stack frame on its common path too, until 2026-12-02.
    #[inline(always)]
    fn note_refused(&mut self, addr: usize) {
        if self.refused == 0 {
            self.refused = addr;
        }
    }

    /// Owner: takes slab `s`'s remotely freed blocks back; returns how many. Only when the
    /// slab's pending flag is up: then each state word of the carved part with remote bits is
    /// taken with one swap, and its blocks go on the local list.
    fn collect(&mut self, s: NonNull<Slab>) -> usize {
        // SAFETY: a slab of this heap, mapped while named (`sl`).
        let slab = unsafe { sl(s) };
        if !slab.lists.take_pending() {
            return 0;
        }
        // SAFETY: as above: the slab's segment.
        let seg = unsafe { sg(segment_of(s)) };
        let i = seg.slab_index(s);
        let start = seg.slab_start(i);
        // Only the words of blocks carved so far can have bits.
        let carved = slab.bump.get() * slab.block.get();
        let words = carved.div_ceil(64 * GRANULE);
        let (mut n, mut refused) = (0, 0);
        for (k, w) in seg.slab_state(i)[..words].iter().enumerate() {
            let (taken, bad) = w.take_remote();
            if bad != 0 {
                refused = start + (k * 64 + bad.trailing_zeros() as usize) * GRANULE;
            }
            if taken != 0 {
                let word = seg.at(start + k * 64 * GRANULE);
                // SAFETY: this heap owns the slab, and the take gave each block back to it; the
                // word's 64 granules lie in the slab, inside the segment `at` gives provenance of.
                n += unsafe { slab.lists.push_collected_word(taken, word, GRANULE) };
            }
        }
        if refused != 0 {
            self.note_refused(refused);
        }
        n
    }

    #[inline(always)]
    fn counters(&self) -> &Counters {
        // SAFETY: the counters live beside the heap (or, for a scratch heap, outlive it).
        unsafe { self.counters.as_ref() }
    }

    /// Adds `n` to an owner-written counter.
    #[inline(always)]
    fn bump(counter: &AtomicUsize, n: usize) {
        // Relaxed, load then store: only the owner writes it; readers want a recent value.
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Makes `s` the slab class `c` allocates from, in the bin and in the direct table.
    fn set_current(&mut self, c: usize, s: Option<NonNull<Slab>>) {
        if let Some(old) = self.bins[c].current {
            // SAFETY: a slab of this heap, mapped while named (`sl`).
            unsafe { sl(old) }.current.set(false);
        }
        if let Some(new) = s {
            // SAFETY: as above.
            unsafe { sl(new) }.current.set(true);
        }
        self.bins[c].current = s;
        let hi = crate::block_size(c);
        if hi <= DIRECT_MAX {
            let lo = if c == 0 { 0 } else { crate::block_size(c - 1) + 1 };
            for e in &mut self.direct[lo.div_ceil(16)..=hi / 16] {
                *e = s;
            }
        }
    }

    /// A block for a request of `size` bytes (at most [`DIRECT_MAX`]) from the current slab of
    /// its class, through the direct table: the block and its length (the slab's class size).
    #[inline(always)]
    pub fn alloc_direct(&mut self, size: usize) -> Option<(NonNull<u8>, NonNull<Slab>)> {
        let s = (*self.direct.get(size.div_ceil(16))?)?;
        // SAFETY: this heap owns the slab.
        let b = unsafe { sl(s).lists.pop_local() }?;
        // The block size is an atomic load the optimiser keeps, so it is made only where it is
        // used: by the sanitizer annotations and by `alloc_direct`'s `(pointer, size)` callers
        // (`Pool::allocate_small_fast` wants the pointer alone: one load a `malloc` less).
        // SAFETY: a slab of this heap, mapped while named (`sl`); it serves a class (it is current).
        Some((self.hand_out(s, b, || unsafe { sl(s) }.block.get())?, s))
    }

    /// A block of class `c` from the current slab's local list, if it has one.
    #[inline(always)]
    pub fn alloc_fast(&mut self, c: usize) -> Option<NonNull<u8>> {
        let s = self.bins.get(c)?.current?;
        // SAFETY: this heap owns the slab.
        let b = unsafe { sl(s).lists.pop_local() }?;
        self.hand_out(s, b, || crate::block_size(c))
    }

    /// Allocates a block of class `c`.
    #[inline(always)]
    pub fn alloc(&mut self, pool: &impl SegmentSource, c: usize) -> Option<NonNull<u8>> {
        match self.alloc_fast(c) {
            Some(p) => Some(p),
            None => self.alloc_slow(pool, c),
        }
    }

    /// Marks block `b` of slab `s` in use and returns it; `None` (the block noted for the pool
    /// to report) when another thread freed it at the same time as its owner did.
    #[inline(always)]
    fn hand_out(&mut self, s: NonNull<Slab>, b: NonNull<Link>, len: impl FnOnce() -> usize) -> Option<NonNull<u8>> {
        // SAFETY: a slab of this heap, mapped while named (`sl`): its segment's header.
        let (w, bit) = unsafe { sg(segment_of(s)) }.bits(b.as_ptr() as usize);
        if let Err(Refused::AlreadyFree) = w.hand_out(bit) {
            self.note_refused(b.as_ptr() as usize);
            return None;
        }
        Self::bump(&self.counters().allocations, 1);
        let p = b.cast::<u8>();
        crate::sanitize::allocated(p, len);
        Some(p)
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&mut self, pool: &impl SegmentSource, c: usize) -> Option<NonNull<u8>> {
        loop {
            if let Some(s) = self.bins[c].current {
                // SAFETY: this heap owns the slab (and the lists' owner side with it).
                if let Some(b) = unsafe { sl(s).lists.pop_local() } {
                    match self.hand_out(s, b, || crate::block_size(c)) {
                        Some(p) => return Some(p),
                        None => continue,
                    }
                }
                if self.collect(s) > 0 {
                    continue;
                }
                // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                let (slab, bump) = (unsafe { sl(s) }, unsafe { sl(s) }.bump.get());
                if bump < slab.capacity.get() {
                    // Carve the next block, untouched memory until now, and with it every block
                    // that starts before the next `CARVE` boundary, onto the local list: the
                    // allocations after this one take them on the fast path (carved one at a
                    // time, each was a trip through here: a 100,000-node build took 2.2 x
                    // mimalloc's time). No page is touched that the first block's is not.
                    let block = crate::block_size(c);
                    // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                    let g = unsafe { sg(segment_of(s)) };
                    let first = g.slab_start(g.slab_index(s)) + bump * block;
                    let n = (CARVE - first % CARVE).div_ceil(block).min(slab.capacity.get() - bump);
                    slab.bump.set(bump + n);
                    let b = if g.tail != 0 {
                        carve_shuffled(slab, g, first, n, block)
                    } else {
                        carve(slab, g, first, block, 0..n)
                    };
                    match self.hand_out(s, b, || block) {
                        Some(p) => return Some(p),
                        None => continue,
                    }
                }
            }
            if self.next_slab(c) {
                continue;
            }
            if let Some(s) = self.owned_free_slab(pool, c) {
                self.bin_push(c, s);
                self.set_current(c, Some(s));
                continue;
            }
            if let Some(g) = pool.adopt() {
                self.adopt(g);
                continue;
            }
            let g = pool.new_segment(self)?;
            self.segment_push(g);
        }
    }

    /// Makes another slab of the bin with free blocks current, looking at up to [`SCAN`] of them
    /// and moving the spent ones to the back; false when none has any.
    fn next_slab(&mut self, c: usize) -> bool {
        let mut cur = self.bins[c].head;
        let mut looked = 0;
        while let Some(s) = cur {
            if looked == SCAN {
                break;
            }
            looked += 1;
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            cur = unsafe { sl(s) }.next.get();
            if Some(s) == self.bins[c].current {
                continue;
            }
            // SAFETY: this heap owns the slab.
            let usable = unsafe { !sl(s).lists.local_is_empty() }
                || unsafe { sl(s) }.lists.has_remote()
                || unsafe { sl(s) }.bump.get() < unsafe { sl(s) }.capacity.get();
            if usable {
                self.set_current(c, Some(s));
                return true;
            }
            // Spent: to the back, so the next look starts with others.
            self.bin_remove(c, s);
            self.bin_push(c, s);
        }
        false
    }

    fn bin_push(&mut self, c: usize, s: NonNull<Slab>) {
        let tail = self.bins[c].tail;
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sl(s) }.prev.set(tail);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sl(s) }.next.set(None);
        match tail {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            Some(t) => unsafe { sl(t) }.next.set(Some(s)),
            None => self.bins[c].head = Some(s),
        }
        self.bins[c].tail = Some(s);
    }

    fn bin_remove(&mut self, c: usize, s: NonNull<Slab>) {
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let (prev, next) = (unsafe { sl(s) }.prev.get(), unsafe { sl(s) }.next.get());
        match prev {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            Some(p) => unsafe { sl(p) }.next.set(next),
            None => self.bins[c].head = next,
        }
        match next {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            Some(n) => unsafe { sl(n) }.prev.set(prev),
            None => self.bins[c].tail = prev,
        }
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sl(s) }.prev.set(None);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sl(s) }.next.set(None);
    }

    /// A free slab of an owned segment, started on class `c`.
    fn owned_free_slab(&mut self, pool: &impl SegmentSource, c: usize) -> Option<NonNull<Slab>> {
        let mut seg = self.segments;
        while let Some(g) = seg {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            if unsafe { sg(g) }.free_slabs.get() != 0 {
                return Some(self.take_slab(pool, g, c));
            }
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            seg = unsafe { sg(g) }.next.get();
        }
        None
    }

    fn take_slab(&mut self, pool: &impl SegmentSource, g: NonNull<Segment>, c: usize) -> NonNull<Slab> {
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let i = unsafe { sg(g) }.free_slabs.get().trailing_zeros() as usize;
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sg(g) }.free_slabs.set(unsafe { sg(g) }.free_slabs.get() & !(1 << i));
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let s = NonNull::from(&unsafe { sg(g) }.slabs[i]);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let seg = unsafe { sg(g) };
        // SAFETY: as above.
        unsafe { sl(s) }.start(c, seg.slab_state(i), seg.tail);
        if seg.tail != 0 && seg.guarded.get() & (1 << i) == 0 && pool.guard_slab(g, i) {
            seg.guarded.set(seg.guarded.get() | 1 << i);
        }
        s
    }

    fn segment_push(&mut self, g: NonNull<Segment>) {
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sg(g) }.prev.set(None);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sg(g) }.next.set(self.segments);
        if let Some(n) = self.segments {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            unsafe { sg(n) }.prev.set(Some(g));
        }
        self.segments = Some(g);
    }

    fn segment_remove(&mut self, g: NonNull<Segment>) {
        if self.known == Segment::of(g.as_ptr() as usize) {
            self.known = NO_SEGMENT;
        }
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let (prev, next) = (unsafe { sg(g) }.prev.get(), unsafe { sg(g) }.next.get());
        match prev {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            Some(p) => unsafe { sg(p) }.next.set(next),
            None => self.segments = next,
        }
        if let Some(n) = next {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            unsafe { sg(n) }.prev.set(prev);
        }
    }

    /// Takes over an abandoned segment: its slabs join this heap's bins.
    pub fn adopt(&mut self, g: NonNull<Segment>) {
        // Release is not needed: the segment came through the pool's acquiring take.
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sg(g) }.owner.store(self as *mut ThreadHeap, Ordering::Relaxed);
        self.segment_push(g);
        for i in FIRST_SLAB..SLABS {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            let s = NonNull::from(&unsafe { sg(g) }.slabs[i]);
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            if let Some(k) = unsafe { sl(s) }.class() {
                self.collect(s);
                self.bin_push(k, s);
            }
        }
    }

    /// Frees block `b` of slab `s` (class `c`) from this heap's thread, which owns it: back on
    /// the slab's local list; a slab left with no block in use serves nobody again.
    ///
    /// # Safety
    ///
    /// This heap owns the slab, and the caller won the block (its state bits said so).
    #[inline(always)]
    pub unsafe fn free_local(&mut self, s: NonNull<Slab>, b: NonNull<u8>, c: usize) {
        // SAFETY: as the caller promises.
        if unsafe { self.free_local_push(s, b) } {
            self.release_slab(c, s);
        }
    }

    /// [`ThreadHeap::free_local`] but the release: true when the slab is left with no block in
    /// use and is not its class's current one, for the caller to [`ThreadHeap::release_empty`]
    /// it (off the common path, which then makes no call).
    ///
    /// # Safety
    ///
    /// As for [`ThreadHeap::free_local`].
    #[inline(always)]
    pub unsafe fn free_local_push(&mut self, s: NonNull<Slab>, b: NonNull<u8>) -> bool {
        // SAFETY: the block is ours again (the caller won it).
        let left = unsafe { sl(s).lists.push_local(b.cast()) };
        // The slab's flag, not `bins[c].current`: the class is not needed (a free with a layout
        // does not read it), and one load instead of the bin's address and a compare.
        // SAFETY: a slab of this heap, mapped while named (`sl`).
        left == 0 && !unsafe { sl(s) }.current.get()
    }

    /// Releases slab `s` of class `c` if it still has no block in use and is not current: what
    /// [`ThreadHeap::free_local_push`] asked for.
    pub fn release_empty(&mut self, s: NonNull<Slab>, c: usize) {
        // A remote bit still set now is a block its owner freed as well (no block is in use):
        // taken back here, it is refused and reported, and the slab is empty. (The bits are
        // cleared when the slab starts again: without this, the double free went unreported.)
        self.collect(s);
        // SAFETY: this heap owns the slab.
        if unsafe { sl(s).lists.used() } == 0 && self.bins[c].current != Some(s) {
            self.release_slab(c, s);
        }
    }

    /// A slab with no block in use goes back to its segment for any class.
    #[cold]
    #[inline(never)]
    fn release_slab(&mut self, c: usize, s: NonNull<Slab>) {
        self.bin_remove(c, s);
        // SAFETY: this heap owns the slab and none of its blocks is in use or freed remotely
        // (every block handed out came back through the local list or was collected).
        unsafe { sl(s).lists.clear() };
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sl(s) }.stop();
        let g = segment_of(s);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        let i = unsafe { sg(g) }.slab_index(s);
        // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
        unsafe { sg(g) }.free_slabs.set(unsafe { sg(g) }.free_slabs.get() | 1 << i);
    }

    /// Gives every segment back: empty ones to the pool's span heap, the others to whichever
    /// thread adopts them. Called when the thread exits (or the heap is dropped).
    pub fn abandon(&mut self, pool: &impl SegmentSource) {
        while let Some(g) = self.segments {
            self.segment_remove(g);
            for i in FIRST_SLAB..SLABS {
                // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                let s = NonNull::from(&unsafe { sg(g) }.slabs[i]);
                // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                if let Some(k) = unsafe { sl(s) }.class() {
                    // Nobody's current slab once abandoned (the bins are emptied below).
                    if self.bins[k].current == Some(s) {
                        self.set_current(k, None);
                    }
                    self.collect(s);
                    // SAFETY: this heap owns the slab.
                    if unsafe { sl(s).lists.used() } == 0 {
                        self.release_slab(k, s);
                    }
                }
            }
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            if unsafe { sg(g) }.free_slabs.get() == ALL_FREE {
                pool.free_segment(g);
            } else {
                // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                unsafe { sg(g) }.owner.store(core::ptr::null_mut(), Ordering::Relaxed);
                pool.abandon(g);
            }
        }
        self.bins = [EMPTY_BIN; Classes::COUNT];
        self.direct = [None; DIRECT];
    }

    /// Gives back segments with no block in use, keeping `keep` of them: what `trim` does for
    /// the calling thread's heap.
    pub fn trim(&mut self, pool: &impl SegmentSource) {
        for c in 0..Classes::COUNT {
            let mut cur = self.bins[c].head;
            while let Some(s) = cur {
                // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
                cur = unsafe { sl(s) }.next.get();
                self.collect(s);
                // SAFETY: this heap owns the slab.
                if unsafe { sl(s).lists.used() } == 0 {
                    if self.bins[c].current == Some(s) {
                        self.set_current(c, None);
                    }
                    self.release_slab(c, s);
                }
            }
        }
        let mut seg = self.segments;
        while let Some(g) = seg {
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            seg = unsafe { sg(g) }.next.get();
            // SAFETY: a slab or segment of this pool, mapped while named (`sl`).
            if unsafe { sg(g) }.free_slabs.get() == ALL_FREE {
                self.segment_remove(g);
                pool.free_segment(g);
            }
        }
    }
}

/// Carving stops at a multiple of this: the blocks carved at once start on one 4 KiB page.
pub(crate) const CARVE: usize = 4096;

/// Whether a heap pointer stored in a segment's owner field is this heap.
#[inline(always)]
pub(crate) fn owned_by(owner: &AtomicPtr<ThreadHeap>, heap: *mut ThreadHeap) -> bool {
    // Relaxed: only a heap's own thread ever finds its own pointer there, and that thread wrote
    // it (or adopted the segment through an acquiring take).
    owner.load(Ordering::Relaxed) == heap
}
