//! alloc-segregated's `Segregated` under the conformance operation machine.
#![no_main]

use alloc_core::{Limited, MmapSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let heap = alloc_segregated::Segregated::<_>::with_source(Limited::new(MmapSource::new(), 256 << 20));
    conformance::fuzz::run(heap, None, data);
});
