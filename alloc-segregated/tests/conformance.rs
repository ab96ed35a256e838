//! alloc-segregated runs the whole conformance suite, single-threaded and behind the lock.

use alloc_core::{Abort, Counting, Limited, MmapSource};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};
use conformance::{SharedSubject, Subject};

type Source = Limited<MmapSource>;

struct LocalSegregated;

impl Subject for LocalSegregated {
    type Alloc = Segregated<Source>;
    fn new() -> Self::Alloc {
        Segregated::with_source(Limited::new(MmapSource::new(), usize::MAX))
    }
    fn with_budget(budget: usize) -> Self::Alloc {
        Segregated::with_source(Limited::new(MmapSource::new(), budget))
    }
}

struct LockedSegregated;

impl Subject for LockedSegregated {
    type Alloc = GlobalSegregated<Source, Abort, Counting>;
    fn new() -> Self::Alloc {
        GlobalSegregated::new(SegregatedHeap::new(Limited::new(MmapSource::new(), usize::MAX)))
    }
    fn with_budget(budget: usize) -> Self::Alloc {
        GlobalSegregated::new(SegregatedHeap::new(Limited::new(MmapSource::new(), budget)))
    }
}

impl SharedSubject for LockedSegregated {
    fn live_bytes(heap: &Self::Alloc) -> usize {
        heap.lock().counters().get().bytes_live
    }
}

conformance::suite!(segregated: LocalSegregated);
conformance::suite!(global_segregated: LockedSegregated, sync);
