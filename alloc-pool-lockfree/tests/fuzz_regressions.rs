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
        // As in the fuzz target: check only once the workers' thread-local destructors (which
        // run after `join` returns) have given their heaps back; this thread keeps one.
        let l = alloc_core::Layout::new::<u64>();
        let b = alloc_core::Allocator::allocate(&&pool, l).expect("a block for this thread's heap");
        // SAFETY: just allocated with `l`, freed once.
        unsafe { alloc_core::Allocator::deallocate(&&pool, b.cast(), l) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.stats().free_heaps + 1 < pool.stats().heaps && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(pool.live_bytes(), 0);
        assert_eq!(pool.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
