//! loom model checks of the lock-free structures. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p alloc-core --test loom --release`.
//!
//! The ABA interleaving: the list holds A -> B -> C. Thread 1 starts a pop (reads head A and its
//! link B) and stalls; thread 2 pops A, pops B (B is now in use), and pushes A back. When thread 1
//! resumes, an untagged CAS still sees head A and swings it to B: B is then both in use and on
//! the list. The tagged list's CAS sees a new tag and retries. The untagged model must fail,
//! which shows the model can see the bug the tag prevents.
#![cfg(loom)]

use alloc_core::sync::atomic_list::{AtomicFreeList, Link};
use core::ptr::NonNull;
use loom::sync::Arc;

/// Nodes for a model run; leaked (loom objects live for the model iteration).
fn nodes(n: usize) -> Vec<NonNull<Link>> {
    (0..n).map(|_| NonNull::from(Box::leak(Box::new(Link::new())))).collect()
}

struct Shared<const T: bool> {
    list: AtomicFreeList<T>,
}

// SAFETY: the list is Sync; the raw node pointers it holds point at leaked boxes.
unsafe impl<const T: bool> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<const T: bool> Sync for Shared<T> {}

/// A node address that can cross threads.
fn addr(n: NonNull<Link>) -> usize {
    n.as_ptr() as usize
}

fn aba_scenario<const T: bool>() {
    loom::model(|| {
        let ns = nodes(3);
        let shared = Arc::new(Shared::<T> { list: AtomicFreeList::new() });
        // Build A -> B -> C (push C, B, A).
        for &n in ns.iter().rev() {
            // SAFETY: each leaked node is pushed once.
            unsafe { shared.list.push(n) };
        }

        let s1 = shared.clone();
        let t1 = loom::thread::spawn(move || s1.list.pop().map(addr));
        let s2 = shared.clone();
        let t2 = loom::thread::spawn(move || {
            let x = s2.list.pop();
            let y = s2.list.pop();
            // Give the first back, keep the second (in use).
            if let Some(x) = x {
                // SAFETY: x was popped by this thread.
                unsafe { s2.list.push(x) };
            }
            y.map(addr)
        });
        let held1 = t1.join().unwrap();
        let held2 = t2.join().unwrap();

        // Every node must be in exactly one place: on the list, or held by one thread.
        let mut on_list = Vec::new();
        while let Some(n) = shared.list.pop() {
            let a = addr(n);
            assert!(!on_list.contains(&a), "node {a:#x} is on the list twice (a cycle)");
            on_list.push(a);
            assert!(on_list.len() <= 3, "the list grew past its three nodes");
        }
        for held in [held1, held2].into_iter().flatten() {
            assert!(!on_list.contains(&held), "node {held:#x} is in use and still on the list (ABA)");
        }
        let total = on_list.len() + held1.is_some() as usize + held2.is_some() as usize;
        assert_eq!(total, 3, "a node was lost");
    });
}

#[test]
fn tagged_list_survives_the_aba_interleaving() {
    aba_scenario::<true>();
}

#[test]
#[should_panic(expected = "ABA")]
fn untagged_list_is_caught_by_the_model() {
    aba_scenario::<false>();
}

#[test]
fn concurrent_pushes_and_pops_lose_nothing() {
    loom::model(|| {
        let ns = nodes(2);
        let shared = Arc::new(Shared::<true> { list: AtomicFreeList::new() });
        let handles: Vec<_> = ns
            .into_iter()
            .map(|n| {
                let s = shared.clone();
                let n = addr(n);
                loom::thread::spawn(move || {
                    // SAFETY: each node is pushed once, by one thread.
                    unsafe { s.list.push(NonNull::new(n as *mut Link).unwrap()) };
                    s.list.pop().map(addr)
                })
            })
            .collect();
        let mut seen: Vec<usize> = handles.into_iter().filter_map(|h| h.join().unwrap()).collect();
        while let Some(n) = shared.list.pop() {
            seen.push(addr(n));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 2);
    });
}
