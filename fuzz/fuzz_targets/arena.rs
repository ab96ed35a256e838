//! alloc-arena's `Arena` (over a pool of its own with a 16 MiB quarantine) under the
//! conformance operation machine, with reset. With the `validate` feature the arena's validator
//! runs after operations and its ownership test before writes.
#![no_main]

use alloc_arena::{Arena, ChunkPool, PoolConfig};
use alloc_core::{Counting, Limited, MmapSource};
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = Arena<ChunkPool<Limited<MmapSource>>, Counting>;

fuzz_target!(|data: &[u8]| {
    let config = PoolConfig { quarantine: 16 << 20, ..PoolConfig::DEFAULT };
    let heap: Heap =
        Arena::with_stats_policy(ChunkPool::with_config(Limited::new(MmapSource::new(), 256 << 20), config));
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, Some(|a: &mut Heap| a.reset()), data);
});
