//! The safe API the way users call it, small enough for Miri (`.ci/miri` runs this file): typed
//! values with `Drop`, a graph of borrowing nodes, collections that grow and shrink, scopes,
//! resets, an arena moved to another thread and a shared arena filled from two.

use alloc_arena::{Arena, SharedArena};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts its drops in a shared counter.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn values_with_drop_are_dropped_once_on_reset_scope_and_drop() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut arena = Arena::new();
    arena.alloc(Tracked(drops.clone()));
    arena.alloc_slice_fill_with(3, |_| Tracked(drops.clone()));
    arena.alloc_with(|| vec![String::from("owned"); 2]);
    arena.reset();
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    let n = arena.scope(|a| {
        a.alloc(Tracked(drops.clone()));
        a.alloc_str("scratch").len()
    });
    assert_eq!((n, drops.load(Ordering::Relaxed)), (7, 5));
    arena.alloc(Tracked(drops.clone()));
    drop(arena);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
}

#[test]
fn nodes_that_borrow_each_other_live_in_the_arena() {
    struct Node<'a> {
        value: u32,
        next: Cell<Option<&'a Node<'a>>>,
    }
    let arena = Arena::new();
    let first = arena.alloc_no_drop(Node { value: 0, next: Cell::new(None) });
    let mut last: &Node<'_> = first;
    for value in 1..10 {
        let n = arena.alloc_no_drop(Node { value, next: Cell::new(None) });
        last.next.set(Some(n));
        last = n;
    }
    last.next.set(Some(first));
    let mut sum = 0;
    let mut cur: &Node<'_> = first;
    for _ in 0..10 {
        sum += cur.value;
        cur = cur.next.get().unwrap();
    }
    assert_eq!(sum, 45);
}

#[test]
fn collections_grow_and_shrink_in_the_arena() {
    let arena = Arena::new();
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    for i in 0..300u32 {
        v.push(i);
    }
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v.iter().sum::<u32>(), 45);
    let mut m = hashbrown::HashMap::new_in(&arena);
    for i in 0..50u32 {
        m.insert(i, i * 2);
    }
    assert_eq!(m[&49], 98);
    assert_eq!(arena.validate(), Ok(()));
}

#[test]
fn an_arena_moves_to_another_thread_and_drops_there() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = Arena::new();
    for _ in 0..5 {
        arena.alloc(Tracked(drops.clone()));
    }
    std::thread::spawn(move || {
        arena.alloc(Tracked(Arc::new(AtomicUsize::new(0))));
        drop(arena);
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(Ordering::Relaxed), 5);
}

#[test]
fn a_shared_arena_is_filled_from_two_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SharedArena::new();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (a, d) = (&arena, drops.clone());
            s.spawn(move || {
                for i in 0..10u64 {
                    assert_eq!(*a.alloc(i), i);
                    a.alloc(Tracked(d.clone()));
                }
            });
        }
    });
    drop(arena);
    assert_eq!(drops.load(Ordering::Relaxed), 20);
}
