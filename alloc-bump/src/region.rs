//! The bump region layer: allocation moves a finger up through the current chunk; when the chunk
//! is full, a new one twice as large (up to [`MAX_CHUNK`]) is mapped. A request larger than the
//! next chunk gets a dedicated chunk sized to it, so the geometric growth never runs away (a
//! bumpalo user once met a 13 GiB request after doubling) and the current chunk is not abandoned.
//!
//! [`BumpConfig`] changes the chunk sizes, sends requests above a threshold to dedicated chunks
//! (capping what a full chunk wastes), and can keep every chunk on reset for reuse instead of
//! giving all but the newest back: `alloc-arena` runs on this region with fixed-size chunks from
//! its quarantining chunk pool.

use crate::chunk::{Chunk, ChunkHeader, HEADER};
use alloc_core::layer::{Corruption, Layer, Owns, Reset, ResizeFn, UsableSize, Validate};
use alloc_core::source::PageSource;
use alloc_core::stats::{NoStats, StatsPolicy};
use alloc_core::{ptr, AllocError, Layout};
use core::ptr::NonNull;

/// The first regular chunk's size.
pub const MIN_CHUNK: usize = 4096;
/// Regular chunks double up to this size, then stay there.
pub const MAX_CHUNK: usize = 16 << 20;

/// How a region sizes, reuses and gives back its chunks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BumpConfig {
    /// The first regular chunk's size (rounded up to a page); each next one doubles.
    pub first_chunk: usize,
    /// Regular chunks grow up to this size, then stay there.
    pub max_chunk: usize,
    /// A request of more bytes than this that does not fit the current chunk gets a dedicated
    /// chunk rather than a new regular one, so starting a new chunk never abandons more than
    /// this much of the old one. `usize::MAX`: only requests larger than the next regular chunk
    /// get dedicated chunks.
    pub dedicated_above: usize,
    /// `reset` and `rewind` keep the regular chunks they free, for the next allocations to reuse,
    /// instead of giving back all but the newest.
    pub keep_chunks: bool,
}

impl BumpConfig {
    /// 4 KiB doubling to 16 MiB, dedicated chunks for what does not fit the next chunk, reset
    /// keeps the newest chunk only.
    pub const DEFAULT: BumpConfig =
        BumpConfig { first_chunk: MIN_CHUNK, max_chunk: MAX_CHUNK, dedicated_above: usize::MAX, keep_chunks: false };
}

impl Default for BumpConfig {
    fn default() -> Self {
        BumpConfig::DEFAULT
    }
}

/// A bump region over page source `S`, with statistics policy `C`: [`NoStats`] by default (the
/// region's own figures in [`BumpStats`] cost nothing on the fast path), or
/// [`alloc_core::Counting`] for exact live bytes, blocks and peaks. Takes `&mut self`; see
/// [`crate::Bump`] for the single-thread front and [`crate::GlobalBump`] for the locked one.
pub struct BumpRegion<S: PageSource, C: StatsPolicy = NoStats> {
    /// Next free address of the current chunk. Invariant: `finger <= limit`; both lie in the
    /// current chunk past its header, or both are 1 when there is no chunk yet (so a zero-size
    /// request on the fast path yields the non-null address 1 and never touches memory).
    finger: usize,
    /// One past the current chunk's last byte.
    limit: usize,
    /// The current chunk's base pointer (provenance for the addresses above); dangling when
    /// there is no chunk.
    base: NonNull<u8>,
    /// Newest regular chunk (the current one), linked to older ones.
    current: Option<NonNull<ChunkHeader>>,
    /// Newest dedicated chunk (one large block each), linked to older ones.
    large: Option<NonNull<ChunkHeader>>,
    /// Regular chunks freed by reset or rewind, kept for reuse (with `keep_chunks`).
    spare: Option<NonNull<ChunkHeader>>,
    /// Size of the next regular chunk: doubles from the configured first size up to the maximum.
    next_size: usize,
    config: BumpConfig,
    /// Bytes mapped in all chunks.
    capacity: usize,
    /// Bytes unmapped (given back to the page source) over the region's life.
    returned: usize,
    /// Number the next chunk will carry.
    next_seq: usize,
    /// Every byte of the current chunk at or above `max(clean, finger)` is zero (untouched since
    /// the source mapped it zeroed), so `allocate_zeroed` needs no `memset` there. Raised to the
    /// finger whenever the finger moves down; `usize::MAX` when nothing is known to be zero.
    clean: usize,
    stats: C,
    source: S,
}

// SAFETY: the region owns its chunks exclusively (nothing else holds their addresses except the
// blocks' users, who are bound by the borrow of the front); moving it moves that ownership.
unsafe impl<S: PageSource + Send, C: StatsPolicy + Send> Send for BumpRegion<S, C> {}

/// A point to rewind a region to, freeing everything allocated after it.
#[derive(Copy, Clone, Debug)]
pub struct Checkpoint {
    current: Option<NonNull<ChunkHeader>>,
    /// Chunks numbered from here on were made after the checkpoint.
    seq: usize,
    finger: usize,
    live: (usize, usize),
}

