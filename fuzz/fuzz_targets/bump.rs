//! alloc-bump's `Bump` under the conformance operation machine, with reset. With the `validate`
//! feature the region's validator runs after operations and its ownership test before writes.
#![no_main]

use alloc_core::{Counting, Limited, MmapSource};
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = alloc_bump::Bump<Limited<MmapSource>, Counting>;

fuzz_target!(|data: &[u8]| {
    let heap: Heap = alloc_bump::Bump::with_source(Limited::new(MmapSource::new(), 256 << 20));
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, Some(|b: &mut Heap| b.reset()), data);
});
