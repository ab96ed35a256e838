//! alloc-pool-lockfree's `Pool` driven by two threads at once: each frees blocks the other
//! allocated (remote frees through the lock-free lists); every block is checked against the
//! other thread's live blocks; live bytes must return to zero and the pool validate.
#![no_main]

use alloc_core::layer::Validate;
use alloc_core::{Abort, Limited, MmapSource};
use alloc_pool_lockfree::Pool;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pool: Pool<_, Abort> = Pool::with_source(Limited::new(MmapSource::new(), 256 << 20));
    conformance::fuzz::run_threads(&pool, data);
    assert_eq!(pool.live_bytes(), 0, "live bytes after every block was freed");
    assert_eq!(pool.validate(), Ok(()));
});
