//! alloc-pool-lockfree's `Pool` under the conformance operation machine, from one thread. With
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
    let heap: Heap = Pool::with_source(Limited::new(MmapSource::new(), 256 << 20));
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, None, data);
});
