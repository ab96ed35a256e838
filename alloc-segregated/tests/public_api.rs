//! The safe API the way users call it, small enough for Miri (`.ci/miri` runs this file):
//! collections that grow and shrink, the queries that replaced a closure-taking `inspect`, a heap
//! moved to another thread, and the locked heap shared by two.

use alloc_core::{Count, Counting, DefaultSource, PlainLinks};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};

#[test]
fn collections_grow_and_shrink_and_the_queries_answer() {
    let heap: Segregated<DefaultSource, Count, Counting, PlainLinks> = Segregated::with_source(DefaultSource::new());
    let mut v = allocator_api2::vec::Vec::new_in(&heap);
    for i in 0..500u32 {
        v.push(i);
    }
    v.truncate(5);
    v.shrink_to_fit();
    assert_eq!(v.iter().sum::<u32>(), 10);
    let b = allocator_api2::boxed::Box::new_in([3u8; 100], &heap);
    assert_eq!(b.iter().map(|&x| x as usize).sum::<usize>(), 300);
    #[cfg(feature = "run-list")]
    assert!(heap.owns(core::ptr::NonNull::from(&*b).cast()));
    assert_eq!(heap.stats().blocks_live, 2);
    assert_eq!(heap.validate(), Ok(()));
    assert_eq!((heap.errors_detected(), heap.last_error()), (0, None));
}

#[test]
fn a_heap_moves_to_another_thread() {
    let heap = Segregated::new();
    let kept = allocator_api2::boxed::Box::new_in(5u64, &heap);
    let five = *kept;
    drop(kept);
    let n = std::thread::spawn(move || {
        let mut v = allocator_api2::vec::Vec::new_in(&heap);
        v.extend(0..10u64);
        v.iter().sum::<u64>()
    })
    .join()
    .unwrap();
    assert_eq!(n + five, 50);
}

#[test]
fn the_locked_heap_serves_two_threads() {
    static HEAP: GlobalSegregated = GlobalSegregated::new(SegregatedHeap::new(DefaultSource::new()));
    std::thread::scope(|s| {
        for t in 0..2u64 {
            s.spawn(move || {
                let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
                v.extend((0..20).map(|i| i * t));
                assert_eq!(v.iter().sum::<u64>(), 190 * t);
            });
        }
    });
}

/// What the queries say after a misuse the `Count` policy survives: a block freed twice in a
/// row is counted and named, with its address.
#[test]
fn a_double_free_is_counted_and_named() {
    use allocator_api2::alloc::Allocator;
    let heap: Segregated<DefaultSource, Count, Counting, PlainLinks> = Segregated::with_source(DefaultSource::new());
    let l = core::alloc::Layout::from_size_align(24, 8).unwrap();
    let p = (&heap).allocate(l).unwrap().cast::<u8>();
    // SAFETY: the first free is of a live block; the second is the misuse under test, which the
    // heap detects (the block heads its free list) and, under `Count`, records and ignores.
    unsafe {
        (&heap).deallocate(p, l);
        (&heap).deallocate(p, l);
    }
    assert_eq!(heap.errors_detected(), 1);
    let named = heap.last_error().map(|e| (e.kind, e.addr));
    assert_eq!(named, Some((alloc_core::ErrorKind::DoubleFree, p.as_ptr() as usize)));
    assert_eq!(heap.validate(), Ok(()));
}

/// The front's `validate` is the heap's: a free block's link overwritten (the use after free a
/// plain list cannot stop) is named, and is fine again once put back. Debug names the type.
#[test]
fn validate_and_debug_reach_the_heap() {
    use allocator_api2::alloc::Allocator;
    let heap: Segregated<DefaultSource, Count, Counting, PlainLinks> = Segregated::with_source(DefaultSource::new());
    assert_eq!(format!("{heap:?}"), "Segregated { .. }");
    let l = core::alloc::Layout::from_size_align(64, 8).unwrap();
    let keep = (&heap).allocate(l).unwrap().cast::<u8>();
    let p = (&heap).allocate(l).unwrap().cast::<u8>();
    // SAFETY: `p` is live with `l`; once freed its first word is its free-list link, which this
    // test overwrites (the misuse under test) and puts back before the heap is used again.
    let got = unsafe {
        (&heap).deallocate(p, l);
        let link = p.as_ptr().cast::<usize>();
        let was = link.read();
        link.write(0x1234_5671);
        let got = heap.validate();
        link.write(was);
        got
    };
    assert!(got.is_err(), "a link to an unaligned address outside the heap passed");
    // The trait's `validate` (what generic code and the conformance suite call) is the same.
    // SAFETY: as above: overwritten, asked, put back.
    let got = unsafe {
        let link = p.as_ptr().cast::<usize>();
        let was = link.read();
        link.write(0x1234_5671);
        let got = alloc_core::Validate::validate(&heap);
        link.write(was);
        got
    };
    assert!(got.is_err(), "the trait's validate passed it");
    assert_eq!(heap.validate(), Ok(()));
    // SAFETY: live with `l`.
    unsafe { (&heap).deallocate(keep, l) };
}

/// `Trim` through alloc-core's trait, on the front and on the heap: idle large free blocks
/// (resident after their free) are given back.
#[test]
fn trim_through_the_trait_gives_idle_large_blocks_back() {
    use allocator_api2::alloc::Allocator;
    let mut heap: Segregated<DefaultSource, Count, Counting, PlainLinks> =
        Segregated::with_source(DefaultSource::new());
    let l = core::alloc::Layout::from_size_align(128 << 10, 8).unwrap();
    for round in 0..2 {
        let p = (&heap).allocate(l).unwrap().cast::<u8>();
        // SAFETY: live with `l`, freed once.
        unsafe { (&heap).deallocate(p, l) };
        assert!(heap.heap().idle_bytes() >= 128 << 10, "round {round}");
        if round == 0 {
            alloc_core::Trim::trim(&mut heap);
        } else {
            alloc_core::Trim::trim(heap.heap());
        }
        assert_eq!(heap.heap().idle_bytes(), 0, "round {round}");
    }
    assert_eq!(alloc_core::Validate::validate(&heap), Ok(()));
}
