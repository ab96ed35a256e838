//! The two concurrent pieces of the pool, small enough for loom to check every interleaving
//! (`RUSTFLAGS="--cfg loom" cargo test -p alloc-pool-lockfree --test loom --release`):
//!
//! - [`StateBits`]: a slab's record of which of its blocks are in use, two bits per 16-byte
//!   granule and no header on the block. The *allocated* bit is written by the slab's owner alone,
//!   with a plain load and store (no read-modify-write, no lock prefix); the *remote* bit is set
//!   with one `fetch_or` by a thread that frees a block it does not own, and cleared by the owner
//!   when it takes the block back. So a free by the owner costs a load and a store, and of two
//!   frees of one block (one after the other, or on two threads at once) the second is reported:
//!   at the free when it is by another thread, or by the owner after its own free, otherwise
//!   (the owner's free after another thread's, or two at once) when the owner next hands the
//!   block out, takes it back or gives its slab back, before it can be given to two callers.
//! - [`SlabLists`]: a slab's free blocks. The owner thread pops and pushes on a plain local list
//!   (no atomics, no contention). A block another thread frees goes on no list: its remote bit
//!   *is* the record. The thread whose `fetch_or` found the word empty raises the slab's
//!   *pending* flag (a swap); when its local list runs dry the owner swaps the flag down,
//!   then takes each word's remote bits with one swap and links their blocks into its local
//!   list. So a free from another thread is one atomic read-modify-write, not two: until
//!   2026-12-02 the block was also pushed with a compare-and-swap on a list in the slab, and that
//!   second lock-prefixed instruction on a line the owner writes was a quarter of the time of a
//!   producer/consumer program (xmalloc-test's shape: 1.30 x mimalloc's CPU time with it, 1.00 x
//!   without). No thread but the owner writes into a freed block, so no link can be torn or
//!   looped by a racing double free, and the owner touches a block only after the swap that
//!   orders it after the freeing thread's last write.

use alloc_core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::Link;
use core::ptr::NonNull;

/// Why a free (or a hand-out) was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The block is free already (or freed twice at once): a double free.
    AlreadyFree,
    /// No block in use starts here: freed and taken back already, never handed out, or not a
    /// block start. The caller tells these apart on its cold path.
    NotInUse,
}

/// The state of 64 granules of a slab: bit `i` of each word is granule `i`.
#[derive(Debug)]
pub struct StateBits {
    /// Set while the block starting at the granule is in use. Owner only writes (load + store);
    /// any thread may read.
    allocated: AtomicU64,
    /// Set by a non-owner's free until the owner takes the block back. Any thread sets
    /// (`fetch_or`); the owner clears (`swap`, a word at a time).
    remote: AtomicU64,
}

impl StateBits {
    /// Both bits clear.
    pub fn new() -> Self {
        StateBits { allocated: AtomicU64::new(0), remote: AtomicU64::new(0) }
    }

    /// Owner: marks the block of `bit` in use as it is handed out. `Err(AlreadyFree)` when its
    /// remote bit is set: the block was freed by another thread as well as onto the local list it
    /// came from (two frees at once); the block is then recorded in use, so that the remote free
    /// takes it back exactly once, and must not be handed out.
    ///
    /// Relaxed: the block is the owner's alone (just taken off its local list), and a non-owner
    /// that frees it later got the pointer through some synchronisation that orders this store
    /// before its load.
    #[inline(always)]
    pub fn hand_out(&self, bit: u64) -> Result<(), Refused> {
        let a = self.allocated.load(Ordering::Relaxed);
        self.allocated.store(a | bit, Ordering::Relaxed);
        if self.remote.load(Ordering::Relaxed) & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        Ok(())
    }

    /// Owner: frees a block it owns. No read-modify-write: only the owner writes `allocated`.
    ///
    /// The remote bit is not read: a block another thread freed already (its remote bit set,
    /// not taken back yet) and its owner frees now ends on the owner's local list with both
    /// bits saying so, the state two frees that raced leave, and is reported where those are:
    /// when the owner hands it out again ([`StateBits::hand_out`] refuses it), takes the word's
    /// remote bits back ([`StateBits::take_remote`] returns it as refused) or gives the slab
    /// back (which takes them back first). Never handed out twice. Reading the remote word
    /// here to report it at the free was three instructions of every free until 2026-12-02.
    #[inline(always)]
    pub fn free_owner(&self, bit: u64) -> Result<(), Refused> {
        let a = self.allocated.load(Ordering::Relaxed);
        // Stored before the test: when the bit is clear the word is written back unchanged
        // (only the owner writes it), and the load, the clear and the store fall in one block,
        // so the store reuses the load's address and the clear is a `btr` of the bit's index.
        // Testing first and storing `a ^ bit` after the branch cost five instructions more a
        // free (the address rebuilt, the mask shifted into a register), until 2026-12-03.
        self.allocated.store(a & !bit, Ordering::Relaxed);
        if a & bit == 0 {
            return Err(Refused::NotInUse);
        }
        Ok(())
    }

