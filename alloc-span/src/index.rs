//! The arena index: address to arena in O(1), as Go's `mheap.arenas`: a two-level radix table
//! over the address space at a granule of 2 MiB. The first level is inline; each second-level
//! table (1 MiB of entries on 64-bit, covering 256 GiB) is mapped from the page source when an
//! arena first lands in its range, and only the pages of it that hold entries become resident.
//! Every arena is aligned to the granule, so each granule belongs to at most one arena.

use crate::arena::HeapArena;
use alloc_core::source::PageSource;
use core::ptr::NonNull;

/// log2 of the granule: arenas are multiples of 2 MiB, aligned to 2 MiB (a huge page).
pub(crate) const GRANULE_SHIFT: u32 = 21;
/// The granule in bytes.
pub(crate) const GRANULE: usize = 1 << GRANULE_SHIFT;

/// Bits of user-space addresses: 48 on 64-bit (x86_64 and arm64 with four-level tables).
const ADDR_BITS: u32 = if usize::BITS == 64 { 48 } else { 32 };
/// Each first-level entry covers 2^L1_SHIFT bytes.
const L1_SHIFT: u32 = if usize::BITS == 64 { 38 } else { 32 };
const L1_LEN: usize = 1 << (ADDR_BITS - L1_SHIFT);
const L2_LEN: usize = 1 << (L1_SHIFT - GRANULE_SHIFT);
/// Bytes of one second-level table.
pub(crate) const L2_BYTES: usize = L2_LEN * core::mem::size_of::<Option<NonNull<HeapArena>>>();

type L2 = [Option<NonNull<HeapArena>>; L2_LEN];

/// Address to arena.
pub(crate) struct ArenaIndex {
    l1: [Option<NonNull<L2>>; L1_LEN],
    /// Bytes mapped for second-level tables.
    pub mapped: usize,
}

/// The (first, second) level indices of `addr`, or `None` past the indexed address space.
#[inline(always)]
fn split(addr: usize) -> Option<(usize, usize)> {
    let a = addr as u64;
    if a >> ADDR_BITS != 0 {
        return None;
    }
    Some(((a >> L1_SHIFT) as usize, ((a >> GRANULE_SHIFT) as usize) & (L2_LEN - 1)))
}

impl ArenaIndex {
    /// An empty index.
    pub const fn new() -> Self {
        ArenaIndex { l1: [None; L1_LEN], mapped: 0 }
    }

    /// The arena holding `addr`, if any.
    #[inline]
    pub fn get(&self, addr: usize) -> Option<NonNull<HeapArena>> {
        let (i, j) = split(addr)?;
        let l2 = self.l1[i]?;
        // SAFETY: second-level tables are mapped while the index lives; j < L2_LEN.
        unsafe { (*l2.as_ptr())[j] }
    }

    /// Points every granule of `start..start+len` at `arena` (or clears them with `None`);
    /// `false` when a second-level table could not be mapped (nothing is changed then).
    pub fn set<S: PageSource>(
        &mut self,
        source: &S,
        start: usize,
        len: usize,
        arena: Option<NonNull<HeapArena>>,
    ) -> bool {
        let end = start + len;
        // Map every table the range needs first, so a failure leaves the index as it was.
        let mut g = start;
        while g < end {
            let Some((i, _)) = split(g) else { return false };
            if self.l1[i].is_none() {
                if arena.is_none() {
                    g += GRANULE;
                    continue;
                }
                let Some(t) = source.map(L2_BYTES.next_multiple_of(source.page_size()), source.page_size()) else {
                    return false;
                };
                if !source.maps_zeroed() {
                    // SAFETY: a fresh run of L2_BYTES; all-zero bytes are `None` entries.
                    unsafe { t.as_ptr().write_bytes(0, L2_BYTES) };
                }
                self.mapped += L2_BYTES.next_multiple_of(source.page_size());
                self.l1[i] = Some(t.cast());
            }
            g += GRANULE;
        }
        let mut g = start;
        while g < end {
            if let Some((i, j)) = split(g) {
                if let Some(l2) = self.l1[i] {
                    // SAFETY: a mapped table; j < L2_LEN.
                    unsafe { (*l2.as_ptr())[j] = arena };
                }
            }
            g += GRANULE;
        }
        true
    }

    /// Unmaps every second-level table.
    ///
    /// # Safety
    ///
    /// The index is not used afterwards; `source` is the one the tables came from.
    pub unsafe fn release_all<S: PageSource>(&mut self, source: &S) {
        for t in self.l1.iter_mut().filter_map(Option::take) {
            // SAFETY: each table was mapped with this length from this source.
            unsafe { source.unmap(t.cast(), L2_BYTES.next_multiple_of(source.page_size())) };
        }
        self.mapped = 0;
    }
}
