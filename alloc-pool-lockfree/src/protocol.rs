//! The two concurrent pieces of the pool, small enough for loom to check every interleaving
//! (`RUSTFLAGS="--cfg loom" cargo test -p alloc-pool-lockfree --test loom --release`):
//!
//! - [`StateBits`]: a slab's record of which of its blocks are in use, two bits per 16-byte
//!   granule and no header on the block. The *allocated* bit is written by the slab's owner alone,
//!   with a plain load and store (no read-modify-write, no lock prefix); the *remote* bit is set
//!   with one `fetch_or` by a thread that frees a block it does not own, and cleared by the owner
//!   when it takes the block back. So a free by the owner costs two loads and a store, and of two
//!   frees of one block (one after the other, or on two threads at once) the second is reported:
//!   at the free when the first is visible, otherwise when the owner next hands the block out or
//!   takes it back, before it can be given to two callers.
//! - [`SlabLists`]: a slab's free blocks. The owner thread pops and pushes on a plain local list
//!   (no atomics, no contention); any other thread pushes onto the slab's [`RemoteList`], which
//!   the owner takes whole with one swap when its local list runs dry (mimalloc's sharded free
//!   lists). Nothing is popped one at a time from a shared list, so there is no ABA, and a block's
//!   link is only read by the owner after the swap that orders it after the write: no data race.

