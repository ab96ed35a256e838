//! The two concurrent pieces of the pool, small enough for loom to check every interleaving
//! (`RUSTFLAGS="--cfg loom" cargo test -p alloc-pool-lockfree --test loom --release`):
//!
//! - [`BlockWord`]: the atomic state word in every block's header. Allocation stores the
//!   block's "allocated" word; a free swaps it to the "freed" word with one compare-and-swap, so
//!   of two frees of the same block (racing on two threads, or one after the other) exactly one
//!   wins and the other is reported. The words mix the block's address with a per-pool secret,
//!   so a pointer that is not a block, or a forged header, does not match.
//! - [`SlabLists`]: a slab's free blocks. The owner thread pops and pushes on a plain local list
//!   (no atomics, no contention); any other thread pushes onto the slab's [`RemoteList`], which
//!   the owner takes whole with one swap when its local list runs dry (mimalloc's sharded free
//!   lists). Nothing is popped one at a time from a shared list, so there is no ABA, and a block's
//!   link is only read by the owner after the swap that orders it after the write: no data race.

use alloc_core::sync::atomic::{AtomicUsize, Ordering};
use alloc_core::sync::cell::UnsafeCell;
use alloc_core::sync::remote_list::{Link, RemoteList};
use core::ptr::NonNull;

/// The state word of a block's header.
#[derive(Debug)]
#[repr(transparent)]
pub struct BlockWord(AtomicUsize);

/// What a free found instead of the allocated word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The freed word: the block was freed already.
    AlreadyFree,
    /// Anything else: not a block handed out by this pool (or its header was overwritten).
    NotABlock,
}

impl BlockWord {
    /// A word that matches nothing (what fresh memory holds).
    pub fn new() -> Self {
        BlockWord(AtomicUsize::new(0))
    }

    /// The word of an allocated block at `addr` of class `class`, under `secret`: odd.
    #[inline(always)]
    pub fn allocated(secret: usize, addr: usize, class: usize) -> usize {
        secret ^ addr ^ (class << 1) ^ 1
    }

    /// The word of a free block at `addr`: even, so never an allocated word.
    #[inline(always)]
    pub fn freed(secret: usize, addr: usize) -> usize {
        (secret ^ addr ^ 0x5a5a_5a5a) & !1
    }

    /// Marks the block allocated. Relaxed: the block is the caller's alone (just taken off a
    /// list it owns); a free racing with this store is a use of a block not yet handed out.
    #[inline(always)]
    pub fn mark_allocated(&self, word: usize) {
        self.0.store(word, Ordering::Relaxed)
    }

    /// Marks a block that was never handed out free (when it is carved onto a list).
    #[inline(always)]
    pub fn mark_free(&self, word: usize) {
        self.0.store(word, Ordering::Relaxed)
    }

    /// Frees the block: `allocated` becomes `freed` if and only if the block was allocated.
    /// Relaxed: the compare-and-swap only elects the one free that goes on; the hand-over of the
    /// block's memory is ordered by the list it is then pushed on.
    #[inline(always)]
    pub fn try_free(&self, allocated: usize, freed: usize) -> Result<(), Refused> {
        match self.0.compare_exchange(allocated, freed, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(w) if w == freed => Err(Refused::AlreadyFree),
            Err(_) => Err(Refused::NotABlock),
        }
    }

    /// The word now (for the validator).
    pub fn load(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for BlockWord {
    fn default() -> Self {
        BlockWord::new()
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
    /// The caller is the owner, and `b` is a block of this slab it just freed (won its word).
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
    /// `b` is a block of this slab the caller just freed (won its word) and gives up.
    #[inline]
    pub unsafe fn push_remote(&self, b: NonNull<Link>) {
        // SAFETY: the caller owns the block until the push publishes it.
        unsafe { self.remote.push(b) }
    }

    /// Owner: moves every remotely freed block onto the local list; returns how many.
    ///
    /// # Safety
    ///
    /// The caller is the owner.
    pub unsafe fn collect_remote(&self) -> usize {
        let Some(first) = self.remote.take_all() else { return 0 };
        let mut n = 1;
        let mut last = first;
        // SAFETY: the chain was taken, so the owner owns every block on it.
        while let Some(next) = unsafe { Link::next(last) } {
            last = next;
            n += 1;
        }
        // SAFETY: owner-only fields; the chain goes in front of the local list.
        unsafe {
            Link::set_next(last, self.local.with(|p| *p));
            self.local.with_mut(|p| *p = Some(first));
            self.used.with_mut(|u| *u -= n);
        }
        n
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
