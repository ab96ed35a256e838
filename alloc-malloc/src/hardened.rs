//! The `hardened` preset: the per-thread pool of `general`, wrapped in the checks of a hardened
//! malloc (GrapheneOS's hardened_malloc is the reference), with no lock on the small-block paths.
//!
//! Small blocks (up to 16 KiB less 24 bytes, alignment up to 16) are pool blocks laid out as
//!
//! ```text
//! | size and alignment (8) | state word (8) | the caller's bytes | canary (8) | rest of the class |
//! ```
//!
//! - The **state word** mixes the caller's address with a per-process secret: one value while
//!   the block is live, another once freed. A free swaps the first for the second with one
//!   compare-and-swap, so of two frees of a block (one after the other, or on two threads at once)
//!   exactly one goes on; the other is a `double free`.
//! - The **canary** right after the caller's bytes catches an overflow at free (`canary
//!   corrupted`, at the canary's address).
//! - **Zero on free**: a freed block's bytes after the header are zeroed. When the pool hands
//!   the block out again they are checked: a byte that is not zero was written after the free
//!   (`write after free detected`, at the block's address).
//! - **Delayed, randomised reuse**: a freed block waits in its thread's quarantine, first in a
//!   FIFO of [`FIFO`] blocks, then in a ring of [`RING`] slots where it lands on a slot picked at
//!   random, pushing that slot's block out. So a block is reused after at least [`FIFO`]
//!   further frees by the same thread (on average `FIFO + RING`), and which block leaves on each
//!   free is one of [`RING`] (6 bits of entropy). A block that leaves goes to the thread's
//!   spares of its class (up to [`SPARE`], for classes with a reserve, below), which refill the
//!   reserve before the pool does; the rest go back to the pool, which hands blocks out newest
//!   first. Either way the order of reuse follows the random order, and the placement below adds
//!   its own pick.
//! - **Unpredictable placement**: a thread holds back [`RESERVE`] pool blocks of each size class
//!   up to [`RESERVE_MAX`] bytes, and each allocation takes one of them chosen at random (3 bits
//!   of entropy per allocation, from a per-thread xorshift generator seeded with the process
//!   secret), putting a spare or a fresh pool block in its place. Two allocations in a row are
//!   neighbours only by chance (1 in [`RESERVE`]), not because the pool carves blocks in address
//!   order (the guarded pool, moreover, hands out the blocks of each 4 KiB it carves in a random
//!   order). It costs each thread at most [`RESERVE`] + [`SPARE`] blocks per size class it uses
//!   (under 160 KiB for the classes up to 1 KiB). The quarantine, the reserve's and the spares'
//!   slots are one record per thread (under 7 KiB), a mapping apart from every block with a
//!   guard page on each side (see `store`), named by one initial-exec thread-local word on
//!   x86_64 Linux, and given back with their blocks by the thread's exit hook.
//! - **Blocks from the pool are checked** before they are anyone's: the pool's free lists are
//!   in band, and a forged link (an overflow into a free block, a write through a stale
//!   pointer) that names anything but a block start of the class with a never-used or freed
//!   state word is a `free list corrupted` (see `check_from_pool`).
//! - **Sized deallocation** (`free_sized`, `free_aligned_sized`, C++'s sized and aligned
//!   `operator delete`): a size or alignment other than the block's is a `sized deallocation
//!   mismatch`.
//!
//! Large blocks have a mapping each, a live table of them (under a spin lock: large blocks cost a
//! system call anyway), the same header and canary; a freed one's mapping is replaced by a fresh
//! inaccessible one (`PROT_NONE`, its pages given back to the OS, one `mmap`) and kept in a
//! quarantine of [`LARGE_QUARANTINE`] blocks or [`LARGE_QUARANTINE_BYTES`] of address space: a
//! read or write through a stale pointer faults. A mapping of
//! [`MID`] bytes or less (a *mid-size* block) is zeroed instead, goes through the same
//! quarantine, then waits accessible (up to 32 of them) for a block of its length, which checks
//! that it is still zero (a write after free is reported there, as for small blocks), with no
//! system call either way. A longer mapping that leaves the quarantine stays inaccessible in a
//! cache of 16 mappings / 64 MiB, from which a later large `malloc` or `calloc` (its pages are
//! fresh, so zero) of half its size or more takes it back with one `mprotect` of the pages it
//! needs (the rest stay inaccessible, a guard after the block, holding no memory); the rest
//! are unmapped. `malloc(0)` returns a unique address in a reserved
//! `PROT_NONE` region: any access faults, and `free` of it does nothing.

use crate::presets::Backend;
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{SharedLayer, SizeOf};
use alloc_core::{Abort, Layout, SpinLock};
use alloc_pool_lockfree::Pool;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

mod store;

/// The preset's own pool (only one preset serves a process; this one is untouched otherwise),
/// each segment's header between pages that fault.
pub static POOL: Pool = Pool::with_guarded_source(alloc_core::DefaultSource::new());

/// Header bytes before the caller's: packed size and alignment, then the state word.
const HDR: usize = 16;
/// Canary bytes after the caller's.
const CANARY: usize = 8;
/// The largest request served from the pool.
const SMALL: usize = alloc_pool_lockfree::MAX_SMALL - HDR - CANARY;
/// Blocks a freed block waits behind, first in line.
pub const FIFO: usize = 32;
/// Slots of the random stage of the quarantine.
pub const RING: usize = 64;
/// Blocks held back per size class for unpredictable placement.
pub const RESERVE: usize = 8;
// Picks among them are whole random bits.
const _: () =
    assert!(FIFO.is_power_of_two() && RING.is_power_of_two() && RESERVE.is_power_of_two() && SPARE.is_power_of_two());
/// The largest block size whose class is placed at random (held-back blocks of larger classes
/// would cost too much memory per thread).
pub const RESERVE_MAX: usize = 4096;
/// Blocks past the quarantine a thread keeps per class with a reserve, to refill it from
/// (freed, zeroed and checked again at reuse like any freed block), before it gives them back to
/// the pool. 16 since 2026-12-02 (8 before): cfrac's pair 252.1 to 245.1 instructions, fewer
/// round trips through the pool when a class's frees and allocations come in runs, for 0-4 %
/// more peak RSS (alloc-test, thread-bench; cfrac and larson none).
pub const SPARE: usize = 16;
/// The pool's size classes, which the reserve is indexed by.
type Classes = alloc_core::Quarters<14>;
/// Classes with a reserve.
const RESERVED_CLASSES: usize = {
    let mut c = 0;
    while Classes::class_size(c) < RESERVE_MAX {
        c += 1;
    }
    c + 1
};
/// The block size of each class with a reserve, looked up (the size classes' own function
/// branches on small classes: five instructions of every `malloc` until 2026-12-02).
const RESERVED_SIZE: [usize; RESERVED_CLASSES] = {
    let mut t = [0; RESERVED_CLASSES];
    let mut c = 0;
    while c < RESERVED_CLASSES {
        t[c] = Classes::class_size(c);
        c += 1;
    }
    t
};
/// Freed large blocks kept inaccessible.
pub const LARGE_QUARANTINE: usize = 64;
/// ... and at most this many of their bytes (address space: their pages went back at the free).
pub const LARGE_QUARANTINE_BYTES: usize = 256 << 20;
/// The reserved region `malloc(0)` hands addresses out of.
const ZERO_REGION: usize = 1 << 30;

/// Reports misuse; never returns (the preset's policy is [`Abort`]), which the paths that
/// call it know: none keeps a value across the call.
fn report(kind: ErrorKind, addr: usize) -> ! {
    Abort.report(HeapError::new(kind, addr));
    std::process::abort()
}

/// The per-process secret (0 until made).
static SECRET: AtomicUsize = AtomicUsize::new(0);

/// The per-process secret, made on first use.
fn secret() -> usize {
    match SECRET.load(Ordering::Relaxed) {
        0 => {
            let s = alloc_core::secret::fresh(&SECRET as *const AtomicUsize as usize) | 1;
            match SECRET.compare_exchange(0, s, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => s,
                Err(won) => won,
            }
        }
        s => s,
    }
}

/// The words and canaries derived from the secret. The hot paths take the secret once
/// ([`Key::now`]) and derive all three from it: each `secret()` is an atomic load and a test
/// that the compiler does not merge, five per `malloc` + `free` pair until 2026-12-01.
#[derive(Copy, Clone)]
struct Key(usize);

impl Key {
    #[inline(always)]
    fn now() -> Key {
        Key(secret())
    }

    /// The key on a path that only runs once the secret is made: a free of a block this preset
    /// handed out (made before the block was, and seen through whatever handed the pointer
    /// over). Before any block, the key is 0 and matches no block (there is none): the frees
    /// it is used on are misuse, reported as such. No first-use branch and call (which made
    /// `free` save registers on entry).
    #[inline(always)]
    fn made() -> Key {
        Key(SECRET.load(Ordering::Relaxed))
    }

    /// The state word of a live block.
    #[inline(always)]
    fn live(self, user: usize) -> usize {
        self.0 ^ user ^ 0x11
    }

    /// The state word of a freed block. It names the block's length too: a slab the pool
    /// starts on another class puts blocks over old ones, and a new block whose header lands on
    /// an old freed word of another length is fresh memory, not a block to check for zeroes.
    #[inline(always)]
    fn freed(self, user: usize, len: usize) -> usize {
        self.0.rotate_left(17) ^ user ^ len.rotate_left(40) ^ 0x22
    }

    /// The canary at `at`.
    #[inline(always)]
    fn canary(self, at: usize) -> u64 {
        ((self.0 ^ at) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
    }
}

fn live_word(user: usize) -> usize {
    Key::now().live(user)
}

fn canary(at: usize) -> u64 {
    Key::now().canary(at)
}

fn pack(size: usize, align: usize) -> usize {
    size | (align.trailing_zeros() as usize) << 56
}

fn unpack(w: usize) -> (usize, usize) {
    (w & ((1 << 56) - 1), 1 << (w >> 56))
}

/// The header words of the block whose caller's bytes start at `user`.
///
/// # Safety
///
/// `user - 16 .. user` is a header this preset wrote (a live pool block or mapping).
unsafe fn header<'a>(user: usize) -> (&'a AtomicUsize, &'a AtomicUsize) {
    let p = core::ptr::with_exposed_provenance::<AtomicUsize>(user - HDR);
    // SAFETY: as the caller promises; 16-aligned words.
    unsafe { (&*p, &*p.add(1)) }
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_next_multiple_of(to)
}

// ---------------------------------------------------------------------------------------------
// malloc(0)

