//! alloc-span runs the whole conformance suite, single-threaded and behind the lock.

use alloc_core::layer::SizeOf;
use alloc_core::{Abort, Counting, Limited, MmapSource};
use alloc_span::{GlobalSpan, GuardPages, GuardPolicy, NoGuards, Span, SpanConfig, SpanHeap};
use conformance::{IntrospectSubject, Meter, Subject};
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
}

/// The span heap with every threshold moved into the suite's reach: blocks from 256 KiB get
/// mappings of their own (the huge path: grown and shrunk by the realloc properties), arenas
/// start at one page run of 1 MiB and stay small (many arenas, holes larger than the exact lists
/// in the tree), at most 64 KiB of free memory stays resident and nothing waits (the scavenger
/// runs while spans of the same arena are live), and trims scavenge everything between steps.
/// `G` is the guard policy: without guard pages, and with one after every block (every property
/// writes whole blocks, so a guard page placed inside a block faults the run).
struct Tight<G>(core::marker::PhantomData<G>);

type TightSpan = Tight<NoGuards>;
type GuardedSpan = Tight<GuardPages>;

const TIGHT: SpanConfig = SpanConfig {
    retain: 64 << 10,
    delay_ns: 0,
    huge: 256 << 10,
    first_arena: 1 << 20,
    max_arena: 2 << 20,
    ..SpanConfig::DEFAULT
};

impl<G: GuardPolicy<Source> + 'static> Subject for Tight<G> {
    type Alloc = Span<Source, Abort, Counting, G>;
    const TYPICAL_SIZE: usize = 64 << 10;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Span::with_config(source(budget, meter), TIGHT)
    }
}

impl IntrospectSubject for TightSpan {
    unsafe fn usable_size(heap: &Self::Alloc, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        // SAFETY: the caller's guarantee: a live block, a layout that fits it.
        Some(unsafe { heap.usable_size(ptr, layout) })
    }
    unsafe fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
        Some(heap.size_of(ptr))
    }
}

impl IntrospectSubject for LocalSpan {
    unsafe fn usable_size(heap: &Self::Alloc, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        // SAFETY: the caller's guarantee: a live block, a layout that fits it.
        Some(unsafe { heap.usable_size(ptr, layout) })
    }
    unsafe fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
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
}

impl IntrospectSubject for LockedSpan {
    unsafe fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
        // SAFETY: the caller's guarantee: the heap owns `ptr`.
        Some(unsafe { heap.size_of(ptr) })
    }
}

conformance::suite!(span: LocalSpan, bounded, stats, introspect, trim);
conformance::suite!(guarded_span: GuardedSpan, bounded, trim);
conformance::suite!(tight_span: TightSpan, bounded, stats, introspect, trim);
conformance::suite!(global_span: LockedSpan, sync, global, bounded, stats, introspect);
