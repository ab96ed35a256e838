//! The remote-free list: many threads push free blocks, one owner takes them all at once.
//!
//! This is the thread-free list of mimalloc's sharded free lists (D. Leijen, B. Zorn, L. de
//! Moura, "Mimalloc: Free List Sharding in Action", MSR-TR-2019-18): each block belongs to one
//! owner (a thread's heap, a slab); the owner allocates from and frees to lists only it touches,
//! and other threads return blocks to it by pushing onto this list, which the owner empties with
//! one `swap`. It replaces the tagged Treiber stack this module once held:
//!
//! - **No ABA.** ABA needs a pop that reads a node's successor and then compares the head: here
//!   nothing is popped one at a time. A push only checks that the head is still the value it
//!   linked its node to; if the head went A, then elsewhere, then A again, A is the current head
//!   and linking to it is right. `take_all` swaps the whole list out and reads no link first.
//! - **No data race.** A Treiber pop reads the link of a node another thread may already have
//!   popped and be writing (a plain write racing an atomic read: a data race under Rust's
//!   model). Here a link is only written by the thread that owns the block (the pusher, before
//!   publishing it) and only read by the owner after a `swap` that acquires the pushes, so every
//!   read is ordered after the write it sees. Links are plain memory ([`UnsafeCell`]), which loom
//!   checks for exactly that ordering.
//!
//! Orderings: a push publishes with a `Release` CAS; `take_all` is an `Acquire` swap. Every change
//! of the head is a read-modify-write, so each push continues the release sequence of the pushes
//! before it, and one acquiring swap sees every link of the chain it takes.

use super::atomic::{spin_hint, AtomicPtr, Ordering};
use super::cell::UnsafeCell;
use core::ptr::NonNull;

/// The link word at the start of a free block on a [`RemoteList`]: plain memory, written by the
/// block's current owner only.
#[derive(Debug)]
#[cfg_attr(not(loom), repr(transparent))]
pub struct Link {
    next: UnsafeCell<*mut Link>,
}

// SAFETY: a link is only read or written by the thread that owns its block at the time (see the
// module doc), with the list's atomics ordering the hand-over.
unsafe impl Send for Link {}
// SAFETY: as above.
unsafe impl Sync for Link {}

impl Link {
    /// A link to nothing (for nodes made outside a heap, as in the loom models).
    pub fn new() -> Self {
        Link { next: UnsafeCell::new(core::ptr::null_mut()) }
    }

    /// The node after `node` in a chain taken with [`RemoteList::take_all`] (or built by the
    /// caller with [`Link::set_next`]).
    ///
    /// # Safety
    ///
    /// The caller owns `node` (it took the chain holding it, or built it).
    #[inline(always)]
    pub unsafe fn next(node: NonNull<Link>) -> Option<NonNull<Link>> {
        // SAFETY: the caller owns the node; its link was written before it was handed over, and
        // the hand-over (take_all's Acquire swap) orders that write before this read.
        NonNull::new(unsafe { node.as_ref() }.next.with(|p| unsafe { *p }))
    }

