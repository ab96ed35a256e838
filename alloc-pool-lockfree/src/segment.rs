//! Segments and slabs: where the pool's blocks live.
//!
//! A segment is 4 MiB, aligned to 4 MiB, taken from the span heap. It is cut into 64 slabs of
//! 64 KiB; the first two hold the segment's own header (the slab descriptors with their state
//! bits) and no blocks. The header starts one page in ([`HEADER`]): the page before it, and the
//! pages after it up to the first slab of blocks, hold nothing, and a pool made with guards
//! (`Pool::with_guarded_source`) makes them fault, so that a linear overflow off whatever lies
//! before the segment, or an underflow off its first slab, faults instead of rewriting the
//! header. A slab serves one size class at a time: its blocks are carved back to
//! back from its start as they are first needed, those that start on one 4 KiB page at a time
//! (so untouched pages stay untouched), with no
//! header: the class is the slab's, and whether a block is in use is two bits per 16-byte
//! granule in the slab's descriptor ([`StateBits`]). From any pointer, the segment is the
//! pointer with its low 22 bits cleared, the slab is bits 16..22 and the granule bits 4..16: no
//! search. A segment belongs to one thread heap (its owner); when that
//! thread exits, the segment is abandoned and another thread adopts it.

use crate::protocol::{SlabLists, StateBits};
use alloc_core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use core::cell::Cell;
use core::ptr::NonNull;

/// log2 of a segment's size.
pub(crate) const SEGMENT_SHIFT: u32 = 22;
/// A segment's size and alignment.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_SHIFT;
/// log2 of a slab's size.
pub(crate) const SLAB_SHIFT: u32 = 16;
/// A slab's size.
pub(crate) const SLAB: usize = 1 << SLAB_SHIFT;
/// Slabs in a segment (slabs 0 and 1 hold the header).
pub(crate) const SLABS: usize = SEGMENT / SLAB;
/// The index, within its segment, of the slab holding `addr`: every path from an address to its
/// slab goes through here.
#[inline(always)]
pub(crate) const fn slab_index(addr: usize) -> usize {
    (addr >> SLAB_SHIFT) & (SLABS - 1)
}

/// Bytes per state bit: every block starts on a multiple of it.
pub(crate) const GRANULE: usize = 16;
/// State words per slab.
const STATE_WORDS: usize = SLAB / GRANULE / 64;

/// One slab's descriptor. 128 bytes apart: a pointer's descriptor is then its slab bits
/// shifted and masked (no multiply), and no two descriptors share a cache line.
#[repr(align(128))]
pub(crate) struct Slab {
    /// The size class it serves, plus one (0: the slab serves nobody; always for the header
    /// slabs, so a free into them is refused with no separate check). Atomic: a racing misuse
    /// may read it from another thread while the owner changes it.
    pub class: AtomicUsize,
    /// Blocks carved so far (the next one starts at `bump * block size`). Written by the owner
    /// only; read by any thread that reports a bad free (to tell a double free from a pointer
    /// never handed out).
    pub bump: OwnerWritten,
    /// Owner only: blocks the slab holds.
    pub capacity: Cell<usize>,
    /// The sizes a layout freed here may have (its class is the slab's): from `fits_low`, the
    /// class below's block size plus one, for `fits_span` bytes, to the block size. Written when
    /// the slab starts; read by any thread that frees into it.
    pub fits_low: OwnerWritten,
    pub fits_span: OwnerWritten,
    /// The block size of its class (what an allocation from it returns as its length).
    pub block: OwnerWritten,
    pub lists: SlabLists,
    /// Owner only: whether the slab is its class's current one in its heap (`bins[c].current`,
    /// kept so by `ThreadHeap::set_current`): a free that empties it leaves it be when it is,
    /// with one test instead of finding its class's bin.
    pub current: Cell<bool>,
    /// Owner only: the heap's list of slabs of this class.
    pub prev: Cell<Option<NonNull<Slab>>>,
    pub next: Cell<Option<NonNull<Slab>>>,
}