use alloc_core::sync::atomic::{AtomicU64, Ordering};
use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::{Link, RemoteList};
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
    /// (`fetch_or`); the owner clears (`fetch_and`).
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
    #[inline(always)]
    pub fn free_owner(&self, bit: u64) -> Result<(), Refused> {
        let a = self.allocated.load(Ordering::Relaxed);
        if a & bit == 0 {
            return Err(Refused::NotInUse);
        }
        if self.remote.load(Ordering::Relaxed) & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        self.allocated.store(a & !bit, Ordering::Relaxed);
        Ok(())
    }

    /// Any thread but the owner: frees a block; on `Ok` the caller pushes it on the remote list.
    /// Of two such frees while the block waits on the remote list exactly one gets `Ok` (the
    /// `fetch_or`). One that loaded the allocated bit before the owner took the block back and
    /// sets the remote bit after may get `Ok` too: the owner's next [`StateBits::hand_out`] of
    /// the block then refuses it, so it is reported there and the block never gets two owners.
    #[inline]
    pub fn free_other(&self, bit: u64) -> Result<(), Refused> {
        if self.allocated.load(Ordering::Relaxed) & bit == 0 {
            return Err(Refused::NotInUse);
        }
        if self.remote.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        Ok(())
    }

    /// Tests: the second half of [`StateBits::free_other`] alone, as a non-owner that loaded the
    /// allocated bit before the owner's own free and sets the remote bit after it (the race the
    /// heap reports on the block's next hand-out or take-back), which no test can time.
    #[cfg(test)]
    pub fn set_remote_late(&self, bit: u64) -> Result<(), Refused> {
        if self.remote.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return Err(Refused::AlreadyFree);
        }
        Ok(())
    }

    /// Owner: takes back a block it found on the remote list. `Err(AlreadyFree)` when the owner
    /// had freed it too (the two frees raced): it is on the local list already and must not be
    /// put there again.
    #[inline]
    pub fn take_back(&self, bit: u64) -> Result<(), Refused> {
        self.clear_remote(bit);
        self.take_back_allocated(bit)
    }

    /// Owner: the allocated half of [`StateBits::take_back`], for a caller that clears the
    /// remote bits of many blocks with one [`StateBits::clear_remote`] per word afterwards (no
    /// other thread can free a block in between: its allocated bit is clear, so a free is
    /// refused).
    #[inline]
    pub fn take_back_allocated(&self, bit: u64) -> Result<(), Refused> {
        let a = self.allocated.load(Ordering::Relaxed);
        if a & bit == 0 {
            return Err(Refused::AlreadyFree);
        }
        self.allocated.store(a & !bit, Ordering::Relaxed);
        Ok(())
    }

    /// Owner: clears the remote bits of `mask` (blocks taken back).
    #[inline]
    pub fn clear_remote(&self, mask: u64) {
        self.remote.fetch_and(!mask, Ordering::Relaxed);
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

/// A slab's free blocks: the owner's local list and count, and the remote list.
#[derive(Debug)]
pub struct SlabLists {
    /// Owner only: free blocks, linked through their first word.
    local: UnsafeCell<Option<NonNull<Link>>>,
    /// Owner only: blocks handed out and not seen freed (remote frees count once taken).
    used: UnsafeCell<usize>,
    /// Any thread: blocks freed by threads other than the owner.
    remote: RemoteList,
}

// SAFETY: `local` and `used` are touched only by the slab's owner (the thread whose heap holds
// the slab, or the thread adopting it after the previous owner handed it over through an
// acquire/release pair); `remote` is the thread-safe part.
unsafe impl Sync for SlabLists {}
// SAFETY: as above; the blocks on the lists belong to the slab.
unsafe impl Send for SlabLists {}

impl SlabLists {
    /// Empty lists.
    pub fn new() -> Self {
        SlabLists { local: UnsafeCell::new(None), used: UnsafeCell::new(0), remote: RemoteList::new() }
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

    /// Any thread but the owner: hands a block it freed back to the slab.
    ///
    /// # Safety
    ///
    /// `b` is a block of this slab the caller just freed (won it: [`StateBits`] said so) and gives up.
    #[inline]
    pub unsafe fn push_remote(&self, b: NonNull<Link>) {
        // SAFETY: the caller owns the block until the push publishes it.
        unsafe { self.remote.push(b) }
    }

    /// Owner: moves the remotely freed blocks onto the local list, each one `take_back` accepts
    /// (a block it refuses is on the local list already: a double free it reported); returns how
    /// many moved. At most `limit` blocks are looked at: a longer chain loops (only a racing
    /// double free, reported already, can make one), and the rest is dropped.
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    pub unsafe fn collect_remote(&self, limit: usize, mut take_back: impl FnMut(NonNull<Link>) -> bool) -> usize {
        let Some(first) = self.remote.take_all() else { return 0 };
        // SAFETY: owner-only fields; the chain was taken, so the owner owns every block on it.
        unsafe {
            let mut local = self.local.with(|p| *p);
            let (mut node, mut kept, mut seen) = (Some(first), 0, 0);
            while let Some(b) = node {
                seen += 1;
                if seen > limit {
                    break;
                }
                node = Link::next(b);
                if take_back(b) {
                    Link::set_next(b, local);
                    local = Some(b);
                    kept += 1;
                }
            }
            self.local.with_mut(|p| *p = local);
            self.used.with_mut(|u| *u -= kept);
            kept
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

    /// Whether blocks wait on the remote list (a hint: any thread may add one right after).
    #[inline(always)]
    pub fn has_remote(&self) -> bool {
        !self.remote.is_empty()
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

    /// The validator (with every thread stopped): takes the remote list whole to walk it.
    pub fn take_remote_for_validate(&self) -> Option<NonNull<Link>> {
        self.remote.take_all()
    }

    /// The validator: puts a chain it took back.
    pub fn put_back_for_validate(&self, chain: Option<NonNull<Link>>) {
        let Some(first) = chain else { return };
        let mut last = first;
        // SAFETY: the chain was taken by the caller, which owns it until it is pushed back.
        while let Some(n) = unsafe { Link::next(last) } {
            last = n;
        }
        // SAFETY: as above.
        unsafe { self.remote.push_chain(first, last) }
    }

    /// Owner: forgets every block (the slab is being given up whole).
    ///
    /// # Safety
    ///
    /// The caller is the owner and no block of the slab is in use or on the remote list.
    pub unsafe fn clear(&self) {
        // SAFETY: owner-only fields.
        unsafe {
            self.local.with_mut(|p| *p = None);
            self.used.with_mut(|u| *u = 0);
        }
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
        assert_eq!(w.free_owner(b), Err(Refused::NotInUse), "never handed out");
        assert_eq!(w.free_other(b), Err(Refused::NotInUse));
        assert_eq!(w.hand_out(b), Ok(()));
        assert!(w.in_use(b) && !w.in_use(other));
        assert_eq!(w.free_other(b), Ok(()));
        assert!(!w.in_use(b), "freed by another thread: not in use any more");
        assert_eq!(w.free_other(b), Err(Refused::AlreadyFree), "second remote free");
        assert_eq!(w.free_owner(b), Err(Refused::AlreadyFree), "the owner's free after it");
        assert_eq!(w.take_back(b), Ok(()));
        assert_eq!(w.load(), (0, 0));
        assert_eq!(w.take_back_allocated(b), Err(Refused::AlreadyFree), "taken back twice");
        assert_eq!(w.hand_out(b), Ok(()));
        assert_eq!(w.hand_out(other), Ok(()));
        assert_eq!(w.free_owner(b), Ok(()));
        assert_eq!(w.load(), (other, 0), "the neighbour's bit stays");
        w.clear();
        assert_eq!(w.load(), (0, 0));
    }
}
