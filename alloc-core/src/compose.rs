//! Layers that wrap a layer: [`Header`] gives any layer the size-from-pointer capability a C
//! `free(ptr)` needs, catches double and invalid frees through a checked header word, and with
//! `CANARY` writes a tail canary after every block that is checked at free (an overflow is
//! reported, not left to corrupt the neighbour); [`BySize`] routes by size range,
//! [`Fallback`] tries one layer then another, [`Counted`] adds statistics chosen at compile time.
//! The lock layer is [`crate::Locked`] over any `lock_api` mutex ([`crate::SpinLock`] or a
//! blocking one), and the size-class policies are in [`crate::class`].
//!
//! alloc-malloc builds its `segregated` and `hardened` presets from it
//! (`Locked<Header<SegregatedHeap, Abort, true>>`); its tests show each detection.

use crate::error::{ErrorKind, ErrorPolicy, HeapError};
use crate::layer::{Corruption, Layer, Owns, Reset, ResizeFn, SizeOf, UsableSize, Validate};
use crate::stats::StatsPolicy;
use crate::{secret, AllocError, Layout};
use core::ptr::NonNull;

/// Bytes of the header word pair right before every block.
const WORDS: usize = 2 * core::mem::size_of::<usize>();
/// Blocks from this size on keep their header words 32 bytes into `L`'s block (see `head`).
const BIG: usize = 16 << 10;
/// Bytes of the tail canary.
const CANARY_BYTES: usize = core::mem::size_of::<usize>();

const LIVE: usize = 0xa11c;
const FREED: usize = 0xf7ee;

/// A layer that puts a header before every block of `L`: the requested size, and a word that
/// encodes the block's state (live or freed) and the header's length, xored with a per-layer
/// secret and the block's address so a stray pointer or a forged header does not decode.
///
/// - `free` of a block whose word says *freed* is reported as a double free (until the block is
///   handed out again); of an address whose word does not decode, as an interior or foreign
///   pointer (with `CANARY`, an address `L` does not own is reported before anything is read).
/// - With `CANARY`, a word after the block's last byte is checked at free: an overflow is
///   reported as `canary corrupted`.
///
/// Costs 16 bytes per block (32 from 16 KiB on; the alignment, when larger), plus 8 with `CANARY`.
pub struct Header<L, E: ErrorPolicy = crate::Abort, const CANARY: bool = false> {
    inner: L,
    secret: usize,
    errors: E,
}

impl<L, E: ErrorPolicy, const CANARY: bool> Header<L, E, CANARY> {
    /// Wraps `inner`; the secret is drawn at the first allocation.
    pub const fn new(inner: L) -> Self {
        Header { inner, secret: 0, errors: E::INIT }
    }

    /// The wrapped layer.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The error policy.
    pub fn errors(&self) -> &E {
        &self.errors
    }

    /// The header's length for a block of `layout`: the two words, rounded up to the alignment;
    /// from [`BIG`] bytes on, at least 32, so the words lie clear of the two words a lower
    /// layer's free list may write at the start of a freed large block (alloc-segregated's link
    /// and residency flag): a double free of a large block still reads "freed".
    #[inline(always)]
    fn head(layout: Layout) -> usize {
        let words = if layout.size() >= BIG { 2 * WORDS } else { WORDS };
        layout.align().max(words)
    }

    /// The layout asked of `L` for a block of `layout`.
    #[inline(always)]
    fn outer(layout: Layout) -> Result<Layout, AllocError> {
        let head = Self::head(layout);
        let extra = head + if CANARY { CANARY_BYTES } else { 0 };
        let size = layout.size().checked_add(extra).ok_or(AllocError)?;
        // Aligned to the header's length (the alignment asked, or more): what a free, which knows
        // only the header's length, asks of `L` again.
        Layout::from_size_align(size, head).map_err(|_| AllocError)
    }

    #[inline(always)]
    fn code(&self, state: usize, head: usize, block: usize) -> usize {
        (state << 8 | head.trailing_zeros() as usize) ^ self.secret ^ block
    }

    #[inline(always)]
    fn canary(&self, block: usize, size: usize) -> usize {
        self.secret.rotate_left(17) ^ block ^ size
    }

    /// Writes the header (and canary) of the block at `base`, returning the block.
    fn stamp(&mut self, base: NonNull<u8>, layout: Layout) -> NonNull<u8> {
        let head = Self::head(layout);
        // SAFETY: `base` heads a block of `outer(layout)` bytes: header, block, canary.
        unsafe {
            let block = base.add(head);
            let b = block.as_ptr() as usize;
            let words = block.as_ptr().sub(WORDS).cast::<usize>();
            words.write(layout.size());
            words.add(1).write(self.code(LIVE, head, b));
            if CANARY {
                block.as_ptr().add(layout.size()).cast::<usize>().write_unaligned(self.canary(b, layout.size()));
            }
            block
        }
    }

