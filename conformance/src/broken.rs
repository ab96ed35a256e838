//! Deliberately broken allocators, and trusted references, to prove the suite can fail.
//!
//! [`Faulty`] is a small size-class allocator (power-of-two classes, free lists kept in side
//! tables, chunks mapped through a metered, budgeted page source, each with a guard page after
//! it) with one defect switched on by its const parameter; with [`NONE`] it is correct and must
//! pass. Its free lists live outside the memory it hands out, so a broken variant cannot corrupt
//! the test process's own heap while the suite finds it out. [`Reference`] is the system
//! allocator with a byte budget: the trusted baseline, threads included. [`OverlapsAcrossThreads`]
//! is thread-safe and wrong only between threads.

use alloc_core::source::{Access, PageSource, Protect};
use alloc_core::{Limited, MmapSource, Stats};
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use std::alloc::{GlobalAlloc, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// No defect: a correct allocator.
pub const NONE: u8 = 0;
/// Every 16th block overlaps the tail of the block before it by 8 bytes.
pub const OVERLAPS: u8 = 1;
/// Blocks asked to be aligned to 16 or more come back 8 bytes off.
pub const MISALIGNS: u8 = 2;
/// Growing a block moves it and copies only half of its bytes.
pub const LOSES_BYTES_ON_REALLOC: u8 = 3;
/// The memory budget is ignored.
pub const IGNORES_LIMIT: u8 = 4;
/// `allocate_zeroed` forgets to zero reused blocks.
pub const DIRTY_ZEROED: u8 = 5;
/// Zero-size requests get the same dangling pointer whatever the alignment.
pub const ZERO_SIZE_MISALIGNED: u8 = 6;
/// Reset forgets its chunks instead of freeing them (a leak), and starts a new one.
pub const RESET_LEAKS: u8 = 7;
/// Reset empties the free lists but keeps the bump pointer where it was: the memory below it
/// is never handed out again.
pub const RESET_STALE: u8 = 8;
/// Every block takes at least a page.
pub const WASTES: u8 = 9;
/// A freed block is parked on the list of the class below its own, which never hands it to a
/// request of its class again: a leak that only steady churn shows.
pub const LEAKS_FREED: u8 = 10;
/// Dropping the allocator leaves its chunks mapped.
pub const DROP_LEAKS: u8 = 11;
/// `GlobalAlloc::realloc` copies only half of the bytes (the `Allocator` path is right).
pub const GLOBAL_REALLOC_LOSES: u8 = 12;
/// A block freed with a fitting size larger than the size asked for goes onto the list of a
/// larger class, where it is handed out too small.
pub const FITS_MISFILED: u8 = 13;
/// An in-place resize picks the class from the old alignment (the `alloc-segregated` bug): a
/// block that happens to suit a larger alignment stays in place and is later freed onto the
/// larger class's list.
pub const KEEPS_CLASS_ON_REALIGN: u8 = 14;
/// `owns` says no for the last byte of every block.
pub const OWNS_LIES: u8 = 15;
/// `usable_size` claims 16 bytes more than the block has.
pub const USABLE_TOO_LARGE: u8 = 16;
/// The statistics do not follow resizes.
pub const STATS_MISCOUNT: u8 = 17;
/// Allocations fail on any thread but the one that made the allocator.
pub const THREAD_BOUND: u8 = 18;
/// The last block that fits in a chunk is handed out one byte longer than the chunk (its last
/// byte is on the guard page after the chunk: writing it faults).
pub const ONE_PAST_THE_END: u8 = 19;

/// Trim gives back the pages of every chunk, live blocks' included (a scavenger that forgets
/// which spans are in use): their contents read as zero afterwards.
pub const TRIM_DISCARDS_LIVE: u8 = 20;

/// Bytes of a regular chunk.
const CHUNK: usize = 256 << 10;
/// Size classes: powers of two from 16 bytes.
const CLASSES: usize = 60;

fn class_of(size: usize, align: usize) -> usize {
    let need = size.max(align).max(16);
    (usize::BITS - (need - 1).leading_zeros()) as usize - 4
}

fn class_size(c: usize) -> usize {
    16 << c
}

struct Chunk {
    base: NonNull<u8>,
    /// Usable bytes (the guard page after them is not counted).
    len: usize,
    /// Blocks handed out from it and not yet freed.
    live: usize,
}

impl Chunk {
    fn contains(&self, addr: usize) -> bool {
        addr >= self.base.as_ptr() as usize && addr < self.base.as_ptr() as usize + self.len
    }
}

impl State {
    fn empty() -> Self {
        State {
            chunks: Vec::new(),
            current: None,
            top: 0,
            lists: vec![Vec::new(); CLASSES],
            asked: HashMap::new(),
            stats: Stats::default(),
            count: 0,
        }
    }
}

struct State {
    chunks: Vec<Chunk>,
    /// The chunk being bumped (its base address), and its next free offset.
    current: Option<usize>,
    top: usize,
    /// Free blocks per class (addresses), kept outside the blocks.
    lists: Vec<Vec<usize>>,
    /// Size asked for, by block address.
    asked: HashMap<usize, usize>,
    stats: Stats,
    count: u64,
}

/// A size-class allocator with defect `D`.
pub struct Faulty<const D: u8> {
    state: RefCell<State>,
    source: Limited<MmapSource>,
    creator: std::thread::ThreadId,
}

// SAFETY: (for every D but THREAD_BOUND, which refuses on purpose) the allocator owns its chunks
// and side tables; moving it moves that ownership. It stays `!Sync` through the RefCell.
unsafe impl<const D: u8> Send for Faulty<D> {}

impl<const D: u8> Faulty<D> {
    /// A fresh allocator over `source`.
    pub fn new(source: Limited<MmapSource>) -> Self {
        Faulty { state: RefCell::new(State::empty()), source, creator: std::thread::current().id() }
    }

    fn page(&self) -> usize {
        self.source.page_size()
    }

    /// Maps a chunk of `len` usable bytes aligned to `align`, with a guard page after it.
    fn map_chunk(&self, st: &mut State, len: usize, align: usize) -> Option<usize> {
        let page = self.page();
        let len = alloc_core::ptr::align_up(len, page)?;
        let base = self.source.map(len.checked_add(page)?, align.max(page))?;
        // SAFETY: the last page of our own fresh mapping.
        unsafe { self.source.protect(base.add(len), page, Access::None) };
        st.chunks.push(Chunk { base, len, live: 0 });
        Some(st.chunks.len() - 1)
    }

    fn unmap_all(&self, st: &mut State) {
        st.current = None;
        st.top = 0;
        for c in st.chunks.drain(..) {
            self.unmap_chunk(c);
        }
    }

    fn unmap_chunk(&self, c: Chunk) {
        let page = self.page();
        // SAFETY: the guard page back to read/write, then the chunk and its guard given back; no
        // block in it is used any more.
        unsafe {
            self.source.protect(c.base.add(c.len), page, Access::ReadWrite);
            self.source.unmap(c.base, c.len + page);
        }
    }

    fn alloc(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if D == THREAD_BOUND && std::thread::current().id() != self.creator {
            return Err(AllocError);
        }
        if layout.size() == 0 {
            let p =
                if D == ZERO_SIZE_MISALIGNED { NonNull::dangling() } else { alloc_core::ptr::dangling(layout.align()) };
            return Ok(NonNull::slice_from_raw_parts(p, 0));
        }
        let mut st = self.state.borrow_mut();
        st.count += 1;
        let n = st.count;
        let mut c = class_of(layout.size(), layout.align());
        if D == WASTES {
            c = c.max(class_of(self.page(), 1));
        }
        let len = class_size(c);
        let page = self.page();
        let block_align = len.min(page).max(layout.align());
        let mut ret_len = len;
        let mut addr = if let Some(i) = st.lists[c].iter().rposition(|&a| a % layout.align() == 0) {
            // A freed block of the class, aligned as asked.
            st.lists[c].swap_remove(i)
        } else if len > CHUNK / 4 || block_align > page {
            // A chunk of its own.
            let k = self.map_chunk(&mut st, len, block_align).ok_or(AllocError)?;
            st.chunks[k].base.as_ptr() as usize
        } else {
            let at = |st: &State| st.current.and_then(|b| st.chunks.iter().position(|c| c.base.as_ptr() as usize == b));
            let fits = at(&st).is_some_and(|k| {
                let (b, e) =
                    (st.chunks[k].base.as_ptr() as usize, st.chunks[k].base.as_ptr() as usize + st.chunks[k].len);
                (b + st.top).next_multiple_of(block_align) + len <= e
            });
            if !fits {
                let k = self.map_chunk(&mut st, CHUNK, page).ok_or(AllocError)?;
                st.current = Some(st.chunks[k].base.as_ptr() as usize);
                st.top = 0;
            }
            let k = at(&st).expect("a current chunk");
            let (base, end) =
                (st.chunks[k].base.as_ptr() as usize, st.chunks[k].base.as_ptr() as usize + st.chunks[k].len);
            let mut start = (base + st.top).next_multiple_of(block_align);
            if D == OVERLAPS && n.is_multiple_of(16) && st.top >= 8 {
                start -= 8;
            }
            st.top = start + len - base;
            if D == ONE_PAST_THE_END && start + 2 * len > end {
                // The last block of the chunk: claim one byte past the chunk's end.
                ret_len = end + 1 - start;
            }
            start
        };
        if D == MISALIGNS && layout.align() >= 16 {
            addr += 8;
            ret_len -= 8;
        }
        st.asked.insert(addr, layout.size());
        st.stats.bytes_live += ret_len;
        st.stats.blocks_live += 1;
        st.stats.allocations += 1;
        st.stats.peak_bytes_live = st.stats.peak_bytes_live.max(st.stats.bytes_live);
        let chunk = st.chunks.iter_mut().find(|ch| ch.contains(addr));
        let base = chunk.map_or(NonNull::dangling(), |ch| {
            ch.live += 1;
            ch.base
        });
        // SAFETY: addr lies inside that chunk; the pointer keeps the chunk's provenance.
        let p = unsafe { alloc_core::ptr::with_addr(base, addr) };
        Ok(NonNull::slice_from_raw_parts(p, ret_len))
    }

    fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        self.free_counted(ptr, layout, true)
    }

    fn free_counted(&self, ptr: NonNull<u8>, layout: Layout, count: bool) {
        if layout.size() == 0 {
            return;
        }
        let mut st = self.state.borrow_mut();
        let addr = ptr.as_ptr() as usize;
        // The class comes from the size asked for, which is recorded: any fitting size works.
        let asked = st.asked.remove(&addr).unwrap_or(layout.size());
        let mut c = class_of(asked, layout.align());
        if D == WASTES {
            c = c.max(class_of(self.page(), 1));
        }
        let misaligned = D == MISALIGNS && layout.align() >= 16;
        if count {
            let len = class_size(c) - if misaligned { 8 } else { 0 };
            st.stats.bytes_live = st.stats.bytes_live.saturating_sub(len);
            st.stats.blocks_live = st.stats.blocks_live.saturating_sub(1);
        }
        let addr = if misaligned { addr - 8 } else { addr };
        let list = match D {
            LEAKS_FREED if c > 0 => c - 1,
            FITS_MISFILED if layout.size() > asked => c + 1,
            _ => c,
        };
        st.lists[list].push(addr);
        // A chunk with nothing live in it (and not being bumped) goes back to the source, its
        // free blocks with it, so memory freed in one class serves another.
        let Some(k) = st.chunks.iter().position(|ch| ch.contains(addr)) else { return };
        st.chunks[k].live -= 1;
        let base = st.chunks[k].base.as_ptr() as usize;
        if st.chunks[k].live == 0 && st.current != Some(base) && D != LEAKS_FREED && D != DROP_LEAKS {
            let chunk = st.chunks.swap_remove(k);
            for l in &mut st.lists {
                l.retain(|&a| !chunk.contains(a));
            }
            drop(st);
            self.unmap_chunk(chunk);
        }
    }

    /// In place when the block's class (from the new size and alignment) does not change.
    fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
        global: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let addr = ptr.as_ptr() as usize;
        let asked = self.state.borrow().asked.get(&addr).copied();
        if old.size() != 0 && new.size() != 0 && D != MISALIGNS {
            let c = class_of(asked.unwrap_or(old.size()), old.align());
            let n = if D == KEEPS_CLASS_ON_REALIGN {
                class_of(new.size(), old.align())
            } else {
                class_of(new.size(), new.align())
            };
            if c == n && addr.is_multiple_of(new.align()) && D != WASTES {
                let mut st = self.state.borrow_mut();
                st.asked.insert(addr, new.size());
                if zeroed && new.size() > old.size() {
                    // SAFETY: the block is class_size(c) >= new.size() bytes long.
                    unsafe { ptr.as_ptr().add(old.size()).write_bytes(0, class_size(c) - old.size()) };
                }
                return Ok(NonNull::slice_from_raw_parts(ptr, class_size(c)));
            }
        }
        let fresh = if zeroed { self.alloc_zeroed(new)? } else { self.alloc(new)? };
        let halve = D == LOSES_BYTES_ON_REALLOC || (global && D == GLOBAL_REALLOC_LOSES);
        let keep = old.size().min(new.size());
        let keep = if halve { keep / 2 } else { keep };
        // SAFETY: both blocks are live; `copy`, not `copy_nonoverlapping`: a broken allocator's
        // blocks may overlap.
        unsafe { core::ptr::copy(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), keep) };
        // The planted miscount: the old block's free is not counted.
        self.free_counted(ptr, old, D != STATS_MISCOUNT);
        Ok(fresh)
    }

    fn alloc_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.alloc(layout)?;
        if D != DIRTY_ZEROED {
            // SAFETY: a fresh block of b.len() bytes.
            unsafe { b.cast::<u8>().as_ptr().write_bytes(0, b.len()) };
        }
        Ok(b)
    }

    /// Frees everything and gives every chunk back.
    pub fn reset(&mut self) {
        let mut st = std::mem::replace(self.state.get_mut(), State::empty());
        for l in &mut st.lists {
            l.clear();
        }
        st.asked.clear();
        st.stats.bytes_live = 0;
        st.stats.blocks_live = 0;
        match D {
            RESET_LEAKS => {
                // Forget every chunk (still mapped, never reused), and start afresh.
                std::mem::forget(std::mem::take(&mut st.chunks));
                st.current = None;
                st.top = 0;
            }
            // Keep everything, the bump pointer included.
            RESET_STALE => {}
            _ => self.unmap_all(&mut st),
        }
        *self.state.get_mut() = st;
    }

    /// Gives back what holds no live block: every chunk without one but the current chunk is
    /// unmapped (its free blocks leave the lists). With [`TRIM_DISCARDS_LIVE`], every chunk's
    /// pages are discarded instead, live blocks and all.
    pub fn trim(&mut self) {
        let st = self.state.get_mut();
        if D == TRIM_DISCARDS_LIVE {
            for c in &st.chunks {
                // SAFETY: the chunk's usable bytes, ours (the defect: live blocks are in there).
                unsafe { c.base.as_ptr().write_bytes(0, c.len) };
            }
            return;
        }
        let current = st.current;
        let (gone, kept): (Vec<Chunk>, Vec<Chunk>) = std::mem::take(&mut st.chunks)
            .into_iter()
            .partition(|c| c.live == 0 && Some(c.base.as_ptr() as usize) != current);
        st.chunks = kept;
        for l in &mut st.lists {
            l.retain(|&a| !gone.iter().any(|c| c.contains(a)));
        }
        for c in gone {
            self.unmap_chunk(c);
        }
    }

    /// Whether `ptr` lies in one of its chunks.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool {
        let a = ptr.as_ptr() as usize;
        let st = self.state.borrow();
        let inside = st.chunks.iter().any(|c| a >= c.base.as_ptr() as usize && a < c.base.as_ptr() as usize + c.len);
        if D == OWNS_LIES && inside {
            // Says no for the last byte of a block: any address just before a class boundary.
            return !(a + 1).is_multiple_of(16);
        }
        inside
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.state.borrow().stats
    }
}

