//! alloc-segregated runs the whole conformance suite: single-threaded, with encoded free-list
//! links, and behind the lock.

use alloc_core::layer::{Owns, Validate};
use alloc_core::{Abort, Corruption, Counting, Limited, MmapSource, NoStats, PlainLinks, SafeLinks, Stats};
use alloc_segregated::class::{class_of, class_size};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};
use conformance::{IntrospectSubject, Meter, SharedSubject, StatsSubject, Subject};
use core::alloc::Layout;
use core::ptr::NonNull;

type Source = Limited<MmapSource>;

fn source(budget: usize, meter: &'static Meter) -> Source {
    Limited::new(MmapSource::new(), budget).metered(meter)
}

struct LocalSegregated;

impl Subject for LocalSegregated {
    type Alloc = Segregated<Source, Abort, Counting>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Segregated::with_source(source(budget, meter))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.inspect(|h| h.validate()))
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.inspect(|h| h.owns(ptr)))
    }
}

impl StatsSubject for LocalSegregated {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.stats()
    }
}

impl IntrospectSubject for LocalSegregated {
    fn usable_size(_heap: &Self::Alloc, _ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        Some(class_size(class_of(layout.size(), layout.align())))
    }
}

/// The same heap with encoded, checked free-list links.
struct SafeLinked;

impl Subject for SafeLinked {
    type Alloc = Segregated<Source, Abort, NoStats, SafeLinks>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Segregated::with_source(source(budget, meter))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.inspect(|h| h.validate()))
    }
}

struct LockedSegregated;

impl Subject for LockedSegregated {
    type Alloc = GlobalSegregated<Source, Abort, Counting, PlainLinks>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        GlobalSegregated::new(SegregatedHeap::new(source(budget, meter)))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.validate())
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl SharedSubject for LockedSegregated {
    fn live_bytes(heap: &Self::Alloc) -> usize {
        heap.lock().counters().get().bytes_live
    }
}

impl StatsSubject for LockedSegregated {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.lock().counters().get()
    }
}

conformance::suite!(segregated: LocalSegregated, bounded, stats, introspect);
conformance::suite!(segregated_safe_links: SafeLinked, bounded);
conformance::suite!(global_segregated: LockedSegregated, sync, global, bounded, stats);
