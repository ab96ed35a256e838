//! The free spans, best fit in O(1) or O(log n): an exact-size list per page count up to
//! [`SMALL`] pages, with a bitmap of the non-empty ones (the smallest fitting list is found with a
//! few bit scans), and above that a treap keyed by (pages, address), which Go's heap used before
//! its page allocator: the smallest span that fits, the lowest address among equals.

use crate::span::{SpanDesc, State};
use core::ptr::NonNull;

/// Page counts with an exact-size list.
pub(crate) const SMALL: usize = 256;
const WORDS: usize = (SMALL + 1).div_ceil(64);

type Link = Option<NonNull<SpanDesc>>;

/// Every free span.
pub(crate) struct FreeSpans {
    /// `lists[k]`: free spans of exactly k pages (doubly linked through `a`/`b` as prev/next).
    lists: [Link; SMALL + 1],
    /// Bit k set when `lists[k]` is not empty.
    nonempty: [u64; WORDS],
    /// Spans of more than SMALL pages.
    tree: Link,
    /// Free spans and their pages.
    pub count: usize,
    pub pages: usize,
}

/// A span descriptor borrowed for one step.
///
/// # Safety
///
/// `p` is a live descriptor of the heap that holds these free spans, the heap is held
/// exclusively, and no other reference to the descriptor is used while this one lives. Every span
/// linked into a [`FreeSpans`] is such a descriptor ([`FreeSpans::insert`]'s precondition, and
/// the heap takes a span out before it frees the descriptor), so the walks below may follow links.
#[inline(always)]
unsafe fn s<'a>(p: NonNull<SpanDesc>) -> &'a mut SpanDesc {
    // SAFETY: as the caller promises.
    unsafe { &mut *p.as_ptr() }
}

/// Tree order: by pages, then address.
#[inline(always)]
fn less(a: &SpanDesc, b: &SpanDesc) -> bool {
    (a.pages, a.start) < (b.pages, b.start)
}

/// Tree order between two linked spans.
///
/// # Safety
///
/// As for [`s`], for both.
#[inline(always)]
unsafe fn before(a: NonNull<SpanDesc>, b: NonNull<SpanDesc>) -> bool {
    // SAFETY: as the caller promises; two shared reads, no `&mut` kept.
    unsafe { less(&*a.as_ptr(), &*b.as_ptr()) }
}

impl FreeSpans {
    pub const fn new() -> Self {
        FreeSpans { lists: [None; SMALL + 1], nonempty: [0; WORDS], tree: None, count: 0, pages: 0 }
    }

    /// Adds a free span.
    ///
    /// # Safety
    ///
    /// `p` is a live, free descriptor of the heap that holds these free spans (held exclusively),
    /// on none of its lists, and stays live until [`FreeSpans::remove`] takes it out.
    pub unsafe fn insert(&mut self, p: NonNull<SpanDesc>) {
        // SAFETY: a live descriptor, as the caller promises.
        let span = unsafe { s(p) };
        let n = span.pages;
        alloc_core::debug_check!(
            span.state == State::Free,
            "span {:#x} put on the free spans while in use",
            span.start
        );
        self.count += 1;
        self.pages += n;
        span.a = None;
        if n <= SMALL {
            let head = self.lists[n];
            span.b = head;
            if let Some(h) = head {
                // SAFETY: a span linked here (see `s`); `span` is not used past this point.
                unsafe { s(h) }.a = Some(p);
            }
            self.lists[n] = Some(p);
            self.nonempty[n / 64] |= 1 << (n % 64);
        } else {
            span.b = None;
            // SAFETY: `p` and every span in the tree are live descriptors.
            self.tree = unsafe { tree_insert(self.tree, p) };
        }
    }