static ZERO_BASE: AtomicUsize = AtomicUsize::new(0);
static ZERO_NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh reservation of `len` bytes that no access may touch (`PROT_NONE`, no swap
/// reserved): the zero region, and the quarantine records' mappings with their guard pages.
fn reserve(len: usize) -> Option<*mut libc::c_void> {
    // SAFETY: a fresh anonymous reservation, no access: nothing of ours is there.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p)
}

fn zero_region() -> Option<usize> {
    match ZERO_BASE.load(Ordering::Acquire) {
        0 => {}
        b => return Some(b),
    }
    let p = reserve(ZERO_REGION)?;
    match ZERO_BASE.compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(p as usize),
        Err(won) => {
            // SAFETY: our own reservation, never handed out.
            unsafe { libc::munmap(p, ZERO_REGION) };
            Some(won)
        }
    }
}

fn in_zero_region(addr: usize) -> bool {
    let b = ZERO_BASE.load(Ordering::Acquire);
    b != 0 && addr.wrapping_sub(b) < ZERO_REGION
}

/// A unique address whose every access faults (16-byte steps through the region, wrapping
/// after 64 Mi of them).
fn alloc_zero() -> Option<NonNull<u8>> {
    let base = zero_region()?;
    let off = ZERO_NEXT.fetch_add(16, Ordering::Relaxed) % ZERO_REGION;
    NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(base + off))
}

// ---------------------------------------------------------------------------------------------
// Small blocks

/// Whether `p .. p + len` is still all zeroes.
///
/// # Safety
///
/// The range is readable, and `len` is a multiple of 16, at least 16 (a class size less the
/// header: the smallest class a block with header and canary takes is 32 bytes).
#[inline(always)]
unsafe fn still_zero(p: *const u8, len: usize) -> bool {
    // All the bytes or-ed together 16 at a time: no branch per word (one per word until
    // 2026-12-01), and no loops over single words and then bytes for a length that is always
    // whole 16-byte steps (until 2026-12-02). The report names the block, not the byte.
    // SAFETY: as the caller promises.
    unsafe { simd::all_zero(p, len) }
}

/// The check that a freed block's bytes are still zero, and their zeroing, 16 bytes a step:
/// SSE2 (every x86_64 has it) on x86_64, words and `memset` elsewhere. Blocks of up to 64 bytes
/// take four loads or stores that overlap as needed, with no loop: on cfrac the loop's exit (at
/// a length that changes from block to block) and `memset`'s dispatch on the length were most of
/// the preset's mispredicted branches, 1.3 a pair more than `general`'s (cachegrind
/// `--branch-sim=yes`, 2026-12-02). Zeroing in a loop of 16-byte stores cost more instructions
/// than the call to `memset`.
mod simd {
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_setzero_si128, _mm_storeu_si128,
    };

    /// Whether `p .. p + len` is all zeroes.
    ///
    /// # Safety
    ///
    /// The range is readable, and `len` is a multiple of 16, at least 16.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn all_zero(p: *const u8, len: usize) -> bool {
        debug_assert!(len >= 16 && len.is_multiple_of(16));
        // SAFETY: SSE2 is part of every x86_64 target; the loads stay inside the range (whole
        // 16-byte steps), unaligned.
        unsafe {
            let load = |at: usize| _mm_loadu_si128(p.add(at).cast::<__m128i>());
            let any = if len <= 64 {
                // Four loads that cover 16 to 64 bytes whatever the length (they overlap on
                // shorter blocks).
                let last = len - 16;
                _mm_or_si128(
                    _mm_or_si128(load(0), load(last)),
                    _mm_or_si128(load(last.min(16)), load(last.saturating_sub(16))),
                )
            } else {
                // 64 bytes a step, then the last 64 (overlapping the step before where the
                // length is not whole 64-byte steps): a third of the loop's instructions.
                let four = |at: usize| {
                    _mm_or_si128(_mm_or_si128(load(at), load(at + 16)), _mm_or_si128(load(at + 32), load(at + 48)))
                };
                let mut any = four(len - 64);
                let mut i = 0;
                while i < len - 64 {
                    any = _mm_or_si128(any, four(i));
                    i += 64;
                }
                any
            };
            _mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) == 0xffff
        }
    }

    /// Zeroes `p .. p + len`: up to 64 bytes with four 16-byte stores that cover it whatever
    /// the length (as [`all_zero`] loads), `memset` past that.
    ///
    /// # Safety
    ///
    /// The range is writable, and `len` is a multiple of 16, at least 16.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn zero(p: *mut u8, len: usize) {
        debug_assert!(len >= 16 && len.is_multiple_of(16));
        if len > 64 {
            // SAFETY: as the caller promises.
            return unsafe { p.write_bytes(0, len) };
        }
        let last = len - 16;
        // SAFETY: SSE2 is part of every x86_64 target; each store lies inside the range.
        unsafe {
            let z = _mm_setzero_si128();
            for at in [0, last, last.min(16), last.saturating_sub(16)] {
                _mm_storeu_si128(p.add(at).cast::<__m128i>(), z);
            }
        }
    }

    /// As on x86_64, two words a step.
    ///
    /// # Safety
    ///
    /// The range is readable, and `len` is a multiple of 16, at least 16.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub unsafe fn all_zero(p: *const u8, len: usize) -> bool {
        let mut any = 0u64;
        let mut i = 0;
        while i < len {
            // SAFETY: inside the range (whole 16-byte steps).
            any |= unsafe { p.add(i).cast::<u64>().read_unaligned() | p.add(i + 8).cast::<u64>().read_unaligned() };
            i += 16;
        }
        any == 0
    }

    /// Zeroes `p .. p + len`.
    ///
    /// # Safety
    ///
    /// The range is writable.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub unsafe fn zero(p: *mut u8, len: usize) {
        // SAFETY: as the caller promises.
        unsafe { p.write_bytes(0, len) }
    }
}

#[inline(always)]
fn alloc_small(size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
    let c = <Classes as alloc_core::SizeClasses>::class_of(size + HDR + CANARY);
    let t = slot::get();
    // The common case in line: a class with a reserve, the thread's quarantine made, the picked
    // slot full and a spare to put in its place. Everything else (the first use, a refill from
    // the pool, large classes) is one call out, which ends the path: the common one calls
    // nothing it has to keep values across, so it saves one register on entry (alloc-malloc's
    // `malloc_hardened`, around it, keeps the size for its own fallback), where it saved six
    // until 2026-12-02.
    if c < RESERVED_CLASSES && t != 0 && t != slot::GONE {
        // SAFETY: the thread's own quarantine (see `with_quarantine`).
        let t = unsafe { &mut *core::ptr::with_exposed_provenance_mut::<Quarantine>(t) };
        let slot = t.draw(RESERVE.trailing_zeros());
        let out = t.reserve[c][slot];
        let n = t.spares[c] as usize;
        if out != 0 && n != 0 {
            t.spares[c] = n as u8 - 1;
            // `% SPARE`: the count is at most SPARE (kept so by `quarantine_in`); the mask keeps
            // the index in bounds without a branch.
            t.reserve[c][slot] = t.spare[c][(n - 1) % SPARE];
            let len = RESERVED_SIZE[c];
            // SAFETY: a reserved block of class `c`, now the caller's; the secret is made (the
            // thread's quarantine was made after it).
            return Some(unsafe {
                hand_out(core::ptr::with_exposed_provenance_mut(out), len, size, align, zero, Key::made())
            });
        }
    }
    alloc_small_slow(size, align, zero)
}

/// [`alloc_small`] off its common path.
#[cold]
#[inline(never)]
fn alloc_small_slow(size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
    // SAFETY: at most MAX_SMALL bytes, aligned to 16.
    let l = unsafe { Layout::from_size_align_unchecked(size + HDR + CANARY, 16) };
    let (q, len) = match from_reserve(l) {
        Some(b) => b,
        None => from_pool(l)?,
    };
    // SAFETY: a block of `len` bytes the pool handed out, now the caller's.
    Some(unsafe { hand_out(q, len, size, align, zero, Key::now()) })
}

/// Makes pool block `q` (`len` bytes) a live block of `size` bytes: checks that it is still
/// zero if this preset freed it, writes its header and canary.
///
/// # Safety
///
/// `q` is a pool block of `len` bytes (`size` + 24 or more) no one else holds; `k` is the key
/// (the secret made).
#[inline(always)]
unsafe fn hand_out(q: *mut u8, len: usize, size: usize, align: usize, zero: bool, k: Key) -> NonNull<u8> {
    let user = q as usize + HDR;
    // SAFETY: a block the pool handed out, `len` bytes: its header words are ours.
    let (size_word, state) = unsafe { header(user) };
    let mut clean = false;
    if state.load(Ordering::Relaxed) == k.freed(user, len) {
        // Freed by this preset before, zeroed then: it must still be zero. (A block the pool
        // carves afresh has this word zero, whatever its slab held before: see `Pool`.)
        // SAFETY: the block's bytes after the header, a multiple of 16 (a class size less 16).
        if !unsafe { still_zero(q.add(HDR), len - HDR) } {
            report(ErrorKind::WriteAfterFree, user);
        }
        clean = true;
    }
    size_word.store(pack(size, align), Ordering::Relaxed);
    state.store(k.live(user), Ordering::Relaxed);
    // SAFETY: the canary lies inside the block (size + 16 + 8 <= len).
    unsafe {
        if zero && !clean {
            q.add(HDR).write_bytes(0, size);
        }
        q.add(HDR + size).cast::<u64>().write_unaligned(k.canary(user + size));
        NonNull::new_unchecked(q.add(HDR))
    }
}

/// The class and length of the pool block whose caller's bytes would start at `user`, if a slab
/// of the pool serving a class holds `user - 16` (a small block's header; any other address
/// gives `None` or, inside a slab, a block the header check then refuses).
///
/// # Safety
///
/// `user` is what a C caller frees or asks about: a block of this preset's pool that is live
/// (or quarantined or spare, which the pool still counts as live), so its segment stays; any
/// other address is the caller's misuse, looked up in the pool's maps before anything is read.
#[inline(always)]
unsafe fn small_block(user: usize) -> Option<(usize, usize)> {
    let q = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(user.wrapping_sub(HDR)))?;
    // SAFETY: as the caller promises.
    unsafe { POOL.slab_block(q) }
}