    /// Any thread but the owner: frees a block, which is the owner's from the `fetch_or` on
    /// (`before`, run first, is the caller's last use of it: sanitizer annotations). `Ok(true)`
    /// when the word had no remote bit before: the caller then raises the slab's pending flag
    /// ([`SlabLists::note_remote`]), as the owner may have taken the word's bits already and
    /// swapped the flag down. Of two such frees before the owner takes the block back exactly one
    /// gets `Ok` (the `fetch_or`). One that loaded the allocated bit before the owner took the
    /// block back and sets the remote bit after may get `Ok` too: the owner's next
    /// [`StateBits::hand_out`] of the block then refuses it, or its next take finds the block's
    /// allocated bit clear; either reports it, and the block never gets two owners.
    ///
    /// Release: what the caller wrote into the block happens before the owner's acquiring take.
    #[inline]
    pub fn free_other(&self, bit: u64, before: impl FnOnce()) -> Result<bool, Refused> {
        if self.allocated.load(Ordering::Relaxed) & bit == 0 {
            return Err(Refused::NotInUse);
        }
        before();
        let was = self.remote.fetch_or(bit, Ordering::Release);
        if was & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        Ok(was == 0)
    }

    /// Owner: takes back every block of the word another thread freed: `(taken, refused)`, the
    /// bits of blocks now free for the local list, and those whose allocated bit was clear
    /// already (the owner freed them too, and they are on its local list: double frees that
    /// raced, to report). Acquire: pairs with [`StateBits::free_other`]'s release.
    #[inline]
    pub fn take_remote(&self) -> (u64, u64) {
        if self.remote.load(Ordering::Relaxed) == 0 {
            return (0, 0);
        }
        let r = self.remote.swap(0, Ordering::Acquire);
        let a = self.allocated.load(Ordering::Relaxed);
        self.allocated.store(a & !r, Ordering::Relaxed);
        (r & a, r & !a)
    }

    /// Tests: the second half of [`StateBits::free_other`] alone, as a non-owner that loaded the
    /// allocated bit before the owner's own free and sets the remote bit after it (the race the
    /// heap reports on the block's next hand-out or take-back), which no test can time.
    #[cfg(test)]
    pub fn set_remote_late(&self, bit: u64) -> Result<bool, Refused> {
        let was = self.remote.fetch_or(bit, Ordering::Release);
        if was & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        Ok(was == 0)
    }

    /// Whether the block of `bit` is in use and not freed by another thread (any thread; a
    /// snapshot).
    #[inline(always)]
    pub fn in_use(&self, bit: u64) -> bool {
        self.allocated.load(Ordering::Relaxed) & bit != 0 && self.remote.load(Ordering::Relaxed) & bit == 0
    }

    /// (allocated, remote) words now (statistics and the validator).
    pub fn load(&self) -> (u64, u64) {
        (self.allocated.load(Ordering::Relaxed), self.remote.load(Ordering::Relaxed))
    }

    /// Owner: clears both words (a slab starting on a class).
    pub fn clear(&self) {
        self.allocated.store(0, Ordering::Relaxed);
        self.remote.store(0, Ordering::Relaxed);
    }
}

/// A slab's free blocks: the owner's local list and count, and whether other threads freed some
/// (their blocks are on no list: their remote bits say which).
#[derive(Debug)]
pub struct SlabLists {
    /// Owner only: free blocks, linked through their first word.
    local: UnsafeCell<Option<NonNull<Link>>>,
    /// Owner only: blocks handed out and not seen freed (remote frees count once taken).
    used: UnsafeCell<usize>,
    /// Any thread raises it (1) after setting the first remote bit of a word; the owner swaps it
    /// down before it takes the words' bits. Set whenever a remote bit of the slab is.
    pending: AtomicUsize,
}

// SAFETY: `local` and `used` are touched only by the slab's owner (the thread whose heap holds
// the slab, or the thread adopting it after the previous owner handed it over through an
// acquire/release pair); `pending` is the thread-safe part.
unsafe impl Sync for SlabLists {}
// SAFETY: as above; the blocks on the lists belong to the slab.
unsafe impl Send for SlabLists {}

impl SlabLists {
    /// Empty lists.
    pub fn new() -> Self {
        SlabLists { local: UnsafeCell::new(None), used: UnsafeCell::new(0), pending: AtomicUsize::new(0) }
    }