impl<const D: u8> Drop for Faulty<D> {
    fn drop(&mut self) {
        if D == DROP_LEAKS {
            std::mem::forget(std::mem::take(&mut self.state.get_mut().chunks));
            return;
        }
        let mut st = std::mem::replace(self.state.get_mut(), State::empty());
        self.unmap_all(&mut st);
    }
}

// SAFETY: (for D == NONE) blocks are disjoint, aligned ranges of chunks mapped from the source that
// stay mapped until they are freed, reset or the allocator is dropped; reused blocks come from
// side-table lists of freed blocks of the same class. The other values of D break this on purpose,
// inside the chunks only (a block past a chunk's end reaches its guard page and faults).
unsafe impl<const D: u8> Allocator for &Faulty<D> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.alloc(layout)
    }
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.alloc_zeroed(layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.free(ptr, layout)
    }
    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.resize(ptr, old, new, false, false)
    }
    unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.resize(ptr, old, new, true, false)
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.resize(ptr, old, new, false, false)
    }
}

// SAFETY: as for `Allocator` above; `realloc` keeps the alignment. (Not `Sync`: never a
// `#[global_allocator]`; the suite drives it through `GlobalAlloc`'s methods directly.)
unsafe impl<const D: u8> GlobalAlloc for Faulty<D> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.alloc(layout).map_or(core::ptr::null_mut(), |b| b.cast().as_ptr())
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.alloc_zeroed(layout).map_or(core::ptr::null_mut(), |b| b.cast().as_ptr())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            self.free(p, layout)
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(p), Ok(new)) = (NonNull::new(ptr), Layout::from_size_align(new_size, layout.align())) else {
            return core::ptr::null_mut();
        };
        self.resize(p, layout, new, false, true).map_or(core::ptr::null_mut(), |b| b.cast().as_ptr())
    }
}