    /// Removes a free span.
    ///
    /// # Safety
    ///
    /// `p` is on these free spans (put there by [`FreeSpans::insert`]).
    pub unsafe fn remove(&mut self, p: NonNull<SpanDesc>) {
        // SAFETY: a span linked here (see `s`).
        let (n, prev, next) = unsafe { (s(p).pages, s(p).a, s(p).b) };
        self.count -= 1;
        self.pages -= n;
        if n <= SMALL {
            // SAFETY: the neighbours on the list are spans linked here, each borrowed for one
            // write.
            unsafe {
                match prev {
                    Some(q) => s(q).b = next,
                    None => self.lists[n] = next,
                }
                if let Some(q) = next {
                    s(q).a = prev;
                }
            }
            if self.lists[n].is_none() {
                self.nonempty[n / 64] &= !(1 << (n % 64));
            }
        } else {
            // SAFETY: `p` and every span in the tree are live descriptors.
            self.tree = unsafe { tree_remove(self.tree, p) };
        }
        // SAFETY: as above; no other reference to `p` is live now.
        let span = unsafe { s(p) };
        span.a = None;
        span.b = None;
    }

    /// The smallest free span of at least `n` pages (the lowest address among equal sizes in
    /// the tree; the newest freed in a list).
    pub fn best_fit(&self, n: usize) -> Option<NonNull<SpanDesc>> {
        if n <= SMALL {
            let mut w = n / 64;
            let mut bits = self.nonempty[w] & (u64::MAX << (n % 64));
            loop {
                if bits != 0 {
                    let k = w * 64 + bits.trailing_zeros() as usize;
                    return self.lists[k];
                }
                w += 1;
                if w == WORDS {
                    break;
                }
                bits = self.nonempty[w];
            }
        }
        // The tree's smallest span with at least n pages.
        let mut best = None;
        let mut cur = self.tree;
        while let Some(c) = cur {
            // SAFETY: a span linked here (see `s`).
            let span = unsafe { s(c) };
            if span.pages >= n {
                best = Some(c);
                cur = span.a;
            } else {
                cur = span.b;
            }
        }
        best
    }

    /// The smallest free span of at least `n` and fewer than `enough` pages for which `fits`
    /// holds, looking at up to [`ALIGNED_LOOKS`] candidates in size order: an aligned request
    /// needs `n` pages at an aligned start, which a span of `n` pages may well have (a segment
    /// freed between two live ones) though only a span of `enough` pages is sure to.
    pub fn best_fit_where(
        &self,
        n: usize,
        enough: usize,
        fits: impl Fn(&SpanDesc) -> bool,
    ) -> Option<NonNull<SpanDesc>> {
        let mut looks = ALIGNED_LOOKS;
        let mut k = n;
        while k <= SMALL && k < enough {
            if self.nonempty[k / 64] >> (k % 64) & 1 != 0 {
                let mut cur = self.lists[k];
                while let Some(c) = cur {
                    // SAFETY: a span linked here (see `s`).
                    let span = unsafe { s(c) };
                    if fits(span) {
                        return Some(c);
                    }
                    looks -= 1;
                    if looks == 0 {
                        return None;
                    }
                    cur = span.b;
                }
            }
            k += 1;
        }
        if k >= enough {
            return None;
        }
        // SAFETY: the tree links only live descriptors.
        unsafe { tree_first(self.tree, n, enough, &fits, &mut looks) }
    }

    /// Calls `f` on every free span (for the validator).
    pub fn for_each(&self, mut f: impl FnMut(NonNull<SpanDesc>, usize) -> bool) -> bool {
        for (k, &head) in self.lists.iter().enumerate() {
            let mut cur = head;
            let mut prev = None;
            while let Some(c) = cur {
                // SAFETY: a span linked here (see `s`); its links are copied out before `f`.
                let (a, b) = unsafe { (s(c).a, s(c).b) };
                if a != prev || !f(c, k) {
                    return false;
                }
                prev = cur;
                cur = b;
            }
            if head.is_some() != (self.nonempty[k / 64] >> (k % 64) & 1 != 0) {
                return false;
            }
        }
        // SAFETY: the tree links only live descriptors.
        unsafe { tree_walk(self.tree, None, None, &mut f) }
    }
}

