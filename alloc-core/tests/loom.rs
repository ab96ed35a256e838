//! loom model checks of the lock-free structures. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p alloc-core --test loom --release`.
//!
//! The remote-free list ([`RemoteList`]) must lose no block, hand none out twice, and order every
//! link (and every byte a pusher wrote into its block) before the owner's read of it. Links and
//! payloads are loom `UnsafeCell`s, so loom reports any plain read not ordered after the write it
//! sees. Three broken designs are kept beside it so the models are seen to fail:
//! - a take with `Relaxed` instead of `Acquire` (a causality violation on the link);
//! - a Treiber stack whose pop reads a popped node's link while the node's new owner writes it
//!   (the tagged stack this workspace used to have: a data race, even though the tag stops ABA);
//! - an untagged Treiber stack (the ABA interleaving: a node in use and on the list at once).
#![cfg(loom)]

use alloc_core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::{Link, RemoteList};
use core::ptr::NonNull;
use loom::sync::Arc;

/// A free block as a pool sees it: the link first, then payload the previous owner wrote.
#[repr(C)]
struct Block {
    link: Link,
    payload: UnsafeCell<u64>,
}

fn block(value: u64) -> NonNull<Link> {
    NonNull::from(Box::leak(Box::new(Block { link: Link::new(), payload: UnsafeCell::new(value) }))).cast()
}

/// Reads the payload of a block the caller owns.
fn payload(node: NonNull<Link>) -> u64 {
    // SAFETY: every node in these models is a leaked `Block`, whose link is its first field.
    let b = unsafe { node.cast::<Block>().as_ref() };
    b.payload.with(|p| unsafe { *p })
}

/// Everything on a taken chain: (address, payload).
fn drain(mut n: Option<NonNull<Link>>) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    while let Some(node) = n {
        out.push((node.as_ptr() as usize, payload(node)));
        // SAFETY: the chain was taken, so the caller owns every node on it.
        n = unsafe { Link::next(node) };
        assert!(out.len() <= 8, "the chain loops");
    }
    out
}

struct Shared<T>(T);
// SAFETY: the structures under test are Sync; the raw node pointers they hold point at leaked
// blocks whose ownership the structures hand over.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// A node address that can cross threads.
fn addr(n: NonNull<Link>) -> usize {
    n.as_ptr() as usize
}

fn node(a: usize) -> NonNull<Link> {
    NonNull::new(a as *mut Link).unwrap()
}

#[test]
fn remote_frees_reach_the_owner_once_with_their_contents() {
    loom::model(|| {
        let list = Arc::new(Shared(RemoteList::new()));
        let pushers: Vec<_> = (1..=2u64)
            .map(|i| {
                let list = list.clone();
                let n = addr(block(0));
                loom::thread::spawn(move || {
                    // The freeing thread's last write into the block, then the push.
                    // SAFETY: the block is this thread's until it is pushed.
                    unsafe { node(n).cast::<Block>().as_ref() }.payload.with_mut(|p| unsafe { *p = i });
                    // SAFETY: pushed once by its owner.
                    unsafe { list.0.push(node(n)) };
                })
            })
            .collect();
        // The owner takes while the pushes happen.
        let mut taken = drain(list.0.take_all());
        for p in pushers {
            p.join().unwrap();
        }
        taken.extend(drain(list.0.take_all()));
        taken.sort();
        let mut payloads: Vec<u64> = taken.iter().map(|t| t.1).collect();
        payloads.sort();
        assert_eq!(payloads, vec![1, 2], "every freed block arrives once with what its freer wrote");
        assert!(list.0.is_empty());
    });
}

#[test]
fn a_chain_and_single_pushes_interleave() {
    loom::model(|| {
        let list = Arc::new(Shared(RemoteList::new()));
        let (a, b) = (addr(block(10)), addr(block(11)));
        let c = addr(block(12));
        let l2 = list.clone();
        let t = loom::thread::spawn(move || {
            // SAFETY: a and b are this thread's; chained a -> b and pushed once.
            unsafe {
                Link::set_next(node(a), Some(node(b)));
                l2.0.push_chain(node(a), node(b));
            }
        });
        // SAFETY: c is this thread's, pushed once.
        unsafe { list.0.push(node(c)) };
        t.join().unwrap();
        let mut got: Vec<u64> = drain(list.0.take_all()).into_iter().map(|t| t.1).collect();
        got.sort();
        assert_eq!(got, vec![10, 11, 12]);
    });
}

/// The remote list with the owner's swap weakened to `Relaxed`: broken on purpose.
struct RelaxedTake {
    head: AtomicPtr<Link>,
}

