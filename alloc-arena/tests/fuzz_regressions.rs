//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run, with the
//! arena's validator on.

use alloc_arena::{Arena, ChunkPool, PoolConfig, SharedArena};
use alloc_core::{Counting, Limited, MmapSource};
use conformance::{fuzz, Hooks};

type Pool = ChunkPool<Limited<MmapSource>>;
type Heap = Arena<Pool, Counting>;

fn pool() -> Pool {
    let config = PoolConfig { quarantine: 16 << 20, ..PoolConfig::DEFAULT };
    ChunkPool::with_config(Limited::new(MmapSource::new(), 256 << 20), config)
}

#[test]
fn arena_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("arena", |data| {
        let heap: Heap = Arena::with_stats_policy(pool());
        let hooks = Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) };
        fuzz::run(heap, hooks, Some(|a: &mut Heap| a.reset()), data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn arena_threads_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("arena_threads", |data| {
        let heap: SharedArena<Pool, Counting> = SharedArena::with_stats_policy(pool());
        fuzz::run_threads(&heap, data);
        assert_eq!(heap.counters().bytes_live, 0);
        assert_eq!(heap.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
