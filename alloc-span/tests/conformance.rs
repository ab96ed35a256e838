//! alloc-span runs the whole conformance suite, single-threaded and behind the lock.

use alloc_core::layer::{Owns, SizeOf, Validate};
use alloc_core::{Abort, Corruption, Counting, Limited, MmapSource, Stats};
use alloc_span::{GlobalSpan, Span, SpanHeap};
use conformance::{IntrospectSubject, Meter, SharedSubject, StatsSubject, Subject};
use core::alloc::Layout;
use core::ptr::NonNull;

type Source = Limited<MmapSource>;

fn source(budget: usize, meter: &'static Meter) -> Source {
    Limited::new(MmapSource::new(), budget).metered(meter)
}

struct LocalSpan;

impl Subject for LocalSpan {
    type Alloc = Span<Source, Abort, Counting>;
    const TYPICAL_SIZE: usize = 64 << 10;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Span::with_source(source(budget, meter))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.validate())
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl StatsSubject for LocalSpan {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.stats()
    }
}

impl IntrospectSubject for LocalSpan {
    fn usable_size(heap: &Self::Alloc, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        // SAFETY: the suite asks about live blocks with fitting layouts only.
        Some(unsafe { heap.usable_size(ptr, layout) })
    }
    fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
        Some(heap.size_of(ptr))
    }
}

struct LockedSpan;

impl Subject for LockedSpan {
    type Alloc = GlobalSpan<Source, Abort, Counting>;
    const TYPICAL_SIZE: usize = 64 << 10;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        GlobalSpan::new(SpanHeap::new(source(budget, meter)))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.validate())
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl SharedSubject for LockedSpan {
    fn live_bytes(heap: &Self::Alloc) -> usize {
        heap.lock().counters().get().bytes_live
    }
}

impl StatsSubject for LockedSpan {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.lock().counters().get()
    }
}

impl IntrospectSubject for LockedSpan {
    fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
        // SAFETY: the heap reads only its own metadata after finding `ptr` in its index.
        Some(unsafe { heap.size_of(ptr) })
    }
}

conformance::suite!(span: LocalSpan, bounded, stats, introspect);
conformance::suite!(global_span: LockedSpan, sync, global, bounded, stats, introspect);