/// The header at the start of every segment.
#[repr(C)]
pub(crate) struct Segment {
    /// The link of the pool's list of abandoned segments (first, so a segment is a list node).
    pub link: alloc_core::sync::remote_list::Link,
    /// The thread heap that owns it; null while abandoned.
    pub owner: AtomicPtr<crate::heap::ThreadHeap>,
    /// The id of the pool it belongs to (a free checks it: the map of every pool's segments
    /// the free path reads does not say whose a segment is).
    pub pool: u64,
    /// Owner only: the heap's list of its segments.
    pub prev: Cell<Option<NonNull<Segment>>>,
    pub next: Cell<Option<NonNull<Segment>>>,
    /// Every segment of the pool (under the pool's lock).
    pub all_prev: Cell<Option<NonNull<Segment>>>,
    pub all_next: Cell<Option<NonNull<Segment>>>,
    /// Owner only: bit i set when slab i serves nobody.
    pub free_slabs: Cell<u64>,
    /// Bytes at the end of every slab that hold no block: [`GUARD`] in a guarded pool's
    /// segment (its last page faults once the slab has served a class, see `guarded`), else 0.
    pub tail: usize,
    /// Owner only: bit i set when slab i's last page is made to fault (a guarded pool sets it
    /// when the slab first starts on a class in this segment's life, so that a segment a
    /// thread barely uses costs few system calls).
    pub guarded: Cell<u64>,
    /// Owner only: a guarded pool's generator for the order its slabs' blocks are carved in
    /// (xorshift; 0 until the segment's first shuffled carve seeds it). In the segment, not the
    /// heap: a field more in the thread heap moved the in-process allocation path's code (one
    /// instruction more an `alloc-free-pair` operation in `compare`), and this header has room.
    pub rng: Cell<u64>,
    /// The segment's memory, with its provenance.
    pub base: NonNull<u8>,
    pub slabs: [Slab; SLABS],
    /// Which blocks are in use, by slab and granule: a slab's row is written when the slab
    /// starts on a class, and read only while it serves one. Apart from the slab descriptors
    /// (in each descriptor until 2026-12-02), so that a fresh segment's header touches the
    /// descriptors' two pages and the rows of the slabs in use, not all of its 72 KiB.
    pub state: [StateBits; SLABS * STATE_WORDS],
}

/// The first slab index that holds blocks (slabs 0 and 1 are the header).
pub(crate) const FIRST_SLAB: usize = 2;
/// All slabs but the header ones, free.
pub(crate) const ALL_FREE: u64 = !((1 << FIRST_SLAB) - 1);

/// Where the header starts in its segment: one 4 KiB page in, the page before it a guard.
pub(crate) const HEADER: usize = 4096;
/// The guard page at the end of each slab of a guarded pool.
pub(crate) const GUARD: usize = 4096;
/// Where the header's last page ends: from here to the first slab of blocks is a guard too.
pub(crate) const HEADER_END: usize = (HEADER + core::mem::size_of::<Segment>()).next_multiple_of(HEADER);

const _: () = assert!(HEADER_END < FIRST_SLAB * SLAB, "the segment header and a guard after it fit its slabs");

/// The ranges (offset, length) of a segment that hold nothing and may be made to fault: the
/// page before the header and the pages after it up to the first slab of blocks.
pub(crate) const GUARDS: [(usize, usize); 2] = [(0, HEADER), (HEADER_END, FIRST_SLAB * SLAB - HEADER_END)];

