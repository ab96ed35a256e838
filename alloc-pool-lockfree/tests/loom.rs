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
//!   block it was handed (its remote bit, and the slab's pending flag): every block is accounted
//!   for exactly once, and what the remote thread wrote into its block before freeing it is what
//!   the owner reads after taking the bits back (links and payloads are loom cells: any read not
//!   ordered after its write is reported).
//! - Two threads free blocks of one state word while the owner collects: whichever raises the
//!   pending flag, and whenever the owner swaps it down, no block is left with its bit set under
//!   a lowered flag (it would never be taken back).
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
                loom::thread::spawn(move || bits.free_other(BIT, || ()).map(|_| ()))
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
        loom::thread::spawn(move || bits.free_other(BIT, || ()).map(|_| ()))
    };
    (bits, other)
}

/// The owner takes back a block another thread freed (its remote bit is set) as the pool's
/// collect does, with the rest of its word.
fn take_back_as_collect_does(bits: &StateBits) -> Result<(), Refused> {
    match bits.take_remote() {
        (BIT, 0) => Ok(()),
        (0, BIT) => Err(Refused::AlreadyFree),
        other => panic!("the block's remote bit was set, and only its: {other:?}"),
    }
}

#[test]
fn the_owner_and_another_thread_freeing_one_block_make_one_report_and_one_free() {
    loom::model(|| {
        let (bits, other) = handed_out_and_freed_elsewhere();
        let mine = bits.free_owner(BIT);
        let theirs = other.join().unwrap();
        // The owner takes back what the other thread freed.
        let back = theirs.is_ok().then(|| take_back_as_collect_does(&bits));
        let errors = [Some(mine), Some(theirs), back].into_iter().flatten().filter(Result::is_err).count();
        let pushes = [Some(mine), back].into_iter().flatten().filter(Result::is_ok).count();
        assert_eq!(errors, 1, "exactly one of the two frees is reported: {mine:?} {theirs:?} {back:?}");
        assert_eq!(pushes, 1, "the block goes onto the local list once: {mine:?} {theirs:?} {back:?}");
        assert_eq!(bits.load(), (0, 0), "the block ends free, its bits clear");
    });
}

#[test]
fn a_block_freed_twice_at_once_is_never_handed_out_while_its_remote_bit_is_set() {
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
    // The block was freed by another thread and waits for its owner (both bits set); the owner
    // takes it back (remote bit, then allocated bit) while a third free of it, a double free,
    // runs. That free may load the allocated bit before the owner clears it and set the remote
    // bit after: then it is not refused at once, but the owner's next hand-out of the block
    // refuses it (reported there), and taking the late free back leaves the block free once.
    // Either way: exactly one report, and never two owners of the block.
    loom::model(|| {
        let bits = Arc::new(StateBits::new());
        assert_eq!(bits.hand_out(BIT), Ok(()));
        assert_eq!(bits.free_other(BIT, || ()), Ok(true));
        let late = {
            let bits = bits.clone();
            loom::thread::spawn(move || bits.free_other(BIT, || ()).map(|_| ()))
        };
        assert_eq!(take_back_as_collect_does(&bits), Ok(()), "the first remote free is taken back");
        let late = late.join().unwrap();
        // The block is on the owner's local list: its next allocation of the class pops it.
        let again = bits.hand_out(BIT);
        let reports = [late, again].iter().filter(|r| r.is_err()).count();
        assert_eq!(reports, 1, "exactly one report: late free {late:?}, hand-out {again:?}");
        if late.is_ok() {
            // Refused at the hand-out; the late free's bit waits and is taken back.
            assert_eq!(take_back_as_collect_does(&bits), Ok(()));
            assert_eq!(bits.load(), (0, 0), "the block ends free, once");
        } else {
            assert_eq!(bits.load(), (BIT, 0), "the block is handed out, to one caller");
        }
    });
}

/// A slab of two blocks as the pool keeps one: their state word (bits 0 and 1), its lists, both
/// blocks handed out.
struct Slab {
    bits: StateBits,
    lists: SlabLists,
    blocks: [NonNull<Block>; 2],
}

impl Slab {
    fn new() -> Self {
        let slab = Slab { bits: StateBits::new(), lists: SlabLists::new(), blocks: [block(), block()] };
        for i in 0..2 {
            assert_eq!(slab.bits.hand_out(1 << i), Ok(()));
            // SAFETY: this thread is the owner; it carves both blocks.
            unsafe { slab.lists.count_carved() };
        }
        slab
    }