    /// Owner: takes a free block off the local list.
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    #[inline(always)]
    pub unsafe fn pop_local(&self) -> Option<NonNull<Link>> {
        // SAFETY: owner-only fields; blocks on the local list are the owner's.
        unsafe {
            let b = self.local.with(|p| *p)?;
            let next = Link::next(b);
            self.local.with_mut(|p| *p = next);
            self.used.with_mut(|u| *u += 1);
            Some(b)
        }
    }

    /// Owner: counts a block handed out that was never on a list (carved fresh).
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    #[inline(always)]
    pub unsafe fn count_carved(&self) {
        // SAFETY: an owner-only field.
        unsafe { self.used.with_mut(|u| *u += 1) }
    }

    /// Owner: puts a block carved fresh, never handed out, on the local list (it was never
    /// counted in use).
    ///
    /// # Safety
    ///
    /// The caller is the owner, and `b` is a block of this slab just carved (its state bits clear).
    #[inline]
    pub unsafe fn push_carved(&self, b: NonNull<Link>) {
        // SAFETY: owner-only fields; nobody else knows of the block.
        unsafe {
            Link::set_next(b, self.local.with(|p| *p));
            self.local.with_mut(|p| *p = Some(b));
        }
    }

    /// Owner: puts a block it freed on the local list; returns the blocks still in use.
    ///
    /// # Safety
    ///
    /// The caller is the owner, and `b` is a block of this slab it just freed (won it: [`StateBits`] said so).
    #[inline(always)]
    pub unsafe fn push_local(&self, b: NonNull<Link>) -> usize {
        // SAFETY: owner-only fields; the block is the owner's now.
        unsafe {
            Link::set_next(b, self.local.with(|p| *p));
            self.local.with_mut(|p| *p = Some(b));
            self.used.with_mut(|u| {
                *u -= 1;
                *u
            })
        }
    }

    /// Any thread but the owner: after a [`StateBits::free_other`] of one of the slab's blocks
    /// that answered `Ok(true)` (the first remote bit of its word), tells the owner there is
    /// something to take. Release: the bit set before is seen by the owner's acquiring
    /// [`SlabLists::take_pending`] that finds the flag raised; if the owner swapped the flag
    /// down before this, it stays raised for the owner's next look. A swap, not a store: both
    /// sides read-modify-write the flag, so the order in which they change it is the order in
    /// which they ran (a plain store is enough in the C++ memory model, but loom lets it slip
    /// before an owner's swap that ran first, and finds a block left behind; this runs once a
    /// word per collect, not once a free).
    #[inline]
    pub fn note_remote(&self) {
        self.pending.swap(1, Ordering::Release);
    }

