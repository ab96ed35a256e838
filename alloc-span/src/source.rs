//! The span heap as a page source: layers that map runs of pages (alloc-bump's chunks, a pool's
//! segments) get them from a span heap instead of the OS. A run given back is kept by the heap
//! and handed out again without a system call or a page fault (its pages stay resident until
//! the scavenger returns them), and runs of any size share the heap's arenas instead of one
//! mapping each.

use crate::Span;
use alloc_core::source::{Decommit, PageSource};
use alloc_core::{Allocator, DefaultSource, Layout};
use core::ptr::NonNull;

/// A [`PageSource`] over a one-thread span heap ([`Span`]). Runs are aligned to a page (a larger
/// alignment is refused); their contents are whatever the heap's pages held (`maps_zeroed` is
/// false).
///
/// ```
/// use alloc_core::source::PageSource;
/// let source = alloc_span::SpanSource::new();
/// let page = source.page_size();
/// let run = source.map(16 * page, page).unwrap();
/// // SAFETY: the run is ours, 16 pages long.
/// unsafe { run.as_ptr().write_bytes(1, 16 * page) };
/// // SAFETY: unmapped once, with its size.
/// unsafe { source.unmap(run, 16 * page) };
/// // The heap kept the pages: the next run of that size is the same one, already resident.
/// assert_eq!(source.map(16 * page, page), Some(run));
/// ```
pub struct SpanSource<S: PageSource + Decommit = DefaultSource> {
    heap: Span<S>,
}

impl SpanSource {
    /// A span heap over the OS page source; maps nothing until the first run.
    pub const fn new() -> Self {
        SpanSource::with_source(DefaultSource::new())
    }
}

impl Default for SpanSource {
    fn default() -> Self {
        SpanSource::new()
    }
}

impl<S: PageSource + Decommit> SpanSource<S> {
    /// A span heap over `source`.
    pub const fn with_source(source: S) -> Self {
        SpanSource { heap: Span::with_source(source) }
    }

    /// The span heap (its statistics, scavenging).
    pub fn span(&mut self) -> &mut Span<S> {
        &mut self.heap
    }

    fn page(&self) -> usize {
        self.heap.page_size()
    }
}

// SAFETY: runs are blocks of the span heap, page-aligned and `size` bytes long, disjoint while
// mapped, and writable until unmapped; `unmap` frees them with the layout `map` used.
unsafe impl<S: PageSource + Decommit> PageSource for SpanSource<S> {
    fn page_size(&self) -> usize {
        self.page()
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let page = self.page();
        if align > page {
            return None;
        }
        let layout = Layout::from_size_align(size, page).ok()?;
        (&self.heap).allocate(layout).ok().map(NonNull::cast)
    }

    /// A run that reads as zero: the heap writes zeroes only over its pages that are not
    /// already zero (fresh from the OS or scavenged), so a huge zeroed run stays untouched.
    fn map_zeroed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let page = self.page();
        if align > page {
            return None;
        }
        let layout = Layout::from_size_align(size, page).ok()?;
        (&self.heap).allocate_zeroed(layout).ok().map(NonNull::cast)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller gives back a run `map` returned, with its size: the heap block
        // allocated with this layout.
        unsafe { (&self.heap).deallocate(ptr, Layout::from_size_align_unchecked(size, self.page())) }
    }
}