/// Frees a small block: header, canary and sized checks, zeroing, quarantine.
///
/// # Safety
///
/// `c` and `len` are what [`small_block`] found for `user`.
#[inline(always)]
unsafe fn free_small(user: usize, c: usize, len: usize, sized: Option<(usize, Option<usize>)>) {
    let q = user.wrapping_sub(HDR);
    // SAFETY: q lies in a slab of the pool (mapped while blocks of it can be named), 16-aligned:
    // its two words are readable, and only a block of this preset has the live word there (it
    // is keyed by the secret and the address).
    let (size_word, state) = unsafe { header(user) };
    let k = Key::made();
    let freed = k.freed(user, len);
    if let Err(w) = state.compare_exchange(k.live(user), freed, Ordering::AcqRel, Ordering::Relaxed) {
        report_state(user, w == freed);
    }
    let (size, align) = unpack(size_word.load(Ordering::Relaxed));
    let p = core::ptr::with_exposed_provenance_mut::<u8>(q);
    // SAFETY: the canary written at allocation, inside the block.
    if unsafe { p.add(HDR + size).cast::<u64>().read_unaligned() } != k.canary(user + size) {
        report(ErrorKind::CanaryCorrupted, user + size);
    }
    check_sized(user, size, align, sized);
    // Into the quarantine first and zeroed last, so that the zeroing is a tail call and the
    // path keeps no value across a call (one register saved on entry, four until 2026-12-02):
    // nothing reads the block's bytes before it leaves the thread's quarantine, many frees
    // later.
    let t = slot::get();
    if t == 0 || t == slot::GONE {
        // SAFETY: as below.
        return unsafe { free_small_without_quarantine(p, c, len) };
    }
    // SAFETY: the thread's own quarantine (see `with_quarantine`).
    match quarantine_in(unsafe { &mut *core::ptr::with_exposed_provenance_mut::<Quarantine>(t) }, q, c) {
        // SAFETY: the block's bytes after the header are ours until it leaves the quarantine.
        None => unsafe { simd::zero(p.add(HDR), len - HDR) },
        // SAFETY: as above; `out` is a block of the pool this preset freed, past its quarantine.
        Some(out) => unsafe { zero_and_give_back(p, len, out) },
    }
}

/// Reports a small block whose state word is not a live block's: a double free when it is the
/// freed word, else whatever the pool says the address is. One call that never returns, so
/// [`free_small`] keeps no value across a call (the report after `small_misuse`'s call made
/// `free` save and restore a register on every call until 2026-12-03).
#[cold]
#[inline(never)]
fn report_state(user: usize, freed: bool) -> ! {
    report(if freed { ErrorKind::DoubleFree } else { small_misuse(user) }, user)
}

/// The end of [`free_small`] on a thread with no quarantine yet (its first free before any
/// allocation) or none any more (its exit hook ran): out of line, so the common path makes no
/// call that it has to keep values across.
///
/// # Safety
///
/// As for [`zero_and_give_back`]: `p` is a block (of class `c`, `len` bytes) this preset is
/// freeing.
#[cold]
#[inline(never)]
unsafe fn free_small_without_quarantine(p: *mut u8, c: usize, len: usize) {
    let out = quarantine(p as usize, c);
    // SAFETY: as the caller promises; the block's bytes are zeroed before either block is
    // given back (`out` may be `p`'s).
    unsafe {
        simd::zero(p.add(HDR), len - HDR);
        if let Some(out) = out {
            to_pool(out)
        }
    }
}

/// Zeroes the block at `p` (`len` bytes, past the header), then gives `out` (maybe `p`'s block
/// itself) back to the pool.
///
/// # Safety
///
/// `p` is a block this preset is freeing, and `out` one it freed, past its quarantine.
#[cold]
#[inline(never)]
unsafe fn zero_and_give_back(p: *mut u8, len: usize, out: usize) {
    // SAFETY: as the caller promises.
    unsafe {
        simd::zero(p.add(HDR), len - HDR);
        to_pool(out)
    }
}

/// Gives a block past the quarantine back to the pool: out of line, since most stay with the
/// thread as spares (the pool's inlined free path made every free's stack frame larger).
///
/// # Safety
///
/// `b` is a block of [`POOL`] this preset freed.
#[cold]
#[inline(never)]
unsafe fn to_pool(b: usize) {
    // SAFETY: as the caller promises.
    unsafe { POOL.free_unsized(NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(b))) }
}

/// A fresh pool block of layout `l`, out of line for the same reason as [`to_pool`], checked
/// ([`check_from_pool`]).
#[cold]
#[inline(never)]
fn from_pool(l: Layout) -> Option<(*mut u8, usize)> {
    let (q, len) = SharedLayer::allocate(&POOL, l).ok().map(|b| (b.cast::<u8>().as_ptr(), b.len()))?;
    check_from_pool(q as usize, <Classes as alloc_core::SizeClasses>::class_of(l.size()), len);
    Some((q, len))
}

/// Checks a block the pool just handed out for class `c` (`len` bytes). The pool's free lists
/// are in band: a block free in the pool (past this preset's quarantine) holds the next one's
/// address in its first word, which an overflow out of the block before it, or a write through
/// a stale pointer, can rewrite; the pool's next allocation of the class then follows the
/// forged link. Every block this preset takes from the pool starts a block of a slab of class
/// `c`, and its state word is 0 (never handed out since its slab took the class: see `Pool`) or
/// the freed word this preset left (it zeroes and marks every block before the pool has it
/// back). Anything else (a live block, the middle of one, another class's slab, memory that is
/// not the pool's) is reported as `free list corrupted` at the link's address before the block
/// is anyone's. On this path only (the pool's allocations, a few in a hundred `malloc`s), so
/// `general` pays nothing; what passes is a free block of the class, which at worst is handed
/// out twice, and then either holder's free is a `double free` or the other's reuse a `write
/// after free`.
fn check_from_pool(q: usize, c: usize, len: usize) {
    let Some(p) = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(q)) else {
        report(ErrorKind::CorruptedFreeList, q)
    };
    // SAFETY: the pool just handed `q` out as a block of its own, so its segment stays. If a
    // forged link made it anything else, the pool's maps are looked up before anything near it
    // is read; what `slab_block_start` cannot rule out then is a segment another thread gives
    // back between the lookup and the read of its header, which then reads memory that may no
    // longer be a header (still mapped by the span heap, most likely answering no class, or
    // unmapped: a fault). Only on a path reached after the heap was corrupted: the pool itself
    // has already followed the forged link.
    if unsafe { POOL.slab_block_start(p) } != Some((c, len)) {
        report(ErrorKind::CorruptedFreeList, q);
    }
    // SAFETY: a block start in a slab of the pool (checked just above): its two words are
    // mapped and readable.
    let state = unsafe { header(q + HDR) }.1.load(Ordering::Relaxed);
    if state != 0 && state != Key::now().freed(q + HDR, len) {
        report(ErrorKind::CorruptedFreeList, q);
    }
}

fn check_sized(user: usize, size: usize, align: usize, sized: Option<(usize, Option<usize>)>) {
    if let Some((s, a)) = sized {
        if s != size || a.is_some_and(|a| a != align) {
            report(ErrorKind::SizedMismatch, user);
        }
    }
}

/// What is wrong with `user`, an address in the pool that is not the start of a live block's
/// caller bytes.
fn small_misuse(user: usize) -> ErrorKind {
    if !user.is_multiple_of(16) {
        return ErrorKind::InteriorPointer;
    }
    let q = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(user.wrapping_sub(HDR)));
    // SAFETY: any address: the pool checks its maps before reading.
    q.map_or(ErrorKind::ForeignPointer, |q| unsafe { POOL.misuse_at(q) }.kind)
}

/// The layout of a live small block at `user`, if it is one.
fn small_layout(user: usize) -> Option<Layout> {
    let q = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(user.wrapping_sub(HDR)))?;
    // SAFETY: any address (see `free_small`).
    unsafe { POOL.size_of(q) }?;
    // SAFETY: a live pool block starts at q.
    let (size_word, state) = unsafe { header(user) };
    if state.load(Ordering::Relaxed) != live_word(user) {
        return None;
    }
    let (size, align) = unpack(size_word.load(Ordering::Relaxed));
    Layout::from_size_align(size, align).ok()
}

/// A thread's quarantine of freed small blocks and its reserve of blocks to allocate from
/// (pool addresses; 0: empty).
struct Quarantine {
    fifo: [usize; FIFO],
    head: usize,
    ring: [usize; RING],
    reserve: [[usize; RESERVE]; RESERVED_CLASSES],
    /// Blocks past the quarantine kept for the reserve's refills, per class (a stack of
    /// `spares[c]`), instead of a round trip through the pool on each free and allocation.
    spare: [[usize; SPARE]; RESERVED_CLASSES],
    spares: [u8; RESERVED_CLASSES],
    /// The thread's xorshift state (never 0: seeded when the quarantine is made).
    rng: u64,
    /// Random bits not used yet, below a marker bit (0: none): each output of the generator
    /// serves several picks ([`Quarantine::draw`]).
    bits: u64,
}

// Two pages hold it; the module's documentation says under 7 KiB.
const _: () = assert!(core::mem::size_of::<Quarantine>() < 7 << 10);

impl Quarantine {
    /// The next number of the thread's xorshift generator.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// `k` random bits (at most 8) from the generator's outputs, each output used up before
    /// the next is made: a pick costs a compare and two shifts, where a generator step per
    /// pick (two per `malloc` + `free` pair) was about 20 instructions of the pair until
    /// 2026-12-02. The bits are the generator's own, taken in order, none used twice: the
    /// entropy per pick is unchanged.
    #[inline(always)]
    fn draw(&mut self, k: u32) -> usize {
        debug_assert!((1..=8).contains(&k));
        if self.bits >> k == 0 {
            self.refill();
        }
        let r = self.bits & ((1 << k) - 1);
        self.bits >>= k;
        r as usize
    }

    /// Fewer bits left than a pick takes: 63 fresh ones under the marker (once every 10 to 21
    /// picks). In line: a call here made `free` save registers on entry.
    #[inline(always)]
    fn refill(&mut self) {
        self.bits = self.next() >> 1 | 1 << 63;
    }
}

/// The calling thread's quarantine: a word of thread-local storage that holds 0 before the
/// thread's first use, [`slot::GONE`] once its exit hook ran, else the address of its
/// [`Quarantine`] (a record of [`store`]). One word, so that on x86_64 Linux it can be a symbol of the
/// *initial-exec* TLS model, read as `fs:0` plus an offset (the pool's thread cache does the
/// same, see alloc-pool-lockfree's `tls.rs`): Rust's `thread_local!` in this shared library is
/// a `__tls_get_addr` call per access, two per `malloc` + `free` pair, which was a tenth of the
/// preset's instructions on cfrac. A 6 KiB quarantine in static TLS would not fit glibc's
/// reserve for libraries loaded with `dlopen`; a word does.
mod slot {
    /// The thread's exit hook ran: no quarantine (frees go straight to the pool).
    pub const GONE: usize = 1;

    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    mod ie {
        alloc_core::initial_exec_tls! {
            /// The calling thread's word.
            pub fn word() -> *mut usize = "alloc_malloc_hardened_quarantine_v0_1";
        }
    }

    /// The word now.
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    #[inline(always)]
    pub fn get() -> usize {
        // SAFETY: the thread's own word (see `ie`), read by this thread only.
        unsafe { *ie::word() }
    }

    /// Sets the word.
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    #[inline(always)]
    pub fn set(v: usize) {
        // SAFETY: as in `get`.
        unsafe { *ie::word() = v }
    }

    /// Elsewhere (and under Miri) the word is a `thread_local!`.
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    mod fallback {
        std::thread_local! {
            static WORD: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
        }

        /// The word now ([`GONE`](super::GONE) while the thread's thread-locals are being
        /// destroyed).
        pub fn get() -> usize {
            WORD.try_with(|w| w.get()).unwrap_or(super::GONE)
        }

        /// Sets the word.
        pub fn set(v: usize) {
            let _ = WORD.try_with(|w| w.set(v));
        }
    }

    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    pub use fallback::{get, set};
}

