//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run, with the heap
//! validator on.

use alloc_core::layer::Validate;
use alloc_core::{Abort, Counting, Limited, MmapSource};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};
use conformance::{fuzz, Hooks};

type Heap = Segregated<Limited<MmapSource>>;

#[test]
fn segregated_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("segregated", |data| {
        let hooks = Hooks::<Heap> { validate: Some(|h| h.validate()), owns: None };
        fuzz::run(Segregated::with_source(Limited::new(MmapSource::new(), 256 << 20)), hooks, None, data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn segregated_threads_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("segregated_threads", |data| {
        let heap: GlobalSegregated<_, Abort, Counting> =
            GlobalSegregated::new(SegregatedHeap::new(Limited::new(MmapSource::new(), 256 << 20)));
        fuzz::run_threads(&heap, data);
        assert_eq!(heap.lock().counters().get().bytes_live, 0);
        assert_eq!(heap.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
