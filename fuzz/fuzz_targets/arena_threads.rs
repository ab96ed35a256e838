//! alloc-arena's `SharedArena` driven by two threads at once; live bytes must return to zero.
#![no_main]

use alloc_arena::{ChunkPool, PoolConfig, SharedArena};
use alloc_core::{Counting, Limited, MmapSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = PoolConfig { quarantine: 16 << 20, ..PoolConfig::DEFAULT };
    let heap: SharedArena<_, Counting> =
        SharedArena::with_stats_policy(ChunkPool::with_config(Limited::new(MmapSource::new(), 256 << 20), config));
    conformance::fuzz::run_threads(&heap, data);
    assert_eq!(heap.counters().bytes_live, 0, "live bytes after every block was freed");
});