/// Runs `f` on the calling thread's quarantine, made on its first use; `None` once the thread's
/// exit hook ran, or when the pool has no memory for it (the caller then goes without).
#[inline(always)]
fn with_quarantine<R>(f: impl FnOnce(&mut Quarantine) -> R) -> Option<R> {
    let mut q = slot::get();
    if q == 0 {
        q = start()?;
    }
    if q == slot::GONE {
        return None;
    }
    // SAFETY: the thread's own quarantine (a record only this thread names, live until its
    // exit hook frees it and sets the word to GONE); nothing else borrows it during `f` (the
    // pool, which `f` may call, never calls back into this preset).
    Some(f(unsafe { &mut *core::ptr::with_exposed_provenance_mut::<Quarantine>(q) }))
}

/// Makes the calling thread's quarantine: a zeroed record of [`store`] (a mapping apart from
/// every block, between guard pages), its generator seeded, stored in the thread's word before
/// the exit hook is armed (arming may allocate: glibc past its first 32 keys; that allocation
/// comes back into this preset and finds the quarantine made).
#[cold]
#[inline(never)]
fn start() -> Option<usize> {
    /// Quarantines made: a record a new thread reuses gets a seed of its own.
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let q = store::take(core::mem::size_of::<Quarantine>())?.cast::<Quarantine>().as_ptr();
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    // SAFETY: a fresh zeroed record, page-aligned and large enough for a Quarantine (all zeros
    // is its empty value: every slot empty, head 0); only the generator needs a value.
    unsafe { (*q).rng = (secret() ^ (q as usize) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) as u64 | 1 };
    slot::set(q.expose_provenance());
    // Without a key the thread's blocks stay with it when it exits (see `hook::arm`).
    hook::arm();
    Some(q as usize)
}

/// A pool block for layout `l` taken at random from the calling thread's reserve of its class,
/// refilled from the pool; `None` for classes without a reserve, when the pool is out of memory,
/// or once the thread's exit hook ran (the caller then asks the pool itself).
#[inline(always)]
fn from_reserve(l: Layout) -> Option<(*mut u8, usize)> {
    let c = <Classes as alloc_core::SizeClasses>::class_of(l.size());
    if c >= RESERVED_CLASSES {
        return None;
    }
    let len = <Classes as alloc_core::SizeClasses>::size(c);
    let fresh = || from_pool(l).map(|(b, _)| b as usize);
    with_quarantine(
        #[inline(always)]
        |t| {
            let slot = t.draw(RESERVE.trailing_zeros());
            if t.reserve[c][slot] == 0 {
                // The class's first use on this thread (or a refill cut short by out of memory):
                // the whole row, so every pick from now on is among RESERVE blocks. Only the slot
                // picked is looked at otherwise (every allocation scanned the row until 2026-12-01).
                fill(&mut t.reserve[c], fresh)?;
            }
            // The refill: a block past the quarantine if the thread kept one of this class, else
            // the pool's (a pool allocation and a pool free per pair until 2026-12-01).
            let refill = match t.spares[c] {
                0 => fresh()?,
                n => {
                    t.spares[c] = n - 1;
                    t.spare[c][n as usize - 1]
                }
            };
            let out = core::mem::replace(&mut t.reserve[c][slot], refill);
            debug_assert_eq!(
                // SAFETY: a block of the pool, live.
                unsafe { POOL.slab_block_size(NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(out))) },
                Some(len)
            );
            Some((core::ptr::with_exposed_provenance_mut::<u8>(out), len))
        },
    )
    .flatten()
}

/// Fills the empty slots of a reserve row with fresh blocks.
#[cold]
#[inline(never)]
fn fill(row: &mut [usize; RESERVE], fresh: impl Fn() -> Option<usize>) -> Option<()> {
    for b in row.iter_mut().filter(|b| **b == 0) {
        *b = fresh()?;
    }
    Some(())
}

/// The bit a quarantined block's entry keeps its class from (plus one; 0: a class without a
/// reserve) above: pool blocks lie below 2^48 (the pool's segment map covers no more).
const TAG_SHIFT: u32 = 48;

/// Puts block `q` (of class `c`, as the pool's slab says) in the calling thread's quarantine;
/// returns the block that leaves it when it is to go back to the pool (a block of a class with
/// a reserve is kept as a spare for it while there is room).
#[inline(always)]
fn quarantine(q: usize, c: usize) -> Option<usize> {
    with_quarantine(|t| quarantine_in(t, q, c))
        // The thread's exit hook ran (or no quarantine could be made): no quarantine.
        .unwrap_or(Some(q))
}

/// [`quarantine`] into the thread's quarantine `t`.
#[inline(always)]
fn quarantine_in(t: &mut Quarantine, q: usize, c: usize) -> Option<usize> {
    let tag = if c < RESERVED_CLASSES { (c + 1) << TAG_SHIFT } else { 0 };
    {
        // `% FIFO` (a mask): in bounds without a branch; the head stays below FIFO anyway.
        let h = t.head % FIFO;
        t.head = (h + 1) % FIFO;
        let out = core::mem::replace(&mut t.fifo[h], q | tag);
        if out == 0 {
            return None;
        }
        let slot = t.draw(RING.trailing_zeros());
        let back = core::mem::replace(&mut t.ring[slot], out);
        let (b, tag) = (back & ((1 << TAG_SHIFT) - 1), back >> TAG_SHIFT);
        if tag != 0 {
            let c = tag - 1;
            let n = t.spares[c] as usize;
            if n < SPARE {
                t.spare[c][n] = b;
                t.spares[c] = n as u8 + 1;
                return None;
            }
        }
        (b != 0).then_some(b)
    }
}

/// Frees every block of the calling thread's quarantine and reserve, and the quarantine itself
/// (at thread exit); frees after this go straight to the pool.
fn flush_quarantine() {
    let q = slot::get();
    slot::set(slot::GONE);
    let Some(p) = NonNull::new(core::ptr::with_exposed_provenance_mut::<Quarantine>(q)).filter(|_| q != slot::GONE)
    else {
        return;
    };
    // SAFETY: the thread's own quarantine, which no one else names; the word no longer does.
    let c = unsafe { &mut *p.as_ptr() };
    let spares = c.spare.iter_mut().zip(c.spares).flat_map(|(row, n)| &mut row[..n as usize]);
    for q in c.fifo.iter_mut().chain(c.ring.iter_mut()).chain(c.reserve.iter_mut().flatten()).chain(spares) {
        let b = core::mem::replace(q, 0) & ((1 << TAG_SHIFT) - 1);
        if let Some(b) = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(b)) {
            // SAFETY: a block this preset freed into the quarantine or held in the reserve.
            unsafe { POOL.free_unsized(b) };
        }
    }
    // SAFETY: the record the quarantine lived in, taken by `start` for a Quarantine; nothing
    // refers to it now.
    unsafe { store::give_back(p.cast(), core::mem::size_of::<Quarantine>()) };
}

mod hook {
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The pthread key, plus one (0: not made yet).
    static KEY: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn destructor(_: *mut libc::c_void) {
        super::flush_quarantine();
    }

    /// The key stored in `KEY` (one decoding for both paths that read it, so the rare one, a
    /// lost race, is the common one's code).
    fn stored(k: usize) -> libc::pthread_key_t {
        (k - 1) as libc::pthread_key_t
    }

    /// Arms the calling thread's exit hook. Without a key (all taken) it is not armed: the
    /// quarantine's and the reserve's blocks then stay with the exited thread, at most `FIFO +
    /// RING` and `RESERVE` per size class it used.
    pub fn arm() {
        let k = match KEY.load(Ordering::Relaxed) {
            0 => {
                let mut k: libc::pthread_key_t = 0;
                // SAFETY: a fresh key with our destructor.
                if unsafe { libc::pthread_key_create(&mut k, Some(destructor)) } != 0 {
                    return;
                }
                match KEY.compare_exchange(0, k as usize + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => k,
                    Err(won) => {
                        // SAFETY: our own key, never set.
                        unsafe { libc::pthread_key_delete(k) };
                        stored(won)
                    }
                }
            }
            k => stored(k),
        };
        // SAFETY: any non-null value arms the destructor (glibc keeps the first 32 keys' values
        // without allocating).
        unsafe { libc::pthread_setspecific(k, core::ptr::dangling::<libc::c_void>()) };
    }
}

// ---------------------------------------------------------------------------------------------
// Large blocks

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Mapping {
    /// The caller's address (0: empty; 1: removed).
    user: usize,
    base: usize,
    len: usize,
}

const EMPTY: Mapping = Mapping { user: 0, base: 0, len: 0 };
const REMOVED: usize = 1;
/// Live large blocks at most (open addressing; an allocation past 3/4 of it fails).
const TABLE: usize = 1 << 16;

/// Mappings past their quarantine kept (still `PROT_NONE`, their pages given back: see
/// [`retire`]) for reuse by a later large block of about their size: one `mprotect` instead of
/// a fresh `mmap` and an `munmap` of the old one.
const LARGE_CACHE: usize = 16;
/// Large blocks whose mapping is at most this long are *mid-size* (zlib's 32 KiB window, for
/// one): freed, their bytes are zeroed, not made inaccessible, and the mapping is kept
/// accessible for a block of the same length, which checks the zeroes when it takes it (a write
/// after free is reported there), as small blocks do. A `mprotect` per free and per reuse cost
/// git 2 system calls for every such block (5,211 `mprotect`, 1,878 `mmap` and 1,511 `munmap`
/// for `git log -p -n 300`, 1.75 × `general`'s time). hardened_malloc's slab classes go to 128
/// KiB; here the pool's go to 16 KiB.
pub const MID: usize = 64 << 10;
/// Freed mid-size mappings kept for reuse (at most 2 MiB). Zeroed, their pages are resident
/// whether the program touched them or not: with 64, git's peak RSS was 1.33 × `general`'s
/// (1.31 × with 32, at the same time; with 16 most reuses missed and it took 1.46 × the time).
const MID_CACHE: usize = 32;
/// ... and at most this many of their bytes (address space: their pages went back at the free).
const LARGE_CACHE_BYTES: usize = 64 << 20;

struct Large {
    live: [Mapping; TABLE],
    count: usize,
    quarantine: [Mapping; LARGE_QUARANTINE],
    next: usize,
    quarantined_bytes: usize,
    cache: [Mapping; LARGE_CACHE],
    cached_bytes: usize,
    /// Freed mid-size mappings, zeroed past their first 16 bytes (0: empty).
    mid: [Mapping; MID_CACHE],
}

static LARGE: lock_api::Mutex<SpinLock, Large> = lock_api::Mutex::new(Large {
    live: [EMPTY; TABLE],
    count: 0,
    quarantine: [EMPTY; LARGE_QUARANTINE],
    next: 0,
    quarantined_bytes: 0,
    cache: [EMPTY; LARGE_CACHE],
    cached_bytes: 0,
    mid: [EMPTY; MID_CACHE],
});