    /// Points `node`'s link at `next`, building a chain to push with [`RemoteList::push_chain`].
    ///
    /// # Safety
    ///
    /// The caller owns `node`, a block at least a pointer long and aligned to one.
    #[inline(always)]
    pub unsafe fn set_next(node: NonNull<Link>, next: Option<NonNull<Link>>) {
        let next = next.map_or(core::ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: the caller owns the node, so nothing reads or writes its link concurrently.
        unsafe { node.as_ref() }.next.with_mut(|p| unsafe { *p = next });
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

/// Many pushers, one owner who takes everything at once. See the module doc.
#[derive(Debug)]
pub struct RemoteList {
    /// The newest pushed block; each block's link points at the one pushed before it.
    head: AtomicPtr<Link>,
}

impl Default for RemoteList {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoteList {
    /// An empty list.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RemoteList { head: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// An empty list.
    #[cfg(loom)]
    pub fn new() -> Self {
        RemoteList { head: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// Pushes one block.
    ///
    /// # Safety
    ///
    /// `node` points to a [`Link`] at the start of a block the caller owns, is on no list, and
    /// the caller gives up the block: it now belongs to whoever takes the list.
    #[inline]
    pub unsafe fn push(&self, node: NonNull<Link>) {
        // SAFETY: forwarded: a chain of one.
        unsafe { self.push_chain(node, node) }
    }

    /// Pushes a chain `first ..= last` built with [`Link::set_next`], in one CAS.
    ///
    /// # Safety
    ///
    /// As for [`RemoteList::push`], for every block of the chain; `last` is reachable from
    /// `first` through the links.
    #[inline]
    pub unsafe fn push_chain(&self, first: NonNull<Link>, last: NonNull<Link>) {
        // Relaxed: the value only seeds the CAS, which re-reads on failure.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is still ours until the CAS below publishes it.
            unsafe { Link::set_next(last, NonNull::new(head)) };
            // Release on success: our link writes (and whatever we wrote into the blocks)
            // happen-before the owner's acquiring `take_all`.
            match self.head.compare_exchange_weak(head, first.as_ptr(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => {
                    head = now;
                    spin_hint();
                }
            }
        }
    }

    /// Takes every block pushed so far, newest first; the caller now owns them all and walks the
    /// chain with [`Link::next`].
    #[inline]
    pub fn take_all(&self) -> Option<NonNull<Link>> {
        // Acquire: pairs with the Release of every push in the chain (one release sequence).
        NonNull::new(self.head.swap(core::ptr::null_mut(), Ordering::Acquire))
    }

    /// True when the list looked empty at the moment of the call (a hint for the owner's fast
    /// path; blocks pushed right after are taken next time).
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Relaxed: only a hint; take_all does the synchronising.
        self.head.load(Ordering::Relaxed).is_null()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    fn chain_len(mut n: Option<NonNull<Link>>, seen: &mut std::collections::HashSet<usize>) -> usize {
        let mut len = 0;
        while let Some(node) = n {
            assert!(seen.insert(node.as_ptr() as usize), "a node was taken twice");
            len += 1;
            // SAFETY: taken with take_all, so ours.
            n = unsafe { Link::next(node) };
        }
        len
    }

    #[test]
    fn pushes_from_many_threads_are_all_taken_once() {
        let list = std::sync::Arc::new(RemoteList::new());
        let per = if cfg!(miri) { 20 } else { 20_000 };
        let pushers: Vec<_> = (0..3)
            .map(|_| {
                let list = list.clone();
                std::thread::spawn(move || {
                    for _ in 0..per {
                        // SAFETY: a leaked box, pushed once; the list's taker frees it.
                        unsafe { list.push(NonNull::from(Box::leak(Box::new(Link::new())))) };
                    }
                })
            })
            .collect();
        // The owner takes concurrently with the pushes.
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        while total < 3 * per {
            total += chain_len(list.take_all(), &mut seen);
            if pushers.iter().all(|p| p.is_finished()) {
                total += chain_len(list.take_all(), &mut seen);
                break;
            }
        }
        for p in pushers {
            p.join().unwrap();
        }
        total += chain_len(list.take_all(), &mut seen);
        assert_eq!(total, 3 * per);
        assert!(list.is_empty());
        for a in seen {
            // SAFETY: every node came from Box::leak and was taken exactly once.
            drop(unsafe { Box::from_raw(a as *mut Link) });
        }
    }

    #[test]
    fn a_chain_goes_on_in_one_push() {
        let list = RemoteList::new();
        let nodes: Vec<NonNull<Link>> = (0..3).map(|_| NonNull::from(Box::leak(Box::new(Link::new())))).collect();
        // SAFETY: the nodes are ours; chain 0 -> 1 -> 2, pushed once.
        unsafe {
            Link::set_next(nodes[0], Some(nodes[1]));
            Link::set_next(nodes[1], Some(nodes[2]));
            list.push_chain(nodes[0], nodes[2]);
        }
        let mut seen = std::collections::HashSet::new();
        assert_eq!(chain_len(list.take_all(), &mut seen), 3);
        for n in nodes {
            // SAFETY: from Box::leak, off the list.
            drop(unsafe { Box::from_raw(n.as_ptr()) });
        }
    }
}
