//! Arenas: the regions the heap grows by. A regular arena is one mapping whose first pages hold
//! its page map (one entry per page: the span whose first or last page it is) and its clean
//! bitmap (one bit per page: the page reads as zero and is not resident, being fresh from the
//! OS or given back to it); the pages after them are carved into spans. A huge arena is a
//! mapping of its own for one very large block, with no page map.

use crate::span::SpanDesc;
use core::ptr::NonNull;

/// One arena's record (kept in the heap's metadata pool, not in the arena).
pub(crate) struct HeapArena {
    /// The whole mapping, for unmapping it.
    pub map_base: NonNull<u8>,
    pub map_len: usize,
    /// Address of the first usable page, and how many usable pages follow.
    pub start: usize,
    pub pages: usize,
    /// `pages` entries: for each page, the span it starts or ends (stale for interior pages).
    pub page_map: *mut Option<NonNull<SpanDesc>>,
    /// `pages` bits: 1 when the page is clean (zero, not resident).
    pub clean: *mut u64,
    /// The one span of a huge arena.
    pub huge: Option<NonNull<SpanDesc>>,
    /// Every arena, newest first.
    pub next: Option<NonNull<HeapArena>>,
}

impl HeapArena {
    /// Bytes at the start of a regular mapping of `total_pages` pages taken by the page map and
    /// the bitmap, rounded to pages.
    pub fn meta_bytes(total_pages: usize, page: usize) -> usize {
        let map = total_pages * core::mem::size_of::<Option<NonNull<SpanDesc>>>();
        let bits = total_pages.div_ceil(64) * 8;
        (map + bits).next_multiple_of(page)
    }

    /// One past the last usable byte.
    pub fn end(&self, page_shift: u32) -> usize {
        self.start + (self.pages << page_shift)
    }

    /// The page map entry of page `i`.
    ///
    /// # Safety
    ///
    /// A regular arena and `i < pages`.
    #[inline(always)]
    pub unsafe fn map(&self, i: usize) -> Option<NonNull<SpanDesc>> {
        // SAFETY: the page map has `pages` entries.
        unsafe { *self.page_map.add(i) }
    }

    /// Sets the page map entry of page `i`.
    ///
    /// # Safety
    ///
    /// A regular arena and `i < pages`.
    #[inline(always)]
    pub unsafe fn set_map(&self, i: usize, s: Option<NonNull<SpanDesc>>) {
        // SAFETY: as above.
        unsafe { *self.page_map.add(i) = s }
    }

    /// Marks pages `from..to` clean or dirty; returns how many changed state.
    ///
    /// # Safety
    ///
    /// A regular arena and `to <= pages`.
    pub unsafe fn set_clean(&self, from: usize, to: usize, clean: bool) -> usize {
        let mut changed = 0;
        let mut i = from;
        while i < to {
            let (w, b) = (i / 64, i % 64);
            let n = (64 - b).min(to - i);
            let mask = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << b };
            // SAFETY: w < ceil(pages / 64), the bitmap's length.
            let word = unsafe { &mut *self.clean.add(w) };
            let before = *word;
            if clean {
                *word |= mask;
                changed += (mask & !before).count_ones() as usize;
            } else {
                *word &= !mask;
                changed += (mask & before).count_ones() as usize;
            }
            i += n;
        }
        changed
    }

    /// Calls `f(from, to)` for every run of dirty pages in `from..to`.
    ///
    /// # Safety
    ///
    /// A regular arena and `to <= pages`.
    pub unsafe fn dirty_runs(&self, from: usize, to: usize, mut f: impl FnMut(usize, usize)) {
        let mut i = from;
        while i < to {
            // SAFETY: i < pages.
            let clean = unsafe { self.is_clean(i) };
            let mut j = i + 1;
            // SAFETY: j < to <= pages.
            while j < to && unsafe { self.is_clean(j) } == clean {
                j += 1;
            }
            if !clean {
                f(i, j);
            }
            i = j;
        }
    }

    /// Clean pages in `from..to`.
    ///
    /// # Safety
    ///
    /// A regular arena and `to <= pages`.
    pub unsafe fn count_clean(&self, from: usize, to: usize) -> usize {
        let mut n = 0;
        let mut i = from;
        while i < to {
            let (w, b) = (i / 64, i % 64);
            let k = (64 - b).min(to - i);
            let mask = if k == 64 { u64::MAX } else { ((1u64 << k) - 1) << b };
            // SAFETY: w < the bitmap's length.
            n += (unsafe { *self.clean.add(w) } & mask).count_ones() as usize;
            i += k;
        }
        n
    }

    /// Whether page `i` is clean.
    ///
    /// # Safety
    ///
    /// A regular arena and `i < pages`.
    #[inline]
    pub unsafe fn is_clean(&self, i: usize) -> bool {
        // SAFETY: i / 64 < the bitmap's length.
        unsafe { *self.clean.add(i / 64) >> (i % 64) & 1 != 0 }
    }
}