fn slot(user: usize) -> usize {
    ((user >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) % TABLE
}

impl Large {
    fn find(&self, user: usize) -> Option<usize> {
        let mut i = slot(user);
        for _ in 0..TABLE {
            match self.live[i].user {
                0 => return None,
                u if u == user => return Some(i),
                _ => i = (i + 1) % TABLE,
            }
        }
        None
    }

    fn insert(&mut self, m: Mapping) -> bool {
        if self.count >= TABLE / 4 * 3 {
            return false;
        }
        let mut i = slot(m.user);
        while self.live[i].user > REMOVED {
            i = (i + 1) % TABLE;
        }
        self.live[i] = m;
        self.count += 1;
        true
    }

    /// Takes entry `i` out of the live table, leaving a tombstone that lookups probe past and
    /// insertions reuse (its `base` and `len` stay, unread).
    fn remove(&mut self, i: usize) {
        self.live[i].user = REMOVED;
        self.count -= 1;
    }

    /// What is wrong with `user`, which is no live large block's start.
    fn misuse(&self, user: usize) -> ErrorKind {
        let inside = |m: &Mapping| m.user > REMOVED && user.wrapping_sub(m.base) < m.len;
        let freed = || self.quarantine.iter().chain(self.cache.iter()).chain(self.mid.iter());
        if freed().any(|m| m.user == user) {
            ErrorKind::DoubleFree
        } else if self.live.iter().any(inside) {
            ErrorKind::InteriorPointer
        } else if freed().any(inside) {
            ErrorKind::UseAfterFree
        } else {
            ErrorKind::ForeignPointer
        }
    }

    /// The smallest cached mapping of `len` to `2 * len` bytes, taken out of the cache.
    fn take_cached(&mut self, len: usize) -> Option<Mapping> {
        let fits = |m: &Mapping| m.user != 0 && m.len >= len && m.len - len <= len;
        let i = (0..LARGE_CACHE).filter(|&i| fits(&self.cache[i])).min_by_key(|&i| self.cache[i].len)?;
        let m = core::mem::replace(&mut self.cache[i], EMPTY);
        self.cached_bytes -= m.len;
        Some(m)
    }

    /// A freed mid-size mapping of exactly `len` bytes, if one is kept.
    fn take_mid(&mut self, len: usize) -> Option<Mapping> {
        let i = self.mid.iter().position(|m| m.user != 0 && m.len == len)?;
        Some(core::mem::replace(&mut self.mid[i], EMPTY))
    }

    /// Keeps a mid-size mapping past its quarantine; gives it back when there is no room.
    fn keep_mid(&mut self, m: Mapping) -> Option<Mapping> {
        match self.mid.iter().position(|c| c.user == 0) {
            Some(i) => {
                self.mid[i] = m;
                None
            }
            None => Some(m),
        }
    }

    /// Keeps `m`, out of the quarantine, for reuse; returns it when there is no room (it is
    /// then unmapped).
    fn cache(&mut self, m: Mapping) -> Option<Mapping> {
        if self.cached_bytes + m.len > LARGE_CACHE_BYTES {
            return Some(m);
        }
        match self.cache.iter().position(|c| c.user == 0) {
            Some(i) => {
                self.cache[i] = m;
                self.cached_bytes += m.len;
                None
            }
            None => Some(m),
        }
    }
}

/// A mapping whose first `len` bytes are readable, writable and zero (past the first 16, the
/// header's), and its whole length: a cached one of `len` to `2 * len` bytes with its first
/// `len` made accessible again (the rest stays `PROT_NONE`, a guard after the block), else a
/// fresh one of `len`.
fn map_large(len: usize) -> Option<(usize, usize)> {
    if len <= MID {
        let kept = LARGE.lock().take_mid(len);
        if let Some(m) = kept {
            // Zeroed past its first 16 bytes when freed (every block's bytes lie past them):
            // still zero, it serves `calloc` too.
            // SAFETY: a mapping of this preset, out of its quarantine, nobody's now, accessible;
            // `len - 16` is a multiple of 16 (a whole number of pages less 16), at least 16.
            if !unsafe { still_zero(core::ptr::with_exposed_provenance::<u8>(m.base + HDR), m.len - HDR) } {
                report(ErrorKind::WriteAfterFree, m.user);
            }
            return Some((m.base, m.len));
        }
    } else {
        let cached = LARGE.lock().take_cached(len);
        if let Some(m) = cached {
            // Fresh pages since its free ([`retire`]): zero, so `calloc` takes it too; the pages
            // past the block stay inaccessible, a guard after it, and hold no memory.
            // SAFETY: a mapping of this preset, out of its quarantine, nobody's now; `len` is a
            // whole number of pages, at most its length.
            if unsafe { libc::mprotect(m.base as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE) } == 0 {
                return Some((m.base, m.len));
            }
            // SAFETY: as above.
            unsafe { libc::munmap(m.base as *mut libc::c_void, m.len) };
        }
    }
    // SAFETY: a fresh anonymous mapping.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let _ = (base as *mut u8).expose_provenance();
    Some((base as usize, len))
}

/// Makes a freed large block's mapping fault from now on and gives its pages back to the OS:
/// one `mmap` of a fresh inaccessible mapping over it (`MAP_FIXED`, hardened_malloc's way).
/// Until 2026-12-03 a `mprotect` made it inaccessible but left its pages resident through the
/// quarantine and the cache: a program that took and freed one 8 MiB buffer 20 times peaked at
/// 166 MB against `general`'s 10 (64 MiB: 264 against 67; hardened_malloc and Scudo at the
/// live size). Where the `mmap` fails (the kernel's limit of mappings), `mprotect` and
/// `madvise` do the same in two calls; false if those fail too.
///
/// The mapping is zero from here on: a reuse from the cache serves `calloc` as well.
fn retire(base: usize, len: usize) -> bool {
    let p = core::ptr::with_exposed_provenance_mut::<libc::c_void>(base);
    // SAFETY: the whole mapping is the freed block's, in no list: nothing else uses the range,
    // and the fresh mapping takes exactly its place.
    let fresh = unsafe {
        libc::mmap(
            p,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if fresh == p {
        return true;
    }
    // SAFETY: as above; the range's bytes are nobody's (`MADV_DONTNEED` of a private anonymous
    // mapping: zero pages on the next access, after `mprotect` makes one possible again).
    unsafe { libc::mprotect(p, len, libc::PROT_NONE) == 0 && libc::madvise(p, len, libc::MADV_DONTNEED) == 0 }
}

/// A large block of `size` bytes aligned to `align`, its bytes zero (every mapping
/// [`map_large`] gives is): `calloc` needs nothing more.
fn alloc_large(size: usize, align: usize) -> Option<NonNull<u8>> {
    let page = alloc_core::source::page_size();
    // The block starts `off` bytes into the mapping at most: the mapping starts on a page, so
    // the first multiple of the alignment past its header lies at most one alignment in (the
    // alignment is a power of two, a multiple of the page once it is past one).
    let off = round_up(HDR, align.max(16))?;
    let need = round_up(off.checked_add(size)?.checked_add(CANARY)?, page)?;
    let (base, len) = map_large(need)?;
    let user = round_up(base + HDR, align.max(16))?;
    debug_assert!(user - HDR >= base && user + size + CANARY <= base + need);
    let m = Mapping { user, base, len };
    if !LARGE.lock().insert(m) {
        // SAFETY: our mapping, never handed out.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
        return None;
    }
    // SAFETY: the header and canary lie in the accessible part of the mapping (user - 16 >= base;
    // user + size + 8 <= base + need).
    unsafe {
        let (size_word, state) = header(user);
        size_word.store(pack(size, align), Ordering::Relaxed);
        state.store(live_word(user), Ordering::Relaxed);
        core::ptr::with_exposed_provenance_mut::<u8>(user + size).cast::<u64>().write_unaligned(canary(user + size));
    }
    NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(user))
}

fn free_large(user: usize, sized: Option<(usize, Option<usize>)>) {
    let mut large = LARGE.lock();
    let Some(i) = large.find(user) else {
        let kind = large.misuse(user);
        drop(large);
        report(kind, user);
    };
    let m = large.live[i];
    // SAFETY: a live mapping of this preset: its header is ours.
    let (size_word, state) = unsafe { header(user) };
    if state.load(Ordering::Relaxed) != live_word(user) {
        drop(large);
        report(ErrorKind::Corrupted, user);
    }
    let (size, align) = unpack(size_word.load(Ordering::Relaxed));
    // SAFETY: the canary written at allocation, inside the mapping.
    if unsafe { core::ptr::with_exposed_provenance::<u8>(user + size).cast::<u64>().read_unaligned() }
        != canary(user + size)
    {
        drop(large);
        report(ErrorKind::CanaryCorrupted, user + size);
    }
    if let Some((s, a)) = sized {
        if s != size || a.is_some_and(|a| a != align) {
            drop(large);
            report(ErrorKind::SizedMismatch, user);
        }
    }
    large.remove(i);
    // The mapping is in no list now: nothing can hand it out again, so it is made inaccessible
    // without the lock, which a `mprotect` (a TLB shootdown on every core the process runs on)
    // held for microseconds until 2026-12-01. Until it is back under the lock in the
    // quarantine, a second free of it is reported as a foreign pointer, not a double free.
    drop(large);
    if m.len <= MID {
        // SAFETY: the mapping is this block's; its bytes past the first 16 (where every
        // block's header and bytes lie) are zeroed, to be checked when it is reused.
        unsafe { core::ptr::with_exposed_provenance_mut::<u8>(m.base + HDR).write_bytes(0, m.len - HDR) };
    } else if !retire(m.base, m.len) {
        // Neither call took: the range may be unmapped now, and another mapping may come to
        // lie there; it is forgotten (never unmapped by this preset nor handed out again).
        return;
    }
    let mut large = LARGE.lock();
    // Into the quarantine; what leaves it (the oldest, while over either bound) goes to the
    // cache or is unmapped. The ring is in age order from `next` (oldest) round to `at` (this
    // block), with empty slots before it fills: over the byte bound, the oldest entries go until
    // it holds, this block last of all (it stays even alone over the bound).
    let mut unmap = [EMPTY; LARGE_QUARANTINE];
    let mut n = 0;
    let at = large.next;
    let old = core::mem::replace(&mut large.quarantine[at], m);
    large.next = (at + 1) % LARGE_QUARANTINE;
    large.quarantined_bytes += m.len;
    let mut leaving = old;
    let mut j = large.next;
    loop {
        if leaving.user != 0 {
            large.quarantined_bytes -= leaving.len;
            let out = if leaving.len <= MID { large.keep_mid(leaving) } else { large.cache(leaving) };
            if let Some(o) = out {
                unmap[n] = o;
                n += 1;
            }
        }
        if large.quarantined_bytes <= LARGE_QUARANTINE_BYTES || j == at {
            break;
        }
        leaving = core::mem::replace(&mut large.quarantine[j], EMPTY);
        j = (j + 1) % LARGE_QUARANTINE;
    }
    drop(large);
    for o in &unmap[..n] {
        // SAFETY: a mapping of this preset, freed and out of the quarantine.
        unsafe { libc::munmap(o.base as *mut libc::c_void, o.len) };
    }
}

fn large_layout(user: usize) -> Option<Layout> {
    let large = LARGE.lock();
    large.find(user)?;
    // SAFETY: a live mapping of this preset.
    let (size_word, _) = unsafe { header(user) };
    let (size, align) = unpack(size_word.load(Ordering::Relaxed));
    Layout::from_size_align(size, align).ok()
}

// ---------------------------------------------------------------------------------------------
// The preset

/// The `hardened` preset (see the module's documentation).
pub struct Hardened;

fn in_pool(addr: usize) -> bool {
    NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(addr)).is_some_and(|p| alloc_core::Owns::owns(&POOL, p))
}

/// C's `free(ptr)` with every check: [`free`] with no size, out of line and `extern "C"`, so
/// that `free`'s entry point passes the pointer alone (an `Option` passed by reference made it
/// set up a stack frame on every preset's path) in a tail call (a call that cannot unwind).
///
/// # Safety
///
/// `ptr` is what the C caller passed.
#[inline(never)]
pub unsafe extern "C" fn free_unsized(ptr: NonNull<u8>) {
    // SAFETY: as the caller promises.
    unsafe { free(ptr, None) }
}

/// Frees `ptr` with every check; `sized` is the size (and alignment) a sized deallocation
/// passed.
///
/// # Safety
///
/// `ptr` is what the C caller passed.
#[inline(always)]
pub unsafe fn free(ptr: NonNull<u8>, sized: Option<(usize, Option<usize>)>) {
    let user = ptr.as_ptr() as usize;
    // One lookup in the pool's maps for a small block (`in_pool` and then the block's length
    // were two until 2026-12-01); everything else takes the path below.
    // SAFETY: the caller's pointer (see `small_block`).
    match unsafe { small_block(user) } {
        // SAFETY: the length just found.
        Some((c, len)) => unsafe { free_small(user, c, len, sized) },
        None => match sized {
            None => free_not_small_unsized(user),
            Some(_) => free_not_small(user, sized),
        },
    }
}

/// [`free_not_small`] with no size: `free` passes the address alone, in a register, where an
/// `Option` of a size passed by reference made it keep a stack frame for the call.
#[cold]
#[inline(never)]
fn free_not_small_unsized(user: usize) {
    free_not_small(user, None)
}

/// `free` of anything but a small block's start: a `malloc(0)` address, a large block, or
/// misuse (an address in the pool that is no small block's start is reported here).
#[cold]
#[inline(never)]
fn free_not_small(user: usize, sized: Option<(usize, Option<usize>)>) {
    if in_zero_region(user) {
        if !user.is_multiple_of(16) {
            report(ErrorKind::InteriorPointer, user);
        } else if sized.is_some_and(|(s, _)| s != 0) {
            report(ErrorKind::SizedMismatch, user);
        }
        return;
    }
    if in_pool(user) {
        report(small_misuse(user), user)
    } else {
        free_large(user, sized)
    }
}

impl Backend for Hardened {
    fn alloc(&self, layout: Layout, zero: bool) -> Option<NonNull<u8>> {
        // `malloc(0)` reaches here as one byte (the socket's layout); the zero region serves
        // requests of 0 through `alloc_zero_sized` instead.
        if layout.size() <= SMALL && layout.align() <= 16 {
            alloc_small(layout.size(), layout.align(), zero)
        } else {
            alloc_large(layout.size(), layout.align())
        }
    }

    unsafe fn layout_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        let user = ptr.as_ptr() as usize;
        if in_zero_region(user) {
            return user.is_multiple_of(16).then(|| Layout::from_size_align(0, 16).ok()).flatten();
        }
        if in_pool(user) {
            small_layout(user)
        } else {
            large_layout(user)
        }
    }

    unsafe fn free(&self, ptr: NonNull<u8>, _: Layout) {
        // SAFETY: the caller's pointer.
        unsafe { free(ptr, None) }
    }

    unsafe fn realloc(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Option<NonNull<u8>> {
        let q = self.alloc(new, false)?;
        // SAFETY: both live; the old block holds old.size() bytes of the caller's.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), q.as_ptr(), old.size().min(new.size()));
            free(ptr, None);
        }
        Some(q)
    }

    unsafe fn usable(&self, _: NonNull<u8>, layout: Layout) -> usize {
        // Exactly what was asked for: the canary sits right after it.
        layout.size()
    }

    fn misuse(&self, ptr: NonNull<u8>) -> HeapError {
        let user = ptr.as_ptr() as usize;
        let kind = if in_zero_region(user) {
            ErrorKind::InteriorPointer
        } else if in_pool(user) {
            // A block freed into the quarantine is still the pool's live block, which the pool
            // names a double free (as it does any block start it carved).
            small_misuse(user)
        } else {
            LARGE.lock().misuse(user)
        };
        HeapError::new(kind, user)
    }

    fn lock_for_fork(&self) {
        store::lock_for_fork();
        core::mem::forget(LARGE.lock());
        POOL.lock_for_fork();
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: held since `lock_for_fork`, as the caller promises.
        unsafe {
            POOL.unlock_after_fork();
            LARGE.force_unlock();
            store::unlock_after_fork();
        }
    }

    fn alloc_zero_sized(&self) -> Option<NonNull<u8>> {
        alloc_zero_sized()
    }

    fn checks_sized_frees(&self) -> bool {
        true
    }

    unsafe fn free_sized(&self, ptr: NonNull<u8>, size: usize, align: Option<usize>) {
        // SAFETY: the caller's pointer; `free` checks it before anything else.
        unsafe { free(ptr, Some((size, align))) }
    }
}

