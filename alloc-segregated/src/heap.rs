//! The segregated heap layer: one free list per size class over a bump region of page runs.
//!
//! - **allocate**: compute the class (five instructions), pop its list; when the list is empty,
//!   bump a block off the current run (cold path), mapping a new run when that one is spent.
//! - **deallocate**: push on the class's list, after two cheap checks: the block must be aligned
//!   like every block of its class (else: interior or misaligned pointer), and must not already be
//!   the list's head (else: an immediate double free). A page-sized or larger block at the top of
//!   the run gives the top back instead.
//! - **resize in place**: free when the new layout (size *and* alignment) stays in the block's
//!   class; growth into a larger class happens in place when the block ends at the top of the run.
//!
//! Padding skipped while aligning a bump, and the unused tail of a spent run, are carved into
//! naturally aligned blocks on the class lists, so nothing the source gave is lost.
//!
//! ## Giving memory back (native targets)
//!
//! A free block of 64 KiB or more is *large*: while it waits on its list it counts as idle
//! memory, and a flag in its second word says whether its pages are resident. When idle memory
//! passes the retain limit ([`DEFAULT_RETAIN`], 64 MiB, glibc's largest trim threshold;
//! [`SegregatedHeap::set_retain`]), idle blocks are given back to the OS (`madvise`, through
//! [`PageSource::discard`]) down to half the limit, largest classes first and the block just
//! freed last; each keeps its first page, which holds its link. [`SegregatedHeap::trim`] gives
//! back every idle block at once. Where the source's given-back pages read as zero
//! ([`PageSource::discard_zeroes`]), `allocate_zeroed` that reuses such a block zeroes its first
//! page only, so a large `calloc` of a returned block stays lazy. Blocks under 64 KiB are never given back: small classes are
//! reused too often for a page fault per reuse to pay. A limit far below a program's working set
//! of large blocks costs a page fault per page on every reuse (`compare`'s `large-spans` runs 165
//! times slower at 4 MiB), which is why the default is high and `trim` is explicit.
//!
//! ## Cargo features: what each costs in a wasm module
//!
//! All on by default; a size-first wasm module turns them off (`default-features = false`) and
//! keeps the classes, the lists, both misuse checks, zero sizes, every alignment, in-class
//! realloc and, once the page source is spent, blocks split from larger classes. Bytes of code in
//! the module of `benches/wasm` (LTO, `opt-level = "z"`, against the same module with a
//! host-call allocator): **1,501** with every feature, **965** with none; each feature alone:
//!
//! | feature | what it gives | bytes added to the 965 | bytes saved from the 1,501 |
//! |---|---|--:|--:|
//! | `large-runs` | a block larger than half the next run gets a run of its own, so the current run keeps serving small blocks (without it such a block starts a new run sized for it) | 75 | 116 |
//! | `carve` | alignment padding and the unused tail of a spent run are carved into blocks on the class lists (without it they are never used) | 145 | 145 |
//! | `top-reuse` | freeing a page-sized or larger block at the top of the run gives the top back; a block at the top grows in place into a larger class | 174 | 174 |
//! | `run-list` | every run is recorded, so dropping the heap gives its runs back to the page source, [`Owns`](alloc_core::layer::Owns) is implemented and the validator checks blocks against their runs (without it a dropped heap leaks its runs: fine for a global, which is never dropped) | 101 | 142 |
//!
//! Reproduce: `benches/wasm/run.sh` (rows `ours` and `ours-small`); `tests/wasm.rs` checks that
//! the size-first build of its own module stays under 1 KiB.
//!
//! Free-list links are a policy ([`alloc_core::LinkCodec`]): plain pointers by default, or
//! [`alloc_core::SafeLinks`], encoded with a per-heap secret and checked (inside the heap's runs,
//! aligned for the class) before they are followed, so an overflow into a free block or a write
//! after free is reported through the error policy instead of handing out a wild address.

use crate::class::{class_align, class_align_mask, class_of, class_size, CLASSES, MIN_BLOCK};
use alloc_core::error::{ErrorKind, ErrorPolicy, HeapError};
use alloc_core::layer::{Corruption, Layer, ResizeFn, UsableSize, Validate};
use alloc_core::source::PageSource;
use alloc_core::stats::{NoStats, StatsPolicy};
use alloc_core::{ptr, Abort, AllocError, FreeList, Layout, LinkCodec, PlainLinks};
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The record of one run mapped from the source, linking every run so `Drop` can give them back.
/// It sits at the start of a regular run, and in one extra page after the block of a run made
/// for a single large block (so the block keeps its alignment).
#[repr(C)]
struct RunHeader {
    /// The run mapped before this one.
    prev: Option<NonNull<RunHeader>>,
    /// Start of the mapping.
    base: NonNull<u8>,
    /// Bytes mapped.
    len: usize,
}

/// Bytes reserved for the header at the start of a regular run: a multiple of 16, so the bump
/// top stays aligned for the smallest class.
const RUN_HEADER: usize = 32;
const _: () = assert!(core::mem::size_of::<RunHeader>() <= RUN_HEADER && RUN_HEADER.is_multiple_of(MIN_BLOCK));

/// The cargo features, as constants so every configuration compiles all of the code.
const LARGE_RUNS: bool = cfg!(feature = "large-runs");
const CARVE: bool = cfg!(feature = "carve");
const TOP_REUSE: bool = cfg!(feature = "top-reuse");
const RUN_LIST: bool = cfg!(feature = "run-list");

/// Free blocks of this class (64 KiB) and above are large: while they wait on a list, their
/// pages count as idle memory, given back to the OS above the retain limit.
const LARGE_CLASS: usize = class_of(64 << 10, 1);
/// The whole pages of the block at `addr` of `size` bytes that go back to the OS when it is
/// idle: from the first page boundary past its first byte (the first page keeps the link and
/// the flag) to the last page boundary inside it. `from >= to` when there are none.
fn given_back(addr: usize, size: usize, page: usize) -> (usize, usize) {
    let from = ptr::align_up(addr + 1, page).unwrap_or(usize::MAX);
    (from, (addr + size) & !(page - 1))
}

/// Flags of a large free block ([`SegregatedHeap::resident`]).
const RESIDENT: usize = 1;
const ZERO_TAIL: usize = 2;

/// Native targets give memory back; a wasm memory cannot shrink, so none of that code is built
/// there.
const RETURN: bool = !cfg!(target_arch = "wasm32");
/// Bytes of idle large free blocks a heap keeps resident unless told otherwise
/// ([`SegregatedHeap::set_retain`]): glibc's largest trim threshold. Set lower, a program that
/// reuses large blocks of many sizes pays a page fault per page on every reuse (the
/// `large-spans` workload of `compare` runs 165 times slower at 4 MiB than with nothing returned).
pub const DEFAULT_RETAIN: usize = 64 << 20;

/// Size of the first run mapped from the source; runs double up to [`MAX_RUN`].
pub const FIRST_RUN: usize = 64 << 10;
/// Runs stop doubling here; a block larger than half the next run gets a run of its own. In a
/// wasm module runs stay at one 64 KiB wasm page: the memory only grows, and the unused part of
/// the last run counts in `memory.size` (the wasm benchmark ends at 39 pages instead of 53 with
/// 1 MiB runs, at the same speed).
pub const MAX_RUN: usize = if cfg!(target_arch = "wasm32") { 64 << 10 } else { 1 << 20 };