    /// Decodes the header of `ptr`: (size, head) when it says live, what is wrong otherwise.
    /// Reads only.
    ///
    /// # Safety
    ///
    /// The two words before `ptr` are readable (`ptr` is a block of this layer, or one `L` owns).
    unsafe fn decode(&self, ptr: NonNull<u8>) -> Result<(usize, usize), HeapError> {
        let b = ptr.as_ptr() as usize;
        if !b.is_multiple_of(WORDS) {
            return Err(HeapError::new(ErrorKind::InteriorPointer, b));
        }
        // SAFETY: as the caller promises.
        let (size, word) = unsafe {
            let words = ptr.as_ptr().sub(WORDS).cast::<usize>();
            (words.read(), words.add(1).read())
        };
        let w = word ^ self.secret ^ b;
        let (state, shift) = (w >> 8, w & 0xff);
        if state == FREED && shift < usize::BITS as usize {
            return Err(HeapError::new(ErrorKind::DoubleFree, b));
        }
        if state != LIVE || shift >= usize::BITS as usize {
            return Err(HeapError::new(ErrorKind::InteriorPointer, b));
        }
        if CANARY {
            // SAFETY: a live block of `size` bytes followed by its canary.
            let c = unsafe { ptr.as_ptr().add(size).cast::<usize>().read_unaligned() };
            if c != self.canary(b, size) {
                return Err(HeapError::new(ErrorKind::CanaryCorrupted, b + size));
            }
        }
        Ok((size, 1 << shift))
    }

    /// Decodes the header of `ptr`: (size, head) when it says live; reports and returns `None`
    /// otherwise.
    ///
    /// # Safety
    ///
    /// As for `decode`.
    unsafe fn check(&self, ptr: NonNull<u8>) -> Option<(usize, usize)> {
        // SAFETY: as the caller promises.
        match unsafe { self.decode(ptr) } {
            Ok(found) => Some(found),
            Err(e) => {
                self.errors.report(e);
                None
            }
        }
    }
}

// SAFETY: every block is carved from a block of `L` of the outer layout, past a header of
// `head(align)` bytes, a multiple of the alignment, so it is aligned and `size` bytes long
// inside `L`'s block; zero-size requests get a real block. Blocks freed are `L`'s blocks, freed
// with the layout they were allocated with. No path panics unless `E` does.
unsafe impl<L: Layer + Owns, E: ErrorPolicy, const CANARY: bool> Layer for Header<L, E, CANARY> {
    const ZERO_SIZE_OK: bool = true;
    const PANICS: bool = L::PANICS || E::PANICS;
    /// `L`'s, around the header: a layer that resizes in place keeps doing so under a header.
    const RESIZE: Option<ResizeFn<Self>> = match L::RESIZE {
        Some(_) => Some(header_resize::<L, E, CANARY>),
        None => None,
    };

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let outer = Self::outer(layout)?;
        let base = crate::front::allocate(&mut self.inner, outer)?.cast::<u8>();
        if self.secret == 0 {
            self.secret = secret::fresh(base.as_ptr() as usize);
        }
        Ok(crate::ptr::block(self.stamp(base, layout), layout.size()))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let outer = Self::outer(layout)?;
        let base = crate::front::allocate_zeroed(&mut self.inner, outer)?.cast::<u8>();
        if self.secret == 0 {
            self.secret = secret::fresh(base.as_ptr() as usize);
        }
        Ok(crate::ptr::block(self.stamp(base, layout), layout.size()))
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if CANARY && !self.inner.owns(ptr) {
            self.errors.report(HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize));
            return;
        }
        // SAFETY: the caller's block (or, with CANARY, at least memory `L` owns).
        let Some((size, head)) = (unsafe { self.check(ptr) }) else { return };
        // The block is exactly the size asked for (its usable size), so only that size fits.
        if head != Self::head(layout) || size != layout.size() {
            self.errors.report(HeapError::new(ErrorKind::WrongLayout, ptr.as_ptr() as usize));
            return;
        }
        let b = ptr.as_ptr() as usize;
        let word = self.code(FREED, head, b);
        // SAFETY: the header of a live block, marked freed before the block goes back; `L`'s
        // block starts `head` bytes before `ptr`, with the outer layout of the recorded size.
        unsafe {
            ptr.as_ptr().sub(WORDS).cast::<usize>().add(1).write(word);
            let base = ptr.sub(head);
            let outer = Layout::from_size_align_unchecked(size + head + if CANARY { CANARY_BYTES } else { 0 }, head);
            crate::front::deallocate(&mut self.inner, base, outer);
        }
    }
}

