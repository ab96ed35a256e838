//! The free spans, best fit in O(1) or O(log n): an exact-size list per page count up to
//! [`SMALL`] pages, with a bitmap of the non-empty ones (the smallest fitting list is found with a
//! few bit scans), and above that a treap keyed by (pages, address), which Go's heap used before
//! its page allocator: the smallest span that fits, the lowest address among equals.

use crate::span::{Span, State};
use core::ptr::NonNull;

/// Page counts with an exact-size list.
pub(crate) const SMALL: usize = 256;
const WORDS: usize = (SMALL + 1).div_ceil(64);

type Link = Option<NonNull<Span>>;

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

/// # Safety (for every function taking spans here)
///
/// Spans passed in are live descriptors of this heap; the caller holds the heap exclusively.
#[inline(always)]
fn s<'a>(p: NonNull<Span>) -> &'a mut Span {
    // SAFETY: see above: descriptors outlive their use here and nothing else borrows them.
    unsafe { &mut *p.as_ptr() }
}

/// Tree order: by pages, then address.
#[inline(always)]
fn less(a: &Span, b: &Span) -> bool {
    (a.pages, a.start) < (b.pages, b.start)
}

impl FreeSpans {
    pub const fn new() -> Self {
        FreeSpans { lists: [None; SMALL + 1], nonempty: [0; WORDS], tree: None, count: 0, pages: 0 }
    }

    /// Adds a free span.
    pub fn insert(&mut self, p: NonNull<Span>) {
        let n = s(p).pages;
        alloc_core::debug_check!(
            s(p).state == State::Free,
            "span {:#x} put on the free spans while in use",
            s(p).start
        );
        self.count += 1;
        self.pages += n;
        if n <= SMALL {
            let head = self.lists[n];
            s(p).a = None;
            s(p).b = head;
            if let Some(h) = head {
                s(h).a = Some(p);
            }
            self.lists[n] = Some(p);
            self.nonempty[n / 64] |= 1 << (n % 64);
        } else {
            s(p).a = None;
            s(p).b = None;
            self.tree = tree_insert(self.tree, p);
        }
    }

    /// Removes a free span.
    pub fn remove(&mut self, p: NonNull<Span>) {
        let n = s(p).pages;
        self.count -= 1;
        self.pages -= n;
        if n <= SMALL {
            let (prev, next) = (s(p).a, s(p).b);
            match prev {
                Some(q) => s(q).b = next,
                None => self.lists[n] = next,
            }
            if let Some(q) = next {
                s(q).a = prev;
            }
            if self.lists[n].is_none() {
                self.nonempty[n / 64] &= !(1 << (n % 64));
            }
        } else {
            self.tree = tree_remove(self.tree, p);
        }
        s(p).a = None;
        s(p).b = None;
    }

    /// The smallest free span of at least `n` pages (the lowest address among equal sizes in
    /// the tree; the newest freed in a list).
    pub fn best_fit(&self, n: usize) -> Option<NonNull<Span>> {
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
            if s(c).pages >= n {
                best = Some(c);
                cur = s(c).a;
            } else {
                cur = s(c).b;
            }
        }
        best
    }

    /// The smallest free span of at least `n` and fewer than `enough` pages for which `fits`
    /// holds, looking at up to [`ALIGNED_LOOKS`] candidates in size order: an aligned request
    /// needs `n` pages at an aligned start, which a span of `n` pages may well have (a segment
    /// freed between two live ones) though only a span of `enough` pages is sure to.
    pub fn best_fit_where(&self, n: usize, enough: usize, fits: impl Fn(&Span) -> bool) -> Option<NonNull<Span>> {
        let mut looks = ALIGNED_LOOKS;
        let mut k = n;
        while k <= SMALL && k < enough {
            if self.nonempty[k / 64] >> (k % 64) & 1 != 0 {
                let mut cur = self.lists[k];
                while let Some(c) = cur {
                    if fits(s(c)) {
                        return Some(c);
                    }
                    looks -= 1;
                    if looks == 0 {
                        return None;
                    }
                    cur = s(c).b;
                }
            }
            k += 1;
        }
        if k >= enough {
            return None;
        }
        tree_first(self.tree, n, enough, &fits, &mut looks)
    }

    /// Calls `f` on every free span (for the validator).
    pub fn for_each(&self, mut f: impl FnMut(NonNull<Span>, usize) -> bool) -> bool {
        for (k, &head) in self.lists.iter().enumerate() {
            let mut cur = head;
            let mut prev = None;
            while let Some(c) = cur {
                if s(c).a != prev || !f(c, k) {
                    return false;
                }
                prev = cur;
                cur = s(c).b;
            }
            if head.is_some() != (self.nonempty[k / 64] >> (k % 64) & 1 != 0) {
                return false;
            }
        }
        tree_walk(self.tree, None, None, &mut f)
    }
}

