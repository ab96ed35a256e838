//! Span descriptors (`SpanDesc`, Go's `mspan`): one per run of whole pages, in use or free.

use crate::arena::HeapArena;
use core::ptr::NonNull;

/// What a span is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Holds a block the program is using.
    InUse,
    /// Free, on the free structures.
    Free,
}

/// A run of whole pages.
pub(crate) struct SpanDesc {
    /// Address of the first page.
    pub start: usize,
    /// Pages, the guard page (when the heap keeps one) included.
    pub pages: usize,
    /// Free: how many of its pages are clean (so the common case, a span with none, needs no
    /// look at the bitmap). In use: 0.
    pub clean: usize,
    pub state: State,
    pub arena: NonNull<HeapArena>,
    /// In use: the size and alignment the block was asked for (or last resized to): what a
    /// free must fit, and what `size_of` answers.
    pub size: usize,
    pub align: usize,
    /// Free: the links of the structure it is on (an exact-size list: previous and next; the
    /// tree: left and right child).
    pub a: Option<NonNull<SpanDesc>>,
    pub b: Option<NonNull<SpanDesc>>,
    /// Free, in the tree: the heap priority (from the address: a treap keyed by pages and
    /// address, balanced in expectation whatever order spans come in).
    pub prio: u32,
    /// Free with dirty pages: the links of the scavenger's list, oldest first, and when the
    /// span was freed (its newest part).
    pub dirty_prev: Option<NonNull<SpanDesc>>,
    pub dirty_next: Option<NonNull<SpanDesc>>,
    pub on_dirty: bool,
    pub freed_at: u64,
}

impl SpanDesc {
    /// A fresh descriptor.
    pub fn new(start: usize, pages: usize, state: State, arena: NonNull<HeapArena>) -> Self {
        SpanDesc {
            start,
            pages,
            clean: 0,
            state,
            arena,
            size: 0,
            align: 1,
            a: None,
            b: None,
            prio: priority(start),
            dirty_prev: None,
            dirty_next: None,
            on_dirty: false,
            freed_at: 0,
        }
    }
}

/// A treap priority from an address (splitmix's finaliser).
pub(crate) fn priority(addr: usize) -> u32 {
    (alloc_core::secret::mix(addr as u64) >> 32) as u32
}
