//! The safe API the way users call it, small enough for Miri (`.ci/miri` runs this file):
//! collections that grow and shrink in the pool, and blocks freed by another thread than the
//! one that allocated them (the remote-free path).

use alloc_core::{SizeOf, UsableSize};
use alloc_pool_lockfree::Pool;

#[test]
fn collections_grow_and_shrink_and_sizes_come_back_from_pointers() {
    let pool = Pool::new();
    let mut v = allocator_api2::vec::Vec::new_in(&pool);
    for i in 0..200u32 {
        v.push(i);
    }
    v.truncate(4);
    v.shrink_to_fit();
    assert_eq!(v.iter().sum::<u32>(), 6);
    let p = core::ptr::NonNull::from(&v[0]).cast::<u8>();
    // SAFETY: a live block of the pool (any address may be asked; this one is the pool's).
    let l = unsafe { pool.size_of(p) }.expect("a live block");
    assert_eq!(l.size(), 16);
    // SAFETY: live, and `l` fits it.
    assert!(unsafe { pool.usable_size(p, l) } >= 16);
    assert_eq!(alloc_core::Validate::validate(&pool), Ok(()));
}

#[test]
fn blocks_freed_on_another_thread_come_back() {
    static POOL: Pool = Pool::new();
    for _ in 0..2 {
        let boxes: Vec<_> = (0..20u64).map(|i| allocator_api2::boxed::Box::new_in(i, &POOL)).collect();
        let sum = std::thread::spawn(move || boxes.into_iter().map(|b| *b).sum::<u64>()).join().unwrap();
        assert_eq!(sum, 190);
    }
    let mut v = allocator_api2::vec::Vec::new_in(&POOL);
    v.extend(0..50u64);
    assert_eq!(v.iter().sum::<u64>(), 1225);
}