/// Candidates [`FreeSpans::best_fit_where`] looks at before settling for a span sure to fit.
const ALIGNED_LOOKS: usize = 64;

/// In order, the first span under `root` with `lo <= pages < hi` that `fits`, within `looks`.
///
/// # Safety
///
/// `root` and every span under it are live descriptors (see [`s`]).
unsafe fn tree_first(root: Link, lo: usize, hi: usize, fits: &impl Fn(&SpanDesc) -> bool, looks: &mut usize) -> Link {
    let c = root?;
    // SAFETY: as the caller promises; the links are copied out before recursing.
    let (pages, left, right) = unsafe { (s(c).pages, s(c).a, s(c).b) };
    if pages >= lo {
        // SAFETY: the subtree's spans are live descriptors.
        if let Some(f) = unsafe { tree_first(left, lo, hi, fits, looks) } {
            return Some(f);
        }
    }
    if *looks == 0 || pages >= hi {
        return None;
    }
    if pages >= lo {
        // SAFETY: as above; borrowed for the call only.
        if fits(unsafe { s(c) }) {
            return Some(c);
        }
        *looks -= 1;
    }
    // SAFETY: the subtree's spans are live descriptors.
    unsafe { tree_first(right, lo, hi, fits, looks) }
}

/// Inserts `p` under `root` (a treap: binary-search order by (pages, address), heap order by
/// priority, restored by rotations on the way back up). Depth is O(log n) in expectation.
///
/// # Safety
///
/// `p`, `root` and every span under it are live descriptors (see [`s`]).
unsafe fn tree_insert(root: Link, p: NonNull<SpanDesc>) -> Link {
    let Some(r) = root else { return Some(p) };
    // SAFETY: live descriptors, as the caller promises; each `s` borrow lasts one step, and the
    // recursion only touches spans below `r`.
    unsafe {
        if before(p, r) {
            s(r).a = tree_insert(s(r).a, p);
            if s(r).a.is_some_and(|l| s(l).prio > s(r).prio) {
                return Some(rotate_right(r));
            }
        } else {
            s(r).b = tree_insert(s(r).b, p);
            if s(r).b.is_some_and(|rr| s(rr).prio > s(r).prio) {
                return Some(rotate_left(r));
            }
        }
    }
    Some(r)
}

/// Removes `p` from under `root`: find it by its key, rotate it down below its higher-priority
/// child until it is a leaf, and cut it off.
///
/// # Safety
///
/// `p`, `root` and every span under it are live descriptors (see [`s`]).
unsafe fn tree_remove(root: Link, p: NonNull<SpanDesc>) -> Link {
    let r = root?;
    // SAFETY: live descriptors, as the caller promises; each `s` borrow lasts one step, and the
    // recursion only touches spans below the one being changed.
    unsafe {
        if r == p {
            return match (s(r).a, s(r).b) {
                (None, None) => None,
                (Some(l), None) => Some(l),
                (None, Some(rr)) => Some(rr),
                (Some(l), Some(rr)) => {
                    if s(l).prio > s(rr).prio {
                        let top = rotate_right(r);
                        s(top).b = tree_remove(s(top).b, p);
                        Some(top)
                    } else {
                        let top = rotate_left(r);
                        s(top).a = tree_remove(s(top).a, p);
                        Some(top)
                    }
                }
            };
        }
        if before(p, r) {
            s(r).a = tree_remove(s(r).a, p);
        } else {
            s(r).b = tree_remove(s(r).b, p);
        }
    }
    Some(r)
}