/// Resizes `L`'s block under the header in place, then records the new size (and moves the
/// canary). Refuses (`Err`, the block untouched) when the header's length would change (the
/// alignment, or a size across [`BIG`]) or when the header does not say live with `old`'s size:
/// the front then moves the block, and the free of the old one reports what is wrong.
///
/// # Safety
///
/// As for [`crate::layer::Resize::resize_in_place`].
unsafe fn header_resize<L: Layer + Owns, E: ErrorPolicy, const CANARY: bool>(
    h: &mut Header<L, E, CANARY>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    let Some(resize) = L::RESIZE else { return Err(AllocError) };
    let head = Header::<L, E, CANARY>::head(old);
    if Header::<L, E, CANARY>::head(new) != head {
        return Err(AllocError);
    }
    // SAFETY: the caller's live block of this layer: its header words are readable.
    match unsafe { h.decode(ptr) } {
        Ok((size, found)) if size == old.size() && found == head => {}
        _ => return Err(AllocError),
    }
    let (outer_old, outer_new) = (Header::<L, E, CANARY>::outer(old)?, Header::<L, E, CANARY>::outer(new)?);
    // SAFETY: `L`'s block starts `head` bytes before `ptr` with the outer layout of `old` (the
    // header says so); it stays at that address, aligned to `head` as before.
    unsafe { resize(&mut h.inner, ptr.sub(head), outer_old, outer_new) }?;
    let b = ptr.as_ptr() as usize;
    // SAFETY: the block now holds the header, `new.size()` bytes and the canary.
    unsafe {
        ptr.as_ptr().sub(WORDS).cast::<usize>().write(new.size());
        if CANARY {
            ptr.as_ptr().add(new.size()).cast::<usize>().write_unaligned(h.canary(b, new.size()));
        }
    }
    Ok(new.size())
}

impl<L: crate::Trim, E: ErrorPolicy, const CANARY: bool> crate::Trim for Header<L, E, CANARY> {
    fn trim(&mut self) {
        self.inner.trim();
    }
}

impl<L: Layer + Owns + Reset, E: ErrorPolicy, const CANARY: bool> Reset for Header<L, E, CANARY> {
    /// Resets `L`: every block and its header go at once.
    fn reset(&mut self) {
        self.inner.reset();
    }
}

// SAFETY: a header that decodes as live was written by `stamp` for the block at `ptr` (the
// word is keyed by the secret and the address), recording its size and the header's length, the
// layout it is freed with; anything else is `None`. No word is read unless `L` owns `ptr`
// (`size_of`'s precondition, which callers such as the C socket check once; `misuse_at`, on the
// cold path, checks it again itself).
unsafe impl<L: Layer + Owns, E: ErrorPolicy, const CANARY: bool> SizeOf for Header<L, E, CANARY> {
    /// The size asked for, and the alignment the header guarantees (16, or the larger one asked).
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: the caller promises `L` owns `ptr`, so the words before a block of it are
        // readable.
        let (size, head) = unsafe { self.decode(ptr) }.ok()?;
        Layout::from_size_align(size, head).ok()
    }

    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        if !self.inner.owns(ptr) {
            return HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize);
        }
        // SAFETY: as above.
        match unsafe { self.decode(ptr) } {
            Ok(_) => HeapError::new(ErrorKind::WrongLayout, ptr.as_ptr() as usize),
            Err(e) => e,
        }
    }
}

// SAFETY: the size asked for: the block holds exactly that many bytes before the canary (or the
// end of `L`'s block), and it is the size the header records, which every free checks against.
unsafe impl<L: Layer + Owns, E: ErrorPolicy, const CANARY: bool> UsableSize for Header<L, E, CANARY> {
    /// The size asked for: the canary sits right after it, and C's `malloc_usable_size` users
    /// may write up to what it returns.
    unsafe fn usable_size(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        layout.size()
    }
}

// SAFETY: `L`'s answer: every block of this layer lies inside a block of `L`.
unsafe impl<L: Owns, E: ErrorPolicy, const CANARY: bool> Owns for Header<L, E, CANARY> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.inner.owns(ptr)
    }
}

impl<L: Validate, E: ErrorPolicy, const CANARY: bool> Validate for Header<L, E, CANARY> {
    /// `L`'s validator (headers are checked block by block, at free).
    fn validate(&self) -> Result<(), Corruption> {
        self.inner.validate()
    }
}

/// A layer that sends requests of at most `LIMIT` bytes to `A` and larger ones to `B`: the
/// paper's size-range slot ("slab for `[0, 64 KiB)`, buddy for `[64 KiB, MAX)`"). Frees are
/// routed by the layout's size, so neither layer needs to recognise the other's blocks. The
/// route is one compare of a constant, inlined: the composition costs what the `if` written by
/// hand costs.
pub struct BySize<A, B, const LIMIT: usize> {
    /// The layer for small requests.
    pub small: A,
    /// The layer for large requests.
    pub large: B,
}

impl<A, B, const LIMIT: usize> BySize<A, B, LIMIT> {
    /// `small` for requests up to `LIMIT` bytes, `large` for the rest.
    pub const fn new(small: A, large: B) -> Self {
        BySize { small, large }
    }
}