/// The segregated heap over page source `S`, with error policy `E`, statistics policy `C` and
/// free-list link policy `L` ([`PlainLinks`], or [`alloc_core::SafeLinks`] to detect overflows
/// into free blocks).
pub struct SegregatedHeap<S: PageSource, E: ErrorPolicy = Abort, C: StatsPolicy = NoStats, L: LinkCodec = PlainLinks> {
    /// One LIFO list per class; every block on list `c` is `class_size(c)` long and aligned to
    /// `class_align(c)`.
    lists: [FreeList; CLASSES],
    /// Next free address of the current run; `top <= end`, both 0 before the first run.
    top: usize,
    /// One past the current run.
    end: usize,
    /// The current run's base (provenance for addresses in it).
    base: NonNull<u8>,
    /// Every byte of the current run at or above `max(clean, top)` is zero (never handed out since
    /// the source mapped it zeroed): `allocate_zeroed` skips the `memset` there. Raised to `top`
    /// whenever `top` moves down; `usize::MAX` when nothing is known to be zero.
    clean: usize,
    /// Size of the next regular run.
    next_run: usize,
    /// Every run mapped, newest first.
    runs: Option<NonNull<RunHeader>>,
    /// Lowest and one-past-highest address of every run mapped (a cheap bound a decoded link
    /// must fall in); kept only with the run list or checked links ([`Self::BOUNDS`]).
    lo: usize,
    hi: usize,
    /// The key of encoded links (drawn when the first run is mapped, while every list is empty).
    secret: usize,
    /// Bytes of large free blocks on the lists whose pages are resident (flagged in the block's
    /// second word, [`Self::resident`]).
    idle: usize,
    /// Above this many idle bytes, idle blocks are given back to the OS; `usize::MAX` once the
    /// source turned out unable to.
    retain: usize,
    /// The address of the last large block taken off a list whose pages past the first read as
    /// zero (given back to the OS with a source whose discarded pages read as zero), else 0:
    /// `allocate_zeroed` then zeroes only its first page.
    zero_tail: usize,
    source: S,
    errors: E,
    stats: C,
    _links: PhantomData<L>,
}