/// `malloc(size)` (size above 0) under this preset (inline: alloc-malloc's `malloc_hardened`
/// is the one function around it).
#[inline]
pub fn malloc(size: usize) -> Option<NonNull<u8>> {
    if size <= SMALL {
        alloc_small(size, 16, false)
    } else {
        alloc_large(size, 16)
    }
}

/// `malloc(0)` under this preset: a unique, inaccessible address.
pub fn alloc_zero_sized() -> Option<NonNull<u8>> {
    alloc_zero()
}

#[cfg(test)]
mod tests {
    //! The large-block table, the mapping cache and the generator, tested as data structures:
    //! the C programs reach them only through timing and capacity (a table that probes badly,
    //! a cache that never gives a mapping back, a generator with a short cycle all still pass
    //! every misuse case), which mutation testing showed (`conformance/README.md`).

    use super::*;
    #[cfg(target_os = "linux")]
    use conformance::misuse::protection;
    use std::boxed::Box;
    use std::vec::Vec;

    const MIB: usize = 1 << 20;

    fn table() -> Box<Large> {
        // SAFETY: all zeros is an empty `Large`: every entry EMPTY, every count 0.
        unsafe { Box::<Large>::new_zeroed().assume_init() }
    }

    /// A mapping whose block starts one header in, as `alloc_large` lays it out.
    fn mapping(base: usize, len: usize) -> Mapping {
        Mapping { user: base + HDR, base, len }
    }

    /// `n` block addresses, 16 apart from `from` on, that all hash to the table slot `want`.
    fn colliding(want: usize, from: usize, n: usize) -> Vec<usize> {
        (0..).map(|i| from + 16 * i).filter(|&u| slot(u) == want).take(n).collect()
    }

    /// Held by every test that allocates from [`POOL`]: one of them compares the pool's totals.
    static POOL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The preset as a `GlobalAlloc`, for the conformance operation machine: every free a sized
    /// one (`free_sized` with the layout's size and alignment), so the machine's frees are
    /// checked as C++'s sized `delete` is.
    struct AsGlobal;

    // SAFETY: each call goes to the preset, which serves every layout the machine asks for
    // (non-zero sizes, alignments up to a page) or gives null, and frees what it handed out.
    unsafe impl core::alloc::GlobalAlloc for AsGlobal {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            Hardened.alloc(layout, false).map_or(core::ptr::null_mut(), NonNull::as_ptr)
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            Hardened.alloc(layout, true).map_or(core::ptr::null_mut(), NonNull::as_ptr)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: a live block of the preset, with the layout it was allocated with.
            unsafe { Hardened.free_sized(NonNull::new_unchecked(ptr), layout.size(), Some(layout.align())) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let Ok(new) = Layout::from_size_align(new_size, layout.align()) else { return core::ptr::null_mut() };
            // SAFETY: a live block of the preset with `layout`.
            unsafe { Hardened.realloc(NonNull::new_unchecked(ptr), layout, new) }
                .map_or(core::ptr::null_mut(), NonNull::as_ptr)
        }
    }

