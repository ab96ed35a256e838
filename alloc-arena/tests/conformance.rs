//! alloc-arena runs the whole conformance suite: one arena per thread, and the shared arena
//! under the thread stress; free-all (drop) and reset are in the model.

use alloc_arena::{Arena, ChunkPool, PoolConfig, SharedArena};
use alloc_core::{Counting, Limited, MmapSource};
use conformance::{Meter, Subject};

type Pool = ChunkPool<Limited<MmapSource>>;

/// A pool of the arena's own, so dropping the arena gives every page back; a quarantine of
/// 4 MiB (the default 256 MiB would keep the suite's freed runs mapped, by design).
fn pool(budget: usize, meter: &'static Meter) -> Pool {
    let config = PoolConfig { quarantine: 4 << 20, ..PoolConfig::DEFAULT };
    ChunkPool::with_config(Limited::new(MmapSource::new(), budget).metered(meter), config)
}

struct LocalArena;

impl Subject for LocalArena {
    type Alloc = Arena<Pool, Counting>;
    /// The pool's span heap maps arenas of 4 MiB, which hold a few 1 MiB chunks.
    const MIN_BUDGET: usize = 8 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Arena::with_stats_policy(pool(budget, meter))
    }
}

struct Shared;

impl Subject for Shared {
    type Alloc = SharedArena<Pool, Counting>;
    const MIN_BUDGET: usize = 8 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        SharedArena::with_stats_policy(pool(budget, meter))
    }
}

conformance::suite!(arena: LocalArena, reset, stats, introspect, trim);
conformance::suite!(shared_arena: Shared, reset, sync, stats);
