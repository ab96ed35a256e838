//! alloc-segregated's `Segregated` under the conformance operation machine, with encoded
//! free-list links. With the `validate` feature the heap validator runs after operations and its
//! ownership test before writes.
#![no_main]

use alloc_core::{Abort, Limited, MmapSource, NoStats, SafeLinks};
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = alloc_segregated::Segregated<Limited<MmapSource>, Abort, NoStats, SafeLinks>;

fuzz_target!(|data: &[u8]| {
    let heap: Heap = alloc_segregated::Segregated::with_source(Limited::new(MmapSource::new(), 256 << 20));
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, None, data);
});
