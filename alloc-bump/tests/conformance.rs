//! alloc-bump runs the whole conformance suite, single-threaded and behind the lock.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::layer::Reset;
use alloc_core::{Limited, MmapSource};
use conformance::{ResetSubject, SharedSubject, Subject};

type Source = Limited<MmapSource>;
type Counted = alloc_core::Counting;

struct LocalBump;

impl Subject for LocalBump {
    type Alloc = Bump<Source>;
    fn new() -> Self::Alloc {
        Bump::with_source(Limited::new(MmapSource::new(), usize::MAX))
    }
    fn with_budget(budget: usize) -> Self::Alloc {
        Bump::with_source(Limited::new(MmapSource::new(), budget))
    }
}

impl ResetSubject for LocalBump {
    fn reset(heap: &mut Self::Alloc) {
        heap.reset();
    }
}

struct LockedBump;

impl Subject for LockedBump {
    type Alloc = GlobalBump<Source, Counted>;
    fn new() -> Self::Alloc {
        GlobalBump::new(BumpRegion::new(Limited::new(MmapSource::new(), usize::MAX)))
    }
    fn with_budget(budget: usize) -> Self::Alloc {
        GlobalBump::new(BumpRegion::new(Limited::new(MmapSource::new(), budget)))
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

conformance::suite!(bump: LocalBump, reset);
conformance::suite!(global_bump: LockedBump, reset, sync);