/// What a region holds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BumpStats {
    /// Bytes handed out since the last reset, alignment padding included (freeing the newest
    /// block gives its bytes back).
    pub allocated: usize,
    /// Bytes mapped in chunks, headers included.
    pub capacity: usize,
    /// Chunks mapped.
    pub chunks: usize,
    /// Bytes given back to the page source over the region's life.
    pub returned: usize,
}

impl BumpStats {
    /// Mapped bytes not handed out: headers, padding, and the unused tails of chunks.
    pub fn overhead(&self) -> usize {
        self.capacity - self.allocated
    }
}

impl<S: PageSource, C: StatsPolicy> BumpRegion<S, C> {
    /// An empty region; maps nothing until the first allocation.
    pub const fn new(source: S) -> Self {
        BumpRegion::with_config(source, BumpConfig::DEFAULT)
    }

    /// An empty region with the chunk policy `config`.
    pub const fn with_config(source: S, config: BumpConfig) -> Self {
        BumpRegion {
            finger: 1,
            limit: 1,
            base: NonNull::dangling(),
            current: None,
            large: None,
            spare: None,
            next_size: config.first_chunk,
            config,
            capacity: 0,
            returned: 0,
            next_seq: 0,
            clean: usize::MAX,
            stats: C::INIT,
            source,
        }
    }

    /// The statistics policy (for [`Counting`](alloc_core::Counting), `.get()` gives the counters).
    pub fn counters(&self) -> &C {
        &self.stats
    }

    /// The base of the current (newest regular) chunk, if any: the run an arena's pool may keep
    /// warm when the region is dropped.
    pub fn current_chunk(&self) -> Option<NonNull<u8>> {
        self.current.map(NonNull::cast)
    }

    /// The page source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Adds `delta` (wrapping) to the current chunk's recorded size, so a test can see
    /// `validate` catch it.
    #[cfg(test)]
    pub(crate) fn corrupt_current_chunk_for_test(&mut self, delta: usize) {
        let h = self.current.expect("a chunk");
        // SAFETY: the region's own chunk header; the test puts the size back.
        unsafe { (*h.as_ptr()).size = (*h.as_ptr()).size.wrapping_add(delta) };
    }

    /// Bytes handed out, chunk capacity and overhead.
    pub fn bump_stats(&self) -> BumpStats {
        let mut s = BumpStats { capacity: self.capacity, returned: self.returned, ..BumpStats::default() };
        let mut c = self.current;
        let mut first = true;
        while let Some(h) = c {
            // SAFETY: every chunk in the list is mapped and its header initialised.
            let hdr = unsafe { &*h.as_ptr() };
            s.allocated += if first { self.finger - Chunk(h).data_start() } else { hdr.used };
            s.chunks += 1;
            first = false;
            c = hdr.prev;
        }
        let mut c = self.large;
        while let Some(h) = c {
            // SAFETY: as above.
            let hdr = unsafe { &*h.as_ptr() };
            s.allocated += hdr.used;
            s.chunks += 1;
            c = hdr.prev;
        }
        let mut c = self.spare;
        while let Some(h) = c {
            s.chunks += 1;
            // SAFETY: as above.
            c = unsafe { (*h.as_ptr()).prev };
        }
        s
    }

    /// Allocates from the current chunk; the fast path is a mask, an add, a compare and a store.
    #[inline(always)]
    fn bump(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // Padding that aligns the finger: < align, so `pad + size` cannot overflow (both are at
        // most isize::MAX), and `limit - finger` cannot underflow (finger <= limit).
        let pad = self.finger.wrapping_neg() & (layout.align() - 1);
        let need = pad + layout.size();
        if need <= self.limit - self.finger {
            let start = self.finger + pad;
            self.finger += need;
            // SAFETY: start lies in the current chunk (finger..limit), within `base`'s mapping;
            // with no chunk, finger == limit == 1 and only a zero-size request gets here, at the
            // address 1, which is never dereferenced.
            return Some(unsafe { ptr::with_addr(self.base, start) });
        }
        None
    }

