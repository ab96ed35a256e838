//! Where each thread's quarantine record lives: apart from the program's blocks. A record (the
//! addresses of the thread's quarantined, reserved and spare blocks) is a mapping of its own,
//! with an inaccessible page on each side, so no overflow out of a program's block runs into it
//! (a linear one faults on a guard page first; the pool's segments and the large blocks' mappings
//! are other mappings). Until 2026-12-03 a record was a block of the preset's pool, among the
//! program's blocks of its size class: an overflow out of a neighbour could rewrite the
//! addresses the quarantine hands back to the pool before that neighbour's canary was checked.
//! hardened_malloc keeps its metadata apart in the same way.
//!
//! A record whose thread exited waits on a free list (at most [`KEEP`] of them) for the next
//! thread, so a program that starts and ends threads makes no system call per thread once the
//! list has records; past that bound records are unmapped.

use alloc_core::SpinLock;
use core::ptr::NonNull;

/// Records of exited threads kept for new ones (about 8 KiB resident each).
pub const KEEP: usize = 64;

struct Free {
    /// The newest free record (0: none); each free record's first word links the next.
    head: usize,
    count: usize,
}

static FREE: lock_api::Mutex<SpinLock, Free> = lock_api::Mutex::new(Free { head: 0, count: 0 });

/// The accessible bytes of a record of `len` bytes: whole pages.
fn span(len: usize) -> usize {
    len.next_multiple_of(alloc_core::source::page_size())
}

/// A zeroed record of `len` bytes (page-aligned), between two inaccessible pages: a free one, or
/// a fresh mapping. `None` when the system has no memory for one.
pub fn take(len: usize) -> Option<NonNull<u8>> {
    let kept = {
        let mut free = FREE.lock();
        let r = free.head;
        if r != 0 {
            // SAFETY: a free record's first word links the next (written by `give_back`, under
            // this lock); the record is accessible.
            free.head = unsafe { core::ptr::with_exposed_provenance::<usize>(r).read() };
            free.count -= 1;
        }
        r
    };
    if kept != 0 {
        let p = core::ptr::with_exposed_provenance_mut::<u8>(kept);
        // SAFETY: a record given back, nobody's now: `span(len)` accessible bytes.
        unsafe { p.write_bytes(0, span(len)) };
        return NonNull::new(p);
    }
    let page = alloc_core::source::page_size();
    let whole = span(len) + 2 * page;
    let base = super::reserve(whole)?;
    let record = base as usize + page;
    // SAFETY: the pages between the two guards, inside our reservation.
    if unsafe { libc::mprotect(record as *mut libc::c_void, span(len), libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        // SAFETY: our own reservation, never handed out.
        unsafe { libc::munmap(base, whole) };
        return None;
    }
    let _ = (base as *mut u8).expose_provenance();
    // Fresh anonymous pages read as zero.
    NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(record))
}

/// Gives back record `p` of `len` bytes: onto the free list, or unmapped with its guards when
/// [`KEEP`] records wait already.
///
/// # Safety
///
/// `p` came from [`take`] with the same `len`, and nothing uses it any more.
pub unsafe fn give_back(p: NonNull<u8>, len: usize) {
    let r = p.as_ptr() as usize;
    {
        let mut free = FREE.lock();
        if free.count < KEEP {
            // SAFETY: the caller's record, accessible and unused: its first word is ours.
            unsafe { p.as_ptr().cast::<usize>().write(free.head) };
            free.head = r;
            free.count += 1;
            return;
        }
    }
    let page = alloc_core::source::page_size();
    // SAFETY: the record's whole reservation, guards included, made by `take`; unused.
    unsafe { libc::munmap((r - page) as *mut libc::c_void, span(len) + 2 * page) };
}

/// Records on the free list now.
#[cfg(test)]
pub fn kept() -> usize {
    FREE.lock().count
}

/// Whether the free list's lock is held now.
#[cfg(test)]
pub fn locked() -> bool {
    FREE.is_locked()
}

/// Takes the free list's lock across `fork` (the child's copy of it is then unheld).
pub fn lock_for_fork() {
    core::mem::forget(FREE.lock());
}

/// Releases the lock [`lock_for_fork`] took.
///
/// # Safety
///
/// Held since [`lock_for_fork`], by this thread.
pub unsafe fn unlock_after_fork() {
    // SAFETY: as the caller promises.
    unsafe { FREE.force_unlock() };
}