    /// Owner: whether other threads freed blocks since the last look, lowering the flag. When
    /// true, the owner takes every word's remote bits ([`StateBits::take_remote`]) and gives
    /// their blocks to [`SlabLists::push_collected`]. A word's bits set after the flag was
    /// swapped down either are taken in the same pass or raise the flag again (their free found
    /// the word empty once the owner had swapped it): none is left behind unflagged.
    #[inline]
    pub fn take_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) != 0 && self.pending.swap(0, Ordering::Acquire) != 0
    }

    /// Owner: puts a block another thread freed, taken back from its remote bit, on the local
    /// list (it stops counting as in use).
    ///
    /// # Safety
    ///
    /// The caller is the owner, and `b` is a block of this slab that [`StateBits::take_remote`]
    /// just gave back to it.
    #[inline]
    pub unsafe fn push_collected(&self, b: NonNull<Link>) {
        // SAFETY: owner-only fields; the take ordered the freeing thread's writes before this.
        unsafe {
            Link::set_next(b, self.local.with(|p| *p));
            self.local.with_mut(|p| *p = Some(b));
            self.used.with_mut(|u| *u -= 1);
        }
    }

    /// Owner: [`SlabLists::push_collected`] for every block of one state word that
    /// [`StateBits::take_remote`] just gave back: `taken`'s set bits, bit `i` the block at
    /// `word + i * granule`. The list's head stays in a register and the count in use drops
    /// once, where a push a block stored both every time (11 instructions a block taken back, 9
    /// now: the producer of a producer/consumer program takes every block back this way).
    /// Returns how many blocks it took. No closure names the blocks: nothing runs inside that
    /// could touch the lists while their head is held here.
    ///
    /// # Safety
    ///
    /// As for [`SlabLists::push_collected`], for each block named; `word + i * granule` stays
    /// inside `word`'s allocation for every bit `i` of `taken`.
    #[inline]
    pub unsafe fn push_collected_word(&self, mut taken: u64, word: NonNull<u8>, granule: usize) -> usize {
        // SAFETY: owner-only fields; the take ordered the freeing threads' writes before this;
        // each block lies inside `word`'s allocation (the caller's promise).
        unsafe {
            let mut head = self.local.with(|p| *p);
            let mut n = 0;
            while taken != 0 {
                let b = word.add(taken.trailing_zeros() as usize * granule).cast::<Link>();
                taken &= taken - 1;
                Link::set_next(b, head);
                head = Some(b);
                n += 1;
            }
            self.local.with_mut(|p| *p = head);
            self.used.with_mut(|u| *u -= n);
            n
        }
    }

    /// Owner: blocks handed out and not seen freed.
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    #[inline(always)]
    pub unsafe fn used(&self) -> usize {
        // SAFETY: an owner-only field.
        unsafe { self.used.with(|u| *u) }
    }

    /// Owner: whether the local list is empty.
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    #[inline(always)]
    pub unsafe fn local_is_empty(&self) -> bool {
        // SAFETY: an owner-only field.
        unsafe { self.local.with(|p| (*p).is_none()) }
    }

    /// Whether other threads freed blocks the owner has not taken yet (a hint: any thread may
    /// free one right after).
    #[inline(always)]
    pub fn has_remote(&self) -> bool {
        self.pending.load(Ordering::Relaxed) != 0
    }

    /// Owner: the local list's head (for the validator, which walks it).
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    pub unsafe fn local_head(&self) -> Option<NonNull<Link>> {
        // SAFETY: an owner-only field.
        unsafe { self.local.with(|p| *p) }
    }

    /// Owner: forgets every block (the slab is being given up whole).
    ///
    /// # Safety
    ///
    /// The caller is the owner and no block of the slab is in use or freed by another thread
    /// and not taken back.
    pub unsafe fn clear(&self) {
        // SAFETY: owner-only fields.
        unsafe {
            self.local.with_mut(|p| *p = None);
            self.used.with_mut(|u| *u = 0);
        }
        self.pending.store(0, Ordering::Relaxed);
    }
}

impl Default for SlabLists {
    fn default() -> Self {
        SlabLists::new()
    }
}

impl Default for StateBits {
    fn default() -> Self {
        StateBits::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Each transition of one block's two bits, on one thread: the answers the free and
    /// hand-out paths act on.
    #[test]
    fn state_bits_answer_each_transition() {
        let w = StateBits::new();
        let (b, other) = (1 << 5, 1 << 6);
        let mut ran = 0;
        assert_eq!(w.free_owner(b), Err(Refused::NotInUse), "never handed out");
        assert_eq!(w.free_other(b, || ran += 1), Err(Refused::NotInUse));
        assert_eq!(ran, 0, "nothing runs for a block not in use");
        assert_eq!(w.take_remote(), (0, 0), "nothing to take");
        assert_eq!(w.hand_out(b), Ok(()));
        assert!(w.in_use(b) && !w.in_use(other));
        assert_eq!(w.free_other(b, || ran += 1), Ok(true), "the word's first remote bit");
        assert_eq!(ran, 1);
        assert!(!w.in_use(b), "freed by another thread: not in use any more");
        assert_eq!(w.free_other(b, || ()), Err(Refused::AlreadyFree), "second remote free");
        // The owner's free after it reads only the allocated bit: the block goes on the local
        // list with its remote bit still set, and the next hand-out refuses it (recording it in
        // use, so that the take gives it back once).
        assert_eq!(w.free_owner(b), Ok(()), "the owner's free after it");
        assert_eq!(w.load(), (0, b));
        assert_eq!(w.hand_out(b), Err(Refused::AlreadyFree), "handed out while freed remotely");
        assert_eq!(w.load(), (b, b));
        assert_eq!(w.hand_out(other), Ok(()));
        assert_eq!(w.free_other(other, || ()), Ok(false), "not the word's first remote bit");
        assert_eq!(w.take_remote(), (b | other, 0), "both taken back");
        assert_eq!(w.load(), (0, 0));
        assert_eq!(w.take_remote(), (0, 0), "taken once");
        assert_eq!(w.hand_out(b), Ok(()));
        assert_eq!(w.hand_out(other), Ok(()));
        assert_eq!(w.free_owner(b), Ok(()));
        assert_eq!(w.load(), (other, 0), "the neighbour's bit stays");
        // The owner's free and a late remote free of one block: the take refuses it.
        assert_eq!(w.set_remote_late(b), Ok(true));
        assert_eq!(w.take_remote(), (0, b), "freed by its owner too: refused");
        assert_eq!(w.load(), (other, 0));
        w.clear();
        assert_eq!(w.load(), (0, 0));
    }
}
