//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run, with the pool's
//! validator on.
#![cfg(not(loom))]

use alloc_core::layer::{Owns, Validate};
use alloc_core::{Abort, Limited, MmapSource};
use alloc_pool_lockfree::Pool;
use conformance::{fuzz, Hooks};

type Heap = Pool<Limited<MmapSource>, Abort>;

#[test]
fn pool_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("pool", |data| {
        let heap: Heap = Pool::with_source(Limited::new(MmapSource::new(), 256 << 20));
        let hooks = Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) };
        fuzz::run(heap, hooks, None, data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn pool_threads_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("pool_threads", |data| {
        let pool: Heap = Pool::with_source(Limited::new(MmapSource::new(), 256 << 20));
        fuzz::run_threads(&pool, data);
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
