//! A tree of nodes that need `Drop`, built and then freed, three ways: alloc-arena (its drop
//! registry runs every `Drop`), bumpalo (which never runs `Drop`, so its users keep a list of
//! the values and drop them by hand before the reset, the usual workaround), and a
//! `Vec<Box<Node>>` on the global allocator (glibc).
//!
//! `cargo bench -p benches --bench drop_tree`

use criterion::{black_box, criterion_main, Criterion};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const NODES: usize = 10_000;

/// Nodes dropped so far. A static rather than a borrowed counter: the arena runs `Drop` only for
/// `Send + 'static` values. A relaxed load and store (not a read-modify-write) costs what the
/// `Cell` it replaced cost.
static DROPS: AtomicUsize = AtomicUsize::new(0);

/// A node whose `Drop` does observable work (counts itself), with a parent link.
struct Node {
    parent: Option<usize>,
    value: u64,
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPS.store(DROPS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

fn parent_of(i: usize) -> Option<usize> {
    (i > 0).then(|| (i * 7 + 3) % i)
}

fn drop_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("drop-tree");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));

    g.bench_function("arena", |b| {
        let mut arena = alloc_arena::Arena::new();
        b.iter(|| {
            for i in 0..NODES {
                black_box(arena.alloc(Node { parent: parent_of(i), value: i as u64 }));
            }
            arena.reset();
        })
    });

    g.bench_function("bumpalo+manual-drop", |b| {
        let mut bump = bumpalo::Bump::new();
        let mut live: Vec<*mut Node> = Vec::with_capacity(NODES);
        b.iter(|| {
            for i in 0..NODES {
                let n = bump.alloc(Node { parent: parent_of(i), value: i as u64 });
                live.push(black_box(n as *mut Node));
            }
            for n in live.drain(..).rev() {
                // SAFETY: each pointer is a live node in the bump arena, dropped once, before the
                // reset frees its memory.
                unsafe { core::ptr::drop_in_place(n) };
            }
            bump.reset();
        })
    });

    g.bench_function("glibc-vec-box", |b| {
        let mut nodes: Vec<Box<Node>> = Vec::with_capacity(NODES);
        b.iter(|| {
            for i in 0..NODES {
                nodes.push(black_box(Box::new(Node { parent: parent_of(i), value: i as u64 })));
            }
            nodes.clear();
        })
    });
    g.finish();
    let probe = Node { parent: parent_of(5), value: 0 };
    black_box((DROPS.load(Ordering::Relaxed), probe.parent, probe.value));
}

mod group {
    #![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]
    criterion::criterion_group!(benches, super::drop_tree);
}
use group::benches;
criterion_main!(benches);
