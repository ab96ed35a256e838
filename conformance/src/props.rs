//! The properties. Each is a function generic over a [`Subject`] returning an [`Outcome`], so the
//! suite's own tests can show that a broken allocator fails it.

use crate::model::{fail, layout, Failure, Machine, Outcome};
use crate::ops::op_strategy;
use crate::{stress, trace, Heap, ResetSubject, SharedSubject, Subject};
use core::alloc::Layout;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const SIZES: [usize; 24] =
    [1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 48, 64, 100, 127, 128, 129, 255, 256, 1000, 4095, 4096, 4097];
const BIG_SIZES: [usize; 4] = [10_000, 65_536, 100_000, 1 << 20];

/// Every block is aligned, as long as asked, and disjoint from every live block, over a grid of
/// sizes and alignments with frees in between so reuse is exercised.
pub fn blocks_are_aligned_and_disjoint<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::new(), true);
    let mut handles = Vec::new();
    for shift in 0..=12 {
        for &size in SIZES.iter().chain(&BIG_SIZES[..2]) {
            handles.push(m.allocate(layout(size, 1 << shift)?, false)?.unwrap());
        }
    }
    // Free every other block (the rest stay live in the model), then allocate the grid again
    // into the holes.
    for h in handles.into_iter().step_by(2) {
        m.free(h)?;
    }
    for shift in (0..=12).rev() {
        for &size in &SIZES {
            m.allocate(layout(size, 1 << shift)?, false)?;
        }
    }
    m.finish().map(drop)
}

/// Thousands of blocks of mixed sizes, freed in a scrambled order: each block's pattern must
/// survive every other allocation and free until its own free.
pub fn patterns_survive_until_free<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::new(), true);
    let mut live = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for step in 0..6000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let free = !live.is_empty() && (x % 5 < 2 || step > 4500);
        if free {
            let h = live.swap_remove((x >> 8) as usize % live.len());
            m.free(h)?;
        } else {
            let size = SIZES[(x >> 20) as usize % SIZES.len()];
            let align = 1 << ((x >> 40) % 5);
            live.push(m.allocate(layout(size, align)?, false)?.unwrap());
        }
    }
    m.finish().map(drop)
}

/// Growing and shrinking keep the first `min(old, new)` bytes, for the newest block (where
/// in-place growth happens) and for an older one (where it moves), and `Vec` growth works.
pub fn realloc_keeps_prefix<S: Subject>() -> Outcome {
    let pairs = [
        (1, 2),
        (8, 16),
        (16, 4096),
        (100, 50),
        (4096, 10),
        (4000, 1 << 20),
        (1 << 20, 1 << 10),
        (17, 17),
        (3, 300_000),
    ];
    let mut m = Machine::new(S::new(), true);
    for &(from, to) in &pairs {
        for align in [1, 8, 64, 4096] {
            for zeroed in [false, true] {
                // Newest block.
                let h = m.allocate(layout(from, align)?, false)?.unwrap();
                let h = m.resize(h, to, zeroed)?.unwrap();
                // Older block, with a younger neighbour in the way.
                let other = m.allocate(layout(24, 8)?, false)?.unwrap();
                let h = m.resize(h, from, false)?.unwrap();
                m.free(other)?;
                m.free(h)?;
            }
        }
    }
    // A buffer growing a few bytes at a time (the cabi_realloc pattern).
    let mut h = m.allocate(layout(1, 1)?, false)?.unwrap();
    for size in (2..20_000).step_by(7) {
        h = m.resize(h, size, false)?.unwrap();
    }
    m.free(h)?;
    let heap = m.finish()?;
    let mut v = allocator_api2::vec::Vec::<u64, _>::new_in(HeapRef(&heap));
    for i in 0..100_000u64 {
        v.push(i);
    }
    if let Some(i) = (0..100_000u64).find(|&i| v[i as usize] != i) {
        return fail!("Vec growth lost element {i}");
    }
    Ok(())
}

