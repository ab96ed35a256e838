//! alloc-bump runs the whole conformance suite, single-threaded and behind the lock.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::layer::{Owns, Reset, Validate};
use alloc_core::{Corruption, Counting, Limited, MmapSource, Stats};
use conformance::{IntrospectSubject, Meter, ResetSubject, SharedSubject, StatsSubject, Subject};
use core::alloc::Layout;
use core::ptr::NonNull;

type Source = Limited<MmapSource>;

fn source(budget: usize, meter: &'static Meter) -> Source {
    Limited::new(MmapSource::new(), budget).metered(meter)
}

struct LocalBump;

impl Subject for LocalBump {
    type Alloc = Bump<Source, Counting>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Bump::with_source(source(budget, meter))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.validate())
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl ResetSubject for LocalBump {
    fn reset(heap: &mut Self::Alloc) {
        heap.reset();
    }
}

impl StatsSubject for LocalBump {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.stats()
    }
}

impl IntrospectSubject for LocalBump {
    fn usable_size(_heap: &Self::Alloc, _ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        Some(layout.size())
    }
}

struct LockedBump;

impl Subject for LockedBump {
    type Alloc = GlobalBump<Source, Counting>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        GlobalBump::new(BumpRegion::new(source(budget, meter)))
    }
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        Some(heap.validate())
    }
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl ResetSubject for LockedBump {
    fn reset(heap: &mut Self::Alloc) {
        heap.get_mut().reset();
    }
}

impl SharedSubject for LockedBump {
    fn live_bytes(heap: &Self::Alloc) -> usize {
        heap.lock().counters().get().bytes_live
    }
}

impl StatsSubject for LockedBump {
    fn stats(heap: &Self::Alloc) -> Stats {
        heap.lock().counters().get()
    }
}

// A bump region reuses only the newest block's bytes, so steady churn is not `bounded`.
conformance::suite!(bump: LocalBump, reset, stats, introspect);
conformance::suite!(global_bump: LockedBump, reset, sync, global, stats);
