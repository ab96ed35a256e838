//! The fuzz targets' committed seeds and minimised findings (`fuzz/seeds/`, `fuzz/regressions/`)
//! replayed in a plain `cargo test`, through the same code the fuzz targets run, with the heap
//! validator on.

use alloc_core::layer::Validate;
use alloc_core::{Abort, Counting, Limited, MmapSource, NoStats};
use alloc_span::{GlobalSpan, Span, SpanConfig, SpanHeap};
use conformance::{fuzz, Hooks};

type Heap = Span<Limited<MmapSource>, Abort, NoStats>;

const CONFIG: SpanConfig = SpanConfig { retain: 1 << 20, huge: 8 << 20, huge_pages: false, ..SpanConfig::DEFAULT };

#[test]
fn span_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("span", |data| {
        let heap: Heap = Span::with_config(Limited::new(MmapSource::new(), 256 << 20), CONFIG);
        let hooks = Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) };
        fuzz::run(heap, hooks, None, data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}

#[test]
fn span_threads_fuzz_inputs_replay() {
    let n = fuzz::replay_committed("span_threads", |data| {
        let heap: GlobalSpan<_, Abort, Counting> =
            GlobalSpan::new(SpanHeap::with_config(Limited::new(MmapSource::new(), 256 << 20), CONFIG));
        fuzz::run_threads(&heap, data);
        assert_eq!(heap.lock().counters().get().bytes_live, 0);
        assert_eq!(heap.validate(), Ok(()));
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
