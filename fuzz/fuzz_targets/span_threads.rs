//! alloc-span's `GlobalSpan` (spin lock) driven by two threads at once; every block is checked
//! against the other thread's live blocks; live bytes must return to zero and the heap validate.
#![no_main]

use alloc_core::layer::Validate;
use alloc_core::{Abort, Counting, Limited, MmapSource};
use alloc_span::{GlobalSpan, SpanConfig, SpanHeap};
use libfuzzer_sys::fuzz_target;

const CONFIG: SpanConfig = SpanConfig { retain: 1 << 20, huge: 8 << 20, huge_pages: false, ..SpanConfig::DEFAULT };

fuzz_target!(|data: &[u8]| {
    let heap: GlobalSpan<_, Abort, Counting> =
        GlobalSpan::new(SpanHeap::with_config(Limited::new(MmapSource::new(), 256 << 20), CONFIG));
    conformance::fuzz::run_threads(&heap, data);
    assert_eq!(heap.lock().counters().get().bytes_live, 0, "live bytes after every block was freed");
    assert_eq!(heap.validate(), Ok(()));
});
