//! alloc-bump's `Bump` under the conformance operation machine, with reset.
#![no_main]

use alloc_core::{Limited, MmapSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let heap = alloc_bump::Bump::<_, alloc_core::Counting>::with_source(Limited::new(MmapSource::new(), 256 << 20));
    conformance::fuzz::run(heap, Some(|b: &mut alloc_bump::Bump<_, _>| b.reset()), data);
});
