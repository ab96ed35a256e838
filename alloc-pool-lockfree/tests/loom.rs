//! loom model checks of the pool's concurrent protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p alloc-pool-lockfree --test loom --release`.
//!
//! - Two threads free the same block at once: exactly one wins its header word, the other is
//!   told the block is already free (and would report a double free).
//! - An owner allocates from a slab's local list and frees to it while another thread frees a
//!   block it was handed to the slab's remote list: every block is accounted for exactly once,
//!   and what the remote thread wrote into its block before freeing it is what the owner reads
//!   after taking the remote list (links and payloads are loom cells: any read not ordered after
//!   its write is reported).
#![cfg(loom)]

use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::Link;
use alloc_pool_lockfree::protocol::{BlockWord, Refused, SlabLists};
use core::ptr::NonNull;
use loom::sync::Arc;

/// A block as the pool lays it out: the link (header's first word), the state word, a payload.
#[repr(C)]
struct Block {
    link: Link,
    word: BlockWord,
    payload: UnsafeCell<u64>,
}

fn block() -> NonNull<Block> {
    NonNull::from(Box::leak(Box::new(Block { link: Link::new(), word: BlockWord::new(), payload: UnsafeCell::new(0) })))
}

struct Shared<T>(T);
// SAFETY: the structures under test are thread-safe; the raw block pointers inside point at
// leaked blocks whose ownership the protocol hands over.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

const SECRET: usize = 0x5eed_cafe;

#[test]
fn two_threads_freeing_one_block_exactly_one_wins() {
    loom::model(|| {
        let b = block();
        let addr = b.as_ptr() as usize;
        // SAFETY: a leaked block, alive for the model run.
        unsafe { b.as_ref() }.word.mark_allocated(BlockWord::allocated(SECRET, addr, 3));
        let shared = Arc::new(Shared(b));
        let frees: Vec<_> = (0..2)
            .map(|_| {
                let s = shared.clone();
                loom::thread::spawn(move || {
                    // SAFETY: as above.
                    unsafe { s.0.as_ref() }
                        .word
                        .try_free(BlockWord::allocated(SECRET, addr, 3), BlockWord::freed(SECRET, addr))
                })
            })
            .collect();
        let results: Vec<_> = frees.into_iter().map(|t| t.join().unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "exactly one of two racing frees wins: {results:?}");
        assert!(results.contains(&Err(Refused::AlreadyFree)), "the loser is told it is a double free");
    });
}

#[test]
fn local_and_remote_frees_lose_and_duplicate_nothing() {
    loom::model(|| {
        let lists = Arc::new(Shared(SlabLists::new()));
        let (a, b) = (block(), block());
        // The owner carves two blocks; hands `b` to another thread, keeps `a`.
        // SAFETY: the owner (this thread) counts blocks it hands out.
        unsafe {
            lists.0.count_carved();
            lists.0.count_carved();
        }
        let remote = {
            let lists = lists.clone();
            let b = b.as_ptr() as usize;
            loom::thread::spawn(move || {
                let blk = b as *mut Block;
                // The other thread uses the block, then frees it.
                // SAFETY: the block was handed to this thread.
                unsafe { (*blk).payload.with_mut(|p| *p = 42) };
                // SAFETY: this thread frees the block it holds: onto the remote list.
                unsafe { lists.0.push_remote(NonNull::new_unchecked(blk).cast()) };
            })
        };
        // Meanwhile the owner frees `a` locally and allocates again.
        // SAFETY: the owner's own block and list.
        unsafe {
            let left = lists.0.push_local(a.cast());
            assert_eq!(left, 1);
            let again = lists.0.pop_local().expect("a is free again");
            assert_eq!(again, a.cast());
            lists.0.push_local(again);
        }
        remote.join().unwrap();
        // The owner collects the remote free and sees what the other thread wrote.
        // SAFETY: the owner side.
        let collected = unsafe { lists.0.collect_remote() };
        assert_eq!(collected, 1);
        // SAFETY: as above.
        assert_eq!(unsafe { lists.0.used() }, 0, "both blocks are back");
        let mut seen = Vec::new();
        // SAFETY: as above.
        while let Some(x) = unsafe { lists.0.pop_local() } {
            assert!(!seen.contains(&x), "a block is on the list twice");
            seen.push(x);
            if x == b.cast() {
                // SAFETY: the block is the owner's again; the take ordered the write before this.
                assert_eq!(unsafe { (*b.as_ptr()).payload.with(|p| *p) }, 42);
            }
        }
        assert_eq!(seen.len(), 2);
    });
}

#[test]
fn remote_frees_racing_the_owners_collect_are_all_collected() {
    loom::model(|| {
        let lists = Arc::new(Shared(SlabLists::new()));
        let blocks: Vec<usize> = (0..2).map(|_| block().as_ptr() as usize).collect();
        // SAFETY: the owner hands out both blocks.
        unsafe {
            lists.0.count_carved();
            lists.0.count_carved();
        }
        let threads: Vec<_> = blocks
            .iter()
            .map(|&b| {
                let lists = lists.clone();
                loom::thread::spawn(move || {
                    // SAFETY: each thread frees the block it holds.
                    unsafe { lists.0.push_remote(NonNull::new_unchecked(b as *mut Link)) };
                })
            })
            .collect();
        // SAFETY: the owner side, racing the pushes.
        let mut n = unsafe { lists.0.collect_remote() };
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: as above.
        n += unsafe { lists.0.collect_remote() };
        assert_eq!(n, 2);
        // SAFETY: as above.
        assert_eq!(unsafe { lists.0.used() }, 0);
    });
}

/// The same race with a free that loads the word, compares, and stores (no read-modify-write):
/// the model finds the interleaving where both threads see "allocated" and both win.
#[test]
#[should_panic(expected = "exactly one of two racing frees wins")]
fn a_free_without_compare_and_swap_is_caught_by_the_model() {
    use alloc_core::sync::atomic::{AtomicUsize, Ordering};
    loom::model(|| {
        let word = Arc::new(AtomicUsize::new(1));
        let frees: Vec<_> = (0..2)
            .map(|_| {
                let w = word.clone();
                loom::thread::spawn(move || {
                    if w.load(Ordering::Relaxed) == 1 {
                        w.store(2, Ordering::Relaxed);
                        Ok(())
                    } else {
                        Err(())
                    }
                })
            })
            .collect();
        let won = frees.into_iter().map(|t| t.join().unwrap()).filter(Result::is_ok).count();
        assert_eq!(won, 1, "exactly one of two racing frees wins");
    });
}