/// `Faulty<D>` as a conformance subject.
pub struct FaultySubject<const D: u8>;

impl<const D: u8> crate::Subject for FaultySubject<D> {
    type Alloc = Faulty<D>;
    fn make(budget: usize, meter: &'static crate::Meter) -> Faulty<D> {
        let budget = if D == IGNORES_LIMIT { usize::MAX } else { budget };
        Faulty::new(Limited::new(MmapSource::new(), budget).metered(meter))
    }
    fn owns(heap: &Faulty<D>, ptr: NonNull<u8>) -> Option<bool> {
        Some(heap.owns(ptr))
    }
}

impl<const D: u8> crate::ResetSubject for FaultySubject<D> {
    fn reset(heap: &mut Faulty<D>) {
        heap.reset()
    }
}

impl<const D: u8> crate::TrimSubject for FaultySubject<D> {
    fn trim(heap: &mut Faulty<D>) {
        heap.trim()
    }
}

impl<const D: u8> crate::StatsSubject for FaultySubject<D> {
    fn stats(heap: &Faulty<D>) -> Stats {
        heap.stats()
    }
}

impl<const D: u8> crate::IntrospectSubject for FaultySubject<D> {
    unsafe fn usable_size(heap: &Faulty<D>, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        let asked = heap.state.borrow().asked.get(&(ptr.as_ptr() as usize)).copied().unwrap_or(layout.size());
        let len = class_size(class_of(asked, layout.align()));
        Some(if D == USABLE_TOO_LARGE { len + 16 } else { len })
    }
}