/// `allocate_zeroed` and `grow_zeroed` give zeroes, even in memory that held data before.
pub fn zeroed_allocation_is_zero<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::new(), true);
    for _ in 0..3 {
        // Dirty memory, free it, then ask for zeroed blocks of the same shapes.
        let dirty: Vec<_> =
            SIZES.iter().map(|&s| m.allocate(layout(s, 16).unwrap(), false)).collect::<Result<_, _>>()?;
        for h in dirty.into_iter().rev() {
            m.free(h.unwrap())?;
        }
        let zeroed: Vec<_> =
            SIZES.iter().map(|&s| m.allocate(layout(s, 16).unwrap(), true)).collect::<Result<_, _>>()?;
        for (h, &s) in zeroed.into_iter().zip(&SIZES) {
            m.resize(h.unwrap(), s * 3 + 5, true)?;
        }
        m.free_all()?;
    }
    m.finish().map(drop)
}

/// Zero-size requests get a non-null pointer aligned as asked; freeing it is a no-op; a
/// zero-size block can grow into a real one and a real one can shrink to zero.
pub fn zero_size_requests_are_dangling<S: Subject>() -> Outcome {
    let heap = S::new();
    for shift in 0..=12 {
        let align = 1usize << shift;
        let l = layout(0, align)?;
        let a = heap.allocate(l).map_err(|_| Failure(format!("zero-size request aligned to {align} failed")))?;
        let b = heap.allocate(l).map_err(|_| Failure(format!("second zero-size request aligned to {align} failed")))?;
        for p in [a, b] {
            if !(p.cast::<u8>().as_ptr() as usize).is_multiple_of(align) {
                return fail!("zero-size block {:p} is not aligned to {align}", p.cast::<u8>());
            }
        }
        // SAFETY: both are zero-size blocks from this heap with layout `l`.
        unsafe {
            heap.deallocate(a.cast(), l);
            heap.deallocate(b.cast(), l);
        }
    }
    let mut m = Machine::new(heap, true);
    let h = m.allocate(layout(0, 8)?, false)?.unwrap();
    let h = m.resize(h, 64, true)?.unwrap();
    let h = m.resize(h, 0, false)?.unwrap();
    m.free(h)?;
    m.finish().map(drop)
}

/// Sizes no machine can hold, and layouts whose rounding overflows, are refused; a block that
/// cannot grow that far is left intact; the allocator works afterwards.
pub fn impossible_sizes_fail_cleanly<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::new(), false);
    let max = isize::MAX as usize;
    let cases = [(max, 1), (max - 4095, 4096), (max - 15, 16), (1 << 62, 1), (1 << 50, 8), (max / 2 + 1, 1 << 20)];
    for &(size, align) in &cases {
        let l = layout(size, align)?;
        if m.allocate(l, false)?.is_some() {
            return fail!("a {size}-byte request aligned to {align} succeeded");
        }
        if m.allocate(l, true)?.is_some() {
            return fail!("a zeroed {size}-byte request aligned to {align} succeeded");
        }
    }
    let h = m.allocate(layout(16, 8)?, false)?.expect("a 16-byte block");
    let growths = [max - 15, 1 << 62, 1 << 50, max / 2 + 1];
    for &size in &growths {
        // A refused growth re-checks the block and keeps it live under the same handle.
        m.resize(h, size, false)?;
    }
    let refused = m.refused;
    m.free(h)?;
    if refused != cases.len() * 2 + growths.len() {
        return fail!("{} of {} impossible requests were refused", refused, cases.len() * 2 + growths.len());
    }
    // Still works.
    if m.allocate(layout(64, 16)?, false)?.is_none() {
        return fail!("a 64-byte request failed after impossible ones");
    }
    m.finish().map(drop)
}

/// Every power-of-two alignment up to a page is honoured for several sizes; larger ones are
/// either honoured or cleanly refused (the model checks alignment of whatever is returned).
pub fn alignments_up_to_a_page<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::new(), true);
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in [1, align, 3 * align, align + 1] {
            m.allocate(layout(size, align)?, false)?;
        }
        m.allocate(layout(24, 8)?, false)?; // knock the next block off alignment
    }
    m.free_all()?;
    let mut m = Machine::new(m.finish()?, false);
    for shift in 13..=21 {
        m.allocate(layout(100, 1 << shift)?, false)?;
    }
    m.finish().map(drop)
}

/// Budget used by the out-of-memory property.
pub const BUDGET: usize = 1 << 20;

