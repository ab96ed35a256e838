//! A thread's heap goes back to its pool when the thread exits, through a pthread key's
//! destructor, for every thread and not only the one that created the key: here the process
//! holds a key of its own before the pool makes its own, so the pool's key is not the first one
//! (the pool stores it off by one, and a slip in decoding it would arm another key). Alone in
//! its test binary: the pool's key is made once per process.
#![cfg(all(unix, not(loom), not(miri)))]

use alloc_core::{Layout, SharedLayer};
use alloc_pool_lockfree::Pool;

static POOL: Pool = Pool::new();

#[test]
fn every_exited_threads_heap_goes_back_when_the_pools_key_is_not_the_first() {
    let mut other: libc::pthread_key_t = 0;
    // SAFETY: a fresh key with no destructor; `other` is a valid out-parameter.
    assert_eq!(unsafe { libc::pthread_key_create(&mut other, None) }, 0);
    let l = Layout::from_size_align(64, 8).unwrap();
    for round in 1..=3 {
        // Spawned and joined (not scoped): `join` returns after the thread's key destructors ran.
        std::thread::spawn(move || {
            let p = POOL.allocate(l).unwrap();
            // SAFETY: a live block with its layout.
            unsafe { POOL.deallocate(p.cast(), l) };
        })
        .join()
        .unwrap();
        let s = POOL.stats();
        assert!(s.heaps >= 1 && s.free_heaps == s.heaps, "round {round}: a heap stayed with its exited thread: {s:?}");
    }
    // SAFETY: the key made above, never set.
    assert_eq!(unsafe { libc::pthread_key_delete(other) }, 0);
}