// SAFETY: each block comes from exactly one of the two layers, chosen by its size, and goes
// back to the same one: a small block's reported length is capped at LIMIT, so every layout that
// fits it (the only ones it may be freed with) is still at most LIMIT; a large block's sizes all
// exceed LIMIT. The layers' guarantees carry over. Zero-size requests go to `A`, which gets
// them only when it takes them (the fronts answer them otherwise).
unsafe impl<A: Layer, B: Layer, const LIMIT: usize> Layer for BySize<A, B, LIMIT> {
    const ZERO_SIZE_OK: bool = A::ZERO_SIZE_OK && B::ZERO_SIZE_OK;
    const PANICS: bool = A::PANICS || B::PANICS;
    /// In place when old and new size stay on one side of LIMIT and that side resizes in place.
    const RESIZE: Option<ResizeFn<Self>> = match (A::RESIZE, B::RESIZE) {
        (None, None) => None,
        _ => Some(segregate_resize::<A, B, LIMIT>),
    };

    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() <= LIMIT {
            // A caller may free with any size up to the block's length: keep that within LIMIT
            // so the free routes back here.
            self.small.allocate(layout).map(|b| crate::ptr::block(b.cast::<u8>(), b.len().min(LIMIT)))
        } else {
            self.large.allocate(layout)
        }
    }

    #[inline(always)]
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() <= LIMIT {
            // A caller may free with any size up to the block's length: keep that within LIMIT
            // so the free routes back here.
            self.small.allocate_zeroed(layout).map(|b| crate::ptr::block(b.cast::<u8>(), b.len().min(LIMIT)))
        } else {
            self.large.allocate_zeroed(layout)
        }
    }

    #[inline(always)]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the block came from the layer its size routes to.
        unsafe {
            if layout.size() <= LIMIT {
                self.small.deallocate(ptr, layout)
            } else {
                self.large.deallocate(ptr, layout)
            }
        }
    }
}

/// Resizes within the side both sizes route to (a block that would cross LIMIT must move, so its
/// free routes to the layer that holds it).
///
/// # Safety
///
/// As for [`crate::layer::Resize::resize_in_place`].
unsafe fn segregate_resize<A: Layer, B: Layer, const LIMIT: usize>(
    s: &mut BySize<A, B, LIMIT>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    // SAFETY: the block came from the side its old size routes to, and the new size routes there
    // too; a small block's length is capped at LIMIT again, as at allocation.
    unsafe {
        match (old.size() <= LIMIT, new.size() <= LIMIT) {
            (true, true) => match A::RESIZE {
                Some(f) => f(&mut s.small, ptr, old, new).map(|len| len.min(LIMIT)),
                None => Err(AllocError),
            },
            (false, false) => match B::RESIZE {
                Some(f) => f(&mut s.large, ptr, old, new),
                None => Err(AllocError),
            },
            _ => Err(AllocError),
        }
    }
}

impl<A: crate::Trim, B: crate::Trim, const LIMIT: usize> crate::Trim for BySize<A, B, LIMIT> {
    fn trim(&mut self) {
        self.small.trim();
        self.large.trim();
    }
}

impl<A: Reset, B: Reset, const LIMIT: usize> Reset for BySize<A, B, LIMIT> {
    fn reset(&mut self) {
        self.small.reset();
        self.large.reset();
    }
}

// SAFETY: every block comes from one of the two layers, which answer for their own memory.
unsafe impl<A: Owns, B: Owns, const LIMIT: usize> Owns for BySize<A, B, LIMIT> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.small.owns(ptr) || self.large.owns(ptr)
    }
}

// SAFETY: asked of the layer that owns `ptr` (`B` when `A` does not, and the caller's `Owns`
// check covered both). A layout `A` reports has a size within LIMIT only if the block is `A`'s
// (its sizes never pass LIMIT), so a free with it routes back to `A`; `B`'s sizes pass LIMIT.
unsafe impl<A: Owns + SizeOf, B: Owns + SizeOf, const LIMIT: usize> SizeOf for BySize<A, B, LIMIT> {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        let small = self.small.owns(ptr);
        // SAFETY: asked of the layer that owns `ptr`.
        let l = unsafe {
            if small {
                self.small.size_of(ptr)
            } else {
                self.large.size_of(ptr)
            }
        }?;
        // A layout on the wrong side of LIMIT would route the free to the other layer.
        ((l.size() <= LIMIT) == small).then_some(l)
    }

    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        // SAFETY: asked of the layer that owns `ptr`.
        unsafe {
            if self.small.owns(ptr) {
                self.small.misuse_at(ptr)
            } else if self.large.owns(ptr) {
                self.large.misuse_at(ptr)
            } else {
                HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize)
            }
        }
    }
}

impl<A: Validate, B: Validate, const LIMIT: usize> Validate for BySize<A, B, LIMIT> {
    fn validate(&self) -> Result<(), Corruption> {
        self.small.validate()?;
        self.large.validate()
    }
}

// SAFETY: each layer's answer for its own blocks, `A`'s capped at LIMIT so that a free with any
// size up to it still routes to `A`.
unsafe impl<A: UsableSize, B: UsableSize, const LIMIT: usize> UsableSize for BySize<A, B, LIMIT> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded to the layer the block came from. A block may be used up to its
        // usable size, but a caller that frees it with a larger size must not cross LIMIT:
        // within `A`, report no more than LIMIT.
        unsafe {
            if layout.size() <= LIMIT {
                self.small.usable_size(ptr, layout).min(LIMIT)
            } else {
                self.large.usable_size(ptr, layout)
            }
        }
    }
}

/// A layer that asks `A` first and `B` when `A` fails (out of memory, or a request it refuses);
/// frees go to `A` when it [`Owns`] the block, otherwise to `B`.
pub struct Fallback<A, B> {
    /// The layer asked first.
    pub primary: A,
    /// The layer asked when the first fails.
    pub secondary: B,
}

