//! A tree of nodes that need `Drop`, built and then freed, three ways: alloc-arena (its drop
//! registry runs every `Drop`), bumpalo (which never runs `Drop`, so its users keep a list of
//! the values and drop them by hand before the reset, the usual workaround), and a
//! `Vec<Box<Node>>` on the global allocator (glibc).
//!
//! `cargo bench -p benches --bench drop_tree`

use criterion::{black_box, criterion_main, Criterion};
use std::cell::Cell;
use std::time::Duration;

const NODES: usize = 10_000;

/// A node whose `Drop` does observable work (counts itself), with a parent link.
struct Node<'a> {
    parent: Option<usize>,
    value: u64,
    drops: &'a Cell<usize>,
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn parent_of(i: usize) -> Option<usize> {
    (i > 0).then(|| (i * 7 + 3) % i)
}

fn drop_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("drop-tree");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    let drops = Cell::new(0);

    g.bench_function("arena", |b| {
        let mut arena = alloc_arena::Arena::new();
        b.iter(|| {
            for i in 0..NODES {
                black_box(arena.alloc(Node { parent: parent_of(i), value: i as u64, drops: &drops }));
            }
            arena.reset();
        })
    });

    g.bench_function("bumpalo+manual-drop", |b| {
        let mut bump = bumpalo::Bump::new();
        let mut live: Vec<*mut Node<'_>> = Vec::with_capacity(NODES);
        b.iter(|| {
            for i in 0..NODES {
                let n = bump.alloc(Node { parent: parent_of(i), value: i as u64, drops: &drops });
                live.push(black_box(n as *mut Node<'_>));
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
        let mut nodes: Vec<Box<Node<'_>>> = Vec::with_capacity(NODES);
        b.iter(|| {
            for i in 0..NODES {
                nodes.push(black_box(Box::new(Node { parent: parent_of(i), value: i as u64, drops: &drops })));
            }
            nodes.clear();
        })
    });
    g.finish();
    let probe = Node { parent: parent_of(5), value: 0, drops: &drops };
    black_box((drops.get(), probe.parent, probe.value));
}

mod group {
    #![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]
    criterion::criterion_group!(benches, super::drop_tree);
}
use group::benches;
criterion_main!(benches);
