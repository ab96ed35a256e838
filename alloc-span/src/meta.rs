//! Records for the heap's own metadata (span descriptors, arena records), carved from chunks of
//! pages mapped from the page source and recycled through a free list: the heap never asks
//! another allocator for memory, so it can sit under `malloc`.

use alloc_core::source::PageSource;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// Bytes of one metadata chunk.
const CHUNK: usize = 64 << 10;

/// The header at the start of every chunk, linking them for `release_all`.
#[repr(C)]
struct ChunkHeader {
    prev: Option<NonNull<ChunkHeader>>,
    len: usize,
}

/// A free record, seen as a list node.
struct FreeRecord {
    next: Option<NonNull<FreeRecord>>,
}

/// A pool of `T` records.
pub(crate) struct MetaPool<T> {
    /// Records given back, newest first.
    free: Option<NonNull<FreeRecord>>,
    /// The chunk being carved: next free address and end, its base for provenance.
    top: usize,
    end: usize,
    base: NonNull<u8>,
    /// Every chunk mapped, newest first.
    chunks: Option<NonNull<ChunkHeader>>,
    /// Bytes mapped for chunks.
    pub mapped: usize,
    _t: PhantomData<T>,
}

impl<T> MetaPool<T> {
    const SIZE: usize = {
        let s = core::mem::size_of::<T>();
        let a = core::mem::align_of::<T>();
        // Records are at least a pointer (for the free list) and keep T's alignment.
        let s = if s < core::mem::size_of::<FreeRecord>() { core::mem::size_of::<FreeRecord>() } else { s };
        s.next_multiple_of(a)
    };
    const ALIGN: usize = {
        let a = core::mem::align_of::<T>();
        if a < core::mem::align_of::<FreeRecord>() {
            core::mem::align_of::<FreeRecord>()
        } else {
            a
        }
    };

    /// An empty pool.
    pub const fn new() -> Self {
        MetaPool { free: None, top: 0, end: 0, base: NonNull::dangling(), chunks: None, mapped: 0, _t: PhantomData }
    }

    /// A record for `value`, or `None` when the source is out of memory.
    pub fn alloc<S: PageSource>(&mut self, source: &S, value: T) -> Option<NonNull<T>> {
        let r = match self.free {
            Some(r) => {
                // SAFETY: records on the free list are ours and hold a link.
                self.free = unsafe { r.as_ptr().read().next };
                r.cast::<T>()
            }
            None => self.carve(source)?,
        };
        // SAFETY: a record-sized, aligned slot that nothing else uses.
        unsafe { r.as_ptr().write(value) };
        Some(r)
    }

    fn carve<S: PageSource>(&mut self, source: &S) -> Option<NonNull<T>> {
        let start = self.top.next_multiple_of(Self::ALIGN);
        if self.top == 0 || start + Self::SIZE > self.end {
            let len = CHUNK.next_multiple_of(source.page_size());
            let base = source.map(len, source.page_size())?;
            // SAFETY: the start of a fresh chunk, aligned to a page.
            unsafe { base.cast::<ChunkHeader>().as_ptr().write(ChunkHeader { prev: self.chunks, len }) };
            self.chunks = Some(base.cast());
            self.mapped += len;
            self.base = base;
            self.top = base.as_ptr() as usize + core::mem::size_of::<ChunkHeader>();
            self.end = base.as_ptr() as usize + len;
            return self.carve(source);
        }
        self.top = start + Self::SIZE;
        // SAFETY: start..start+SIZE lies in the current chunk.
        Some(unsafe { alloc_core::ptr::with_addr(self.base, start) }.cast())
    }

    /// Gives a record back (its value is not dropped: records hold plain data).
    ///
    /// # Safety
    ///
    /// `r` came from this pool's `alloc` and is not used afterwards.
    pub unsafe fn free(&mut self, r: NonNull<T>) {
        let node = r.cast::<FreeRecord>();
        // SAFETY: the record is ours again and at least a pointer long.
        unsafe { node.as_ptr().write(FreeRecord { next: self.free }) };
        self.free = Some(node);
    }

    /// Unmaps every chunk.
    ///
    /// # Safety
    ///
    /// No record is used afterwards; `source` is the one the chunks came from.
    pub unsafe fn release_all<S: PageSource>(&mut self, source: &S) {
        while let Some(h) = self.chunks {
            // SAFETY: chunk headers are initialised; the header is read before its chunk goes.
            unsafe {
                let hdr = h.as_ptr().read();
                self.chunks = hdr.prev;
                source.unmap(h.cast(), hdr.len);
            }
        }
        *self = MetaPool::new();
    }
}