    /// A block from a fresh, kept or dedicated chunk; with `zero`, one that reads as zero.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&mut self, layout: Layout, zero: bool) -> Result<NonNull<u8>, AllocError> {
        let page = self.source.page_size();
        // A fresh chunk needs the header, padding up to the alignment, and the block.
        let need = HEADER
            .checked_add(layout.align() - 1)
            .and_then(|n| n.checked_add(layout.size()))
            .and_then(|n| ptr::align_up(n, page))
            .ok_or(AllocError)?;
        // Chunk sizes are powers of two from 4 KiB; on a machine with larger pages (16 KiB on
        // some arm64 kernels) the first chunks are a page.
        let next = self.next_size.max(page);
        if need > next || layout.size() > self.config.dedicated_above {
            return self.allocate_dedicated(layout, need, zero);
        }
        if let Some(chunk) = self.take_spare(need) {
            self.enter(chunk);
            // A reused chunk holds whatever it held.
            self.clean = usize::MAX;
            let p = self.bump(layout).ok_or(AllocError)?;
            if zero {
                // SAFETY: the fresh block's bytes.
                unsafe { p.as_ptr().write_bytes(0, layout.size()) };
            }
            return Ok(p);
        }
        // A regular chunk; when the full size is not available, try one just big enough. Asked
        // for zeroed memory, the source zeroes only what is not zero already.
        let chunk = match self.map_chunk(next, zero) {
            Some(c) => c,
            None => self.map_chunk(need, zero).ok_or(AllocError)?,
        };
        self.next_size = (next * 2).min(self.config.max_chunk.max(page));
        self.enter(chunk);
        self.clean = if zero || self.source.maps_zeroed() { self.finger } else { usize::MAX };
        // A fresh chunk was sized for the header, the padding and the block, so this succeeds.
        self.bump(layout).ok_or(AllocError)
    }

    /// A kept chunk of at least `need` bytes, renumbered as the newest.
    fn take_spare(&mut self, need: usize) -> Option<Chunk> {
        let mut link: *mut Option<NonNull<ChunkHeader>> = &mut self.spare;
        // SAFETY: `link` points at the spare list's head or at a header's `prev` field of a
        // mapped spare chunk; unlinking rewrites it.
        unsafe {
            while let Some(h) = *link {
                let hdr = h.as_ptr();
                if (*hdr).size >= need {
                    *link = (*hdr).prev;
                    (*hdr).prev = None;
                    (*hdr).used = 0;
                    (*hdr).seq = self.next_seq;
                    self.next_seq += 1;
                    return Some(Chunk(h));
                }
                link = core::ptr::addr_of_mut!((*hdr).prev);
            }
        }
        None
    }

    /// A chunk of its own for one large block, linked into the dedicated list so the current
    /// chunk stays current.
    fn allocate_dedicated(&mut self, layout: Layout, size: usize, zero: bool) -> Result<NonNull<u8>, AllocError> {
        let chunk = self.map_chunk(size, zero).ok_or(AllocError)?;
        let start = ptr::align_up(chunk.data_start(), layout.align()).ok_or(AllocError)?;
        // SAFETY: the chunk is freshly mapped and its header is ours to write.
        unsafe {
            let h = &mut *chunk.0.as_ptr();
            h.prev = self.large;
            h.used = start - chunk.data_start() + layout.size();
        }
        self.large = Some(chunk.0);
        // SAFETY: `start + size <= chunk end`, since the chunk was sized for header, padding and block.
        Ok(unsafe { ptr::with_addr(chunk.base(), start) })
    }

    fn map_chunk(&mut self, size: usize, zero: bool) -> Option<Chunk> {
        let page = self.source.page_size();
        let base = if zero { self.source.map_zeroed(size, page) } else { self.source.map(size, page) }?;
        let h = base.cast::<ChunkHeader>();
        // SAFETY: a fresh mapping of `size >= HEADER` bytes, aligned to a page.
        unsafe { h.as_ptr().write(ChunkHeader { prev: None, size, used: 0, seq: self.next_seq }) };
        self.next_seq += 1;
        self.capacity += size;
        self.stats.on_map(size);
        Some(Chunk(h))
    }

    /// Makes `chunk` the current chunk, recording how much of the old one was used.
    fn enter(&mut self, chunk: Chunk) {
        if let Some(old) = self.current {
            // SAFETY: the current chunk is mapped; its header is ours.
            unsafe { (*old.as_ptr()).used = self.finger - Chunk(old).data_start() };
        }
        // SAFETY: the new chunk is mapped; its header is ours.
        unsafe { (*chunk.0.as_ptr()).prev = self.current };
        self.current = Some(chunk.0);
        self.base = chunk.base();
        self.finger = chunk.data_start();
        // SAFETY: the chunk is mapped.
        self.limit = unsafe { chunk.end() };
    }

    /// Frees regular chunks from the head of a list while they are numbered `from_seq` or later:
    /// onto the spare list with `keep_chunks`, otherwise back to the source. Returns the new head.
    fn release_from(
        &mut self,
        mut head: Option<NonNull<ChunkHeader>>,
        from_seq: usize,
    ) -> Option<NonNull<ChunkHeader>> {
        if !self.config.keep_chunks {
            return self.pop_from(head, from_seq);
        }
        while let Some(h) = head {
            // SAFETY: chunks in a list are mapped and their headers ours.
            unsafe {
                if (*h.as_ptr()).seq < from_seq {
                    break;
                }
                head = (*h.as_ptr()).prev;
                (*h.as_ptr()).prev = self.spare;
            }
            self.spare = Some(h);
        }
        head
    }

    /// Unmaps chunks from the head of a list while they are numbered `from_seq` or later, and
    /// returns the new head.
    fn pop_from(&mut self, mut head: Option<NonNull<ChunkHeader>>, from_seq: usize) -> Option<NonNull<ChunkHeader>> {
        while let Some(h) = head {
            // SAFETY: chunks in a list are mapped.
            if unsafe { (*h.as_ptr()).seq } < from_seq {
                break;
            }
            // SAFETY: chunks in the list are mapped; we read the header before unmapping it,
            // and the caller has made sure no block in it is reachable any more.
            unsafe {
                let hdr = h.as_ptr().read();
                self.capacity -= hdr.size;
                self.returned += hdr.size;
                self.stats.on_unmap(hdr.size);
                self.source.unmap(h.cast(), hdr.size);
                head = hdr.prev;
            }
        }
        head
    }

    /// Where the region stands now, to [`BumpRegion::rewind`] to later.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { current: self.current, seq: self.next_seq, finger: self.finger, live: self.stats.live() }
    }

    /// Frees everything allocated since `cp`, unmapping chunks made after it.
    ///
    /// # Safety
    ///
    /// - `cp` came from this region, and no reset or rewind to an earlier point happened since;
    /// - no block allocated after `cp` is used afterwards.
    pub unsafe fn rewind(&mut self, cp: Checkpoint) {
        self.clean = self.clean.max(self.finger);
        let large = self.large;
        self.large = self.pop_from(large, cp.seq);
        match cp.current {
            None => self.reset_regular(),
            Some(c) => {
                let current = self.current;
                self.current = self.release_from(current, cp.seq);
                debug_assert_eq!(self.current, Some(c), "checkpoint from another region or a reset one");
                if current != self.current {
                    // Back in an older chunk: what it held is unknown, so nothing is clean.
                    self.clean = usize::MAX;
                }
                let chunk = Chunk(c);
                self.base = chunk.base();
                self.finger = cp.finger;
                // SAFETY: the checkpoint's chunk is still mapped (it was not popped).
                self.limit = unsafe { chunk.end() };
            }
        }
        self.stats.restore_live(cp.live.0, cp.live.1);
    }

    /// Keeps the newest regular chunk, frees the older ones (kept as spares or unmapped), and
    /// empties it.
    fn reset_regular(&mut self) {
        let Some(keep) = self.current else { return };
        // SAFETY: the kept chunk is mapped; the chunks behind it are freed by release_from.
        let older = unsafe { (*keep.as_ptr()).prev };
        self.release_from(older, 0);
        // SAFETY: as above.
        unsafe { (*keep.as_ptr()).prev = None };
        self.clean = self.clean.max(self.finger);
        self.finger = Chunk(keep).data_start();
    }

    /// Unmaps the newest dedicated chunk when `addr` is its block: a large buffer allocated and
    /// freed in a loop does not pile up chunks.
    #[cold]
    fn free_dedicated(&mut self, addr: usize) {
        let Some(h) = self.large else { return };
        let c = Chunk(h);
        // SAFETY: the head of the dedicated list is mapped.
        if addr >= c.data_start() && addr < unsafe { c.end() } {
            // SAFETY: the chunk holds exactly one block, which the caller just freed.
            let seq = unsafe { (*h.as_ptr()).seq };
            self.large = self.pop_from(Some(h), seq);
        }
    }

    fn contains(mut list: Option<NonNull<ChunkHeader>>, addr: usize) -> bool {
        while let Some(h) = list {
            let c = Chunk(h);
            // SAFETY: chunks in a list are mapped.
            if addr >= c.data_start() && addr < unsafe { c.end() } {
                return true;
            }
            // SAFETY: as above.
            list = unsafe { (*h.as_ptr()).prev };
        }
        false
    }
}

