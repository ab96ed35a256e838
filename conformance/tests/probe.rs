//! `suite!` finds a subject's validator and ownership test through alloc-core's traits: a
//! subject that states neither gets the allocator's own, and one without them gets none.

// The two references are the probe: method lookup tries `&Probe` first (the trait found), then
// `Probe` (missing). Clippy sees only that one is not needed where the trait is missing.
#![allow(clippy::needless_borrow)]

use alloc_core::{Corruption, Owns, Validate};
use conformance::probe::{OwnsFound, OwnsMissing, Probe, ValidateFound, ValidateMissing};
use core::ptr::NonNull;

struct Both;
impl Validate for Both {
    fn validate(&self) -> Result<(), Corruption> {
        Err(Corruption { what: "found through the trait", addr: 7 })
    }
}
// SAFETY: answers for no address; a test type that owns nothing.
unsafe impl Owns for Both {
    fn owns(&self, _: NonNull<u8>) -> bool {
        false
    }
}

struct Neither;

#[test]
fn the_probe_answers_with_the_trait_where_there_is_one_and_none_otherwise() {
    let p = NonNull::<u8>::dangling();
    assert_eq!((&&Probe(&Both)).found_validate(), Some(Err(Corruption { what: "found through the trait", addr: 7 })));
    assert_eq!((&&Probe(&Both)).found_owns(p), Some(false));
    assert_eq!((&&Probe(&Neither)).found_validate(), None);
    assert_eq!((&&Probe(&Neither)).found_owns(p), None);
}

/// A subject over a counting allocator (`Counted<Pages>` behind `Locked`: `Statistics`), one
/// that states its own counters, and one over an allocator that counts nothing.
mod subjects {
    use alloc_core::compose::Counted;
    use alloc_core::{Counting, Limited, Locked, MmapSource, Stats};
    use conformance::layers::Pages;
    use conformance::{Meter, StatsSubject, Subject};

    pub struct Counts;
    impl Subject for Counts {
        type Alloc = Locked<Counted<Pages<false>, Counting>>;
        fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
            Locked::new(Counted::new(Pages::new(Limited::new(MmapSource::new(), budget).metered(meter))))
        }
    }

    pub struct SaysItself;
    impl Subject for SaysItself {
        type Alloc = Locked<Counted<Pages<false>, Counting>>;
        fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
            Counts::make(budget, meter)
        }
    }
    impl StatsSubject for SaysItself {
        fn stats(_: &Self::Alloc) -> Stats {
            Stats { allocations: 42, ..Stats::default() }
        }
    }

    pub struct Silent;
    impl Subject for Silent {
        type Alloc = Locked<Pages<false>>;
        fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
            Locked::new(Pages::new(Limited::new(MmapSource::new(), budget).metered(meter)))
        }
    }
}

#[test]
fn counters_come_from_the_subject_first_then_the_allocator_then_nowhere() {
    use conformance::probe::{LiveFromAlloc, LiveMissing, Of, StatsFromAlloc, StatsFromSubject, StatsMissing};
    use conformance::Subject;
    use subjects::{Counts, SaysItself, Silent};

    let heap = Counts::new();
    let p = conformance::Heap::allocate(&heap, core::alloc::Layout::new::<[u8; 100]>()).unwrap();
    let found = (&&&Of::<Counts>::NEW).found_stats(&heap).expect("Statistics through Locked and Counted");
    assert_eq!((found.bytes_live, found.blocks_live), (100, 1));
    assert_eq!((&&&Of::<Counts>::NEW).found_live(&heap), Some(100));
    // SAFETY: `p` is live with this layout.
    unsafe { conformance::Heap::deallocate(&heap, p.cast(), core::alloc::Layout::new::<[u8; 100]>()) };

    assert_eq!((&&&Of::<SaysItself>::NEW).found_stats(&SaysItself::new()).map(|s| s.allocations), Some(42));
    assert_eq!((&&&Of::<Silent>::NEW).found_stats(&Silent::new()), None);
    assert_eq!((&&&Of::<Silent>::NEW).found_live(&Silent::new()), None);
}