impl RelaxedTake {
    unsafe fn push(&self, n: NonNull<Link>) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is the caller's until published.
            unsafe { Link::set_next(n, NonNull::new(head)) };
            match self.head.compare_exchange_weak(head, n.as_ptr(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
    fn take_all(&self) -> Option<NonNull<Link>> {
        NonNull::new(self.head.swap(core::ptr::null_mut(), Ordering::Relaxed))
    }
}

#[test]
#[should_panic(expected = "Causality violation")]
fn a_relaxed_take_is_caught_by_the_model() {
    loom::model(|| {
        let list = Arc::new(Shared(RelaxedTake { head: AtomicPtr::new(core::ptr::null_mut()) }));
        let n = addr(block(0));
        let l2 = list.clone();
        let t = loom::thread::spawn(move || {
            // SAFETY: the block is this thread's until it is pushed.
            unsafe { node(n).cast::<Block>().as_ref() }.payload.with_mut(|p| unsafe { *p = 7 });
            // SAFETY: pushed once.
            unsafe { l2.0.push(node(n)) };
        });
        // Without Acquire, reading the block's contents races with the pusher's writes.
        let _ = drain(list.0.take_all());
        t.join().unwrap();
    });
}

/// A Treiber stack of blocks whose links are plain memory, popped one at a time with a version
/// tag against ABA: the design this workspace used before the remote list.
struct TaggedTreiber {
    /// `tag << 48 | address`.
    head: AtomicUsize,
}

const MASK: usize = (1 << 48) - 1;

impl TaggedTreiber {
    unsafe fn push(&self, n: NonNull<Link>) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is the caller's until published.
            unsafe { Link::set_next(n, NonNull::new((head & MASK) as *mut Link)) };
            let new = (head & !MASK) | n.as_ptr() as usize;
            match self.head.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
    fn pop(&self) -> Option<NonNull<Link>> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let n = NonNull::new((head & MASK) as *mut Link)?;
            // The racy read: another thread may have popped `n` and be writing into it.
            // SAFETY: (not really: that is what the model shows.)
            let next = unsafe { Link::next(n) }.map_or(0, |p| p.as_ptr() as usize);
            let new = ((head >> 48).wrapping_add(1) << 48) | next;
            match self.head.compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(n),
                Err(now) => head = now,
            }
        }
    }
}

#[test]
#[should_panic(expected = "Causality violation")]
fn a_tagged_treiber_pop_races_with_the_blocks_new_owner() {
    loom::model(|| {
        let stack = Arc::new(Shared(TaggedTreiber { head: AtomicUsize::new(0) }));
        let (a, b) = (addr(block(0)), addr(block(0)));
        // SAFETY: both nodes are ours, pushed once each: the stack holds a -> b.
        unsafe {
            stack.0.push(node(b));
            stack.0.push(node(a));
        }
        let s2 = stack.clone();
        let t = loom::thread::spawn(move || {
            // Pop a block and use it: its first word becomes user data.
            if let Some(n) = s2.0.pop() {
                // SAFETY: popped, so this thread owns it.
                unsafe { Link::set_next(n, None) };
            }
        });
        let _ = stack.0.pop();
        t.join().unwrap();
    });
}

/// An untagged Treiber stack with atomic links (no data race, but ABA).
struct UntaggedTreiber {
    head: AtomicUsize,
}

struct AtomicNode {
    next: AtomicUsize,
}

impl UntaggedTreiber {
    fn push(&self, n: usize) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: every node in this model is a leaked AtomicNode.
            unsafe { &*(n as *const AtomicNode) }.next.store(head, Ordering::Relaxed);
            match self.head.compare_exchange_weak(head, n, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
    fn pop(&self) -> Option<usize> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            if head == 0 {
                return None;
            }
            // SAFETY: as above.
            let next = unsafe { &*(head as *const AtomicNode) }.next.load(Ordering::Relaxed);
            match self.head.compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(head),
                Err(now) => head = now,
            }
        }
    }
}

/// The ABA interleaving: the stack holds A -> B -> C. Thread 1 starts a pop (reads head A and its
/// link B) and stalls; thread 2 pops A, pops B (B is now in use), and pushes A back. When thread
/// 1 resumes, the CAS still sees head A and swings it to B: B is then both in use and on the
/// stack.
#[test]
#[should_panic(expected = "ABA")]
fn an_untagged_treiber_stack_is_caught_by_the_aba_model() {
    loom::model(|| {
        let nodes: Vec<usize> =
            (0..3).map(|_| Box::leak(Box::new(AtomicNode { next: AtomicUsize::new(0) })) as *mut _ as usize).collect();
        let stack = Arc::new(UntaggedTreiber { head: AtomicUsize::new(0) });
        for &n in nodes.iter().rev() {
            stack.push(n);
        }
        let s1 = stack.clone();
        let t1 = loom::thread::spawn(move || s1.pop());
        let s2 = stack.clone();
        let t2 = loom::thread::spawn(move || {
            let x = s2.pop();
            let y = s2.pop();
            if let Some(x) = x {
                s2.push(x);
            }
            y
        });
        let held1 = t1.join().unwrap();
        let held2 = t2.join().unwrap();
        let mut on_stack = Vec::new();
        while let Some(n) = stack.pop() {
            assert!(!on_stack.contains(&n), "node {n:#x} is on the stack twice (a cycle)");
            on_stack.push(n);
            assert!(on_stack.len() <= 3, "the stack grew past its three nodes");
        }
        for held in [held1, held2].into_iter().flatten() {
            assert!(!on_stack.contains(&held), "node {held:#x} is in use and still on the stack (ABA)");
        }
    });
}
