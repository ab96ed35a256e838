#![doc = include_str!("../README.md")]
#![no_std]

mod arena;
mod free;
mod heap;
mod index;
mod meta;
mod source;
mod span;

pub use heap::{GuardPages, GuardPolicy, NoGuards, SpanConfig, SpanHeap, SpanStats};
pub use source::SpanSource;

use alloc_core::front::Local;
use alloc_core::layer::{SizeOf, UsableSize};
use alloc_core::source::{Decommit, PageSource};
use alloc_core::stats::{Counting, NoStats, Stats, StatsPolicy};
use alloc_core::{Abort, Corruption, DefaultSource, ErrorPolicy, Layout, Locked, SpinLock};
use core::ptr::NonNull;

/// The span heap for one thread; `&Span` is an `allocator_api2::alloc::Allocator`. `!Sync` by
/// construction: see [`GlobalSpan`] for threads.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>(_: &T) {}
/// shared_between_threads(&alloc_span::Span::new());
/// ```
pub struct Span<
    S: PageSource + Decommit = DefaultSource,
    E: ErrorPolicy = Abort,
    C: StatsPolicy = NoStats,
    G: GuardPolicy<S> = NoGuards,
> {
    heap: Local<SpanHeap<S, E, C, G>>,
}

impl Span {
    /// An empty heap over the OS page source with the default configuration; maps nothing until
    /// the first allocation.
    pub const fn new() -> Self {
        Span::with_source(DefaultSource::new())
    }
}

impl Default for Span {
    fn default() -> Self {
        Span::new()
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> Span<S, E, C, G> {
    /// An empty heap over `source`.
    pub const fn with_source(source: S) -> Self {
        Span { heap: Local::new(SpanHeap::new(source)) }
    }

    /// An empty heap over `source` with `config`.
    pub const fn with_config(source: S, config: SpanConfig) -> Self {
        Span { heap: Local::new(SpanHeap::with_config(source, config)) }
    }

    /// The heap layer, through exclusive access (scavenging, tuning).
    pub fn heap(&mut self) -> &mut SpanHeap<S, E, C, G> {
        self.heap.get_mut()
    }

    /// The page size of the heap's source.
    pub fn page_size(&self) -> usize {
        // SAFETY: the closure only reads the source's page size (a `PageSource` never calls back
        // into an allocator built on it).
        unsafe { self.heap.inspect(|h| h.source().page_size()) }
    }

    /// In use, idle, released and mapped bytes.
    pub fn span_stats(&self) -> SpanStats {
        // SAFETY: `span_stats` only reads the heap; it cannot reach this front.
        unsafe { self.heap.inspect(SpanHeap::span_stats) }
    }

    /// How many misuses the error policy recorded and survived (with [`alloc_core::Count`]).
    pub fn errors_detected(&self) -> usize {
        // SAFETY: the closure only reads the error policy; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.errors().detected()) }
    }

    /// The most recent misuse the error policy recorded (with [`alloc_core::Count`]).
    pub fn last_error(&self) -> Option<alloc_core::HeapError> {
        // SAFETY: the closure only reads the error policy; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.errors().last()) }
    }

    /// Returns every free page to the OS (and unmaps arenas left empty); the bytes given back.
    pub fn trim(&mut self) -> usize {
        self.heap.get_mut().trim()
    }

    /// The old name of [`Span::trim`].
    #[deprecated(since = "0.1.0", note = "renamed to `trim`, the workspace's one verb for giving memory back")]
    pub fn scavenge(&mut self) -> usize {
        self.trim()
    }

    /// Walks the heap and checks every invariant.
    pub fn validate(&self) -> Result<(), Corruption> {
        self.heap.validate()
    }

    /// True when `ptr` lies in the heap's pages.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.heap.owns(ptr)
    }

    /// The layout the block at `ptr` can be freed with, or `None` when `ptr` is not the start of
    /// a block in use (what C's `free(ptr)` needs).
    pub fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: the closure only reads the heap's metadata, and `SpanHeap::size_of` takes any
        // address: it finds `ptr` in its own index before reading near it.
        unsafe { self.heap.inspect(|h| h.size_of(ptr)) }
    }

    /// Usable bytes of the live block at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a block currently allocated from this heap, and `layout` fits it.
    pub unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees; the closure only reads.
        unsafe { self.heap.inspect(|h| h.usable_size(ptr, layout)) }
    }
}