// SAFETY: blocks are carved from mapped chunks at increasing addresses (the finger only moves
// back over the newest block when it is freed or shrunk), aligned by the padding computation,
// and stay mapped until reset, rewind or drop. Memory at or above `max(clean, finger)` in the
// current chunk, and a fresh dedicated chunk, are zero when the source maps zeroed pages. No
// path panics.
unsafe impl<S: PageSource, C: StatsPolicy> Layer for BumpRegion<S, C> {
    /// A zero-size request takes the (aligned) finger and moves it by its padding only; freeing it
    /// matches the finger at most and moves nothing. With no chunk yet, an align-1 request gets
    /// the address 1 and a larger alignment maps the first chunk.
    const ZERO_SIZE_OK: bool = true;
    // The in-place promise stated at `Resize` is kept by `resize_in_place` (its doc says how).
    const RESIZE: Option<ResizeFn<Self>> = Some(Self::resize_in_place);

    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = match self.bump(layout) {
            Some(p) => p,
            None => self.allocate_slow(layout, false)?,
        };
        self.stats.on_alloc(layout.size());
        Ok(ptr::block(p, layout.size()))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let zero_from = self.clean.max(self.finger);
        let p = match self.bump(layout) {
            Some(p) => {
                let start = p.as_ptr() as usize;
                if start < zero_from {
                    let dirty = zero_from.min(start + layout.size()) - start;
                    // SAFETY: the first `dirty` bytes of the block, valid for writes.
                    unsafe { p.as_ptr().write_bytes(0, dirty) };
                }
                p
            }
            // A fresh chunk from `map_zeroed`, or a kept one zeroed by the slow path.
            None => self.allocate_slow(layout, true)?,
        };
        self.stats.on_alloc(layout.size());
        Ok(ptr::block(p, layout.size()))
    }

    #[inline(always)]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.stats.on_free(layout.size());
        // Only the newest block of the current chunk ends at the finger; give its bytes back.
        let start = ptr.as_ptr() as usize;
        if start + layout.size() == self.finger {
            self.clean = self.clean.max(self.finger);
            self.finger = start;
        } else if self.large.is_some() {
            self.free_dedicated(start);
        }
    }
}

