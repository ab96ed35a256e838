//! What every fuzz target runs: bytes decoded (with `arbitrary`) into the same [`Op`] sequence
//! the model-based proptest uses, applied through the shadow model with every check on, and
//! everything freed at the end so the fuzzer's leak and RSS checks stay meaningful. Regression
//! inputs under `fuzz/regressions/` replay through the same functions in plain `cargo test`.

use crate::{Borrowed, Heap, Hooks, Machine, Op, SharedSpans};
use arbitrary::{Arbitrary, Unstructured};

/// Operations per input, so one input cannot run for minutes.
pub const MAX_OPS: usize = 4096;

/// Decodes a fuzz input into operations (any byte string decodes to something).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut ops = Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)).unwrap_or_default();
    ops.truncate(MAX_OPS);
    ops
}

/// Runs one input against `heap`; panics (a finding) when the allocator breaks a property. With
/// `hooks`, the allocator's heap validator runs after the operations and its ownership test
/// before every block is written (the fuzz targets' `validate` feature passes them).
pub fn run<A: Heap>(heap: A, hooks: Hooks<A>, reset: Option<fn(&mut A)>, data: &[u8]) {
    // Not strict: fuzz heaps have a memory budget and may refuse large requests.
    let mut m = Machine::new(heap, false).with_reset(reset).with_hooks(hooks);
    for (i, op) in decode(data).into_iter().enumerate() {
        if let Err(f) = m.apply(op) {
            panic!("operation {i} ({op:?}): {f}");
        }
    }
    if let Err(f) = m.finish() {
        panic!("freeing what was left: {f}");
    }
}

/// Runs one input on two threads sharing `heap`: the operations are dealt out alternately, and
/// each thread drives its own model over the shared allocator, every block checked against the
/// other thread's live blocks too.
pub fn run_threads<A: Heap + Sync>(heap: &A, data: &[u8]) {
    let ops = decode(data);
    let (even, odd): (Vec<_>, Vec<_>) = ops.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let shared = SharedSpans::new();
    std::thread::scope(|s| {
        for half in [even, odd] {
            let shared = shared.clone();
            s.spawn(move || {
                let mut m = Machine::new(Borrowed(heap), false).sharing(&shared);
                for (i, op) in half {
                    // Reset would free the other thread's blocks too: free this thread's instead.
                    let op = if *op == Op::Reset { Op::Free { slot: 0 } } else { *op };
                    if let Err(f) = m.apply(op) {
                        panic!("operation {i} ({op:?}): {f}");
                    }
                }
                if let Err(f) = m.finish() {
                    panic!("freeing what was left: {f}");
                }
            });
        }
    });
}

/// Replays every file under `dir` (recursively one level: `dir/*`) through `replay`, returning
/// how many inputs ran. Used by the allocator crates to replay `fuzz/regressions/<target>` and
/// `fuzz/seeds/<target>`.
pub fn replay_dir(dir: &std::path::Path, mut replay: impl FnMut(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    paths.sort();
    for p in &paths {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        replay(&data);
    }
    paths.len()
}

/// Replays the committed inputs of fuzz target `target` (`fuzz/seeds/<target>` and
/// `fuzz/regressions/<target>` in this workspace), returning how many ran.
pub fn replay_committed(target: &str, mut replay: impl FnMut(&[u8])) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    ["seeds", "regressions"].iter().map(|d| replay_dir(&root.join(d).join(target), &mut replay)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_decode_and_long_inputs_are_capped() {
        assert!(decode(&[]).is_empty());
        let long = vec![0x5au8; 1 << 20];
        assert!(decode(&long).len() <= MAX_OPS);
        assert!(!decode(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).is_empty());
    }
}
