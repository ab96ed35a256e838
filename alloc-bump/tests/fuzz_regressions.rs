//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run, with the heap
//! validator on.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::layer::Validate;
use alloc_core::{Counting, Limited, MmapSource};
use conformance::{fuzz, Hooks};

type Heap = Bump<Limited<MmapSource>, Counting>;

#[test]
fn bump_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("bump", |data| {
        let heap: Heap = Bump::with_source(Limited::new(MmapSource::new(), 256 << 20));
        let hooks = Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) };
        fuzz::run(heap, hooks, Some(|b: &mut Heap| b.reset()), data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn bump_threads_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("bump_threads", |data| {
        let heap: GlobalBump<_, Counting> =
            GlobalBump::new(BumpRegion::new(Limited::new(MmapSource::new(), 256 << 20)));
        fuzz::run_threads(&heap, data);
        assert_eq!(heap.lock().counters().get().bytes_live, 0);
        assert_eq!(heap.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
