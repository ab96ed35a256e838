//! The safe API the way users call it, small enough for Miri (`.ci/miri` runs this file).

use alloc_bump::Bump;

#[test]
fn values_slices_and_collections() {
    let mut bump = Bump::new();
    let x = bump.alloc(41u64);
    *x += 1;
    assert_eq!(*x, 42);
    let s = bump.alloc_str("hello");
    s.make_ascii_uppercase();
    assert_eq!(s, "HELLO");
    let mut v = allocator_api2::vec::Vec::new_in(&bump);
    for i in 0..300u32 {
        v.push(i);
    }
    v.truncate(3);
    v.shrink_to_fit();
    assert_eq!(v.iter().sum::<u32>(), 3);
    drop(v);
    let sum = bump.scope(|b| (0..20u64).map(|i| *b.alloc(i)).sum::<u64>());
    assert_eq!(sum, 190);
    bump.reset();
    assert_eq!(bump.validate(), Ok(()));
}

#[test]
fn a_bump_moves_to_another_thread() {
    let bump = Bump::new();
    bump.alloc([7u8; 64]);
    let n = std::thread::spawn(move || {
        let v = bump.alloc_slice_copy(&[1u32, 2, 3]);
        v.iter().sum::<u32>()
    })
    .join()
    .unwrap();
    assert_eq!(n, 6);
}