    /// The preset itself (its pool, quarantine, reserve, large mappings) under the operation
    /// machine the fuzz targets drive, on seeded random inputs, on one thread and on two (frees
    /// from the other thread, blocks checked against both threads' live ones): every byte a
    /// block was given reads back, no report. The `hardened` fuzz target cannot do this: a
    /// program that links alloc-malloc gets its `malloc` symbols as its own.
    #[test]
    fn the_operation_machine_finds_nothing_wrong_with_the_preset() {
        use conformance::{Machine, Op, ViaGlobalAlloc};
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Size and alignment codes as the fuzz inputs give them (`conformance::decode_size`:
        // log-uniform up to 1 MiB, so small, mid-size and large blocks alike).
        let mut op = || {
            let r = next();
            let (slot, size, align, zeroed) = ((r >> 8) as u16, (r >> 24) as u32, (r >> 56) as u8, r & 1 == 1);
            match r % 20 {
                0..=8 => Op::Alloc { size, align, zeroed },
                9..=14 => Op::Free { slot },
                15..=17 => Op::Realloc { slot, size, zeroed },
                18 => Op::ReallocAligned { slot, size, align, zeroed },
                _ => Op::Reset,
            }
        };
        for round in 0..24 {
            let input: Vec<Op> = (0..500 + 50 * round).map(|_| op()).collect();
            let mut m = Machine::new(ViaGlobalAlloc(&AsGlobal), false);
            for (i, &o) in input.iter().enumerate() {
                if let Err(f) = m.apply(o) {
                    panic!("round {round}, operation {i} ({o:?}): {f}");
                }
            }
            m.finish().unwrap_or_else(|f| panic!("round {round}, freeing what was left: {f}"));
            conformance::fuzz::run_ops_threads(&ViaGlobalAlloc(&AsGlobal), &input);
        }
    }

    /// Forges the link of a block free in the pool (what an overflow out of the block before it,
    /// or a write through a stale pointer, leaves) to the address `to` picks from a live block of
    /// this preset, and lets the pool follow it; the report must name the forged address. In a
    /// child process (the report aborts).
    fn pool_follows_a_forged_link(test: &str, to: impl FnOnce(usize) -> usize) {
        conformance::misuse::expect_abort(test, ErrorKind::CorruptedFreeList.describe(), || {
            let l = Layout::from_size_align(64, 16).unwrap();
            // A live block of this preset.
            let (q, len) = from_pool(l).unwrap();
            // SAFETY: a block the pool just handed out, nobody else's.
            unsafe { hand_out(q, len, 40, 16, false, Key::now()) };
            // A block free in the pool, first on its slab's list, its link forged.
            let (f, _) = from_pool(l).unwrap();
            // SAFETY: a block of the pool, handed back once.
            unsafe { POOL.free_unsized(NonNull::new(f).unwrap()) };
            let target = to(q as usize);
            // SAFETY: the block's first word, where the pool keeps its link (the misuse).
            unsafe { f.cast::<usize>().write(target) };
            assert_eq!(from_pool(l).unwrap().0, f, "the pool hands out the block freed last");
            conformance::misuse::announce(target);
            from_pool(l);
        });
    }

    /// A forged link to a live block: its state word is not one the pool's blocks have.
    #[test]
    fn a_free_list_link_forged_to_a_live_block_is_reported() {
        pool_follows_a_forged_link("hardened::tests::a_free_list_link_forged_to_a_live_block_is_reported", |q| q);
    }

    /// A forged link into the middle of a block, where the word a state word would be in is zero
    /// (the block's own bytes, zeroed): no block starts there.
    #[test]
    fn a_free_list_link_forged_into_a_block_is_reported() {
        pool_follows_a_forged_link("hardened::tests::a_free_list_link_forged_into_a_block_is_reported", |q| {
            // SAFETY: the live block's bytes past its header and canary: zero them.
            unsafe { core::ptr::with_exposed_provenance_mut::<u8>(q + HDR).write_bytes(0, 40 + CANARY) };
            q + 16
        });
    }

    /// A forged link out of the pool (a static's address).
    #[test]
    fn a_free_list_link_forged_out_of_the_pool_is_reported() {
        static ZEROES: [usize; 4] = [0; 4];
        pool_follows_a_forged_link("hardened::tests::a_free_list_link_forged_out_of_the_pool_is_reported", |_| {
            core::ptr::addr_of!(ZEROES) as usize
        });
    }

    /// What the pool hands out again after this preset freed it (zeroed, marked freed) or after
    /// the pool got it back unmarked passes the check.
    #[test]
    fn blocks_the_pool_hands_out_again_pass_its_check() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::spawn(|| {
            let l = Layout::from_size_align(64, 16).unwrap();
            let (q, len) = from_pool(l).unwrap();
            // SAFETY: a block of the pool, handed back once, unmarked.
            unsafe { POOL.free_unsized(NonNull::new(q).unwrap()) };
            assert_eq!(from_pool(l).unwrap().0, q);
            // SAFETY: the block, nobody else's: made live, then freed by this preset (zeroed,
            // marked) with its thread's quarantine bypassed, back to the pool.
            unsafe {
                let user = hand_out(q, len, 40, 16, false, Key::now());
                let (_, state) = header(user.as_ptr() as usize);
                state.store(Key::now().freed(user.as_ptr() as usize, len), Ordering::Relaxed);
                q.add(HDR).write_bytes(0, len - HDR);
                POOL.free_unsized(NonNull::new(q).unwrap());
            }
            assert_eq!(from_pool(l).unwrap().0, q);
            // SAFETY: as above.
            unsafe { POOL.free_unsized(NonNull::new(q).unwrap()) };
        })
        .join()
        .unwrap();
    }

