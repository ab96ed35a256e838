//! The workloads of `BENCHMARKS.md`, written once, generic over the allocator. Every random
//! choice comes from a fixed-seed generator, so every allocator sees the same sequence.

use crate::contenders::Bench;
use crate::measure::{self, Counts, Live, Sample};
use conformance::trace::{trace_align, Event, Trace};
use conformance::Heap;
use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::OnceLock;
use std::time::Instant;

/// A multiplier on every workload's iteration count: 1.0 for `compare`, less for criterion.
#[derive(Copy, Clone, Debug)]
pub struct Scale(pub f64);

impl Scale {
    fn of(self, n: usize) -> usize {
        ((n as f64 * self.0) as usize).max(1)
    }
}

/// Which workload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Id {
    /// One block allocated and freed, repeated: the fast path alone.
    AllocFreePair,
    /// 16–128 B blocks freed in LIFO order.
    SmallChurnLifo,
    /// 16–128 B blocks freed in random order.
    SmallChurnRandom,
    /// A working set with Pareto sizes up to 1 KiB.
    MixedSizes,
    /// The recorded traces.
    TraceReplay,
    /// Doubling growth to 1 MiB, and growth a few bytes at a time.
    ReallocGrowth,
    /// Build 100k small nodes, then drop them all.
    ArenaBuildDrop,
    /// 64 KiB – 16 MiB blocks, touched and freed.
    LargeSpans,
    /// One thread allocates, another frees.
    ProducerConsumer,
    /// Threads write small blocks that may share a cache line (cache-scratch).
    FalseSharing,
    /// Threads replace random slots; slot arrays move to new threads.
    ServerSim,
}

/// A workload: its name, what it models, and whether it needs a thread-safe allocator.
pub struct Workload {
    /// Short name for the command line and tables.
    pub name: &'static str,
    /// What it models.
    pub what: &'static str,
    /// Needs an allocator that threads can share.
    pub threads: bool,
    /// Which one.
    pub id: Id,
}

/// Every workload, in report order.
pub static WORKLOADS: &[Workload] = &[
    Workload {
        name: "alloc-free-pair",
        what: "one 64-byte block allocated and freed, repeated: the fast path with nothing around it",
        threads: false,
        id: Id::AllocFreePair,
    },
    Workload {
        name: "small-churn-lifo",
        what: "64 blocks of 16-128 B allocated then freed newest first, repeated",
        threads: false,
        id: Id::SmallChurnLifo,
    },
    Workload {
        name: "small-churn-random",
        what: "1,024 slots of 16-128 B blocks, each step frees a random slot and refills it",
        threads: false,
        id: Id::SmallChurnRandom,
    },
    Workload {
        name: "mixed-sizes",
        what: "10,000 live blocks, Pareto sizes 8 B-1 KiB, random replacement (alloc-test)",
        threads: false,
        id: Id::MixedSizes,
    },
    Workload {
        name: "trace-replay",
        what: "the recorded traces of ls, find, grep, gcc, c++filt, source-map and the tracer",
        threads: false,
        id: Id::TraceReplay,
    },
    Workload {
        name: "realloc-growth",
        what: "a vector doubling to 1 MiB, and a buffer growing 16 B at a time to 64 KiB (cabi_realloc)",
        threads: false,
        id: Id::ReallocGrowth,
    },
    Workload {
        name: "arena-build-drop",
        what: "100,000 32-byte tree nodes built, then all dropped (reset where the allocator can)",
        threads: false,
        id: Id::ArenaBuildDrop,
    },
    Workload {
        name: "large-spans",
        what: "64 KiB-16 MiB blocks allocated, every page touched, freed",
        threads: false,
        id: Id::LargeSpans,
    },
    Workload {
        name: "producer-consumer",
        what: "one thread allocates 16-256 B blocks, another frees them (xmalloc-test)",
        threads: true,
        id: Id::ProducerConsumer,
    },
    Workload {
        name: "false-sharing",
        what: "2 threads each free a block the main thread allocated, then allocate and write their own 8 B blocks (cache-scratch)",
        threads: true,
        id: Id::FalseSharing,
    },
    Workload {
        name: "server-sim",
        what: "2 threads replace random slots of 16-512 B; slot arrays move to new threads (larson)",
        threads: true,
        id: Id::ServerSim,
    },
];