/// Candidates [`FreeSpans::best_fit_where`] looks at before settling for a span sure to fit.
const ALIGNED_LOOKS: usize = 64;

/// In order, the first span under `root` with `lo <= pages < hi` that `fits`, within `looks`.
fn tree_first(root: Link, lo: usize, hi: usize, fits: &impl Fn(&Span) -> bool, looks: &mut usize) -> Link {
    let c = root?;
    let pages = s(c).pages;
    if pages >= lo {
        if let Some(f) = tree_first(s(c).a, lo, hi, fits, looks) {
            return Some(f);
        }
    }
    if *looks == 0 || pages >= hi {
        return None;
    }
    if pages >= lo {
        if fits(s(c)) {
            return Some(c);
        }
        *looks -= 1;
    }
    tree_first(s(c).b, lo, hi, fits, looks)
}

/// Inserts `p` under `root` (a treap: binary-search order by (pages, address), heap order by
/// priority, restored by rotations on the way back up). Depth is O(log n) in expectation.
fn tree_insert(root: Link, p: NonNull<Span>) -> Link {
    let Some(r) = root else { return Some(p) };
    if less(s(p), s(r)) {
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
    Some(r)
}

/// Removes `p` from under `root`: find it by its key, rotate it down below its higher-priority
/// child until it is a leaf, and cut it off.
fn tree_remove(root: Link, p: NonNull<Span>) -> Link {
    let r = root?;
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
    if less(s(p), s(r)) {
        s(r).a = tree_remove(s(r).a, p);
    } else {
        s(r).b = tree_remove(s(r).b, p);
    }
    Some(r)
}

/// Lifts `r`'s left child over it (a no-op without one).
fn rotate_right(r: NonNull<Span>) -> NonNull<Span> {
    let Some(l) = s(r).a else { return r };
    s(r).a = s(l).b;
    s(l).b = Some(r);
    l
}

/// Lifts `r`'s right child over it (a no-op without one).
fn rotate_left(r: NonNull<Span>) -> NonNull<Span> {
    let Some(rr) = s(r).b else { return r };
    s(r).b = s(rr).a;
    s(rr).a = Some(r);
    rr
}

/// In-order walk checking the search order within `(lo, hi)` and the heap order.
fn tree_walk(
    node: Link,
    lo: Option<NonNull<Span>>,
    hi: Option<NonNull<Span>>,
    f: &mut impl FnMut(NonNull<Span>, usize) -> bool,
) -> bool {
    let Some(n) = node else { return true };
    if lo.is_some_and(|l| !less(s(l), s(n))) || hi.is_some_and(|h| !less(s(n), s(h))) {
        return false;
    }
    for child in [s(n).a, s(n).b].into_iter().flatten() {
        if s(child).prio > s(n).prio {
            return false;
        }
    }
    tree_walk(s(n).a, lo, Some(n), f) && f(n, 0) && tree_walk(s(n).b, Some(n), hi, f)
}
