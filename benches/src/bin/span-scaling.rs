//! `span-scaling`: the cost of one allocation or free in alloc-span as the number of live spans
//! grows from a thousand to a million (issue: every operation O(log n) or better). Each count
//! holds that many live blocks of 1 to 8 pages (never touched: only the heap's own work is
//! timed), then replaces random blocks with new ones of random sizes; glibc runs the same up to
//! 100,000 blocks (beyond that its block headers alone make gigabytes resident).
//!
//! `cargo run --release -p benches --bin span-scaling [-- --steps N --counts 1000,1000000 --span-only]`
//!
//! Instructions per operation (flat if the work is O(1)):
//! `valgrind --tool=callgrind --toggle-collect='*replace_steps*' target/release/span-scaling --span-only --counts N --steps 100000`
//! and divide what it collected by 200,000.

use alloc_core::{Allocator, Layout};
use benches::workloads::Rng;
use std::time::Instant;

fn layout(rng: &mut Rng) -> Layout {
    Layout::from_size_align(rng.range(1, 8) * 4096 - rng.range(0, 100), 16).expect("a valid layout")
}

/// The timed loop, out of line so `valgrind --tool=callgrind --toggle-collect=*replace_steps*`
/// counts its instructions alone.
#[inline(never)]
fn replace_steps<A>(heap: &A, blocks: &mut [(core::ptr::NonNull<u8>, Layout)], rng: &mut Rng, steps: usize)
where
    for<'a> &'a A: Allocator,
{
    let live = blocks.len();
    for _ in 0..steps {
        let i = (rng.next_u64() % live as u64) as usize;
        let (p, l) = blocks[i];
        // SAFETY: a live block with its layout, freed once.
        unsafe { heap.deallocate(std::hint::black_box(p), l) };
        let l = layout(rng);
        blocks[i] = (std::hint::black_box(heap.allocate(l).expect("memory").cast::<u8>()), l);
    }
}

/// Holds `live` blocks, then replaces `steps` random ones; ns per allocation or free.
fn run<A>(heap: A, live: usize, steps: usize) -> f64
where
    for<'a> &'a A: Allocator,
{
    let mut rng = Rng::new(42);
    let mut blocks: Vec<_> = (0..live)
        .map(|_| {
            let l = layout(&mut rng);
            ((&heap).allocate(l).expect("memory").cast::<u8>(), l)
        })
        .collect();
    let start = Instant::now();
    replace_steps(&heap, &mut blocks, &mut rng, steps);
    let ns = start.elapsed().as_nanos() as f64 / (2 * steps) as f64;
    for (p, l) in blocks {
        // SAFETY: as above.
        unsafe { (&heap).deallocate(p, l) };
    }
    ns
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let steps: usize = value("--steps").and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let glibc_too = !args.iter().any(|a| a == "--span-only");
    let counts: Vec<usize> = value("--counts")
        .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000, 1_000_000]);
    println!("live spans of 1-8 pages, {steps} random replacements per count; ns per allocation or free\n");
    println!("| live spans | span ns/op | glibc ns/op | span × glibc |");
    println!("|--:|--:|--:|--:|");
    for &n in &counts {
        let span = run(alloc_span::Span::new(), n, steps);
        let glibc =
            (glibc_too && n <= 100_000).then(|| run(benches::contenders::ViaGlobal(std::alloc::System), n, steps));
        match glibc {
            Some(g) => println!("| {n} | {span:.1} | {g:.1} | {:.2} |", span / g),
            None => println!("| {n} | {span:.1} | – | – |"),
        }
    }
}
