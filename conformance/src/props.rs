//! The properties. Each is a function generic over a [`Subject`] returning an [`Outcome`], so the
//! suite's own tests can show that a broken allocator fails it.

use crate::model::{fail, layout, Failure, Handle, Machine, Outcome, SharedSpans};
use crate::ops::{op_strategy, Op};
use crate::{
    machine, new_meter, stress, trace, Heap, IntrospectSubject, ResetSubject, SharedSubject, StatsSubject, Subject,
    TrimSubject, ViaGlobalAlloc,
};
use core::alloc::Layout;
use core::ptr::NonNull;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const SIZES: [usize; 24] =
    [1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 48, 64, 100, 127, 128, 129, 255, 256, 1000, 4095, 4096, 4097];
const BIG_SIZES: [usize; 4] = [10_000, 65_536, 100_000, 1 << 20];

/// Budget used by the out-of-memory property.
pub const BUDGET: usize = 1 << 20;

/// xorshift64: the suite's fixed sequences.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Every block is aligned, as long as asked, and disjoint from every live block, over a grid of
/// sizes and alignments with frees in between so reuse is exercised.
pub fn blocks_are_aligned_and_disjoint<S: Subject>() -> Outcome {
    let mut m = machine::<S>(S::new(), true);
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
    m.validate("after freeing every other block")?;
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
    let mut m = machine::<S>(S::new(), true);
    let mut live = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for step in 0..6000 {
        next(&mut x);
        let free = !live.is_empty() && (x % 5 < 2 || step > 4500);
        if free {
            let h = live.swap_remove((x >> 8) as usize % live.len());
            m.free(h)?;
        } else {
            let size = SIZES[(x >> 20) as usize % SIZES.len()];
            let align = 1 << ((x >> 40) % 5);
            live.push(m.allocate(layout(size, align)?, false)?.unwrap());
        }
        if step % 500 == 0 {
            m.validate(&format!("step {step}"))?;
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
    let mut m = machine::<S>(S::new(), true);
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

/// Resizing to a larger or smaller alignment (with the size kept, grown or shrunk) keeps the
/// prefix and leaves the heap consistent: the block is freed later with its new layout, and
/// blocks of the new layout's size allocated afterwards must not overlap its neighbours. (A
/// class-based heap that keeps a block in place under a layout of another class parks it on the
/// wrong list at its free, and hands it out again over a live neighbour.)
pub fn realloc_across_alignments<S: Subject>() -> Outcome {
    let cases: [((usize, usize), (usize, usize)); 11] = [
        ((16, 8), (16, 32)),
        ((16, 8), (24, 64)),
        ((16, 32), (16, 8)),
        ((48, 16), (48, 256)),
        ((64, 64), (32, 8)),
        ((100, 4), (100, 4096)),
        ((4096, 4096), (5000, 16)),
        ((8, 1), (8, 8)),
        ((256, 256), (128, 512)),
        ((3000, 8), (3000, 1024)),
        ((5000, 16), (6000, 8192)),
    ];
    let mut m = machine::<S>(S::new(), true);
    for &((size, align), (nsize, nalign)) in &cases {
        // Several targets with neighbours, so some land on addresses that happen to suit the new
        // alignment already (where an in-place resize is tempting).
        let mut targets = Vec::new();
        let mut neighbours = Vec::new();
        for _ in 0..16 {
            targets.push(m.allocate(layout(size, align)?, false)?.unwrap());
            neighbours.push(m.allocate(layout(size, align)?, false)?.unwrap());
        }
        let mut resized = Vec::new();
        for (i, h) in targets.into_iter().enumerate() {
            let zeroed = i % 2 == 0;
            resized.push(m.resize_to(h, layout(nsize, nalign)?, zeroed)?.unwrap());
        }
        m.validate(&format!("after resizing {size}/{align} to {nsize}/{nalign}"))?;
        for h in resized {
            m.free(h)?;
        }
        // Allocations of both layouts into the freed blocks: an overlap with a neighbour shows.
        let mut again = Vec::new();
        for _ in 0..32 {
            again.push(m.allocate(layout(nsize, nalign)?, false)?.unwrap());
            again.push(m.allocate(layout(size, align)?, false)?.unwrap());
        }
        for h in again.into_iter().chain(neighbours) {
            m.free(h)?;
        }
    }
    m.finish().map(drop)
}

/// A block may be freed, and resized, with any layout that fits it: its alignment, and a size
/// anywhere between the size asked for and the length returned (the largest included). The
/// heap stays consistent and blocks allocated afterwards are disjoint from live ones.
pub fn frees_with_any_fitting_size<S: Subject>() -> Outcome {
    let mut m = machine::<S>(S::new(), true);
    for round in 0..4 {
        let mut hs = Vec::new();
        for (i, &size) in SIZES.iter().chain(&BIG_SIZES[..2]).enumerate() {
            let align = 1 << (i % 7);
            hs.push(m.allocate(layout(size, align)?, false)?.unwrap());
        }
        for (i, h) in hs.into_iter().enumerate() {
            match (i + round) % 3 {
                // The full returned length.
                0 => m.free_as(h, |_, len| len)?,
                // The size asked for.
                1 => m.free_as(h, |req, _| req)?,
                // Halfway.
                _ => m.free_as(h, |req, len| req + (len - req) / 2)?,
            }
        }
        m.validate(&format!("round {round}"))?;
        // Reuse: blocks of the same shapes must be disjoint from each other.
        for &size in SIZES.iter().rev() {
            m.allocate(layout(size, 8)?, false)?;
        }
    }
    m.finish().map(drop)
}

/// `allocate_zeroed` and `grow_zeroed` give zeroes, even in memory that held data before.
pub fn zeroed_allocation_is_zero<S: Subject>() -> Outcome {
    let mut m = machine::<S>(S::new(), true);
    for _ in 0..3 {
        // Dirty memory, free it, then ask for zeroed blocks of the same shapes.
        let dirty: Vec<_> = SIZES
            .iter()
            .chain(&BIG_SIZES)
            .map(|&s| m.allocate(layout(s, 16).unwrap(), false))
            .collect::<Result<_, _>>()?;
        for h in dirty.into_iter().rev() {
            m.free(h.unwrap())?;
        }
        let zeroed: Vec<_> = SIZES
            .iter()
            .chain(&BIG_SIZES)
            .map(|&s| m.allocate(layout(s, 16).unwrap(), true))
            .collect::<Result<_, _>>()?;
        for (h, &s) in zeroed.into_iter().zip(SIZES.iter().chain(&BIG_SIZES)) {
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
    let mut m = machine::<S>(heap, true);
    let h = m.allocate(layout(0, 8)?, false)?.unwrap();
    let h = m.resize(h, 64, true)?.unwrap();
    let h = m.resize(h, 0, false)?.unwrap();
    let h = m.resize_to(h, layout(0, 256)?, false)?.unwrap();
    m.free(h)?;
    m.finish().map(drop)
}

/// Sizes no machine can hold, and layouts whose rounding overflows, are refused; a block that
/// cannot grow that far is left intact; the allocator works afterwards.
pub fn impossible_sizes_fail_cleanly<S: Subject>() -> Outcome {
    let mut m = machine::<S>(S::new(), false);
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
    let mut m = machine::<S>(S::new(), true);
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in [1, align, 3 * align, align + 1] {
            m.allocate(layout(size, align)?, false)?;
        }
        m.allocate(layout(24, 8)?, false)?; // knock the next block off alignment
    }
    m.free_all()?;
    let mut m = machine::<S>(m.finish()?, false);
    for shift in 13..=21 {
        m.allocate(layout(100, 1 << shift)?, false)?;
    }
    m.finish().map(drop)
}

/// With a page source limited to the subject's budget (1 MiB, or what its first mappings need),
/// allocation fails cleanly before the
/// allocator has handed out more than the budget; blocks stay intact; after freeing, the
/// allocator serves again.
pub fn out_of_memory_is_clean<S: Subject>() -> Outcome {
    let budget = BUDGET.max(S::TYPICAL_SIZE * 64).max(S::MIN_BUDGET);
    let mut m = machine::<S>(S::with_budget(budget), false);
    // Blocks a small-object allocator serves itself (4 KiB), or the size the allocator is for.
    let block = if S::TYPICAL_SIZE <= 4096 { 4096 } else { S::TYPICAL_SIZE };
    // Four times the budget: an allocator that honours its limit must refuse long before.
    for _ in 0..(4 * budget / block) {
        if m.allocate(layout(block, 16)?, false)?.is_none() {
            break;
        }
    }
    if m.refused == 0 {
        return fail!("handed out {} bytes from a page source limited to {budget} without refusing", m.live_bytes());
    }
    if m.live_usable() > budget {
        return fail!("handed out {} usable bytes from a page source limited to {budget}", m.live_usable());
    }
    if m.allocate(layout(2 * budget, 16)?, false)?.is_some() {
        return fail!("a request twice the budget succeeded");
    }
    // Free everything (newest first); the allocator must serve again.
    m.free_all()?;
    if m.allocate(layout(64, 16)?, false)?.is_none() {
        return fail!("a 64-byte request failed after everything was freed following out-of-memory");
    }
    m.finish().map(drop)
}

/// Memory mapped from the page source stays within a small factor of the bytes asked for,
/// for blocks around the size the allocator is built for (a heap that gives every small block a
/// page of its own fails this).
pub fn memory_overhead_is_bounded<S: Subject>() -> Outcome {
    let meter = new_meter();
    let mut m = machine::<S>(S::make(usize::MAX, meter), true);
    let t = S::TYPICAL_SIZE;
    let n = (32 << 20) / (2 * t).max(1);
    let n = n.clamp(64, 8192);
    let mut x = 0x9e37_79b9u64;
    for _ in 0..n {
        next(&mut x);
        let size = t / 2 + (x as usize % (t + t / 2 + 1));
        m.allocate(layout(size, 8)?, false)?;
    }
    let (mapped, asked) = (meter.mapped(), m.live_bytes());
    // Slack for the first mappings an allocator makes whatever it holds (its first arena).
    let slack = (4 << 20).max(S::MIN_BUDGET);
    if mapped > 3 * asked + slack {
        return fail!(
            "{mapped} bytes mapped for {n} blocks of about {t} bytes ({asked} bytes asked for): more than three \
             times the bytes asked for plus {slack}"
        );
    }
    m.finish().map(drop)
}

/// After a mix of operations and everything freed, dropping the allocator gives every byte it
/// mapped back to the page source (counted at the source).
pub fn dropping_gives_every_page_back<S: Subject>() -> Outcome {
    let meter = new_meter();
    let mut m = machine::<S>(S::make(usize::MAX, meter), true);
    let mut x = 0x51u64;
    let mut live = Vec::new();
    for _ in 0..3000 {
        next(&mut x);
        if !live.is_empty() && x.is_multiple_of(3) {
            let h = live.swap_remove((x >> 8) as usize % live.len());
            m.free(h)?;
        } else {
            let size = if x.is_multiple_of(17) {
                BIG_SIZES[(x >> 4) as usize % 4]
            } else {
                SIZES[(x >> 4) as usize % SIZES.len()]
            };
            live.push(m.allocate(layout(size, 1 << ((x >> 12) % 6))?, false)?.unwrap());
        }
    }
    let heap = m.finish()?;
    if meter.maps() == 0 {
        return fail!("the allocator mapped nothing through its page source: the meter cannot see it");
    }
    let before = meter.mapped();
    drop(heap);
    if S::LEAVES_PAGES_ON_DROP {
        if meter.mapped() != before {
            return fail!("a heap that keeps its pages on drop unmapped {} of {before} bytes", before - meter.mapped());
        }
        return Ok(());
    }
    if meter.mapped() != 0 {
        return fail!(
            "{} bytes were still mapped from the page source after the allocator was dropped (peak {})",
            meter.mapped(),
            meter.peak()
        );
    }
    Ok(())
}

/// `Send` means the allocator keeps working on another thread: blocks allocated on one thread
/// keep their contents, are freed and resized on another, and the allocator serves there.
pub fn works_after_moving_threads<S: Subject>() -> Outcome
where
    S::Alloc: Send,
{
    struct Carry<T>(T);
    // SAFETY: the machine holds the allocator, which is `Send`, and handles (raw pointers) to
    // blocks of it, which only the one thread holding the machine uses. Only this shape is
    // `Send`: the wrapper vouches for nothing else.
    unsafe impl<A: crate::heap::Heap + Send> Send for Carry<(Machine<A>, Vec<Handle>)> {}

    let mut m = machine::<S>(S::new(), true);
    let mut hs = Vec::new();
    for &size in SIZES.iter().chain(&BIG_SIZES[..2]) {
        hs.push(m.allocate(layout(size, 16)?, false)?.unwrap());
    }
    let carried = Carry((m, hs));
    type Carried<A> = Carry<(Machine<A>, Vec<Handle>)>;
    let back = std::thread::spawn(move || -> Result<Carried<S::Alloc>, Failure> {
        // Moved whole (a closure would otherwise capture the fields, not the `Send` wrapper).
        let carried = carried;
        let Carry((mut m, mut hs)) = carried;
        for h in hs.drain(..).step_by(2) {
            m.free(h)?;
        }
        let mut kept = Vec::new();
        for &size in &SIZES {
            kept.push(m.allocate(layout(size, 8)?, false)?.unwrap());
        }
        if let Some(h) = kept.pop() {
            kept.push(m.resize(h, 5000, false)?.unwrap());
        }
        Ok(Carry((m, kept)))
    })
    .join()
    .map_err(|_| Failure("the allocator panicked on another thread".into()))??;
    let Carry((mut m, hs)) = back;
    for h in hs {
        m.free(h)?;
    }
    m.allocate(layout(100, 8)?, false)?;
    m.finish().map(drop)
}

/// Model-based: random sequences of allocate / free / realloc / realloc to another alignment /
/// reset, checked after every step. Case count: `PROPTEST_CASES` (default 64).
pub fn model_based_operations<S: Subject>(reset: Option<fn(&mut S::Alloc)>) -> Outcome {
    model_based(|| machine::<S>(S::new(), true).with_reset(reset))
}

/// The model-based operations with the allocator's trim in place of every reset step: memory
/// given back while blocks are live must leave their contents and the heap's structures intact
/// (a scavenger that gives back pages of a live span, or a trim that unmaps a segment still in
/// use, is caught by the next check or the next operation).
pub fn model_based_operations_with_trim<S: TrimSubject>() -> Outcome {
    model_based(|| machine::<S>(S::new(), true).with_trim(Some(S::trim)))
}

fn model_based<A: Heap>(make: impl Fn() -> Machine<A>) -> Outcome {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(), 1..300);
    runner
        .run(&strategy, |ops| {
            let mut m = make();
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
        trace::replay(machine::<S>(S::new(), true), t)?;
    }
    Ok(())
}

/// Reset frees everything: after each reset the allocator serves again with valid, disjoint
/// blocks; once warmed up (an allocator may keep a chunk sized to the working set) it reuses its
/// memory, so later rounds raise neither the peak of mapped bytes nor what stays mapped after a
/// reset (a reset that leaks large blocks, or keeps a stale bump pointer, grows both every round).
pub fn reset_frees_and_reuses_everything<S: ResetSubject>() -> Outcome {
    let meter = new_meter();
    let mut m = machine::<S>(S::make(usize::MAX, meter), true).with_reset(Some(S::reset));
    let (mut peak_warm, mut kept_warm) = (0, 0);
    const WARM: usize = 3;
    for round in 0..12 {
        for i in 0..600 {
            // Small blocks, every 100th a large one, and one larger than any allocator's regular
            // chunk (where allocators keep dedicated chunks, which a reset must free too).
            let size = match i {
                599 => 20 << 20,
                _ if i % 100 == 99 => 300_000,
                _ => SIZES[i % SIZES.len()] * 4,
            };
            m.allocate(layout(size, 8)?, false).map_err(|f| Failure(format!("round {round}, allocation {i}: {f}")))?;
        }
        m.reset()?;
        m.validate(&format!("after reset {round}"))?;
        if round == WARM {
            (peak_warm, kept_warm) = (meter.peak(), meter.mapped());
        } else if round > WARM && meter.mapped() > kept_warm {
            return fail!(
                "after reset {round}, {} bytes stay mapped; after reset {WARM} {kept_warm} did: reset does not give \
                 memory back",
                meter.mapped()
            );
        } else if round > WARM && meter.peak() > peak_warm {
            return fail!(
                "round {round} raised the peak mapped bytes from {peak_warm} to {}: memory freed by reset is not reused",
                meter.peak()
            );
        }
    }
    m.finish().map(drop)
}

/// Threads allocate, mail blocks to other threads, and free what they receive; contents survive
/// the trip, some frees really cross threads, and live bytes return to where they started. First,
/// live bytes count at least what the program holds (a counter stuck at zero passes the rest).
pub fn threads_free_each_others_blocks<S: SharedSubject>() -> Outcome {
    let heap = S::new();
    let before = S::live_bytes(&heap);
    let held: Vec<(NonNull<u8>, Layout)> = (1..=32)
        .filter_map(|i| {
            let l = Layout::from_size_align(i * 40 + (i % 3) * 1000, 8).unwrap();
            heap.allocate(l).ok().map(|b| (b.cast::<u8>(), l))
        })
        .collect();
    let asked: usize = held.iter().map(|(_, l)| l.size()).sum();
    let during = S::live_bytes(&heap);
    for &(p, l) in &held {
        // SAFETY: live blocks of `heap` with these layouts, freed once.
        unsafe { heap.deallocate(p, l) };
    }
    if held.len() < 32 {
        return fail!("only {} of 32 small blocks could be allocated", held.len());
    }
    if during.wrapping_sub(before) < asked {
        return fail!("live bytes rose from {before} to {during} while {asked} bytes in 32 blocks were held");
    }
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

/// Several threads run random operations on one allocator, each with its own model, all models
/// checking against every other thread's live blocks: a block one thread gets must not overlap
/// a block another thread holds.
pub fn threads_share_one_model<S: SharedSubject>() -> Outcome {
    let heap = S::new();
    let before = S::live_bytes(&heap);
    for seed in 1..=8u64 {
        let shared = SharedSpans::new();
        stress::models_on_threads(&heap, &shared, 4, 400, seed)?;
    }
    S::settle(&heap);
    if let Some(Err(c)) = S::validate(&heap) {
        return fail!("after the threads finished: {c}");
    }
    let after = S::live_bytes(&heap);
    if after != before {
        return fail!("live bytes went from {before} to {after} after the threads freed everything");
    }
    Ok(())
}

/// The `GlobalAlloc` entry points (`alloc`, `alloc_zeroed`, `realloc`, `dealloc`) keep the same
/// promises as the `Allocator` ones: model-based operations, realloc keeping the prefix, zeroed
/// memory, through `GlobalAlloc` alone.
pub fn global_alloc_entry_points<S: Subject>() -> Outcome
where
    S::Alloc: core::alloc::GlobalAlloc,
{
    let heap = S::new();
    let via = ViaGlobalAlloc(&heap);
    model_based(|| Machine::new(ViaGlobalAlloc(&heap), true))?;
    let mut m = Machine::new(via, true);
    for &(from, to) in &[(1, 100), (100, 10), (4000, 1 << 20), (1 << 20, 100), (17, 300_000)] {
        for zeroed in [false, true] {
            let h = m.allocate(layout(from, 8)?, zeroed)?.unwrap();
            let other = m.allocate(layout(24, 8)?, true)?.unwrap();
            let h = m.resize(h, to, false)?.unwrap();
            m.free(other)?;
            m.free(h)?;
        }
    }
    m.finish().map(drop)
}

/// Repeating the same mix of allocations and frees maps no more pages once warmed up: an
/// allocator that reuses freed blocks reaches a steady state (a free parked on a list that is
/// never allocated from again grows the heap on every round).
pub fn steady_churn_maps_no_more<S: Subject>() -> Outcome {
    let meter = new_meter();
    let mut m = machine::<S>(S::make(usize::MAX, meter), true);
    let mut peak_after_warmup = 0;
    for round in 0..12 {
        // The same sequence every round.
        let mut x = 0xc0ffeeu64;
        let mut live: Vec<Handle> = Vec::new();
        for _ in 0..2000 {
            next(&mut x);
            if !live.is_empty() && x % 5 < 2 {
                let h = live.swap_remove((x >> 8) as usize % live.len());
                m.free(h)?;
            } else if !live.is_empty() && x.is_multiple_of(11) {
                let i = (x >> 8) as usize % live.len();
                let size = SIZES[(x >> 16) as usize % SIZES.len()] * 3;
                live[i] = m.resize(live[i], size, false)?.unwrap();
            } else {
                let size = if x.is_multiple_of(61) {
                    BIG_SIZES[(x >> 4) as usize % 3]
                } else {
                    SIZES[(x >> 4) as usize % SIZES.len()]
                };
                live.push(m.allocate(layout(size, 1 << ((x >> 20) % 5))?, false)?.unwrap());
            }
        }
        for h in live {
            m.free(h)?;
        }
        if round == 3 {
            peak_after_warmup = meter.peak();
        } else if round > 3 && meter.peak() > peak_after_warmup {
            return fail!(
                "round {round} of the same churn raised the peak mapped bytes from {peak_after_warmup} to {}: freed \
                 blocks are not reused",
                meter.peak()
            );
        }
    }
    m.finish().map(drop)
}

/// The statistics follow the model: live blocks and bytes (the usable lengths handed out) rise
/// and fall with every allocation, resize and free, the peak is at least what was live, and the
/// allocation count counts.
pub fn statistics_track_blocks<S: StatsSubject>() -> Outcome {
    let mut m = machine::<S>(S::new(), true);
    let base = S::stats(m.heap());
    let check = |m: &Machine<S::Alloc>, when: &str| -> Outcome {
        let s = S::stats(m.heap());
        let blocks = s.blocks_live - base.blocks_live;
        let bytes = s.bytes_live - base.bytes_live;
        if blocks != m.live_blocks() || bytes != m.live_usable() {
            return fail!(
                "{when}: the statistics count {blocks} blocks and {bytes} bytes live; the model holds {} blocks of {} \
                 usable bytes",
                m.live_blocks(),
                m.live_usable()
            );
        }
        if s.peak_bytes_live < s.bytes_live {
            return fail!("{when}: peak live bytes {} below live bytes {}", s.peak_bytes_live, s.bytes_live);
        }
        Ok(())
    };
    let mut hs = Vec::new();
    for &size in SIZES.iter().chain(&BIG_SIZES) {
        hs.push(m.allocate(layout(size, 8)?, false)?.unwrap());
    }
    check(&m, "after allocating")?;
    let count = S::stats(m.heap()).allocations - base.allocations;
    if count < hs.len() as u64 {
        return fail!("{} blocks were allocated, the statistics count {count} allocations", hs.len());
    }
    for h in hs.iter_mut().step_by(3) {
        *h = m.resize(*h, 777, false)?.unwrap();
    }
    check(&m, "after resizing")?;
    for h in hs.into_iter().step_by(2) {
        m.free(h)?;
    }
    check(&m, "after freeing half")?;
    m.free_all()?;
    check(&m, "after freeing everything")?;
    m.finish().map(drop)
}

/// What the allocator says about its blocks agrees with the model: every byte of a live block is
/// in memory it owns (and a stack address is not), its usable size covers the request without
/// reaching into a neighbour, and the layout found from a block's address fits the block (an
/// interior address gives none).
pub fn introspection_agrees_with_the_model<S: IntrospectSubject>() -> Outcome {
    let mut m = machine::<S>(S::new(), true);
    let mut hs = Vec::new();
    for (i, &size) in SIZES.iter().chain(&BIG_SIZES).enumerate() {
        hs.push(m.allocate(layout(size.max(1), 1 << (i % 6))?, false)?.unwrap());
    }
    let heap = m.heap();
    let local = 0u64;
    if S::owns(heap, NonNull::from(&local).cast()) == Some(true) {
        return fail!("owns() claims a stack address");
    }
    let mut answered = S::owns(heap, NonNull::from(&local).cast()).is_some();
    let blocks = m.blocks();
    let mut spans: Vec<(usize, usize)> = blocks.iter().map(|b| (b.0.as_ptr() as usize, b.2)).collect();
    spans.sort();
    for (ptr, l, len) in &blocks {
        let addr = ptr.as_ptr() as usize;
        // SAFETY: the block is live with a layout that fits it.
        if let Some(u) = unsafe { S::usable_size(heap, *ptr, *l) } {
            answered = true;
            if u < l.size() {
                return fail!("usable_size of block {addr:#x} ({} bytes asked) is only {u}", l.size());
            }
            // The usable bytes must not reach the next live block.
            if let Some(&(next, _)) = spans.iter().find(|s| s.0 > addr) {
                if addr + u > next {
                    return fail!("usable_size {u} of block {addr:#x} reaches into the live block at {next:#x}");
                }
            }
            // Every usable byte is the caller's: write those past the model's pattern. A usable
            // size that over-reports overwrites a neighbour (checked below), the allocator's
            // metadata or a canary (checked by the validator and at free).
            for i in (*len).max(l.size())..u {
                // SAFETY: the allocator says the block is usable for `u` bytes; this checks it.
                unsafe { ptr.as_ptr().add(i).write(0xa5) };
            }
        }
        // SAFETY: the start of a live block of this heap, which owns it.
        if let Some(found) = unsafe { S::size_of(heap, *ptr) } {
            answered = true;
            match found {
                // A layout that fits: a size from the one asked for to the one returned, an
                // alignment at least the one asked for that the block really has (an allocator
                // that keeps no layout per block answers with its class's).
                Some(f)
                    if f.size() >= l.size()
                        && f.size() <= (*len).max(l.size())
                        && f.align() >= l.align()
                        && addr.is_multiple_of(f.align()) => {}
                other => {
                    return fail!(
                        "size_of({addr:#x}) gave {other:?} for a block of {} bytes aligned to {} ({len} returned)",
                        l.size(),
                        l.align()
                    )
                }
            }
            if *len > 1 {
                // SAFETY: one byte into the block, which is at least two bytes long.
                let inside = unsafe { NonNull::new_unchecked(ptr.as_ptr().add(1)) };
                // SAFETY: an address inside a live block of this heap, which owns it.
                if let Some(Some(f)) = unsafe { S::size_of(heap, inside) } {
                    return fail!("size_of of the interior address {:#x} gave {f:?}", addr + 1);
                }
            }
        }
    }
    if !answered {
        return fail!("the subject claims introspection but answers none of owns, usable_size and size_of");
    }
    m.verify_all("after writing every usable byte")?;
    m.validate("after writing every usable byte")?;
    m.finish().map(drop)
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

/// Random operations for one thread of [`threads_share_one_model`] (no resets: a reset would
/// free the other threads' blocks).
pub(crate) fn random_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            next(&mut x);
            let size = ((x >> 32) as u32 & 0x07ff_ffff) | (((x >> 8) % 14) as u32) << 27;
            match x % 10 {
                0..=4 => Op::Alloc { size, align: (x >> 20) as u8 % 7, zeroed: x.is_multiple_of(7) },
                5..=7 => Op::Free { slot: (x >> 16) as u16 },
                8 => Op::Realloc { slot: (x >> 16) as u16, size, zeroed: false },
                _ => Op::ReallocAligned { slot: (x >> 16) as u16, size, align: (x >> 24) as u8 % 9, zeroed: true },
            }
        })
        .collect()
}