/// Finds a workload by name.
pub fn by_name(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// xorshift64*: a fixed, fast sequence.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    /// The next value.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value in `lo..=hi`.
    #[inline(always)]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// A live block in a workload.
#[derive(Copy, Clone)]
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a block record is the only handle to its block; moving it moves ownership.
unsafe impl Send for Block {}

/// Writes one byte in every page of `start..end` of a block, like a program filling it would, so
/// resident memory reflects what was handed out (untouched pages cost no RSS).
#[inline(always)]
fn touch(ptr: NonNull<u8>, start: usize, end: usize) {
    let mut off = start;
    while off < end {
        // SAFETY: off < end <= the block's size.
        unsafe { ptr.as_ptr().add(off).write_volatile(off as u8) };
        off = (off | 4095) + 1;
    }
}

#[inline(always)]
fn alloc<H: Heap>(h: &H, size: usize, align: usize, live: &mut Live) -> Block {
    let layout = Layout::from_size_align(size, align).expect("workload layouts are valid");
    let ptr = h.allocate(layout).unwrap_or_else(|_| panic!("out of memory allocating {size} bytes")).cast::<u8>();
    // Opaque to the optimiser: LLVM knows malloc/free and would delete allocate/free pairs whose
    // memory is never observed, making glibc look free.
    let ptr = std::hint::black_box(ptr);
    touch(ptr, 0, size);
    live.add(size);
    Block { ptr, layout }
}

#[inline(always)]
fn free<H: Heap>(h: &H, b: Block, live: &mut Live) {
    live.sub(b.layout.size());
    // SAFETY: every Block in a workload is live and freed once, with its layout.
    unsafe { h.deallocate(std::hint::black_box(b.ptr), b.layout) }
}

fn alloc_free_pair<H: Heap>(h: &H, s: Scale) -> Counts {
    let layout = Layout::from_size_align(64, 8).expect("a valid layout");
    let n = s.of(2_000_000);
    for _ in 0..n {
        let p = std::hint::black_box(h.allocate(layout).expect("64 bytes")).cast::<u8>();
        // SAFETY: freed once, with its layout.
        unsafe { h.deallocate(p, layout) };
    }
    Counts { ops: 2 * n as u64, peak_live: 64 }
}

fn small_churn_lifo<H: Heap>(h: &H, s: Scale) -> Counts {
    let mut rng = Rng::new(1);
    let sizes: Vec<usize> = (0..64).map(|_| rng.range(16, 128)).collect();
    let mut live = Live::default();
    let mut blocks = Vec::with_capacity(64);
    let rounds = s.of(20_000);
    for _ in 0..rounds {
        for &size in &sizes {
            blocks.push(alloc(h, size, 8, &mut live));
        }
        while let Some(b) = blocks.pop() {
            free(h, b, &mut live);
        }
    }
    Counts { ops: (rounds * 128) as u64, peak_live: live.peak() }
}

fn slot_churn<H: Heap>(h: &H, slots: usize, steps: usize, mut size: impl FnMut(&mut Rng) -> usize) -> Counts {
    let mut rng = Rng::new(2);
    let mut live = Live::default();
    let mut table: Vec<Block> = (0..slots).map(|_| alloc(h, size(&mut rng), 8, &mut live)).collect();
    for _ in 0..steps {
        let i = (rng.next_u64() % slots as u64) as usize;
        let n = size(&mut rng);
        free(h, table[i], &mut live);
        table[i] = alloc(h, n, 8, &mut live);
    }
    for b in table {
        free(h, b, &mut live);
    }
    Counts { ops: (2 * slots + 2 * steps) as u64, peak_live: live.peak() }
}

/// Pareto-like sizes from 8 B to 1 KiB: most small, a long tail.
fn pareto(rng: &mut Rng) -> usize {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((8.0 / (1.0 - u).max(1e-9).powf(1.0 / 1.1)) as usize).clamp(8, 1024)
}

fn traces() -> &'static [Trace] {
    static TRACES: OnceLock<Vec<Trace>> = OnceLock::new();
    TRACES.get_or_init(|| conformance::trace::all_traces().expect("the recorded traces load"))
}

/// Replays one trace (allocate / free, no checking), returning its counts.
pub fn replay<H: Heap>(h: &H, t: &Trace) -> Counts {
    let mut live = Live::default();
    let mut blocks: Vec<Option<Block>> = Vec::with_capacity(t.allocations());
    for e in &t.events {
        match *e {
            Event::Alloc(n) => blocks.push(Some(alloc(h, n, trace_align(n), &mut live))),
            Event::Free(i) => {
                let b = blocks[i].take().expect("traces free each allocation once");
                free(h, b, &mut live);
            }
        }
    }
    for b in blocks.into_iter().flatten() {
        free(h, b, &mut live);
    }
    Counts { ops: 2 * t.allocations() as u64, peak_live: live.peak() }
}

fn trace_replay<H: Heap>(h: &H, s: Scale) -> Counts {
    let mut total = Counts::default();
    for _ in 0..s.of(3) {
        for t in traces() {
            let c = replay(h, t);
            total.ops += c.ops;
            total.peak_live = total.peak_live.max(c.peak_live);
        }
    }
    total
}