/// With a page source limited to [`BUDGET`], allocation fails cleanly before the allocator has
/// handed out more than the budget; blocks stay intact; after freeing, the allocator serves again.
pub fn out_of_memory_is_clean<S: Subject>() -> Outcome {
    let mut m = Machine::new(S::with_budget(BUDGET), false);
    let block = 16 << 10;
    let mut handles = Vec::new();
    // Four times the budget: an allocator that honours its limit must refuse long before.
    for _ in 0..(4 * BUDGET / block) {
        match m.allocate(layout(block, 16)?, false)? {
            Some(h) => handles.push(h),
            None => break,
        }
    }
    if m.refused == 0 {
        return fail!("handed out {} bytes from a page source limited to {BUDGET} without refusing", m.live_bytes());
    }
    if m.live_usable() > BUDGET {
        return fail!("handed out {} usable bytes from a page source limited to {BUDGET}", m.live_usable());
    }
    if m.allocate(layout(2 * BUDGET, 16)?, false)?.is_some() {
        return fail!("a request twice the budget succeeded");
    }
    // Free everything (newest first); the allocator must serve again.
    m.free_all()?;
    if m.allocate(layout(64, 16)?, false)?.is_none() {
        return fail!("a 64-byte request failed after everything was freed following out-of-memory");
    }
    m.finish().map(drop)
}

/// Model-based: random sequences of allocate / free / realloc / reset, checked after every step.
/// Case count: `PROPTEST_CASES` (default 64).
pub fn model_based_operations<S: Subject>(reset: Option<fn(&mut S::Alloc)>) -> Outcome {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(), 1..300);
    runner
        .run(&strategy, |ops| {
            let mut m = Machine::new(S::new(), true).with_reset(reset);
            for (i, op) in ops.iter().enumerate() {
                m.apply(*op).map_err(|f| TestCaseError::fail(format!("step {i} ({op:?}): {f}")))?;
            }
            m.finish().map(drop).map_err(|f| TestCaseError::fail(format!("final free: {f}")))
        })
        .map_err(|e| Failure(format!("model-based operations: {e}")))
}

/// Every recorded trace replays with contents intact and no overlap.
pub fn traces_replay<S: Subject>() -> Outcome {
    let traces = trace::all_traces().map_err(Failure)?;
    if traces.is_empty() {
        return fail!("no traces found in {:?}", trace::trace_dirs());
    }
    for t in &traces {
        trace::replay(S::new(), t)?;
    }
    Ok(())
}

/// After a reset the allocator serves again, blocks valid and disjoint, and memory is reused
/// (a reset that leaks would map more on every round).
pub fn reset_frees_everything<S: ResetSubject>() -> Outcome {
    let mut m = Machine::new(S::with_budget(4 * BUDGET), true).with_reset(Some(S::reset));
    for round in 0..20 {
        for i in 0..1000 {
            m.allocate(layout(SIZES[i % SIZES.len()] * 4, 8)?, false).map_err(|f| {
                Failure(format!("round {round}, after {i} allocations: {f} (does reset give memory back?)"))
            })?;
        }
        m.reset()?;
    }
    m.finish().map(drop)
}

/// Threads allocate, mail blocks to other threads, and free what they receive; contents survive
/// the trip, some frees really cross threads, and live bytes return to where they started.
pub fn threads_free_each_others_blocks<S: SharedSubject>() -> Outcome {
    let heap = S::new();
    let before = S::live_bytes(&heap);
    let report = stress::mail_ring(&heap, 4, 16, 12, 200)?;
    if report.cross_thread_frees == 0 {
        return fail!("no block was freed on another thread than the one that allocated it");
    }
    let after = S::live_bytes(&heap);
    if after != before {
        return fail!(
            "live bytes went from {before} to {after} after {} blocks were allocated and freed across threads",
            report.blocks
        );
    }
    Ok(())
}

/// `&A` as an `Allocator`, for collections.
#[derive(Copy, Clone)]
struct HeapRef<'a, A>(&'a A);

// SAFETY: forwards every call to the heap under test, which is the thing being checked.
unsafe impl<A: Heap> allocator_api2::alloc::Allocator for HeapRef<'_, A> {
    fn allocate(&self, l: Layout) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        self.0.allocate(l)
    }
    unsafe fn deallocate(&self, p: core::ptr::NonNull<u8>, l: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.deallocate(p, l) }
    }
    unsafe fn grow(
        &self,
        p: core::ptr::NonNull<u8>,
        o: Layout,
        n: Layout,
    ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.grow(p, o, n, false) }
    }
    unsafe fn shrink(
        &self,
        p: core::ptr::NonNull<u8>,
        o: Layout,
        n: Layout,
    ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.shrink(p, o, n) }
    }
}