/// Lifts `r`'s left child over it (a no-op without one).
///
/// # Safety
///
/// `r` and its children are live descriptors (see [`s`]).
unsafe fn rotate_right(r: NonNull<SpanDesc>) -> NonNull<SpanDesc> {
    // SAFETY: as the caller promises; each borrow lasts one step.
    unsafe {
        let Some(l) = s(r).a else { return r };
        s(r).a = s(l).b;
        s(l).b = Some(r);
        l
    }
}

/// Lifts `r`'s right child over it (a no-op without one).
///
/// # Safety
///
/// `r` and its children are live descriptors (see [`s`]).
unsafe fn rotate_left(r: NonNull<SpanDesc>) -> NonNull<SpanDesc> {
    // SAFETY: as the caller promises; each borrow lasts one step.
    unsafe {
        let Some(rr) = s(r).b else { return r };
        s(r).b = s(rr).a;
        s(rr).a = Some(r);
        rr
    }
}

/// In-order walk checking the search order within `(lo, hi)` and the heap order.
///
/// # Safety
///
/// `node` and every span under it, `lo` and `hi` are live descriptors (see [`s`]).
unsafe fn tree_walk(
    node: Link,
    lo: Option<NonNull<SpanDesc>>,
    hi: Option<NonNull<SpanDesc>>,
    f: &mut impl FnMut(NonNull<SpanDesc>, usize) -> bool,
) -> bool {
    let Some(n) = node else { return true };
    // SAFETY: as the caller promises; the links are copied out before `f` or the recursion.
    unsafe {
        if lo.is_some_and(|l| !before(l, n)) || hi.is_some_and(|h| !before(n, h)) {
            return false;
        }
        let (a, b, prio) = (s(n).a, s(n).b, s(n).prio);
        for child in [a, b].into_iter().flatten() {
            if s(child).prio > prio {
                return false;
            }
        }
        tree_walk(a, lo, Some(n), f) && f(n, 0) && tree_walk(b, Some(n), hi, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    const PAGE: usize = 4096;
    const ALIGN: usize = 64 << 10;

    /// Free descriptors at the given (start, pages), on the heap so their addresses stay put;
    /// every pointer is made once, so the links the free structures keep stay valid.
    struct Spans(Vec<NonNull<SpanDesc>>);

    impl Drop for Spans {
        fn drop(&mut self) {
            for &p in &self.0 {
                // SAFETY: made by `Box::into_raw` in `spans`, freed once.
                drop(unsafe { Box::from_raw(p.as_ptr()) });
            }
        }
    }

    fn spans(of: &[(usize, usize)]) -> Spans {
        Spans(
            of.iter()
                .map(|&(start, pages)| {
                    let b = Box::new(SpanDesc::new(start, pages, State::Free, NonNull::dangling()));
                    // SAFETY: `Box::into_raw` is never null.
                    unsafe { NonNull::new_unchecked(Box::into_raw(b)) }
                })
                .collect(),
        )
    }

    fn put(free: &mut FreeSpans, all: &Spans) {
        for &p in &all.0 {
            // SAFETY: a live, free descriptor on no list, which outlives `free`'s use here.
            unsafe { free.insert(p) };
        }
    }

    fn start(p: Option<NonNull<SpanDesc>>) -> Option<usize> {
        // SAFETY: a descriptor of the test's own.
        p.map(|p| unsafe { p.as_ref() }.start)
    }

    /// The smallest span that fits, in the exact lists and in the tree, lowest address among equals.
    #[test]
    fn best_fit_takes_the_smallest_span_that_fits() {
        let all =
            spans(&[(0x100000, 9), (0x200000, 5), (0x300000, 7), (0x400000, 300), (0x500000, 280), (0x600000, 280)]);
        let mut free = FreeSpans::new();
        put(&mut free, &all);
        assert_eq!(start(free.best_fit(1)), Some(0x200000));
        assert_eq!(start(free.best_fit(6)), Some(0x300000));
        assert_eq!(start(free.best_fit(8)), Some(0x100000));
        assert_eq!(start(free.best_fit(10)), Some(0x500000), "the tree's smallest, lowest address first");
        assert_eq!(start(free.best_fit(281)), Some(0x400000));
        assert_eq!(free.best_fit(301), None);
        assert_eq!((free.count, free.pages), (6, 9 + 5 + 7 + 300 + 280 + 280));
        assert!(free.for_each(|_, _| true));
    }

    /// An aligned request takes the smallest span whose start suits it, before a larger one that
    /// is sure to fit (what keeps aligned segments from eating large holes), within `enough`.
    #[test]
    fn best_fit_where_takes_the_smallest_span_that_suits() {
        let aligned = |s: &SpanDesc| s.start.is_multiple_of(ALIGN);
        let all = spans(&[
            (ALIGN + PAGE, 16), // 16 pages, start off the alignment
            (3 * ALIGN, 17),    // 17 pages, aligned: the answer for 16
            (5 * ALIGN, 20),    // larger and aligned
            (7 * ALIGN + PAGE, 300),
            (11 * ALIGN, 290), // the tree's only aligned span
        ]);
        let mut free = FreeSpans::new();
        put(&mut free, &all);
        assert_eq!(start(free.best_fit_where(16, 32, aligned)), Some(3 * ALIGN));
        assert_eq!(start(free.best_fit_where(18, 32, aligned)), Some(5 * ALIGN));
        assert_eq!(start(free.best_fit_where(16, 18, aligned)), Some(3 * ALIGN), "17 < enough");
        assert_eq!(free.best_fit_where(16, 17, aligned), None, "none below `enough` suits");
        assert_eq!(start(free.best_fit_where(260, 400, aligned)), Some(11 * ALIGN), "from the tree");
        assert_eq!(free.best_fit_where(21, 280, aligned), None, "the tree's spans are all past `enough`");
        // Removing the answer moves to the next one.
        // SAFETY: on these free spans.
        unsafe { free.remove(all.0[1]) };
        assert_eq!(start(free.best_fit_where(16, 32, aligned)), Some(5 * ALIGN));
        assert_eq!(free.count, 4);
    }

    /// Past [`ALIGNED_LOOKS`] unsuitable candidates the search gives up (the caller then takes a
    /// span sure to fit).
    #[test]
    fn best_fit_where_looks_at_a_bounded_number_of_candidates() {
        let layout: Vec<(usize, usize)> = (0..ALIGNED_LOOKS + 1).map(|i| ((2 * i + 1) * ALIGN + PAGE, 8)).collect();
        let all = spans(&layout);
        let last = spans(&[(1000 * ALIGN, 9)]);
        let mut free = FreeSpans::new();
        put(&mut free, &all);
        put(&mut free, &last);
        assert_eq!(free.best_fit_where(8, 16, |s| s.start.is_multiple_of(ALIGN)), None);
        assert_eq!(start(free.best_fit_where(9, 16, |s| s.start.is_multiple_of(ALIGN))), Some(1000 * ALIGN));
    }

    /// The tree stays balanced whatever order spans come in (the priorities are what balances
    /// it): 2,000 spans of tree sizes inserted in increasing order, the worst case of a plain
    /// search tree, make a tree of depth within a small multiple of log2(2,000) = 11.
    #[test]
    fn the_tree_stays_shallow_for_spans_in_sorted_order() {
        fn depth(t: Option<NonNull<SpanDesc>>) -> usize {
            // SAFETY: descriptors of the test's own, linked by the tree.
            t.map_or(0, |p| 1 + depth(unsafe { p.as_ref() }.a).max(depth(unsafe { p.as_ref() }.b)))
        }
        let all = spans(&(0..2000).map(|i| (0x1000_0000 + i * 0x100_0000, SMALL + 1 + i)).collect::<Vec<_>>());
        let mut free = FreeSpans::new();
        put(&mut free, &all);
        let d = depth(free.tree);
        assert!(d <= 50, "a tree of 2,000 spans {d} deep");
    }
}