fn grow<H: Heap>(h: &H, b: Block, new_size: usize, live: &mut Live) -> Block {
    let layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
    // SAFETY: b is live with its layout and new_size >= its size.
    let p = unsafe { h.grow(b.ptr, b.layout, layout, false) }.expect("growth within memory").cast::<u8>();
    let p = std::hint::black_box(p);
    touch(p, b.layout.size(), new_size);
    live.sub(b.layout.size());
    live.add(new_size);
    Block { ptr: p, layout }
}

fn realloc_growth<H: Heap>(h: &H, s: Scale) -> Counts {
    let mut live = Live::default();
    let mut ops = 0u64;
    for _ in 0..s.of(200) {
        let mut b = alloc(h, 16, 8, &mut live);
        let mut size = 16;
        while size < 1 << 20 {
            size *= 2;
            b = grow(h, b, size, &mut live);
            ops += 1;
        }
        free(h, b, &mut live);
        ops += 2;
    }
    for _ in 0..s.of(20) {
        let mut b = alloc(h, 16, 1, &mut live);
        for size in (32..=64 << 10).step_by(16) {
            b = grow(h, b, size, &mut live);
            ops += 1;
        }
        free(h, b, &mut live);
        ops += 2;
    }
    Counts { ops, peak_live: live.peak() }
}

fn arena_build_drop<B: Bench>(h: &mut B::Heap, s: Scale) -> Counts {
    let mut live = Live::default();
    let mut ops = 0u64;
    let n = 100_000;
    let mut nodes: Vec<Block> = Vec::with_capacity(n);
    let mut rng = Rng::new(3);
    // Whether the allocator frees everything at once is known up front; probe it on an empty heap.
    let resets = B::reset(h);
    for _ in 0..s.of(10) {
        let mut parent: Option<NonNull<u8>> = None;
        for i in 0..n {
            let b = alloc(&*h, 32, 8, &mut live);
            // A tree: each node points at a random earlier node, like a parse.
            // SAFETY: b is a fresh 32-byte block aligned to 8.
            unsafe { b.ptr.as_ptr().cast::<usize>().write(parent.map_or(0, |p| p.as_ptr() as usize)) };
            if i % 8 == 0 || rng.next_u64().is_multiple_of(4) {
                parent = Some(b.ptr);
            }
            if !resets {
                nodes.push(b);
            }
            ops += 1;
        }
        if resets {
            B::reset(h);
            live.sub(32 * n);
            ops += 1;
        } else {
            for b in nodes.drain(..) {
                free(&*h, b, &mut live);
                ops += 1;
            }
        }
    }
    Counts { ops, peak_live: live.peak() }
}

fn large_spans<H: Heap>(h: &H, s: Scale) -> Counts {
    let mut rng = Rng::new(4);
    let mut live = Live::default();
    let iters = s.of(300);
    for _ in 0..iters {
        let shift = rng.range(16, 24);
        let size = rng.range(1 << shift, (1 << shift) + (1 << (shift - 1)));
        let b = alloc(h, size, 16, &mut live);
        free(h, b, &mut live);
    }
    Counts { ops: 2 * iters as u64, peak_live: live.peak() }
}

fn producer_consumer<H: Heap + Sync>(h: &H, s: Scale) -> Counts {
    let batches = s.of(2000);
    let mut peak = 0u64;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Block>>(8);
        let consumer = scope.spawn(move || {
            let mut live = Live::default();
            for batch in rx {
                for b in batch {
                    live.add(b.layout.size());
                    free(h, b, &mut live);
                }
            }
        });
        let mut rng = Rng::new(5);
        let mut live = Live::default();
        for _ in 0..batches {
            let batch: Vec<Block> = (0..256).map(|_| alloc(h, rng.range(16, 256), 8, &mut live)).collect();
            tx.send(batch).expect("consumer alive");
        }
        drop(tx);
        consumer.join().expect("consumer thread");
        // Up to 8 batches in the channel, one being built, one being freed.
        peak = (10 * 256 * 136) as u64;
    });
    Counts { ops: (batches * 256 * 2) as u64, peak_live: peak }
}

fn false_sharing<H: Heap + Sync>(h: &H, s: Scale) -> Counts {
    let threads = 2;
    let rounds = s.of(200);
    let writes = 5_000;
    let mut live = Live::default();
    // Allocated together by one thread, so they likely share a cache line.
    let given: Vec<Block> = (0..threads).map(|_| alloc(h, 8, 8, &mut live)).collect();
    std::thread::scope(|scope| {
        for b in given {
            scope.spawn(move || {
                let mut live = Live::default();
                live.add(8);
                free(h, b, &mut live);
                for _ in 0..rounds {
                    let mine = alloc(h, 8, 8, &mut live);
                    for i in 0..writes {
                        // SAFETY: an 8-byte block this thread owns.
                        unsafe { mine.ptr.as_ptr().write_volatile(i as u8) };
                    }
                    free(h, mine, &mut live);
                }
            });
        }
    });
    Counts { ops: (threads * (1 + rounds * (writes + 2))) as u64, peak_live: (threads * 8) as u64 }
}

