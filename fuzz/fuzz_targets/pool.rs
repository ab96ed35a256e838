//! alloc-pool-lockfree's `Pool` under the conformance operation machine, from one thread, with
//! and without guard pages (`Pool::with_guarded_source`, by the input's first byte). With
//! the `validate` feature the pool's validator runs after operations and its ownership test
//! before writes. Built with `-s address` and the `asan` feature, freed pool blocks are poisoned,
//! so a use after free inside the pool is reported by AddressSanitizer.
#![no_main]

use alloc_core::layer::{Owns, Validate};
use alloc_core::{Abort, Limited, MmapSource};
use alloc_pool_lockfree::Pool;
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = Pool<Limited<MmapSource>, Abort>;

fuzz_target!(|data: &[u8]| {
    // Inputs whose first byte is odd run a guarded pool (guard pages after every slab that
    // served a class, and around the segment header: slabs hold fewer blocks).
    let source = Limited::new(MmapSource::new(), 256 << 20);
    let heap: Heap = if data.first().is_some_and(|b| b & 1 == 1) {
        Pool::with_guarded_source(source)
    } else {
        Pool::with_source(source)
    };
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, None, data);
});