impl<S: PageSource, C: StatsPolicy> BumpRegion<S, C> {
    /// Resizes the block in place (this layer's [`Layer::RESIZE`]): the newest block grows or
    /// shrinks by moving the finger, within the chunk's limit; any other block can only shrink (its
    /// tail is simply not handed out again). Contents are untouched; blocks carry no class, so any
    /// alignment the address already has is fine.
    ///
    /// # Safety
    ///
    /// As for [`alloc_core::layer::Resize::resize_in_place`].
    #[inline]
    pub unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<usize, AllocError> {
        let start = ptr.as_ptr() as usize;
        let new_size = new.size();
        if start + old.size() == self.finger && new_size <= self.limit - start {
            self.clean = self.clean.max(self.finger);
            self.finger = start + new_size;
        } else if new_size > old.size() {
            return Err(AllocError);
        }
        self.stats.on_resize(old.size(), new_size);
        Ok(new_size)
    }
}

// SAFETY: the size asked for, which the block holds.
unsafe impl<S: PageSource, C: StatsPolicy> UsableSize for BumpRegion<S, C> {
    unsafe fn usable_size(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        layout.size()
    }
}

// SAFETY: true exactly for addresses inside the region's chunks (regular and dedicated), read
// from chunk headers the region keeps mapped; every block lies in one of them.
unsafe impl<S: PageSource, C: StatsPolicy> Owns for BumpRegion<S, C> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        let a = ptr.as_ptr() as usize;
        Self::contains(self.current, a) || Self::contains(self.large, a)
    }
}

impl<S: PageSource, C: StatsPolicy> Reset for BumpRegion<S, C> {
    fn reset(&mut self) {
        let large = self.large;
        self.large = self.pop_from(large, 0);
        self.reset_regular();
        self.stats.restore_live(0, 0);
    }
}

impl<S: PageSource, C: StatsPolicy> Validate for BumpRegion<S, C> {
    /// Checks the finger lies in the current chunk, and that both chunk lists are well formed:
    /// headers readable, sizes whole pages, handed-out bytes within each chunk, creation numbers
    /// decreasing, and capacity the sum of the chunk sizes.
    fn validate(&self) -> Result<(), Corruption> {
        let bad = |what, addr| Err(Corruption { what, addr });
        let page = self.source.page_size();
        let mut capacity = 0usize;
        match self.current {
            None => {
                if self.finger != 1 || self.limit != 1 {
                    return bad("finger or limit set with no chunk", self.finger);
                }
            }
            Some(h) => {
                let c = Chunk(h);
                // SAFETY: the current chunk is mapped.
                let end = unsafe { c.end() };
                if self.base != c.base() {
                    return bad("base pointer is not the current chunk's", self.base.as_ptr() as usize);
                }
                if self.limit != end {
                    return bad("limit is not the current chunk's end", self.limit);
                }
                if self.finger < c.data_start() || self.finger > self.limit {
                    return bad("finger outside the current chunk", self.finger);
                }
            }
        }
        for (list, what) in [(self.current, "regular"), (self.large, "dedicated"), (self.spare, "spare")] {
            let mut seq = usize::MAX;
            let mut cur = list;
            let mut n = 0usize;
            while let Some(h) = cur {
                n += 1;
                if n > 1 << 24 {
                    return bad("chunk list loops", h.as_ptr() as usize);
                }
                // SAFETY: chunks in a list are mapped and their headers initialised.
                let hdr = unsafe { &*h.as_ptr() };
                let addr = h.as_ptr() as usize;
                if hdr.size == 0 || !hdr.size.is_multiple_of(page) || !addr.is_multiple_of(page) {
                    return bad(
                        match what {
                            "regular" => "regular chunk is not whole pages",
                            "spare" => "spare chunk is not whole pages",
                            _ => "dedicated chunk is not whole pages",
                        },
                        addr,
                    );
                }
                let used = match what {
                    "spare" => 0,
                    _ if Some(h) == self.current => self.finger - Chunk(h).data_start(),
                    _ => hdr.used,
                };
                if used > hdr.size - HEADER {
                    return bad("chunk hands out more bytes than it holds", addr);
                }
                if what != "spare" && (hdr.seq >= seq || hdr.seq >= self.next_seq) {
                    return bad("chunk creation numbers out of order", addr);
                }
                seq = hdr.seq;
                capacity += hdr.size;
                cur = hdr.prev;
            }
        }
        if capacity != self.capacity {
            return bad("capacity is not the sum of the chunk sizes", capacity);
        }
        Ok(())
    }
}

