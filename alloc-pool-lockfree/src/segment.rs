//! Segments and slabs: where the pool's blocks live.
//!
//! A segment is 4 MiB, aligned to 4 MiB, taken from the span heap. It is cut into 64 slabs of
//! 64 KiB; the first holds the segment's own header (the slab descriptors) and no blocks. A slab
//! serves one size class at a time: its blocks are carved back to back from its start as they
//! are first needed (so untouched pages stay untouched), each block a 16-byte header then the
//! payload. From any pointer, the segment is the pointer with its low 22 bits cleared and the
//! slab is bits 16..22: no search. A segment belongs to one thread heap (its owner); when that
//! thread exits, the segment is abandoned and another thread adopts it.

use crate::protocol::{BlockWord, SlabLists};
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
/// Slabs in a segment (slab 0 holds the header).
pub(crate) const SLABS: usize = SEGMENT / SLAB;
/// Bytes of a block's header, before its payload.
pub(crate) const HEADER: usize = 16;

/// One slab's descriptor.
pub(crate) struct Slab {
    /// The size class it serves, plus one (0: the slab serves nobody). Atomic: a racing misuse
    /// may read it from another thread while the owner changes it.
    pub class: AtomicUsize,
    /// Owner only: blocks carved so far (the next one starts at `bump * block size`).
    pub bump: Cell<usize>,
    /// Owner only: blocks the slab holds.
    pub capacity: Cell<usize>,
    pub lists: SlabLists,
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
    /// Owner only: the heap's list of its segments.
    pub prev: Cell<Option<NonNull<Segment>>>,
    pub next: Cell<Option<NonNull<Segment>>>,
    /// Every segment of the pool (under the pool's lock).
    pub all_prev: Cell<Option<NonNull<Segment>>>,
    pub all_next: Cell<Option<NonNull<Segment>>>,
    /// Owner only: bit i set when slab i serves nobody.
    pub free_slabs: Cell<u64>,
    /// The segment's memory, with its provenance.
    pub base: NonNull<u8>,
    pub slabs: [Slab; SLABS],
}

/// The first slab index that holds blocks (slab 0 is the header).
pub(crate) const FIRST_SLAB: usize = 1;
/// All slabs but the header one, free.
pub(crate) const ALL_FREE: u64 = !1;

const _: () = assert!(core::mem::size_of::<Segment>() <= SLAB, "the segment header fits in slab 0");

impl Segment {
    /// Writes a fresh header into the segment at `base` (4 MiB, aligned, zeroed or not).
    ///
    /// # Safety
    ///
    /// `base` is a segment-sized, segment-aligned block nobody else uses.
    pub unsafe fn init(base: NonNull<u8>, owner: *mut crate::heap::ThreadHeap) -> NonNull<Segment> {
        let seg = base.cast::<Segment>();
        // SAFETY: the header slab of the segment is ours; every field is written.
        unsafe {
            let s = seg.as_ptr();
            core::ptr::addr_of_mut!((*s).link).write(alloc_core::sync::remote_list::Link::new());
            core::ptr::addr_of_mut!((*s).owner).write(AtomicPtr::new(owner));
            core::ptr::addr_of_mut!((*s).prev).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).next).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).all_prev).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).all_next).write(Cell::new(None));
            core::ptr::addr_of_mut!((*s).free_slabs).write(Cell::new(ALL_FREE));
            core::ptr::addr_of_mut!((*s).base).write(base);
            let slabs = core::ptr::addr_of_mut!((*s).slabs).cast::<Slab>();
            for i in 0..SLABS {
                slabs.add(i).write(Slab {
                    class: AtomicUsize::new(0),
                    bump: Cell::new(0),
                    capacity: Cell::new(0),
                    lists: SlabLists::new(),
                    prev: Cell::new(None),
                    next: Cell::new(None),
                });
            }
        }
        seg
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

    /// Owner: starts serving `class` (the slab's lists are empty).
    pub fn start(&self, class: usize) {
        let block = crate::block_size(class);
        self.class.store(class + 1, Ordering::Relaxed);
        self.bump.set(0);
        self.capacity.set(SLAB / block);
        self.prev.set(None);
        self.next.set(None);
    }
}

/// The first word of a block's header: the free-list link while the block is free, the size
/// and alignment it was allocated with while it is in use.
///
/// # Safety
///
/// As for [`word`].
#[inline(always)]
pub(crate) unsafe fn asked<'a>(seg: &Segment, payload: usize) -> &'a AtomicUsize {
    // SAFETY: the header's first word, 16-aligned.
    unsafe { &*seg.at(payload - HEADER).cast::<AtomicUsize>().as_ptr() }
}

/// Packs a layout into the header's first word.
#[inline(always)]
pub(crate) fn pack(size: usize, align: usize) -> usize {
    size | (align.trailing_zeros() as usize) << 32
}

/// Unpacks it: (size, align).
#[inline(always)]
pub(crate) fn unpack(w: usize) -> (usize, usize) {
    (w & 0xffff_ffff, 1 << ((w >> 32) & 63))
}

/// The state word of the block whose payload starts at `payload`.
///
/// # Safety
///
/// `payload - HEADER .. payload` lies in mapped memory of a segment.
#[inline(always)]
pub(crate) unsafe fn word<'a>(seg: &Segment, payload: usize) -> &'a BlockWord {
    // SAFETY: the header's state word is its second half, 8-aligned (payloads are 16-aligned).
    unsafe { &*seg.at(payload - 8).cast::<BlockWord>().as_ptr() }
}
