//! loom model checks of the pool's concurrent protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p alloc-pool-lockfree --test loom --release`.
//!
//! - Two threads that do not own a block free it at once: exactly one wins (its remote bit), the
//!   other is told the block is already free (and would report a double free).
//! - The owner and another thread free the same block at once: exactly one report, and the block
//!   goes onto the owner's local list exactly once; with the owner allocating the block again in
//!   between, never more than one report and the block is still on the list once at the end.
//! - A double free racing the owner's taking back of a remotely freed block is reported once, at
//!   the free or at the block's next hand-out, and the block never gets two owners.
//! - An owner allocates from a slab's local list and frees to it while another thread frees a
//!   block it was handed to the slab's remote list: every block is accounted for exactly once,
//!   and what the remote thread wrote into its block before freeing it is what the owner reads
//!   after taking the remote list (links and payloads are loom cells: any read not ordered after
//!   its write is reported).
#![cfg(loom)]

use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::Link;
use alloc_pool_lockfree::protocol::{Refused, SlabLists, StateBits};
use core::ptr::NonNull;
use loom::sync::Arc;

/// A block as the pool lays it out: the link (its first word while free), then the payload.
#[repr(C)]
struct Block {
    link: Link,
    payload: UnsafeCell<u64>,
}

fn block() -> NonNull<Block> {
    NonNull::from(Box::leak(Box::new(Block { link: Link::new(), payload: UnsafeCell::new(0) })))
}

struct Shared<T>(T);
// SAFETY: the structures under test are thread-safe; the raw block pointers inside point at
// leaked blocks whose ownership the protocol hands over.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// The block's bit in its state word.
const BIT: u64 = 1 << 5;

#[test]
fn two_threads_freeing_one_block_exactly_one_wins() {
    loom::model(|| {
        let bits = Arc::new(StateBits::new());
        assert_eq!(bits.hand_out(BIT), Ok(()));
        let frees: Vec<_> = (0..2)
            .map(|_| {
                let bits = bits.clone();
                loom::thread::spawn(move || bits.free_other(BIT))
            })
            .collect();
        let results: Vec<_> = frees.into_iter().map(|t| t.join().unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "exactly one of two racing frees wins: {results:?}");
        assert!(results.contains(&Err(Refused::AlreadyFree)), "the loser is told it is a double free");
    });
}

/// A block handed out by its owner, and another thread already freeing it (the misuse under
/// test: the owner frees it too).
fn handed_out_and_freed_elsewhere() -> (Arc<StateBits>, loom::thread::JoinHandle<Result<(), Refused>>) {
    let bits = Arc::new(StateBits::new());
    assert_eq!(bits.hand_out(BIT), Ok(()));
    let other = {
        let bits = bits.clone();
        loom::thread::spawn(move || bits.free_other(BIT))
    };
    (bits, other)
}

/// The owner takes back a block it found on the remote list as the pool's collect does: the
/// allocated bit first, the remote bits of the word afterwards, in one go.
fn take_back_as_collect_does(bits: &StateBits) -> Result<(), Refused> {
    let r = bits.take_back_allocated(BIT);
    bits.clear_remote(BIT);
    r
}

#[test]
fn the_owner_and_another_thread_freeing_one_block_make_one_report_and_one_free() {
    loom::model(|| {
        let (bits, other) = handed_out_and_freed_elsewhere();
        let mine = bits.free_owner(BIT);
        let theirs = other.join().unwrap();
        // The owner takes back what the other thread pushed on the remote list.
        let back = theirs.is_ok().then(|| take_back_as_collect_does(&bits));
        let errors = [Some(mine), Some(theirs), back].into_iter().flatten().filter(Result::is_err).count();
        let pushes = [Some(mine), back].into_iter().flatten().filter(Result::is_ok).count();
        assert_eq!(errors, 1, "exactly one of the two frees is reported: {mine:?} {theirs:?} {back:?}");
        assert_eq!(pushes, 1, "the block goes onto the local list once: {mine:?} {theirs:?} {back:?}");
        assert_eq!(bits.load(), (0, 0), "the block ends free, its bits clear");
    });
}

#[test]
fn a_block_freed_twice_at_once_is_never_handed_out_while_on_the_remote_list() {
    loom::model(|| {
        let (bits, other) = handed_out_and_freed_elsewhere();
        let mine = bits.free_owner(BIT);
        // Freed onto the local list: the owner's next allocation pops it again.
        let again = mine.is_ok().then(|| bits.hand_out(BIT));
        let theirs = other.join().unwrap();
        let back = theirs.is_ok().then(|| take_back_as_collect_does(&bits));
        let errors = [Some(mine), Some(theirs), again, back].into_iter().flatten().filter(Result::is_err).count();
        let pushes = [Some(mine), back].into_iter().flatten().filter(Result::is_ok).count();
        let pops = usize::from(again.is_some());
        // A free that lands after the block was handed out again frees the new allocation (no
        // allocator can tell the two apart); every other order is reported once.
        assert!(errors <= 1, "at most one report: {mine:?} {again:?} {theirs:?} {back:?}");
        // At the end the block is either on the local list once (bits clear) or handed out
        // once (its allocated bit set, the other thread's free reported): never both, never
        // on a list twice.
        let on_list = pushes - pops;
        let expect = if on_list == 1 { (0, 0) } else { (BIT, 0) };
        assert!(on_list <= 1, "the block is on the local list at most once");
        assert_eq!(bits.load(), expect, "its bits say what happened to it: {mine:?} {again:?} {theirs:?} {back:?}");
        if on_list == 0 {
            assert_eq!(errors, 1, "the block stayed in use: the other free was reported");
        }
    });
}

#[test]
fn a_free_racing_the_owners_collect_of_the_same_block_is_reported_once() {
    // The block was freed by another thread and waits on the remote list (both bits set); the
    // owner takes it back (allocated bit, then remote bit) while a third free of it, a double
    // free, runs. That free may load the allocated bit before the owner clears it and set the
    // remote bit after: then it is not refused at once, but the owner's next hand-out of the
    // block refuses it (reported there), and taking the late free back leaves the block free
    // once. Either way: exactly one report, and never two owners of the block.
    loom::model(|| {
        let bits = Arc::new(StateBits::new());
        assert_eq!(bits.hand_out(BIT), Ok(()));
        assert_eq!(bits.free_other(BIT), Ok(()));
        let late = {
            let bits = bits.clone();
            loom::thread::spawn(move || bits.free_other(BIT))
        };
        assert_eq!(take_back_as_collect_does(&bits), Ok(()), "the first remote free is taken back");
        let late = late.join().unwrap();
        // The block is on the owner's local list: its next allocation of the class pops it.
        let again = bits.hand_out(BIT);
        let reports = [late, again].iter().filter(|r| r.is_err()).count();
        assert_eq!(reports, 1, "exactly one report: late free {late:?}, hand-out {again:?}");
        if late.is_ok() {
            // Refused at the hand-out; the late free waits on the remote list and is taken back.
            assert_eq!(take_back_as_collect_does(&bits), Ok(()));
            assert_eq!(bits.load(), (0, 0), "the block ends free, once");
        } else {
            assert_eq!(bits.load(), (BIT, 0), "the block is handed out, to one caller");
        }
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
        let collected = unsafe { lists.0.collect_remote(2, |_| true) };
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
        let mut n = unsafe { lists.0.collect_remote(2, |_| true) };
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: as above.
        n += unsafe { lists.0.collect_remote(2, |_| true) };
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
