//! alloc-span's `Span` under the conformance operation machine. With the `validate` feature the
//! heap validator runs after operations and its ownership test before writes. A small retained
//! limit makes the scavenger run often.
#![no_main]

use alloc_core::{Abort, Limited, MmapSource, NoStats};
use alloc_span::{Span, SpanConfig};
use conformance::Hooks;
use libfuzzer_sys::fuzz_target;

type Heap = Span<Limited<MmapSource>, Abort, NoStats>;

const CONFIG: SpanConfig = SpanConfig { retain: 1 << 20, huge: 8 << 20, huge_pages: false, ..SpanConfig::DEFAULT };

fuzz_target!(|data: &[u8]| {
    let heap: Heap = Span::with_config(Limited::new(MmapSource::new(), 256 << 20), CONFIG);
    let hooks = if cfg!(feature = "validate") {
        Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) }
    } else {
        Hooks::default()
    };
    conformance::fuzz::run(heap, hooks, None, data);
});