    /// Another thread's free of block `i`, as the pool's remote free does: it writes into the
    /// block (its last use), sets the remote bit, and raises the pending flag for the word's
    /// first bit.
    fn free_remote(&self, i: usize) {
        let b = self.blocks[i].as_ptr();
        // SAFETY: the block was handed to this thread.
        unsafe { (*b).payload.with_mut(|p| *p = 40 + i as u64) };
        match self.bits.free_other(1 << i, || ()) {
            Ok(first) => {
                if first {
                    self.lists.note_remote();
                }
            }
            Err(e) => panic!("a single free refused: {e:?}"),
        }
    }

    /// The owner's collect, as the heap's: the flag, then the word's bits, onto the local list.
    /// Returns how many blocks came back.
    fn collect(&self) -> usize {
        if !self.lists.take_pending() {
            return 0;
        }
        let (mut taken, refused) = self.bits.take_remote();
        assert_eq!(refused, 0, "no double free here");
        let mut n = 0;
        while taken != 0 {
            let i = taken.trailing_zeros() as usize;
            taken &= taken - 1;
            // SAFETY: the owner side; the take gave the block back.
            unsafe { self.lists.push_collected(self.blocks[i].cast()) };
            // SAFETY: the take ordered the freeing thread's write before this read.
            assert_eq!(unsafe { (*self.blocks[i].as_ptr()).payload.with(|p| *p) }, 40 + i as u64);
            n += 1;
        }
        n
    }

    /// The blocks on the local list, each once; at the end none is in use.
    fn drain(&self) -> Vec<NonNull<Link>> {
        // SAFETY: the owner side.
        assert_eq!(unsafe { self.lists.used() }, 0, "every block is back");
        let mut seen = Vec::new();
        // SAFETY: as above.
        while let Some(x) = unsafe { self.lists.pop_local() } {
            assert!(!seen.contains(&x), "a block is on the list twice");
            seen.push(x);
        }
        seen
    }
}

#[test]
fn local_and_remote_frees_lose_and_duplicate_nothing() {
    loom::model(|| {
        let slab = Arc::new(Shared(Slab::new()));
        // The owner keeps block 0; block 1 was handed to another thread, which frees it.
        let remote = {
            let slab = slab.clone();
            loom::thread::spawn(move || slab.0.free_remote(1))
        };
        // Meanwhile the owner frees block 0 locally and allocates it again, then frees it.
        let a = slab.0.blocks[0].cast::<Link>();
        assert_eq!(slab.0.bits.free_owner(1), Ok(()));
        // SAFETY: the owner's own block and list.
        unsafe {
            assert_eq!(slab.0.lists.push_local(a), 1);
            assert_eq!(slab.0.lists.pop_local(), Some(a), "block 0 is free again");
        }
        assert_eq!(slab.0.bits.hand_out(1), Ok(()));
        assert_eq!(slab.0.bits.free_owner(1), Ok(()));
        // SAFETY: as above.
        unsafe { slab.0.lists.push_local(a) };
        // A collect racing the free takes block 1 or leaves it for the next one.
        let mut n = slab.0.collect();
        remote.join().unwrap();
        n += slab.0.collect();
        assert_eq!(n, 1, "the remote free is taken back once");
        assert_eq!(slab.0.drain().len(), 2);
        assert_eq!(slab.0.bits.load(), (0, 0));
    });
}

#[test]
fn remote_frees_racing_the_owners_collect_are_all_collected() {
    loom::model(|| {
        let slab = Arc::new(Shared(Slab::new()));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let slab = slab.clone();
                loom::thread::spawn(move || slab.0.free_remote(i))
            })
            .collect();
        // The owner collects while they free: it may take one block, both, or none, and may
        // lower the flag one of them raised.
        let mut n = slab.0.collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whatever the order, a bit left behind is under a raised flag: the next collect gets it.
        let n1 = n;
        n += slab.0.collect();
        assert_eq!(
            n,
            2,
            "both remote frees are taken back, once each: {n1} {:?} {}",
            slab.0.bits.load(),
            slab.0.lists.has_remote()
        );
        assert_eq!(slab.0.drain().len(), 2);
        assert_eq!(slab.0.bits.load(), (0, 0));
        assert!(!slab.0.lists.has_remote() || slab.0.collect() == 0, "a raised flag over nothing is harmless");
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
