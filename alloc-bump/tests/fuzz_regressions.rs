//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::{Counting, Limited, MmapSource};
use conformance::fuzz;
use std::path::Path;

fn replay(target: &str, mut run: impl FnMut(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    ["seeds", "regressions"].iter().map(|d| fuzz::replay_dir(&root.join(d).join(target), &mut run)).sum()
}

#[test]
fn bump_fuzz_inputs_replay() {
    let n = replay("bump", |data| {
        let heap = Bump::<_, Counting>::with_source(Limited::new(MmapSource::new(), 256 << 20));
        fuzz::run(heap, Some(|b: &mut Bump<_, _>| b.reset()), data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn bump_threads_fuzz_inputs_replay() {
    let n = replay("bump_threads", |data| {
        let heap: GlobalBump<_, Counting> =
            GlobalBump::new(BumpRegion::new(Limited::new(MmapSource::new(), 256 << 20)));
        fuzz::run_threads(&heap, data);
        assert_eq!(heap.lock().counters().get().bytes_live, 0);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