// SAFETY: the heap owns its runs and the free blocks on its lists; moving it moves that ownership.
unsafe impl<S: PageSource + Send, E: ErrorPolicy + Send, C: StatsPolicy + Send, L: LinkCodec> Send
    for SegregatedHeap<S, E, C, L>
{
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> SegregatedHeap<S, E, C, L> {
    /// An empty heap; maps nothing until the first allocation.
    pub const fn new(source: S) -> Self {
        SegregatedHeap {
            lists: [const { FreeList::new() }; CLASSES],
            top: 0,
            end: 0,
            base: NonNull::dangling(),
            clean: usize::MAX,
            next_run: FIRST_RUN,
            runs: None,
            lo: usize::MAX,
            hi: 0,
            secret: 0,
            idle: 0,
            retain: DEFAULT_RETAIN,
            zero_tail: 0,
            source,
            errors: E::INIT,
            stats: C::INIT,
            _links: PhantomData,
        }
    }

    /// The error policy (for [`alloc_core::Count`], what was detected).
    pub fn errors(&self) -> &E {
        &self.errors
    }

    /// The statistics policy (for [`alloc_core::Counting`], `.get()` gives the counters).
    pub fn counters(&self) -> &C {
        &self.stats
    }

    /// The page source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Whether `lo` and `hi` are kept (natively always: they bound the walks that give memory
    /// back).
    const BOUNDS: bool = RUN_LIST || L::CHECKED || RETURN;

    /// The most blocks of class `c` the heap's runs can hold: a bound on any walk of its list,
    /// so a list made cyclic by an undetected double free cannot hold a walk forever.
    fn max_blocks(&self, c: usize) -> usize {
        // (The top class's size wraps to 0: no block of it can exist.)
        self.hi.saturating_sub(self.lo) / class_size(c).max(MIN_BLOCK) + 1
    }

    #[inline(always)]
    fn links(&self) -> L {
        L::with_secret(self.secret)
    }

    /// Free blocks waiting on each class's list (walks the lists: for tests and diagnostics).
    pub fn free_blocks(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        let links = self.links();
        for (c, list) in self.lists.iter().enumerate() {
            let mut n = 0;
            let mut cur = list.peek();
            while let Some(p) = cur {
                if !self.plausible(c, p.as_ptr() as usize) {
                    break;
                }
                n += 1;
                // SAFETY: p is a block on the list (checked plausible); its first word is a link.
                cur = unsafe { links.read(p) };
            }
            counts[c] = n;
        }
        counts
    }

    /// True when `addr` lies in the current run (not in a block's own run next to it).
    #[inline(always)]
    fn in_run(&self, addr: usize) -> bool {
        addr >= self.base.as_ptr() as usize && addr < self.end
    }

    /// True when the block at `addr` of `size` bytes ends at the run's top. Such a block lies in
    /// the current run: its last byte is at `top - 1`, which is in `base..end` since
    /// `base < top <= end` (and `top` is 0, which no block ends at, before the first run), and a
    /// block never spans two runs.
    #[inline(always)]
    fn at_top(&self, addr: usize, size: usize) -> bool {
        addr.wrapping_add(size) == self.top
    }

    /// True when `addr` could be a free block of class `c`: inside the heap's runs and aligned
    /// like the class's blocks. What a decoded link must satisfy before it is followed.
    #[inline(always)]
    fn plausible(&self, c: usize, addr: usize) -> bool {
        (!Self::BOUNDS || (addr >= self.lo && addr < self.hi)) && addr & class_align_mask(c) == 0
    }

    /// Pops class `c`'s list, checking the link it follows when links are encoded.
    #[inline(always)]
    fn pop(&mut self, c: usize) -> Option<NonNull<u8>> {
        let links = self.links();
        // SAFETY: every block on the list was pushed with this heap's codec, and the head was
        // checked (or pushed by us) before this pop.
        let p = unsafe { self.lists[c].pop(&links) }?;
        if RETURN && c >= LARGE_CLASS {
            self.reuse_large(c, p);
        }
        if L::CHECKED {
            if let Some(next) = self.lists[c].peek() {
                if !self.plausible(c, next.as_ptr() as usize) {
                    self.corrupted_link(c, p);
                }
            }
        }
        Some(p)
    }

    /// The link in free block `p` of class `c` decoded to an address that is not a block of that
    /// class: report it, and drop the rest of the list (leaked, never followed).
    #[cold]
    #[inline(never)]
    fn corrupted_link(&mut self, c: usize, p: NonNull<u8>) {
        self.lists[c].clear();
        if RETURN && c >= LARGE_CLASS {
            // The dropped blocks no longer wait on a list: count again what does.
            self.idle = self.count_idle();
        }
        self.report(ErrorKind::CorruptedFreeList, p);
    }

    /// The word after a large free block's link: [`RESIDENT`] (counted in `idle`), [`ZERO_TAIL`]
    /// (given back, and its pages past the first read as zero), or 0 (given back with a source
    /// that does not promise zeroes, or never counted: a split half).
    ///
    /// # Safety
    ///
    /// `p` is a free block of a large class (at least 64 KiB, so the word lies inside it).
    #[inline(always)]
    unsafe fn resident(p: NonNull<u8>) -> *mut usize {
        // SAFETY: one word past the link, inside the block (the caller's guarantee).
        unsafe { p.as_ptr().cast::<usize>().add(1) }
    }

    /// A large block `p` of class `c` left its list: it no longer counts as idle.
    #[cold]
    #[inline(never)]
    fn reuse_large(&mut self, c: usize, p: NonNull<u8>) {
        // SAFETY: p was a free block of class c >= LARGE_CLASS, whose flag every push wrote. (A
        // write after free may have changed it: only the two values below count, and the count
        // never wraps.)
        let flag = unsafe { Self::resident(p).read() };
        if flag == RESIDENT {
            self.idle = self.idle.saturating_sub(class_size(c));
        }
        self.zero_tail = if flag == ZERO_TAIL { p.as_ptr() as usize } else { 0 };
    }

    /// Frees large block `p` of class `c`: on its list, counted as idle, and, when idle memory
    /// passes the retain limit, idle blocks given back to the OS down to half the limit
    /// (largest classes first; `p` too, last, when it alone is over the limit).
    ///
    /// # Safety
    ///
    /// As for [`Self::push`], with `c >= LARGE_CLASS`.
    #[cold]
    #[inline(never)]
    unsafe fn free_large(&mut self, c: usize, p: NonNull<u8>) {
        // SAFETY: the caller's guarantees; the flag word lies inside the block.
        unsafe {
            self.push(c, p);
            Self::resident(p).write(RESIDENT);
        }
        self.idle += class_size(c);
        if self.idle > self.retain {
            self.release(self.retain / 2, Some(p));
            if self.idle > self.retain {
                self.release(self.retain / 2, None);
            }
        }
    }

    /// Gives idle large blocks back to the OS, largest classes first, until at most `target`
    /// idle bytes remain; `keep` is skipped. A block keeps its first page (its link and flag).
    fn release(&mut self, target: usize, keep: Option<NonNull<u8>>) {
        let page = self.source.page_size();
        let links = self.links();
        for c in (LARGE_CLASS..CLASSES).rev() {
            let mut cur = self.lists[c].peek();
            let mut left = self.max_blocks(c);
            while let Some(p) = cur {
                if self.idle <= target {
                    return;
                }
                let addr = p.as_ptr() as usize;
                if !self.plausible(c, addr) || left == 0 {
                    break; // a corrupted link (pop reports it) or a cycle: never follow it here
                }
                left -= 1;
                // SAFETY: p is a free block on list c >= LARGE_CLASS; its flag was written when
                // it was pushed.
                let flag = unsafe { Self::resident(p) };
                // SAFETY: as above.
                if Some(p) != keep && unsafe { flag.read() } == RESIDENT {
                    let (from, to) = given_back(addr, class_size(c), page);
                    let mut state = 0;
                    if from < to {
                        // SAFETY: whole pages inside the free block, past its first page (its
                        // link and flag), in a run from this source; nothing holds data there.
                        if !unsafe { self.source.discard(ptr::add(p, from - addr), to - from) } {
                            // A source with no OS behind it: stop trying.
                            self.retain = usize::MAX;
                            return;
                        }
                        if self.source.discard_zeroes() {
                            state = ZERO_TAIL;
                        }
                    }
                    // SAFETY: as above.
                    unsafe { flag.write(state) };
                    self.idle = self.idle.saturating_sub(class_size(c));
                }
                // SAFETY: a plausible block on the list; its first word is a link.
                cur = unsafe { links.read(p) };
            }
        }
    }

    /// Bytes of resident large blocks on the lists, counted by walking them (plausible links
    /// only).
    fn count_idle(&self) -> usize {
        let links = self.links();
        let mut idle = 0usize;
        for c in LARGE_CLASS..CLASSES {
            let mut cur = self.lists[c].peek();
            let mut left = self.max_blocks(c);
            while let Some(p) = cur {
                if !self.plausible(c, p.as_ptr() as usize) || left == 0 {
                    break;
                }
                left -= 1;
                // SAFETY: a plausible free block of a large class: its flag and link lie in it.
                if unsafe { Self::resident(p).read() } == RESIDENT {
                    idle += class_size(c);
                }
                // SAFETY: as above.
                cur = unsafe { links.read(p) };
            }
        }
        idle
    }

    /// Gives every idle large free block back to the OS now (pages past each block's first):
    /// what a program calls after freeing a lot, before it idles.
    pub fn trim(&mut self) {
        if RETURN {
            self.release(0, None);
        }
    }

    /// Sets how many bytes of idle large free blocks stay resident (default
    /// [`DEFAULT_RETAIN`]); above it, idle blocks go back to the OS as they are freed. `0` gives
    /// every large block back when it is freed; `usize::MAX` keeps everything.
    pub fn set_retain(&mut self, bytes: usize) {
        self.retain = bytes;
        if RETURN && self.idle > bytes {
            self.release(bytes / 2, None);
        }
    }

    /// Bytes of large free blocks whose pages are resident.
    pub fn idle_bytes(&self) -> usize {
        self.idle
    }

    /// Pushes `p` on class `c`'s list.
    ///
    /// # Safety
    ///
    /// `p` is a free block of class `c`, aligned for it, on no list, used by nothing else.
    #[inline(always)]
    unsafe fn push(&mut self, c: usize, p: NonNull<u8>) {
        let links = self.links();
        // SAFETY: the caller's guarantees.
        unsafe { self.lists[c].push(p, &links) }
    }

    /// Bumps a block of class `c` aligned to `align` off the current run, if it fits.
    fn bump(&mut self, c: usize, align: usize) -> Option<NonNull<u8>> {
        let start = ptr::align_up(self.top, align)?;
        let end = start.checked_add(class_size(c))?;
        // Before the first run `top` and `end` are 0, so nothing fits.
        if end > self.end {
            return None;
        }
        if CARVE {
            self.carve(self.top, start);
        }
        self.top = end;
        // SAFETY: start..end lies in the current run, inside `base`'s mapping.
        Some(unsafe { ptr::with_addr(self.base, start) })
    }

    /// Puts `from..to` (16-aligned, in the current run, unused) on the class lists as the largest
    /// naturally aligned blocks that tile it.
    fn carve(&mut self, mut from: usize, to: usize) {
        alloc_core::debug_check!(
            to <= self.end && from >= self.base.as_ptr() as usize,
            "carving {from:#x}..{to:#x} outside the current run ending at {:#x}",
            self.end
        );
        while to - from >= MIN_BLOCK {
            // The largest class whose block starts aligned at `from` and fits before `to`.
            let fit = usize::BITS - 1 - (to - from).leading_zeros();
            let aligned = from.trailing_zeros();
            let shift = fit.min(aligned).min(usize::BITS - 1);
            let c = (shift - crate::class::MIN_SHIFT) as usize;
            let c = c.min(class_of(NATURAL, 1));
            // SAFETY: from..from+class_size(c) is unused memory of the current run, 16-aligned,
            // and aligned to its class (shift <= trailing zeros of `from`).
            unsafe { self.push(c, ptr::with_addr(self.base, from)) };
            from += class_size(c);
        }
    }

    #[cold]
    #[inline(never)]
    fn allocate_slow(&mut self, c: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        // Over-page alignment: the list's blocks are only page-aligned, so look at the head.
        if align > class_align(c) {
            if let Some(p) = self.lists[c].peek() {
                if ptr::is_aligned(p.as_ptr() as usize, align) {
                    return self.pop(c).ok_or(AllocError);
                }
            }
        }
        let align = align.max(class_align(c));
        if let Some(p) = self.bump(c, align) {
            return Ok(p);
        }
        let page = self.source.page_size();
        let size = ptr::align_up(class_size(c), page).ok_or(AllocError)?;
        if LARGE_RUNS && size > self.next_run / 2 {
            // A run of its own, sized to the block, with its header in one page after it; the
            // current run keeps serving.
            let len = size.checked_add(page).ok_or(AllocError)?;
            let Some(p) = self.source.map(len, align.max(page)) else {
                return self.split_larger(c, align);
            };
            // SAFETY: `size` bytes into a run of `size + page` bytes, page-aligned.
            self.record_run(p, len, unsafe { ptr::add(p, size) });
            return Ok(p);
        }
        // A fresh run; when the full size is not available, try one just big enough: the run is
        // page-aligned, so the block starts by `max(align, page)` past the header (which is
        // smaller than a page), and both are multiples of the page.
        let need = size.checked_add(align.max(page)).ok_or(AllocError)?;
        // Without `large-runs`, a large block gets a regular run big enough for it.
        let next = self.next_run.max(need);
        let mut len = next;
        let run = loop {
            if let Some(r) = self.source.map(len, page) {
                break r;
            }
            if len == need {
                return self.split_larger(c, align);
            }
            len = need;
        };
        self.record_run(run, len, run);
        if CARVE && self.top != 0 {
            self.carve(self.top, self.end);
        }
        self.base = run;
        self.top = run.as_ptr() as usize + RUN_HEADER;
        self.end = run.as_ptr() as usize + len;
        if self.source.maps_zeroed() {
            self.clean = self.top;
        }
        self.next_run = (next * 2).min(MAX_RUN.max(page));
        self.bump(c, align).ok_or(AllocError)
    }

    /// Out of pages: serves class `c` by halving a free block of the next class (itself split
    /// from a larger one when its list is empty) and putting the upper half on class `c`'s list,
    /// so memory freed in one class serves another after the source is exhausted. Refused for an
    /// alignment above a page: larger classes' blocks are only page-aligned too. (A class holds
    /// its alignment, so only such an alignment can exceed the class's.)
    #[cold]
    #[inline(never)]
    fn split_larger(&mut self, c: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let k = c + 1;
        if align > NATURAL || k == CLASSES {
            return Err(AllocError);
        }
        let p = match self.pop(k) {
            Some(p) => p,
            None => self.split_larger(k, align)?,
        };
        // SAFETY: `p` is a free block of class `k` = two blocks of class `c`; the upper one starts
        // `class_size(c)` in, aligned to `class_align(c)` (p is aligned to `class_align(k)`, and
        // `class_size(c)` is a multiple of `class_align(c)`), and is on no list.
        unsafe { self.push(c, ptr::add(p, class_size(c))) };
        if RETURN && c >= LARGE_CLASS {
            // SAFETY: the upper half is a free block of a large class; its residency is unknown,
            // so it is not counted as idle.
            unsafe { Self::resident(ptr::add(p, class_size(c))).write(0) };
        }
        Ok(p)
    }

    /// Links a fresh run into the run list, its header written at `at`.
    fn record_run(&mut self, base: NonNull<u8>, len: usize, at: NonNull<u8>) {
        if L::CHECKED && self.hi == 0 {
            // The first run: every list is still empty, the one moment the key can be set.
            self.secret = alloc_core::secret::fresh(base.as_ptr() as usize ^ (self as *const Self as usize));
        }
        if RUN_LIST {
            let h = at.cast::<RunHeader>();
            // SAFETY: `at` is a 16-aligned spot in the fresh run with room for the header, which
            // no block will ever cover (regular runs bump from past it; a large block ends
            // before it).
            unsafe { h.as_ptr().write(RunHeader { prev: self.runs, base, len }) };
            self.runs = Some(h);
        }
        if Self::BOUNDS {
            self.lo = self.lo.min(base.as_ptr() as usize);
            self.hi = self.hi.max(base.as_ptr() as usize + len);
        }
        self.stats.on_map(len);
    }

    #[cold]
    #[cfg_attr(not(target_arch = "wasm32"), inline(never))]
    fn report(&self, kind: ErrorKind, p: NonNull<u8>) {
        self.errors.report(HeapError::new(kind, p.as_ptr() as usize));
    }

    /// The run holding `addr`, as (start, end) of its usable part, or `None`.
    fn run_of(&self, addr: usize) -> Option<(usize, usize)> {
        let mut cur = self.runs;
        while let Some(h) = cur {
            // SAFETY: run headers in the list are initialised and their runs mapped.
            let run = unsafe { h.as_ptr().read() };
            let start = run.base.as_ptr() as usize;
            let end = if h.cast() == run.base { start + run.len } else { h.as_ptr() as usize };
            if addr >= start && addr < end {
                return Some((start, end));
            }
            cur = run.prev;
        }
        None
    }
}

/// The largest class `carve` makes: a page. Bigger free spans are cut into pages.
const NATURAL: usize = crate::class::NATURAL_ALIGN_MAX;

// SAFETY: every block handed out is a whole class block: popped from its class's list (whose
// blocks are class-sized, class-aligned and free; with checked links, a wild link is reported
// and never followed) or bumped fresh from a run at the required alignment; a block is on at
// most one list, and lists hold only freed or never-used memory. Zeroed blocks are written with
// zeroes below `max(clean, top)`; above it (and in fresh runs) a zeroed source already gave
// zeroes. Nothing panics unless the error policy does (`PANICS`).
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> Layer for SegregatedHeap<S, E, C, L> {
    /// A zero-size request is served from class 0 (or the class of its alignment) like any
    /// other: a real, aligned block, freed and resized as usual.
    const ZERO_SIZE_OK: bool = true;
    const PANICS: bool = E::PANICS;
    // The in-place promise stated at `Resize` is kept by `resize_in_place` (its doc says how).
    const RESIZE: Option<ResizeFn<Self>> = Some(Self::resize_in_place);

    // Inlined into every caller natively; one copy in a wasm module, where code size counts.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let c = class_of(layout.size(), layout.align());
        // The alignment test folds away for a constant layout; over-page alignments look at the
        // list in the slow path.
        let popped = if layout.align() <= NATURAL { self.pop(c) } else { None };
        let p = match popped {
            Some(p) => p,
            None => self.allocate_slow(c, layout.align())?,
        };
        self.stats.on_alloc(class_size(c));
        Ok(ptr::block(p, class_size(c)))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let (base, runs, zero_from) = (self.base, self.runs, self.clean.max(self.top));
        if RETURN {
            // Set again only if this allocation takes a given-back block off a list.
            self.zero_tail = 0;
        }
        let block = self.allocate(layout)?;
        let start = block.cast::<u8>().as_ptr() as usize;
        if RETURN && self.zero_tail == start {
            // The whole pages inside the block were given back and read as zero (a block split
            // from it lies inside the range given back): zero what lies outside them, the first
            // page (it held the link and the flag) and any partial page at the end.
            let (from, to) = given_back(start, block.len(), self.source.page_size());
            let p = block.cast::<u8>().as_ptr();
            // SAFETY: `start..from` and `to..start+len` lie in the block (`from <= to` inside it,
            // or nothing was given back and the first write covers the block).
            unsafe {
                p.write_bytes(0, from.min(start + block.len()) - start);
                if to > from {
                    p.add(to - start).write_bytes(0, start + block.len() - to);
                }
            }
            return Ok(block);
        }
        // A new run (regular or the block's own) was mapped for this block: fresh pages. (A block
        // from a list never comes with a new run; without the run list a block's own run goes
        // unnoticed and is zeroed, which is only slower.)
        let fresh = (self.runs != runs || self.base != base) && self.source.maps_zeroed();
        // Blocks from lists lie in older runs or below the top; only a block of the same current
        // run bumped past `zero_from` is clean.
        let in_current = self.base == base && self.in_run(start);
        let clean = fresh || (in_current && start >= zero_from);
        if !clean {
            let dirty = if in_current { zero_from.min(start + block.len()) - start } else { block.len() };
            // SAFETY: the first `dirty` bytes of the block, valid for writes.
            unsafe { block.cast::<u8>().as_ptr().write_bytes(0, dirty) };
        }
        Ok(block)
    }

    // Inlined into every caller natively; one copy in a wasm module, where code size counts.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    unsafe fn deallocate(&mut self, p: NonNull<u8>, layout: Layout) {
        let c = class_of(layout.size(), layout.align());
        let addr = p.as_ptr() as usize;
        if addr & class_align_mask(c) != 0 {
            return self.report(ErrorKind::InteriorPointer, p);
        }
        if self.lists[c].peek() == Some(p) {
            return self.report(ErrorKind::DoubleFree, p);
        }
        if TOP_REUSE && class_size(c) >= NATURAL {
            if self.at_top(addr, class_size(c)) {
                // Give the heap top back rather than parking a large block on a list.
                self.stats.on_free(class_size(c));
                self.clean = self.clean.max(self.top);
                self.top = addr;
                return;
            }
            // Nothing at or above the top of the current run is live: a block there was given
            // back to the top by an earlier free (pushing it would hand it out twice).
            if addr >= self.top && addr < self.end {
                return self.report(ErrorKind::DoubleFree, p);
            }
        }
        self.stats.on_free(class_size(c));
        if RETURN && c >= LARGE_CLASS {
            // SAFETY: as below.
            return unsafe { self.free_large(c, p) };
        }
        // SAFETY: the caller frees a live block of this class (it was allocated with a layout of
        // the same class); it is class-aligned (checked) and not the list's head (checked).
        unsafe { self.push(c, p) }
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> SegregatedHeap<S, E, C, L> {
    /// Resizes the block in place (this layer's [`Layer::RESIZE`]): a block keeps its address; it
    /// stays in place only while its class under the new layout (size and alignment) is its class,
    /// so it is later freed onto the right list; growing into a larger class at the top of the run
    /// claims the bytes up to the new class size from the run, which are unused, and only when the
    /// block is aligned for the larger class.
    ///
    /// # Safety
    ///
    /// As for [`alloc_core::layer::Resize::resize_in_place`].
    #[inline]
    pub unsafe fn resize_in_place(&mut self, p: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError> {
        let c = class_of(old.size(), old.align());
        let n = class_of(new.size(), new.align());
        if n == c {
            return Ok(class_size(c));
        }
        let addr = p.as_ptr() as usize;
        if TOP_REUSE
            && n > c
            && self.at_top(addr, class_size(c))
            && ptr::is_aligned(addr, class_align(n))
            && class_size(n) <= self.end - addr
        {
            self.top = addr + class_size(n);
            self.stats.on_resize(class_size(c), class_size(n));
            return Ok(class_size(n));
        }
        Err(AllocError)
    }
}

// SAFETY: a block of class `c` is `class_size(c)` bytes, and every size up to it has the same
// class (so frees with it find the same list).
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> UsableSize for SegregatedHeap<S, E, C, L> {
    unsafe fn usable_size(&self, _p: NonNull<u8>, layout: Layout) -> usize {
        class_size(class_of(layout.size(), layout.align()))
    }
}

/// With the `run-list` feature (the heap knows its runs).
// SAFETY: true exactly for the usable part of the heap's runs, found on the run list (headers
// the heap keeps mapped); every block lies in one.
#[cfg(feature = "run-list")]
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::layer::Owns
    for SegregatedHeap<S, E, C, L>
{
    /// Walks the run list: O(runs).
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.run_of(ptr.as_ptr() as usize).is_some()
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> Validate for SegregatedHeap<S, E, C, L> {
    /// Checks the current run's bounds, the run list, and every free block: on a list whose links
    /// decode to plausible blocks, without a loop, inside a run and, in the current run, below
    /// the top (carving or growing past the run's end shows here). Without the `run-list`
    /// feature, blocks outside the current run are checked for alignment and loops only.
    fn validate(&self) -> Result<(), Corruption> {
        let bad = |what, addr| Err(Corruption { what, addr });
        if self.top != 0 {
            let start = self.base.as_ptr() as usize;
            if self.top < start + RUN_HEADER || self.top > self.end {
                return bad("run top outside the current run", self.top);
            }
            if RUN_LIST && self.run_of(start).is_none_or(|(_, e)| e != self.end) {
                return bad("the current run is not on the run list", start);
            }
        }
        let mut n = 0usize;
        let mut cur = self.runs;
        while let Some(h) = cur {
            n += 1;
            // SAFETY: run headers in the list are initialised and their runs mapped.
            let run = unsafe { h.as_ptr().read() };
            let (b, at) = (run.base.as_ptr() as usize, h.as_ptr() as usize);
            if n > 1 << 24 || at < b || at + RUN_HEADER > b + run.len || b < self.lo || b + run.len > self.hi {
                return bad("run list inconsistent", at);
            }
            cur = run.prev;
        }
        let links = self.links();
        let mut idle = 0usize;
        for (c, list) in self.lists.iter().enumerate() {
            // Floyd's cycle check, with every node checked on the way.
            let (mut slow, mut fast) = (list.peek(), list.peek());
            let mut step = 0usize;
            while let Some(p) = fast {
                let addr = p.as_ptr() as usize;
                if !self.plausible(c, addr) {
                    return bad("free-list link points outside the heap or off its class's alignment", addr);
                }
                let block_end = addr + class_size(c);
                if RUN_LIST {
                    let Some((_, end)) = self.run_of(addr) else {
                        return bad("free block is in no run", addr);
                    };
                    if block_end > end {
                        return bad("free block runs past the end of its run", addr);
                    }
                }
                if self.in_run(addr) && block_end > self.top {
                    return bad("free block lies above the run's top", addr);
                }
                if RETURN && c >= LARGE_CLASS {
                    // SAFETY: a plausible large free block; its flag was written when pushed.
                    match unsafe { Self::resident(p).read() } {
                        0 | ZERO_TAIL => {}
                        RESIDENT => idle += class_size(c),
                        _ => return bad("large free block's residency flag overwritten", addr),
                    }
                }
                // SAFETY: a plausible block on the list; its first word is a link.
                fast = unsafe { links.read(p) };
                step += 1;
                if step.is_multiple_of(2) {
                    // SAFETY: slow trails fast over blocks already checked.
                    slow = slow.and_then(|s| unsafe { links.read(s) });
                    if slow.is_some() && slow == fast {
                        return bad("free list loops", addr);
                    }
                }
            }
        }
        if idle != self.idle {
            return bad("idle bytes differ from the resident large blocks on the lists", self.idle);
        }
        Ok(())
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> Drop for SegregatedHeap<S, E, C, L> {
    /// Gives every run back to the page source: a heap that is dropped (an allocator value, not
    /// a global) keeps nothing mapped.
    fn drop(&mut self) {
        while let Some(h) = self.runs {
            // SAFETY: headers in the list are initialised and their runs mapped; the header is
            // read before its run is unmapped, and no block can be in use once the heap is dropped.
            unsafe {
                let run = h.as_ptr().read();
                self.runs = run.prev;
                self.stats.on_unmap(run.len);
                self.source.unmap(run.base, run.len);
            }
        }
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> core::fmt::Debug for SegregatedHeap<S, E, C, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SegregatedHeap")
            .field("top", &format_args!("{:#x}", self.top))
            .field("end", &format_args!("{:#x}", self.end))
            .finish_non_exhaustive()
    }
}

/// Small tests over a fixed buffer, sized so Miri can check the free-list links and provenance
/// (`cargo +nightly miri test -p alloc-segregated --lib`); the conformance suite covers the rest.
impl<S: PageSource, E: ErrorPolicy, L: LinkCodec> alloc_core::Statistics
    for SegregatedHeap<S, E, alloc_core::Counting, L>
{
    fn stats(&self) -> alloc_core::Stats {
        self.counters().get()
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::Trim for SegregatedHeap<S, E, C, L> {
    /// [`SegregatedHeap::trim`].
    fn trim(&mut self) {
        SegregatedHeap::trim(self);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc_core::{Count, FixedSource, SafeLinks};
    use std::vec;

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// The padding an aligned block leaves below it is carved into free blocks (with `carve`):
    /// the next small request is served from that gap, not from above the aligned block.
    #[test]
    fn the_gap_below_an_aligned_block_serves_the_next_requests() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let a = h.allocate(l(16, 16)).unwrap().cast::<u8>().as_ptr() as usize;
        let page = h.allocate(l(16, 4096)).unwrap().cast::<u8>().as_ptr() as usize;
        assert!(page > a + 16, "the aligned block leaves a gap: {a:#x} {page:#x}");
        let next = h.allocate(l(16, 16)).unwrap().cast::<u8>().as_ptr() as usize;
        if CARVE {
            assert!(next > a && next < page, "{next:#x} is not in the gap {a:#x}..{page:#x}");
            assert!(h.free_blocks().iter().sum::<usize>() > 0, "the rest of the gap waits on lists");
        }
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn classes_reuse_carve_and_grow_over_a_buffer() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let a = h.allocate(l(20, 4)).unwrap().cast::<u8>();
        let b = h.allocate(l(100, 64)).unwrap().cast::<u8>();
        let big = h.allocate(l(5000, 8)).unwrap().cast::<u8>();
        assert_eq!(b.as_ptr() as usize % 64, 0);
        // SAFETY: live blocks of at least these sizes.
        unsafe {
            a.as_ptr().write_bytes(1, 32);
            b.as_ptr().write_bytes(2, 128);
            big.as_ptr().write_bytes(3, 8192);
            h.deallocate(a, l(20, 4));
            h.deallocate(b, l(100, 64));
        }
        assert_eq!(h.validate(), Ok(()));
        // Freed blocks come back from their class's list.
        assert_eq!(h.allocate(l(30, 8)).unwrap().cast::<u8>(), a);
        assert_eq!(h.allocate(l(128, 1)).unwrap().cast::<u8>(), b);
        // The large block sits at the top of the run: it grows in place into the next class
        // (with `top-reuse`; without it, it stays in its class).
        // SAFETY: big is live with this layout.
        let grown = unsafe { h.resize_in_place(big, l(5000, 8), l(12_000, 8)) };
        if TOP_REUSE {
            assert_eq!(grown, Ok(16384));
            // SAFETY: the block is now 16 KiB and keeps its bytes.
            unsafe {
                assert_eq!(*big.as_ptr().add(8191), 3);
                big.as_ptr().add(16383).write(4);
                h.deallocate(big, l(12_000, 8));
            }
        } else {
            assert_eq!(grown, Err(AllocError));
            // SAFETY: big is live with its first layout.
            unsafe { h.deallocate(big, l(5000, 8)) };
        }
        assert_eq!(h.errors().detected(), 0);
        // An immediate double free is reported and ignored.
        let c = h.allocate(l(48, 8)).unwrap().cast::<u8>();
        // SAFETY: the second free is the misuse under test; Count records it.
        unsafe {
            h.deallocate(c, l(48, 8));
            h.deallocate(c, l(48, 8));
        }
        assert_eq!(h.errors().detected(), 1);
        assert_eq!(h.validate(), Ok(()));
        // Exhausting the buffer fails cleanly, and small blocks still come from the lists.
        while h.allocate(l(4096, 8)).is_ok() {}
        assert!(h.allocate(l(40, 8)).is_ok());
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn a_larger_alignment_in_place_is_refused_when_it_changes_the_class() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        // Find a 16-byte block that happens to be 32-aligned.
        let p = loop {
            let p = h.allocate(l(16, 8)).unwrap().cast::<u8>();
            if (p.as_ptr() as usize).is_multiple_of(32) {
                break p;
            }
        };
        // A neighbour after it, so it is not at the top of the run (where it could grow).
        let _neighbour = h.allocate(l(16, 8)).unwrap();
        // 16 bytes aligned to 32 is the 32-byte class: the 16-byte block cannot stay.
        // SAFETY: p is live with layout (16, 8) and aligned to 32.
        assert_eq!(unsafe { h.resize_in_place(p, l(16, 8), l(16, 32)) }, Err(AllocError));
        // The same class under a smaller alignment is fine.
        // SAFETY: as above.
        assert_eq!(unsafe { h.resize_in_place(p, l(16, 8), l(12, 4)) }, Ok(16));
    }

    #[test]
    fn an_overflow_into_a_free_block_is_reported_with_safe_links() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count, NoStats, SafeLinks> =
            SegregatedHeap::new(FixedSource::new(&mut buf));
        let a = h.allocate(l(32, 8)).unwrap().cast::<u8>();
        let b = h.allocate(l(32, 8)).unwrap().cast::<u8>();
        let c = h.allocate(l(32, 8)).unwrap().cast::<u8>();
        // SAFETY: c then b are freed (b is the head, linking to c); then the program writes one
        // word past the end of its live block `a`, over b's link: the misuse under test.
        unsafe {
            h.deallocate(c, l(32, 8));
            h.deallocate(b, l(32, 8));
            assert_eq!(b.as_ptr() as usize, a.as_ptr() as usize + 32);
            a.as_ptr().add(32).cast::<usize>().write(0x4141_4141_4141_4141);
        }
        assert_eq!(h.allocate(l(32, 8)).unwrap().cast::<u8>(), b);
        let e = h.errors().last().expect("the overwritten link is reported");
        assert_eq!((e.kind, e.addr), (ErrorKind::CorruptedFreeList, b.as_ptr() as usize));
        // The heap goes on without following the wild link.
        let d = h.allocate(l(32, 8)).unwrap().cast::<u8>();
        assert_ne!(d.as_ptr() as usize, 0x4141_4141_4141_4141);
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn out_of_pages_a_larger_free_block_is_split() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let mut pages = std::vec::Vec::new();
        while let Ok(p) = h.allocate(l(4096, 8)) {
            pages.push(p.cast::<u8>());
        }
        let small = class_of(64, 8);
        // Use up the run's tail, and every block carving left (split when larger), then free
        // every page.
        while h.allocate(l(64, 8)).is_ok() {}
        assert!(h.free_blocks()[small..].iter().all(|&n| n == 0));
        for &p in &pages {
            // SAFETY: live 4 KiB blocks, freed once.
            unsafe { h.deallocate(p, l(4096, 8)) };
        }
        let last = *pages.last().unwrap();
        // The source is spent: the 64-byte block is the low end of the last page freed, and the
        // page's other halves wait on the lists of the classes in between.
        let p = h.allocate(l(64, 8)).unwrap().cast::<u8>();
        assert_eq!(p, last);
        let counts = h.free_blocks();
        assert!((small..class_of(4096, 8)).all(|c| counts[c] == 1), "{counts:?}");
        assert_eq!(h.allocate(l(64, 8)).unwrap().cast::<u8>().as_ptr() as usize, last.as_ptr() as usize + 64);
        // An over-page alignment cannot be split from page-aligned blocks.
        assert_eq!(h.allocate(l(64, 8192)), Err(AllocError));
        assert_eq!(h.validate(), Ok(()));
    }

    /// With the source spent and no free block of the class, a request aligned to exactly a
    /// page (the most a larger class's blocks promise) is served by splitting a larger block.
    #[test]
    fn out_of_pages_a_page_aligned_request_splits_a_larger_block() {
        let mut buf = vec![0u8; 128 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let mut big = std::vec::Vec::new();
        while let Ok(p) = h.allocate(l(8192, 8)) {
            big.push(p.cast::<u8>());
        }
        let mut pages = std::vec::Vec::new();
        while let Ok(p) = h.allocate(l(4096, 8)) {
            pages.push(p);
        }
        assert!(big.len() >= 2);
        // Every 8 KiB block but the newest, which may sit at the run's top (a freed block there
        // goes back to the top, where the request could bump).
        big.pop();
        for &p in &big {
            // SAFETY: live 8 KiB blocks, freed once.
            unsafe { h.deallocate(p, l(8192, 8)) };
        }
        let p = h.allocate(l(4096, 4096)).expect("split from a free 8 KiB block");
        assert_eq!(p.cast::<u8>().as_ptr() as usize % 4096, 0);
        assert!(big.contains(&p.cast::<u8>()), "the low half of a freed 8 KiB block");
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn idle_large_blocks_are_counted_given_back_and_checked() {
        let mut buf = vec![0u8; 2 << 20];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        h.set_retain(128 << 10);
        let big = l(64 << 10, 8);
        let blocks: std::vec::Vec<_> = (0..4).map(|_| h.allocate(big).unwrap().cast::<u8>()).collect();
        for (i, &p) in blocks.iter().enumerate() {
            // SAFETY: live 64 KiB blocks, written whole, then freed once.
            unsafe {
                p.as_ptr().write_bytes(0xa5, 64 << 10);
                h.deallocate(p, big);
            }
            assert_eq!(h.validate(), Ok(()), "after free {i}");
        }
        // 256 KiB freed against a 128 KiB limit: the third free went over it and gave blocks
        // back (over a buffer, zeroed past their first page) down to 64 KiB.
        assert_eq!(h.idle_bytes(), 128 << 10);
        let zeroed = blocks.iter().filter(|&&p| {
            // SAFETY: the blocks are free but their memory is the buffer's; read-only look.
            unsafe { *p.as_ptr().add(8192) == 0 }
        });
        assert_eq!(zeroed.count(), 2);
        // Reuse takes them off the idle count; a planted flag is seen by the validator.
        let p = h.allocate(big).unwrap().cast::<u8>();
        assert_eq!(h.idle_bytes(), 64 << 10);
        h.trim();
        assert_eq!(h.idle_bytes(), 0);
        let q = h.lists[class_of(64 << 10, 8)].peek().unwrap();
        // SAFETY: q is a free large block; its flag word is planted to test the validator.
        unsafe { SegregatedHeap::<FixedSource<'_>, Count>::resident(q).write(9) };
        assert_eq!(h.validate().unwrap_err().what, "large free block's residency flag overwritten");
        // SAFETY: restored, and p freed with its layout.
        unsafe {
            SegregatedHeap::<FixedSource<'_>, Count>::resident(q).write(0);
            h.deallocate(p, big);
        }
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn a_given_back_block_is_zeroed_by_its_first_page_only_and_reads_as_zero() {
        let mut buf = vec![0u8; 1 << 20];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        h.set_retain(0);
        let big = l(64 << 10, 8);
        let p = h.allocate(big).unwrap().cast::<u8>();
        let _fence = h.allocate(big).unwrap();
        // SAFETY: p is live, written whole, then freed; with no retain it is given back at once
        // (over a buffer: its pages past the first are zeroed).
        unsafe {
            p.as_ptr().write_bytes(0xa5, 64 << 10);
            h.deallocate(p, big);
        }
        let q = h.allocate_zeroed(big).unwrap().cast::<u8>();
        assert_eq!(q, p);
        // SAFETY: a live block of 64 KiB.
        let bytes = unsafe { core::slice::from_raw_parts(q.as_ptr(), 64 << 10) };
        assert!(bytes.iter().all(|&b| b == 0), "a reused given-back block is not all zero");
        // A block taken by a plain allocation and written is dirty again.
        // SAFETY: q is live; written, freed, and taken again.
        unsafe {
            q.as_ptr().write_bytes(0x5a, 64 << 10);
            h.set_retain(usize::MAX);
            h.deallocate(q, big);
        }
        let r = h.allocate_zeroed(big).unwrap().cast::<u8>();
        // SAFETY: as above.
        let bytes = unsafe { core::slice::from_raw_parts(r.as_ptr(), 64 << 10) };
        assert!(bytes.iter().all(|&b| b == 0), "a resident reused block is not all zero");
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn a_list_made_cyclic_by_an_undetected_double_free_does_not_hold_the_release_walk() {
        let mut buf = vec![0u8; 1 << 20];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        h.set_retain(0);
        let big = l(64 << 10, 8);
        let (a, b) = (h.allocate(big).unwrap().cast::<u8>(), h.allocate(big).unwrap().cast::<u8>());
        let _fence = h.allocate(big).unwrap();
        // SAFETY: a and b are freed once; the second free of a, with b in between, is the misuse
        // the head check cannot see: it links a -> b -> a.
        unsafe {
            h.deallocate(a, big);
            h.deallocate(b, big);
            h.deallocate(a, big);
        }
        // The walk that gave a back stopped after as many blocks as the heap can hold.
        assert_eq!(h.idle_bytes(), 0);
        h.trim();
        assert_eq!(h.errors().detected(), 0);
    }

    #[test]
    fn the_validator_sees_a_free_block_past_the_top() {
        let mut buf = vec![0u8; 256 << 10];
        let mut h: SegregatedHeap<FixedSource<'_>, Count> = SegregatedHeap::new(FixedSource::new(&mut buf));
        let _a = h.allocate(l(64, 8)).unwrap();
        // Plant a block above the top on the 64-byte list, as a carving bug would.
        let wild = h.top + 256;
        // SAFETY: the address is inside the current run and unused; planted to test the validator.
        unsafe { h.push(class_of(64, 8), ptr::with_addr(h.base, wild)) };
        assert_eq!(h.validate().unwrap_err().what, "free block lies above the run's top");
        h.lists[class_of(64, 8)].clear();
    }

    type Checked = SegregatedHeap<alloc_core::MmapSource, Count, alloc_core::NoStats, SafeLinks>;

    /// A link that decodes to an address aligned for its class but outside the heap's runs is
    /// refused: the bounds are part of what makes a link plausible.
    #[test]
    fn a_link_out_of_the_heap_is_refused_even_when_aligned() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let x = h.allocate(l(64, 8)).unwrap().cast::<u8>();
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(x, l(64, 8)) };
        let outside = vec![0u64; 64];
        let target = (outside.as_ptr() as usize).next_multiple_of(64);
        let target = NonNull::new(outside.as_ptr().cast::<u8>().cast_mut().with_addr(target)).unwrap();
        // SAFETY: x is a free block of the heap: its first word is its link.
        unsafe { h.links().write(x, Some(target)) };
        assert_eq!(h.allocate(l(64, 8)).unwrap().cast::<u8>(), x);
        let next = h.allocate(l(64, 8)).unwrap().cast::<u8>();
        assert_ne!(next, target, "followed a link out of the heap");
        assert_eq!(h.errors().last().map(|e| e.kind), Some(ErrorKind::CorruptedFreeList));
        assert_eq!(h.validate(), Ok(()));
    }

    /// A link that decodes to the heap's end (one past its last run, aligned for every class)
    /// is refused like any address outside it.
    #[test]
    fn a_link_to_the_heap_end_is_refused() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let x = h.allocate(l(64, 8)).unwrap().cast::<u8>();
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(x, l(64, 8)) };
        let end = NonNull::new(x.as_ptr().with_addr(h.hi)).unwrap();
        // SAFETY: x is a free block of the heap: its first word is its link.
        unsafe { h.links().write(x, Some(end)) };
        assert_eq!(h.allocate(l(64, 8)).unwrap().cast::<u8>(), x);
        assert_eq!(h.errors().last().map(|e| e.kind), Some(ErrorKind::CorruptedFreeList));
        let next = h.allocate(l(64, 8)).unwrap().cast::<u8>();
        assert_ne!(next, end, "followed a link to the heap's end");
        assert_eq!(h.validate(), Ok(()));
    }

    /// A corrupted link in one large class drops that list; the idle bytes are counted again
    /// from what stays on the other lists (the validator checks the count): the block dropped
    /// behind the corrupted one no longer counts, both blocks of the other list still do.
    #[test]
    fn dropping_a_corrupted_large_list_recounts_the_idle_bytes() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let (small, big) = (l(64 << 10, 8), l(128 << 10, 8));
        let a1 = h.allocate(small).unwrap().cast::<u8>();
        let a = h.allocate(small).unwrap().cast::<u8>();
        let b1 = h.allocate(big).unwrap().cast::<u8>();
        let b = h.allocate(big).unwrap().cast::<u8>();
        let keep = h.allocate(l(16, 8)).unwrap();
        // SAFETY: live blocks with their layouts, freed once; all stay resident (under the
        // default retain limit). `a` heads its list, `a1` behind it.
        unsafe {
            h.deallocate(a1, small);
            h.deallocate(a, small);
            h.deallocate(b1, big);
            h.deallocate(b, big);
        }
        let idle = h.idle_bytes();
        assert_eq!(idle, 2 * (64 << 10) + 2 * (128 << 10));
        // SAFETY: a is a free block of the heap: its first word is its link.
        unsafe { a.as_ptr().cast::<usize>().write(0x1234_5678) };
        let _ = h.allocate(small);
        assert_eq!(h.errors().last().map(|e| e.kind), Some(ErrorKind::CorruptedFreeList));
        assert_eq!(h.idle_bytes(), 2 * (128 << 10), "b and b1 are still idle on their list, a1 dropped");
        assert_eq!(h.validate(), Ok(()));
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(keep.cast(), l(16, 8)) };
    }

    /// The recount after a corrupted large list walks the other large lists with a bound: a
    /// list made cyclic (the undetected double free a plain list allows) cannot hold it for
    /// ever, and the validator names the cycle.
    #[test]
    fn the_idle_recount_stops_on_a_cyclic_list() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let (small, big) = (l(64 << 10, 8), l(256 << 10, 8));
        let a = h.allocate(small).unwrap().cast::<u8>();
        let x1 = h.allocate(big).unwrap().cast::<u8>();
        let x2 = h.allocate(big).unwrap().cast::<u8>();
        // SAFETY: live blocks with their layouts, freed once: `x2` heads its list, `x1` behind.
        unsafe {
            h.deallocate(a, small);
            h.deallocate(x1, big);
            h.deallocate(x2, big);
        }
        // SAFETY: free blocks of the heap: their first words are their links. `x1` now leads
        // back to `x2` (a cycle of two), and `a`'s link is garbage.
        unsafe {
            h.links().write(x1, Some(x2));
            a.as_ptr().cast::<usize>().write(0x1234_5678);
        }
        let _ = h.allocate(small);
        assert_eq!(h.errors().last().map(|e| e.kind), Some(ErrorKind::CorruptedFreeList));
        assert!(h.validate().is_err(), "a cyclic list passed the validator");
        // SAFETY: as above: the cycle undone (the heap is dropped without walking its lists).
        unsafe { h.links().write(x1, None) };
    }

    /// The validator names a run top below the run's header and a run header whose length
    /// reaches past the heap; each broken alone, then put back. Debug shows the heap's state.
    #[test]
    fn validate_names_a_bad_top_and_a_bad_run_header() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let x = h.allocate(l(64, 8)).unwrap();
        assert_eq!(h.validate(), Ok(()));
        let top = h.top;
        h.top = h.base.as_ptr() as usize;
        let got = h.validate().err().map(|c| c.what);
        h.top = top;
        assert_eq!(got, Some("run top outside the current run"));
        if RUN_LIST {
            // A block with a run of its own, so a run other than the current one is listed.
            let own = h.allocate(l(4 << 20, 8)).unwrap();
            let mut run = h.runs.unwrap().as_ptr();
            // SAFETY: the heap's own run headers, read only.
            while unsafe { (*run).base } == h.base {
                // SAFETY: as above.
                run = unsafe { (*run).prev }.unwrap().as_ptr();
            }
            // SAFETY: the heap's own run header, put back below; nothing else runs on it.
            unsafe { (*run).len += 1 << 40 };
            let got = h.validate().err().map(|c| c.what);
            // SAFETY: as above.
            unsafe { (*run).len -= 1 << 40 };
            assert_eq!(got, Some("run list inconsistent"));
            // A run whose length ends inside its own header (the header lies after the block).
            // SAFETY: as above.
            let got = unsafe {
                let (len, b, at) = ((*run).len, (*run).base.as_ptr() as usize, run as usize);
                (*run).len = at - b + RUN_HEADER / 2;
                let got = h.validate().err().map(|c| c.what);
                (*run).len = len;
                got
            };
            assert_eq!(got, Some("run list inconsistent"));
            // SAFETY: a live block with its layout.
            unsafe { h.deallocate(own.cast(), l(4 << 20, 8)) };
        }
        assert_eq!(h.validate(), Ok(()));
        assert!(std::format!("{h:?}").starts_with("SegregatedHeap"));
        // SAFETY: a live block with its layout.
        unsafe { h.deallocate(x.cast(), l(64, 8)) };
    }

    /// A large block given back to the OS while on its list (retain 0), handed out again by
    /// `allocate_zeroed`: its first page, which held the link and the residency flag, is zeroed
    /// too.
    #[test]
    fn a_given_back_large_block_comes_back_zeroed() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        h.set_retain(0);
        let big = l(200 << 10, 8);
        let p = h.allocate(big).unwrap().cast::<u8>();
        // SAFETY: a live block of at least `big.size()` bytes, then freed once.
        unsafe {
            p.as_ptr().write_bytes(0xee, big.size());
            h.deallocate(p, big);
        }
        let z = h.allocate_zeroed(big).unwrap();
        assert_eq!(z.cast::<u8>(), p, "the same block, from its list");
        // SAFETY: a live block of z.len() bytes.
        let bytes = unsafe { core::slice::from_raw_parts(z.cast::<u8>().as_ptr(), z.len()) };
        // Every byte of the first and last 8 KiB (where the link, the flag and a partial page
        // lie), every 64th byte between (Miri runs this test too).
        let n = bytes.len();
        let dirty = (0..n).filter(|&i| i < 8192 || i >= n - 8192 || i % 64 == 0).find(|&i| bytes[i] != 0);
        assert_eq!(dirty, None);
        assert_eq!(h.validate(), Ok(()));
    }

    /// `set_retain` gives back only what is over half the new limit, and only when idle bytes
    /// exceed it.
    #[test]
    fn set_retain_gives_back_down_to_half_the_limit() {
        let mut h: Checked = SegregatedHeap::new(alloc_core::MmapSource::new());
        let block = l(64 << 10, 8);
        let blocks: std::vec::Vec<_> = (0..3).map(|_| h.allocate(block).unwrap().cast::<u8>()).collect();
        for &p in &blocks {
            // SAFETY: live blocks with their layout, touched, then freed once.
            unsafe {
                p.as_ptr().write_bytes(1, block.size());
                h.deallocate(p, block);
            }
        }
        let idle = h.idle_bytes();
        assert_eq!(idle, 3 * (64 << 10));
        h.set_retain(4 * (64 << 10));
        assert_eq!(h.idle_bytes(), idle, "under the limit: nothing given back");
        h.set_retain(2 * (64 << 10));
        assert_eq!(h.idle_bytes(), 64 << 10, "over it: down to half the limit");
        assert_eq!(h.validate(), Ok(()));
    }
}
