//! The pool runs the whole conformance suite: shared by threads, through `GlobalAlloc` too, and
//! again with guard pages (`Pool::with_guarded_source`, what the `hardened` preset uses).
#![cfg(not(loom))]

use alloc_core::{Abort, Limited, MmapSource};
use alloc_pool_lockfree::Pool;
use conformance::{Meter, SharedSubject, Subject};
use core::alloc::Layout;

type Heap = Pool<Limited<MmapSource>, Abort>;

struct SharedPool;

impl Subject for SharedPool {
    type Alloc = Heap;
    /// The span heap's first arena (16 MiB), which holds the pool's state and first segment.
    const MIN_BUDGET: usize = 32 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Heap {
        Pool::with_source(Limited::new(MmapSource::new(), budget).metered(meter))
    }
}

/// The same pool with its segments' headers and slabs guarded by inaccessible pages.
struct GuardedPool;

impl Subject for GuardedPool {
    type Alloc = Heap;
    const MIN_BUDGET: usize = SharedPool::MIN_BUDGET;
    fn make(budget: usize, meter: &'static Meter) -> Heap {
        Pool::with_guarded_source(Limited::new(MmapSource::new(), budget).metered(meter))
    }
}

impl SharedSubject for GuardedPool {
    fn live_bytes(heap: &Heap) -> usize {
        SharedPool::live_bytes(heap)
    }

    fn settle(heap: &Heap) {
        SharedPool::settle(heap)
    }
}

impl SharedSubject for SharedPool {
    fn live_bytes(heap: &Heap) -> usize {
        heap.live_bytes()
    }

    /// Until every heap record but the calling thread's is back (10 s at most): the joined
    /// threads' pthread-key destructors give their heaps back after `join` returns.
    fn settle(heap: &Heap) {
        use alloc_core::Allocator;
        // The calling thread takes a heap of its own, so "all but one" means all the workers'.
        let l = Layout::new::<u64>();
        if let Ok(b) = heap.allocate(l) {
            // SAFETY: just allocated with this layout.
            unsafe { heap.deallocate(b.cast(), l) };
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let s = heap.stats();
            if s.free_heaps + 1 >= s.heaps {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

conformance::suite!(pool: SharedPool, sync, global, bounded, introspect, trim);
conformance::suite!(guarded: GuardedPool, sync, global, bounded, introspect, trim);
