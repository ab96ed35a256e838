//! What every fuzz target runs: bytes decoded (with `arbitrary`) into the same [`Op`] sequence
//! the model-based proptest uses, applied through the shadow model with every check on, and
//! everything freed at the end so the fuzzer's leak and RSS checks stay meaningful. Regression
//! inputs under `fuzz/regressions/` replay through the same functions in plain `cargo test`.

use crate::{Borrowed, Heap, Hooks, Machine, Op, Parcel, SharedSpans};
use arbitrary::{Arbitrary, Unstructured};
use std::sync::Mutex;

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
/// other thread's live blocks too. A third of the frees (those with `slot % 3 == 0`) and every
/// reset instead mail a block to the other thread, which checks its contents and frees it
/// later: frees from a thread other than the allocating one. Blocks still in the mail when both
/// threads are done are freed by the calling thread.
pub fn run_threads<A: Heap + Sync>(heap: &A, data: &[u8]) {
    run_ops_threads(heap, &decode(data));
}

/// [`run_threads`] on operations already decoded.
pub fn run_ops_threads<A: Heap + Sync>(heap: &A, ops: &[Op]) {
    let (even, odd): (Vec<_>, Vec<_>) = ops.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let shared = SharedSpans::new();
    let boxes: [Mutex<Vec<Parcel>>; 2] = Default::default();
    std::thread::scope(|s| {
        for (me, half) in [even, odd].into_iter().enumerate() {
            let (shared, boxes) = (shared.clone(), &boxes);
            s.spawn(move || {
                let mut m = Machine::new(Borrowed(heap), false).sharing(&shared);
                for (i, op) in half {
                    let mail = match *op {
                        Op::Reset => Some(0),
                        Op::Free { slot } if slot % 3 == 0 => Some(slot / 3),
                        _ => None,
                    };
                    let r = match mail {
                        Some(slot) => m.send(slot).map(|p| boxes[1 - me].lock().unwrap().extend(p)),
                        None => m.apply(*op),
                    };
                    let inbox = std::mem::take(&mut *boxes[me].lock().unwrap());
                    if let Err(f) = r.and_then(|()| inbox.into_iter().try_for_each(|p| m.receive(p))) {
                        panic!("operation {i} ({op:?}): {f}");
                    }
                }
                if let Err(f) = m.finish() {
                    panic!("freeing what was left: {f}");
                }
            });
        }
    });
    let mut m = Machine::new(Borrowed(heap), false).sharing(&shared);
    for p in boxes.into_iter().flat_map(|b| b.into_inner().unwrap()) {
        if let Err(f) = m.receive(p) {
            panic!("a block left in the mail: {f}");
        }
    }
    if let Err(f) = m.finish() {
        panic!("freeing the blocks left in the mail: {f}");
    }
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

    /// The system allocator, noting which thread allocated each block and counting frees made
    /// on another thread.
    #[derive(Default)]
    struct Witness {
        owner: Mutex<std::collections::HashMap<usize, std::thread::ThreadId>>,
        cross: std::sync::atomic::AtomicUsize,
    }

    // SAFETY: blocks come from the system allocator and go back to it.
    unsafe impl allocator_api2::alloc::Allocator for &Witness {
        fn allocate(
            &self,
            layout: core::alloc::Layout,
        ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
            let b = allocator_api2::alloc::Allocator::allocate(&allocator_api2::alloc::Global, layout)?;
            if layout.size() == 0 {
                return Ok(b); // dangling, the same address for many
            }
            self.owner.lock().unwrap().insert(b.cast::<u8>().as_ptr() as usize, std::thread::current().id());
            Ok(b)
        }
        unsafe fn deallocate(&self, ptr: core::ptr::NonNull<u8>, layout: core::alloc::Layout) {
            let by = self.owner.lock().unwrap().remove(&(ptr.as_ptr() as usize));
            assert!(by.is_some() || layout.size() == 0, "a block of ours");
            if by.is_some_and(|by| by != std::thread::current().id()) {
                self.cross.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: the caller's guarantees.
            unsafe { allocator_api2::alloc::Allocator::deallocate(&allocator_api2::alloc::Global, ptr, layout) }
        }
    }

    #[test]
    fn two_threads_free_each_others_blocks_and_leave_nothing() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let ops = proptest::collection::vec(crate::op_strategy(), 3000).new_tree(&mut runner).unwrap().current();
        let w = Witness::default();
        run_ops_threads(&w, &ops);
        assert!(w.owner.lock().unwrap().is_empty(), "blocks left live");
        let cross = w.cross.load(std::sync::atomic::Ordering::Relaxed);
        assert!(cross > 10, "too few frees crossed threads: {cross}");
    }
}
