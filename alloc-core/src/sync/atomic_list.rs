//! A lock-free LIFO free list: Treiber's stack (R. K. Treiber, "Systems Programming: Coping with
//! Parallelism", IBM RJ 5118, 1986) with a version tag in the head word against ABA.
//!
//! The head is one 64-bit word: the node address in the low bits and a tag in the high bits that
//! every successful pop increments. Without the tag, a pop that read head `A` and its successor
//! `B`, then stalled while other threads popped `A`, popped `B`, and pushed `A` back, would swing
//! the head to `B`, a block now in use: the ABA problem. With it, the stalled CAS sees a new tag
//! and retries. `TAGGED = false` builds the untagged stack, kept so the loom model test can show
//! the model catches exactly that interleaving.
//!
//! Nodes are the free blocks themselves; their first word is an atomic link, read with `Relaxed`
//! even when another thread may be reusing the block (a racy read of a stale link is harmless:
//! the tagged CAS that would act on it fails), so there is no data race in the Rust sense. Blocks
//! must stay mapped while any thread may still read their link: pools never unmap free blocks.

use super::atomic::{spin_hint, AtomicU64, AtomicUsize, Ordering};
use core::ptr::NonNull;

/// The link word at the start of every free block on an [`AtomicFreeList`].
#[repr(transparent)]
#[derive(Debug)]
pub struct Link {
    next: AtomicUsize,
}

impl Link {
    /// A link to nothing (for nodes made outside a pool, as in tests).
    pub fn new() -> Self {
        Link { next: AtomicUsize::new(0) }
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

/// Bits of the head word that hold the address: user-space addresses fit in 48 bits on the
/// 64-bit platforms we support (x86_64, aarch64 with 4-level tables) and trivially on 32-bit.
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

/// A lock-free LIFO list of free blocks, ABA-safe when `TAGGED` (the default).
#[derive(Debug)]
pub struct AtomicFreeList<const TAGGED: bool = true> {
    /// `tag << 48 | address of the newest node` (0 when empty).
    head: AtomicU64,
}

impl<const TAGGED: bool> Default for AtomicFreeList<TAGGED> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const TAGGED: bool> AtomicFreeList<TAGGED> {
    /// An empty list.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        AtomicFreeList { head: AtomicU64::new(0) }
    }

    /// An empty list.
    #[cfg(loom)]
    pub fn new() -> Self {
        AtomicFreeList { head: AtomicU64::new(0) }
    }

    #[inline(always)]
    fn addr(word: u64) -> usize {
        (word & ADDR_MASK) as usize
    }

    #[inline(always)]
    fn next_tag(word: u64) -> u64 {
        if TAGGED {
            (word >> ADDR_BITS).wrapping_add(1) << ADDR_BITS
        } else {
            0
        }
    }

    /// Puts `node` on the list.
    ///
    /// # Safety
    ///
    /// - `node` points to a [`Link`] at the start of a block that stays mapped for as long as the
    ///   list is used, and whose address fits in 48 bits;
    /// - the block is not on any list and the caller gives up using it until it is popped.
    #[inline]
    pub unsafe fn push(&self, node: NonNull<Link>) {
        let addr = node.as_ptr() as usize as u64;
        debug_assert!(addr & !ADDR_MASK == 0, "address {addr:#x} does not fit in 48 bits");
        // Relaxed: the CAS below re-reads on failure; a stale first read only costs a retry.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller owns the block until the CAS publishes it.
            unsafe { node.as_ref() }.next.store(Self::addr(head), Ordering::Relaxed);
            // Release on success: the link (and whatever the freeing thread wrote into the block)
            // happens-before any pop that acquires this head.
            let new = (head & !ADDR_MASK) | addr;
            match self.head.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => {
                    head = now;
                    spin_hint();
                }
            }
        }
    }

    /// Takes the newest block off the list.
    #[inline]
    pub fn pop(&self) -> Option<NonNull<Link>> {
        // Acquire: pairs with the Release CAS of the push that published this head, so its link
        // is visible.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let node = NonNull::new(Self::addr(head) as *mut Link)?;
            // SAFETY: nodes on the list point at blocks that stay mapped (push's contract). The
            // block may have been popped and reused by another thread since we read `head`; then
            // this read sees a stale value (atomic, so no data race) and the tagged CAS fails.
            let next = unsafe { node.as_ref() }.next.load(Ordering::Relaxed) as u64;
            let new = Self::next_tag(head) | next;
            // Acquire on success: the block's contents written before its push are visible to us.
            match self.head.compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(node),
                Err(now) => {
                    head = now;
                    spin_hint();
                }
            }
        }
    }

    /// True when the list looked empty at the moment of the call.
    pub fn is_empty(&self) -> bool {
        Self::addr(self.head.load(Ordering::Relaxed)) == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    #[test]
    fn single_thread_lifo() {
        let list = AtomicFreeList::<true>::new();
        let nodes: Vec<NonNull<Link>> = (0..4).map(|_| NonNull::from(Box::leak(Box::new(Link::new())))).collect();
        for &n in &nodes {
            // SAFETY: leaked boxes stay valid; each is pushed once.
            unsafe { list.push(n) };
        }
        for &n in nodes.iter().rev() {
            assert_eq!(list.pop(), Some(n));
        }
        assert!(list.pop().is_none() && list.is_empty());
        for n in nodes {
            // SAFETY: each node came from Box::leak and is off the list.
            drop(unsafe { Box::from_raw(n.as_ptr()) });
        }
    }

    #[test]
    fn threads_pushing_and_popping_lose_nothing() {
        let list = std::sync::Arc::new(AtomicFreeList::<true>::new());
        // Fewer under Miri, which interprets every step.
        let (total, rounds) = if cfg!(miri) { (4 * 8, 100) } else { (4 * 256, 50_000) };
        for _ in 0..total {
            // SAFETY: a leaked box, pushed once.
            unsafe { list.push(NonNull::from(Box::leak(Box::new(Link::new())))) };
        }
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let list = list.clone();
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        if let Some(n) = list.pop() {
                            // SAFETY: popped, so ours; pushed back once.
                            unsafe { list.push(n) };
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        while let Some(n) = list.pop() {
            assert!(seen.insert(n.as_ptr() as usize), "a node came off the list twice");
            // SAFETY: each node came from Box::leak, and is off the list for good.
            drop(unsafe { Box::from_raw(n.as_ptr()) });
        }
        assert_eq!(seen.len(), total);
    }
}