/// A faulty subject without the ownership hook, so a block past a chunk's end is written and the
/// process faults: what the suite's child processes turn into a failure naming the property.
pub struct Unhooked<const D: u8>;

impl<const D: u8> crate::Subject for Unhooked<D> {
    type Alloc = Faulty<D>;
    fn make(budget: usize, meter: &'static crate::Meter) -> Faulty<D> {
        FaultySubject::<D>::make(budget, meter)
    }
}

/// The system allocator (glibc on Linux) with a byte budget and a live-byte count: the trusted
/// baseline. `Sync`. Its meter counts the bytes it holds for the caller, as if they were mapped.
pub struct Reference {
    budget: usize,
    live: AtomicUsize,
    meter: &'static crate::Meter,
}

impl Reference {
    /// Serves at most `budget` live bytes.
    pub fn new(budget: usize, meter: &'static crate::Meter) -> Self {
        Reference { budget, live: AtomicUsize::new(0), meter }
    }

    /// Bytes live now.
    pub fn live(&self) -> usize {
        // Relaxed: read after the threads that changed it were joined.
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: blocks come from the system allocator with the caller's layout; the budget only
// refuses requests.
unsafe impl Allocator for &Reference {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0));
        }
        // Relaxed: the budget is a limit on a sum, not a synchronisation point.
        let before = self.live.fetch_add(layout.size(), Ordering::Relaxed);
        if before.checked_add(layout.size()).is_none_or(|n| n > self.budget) {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            return Err(AllocError);
        }
        // SAFETY: a non-zero-size layout.
        let p = unsafe { System.alloc(layout) };
        match NonNull::new(p) {
            Some(p) => {
                self.meter.record_map(layout.size());
                Ok(NonNull::slice_from_raw_parts(p, layout.size()))
            }
            None => {
                self.live.fetch_sub(layout.size(), Ordering::Relaxed);
                Err(AllocError)
            }
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            self.meter.record_unmap(layout.size());
            // SAFETY: the caller's block, from System with this layout.
            unsafe { System.dealloc(ptr.as_ptr(), layout) }
        }
    }
}