impl<A, B> Fallback<A, B> {
    /// `primary` first, then `secondary`.
    pub const fn new(primary: A, secondary: B) -> Self {
        Fallback { primary, secondary }
    }
}

// SAFETY: each block comes from one of the two layers and goes back to the one that owns it
// (`A` never owns a block of `B`: `Owns` answers for memory `A` manages only).
unsafe impl<A: Layer + Owns, B: Layer> Layer for Fallback<A, B> {
    const ZERO_SIZE_OK: bool = A::ZERO_SIZE_OK && B::ZERO_SIZE_OK;
    const PANICS: bool = A::PANICS || B::PANICS;
    /// In place by the layer that owns the block, when that layer resizes in place.
    const RESIZE: Option<ResizeFn<Self>> = match (A::RESIZE, B::RESIZE) {
        (None, None) => None,
        _ => Some(fallback_resize::<A, B>),
    };

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.primary.allocate(layout).or_else(|_| self.secondary.allocate(layout))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.primary.allocate_zeroed(layout).or_else(|_| self.secondary.allocate_zeroed(layout))
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the block goes back to the layer that owns it.
        unsafe {
            if self.primary.owns(ptr) {
                self.primary.deallocate(ptr, layout)
            } else {
                self.secondary.deallocate(ptr, layout)
            }
        }
    }
}

/// Resizes through the layer that owns the block.
///
/// # Safety
///
/// As for [`crate::layer::Resize::resize_in_place`].
unsafe fn fallback_resize<A: Layer + Owns, B: Layer>(
    f: &mut Fallback<A, B>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    // SAFETY: the block belongs to the layer `Owns` names, as for `deallocate`.
    unsafe {
        if f.primary.owns(ptr) {
            match A::RESIZE {
                Some(r) => r(&mut f.primary, ptr, old, new),
                None => Err(AllocError),
            }
        } else {
            match B::RESIZE {
                Some(r) => r(&mut f.secondary, ptr, old, new),
                None => Err(AllocError),
            }
        }
    }
}

impl<A: crate::Trim, B: crate::Trim> crate::Trim for Fallback<A, B> {
    fn trim(&mut self) {
        self.primary.trim();
        self.secondary.trim();
    }
}

impl<A: Layer + Owns + Reset, B: Reset> Reset for Fallback<A, B> {
    fn reset(&mut self) {
        self.primary.reset();
        self.secondary.reset();
    }
}

// SAFETY: every block comes from one of the two layers, which answer for their own memory.
unsafe impl<A: Owns, B: Owns> Owns for Fallback<A, B> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.primary.owns(ptr) || self.secondary.owns(ptr)
    }
}

// SAFETY: asked of the layer that owns `ptr`, the one a free with the answer goes to.
unsafe impl<A: Owns + SizeOf, B: Owns + SizeOf> SizeOf for Fallback<A, B> {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: asked of the layer that owns `ptr`.
        unsafe {
            if self.primary.owns(ptr) {
                self.primary.size_of(ptr)
            } else {
                self.secondary.size_of(ptr)
            }
        }
    }

    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        // SAFETY: asked of the layer that owns `ptr`.
        unsafe {
            if self.primary.owns(ptr) {
                self.primary.misuse_at(ptr)
            } else if self.secondary.owns(ptr) {
                self.secondary.misuse_at(ptr)
            } else {
                HeapError::new(ErrorKind::ForeignPointer, ptr.as_ptr() as usize)
            }
        }
    }
}

// SAFETY: each block's usable size from the layer that owns it.
unsafe impl<A: Owns + UsableSize, B: UsableSize> UsableSize for Fallback<A, B> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded to the layer the block came from.
        unsafe {
            if self.primary.owns(ptr) {
                self.primary.usable_size(ptr, layout)
            } else {
                self.secondary.usable_size(ptr, layout)
            }
        }
    }
}

impl<A: Validate, B: Validate> Validate for Fallback<A, B> {
    fn validate(&self) -> Result<(), Corruption> {
        self.primary.validate()?;
        self.secondary.validate()
    }
}

/// A layer that counts what passes through it with statistics policy `C`, chosen at compile
/// time: [`crate::NoStats`] compiles to nothing, [`crate::Counting`] keeps live bytes, blocks
/// and peaks.
pub struct Counted<L, C: StatsPolicy> {
    inner: L,
    stats: C,
}

impl<L, C: StatsPolicy> Counted<L, C> {
    /// Counts what goes through `inner`.
    pub const fn new(inner: L) -> Self {
        Counted { inner, stats: C::INIT }
    }

    /// The counters.
    pub fn counters(&self) -> &C {
        &self.stats
    }