/// There is no closure-taking `inspect`: a closure given `&SpanHeap` could allocate through the
/// same `Span` and make a `&mut` to the heap while the `&` is live. Queries are methods that
/// return values; everything else goes through [`Span::heap`] (`&mut`).
///
/// ```compile_fail,E0599
/// let heap = alloc_span::Span::new();
/// heap.inspect(|_| allocator_api2::boxed::Box::new_in(1u8, &heap));
/// ```
impl<S: PageSource + Decommit, E: ErrorPolicy, G: GuardPolicy<S>> Span<S, E, Counting, G> {
    /// Live bytes and blocks, peak, mapped bytes.
    pub fn stats(&self) -> Stats {
        // SAFETY: the closure only reads the counters; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.counters().get()) }
    }
}

alloc_core::forward_allocator!([S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>] Span<S, E, C, G> => heap);

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> core::fmt::Debug
    for Span<S, E, C, G>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Span").field("stats", &self.span_stats()).finish()
    }
}

/// The span heap behind a spin lock: `Sync`, a `#[global_allocator]`, and the lower layer the
/// pool, the arena and the malloc presets hand large blocks to.
///
/// ```
/// use alloc_span::{GlobalSpan, SpanHeap};
/// static HEAP: GlobalSpan = GlobalSpan::new(SpanHeap::new(alloc_core::MmapSource::new()));
/// // #[global_allocator] would make it the program's allocator; here it is used directly.
/// let mut v = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(1 << 20, &HEAP);
/// v.resize(1 << 20, 7);
/// assert_eq!(HEAP.lock().span_stats().live_spans, 1);
/// ```
pub type GlobalSpan<S = DefaultSource, E = Abort, C = NoStats, G = NoGuards> = Locked<SpanHeap<S, E, C, G>, SpinLock>;

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> alloc_core::Validate
    for Span<S, E, C, G>
{
    /// [`Span::validate`].
    fn validate(&self) -> Result<(), alloc_core::Corruption> {
        Span::validate(self)
    }
}

// SAFETY: [`Span::owns`]: true exactly for addresses in the memory the front's layer manages
// (its chunks, runs or pages), so a caller that routes frees by it frees into the right heap.
unsafe impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> alloc_core::Owns
    for Span<S, E, C, G>
{
    fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        Span::owns(self, ptr)
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, G: GuardPolicy<S>> alloc_core::Statistics for Span<S, E, Counting, G> {
    /// [`Span::stats`].
    fn stats(&self) -> Stats {
        Span::stats(self)
    }
}

impl<S: PageSource + Decommit, E: ErrorPolicy, C: StatsPolicy, G: GuardPolicy<S>> alloc_core::Trim
    for Span<S, E, C, G>
{
    /// [`Span::trim`].
    fn trim(&mut self) {
        Span::trim(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc_core::Allocator;

    /// `Validate` through alloc-core's trait is the heap's validator: a miscounted heap is
    /// named through it.
    #[test]
    fn validate_through_the_trait_is_the_heaps() {
        let mut span: Span = Span::new();
        let l = Layout::from_size_align(3 * 4096, 16).unwrap();
        let p = (&span).allocate(l).unwrap().cast::<u8>();
        assert_eq!(alloc_core::Validate::validate(&span), Ok(()));
        *span.heap.get_mut().live_spans_mut() += 1;
        let got = alloc_core::Validate::validate(&span).map_err(|c| c.what);
        *span.heap.get_mut().live_spans_mut() -= 1;
        assert_eq!(got, Err("page counters disagree with the arenas"));
        // SAFETY: a live block with its layout.
        unsafe { (&span).deallocate(p, l) };
        assert_eq!(alloc_core::Validate::validate(&span), Ok(()));
    }

    /// The old name `scavenge` is `trim`: free dirty pages go back, and the bytes are counted.
    #[test]
    #[allow(deprecated)]
    fn scavenge_is_trim_by_its_old_name() {
        let mut span: Span = Span::new();
        let l = Layout::from_size_align(8 * 4096, 16).unwrap();
        let p = (&span).allocate(l).unwrap().cast::<u8>();
        // SAFETY: the block's bytes are ours: made dirty, then freed.
        unsafe {
            p.as_ptr().write_bytes(1, l.size());
            (&span).deallocate(p, l);
        }
        assert!(span.scavenge() >= l.size());
        assert_eq!(span.scavenge(), 0, "nothing left to give back");
    }
}
