//! The safe API the way users call it, small enough for Miri (`.ci/miri` runs this file).

use alloc_core::{Count, Counting, DefaultSource};
use alloc_span::{GlobalSpan, NoGuards, Span, SpanHeap};

#[test]
fn buffers_grow_and_shrink_and_the_queries_answer() {
    let heap: Span<DefaultSource, Count, Counting, NoGuards> = Span::with_source(DefaultSource::new());
    let mut v = allocator_api2::vec::Vec::<u8, _>::new_in(&heap);
    v.resize(3 * heap.page_size(), 9);
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 90);
    let p = core::ptr::NonNull::from(&v[0]);
    assert!(heap.owns(p));
    assert_eq!(heap.size_of(p).map(|l| l.size()), Some(10));
    assert_eq!(heap.stats().blocks_live, 1);
    assert_eq!(heap.validate(), Ok(()));
    assert_eq!((heap.errors_detected(), heap.last_error()), (0, None));
}

#[test]
fn a_heap_moves_to_another_thread_and_the_locked_one_serves_two() {
    let heap = Span::new();
    let n = std::thread::spawn(move || {
        let mut v = allocator_api2::vec::Vec::new_in(&heap);
        v.extend(0..100u32);
        v.iter().sum::<u32>()
    })
    .join()
    .unwrap();
    assert_eq!(n, 4950);
    static HEAP: GlobalSpan = GlobalSpan::new(SpanHeap::new(DefaultSource::new()));
    std::thread::scope(|s| {
        for t in 0..2u32 {
            s.spawn(move || {
                let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
                v.extend((0..100).map(|i| i * t));
                assert_eq!(v.iter().sum::<u32>(), 4950 * t);
            });
        }
    });
}