    /// The wrapped layer.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

// SAFETY: every call is forwarded unchanged; only counters are updated.
unsafe impl<L: Layer, C: StatsPolicy> Layer for Counted<L, C> {
    const ZERO_SIZE_OK: bool = L::ZERO_SIZE_OK;
    const PANICS: bool = L::PANICS;
    /// The inner layer's, counted: wrapping a layer for statistics keeps its `realloc` in place.
    const RESIZE: Option<ResizeFn<Self>> = match L::RESIZE {
        Some(_) => Some(counted_resize::<L, C>),
        None => None,
    };

    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.inner.allocate(layout)?;
        self.stats.on_alloc(layout.size());
        Ok(b)
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let b = self.inner.allocate_zeroed(layout)?;
        self.stats.on_alloc(layout.size());
        Ok(b)
    }

    #[inline(always)]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.stats.on_free(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.deallocate(ptr, layout) }
    }
}

/// Resizes through the inner layer and counts the change of size.
///
/// # Safety
///
/// As for [`crate::layer::Resize::resize_in_place`].
unsafe fn counted_resize<L: Layer, C: StatsPolicy>(
    c: &mut Counted<L, C>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<usize, AllocError> {
    let Some(resize) = L::RESIZE else { return Err(AllocError) };
    // SAFETY: forwarded with the caller's guarantees.
    let len = unsafe { resize(&mut c.inner, ptr, old, new) }?;
    c.stats.on_resize(old.size(), new.size());
    Ok(len)
}

impl<L> crate::Statistics for Counted<L, crate::Counting> {
    fn stats(&self) -> crate::Stats {
        self.counters().get()
    }
}

impl<L: crate::Trim, C: StatsPolicy> crate::Trim for Counted<L, C> {
    fn trim(&mut self) {
        self.inner.trim();
    }
}

impl<L: Reset, C: StatsPolicy> Reset for Counted<L, C> {
    /// Resets the inner layer; the live counters go back to zero (peaks and mapped bytes stay).
    fn reset(&mut self) {
        self.inner.reset();
        self.stats.restore_live(0, 0);
    }
}

// SAFETY: the inner layer's answer; blocks pass through unchanged.
unsafe impl<L: Owns, C: StatsPolicy> Owns for Counted<L, C> {
    fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.inner.owns(ptr)
    }
}

// SAFETY: the inner layer's answers; blocks pass through unchanged.
unsafe impl<L: SizeOf, C: StatsPolicy> SizeOf for Counted<L, C> {
    unsafe fn size_of(&self, ptr: NonNull<u8>) -> Option<Layout> {
        // SAFETY: forwarded.
        unsafe { self.inner.size_of(ptr) }
    }
    unsafe fn misuse_at(&self, ptr: NonNull<u8>) -> HeapError {
        // SAFETY: forwarded.
        unsafe { self.inner.misuse_at(ptr) }
    }
}

impl<L: Validate, C: StatsPolicy> Validate for Counted<L, C> {
    fn validate(&self) -> Result<(), Corruption> {
        self.inner.validate()
    }
}

