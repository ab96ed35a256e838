//! alloc-segregated's `GlobalSegregated` (spin lock) driven by two threads at once; live bytes
//! must return to zero.
#![no_main]

use alloc_core::{Abort, Counting, Limited, MmapSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let heap: alloc_segregated::GlobalSegregated<_, Abort, Counting> = alloc_segregated::GlobalSegregated::new(
        alloc_segregated::SegregatedHeap::new(Limited::new(MmapSource::new(), 256 << 20)),
    );
    conformance::fuzz::run_threads(&heap, data);
    assert_eq!(heap.lock().counters().get().bytes_live, 0, "live bytes after every block was freed");
});
