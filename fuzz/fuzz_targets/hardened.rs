//! `alloc_core::compose::Header` (a size header with a checked word and a tail canary) over
//! alloc-segregated with encoded free-list links, under the conformance operation machine: the
//! composition alloc-malloc's `hardened` preset was until it moved onto a pool of its own (the
//! preset itself is driven by the same machine in alloc-malloc's tests,
//! `the_operation_machine_finds_nothing_wrong_with_the_preset`: a program that links
//! alloc-malloc gets its `malloc` symbols as its own, libFuzzer included). The machine never misuses the heap, so any
//! report (double free, canary, wrong layout) aborts as a finding. With the `validate` feature
//! the segregated heap's validator runs after operations.
#![no_main]

use alloc_core::compose::Header;
use alloc_core::front::Local;
use alloc_core::{Abort, Limited, MmapSource, NoStats, SafeLinks};
use alloc_segregated::SegregatedHeap;
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = Local<Header<SegregatedHeap<Limited<MmapSource>, Abort, NoStats, SafeLinks>, Abort, true>>;

fuzz_target!(|data: &[u8]| {
    let heap: Heap = Local::new(Header::new(SegregatedHeap::new(Limited::new(MmapSource::new(), 256 << 20))));
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> {
            validate: Some(|h| h.validate()),
            owns: Some(|h, p| h.owns(p)),
        }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, None, data);
});