/// [`Reference`] as a conformance subject.
pub struct ReferenceSubject;

impl crate::Subject for ReferenceSubject {
    type Alloc = Reference;
    fn make(budget: usize, meter: &'static crate::Meter) -> Reference {
        Reference::new(budget, meter)
    }
}

impl crate::SharedSubject for ReferenceSubject {
    fn live_bytes(heap: &Reference) -> usize {
        heap.live()
    }
}

/// Thread-safe and correct on any one thread, but every thread bumps through the same memory
/// from the same start: blocks of different threads overlap. Only models that check each
/// thread's blocks against the others' see it.
pub struct OverlapsAcrossThreads {
    base: NonNull<u8>,
    live: AtomicUsize,
}

/// Space for each thread's blocks.
const SHARED_ARENA: usize = 256 << 20;

thread_local! {
    /// This thread's bump offset into the shared arena (the defect: one per thread, all from 0).
    static OFFSET: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: the arena is shared on purpose (that is the defect under test); the suite checks every
// block for overlap before writing it, so no two threads write the same bytes.
unsafe impl Send for OverlapsAcrossThreads {}
// SAFETY: as above.
unsafe impl Sync for OverlapsAcrossThreads {}

impl Drop for OverlapsAcrossThreads {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the suite freed every block first.
        unsafe { MmapSource::new().unmap(self.base, SHARED_ARENA) }
    }
}