    /// Once the quarantine is full, a `malloc` + `free` churn of one size runs on the thread's
    /// spares alone (no pool allocation), and the thread's exit gives every block back.
    #[test]
    fn blocks_past_the_quarantine_refill_the_reserve_without_the_pool() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let live = POOL.stats().small_live;
        std::thread::spawn(|| {
            let churn = |n: usize| {
                for _ in 0..n {
                    let p = malloc(40).unwrap();
                    // SAFETY: a live block of this preset.
                    unsafe { free(p, None) };
                }
            };
            // Enough frees to fill the FIFO and every ring slot (a random slot each time).
            churn(FIFO + 2000);
            let before = POOL.stats().small_allocations;
            churn(1000);
            assert_eq!(POOL.stats().small_allocations, before, "the pool was asked for blocks");
        })
        .join()
        .unwrap();
        assert_eq!(POOL.stats().small_live, live, "blocks kept after the thread's exit");
    }

    /// The looked-up block sizes of the classes with a reserve are the size classes' own, up to
    /// the first that reaches the reserve's bound.
    #[test]
    fn the_reserved_classes_sizes_are_the_pools_and_reach_the_reserve_bound() {
        for (c, &len) in RESERVED_SIZE.iter().enumerate() {
            assert_eq!(len, <Classes as alloc_core::SizeClasses>::size(c), "class {c}");
        }
        assert!(RESERVED_SIZE[RESERVED_CLASSES - 1] >= RESERVE_MAX);
        assert!(RESERVED_SIZE[RESERVED_CLASSES - 2] < RESERVE_MAX);
    }

    /// A small block takes the smallest class that holds it with its header and canary, on the
    /// common path and the slow one (a first allocation on a fresh thread).
    #[test]
    fn a_block_takes_the_smallest_class_that_holds_its_header_and_canary() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::spawn(|| {
            // Two rounds: in the second every class's reserve row is filled, so a size that
            // picked the wrong row would find blocks there.
            for round in 0..2 {
                for size in (1..=1200).step_by(7).chain([4000, SMALL]) {
                    let p = malloc(size).unwrap();
                    let q = NonNull::new(p.as_ptr().wrapping_sub(HDR)).unwrap();
                    // SAFETY: a live block of this preset's pool.
                    let (c, len) = unsafe { POOL.slab_block(q) }.unwrap();
                    let need = size + HDR + CANARY;
                    assert!(len >= need, "{size} B (round {round}): a {len}-byte block");
                    assert!(c == 0 || Classes::class_size(c - 1) < need, "{size} B (round {round}): class {c}");
                    // SAFETY: as above.
                    unsafe { free(p, None) };
                }
            }
        })
        .join()
        .unwrap();
    }

    /// Once the thread's exit hook ran (its quarantine flushed), `malloc` and `free` still work,
    /// and a freed block goes straight back to the pool.
    #[test]
    fn after_the_exit_hook_blocks_go_straight_to_the_pool() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::spawn(|| {
            let p = malloc(40).unwrap();
            // SAFETY: a live block of this preset.
            unsafe { free(p, None) };
            flush_quarantine();
            assert_eq!(slot::get(), slot::GONE);
            for size in [40, 100, 2000] {
                let p = malloc(size).unwrap();
                // SAFETY: the block's `size` bytes are the caller's.
                unsafe { p.as_ptr().write_bytes(0x5a, size) };
                let q = NonNull::new(p.as_ptr().wrapping_sub(HDR)).unwrap();
                // SAFETY: a block of this preset's pool.
                assert!(unsafe { POOL.size_of(q) }.is_some(), "{size} B: live in the pool");
                // SAFETY: a live block of this preset.
                unsafe { free(p, None) };
                // SAFETY: any address of the pool (its maps are checked first).
                assert!(unsafe { POOL.size_of(q) }.is_none(), "{size} B: back in the pool");
            }
        })
        .join()
        .unwrap();
    }

    /// The calling thread's quarantine record, after a `malloc` and a `free` made it.
    fn record_of_this_thread() -> usize {
        let p = malloc(40).unwrap();
        // SAFETY: a live block of this preset.
        unsafe { free(p, None) };
        let q = slot::get();
        assert!(q > slot::GONE, "the quarantine is made");
        q
    }

    /// A thread's quarantine record is no block of the pool: it lies between two inaccessible
    /// pages, so an overflow out of a block cannot run into it; an exited thread's record serves
    /// the next thread (no system call), zeroed.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_quarantine_lives_apart_between_guard_pages_and_is_reused() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let len = core::mem::size_of::<Quarantine>().next_multiple_of(alloc_core::source::page_size());
        let first = std::thread::spawn(move || {
            let q = record_of_this_thread();
            assert!(!in_pool(q), "{q:#x}: not a pool block");
            // SAFETY: any address: the pool checks its maps first.
            assert!(unsafe { POOL.slab_block_size(NonNull::new(q as *mut u8).unwrap()) }.is_none());
            assert_eq!(q % alloc_core::source::page_size(), 0);
            assert_eq!(protection(q - 1).as_deref(), Some("---p"), "the page before is a guard");
            assert_eq!(protection(q).as_deref(), Some("rw-p"));
            assert_eq!(protection(q + len - 1).as_deref(), Some("rw-p"));
            assert_eq!(protection(q + len).as_deref(), Some("---p"), "the page after is a guard");
            q
        })
        .join()
        .unwrap();
        let kept = store::kept();
        assert!(kept >= 1, "the exited thread's record waits for the next");
        let second = std::thread::spawn(move || {
            let q = record_of_this_thread();
            assert_eq!(store::kept(), kept - 1, "taken off the free list");
            // SAFETY: the thread's own quarantine.
            let t = unsafe { &*core::ptr::with_exposed_provenance::<Quarantine>(q) };
            // One block in the FIFO (the free above); nothing left from the first thread's.
            assert_eq!(t.fifo.iter().filter(|&&b| b != 0).count(), 1);
            assert!(t.ring.iter().all(|&b| b == 0) && t.spares.iter().all(|&n| n == 0));
            q
        })
        .join()
        .unwrap();
        assert_eq!(second, first, "the newest free record is taken first");
    }

    /// The fork handler holds the preset's own locks (the large-block table's, the quarantine
    /// records' free list's) from before `fork` until after it, and gives them back: a lock
    /// left out would be held forever in a child forked while another thread held it, a race
    /// the fork test (`fork_threads.c`) cannot make happen on purpose.
    #[test]
    fn the_fork_handler_holds_the_presets_locks_and_gives_them_back() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!LARGE.is_locked() && !store::locked());
        Hardened.lock_for_fork();
        let held = (LARGE.is_locked(), store::locked());
        // SAFETY: taken just above, by this thread.
        unsafe { Hardened.unlock_after_fork() };
        assert_eq!(held, (true, true), "(large-block table, record free list) held across fork");
        assert!(!LARGE.is_locked() && !store::locked(), "and given back");
    }

    #[test]
    fn generator_is_marsaglias_xorshift64() {
        // The first outputs from the seed of Marsaglia's "Xorshift RNGs" (2003), section 3.
        // SAFETY: all zeros is an empty quarantine.
        let mut q = unsafe { Box::<Quarantine>::new_zeroed().assume_init() };
        q.rng = 88_172_645_463_325_252;
        assert_eq!(
            [q.next(), q.next(), q.next()],
            [8_748_534_153_485_358_512, 3_040_900_993_826_735_515, 3_453_997_556_048_239_312]
        );
    }

    #[test]
    fn picks_use_each_generator_output_in_order_before_the_next() {
        // SAFETY: all zeros is an empty quarantine.
        let mut q = unsafe { Box::<Quarantine>::new_zeroed().assume_init() };
        q.rng = 88_172_645_463_325_252;
        let mut reference = q.rng;
        let mut step = || {
            reference ^= reference << 13;
            reference ^= reference >> 7;
            reference ^= reference << 17;
            reference >> 1
        };
        let (first, second) = (step(), step());
        // 21 picks of 3 bits use up one output's 63 bits, low bits first; the 22nd is the
        // next output's.
        for i in 0..21 {
            assert_eq!(q.draw(3) as u64, first >> (3 * i) & 7, "pick {i}");
        }
        assert_eq!(q.draw(3) as u64, second & 7);
        // A pick that needs more bits than are left starts on a fresh output: 63 - 3 = 60 left
        // is 10 picks of 6, then 0 left.
        for i in 0..10 {
            assert_eq!(q.draw(6) as u64, second >> (3 + 6 * i) & 63, "pick {i} of 6");
        }
        let third = step();
        assert_eq!(q.draw(6) as u64, third & 63);
        assert!((0..1000).all(|_| q.draw(3) < RESERVE && q.draw(6) < RING));
    }

    #[test]
    fn zero_check_and_zeroing_cover_every_byte_of_every_length() {
        // The short lengths take overlapping 16-byte loads and stores at offsets worked out from
        // the length: a byte they miss would be a write after free not caught, or a freed block
        // not zeroed (and then reported as written after free).
        #[repr(align(16))]
        struct Buf([u8; 320]);
        let mut buf = Buf([0; 320]);
        for len in (16..=288).step_by(16) {
            let p = buf.0.as_mut_ptr();
            // SAFETY: every range below lies inside `buf`, `len` whole 16-byte steps.
            unsafe {
                assert!(simd::all_zero(p, len), "{len}: all zero");
                for at in 0..len {
                    *p.add(at) = 0x80;
                    assert!(!simd::all_zero(p, len), "{len}: a byte at {at}");
                    *p.add(at) = 0;
                }
                buf.0[len] = 1;
                assert!(simd::all_zero(p, len), "{len}: the byte after the range is not its");
                buf.0[..len].fill(0xa5);
                simd::zero(p, len);
                assert!(buf.0[..len].iter().all(|&b| b == 0), "{len}: zeroed");
                assert_eq!(buf.0[len], 1, "{len}: the byte after the range is left alone");
                buf.0[len] = 0;
            }
        }
    }

    #[test]
    fn mid_size_mappings_are_kept_for_their_exact_length_and_count_as_freed() {
        let mut t = table();
        let at = |i: usize| 0x7100_0000_0000 + i * MIB;
        for i in 0..MID_CACHE {
            assert!(t.keep_mid(mapping(at(i), 8192 + 4096 * (i % 3))).is_none(), "room for {i}");
        }
        let over = mapping(at(MID_CACHE), 8192);
        assert_eq!(t.keep_mid(over), Some(over), "no room past {MID_CACHE}");
        // A freed mapping's block: a second free is a double free, an address inside it a use
        // after free.
        assert_eq!(t.misuse(at(1) + HDR), ErrorKind::DoubleFree);
        assert_eq!(t.misuse(at(1) + 5000), ErrorKind::UseAfterFree);
        assert_eq!(t.take_mid(4096), None, "no mapping of that length");
        let m = t.take_mid(12288).unwrap();
        assert_eq!(m.len, 12288, "exactly the length asked for");
        assert_eq!(t.misuse(m.user), ErrorKind::ForeignPointer, "taken back: no longer freed");
        assert!(t.keep_mid(over).is_none(), "its slot is free again");
        let taken = (0..MID_CACHE).map_while(|_| t.take_mid(8192)).count();
        assert_eq!(taken, MID_CACHE / 3 + 1 + 1, "every 8 KiB mapping, the one kept last too");
    }

    #[test]
    fn slots_spread_blocks_a_page_apart() {
        // Large blocks start 16 bytes into a page: 4096 of them in a row take 4096 slots.
        let base = 0x7f12_3456_7000;
        let mut seen: Vec<usize> = (0..4096).map(|i| slot(base + i * 4096 + HDR)).collect();
        assert!(seen.iter().all(|&s| s < TABLE));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 4096);
    }

    #[test]
    fn colliding_blocks_probe_past_each_other_and_tombstones() {
        let mut t = table();
        let users = colliding(12_345, 0x7000_0000_0010, 4);
        for (k, &u) in users[..3].iter().enumerate() {
            assert!(t.insert(Mapping { user: u, base: u - HDR, len: 4096 }));
            assert_eq!(t.count, k + 1);
        }
        let at: Vec<usize> = users[..3].iter().map(|&u| t.find(u).unwrap()).collect();
        assert_eq!(at, [12_345, 12_346, 12_347], "linear probing from the home slot");
        assert_eq!(t.find(users[3]), None);
        t.remove(at[1]);
        assert_eq!(t.count, 2);
        assert_eq!(t.find(users[1]), None);
        assert_eq!(t.find(users[2]), Some(at[2]), "a lookup probes past a tombstone");
        assert!(t.insert(Mapping { user: users[3], base: users[3] - HDR, len: 4096 }));
        assert_eq!(t.find(users[3]), Some(at[1]), "an insertion reuses the first tombstone");
        assert_eq!(t.count, 3);
    }

    #[test]
    fn probing_wraps_round_the_table_end() {
        let mut t = table();
        let users = colliding(TABLE - 1, 0x7000_0000_0010, 3);
        for &u in &users {
            assert!(t.insert(Mapping { user: u, base: u - HDR, len: 4096 }));
        }
        let at: Vec<usize> = users.iter().map(|&u| t.find(u).unwrap()).collect();
        assert_eq!(at, [TABLE - 1, 0, 1]);
    }

    #[test]
    fn the_table_holds_three_quarters_of_its_slots() {
        let mut t = table();
        let user = |i: usize| 0x7100_0000_0000 + i * 4096 + HDR;
        // With a hash that sends every block to a few slots the inserts below take minutes:
        // fail at once instead.
        let mut slots: Vec<usize> = (0..64).map(|i| slot(user(i))).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 64, "the blocks spread over the table");
        for i in 0..TABLE / 4 * 3 {
            assert!(t.insert(Mapping { user: user(i), base: user(i) - HDR, len: 4096 }), "insert {i}");
        }
        assert_eq!(t.count, TABLE / 4 * 3);
        assert!(!t.insert(mapping(user(TABLE), 4096)), "past the load factor");
        let i = t.find(user(7)).unwrap();
        t.remove(i);
        assert_eq!(t.count, TABLE / 4 * 3 - 1);
        assert!(t.insert(mapping(user(TABLE), 4096)), "room again");
        assert_eq!(t.count, TABLE / 4 * 3);
        assert!(t.find(user(TABLE) + HDR).is_some());
        assert!(t.find(user(TABLE / 2)).is_some());
    }

    #[test]
    fn misuse_names_what_the_address_was() {
        let mut t = table();
        let live = mapping(0x7200_0000_0000, 4 * MIB);
        let freed = mapping(0x7300_0000_0000, 2 * MIB);
        let cached = mapping(0x7400_0000_0000, MIB);
        assert!(t.insert(live));
        assert!(t.insert(freed));
        t.remove(t.find(freed.user).unwrap());
        t.quarantine[0] = freed;
        assert!(t.cache(cached).is_none());

        assert_eq!(t.misuse(live.user + 8), ErrorKind::InteriorPointer);
        assert_eq!(t.misuse(live.base), ErrorKind::InteriorPointer);
        assert_eq!(t.misuse(live.base + live.len - 1), ErrorKind::InteriorPointer);
        assert_eq!(t.misuse(live.base + live.len), ErrorKind::ForeignPointer, "one past the end");
        assert_eq!(t.misuse(live.base - 1), ErrorKind::ForeignPointer);
        assert_eq!(t.misuse(freed.user), ErrorKind::DoubleFree);
        assert_eq!(t.misuse(freed.user + 64), ErrorKind::UseAfterFree, "the tombstone is no live block");
        assert_eq!(t.misuse(freed.base + freed.len), ErrorKind::ForeignPointer);
        assert_eq!(t.misuse(cached.user), ErrorKind::DoubleFree);
        assert_eq!(t.misuse(cached.user + 64), ErrorKind::UseAfterFree);
        assert_eq!(t.misuse(0x7500_0000_0000), ErrorKind::ForeignPointer);
    }

    #[test]
    fn the_cache_gives_back_mappings_of_about_the_size_asked() {
        let mut t = table();
        let m = mapping(0x7600_0000_0000, 5 * MIB);
        assert!(t.cache(m).is_none());
        assert_eq!(t.cached_bytes, 5 * MIB);
        assert_eq!(t.take_cached(5 * MIB + 4096), None, "smaller than asked");
        assert_eq!(t.take_cached(5 * MIB / 2 - 4096), None, "over twice as large as asked");
        assert_eq!(t.take_cached(5 * MIB / 2), Some(m), "exactly twice as large");
        assert_eq!(t.cached_bytes, 0);
        assert_eq!(t.take_cached(5 * MIB / 2), None, "taken out");
        assert!(t.cache(m).is_none());
        assert_eq!(t.take_cached(5 * MIB), Some(m));
        assert_eq!(t.cached_bytes, 0);

        // The smallest that fits, wherever it is in the cache.
        let big = mapping(0x7610_0000_0000, 8 * MIB);
        let small = mapping(0x7620_0000_0000, 6 * MIB);
        let smaller = mapping(0x7630_0000_0000, 3 * MIB);
        for c in [big, small, smaller] {
            assert!(t.cache(c).is_none());
        }
        assert_eq!(t.take_cached(4 * MIB), Some(small));
        assert_eq!(t.take_cached(4 * MIB), Some(big));
        assert_eq!(t.cached_bytes, 3 * MIB);
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_and_in_mappings() {
        let mut t = table();
        let at = |i: usize| 0x7700_0000_0000 + i * 64 * MIB;
        for i in 0..15 {
            assert!(t.cache(mapping(at(i), 4 * MIB)).is_none());
        }
        assert!(t.cache(mapping(at(15), 4 * MIB)).is_none(), "exactly at the byte bound");
        assert_eq!(t.cached_bytes, LARGE_CACHE_BYTES);
        let over = mapping(at(16), 4096);
        assert_eq!(t.cache(over), Some(over), "over the byte bound");
        assert_eq!(t.cached_bytes, LARGE_CACHE_BYTES);

        let mut t = table();
        for i in 0..LARGE_CACHE {
            assert!(t.cache(mapping(at(i), 4096)).is_none());
        }
        let more = mapping(at(LARGE_CACHE), 4096);
        assert_eq!(t.cache(more), Some(more), "no slot left");
        assert_eq!(t.cached_bytes, LARGE_CACHE * 4096);
    }
}