// SAFETY: the inner layer's answer; blocks pass through unchanged.
unsafe impl<L: UsableSize, C: StatsPolicy> UsableSize for Counted<L, C> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded.
        unsafe { self.inner.usable_size(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NoStats;
    use crate::Abort;

    /// A layer with nothing to hand out, whose validator says what it is told to, and which
    /// says whether it may panic.
    struct Stub<const PANICS: bool> {
        broken: bool,
    }

    // SAFETY: it never hands out a block.
    unsafe impl<const P: bool> Layer for Stub<P> {
        const PANICS: bool = P;
        fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> {
            Err(AllocError)
        }
        unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
    }

    // SAFETY: it owns nothing.
    unsafe impl<const P: bool> Owns for Stub<P> {
        fn owns(&self, _: NonNull<u8>) -> bool {
            false
        }
    }

    impl<const P: bool> Validate for Stub<P> {
        fn validate(&self) -> Result<(), Corruption> {
            if self.broken {
                Err(Corruption { what: "stub is broken", addr: 0 })
            } else {
                Ok(())
            }
        }
    }

    fn stub(broken: bool) -> Stub<false> {
        Stub { broken }
    }

    /// A stub that takes zero-size requests and says it resizes in place (it has nothing to
    /// resize).
    struct Able;

    // SAFETY: it never hands out a block.
    unsafe impl Layer for Able {
        const ZERO_SIZE_OK: bool = true;
        const RESIZE: Option<ResizeFn<Self>> = Some(able_resize);
        fn allocate(&mut self, _: Layout) -> Result<NonNull<[u8]>, AllocError> {
            Err(AllocError)
        }
        unsafe fn deallocate(&mut self, _: NonNull<u8>, _: Layout) {}
    }

    /// # Safety
    ///
    /// None needed: it touches nothing.
    unsafe fn able_resize(_: &mut Able, _: NonNull<u8>, _: Layout, _: Layout) -> Result<usize, AllocError> {
        Err(AllocError)
    }

    // SAFETY: it owns nothing.
    unsafe impl Owns for Able {
        fn owns(&self, _: NonNull<u8>) -> bool {
            false
        }
    }

    /// A layer over the system allocator that remembers its blocks (for `owns`), hands out
    /// blocks up to `max` bytes, and counts the trims and resets it is asked for.
    struct Sys {
        max: usize,
        live: std::vec::Vec<(usize, Layout)>,
        trims: usize,
        resets: usize,
    }

    fn sys(max: usize) -> Sys {
        Sys { max, live: std::vec::Vec::new(), trims: 0, resets: 0 }
    }

    // SAFETY: blocks of the system allocator with the layout asked, each handed out once.
    unsafe impl Layer for Sys {
        fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if layout.size() > self.max || layout.size() == 0 {
                return Err(AllocError);
            }
            // SAFETY: a layout of non-zero size.
            let p = NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or(AllocError)?;
            self.live.push((p.as_ptr() as usize, layout));
            Ok(crate::ptr::block(p, layout.size()))
        }
        unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
            let i = self.live.iter().position(|&(a, _)| a == ptr.as_ptr() as usize).expect("a block of this layer");
            assert_eq!(self.live.swap_remove(i).1, layout);
            // SAFETY: allocated above with this layout.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        }
    }

    // SAFETY: the blocks it handed out and has not taken back.
    unsafe impl Owns for Sys {
        fn owns(&self, ptr: NonNull<u8>) -> bool {
            let a = ptr.as_ptr() as usize;
            self.live.iter().any(|&(b, l)| (b..b + l.size()).contains(&a))
        }
    }

    impl crate::Trim for Sys {
        fn trim(&mut self) {
            self.trims += 1;
        }
    }

    impl Reset for Sys {
        fn reset(&mut self) {
            for (a, l) in self.live.drain(..) {
                // SAFETY: blocks allocated above with these layouts, all forgotten now.
                unsafe { std::alloc::dealloc(a as *mut u8, l) };
            }
            self.resets += 1;
        }
    }

    fn l(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// What a combinator takes from its parts: zero-size requests only when every part takes
    /// them, in-place resizing when any part resizes.
    #[test]
    fn capabilities_combine_from_the_parts() {
        type N = Stub<false>;
        let zero = [
            <BySize<Able, Able, 64> as Layer>::ZERO_SIZE_OK,
            <BySize<Able, N, 64> as Layer>::ZERO_SIZE_OK,
            <BySize<N, Able, 64> as Layer>::ZERO_SIZE_OK,
            <Fallback<Able, Able> as Layer>::ZERO_SIZE_OK,
            <Fallback<Able, N> as Layer>::ZERO_SIZE_OK,
            <Fallback<N, Able> as Layer>::ZERO_SIZE_OK,
        ];
        assert_eq!(zero, [true, false, false, true, false, false]);
        let resize = [
            <BySize<N, N, 64> as Layer>::RESIZE.is_some(),
            <BySize<Able, N, 64> as Layer>::RESIZE.is_some(),
            <BySize<N, Able, 64> as Layer>::RESIZE.is_some(),
            <Fallback<N, N> as Layer>::RESIZE.is_some(),
            <Fallback<Able, N> as Layer>::RESIZE.is_some(),
            <Fallback<N, Able> as Layer>::RESIZE.is_some(),
        ];
        assert_eq!(resize, [false, true, true, false, true, true]);
    }

    /// Every combinator answers `owns` for the blocks of each part (and for nothing else), and
    /// passes `trim` and `reset` to every part; `Counted` counts what went through it; `Header`
    /// keys its words with a secret drawn at its first allocation.
    #[test]
    fn owns_trim_and_reset_reach_every_part() {
        let outside = NonNull::from(&0u64).cast::<u8>();
        // BySize: one block from each side.
        let mut by = BySize::<_, _, 64>::new(sys(64), sys(4096));
        let (s, b) = (by.allocate(l(32)).unwrap().cast::<u8>(), by.allocate(l(1000)).unwrap().cast::<u8>());
        assert!(by.small.owns(s) && by.large.owns(b));
        assert_eq!([by.owns(s), by.owns(b), by.owns(outside)], [true, true, false]);
        let (zs, zb) =
            (by.allocate_zeroed(l(64)).unwrap().cast::<u8>(), by.allocate_zeroed(l(65)).unwrap().cast::<u8>());
        assert!(by.small.owns(zs) && by.large.owns(zb), "zeroed blocks routed by size too");
        crate::Trim::trim(&mut by);
        by.reset();
        assert_eq!([by.small.trims, by.large.trims, by.small.resets, by.large.resets], [1; 4]);
        // Fallback: the primary takes up to 64 bytes, the secondary the rest.
        let mut fb = Fallback::new(sys(64), sys(4096));
        let (s, b) = (fb.allocate(l(32)).unwrap().cast::<u8>(), fb.allocate(l(1000)).unwrap().cast::<u8>());
        assert!(fb.primary.owns(s) && fb.secondary.owns(b));
        assert_eq!([fb.owns(s), fb.owns(b), fb.owns(outside)], [true, true, false]);
        crate::Trim::trim(&mut fb);
        fb.reset();
        assert_eq!([fb.primary.trims, fb.secondary.trims, fb.primary.resets, fb.secondary.resets], [1; 4]);
        // Counted.
        let mut c = Counted::<_, crate::Counting>::new(sys(4096));
        let p = c.allocate(l(100)).unwrap().cast::<u8>();
        assert_eq!([c.owns(p), c.owns(outside)], [true, false]);
        let st = crate::Statistics::stats(&c);
        assert_eq!((st.allocations, st.blocks_live, st.bytes_live), (1, 1, 100));
        crate::Trim::trim(&mut c);
        c.reset();
        assert_eq!((c.inner.trims, c.inner.resets), (1, 1));
        assert_eq!(crate::Statistics::stats(&c).blocks_live, 0);
        // Header.
        let mut h = Header::<_, Abort, true>::new(sys(1 << 20));
        assert_eq!(h.secret, 0);
        let p = h.allocate(l(100)).unwrap().cast::<u8>();
        assert_ne!(h.secret, 0, "a secret drawn at the first allocation");
        // What the header asks of its layer: two words before the block (four from 16 KiB on),
        // aligned to their length, and the canary word after it.
        let big = h.allocate(l(16 << 10)).unwrap().cast::<u8>();
        let asked: std::vec::Vec<Layout> = h.inner.live.iter().map(|&(_, l)| l).collect();
        let w = core::mem::size_of::<usize>();
        let expect = |size, head| Layout::from_size_align(size + head + w, head).unwrap();
        assert_eq!(asked, [expect(100, 2 * w), expect(16 << 10, 4 * w)]);
        // SAFETY: a live block of this layer with its layout.
        unsafe { h.deallocate(big, l(16 << 10)) };
        let zeroed = h.allocate_zeroed(l(100)).unwrap().cast::<u8>();
        assert_eq!([h.owns(p), h.owns(zeroed), h.owns(outside)], [true, true, false]);
        crate::Trim::trim(&mut h);
        h.reset();
        assert_eq!((h.inner.trims, h.inner.resets), (1, 1));
        // A header's secret drawn by `allocate_zeroed` too.
        let mut z = Header::<_, Abort, false>::new(sys(4096));
        let q = z.allocate_zeroed(l(100)).unwrap().cast::<u8>();
        assert_ne!(z.secret, 0);
        // SAFETY: a live block of this layer with its layout.
        unsafe { z.deallocate(q, l(100)) };
        assert!(z.inner.live.is_empty());
    }

    /// Every combinator's validator is its parts': a broken part is reported through it.
    #[test]
    fn a_broken_part_is_reported_through_every_combinator() {
        let bad = Err(Corruption { what: "stub is broken", addr: 0 });
        assert_eq!(Header::<_, Abort, true>::new(stub(true)).validate(), bad);
        assert_eq!(Header::<_, Abort, true>::new(stub(false)).validate(), Ok(()));
        assert_eq!(Counted::<_, NoStats>::new(stub(true)).validate(), bad);
        assert_eq!(Counted::<_, NoStats>::new(stub(false)).validate(), Ok(()));
        for (a, b) in [(true, false), (false, true)] {
            assert_eq!(BySize::<_, _, 64>::new(stub(a), stub(b)).validate(), bad);
            assert_eq!(Fallback::new(stub(a), stub(b)).validate(), bad);
        }
        assert_eq!(Fallback::new(stub(false), stub(false)).validate(), Ok(()));
    }

    /// A canary is one-to-one in the block's address and in its size: an overflow that copies
    /// a neighbour's canary, or a block freed with another size, does not find its own value
    /// there. (A canary that ORs instead of XORs is the same for many blocks: it passed every
    /// other test.)
    #[test]
    fn canaries_differ_between_blocks_and_sizes() {
        let mut h = Header::<_, Abort, true>::new(stub(false));
        for secret in [0x0123_4567_89ab_cdef, usize::MAX, 0x5a5a_5a5a_5a5a_5a5a] {
            h.secret = secret;
            let base = 0x7f00_1234_5000;
            let mut by_block: std::vec::Vec<usize> = (0..4096).map(|i| h.canary(base + 16 * i, 48)).collect();
            let mut by_size: std::vec::Vec<usize> = (0..4096).map(|n| h.canary(base, n)).collect();
            for v in [&mut by_block, &mut by_size] {
                v.sort_unstable();
                v.dedup();
                assert_eq!(v.len(), 4096, "secret {secret:#x}");
            }
        }
    }

    /// A combinator may panic when any part may: it cannot sit behind `GlobalAlloc` then.
    #[test]
    fn a_part_that_may_panic_makes_the_combinator_panic() {
        type P = Stub<true>;
        type N = Stub<false>;
        let fallback =
            [<Fallback<P, N> as Layer>::PANICS, <Fallback<N, P> as Layer>::PANICS, <Fallback<N, N> as Layer>::PANICS];
        let segregate = [
            <BySize<P, N, 64> as Layer>::PANICS,
            <BySize<N, P, 64> as Layer>::PANICS,
            <BySize<N, N, 64> as Layer>::PANICS,
        ];
        assert_eq!((fallback, segregate), ([true, true, false], [true, true, false]));
        let wrapped = [
            <Header<P, Abort, true> as Layer>::PANICS,
            <Header<N, Abort, true> as Layer>::PANICS,
            <Counted<P, NoStats> as Layer>::PANICS,
            <Counted<N, NoStats> as Layer>::PANICS,
        ];
        assert_eq!(wrapped, [true, false, true, false]);
    }
}
