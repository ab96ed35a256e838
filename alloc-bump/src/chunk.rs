//! Chunks: the page runs a bump region allocates from, each opening with a small header that
//! links it to the chunk before it, so the whole region can be freed by walking the list.

use core::ptr::NonNull;

/// The header at the start of every chunk.
#[repr(C)]
pub(crate) struct ChunkHeader {
    /// The chunk allocated before this one in the same list, if any.
    pub prev: Option<NonNull<ChunkHeader>>,
    /// Bytes mapped for this chunk, header included (what `unmap` needs).
    pub size: usize,
    /// Bytes past the header handed out from this chunk; written when the region leaves the
    /// chunk (the current chunk's figure is its finger).
    pub used: usize,
    /// Order of creation within the region: rewinding unmaps the chunks numbered at or past a
    /// checkpoint's, however many were freed in between.
    pub seq: usize,
}

/// Bytes before the first block of a chunk.
pub(crate) const HEADER: usize = core::mem::size_of::<ChunkHeader>();

const _: () = assert!(HEADER.is_multiple_of(8) && HEADER <= 32);

/// A chunk's header pointer and the addresses it spans.
#[derive(Copy, Clone)]
pub(crate) struct Chunk(pub NonNull<ChunkHeader>);

impl Chunk {
    /// The first byte blocks may use.
    pub fn data_start(self) -> usize {
        self.0.as_ptr() as usize + HEADER
    }

    /// One past the chunk's last byte.
    ///
    /// # Safety
    ///
    /// The chunk is mapped.
    pub unsafe fn end(self) -> usize {
        // SAFETY: a mapped chunk's header is initialised and readable.
        self.0.as_ptr() as usize + unsafe { (*self.0.as_ptr()).size }
    }

    /// The chunk's base as a byte pointer, carrying the mapping's provenance.
    pub fn base(self) -> NonNull<u8> {
        self.0.cast()
    }
}