// SAFETY: on one thread, blocks are disjoint aligned ranges of a private mapping that lives as
// long as the allocator; across threads they are not (the defect).
unsafe impl Allocator for &OverlapsAcrossThreads {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0));
        }
        let start = OFFSET.with(|o| {
            let start = alloc_core::ptr::align_up(o.get(), layout.align())?;
            let end = start.checked_add(layout.size()).filter(|&e| e <= SHARED_ARENA)?;
            o.set(end);
            Some(start)
        });
        let start = start.ok_or(AllocError)?;
        self.live.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: start + size lies inside the arena.
        Ok(NonNull::slice_from_raw_parts(unsafe { self.base.add(start) }, layout.size()))
    }
    unsafe fn deallocate(&self, _ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        }
    }
}

/// [`OverlapsAcrossThreads`] as a conformance subject.
pub struct OverlapsAcrossThreadsSubject;

impl crate::Subject for OverlapsAcrossThreadsSubject {
    type Alloc = OverlapsAcrossThreads;
    fn make(_budget: usize, _meter: &'static crate::Meter) -> OverlapsAcrossThreads {
        let base = MmapSource::new().map(SHARED_ARENA, 4096).expect("map the shared arena");
        OFFSET.with(|o| o.set(0));
        OverlapsAcrossThreads { base, live: AtomicUsize::new(0) }
    }
}

impl crate::SharedSubject for OverlapsAcrossThreadsSubject {
    fn live_bytes(heap: &OverlapsAcrossThreads) -> usize {
        heap.live.load(Ordering::Relaxed)
    }
}