impl Segment {
    /// Writes a fresh header into the segment at `base` (4 MiB, aligned, zeroed or not).
    ///
    /// # Safety
    ///
    /// `base` is a segment-sized, segment-aligned block nobody else uses.
    pub unsafe fn init(
        base: NonNull<u8>,
        owner: *mut crate::heap::ThreadHeap,
        pool: u64,
        tail: usize,
    ) -> NonNull<Segment> {
        // SAFETY: inside the segment (the header fits before its first slab, asserted above).
        let seg = unsafe { base.byte_add(HEADER) }.cast::<Segment>();
        // SAFETY: the header slabs of the segment are ours; every field is written.
        unsafe {
            let s = seg.as_ptr();
            core::ptr::addr_of_mut!((*s).link).write(alloc_core::sync::remote_list::Link::new());
            core::ptr::addr_of_mut!((*s).owner).write(AtomicPtr::new(owner));
            core::ptr::addr_of_mut!((*s).pool).write(pool);
            core::ptr::addr_of_mut!((*s).prev).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).next).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).all_prev).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).all_next).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).free_slabs).write(Cell::new(ALL_FREE));
            core::ptr::addr_of_mut!((*s).tail).write(tail);
            core::ptr::addr_of_mut!((*s).guarded).write(Cell::new(0));
            core::ptr::addr_of_mut!((*s).rng).write(Cell::new(0));
            core::ptr::addr_of_mut!((*s).base).write(base);
            let slabs = core::ptr::addr_of_mut!((*s).slabs).cast::<Slab>();
            for i in 0..SLABS {
                let slab = slabs.add(i);
                core::ptr::addr_of_mut!((*slab).class).write(AtomicUsize::new(0));
                core::ptr::addr_of_mut!((*slab).bump).write(OwnerWritten(AtomicUsize::new(0)));
                core::ptr::addr_of_mut!((*slab).capacity).write(Cell::new(0));
                core::ptr::addr_of_mut!((*slab).fits_low).write(OwnerWritten(AtomicUsize::new(0)));
                core::ptr::addr_of_mut!((*slab).fits_span).write(OwnerWritten(AtomicUsize::new(0)));
                core::ptr::addr_of_mut!((*slab).block).write(OwnerWritten(AtomicUsize::new(0)));
                core::ptr::addr_of_mut!((*slab).lists).write(SlabLists::new());
                core::ptr::addr_of_mut!((*slab).current).write(Cell::new(false));
                core::ptr::addr_of_mut!((*slab).prev).write(Cell::new(None));
                core::ptr::addr_of_mut!((*slab).next).write(Cell::new(None));
            }
            // Not the state bits: 64 KiB of the header, a slab's row written (only) when the
            // slab starts on a class, so a fresh segment's untouched header pages stay untouched.
            // Nothing reads a slab's state before it starts (every reader checks the class first).
        }
        seg
    }

    /// The header of the segment holding `p`.
    ///
    /// # Safety
    ///
    /// `p` points into a segment (its provenance covers the segment's header).
    #[inline(always)]
    pub unsafe fn header_of(p: NonNull<u8>) -> NonNull<Segment> {
        let base = Segment::of(p.as_ptr() as usize) as *mut u8;
        // SAFETY: as the caller promises; the offset is added to a pointer so that LLVM folds it
        // into the field offsets read through it.
        unsafe { NonNull::new_unchecked(base.add(HEADER).cast()) }
    }

    /// The segment holding `addr`.
    #[inline(always)]
    pub fn of(addr: usize) -> usize {
        addr & !(SEGMENT - 1)
    }

    /// The start of slab `i`'s memory.
    #[inline(always)]
    pub fn slab_start(&self, i: usize) -> usize {
        self.base.as_ptr() as usize + (i << SLAB_SHIFT)
    }

    /// A pointer to `addr` in this segment, with its provenance.
    #[inline(always)]
    pub fn at(&self, addr: usize) -> NonNull<u8> {
        // SAFETY: callers pass addresses inside the segment.
        unsafe { alloc_core::ptr::with_addr(self.base, addr) }
    }

    /// The state bits of the block starting at `addr` (an address in this segment): its word
    /// and its bit.
    #[inline(always)]
    pub fn bits(&self, addr: usize) -> (&StateBits, u64) {
        // One flat row per slab, in slab order: the word is the address's bits 10..22 (one
        // shift and one mask; indexed as rows, the compiler built it from two).
        let g = addr / GRANULE;
        (&self.state[(g / 64) % (SLABS * STATE_WORDS)], 1 << (g % 64))
    }

    /// The state words of slab `i`.
    #[inline]
    pub fn slab_state(&self, i: usize) -> &[StateBits] {
        &self.state[i * STATE_WORDS..(i + 1) * STATE_WORDS]
    }

    /// The index of slab `s` in its segment.
    pub fn slab_index(&self, s: NonNull<Slab>) -> usize {
        let first = core::ptr::addr_of!(self.slabs) as usize;
        (s.as_ptr() as usize - first) / core::mem::size_of::<Slab>()
    }
}

impl Slab {
    /// The class served (`None` for a free slab).
    #[inline(always)]
    pub fn class(&self) -> Option<usize> {
        // Relaxed: the owner changes it only while no block of the slab is live.
        self.class.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Owner: starts serving `class` (the slab's lists are empty, its state bits, `state`, clear),
    /// with no block in its last `tail` bytes.
    pub fn start(&self, class: usize, state: &[StateBits], tail: usize) {
        let block = crate::block_size(class);
        for w in state {
            w.clear();
        }
        let below = if class == 0 { 0 } else { crate::block_size(class - 1) };
        self.fits_low.set(below + 1);
        self.fits_span.set(block - below);
        self.block.set(block);
        self.class.store(class + 1, Ordering::Relaxed);
        self.bump.set(0);
        self.current.set(false);
        self.capacity.set((SLAB - tail) / block);
        self.prev.set(None);
        self.next.set(None);
    }
}

impl Slab {
    /// Owner: serves no class any more (the slab's blocks are all back). It fits no layout
    /// either: a free with a layout checks the fit alone (no class).
    pub fn stop(&self) {
        self.fits_span.set(0);
        self.class.store(0, Ordering::Relaxed);
    }
}

/// A count only its owner writes (a relaxed load and store, no read-modify-write) and any thread
/// may read.
pub(crate) struct OwnerWritten(AtomicUsize);

impl OwnerWritten {
    #[inline(always)]
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub fn set(&self, v: usize) {
        self.0.store(v, Ordering::Relaxed)
    }
}

impl Slab {
    /// Whether a layout of `size` bytes is of the slab's class (one subtraction and compare).
    #[inline(always)]
    pub fn fits(&self, size: usize) -> bool {
        size.wrapping_sub(self.fits_low.get()) < self.fits_span.get()
    }
}