impl<S: PageSource, C: StatsPolicy> Drop for BumpRegion<S, C> {
    fn drop(&mut self) {
        let (large, current, spare) = (self.large.take(), self.current.take(), self.spare.take());
        self.pop_from(large, 0);
        self.pop_from(current, 0);
        self.pop_from(spare, 0);
    }
}

impl<S: PageSource, C: StatsPolicy> core::fmt::Debug for BumpRegion<S, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BumpRegion")
            .field("finger", &format_args!("{:#x}", self.finger))
            .field("limit", &format_args!("{:#x}", self.limit))
            .field("stats", &self.bump_stats())
            .finish()
    }
}

/// Small tests over a fixed buffer, sized so Miri can check the pointer arithmetic and provenance
/// (`cargo +nightly miri test -p alloc-bump --lib`); the conformance suite covers the rest.
impl<S: PageSource> alloc_core::Statistics for BumpRegion<S, alloc_core::Counting> {
    fn stats(&self) -> alloc_core::Stats {
        self.counters().get()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc_core::stats::Counting;
    use alloc_core::FixedSource;
    use std::vec;

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bump_grow_free_reset_and_rewind_over_a_buffer() {
        let mut buf = vec![0u8; 64 << 10];
        let mut r: BumpRegion<FixedSource<'_>, Counting> = BumpRegion::new(FixedSource::new(&mut buf));
        assert_eq!(r.validate(), Ok(()));
        let a = r.allocate(l(24, 8)).unwrap().cast::<u8>();
        let b = r.allocate(l(100, 64)).unwrap().cast::<u8>();
        assert_eq!(b.as_ptr() as usize % 64, 0);
        // SAFETY: both blocks are live and hold what is written.
        unsafe {
            a.as_ptr().write_bytes(1, 24);
            b.as_ptr().write_bytes(2, 100);
            // The newest block grows in place and keeps its bytes.
            assert_eq!(r.resize_in_place(b, l(100, 64), l(300, 64)), Ok(300));
            assert_eq!(*b.as_ptr().add(99), 2);
            b.as_ptr().add(299).write(3);
        }
        let cp = r.checkpoint();
        let big = r.allocate(l(20_000, 16)).unwrap().cast::<u8>();
        // SAFETY: a live block of 20,000 bytes.
        unsafe { big.as_ptr().add(19_999).write(4) };
        // SAFETY: nothing allocated after cp is used again.
        unsafe { r.rewind(cp) };
        // SAFETY: `a` was allocated before the checkpoint and is still live.
        assert_eq!(unsafe { *a.as_ptr() }, 1);
        // SAFETY: b is the newest block; freeing it gives its bytes back.
        unsafe { r.deallocate(b, l(300, 64)) };
        r.reset();
        assert_eq!(r.counters().get().bytes_live, 0);
        let c = r.allocate(l(16, 16)).unwrap().cast::<u8>();
        // SAFETY: a fresh block of 16 bytes.
        unsafe { c.as_ptr().write_bytes(5, 16) };
        assert!(r.owns(c));
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn kept_chunks_are_reused_after_reset_and_rewind() {
        let mut buf = vec![0u8; 256 << 10];
        let config = BumpConfig { first_chunk: 8192, max_chunk: 8192, dedicated_above: 2048, keep_chunks: true };
        let mut r: BumpRegion<FixedSource<'_>, Counting> = BumpRegion::with_config(FixedSource::new(&mut buf), config);
        for _ in 0..20 {
            r.allocate(l(1000, 8)).unwrap();
        }
        // A request above `dedicated_above` that does not fit the current chunk (4,160 bytes
        // left) gets its own chunk rather than a fresh regular one.
        let big = r.allocate(l(5000, 8)).unwrap().cast::<u8>();
        assert_eq!(r.bump_stats().capacity, 3 * 8192 + 5120, "three regular chunks and a dedicated one");
        let fits = r.allocate(l(4000, 8)).unwrap();
        assert_eq!(r.bump_stats().capacity, 3 * 8192 + 5120, "what fits the current chunk goes there");
        // SAFETY: the dedicated block is live; freeing it gives its chunk back.
        unsafe { r.deallocate(big, l(5000, 8)) };
        // SAFETY: the newest block of the current chunk.
        unsafe { r.deallocate(fits.cast(), l(4000, 8)) };
        r.reset();
        assert_eq!(r.bump_stats().chunks, 3, "reset kept every regular chunk");
        let cp = r.checkpoint();
        for _ in 0..20 {
            let b = r.allocate(l(1000, 8)).unwrap().cast::<u8>();
            // SAFETY: a fresh block of 1000 bytes (kept chunks hold old bytes: nothing assumed).
            unsafe { b.as_ptr().write_bytes(7, 1000) };
        }
        assert_eq!(r.bump_stats().capacity, 3 * 8192, "no chunk mapped: the kept ones served");
        assert_eq!(r.validate(), Ok(()));
        // SAFETY: nothing allocated after cp is used again.
        unsafe { r.rewind(cp) };
        assert_eq!(r.bump_stats().chunks, 3);
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.counters().get().bytes_live, 0);
    }

    /// A region with a chunk on each list: two regular (the current one and an older one), a
    /// dedicated one, and (after a rewind) a spare one.
    fn region_with_every_list(buf: &mut [u8]) -> BumpRegion<FixedSource<'_>, Counting> {
        let config = BumpConfig { first_chunk: 8192, max_chunk: 8192, dedicated_above: 2048, keep_chunks: true };
        let mut r = BumpRegion::with_config(FixedSource::new(buf), config);
        fn take(r: &mut BumpRegion<FixedSource<'_>, Counting>, n: usize) {
            for _ in 0..n {
                r.allocate(l(1000, 8)).unwrap();
            }
        }
        take(&mut r, 6);
        let cp = r.checkpoint();
        take(&mut r, 20);
        // SAFETY: nothing allocated after the checkpoint is used again.
        unsafe { r.rewind(cp) };
        take(&mut r, 8);
        // Above `dedicated_above` and not fitting the current chunk: a chunk of its own.
        r.allocate(l(3000, 8)).unwrap();
        assert!(r.current.is_some() && r.large.is_some() && r.spare.is_some());
        assert_eq!(r.validate(), Ok(()));
        r
    }

