//! Threads allocating, handing blocks to other threads, and freeing what they were handed, with
//! every block's contents checked at its free.

use crate::heap::{Borrowed, Heap};
use crate::model::{fail, Failure, Machine, Outcome, SharedSpans};
use core::alloc::Layout;
use core::ptr::NonNull;
use rayon::prelude::*;
use std::sync::Mutex;

/// A block in flight between threads.
struct Handoff {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
    from: std::thread::ThreadId,
}

// SAFETY: a parcel is the only handle to its block; whoever holds it owns the block.
unsafe impl Send for Handoff {}

/// Outcome of a stress run.
pub(crate) struct Report {
    pub cross_thread_frees: usize,
    pub blocks: usize,
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^ (x << 17)
}

/// `tasks` tasks on a pool of `threads` threads, `rounds` rounds: each task allocates
/// `per_round` blocks (16 B .. 4 KiB), mails them to the next task, and frees what it was mailed
/// the round before. Everything is freed at the end.
pub(crate) fn mail_ring<A: Heap + Sync>(
    heap: &A,
    threads: usize,
    tasks: usize,
    rounds: usize,
    per_round: usize,
) -> Result<Report, crate::Failure> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let boxes: Vec<Mutex<Vec<Handoff>>> = (0..tasks).map(|_| Mutex::new(Vec::new())).collect();
    let cross = std::sync::atomic::AtomicUsize::new(0);
    let blocks = std::sync::atomic::AtomicUsize::new(0);

    let free_parcels = |parcels: Vec<Handoff>| -> Outcome {
        let me = std::thread::current().id();
        for p in parcels {
            // SAFETY: the parcel's block is live and ours; it was filled with `tag`.
            let bytes = unsafe { core::slice::from_raw_parts(p.ptr.as_ptr(), p.layout.size()) };
            if let Some(i) = bytes.iter().position(|&b| b != p.tag) {
                return fail!(
                    "block {:p} ({} bytes) lost its contents in transit: byte {i} is {:#04x}, expected {:#04x}",
                    p.ptr,
                    p.layout.size(),
                    bytes[i],
                    p.tag
                );
            }
            if p.from != me {
                cross.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: the block is live, allocated from `heap` with this layout.
            unsafe { heap.deallocate(p.ptr, p.layout) };
        }
        Ok(())
    };

    pool.install(|| -> Outcome {
        for round in 0..rounds {
            (0..tasks).into_par_iter().try_for_each(|t| -> Outcome {
                let mut seed = xorshift((t as u64 + 1) * 0x9e37_79b9 + round as u64);
                let mut out = Vec::with_capacity(per_round);
                let me = std::thread::current().id();
                for _ in 0..per_round {
                    seed = xorshift(seed);
                    let size = 16 + (seed as usize % 4080);
                    let align = 1 << ((seed >> 40) % 5);
                    let layout = Layout::from_size_align(size, align).unwrap();
                    let Ok(b) = heap.allocate(layout) else {
                        return fail!("refused {size} bytes during the thread stress (no memory limit)");
                    };
                    let ptr = b.cast::<u8>();
                    if !(ptr.as_ptr() as usize).is_multiple_of(align) {
                        return fail!("block {ptr:p} is not aligned to {align}");
                    }
                    let tag = (seed >> 16) as u8 | 1;
                    // SAFETY: a fresh block of at least `size` bytes.
                    unsafe { ptr.as_ptr().write_bytes(tag, size) };
                    out.push(Handoff { ptr, layout, tag, from: me });
                }
                blocks.fetch_add(per_round, std::sync::atomic::Ordering::Relaxed);
                let inbox = std::mem::take(&mut *boxes[t].lock().unwrap());
                free_parcels(inbox)?;
                boxes[(t + 1) % tasks].lock().unwrap().extend(out);
                Ok(())
            })?;
        }
        Ok(())
    })?;
    for b in &boxes {
        free_parcels(std::mem::take(&mut *b.lock().unwrap()))?;
    }
    Ok(Report { cross_thread_frees: cross.into_inner(), blocks: blocks.into_inner() })
}

/// `threads` threads share `heap`, each running `ops` random operations (from `seed`) through a
/// model of its own, every model checking its blocks against all the others' (`shared`); each
/// thread frees what it holds at the end. (The heap validator does not run here: it needs the
/// allocator to itself.)
pub(crate) fn models_on_threads<A: Heap + Sync>(
    heap: &A,
    shared: &std::sync::Arc<SharedSpans>,
    threads: usize,
    ops: usize,
    seed: u64,
) -> Outcome {
    // Every thread waits here halfway, holding its live blocks, so the threads' blocks are live
    // at the same time whatever the scheduler does.
    let halfway = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (shared, halfway) = (shared.clone(), &halfway);
                s.spawn(move || -> Outcome {
                    let mut m = Machine::new(Borrowed(heap), true).sharing(&shared);
                    let mut waited = false;
                    let mut result = Ok(());
                    for (i, op) in crate::props::random_ops(seed * 31 + t as u64, ops).into_iter().enumerate() {
                        if i == ops / 2 {
                            halfway.wait();
                            waited = true;
                        }
                        if let Err(f) = m.apply(op) {
                            result = Err(Failure(format!("thread {t}, operation {i} ({op:?}): {f}")));
                            break;
                        }
                    }
                    if !waited {
                        // A thread that failed early still meets the others, or they would wait forever.
                        halfway.wait();
                    }
                    result?;
                    m.finish().map(drop)
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| Failure("a thread of the shared model panicked".into()))??;
        }
        Ok(())
    })
}