fn server_sim<H: Heap + Sync>(h: &H, s: Scale) -> Counts {
    let threads = 2;
    let slots = 1000;
    let steps = s.of(200_000);
    let mut arrays: Vec<Vec<Block>> = (0..threads)
        .map(|t| {
            let mut rng = Rng::new(10 + t as u64);
            let mut live = Live::default();
            (0..slots).map(|_| alloc(h, rng.range(16, 512), 8, &mut live)).collect()
        })
        .collect();
    // Two generations of threads: each takes over an array the previous generation left.
    for generation in 0..2u64 {
        arrays = std::thread::scope(|scope| {
            let hs: Vec<_> = arrays
                .into_iter()
                .enumerate()
                .map(|(t, mut arr)| {
                    scope.spawn(move || {
                        let mut rng = Rng::new(100 + generation * 10 + t as u64);
                        let mut live = Live::default();
                        for _ in 0..steps / 2 {
                            let i = (rng.next_u64() % slots as u64) as usize;
                            let n = rng.range(16, 512);
                            live.add(arr[i].layout.size());
                            free(h, arr[i], &mut live);
                            arr[i] = alloc(h, n, 8, &mut live);
                        }
                        arr
                    })
                })
                .collect();
            hs.into_iter().map(|j| j.join().expect("server thread")).collect()
        });
    }
    let mut live = Live::default();
    for b in arrays.into_iter().flatten() {
        live.add(b.layout.size());
        free(h, b, &mut live);
    }
    Counts { ops: (threads * (2 * slots + 2 * steps)) as u64, peak_live: (threads * slots * 264) as u64 }
}

/// The timed pass, kept out of line so `valgrind --tool=callgrind --toggle-collect=*timed_pass*`
/// counts the instructions of exactly this pass (`compare --instructions`).
#[inline(never)]
pub fn timed_pass<H>(heap: &mut H, f: &mut impl FnMut(&mut H) -> Counts) -> (Counts, std::time::Duration) {
    let start = Instant::now();
    let counts = f(heap);
    (counts, start.elapsed())
}

/// Runs `w` once untimed (warm-up) and once timed on a fresh heap of `B`.
fn timed<B: Bench>(mut f: impl FnMut(&mut B::Heap) -> Counts) -> Sample {
    let baseline = measure::rss_now();
    let mut heap = B::make();
    f(&mut heap);
    B::reset(&mut heap);
    let (counts, elapsed) = timed_pass(&mut heap, &mut f);
    let after = measure::rss_now();
    let trimmed = B::trim(&mut heap).then(measure::rss_now);
    drop(heap);
    measure::sample(elapsed, counts, baseline, after, trimmed)
}

/// Runs a single-thread workload on `B`; `None` for the multi-thread ones.
pub fn run_local<B: Bench>(w: &Workload, s: Scale) -> Option<Sample> {
    Some(match w.id {
        Id::AllocFreePair => timed::<B>(|h| alloc_free_pair(h, s)),
        Id::SmallChurnLifo => timed::<B>(|h| small_churn_lifo(h, s)),
        Id::SmallChurnRandom => timed::<B>(|h| slot_churn(h, 1024, s.of(1_000_000), |r| r.range(16, 128))),
        Id::MixedSizes => timed::<B>(|h| slot_churn(h, 10_000, s.of(500_000), pareto)),
        Id::TraceReplay => {
            traces();
            timed::<B>(|h| trace_replay(h, s))
        }
        Id::ReallocGrowth => timed::<B>(|h| realloc_growth(h, s)),
        Id::ArenaBuildDrop => timed::<B>(|h| arena_build_drop::<B>(h, s)),
        Id::LargeSpans => timed::<B>(|h| large_spans(h, s)),
        Id::ProducerConsumer | Id::FalseSharing | Id::ServerSim => return None,
    })
}

/// Runs any workload on a thread-safe `B`.
pub fn run_shared<B: Bench>(w: &Workload, s: Scale) -> Option<Sample>
where
    B::Heap: Sync,
{
    match w.id {
        Id::ProducerConsumer => Some(timed::<B>(|h| producer_consumer(&*h, s))),
        Id::FalseSharing => Some(timed::<B>(|h| false_sharing(&*h, s))),
        Id::ServerSim => Some(timed::<B>(|h| server_sim(&*h, s))),
        _ => run_local::<B>(w, s),
    }
}

/// Runs one trace on `B` (for `compare --trace`).
pub fn run_trace<B: Bench>(t: &Trace) -> Sample {
    timed::<B>(|h| replay(h, t))
}
