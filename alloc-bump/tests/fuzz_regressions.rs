//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::{Counting, Limited, MmapSource};
use conformance::fuzz;

#[test]
fn bump_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("bump", |data| {
        let heap = Bump::<_, Counting>::with_source(Limited::new(MmapSource::new(), 256 << 20));
        fuzz::run(heap, Some(|b: &mut Bump<_, _>| b.reset()), data);
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
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