    #[test]
    fn bump_stats_count_every_list() {
        let mut buf = vec![0u8; 256 << 10];
        let r = region_with_every_list(&mut buf);
        let s = r.bump_stats();
        // 14 blocks of 1000 in two regular chunks, 3000 in the dedicated one; the spare chunk
        // holds nothing.
        assert_eq!(s.allocated, 14 * 1000 + 3000);
        assert_eq!(s.capacity, r.capacity);
        assert_eq!(s.overhead(), s.capacity - s.allocated);
        assert_eq!(s.chunks, 5, "two regular, one dedicated, two spare: {s:?}");
        // Freeing the dedicated block gives its chunk back to the source.
        let big = r.large.map(|h| Chunk(h).data_start()).unwrap();
        let mut r = r;
        // SAFETY: the dedicated chunk's one live block, with its layout.
        unsafe { r.deallocate(NonNull::new(r.base.as_ptr().with_addr(big)).unwrap(), l(3000, 8)) };
        let s = r.bump_stats();
        assert!(s.returned > 0 && s.returned == r.returned, "{s:?}");
    }

    /// The rest of what `validate` checks, each broken alone and put back: a finger with no
    /// chunk, a finger outside the current chunk, a spare chunk that is not whole pages, chunk
    /// creation numbers out of order; and what it must not read (the current chunk's stale
    /// `used`, which the finger replaces).
    #[test]
    fn validate_names_the_finger_the_spares_and_the_order() {
        let mut buf = vec![0u8; 64 << 10];
        let mut r: BumpRegion<FixedSource<'_>, Counting> = BumpRegion::new(FixedSource::new(&mut buf));
        r.limit = 2;
        let got = r.validate().err().map(|c| c.what);
        r.limit = 1;
        assert_eq!(got, Some("finger or limit set with no chunk"));

        let mut buf = vec![0u8; 256 << 10];
        let mut r = region_with_every_list(&mut buf);
        let named = |r: &BumpRegion<FixedSource<'_>, Counting>| r.validate().err().map_or("nothing", |c| c.what);
        let finger = r.finger;
        r.finger = Chunk(r.current.unwrap()).data_start() - 1;
        let got = named(&r);
        r.finger = finger;
        assert_eq!(got, "finger outside the current chunk");
        // Chunk headers of the region this test alone uses, mapped while it lives, read or
        // written one field at a time through the raw pointer.
        let (current, spare) = (r.current.unwrap().as_ptr(), r.spare.unwrap().as_ptr());
        // SAFETY: as just said.
        let older = unsafe { (*current).prev.unwrap().as_ptr() };
        // SAFETY: as above (each field put back before the assertion).
        let got = unsafe {
            (*spare).size += 1;
            let got = named(&r);
            (*spare).size -= 1;
            got
        };
        assert_eq!(got, "spare chunk is not whole pages");
        // SAFETY: as above.
        let got = unsafe {
            let seq = (*older).seq;
            (*older).seq = (*current).seq;
            let got = named(&r);
            (*older).seq = seq;
            got
        };
        assert_eq!(got, "chunk creation numbers out of order");
        // SAFETY: as above.
        let got = unsafe {
            let used = (*current).used;
            (*current).used = usize::MAX;
            let got = named(&r);
            (*current).used = used;
            got
        };
        assert_eq!(got, "nothing");
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.current_chunk(), Some(r.base), "the current chunk starts at the base pointer");
        let text = std::format!("{r:?}");
        assert!(text.starts_with("BumpRegion { finger: 0x") && text.contains("stats: BumpStats {"), "{text}");
    }

    /// Chunk sizes at the boundaries: a request whose header, alignment padding and bytes make
    /// exactly the chunk size gets a regular chunk of that size, not a dedicated one, and so
    /// does one of exactly `dedicated_above` bytes; one that makes exactly 8 KiB gets a dedicated
    /// chunk of 8 KiB, not one more page. The end of the newest chunk is not the region's.
    #[test]
    fn chunk_sizes_are_exact_at_page_boundaries() {
        let exact = 8192 - HEADER - 7;
        let mut buf = vec![0u8; 256 << 10];
        let config = BumpConfig { first_chunk: 8192, max_chunk: 8192, dedicated_above: 1 << 20, keep_chunks: false };
        let mut r: BumpRegion<FixedSource<'_>, Counting> = BumpRegion::with_config(FixedSource::new(&mut buf), config);
        r.allocate(l(exact, 8)).unwrap();
        assert!(r.large.is_none(), "a regular chunk fits it exactly");
        assert_eq!(r.bump_stats().capacity, 8192);
        let end = r.base.as_ptr().with_addr(r.limit);
        assert!(!r.owns(NonNull::new(end).unwrap()), "one past the newest chunk");
        let config = BumpConfig { first_chunk: 8192, max_chunk: 8192, dedicated_above: 2048, keep_chunks: false };
        let mut buf = vec![0u8; 256 << 10];
        let mut r: BumpRegion<FixedSource<'_>, Counting> = BumpRegion::with_config(FixedSource::new(&mut buf), config);
        r.allocate(l(2048, 8)).unwrap();
        assert!(r.large.is_none(), "a block of exactly dedicated_above bytes is a regular one");
        let before = r.bump_stats().capacity;
        r.allocate(l(8192 - HEADER - 7, 8)).unwrap();
        assert!(r.large.is_some(), "above dedicated_above");
        assert_eq!(r.bump_stats().capacity - before, 8192, "not a page more");
    }

    /// A chunk list that loops is named, not walked for ever: after 2^24 chunks (a spare chunk
    /// made its own predecessor; spare chunks carry no order to trip first). Not under Miri (16
    /// million steps).
    #[test]
    #[cfg_attr(miri, ignore)]
    fn validate_names_a_chunk_list_that_loops() {
        let mut buf = vec![0u8; 256 << 10];
        let r = region_with_every_list(&mut buf);
        let spare = r.spare.unwrap();
        // SAFETY: the spare chunk's header, mapped while the region lives, one field at a time;
        // put back before the assertion.
        let got = unsafe {
            let prev = (*spare.as_ptr()).prev;
            (*spare.as_ptr()).prev = Some(spare);
            let got = r.validate().err().map(|c| c.what);
            (*spare.as_ptr()).prev = prev;
            got
        };
        assert_eq!(got, Some("chunk list loops"));
    }

    #[test]
    fn validate_names_each_chunk_fact_that_is_off() {
        let mut buf = vec![0u8; 256 << 10];
        let r = region_with_every_list(&mut buf);
        let named = |r: &BumpRegion<FixedSource<'_>, Counting>| r.validate().err().map_or("nothing", |c| c.what);
        // Every access below: chunk headers of the region this test alone uses, mapped while it
        // lives, read or written one field at a time through the raw pointer (no reference to a
        // header outlives its statement).
        // SAFETY: as just said.
        let older = unsafe { (*r.current.unwrap().as_ptr()).prev.unwrap() };
        let (older, dedicated, spare) = (older.as_ptr(), r.large.unwrap().as_ptr(), r.spare.unwrap().as_ptr());
        // A regular chunk that is not whole pages.
        // (Each field is put back before the assertion, so a failure does not leave the region
        // to be dropped with a broken header.)
        // SAFETY: as above.
        unsafe { (*older).size += 1 };
        let got = named(&r);
        // SAFETY: as above.
        unsafe { (*older).size -= 1 };
        assert_eq!(got, "regular chunk is not whole pages");
        // A dedicated chunk that hands out more than it holds (its header not counted).
        // SAFETY: as above.
        let used = unsafe { (*dedicated).used };
        // SAFETY: as above.
        unsafe { (*dedicated).used = (*dedicated).size - HEADER + 1 };
        let got = named(&r);
        // SAFETY: as above.
        unsafe { (*dedicated).used = used };
        assert_eq!(got, "chunk hands out more bytes than it holds");
        // A spare chunk's `used` means nothing: never checked.
        // SAFETY: as above.
        let stale = unsafe { (*spare).used };
        // SAFETY: as above.
        unsafe { (*spare).used = usize::MAX };
        let got = named(&r);
        // SAFETY: as above.
        unsafe { (*spare).used = stale };
        assert_eq!(got, "nothing");
        assert_eq!(r.validate(), Ok(()));
    }
}
