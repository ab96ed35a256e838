//! The intrusive free list: a LIFO stack threaded through the free blocks themselves (each free
//! block's first word links to the next). The one place allocators read and write those links.
//!
//! How a link is stored is a policy ([`LinkCodec`]):
//! - [`PlainLinks`]: the pointer itself; the fastest, and what an overflow from the neighbouring
//!   block overwrites with an address the allocator then follows.
//! - [`SafeLinks`]: the pointer mixed with the slot's own address and a per-heap secret (glibc's
//!   safe-linking, mimalloc's encoded free lists). A link overwritten by an overflow or a write
//!   after free decodes to a wild address, which the heap checks (inside its runs, aligned for
//!   its class) before following it, and reports through its error policy.

use core::ptr::NonNull;

/// How free-list links are written into and read from free blocks.
pub trait LinkCodec {
    /// True when links are encoded, so decoded links are worth checking.
    const CHECKED: bool;

    /// The codec for a heap, keyed with `secret` (ignored by plain links).
    fn with_secret(secret: usize) -> Self;

    /// Writes the link to `next` into the first word of `at`.
    ///
    /// # Safety
    ///
    /// `at` is valid for writes of a pointer and aligned to one.
    unsafe fn write(&self, at: NonNull<u8>, next: Option<NonNull<u8>>);

    /// Reads the link stored at `at`: the next block, or a wild address when the word was
    /// overwritten (which a checked codec's caller must validate before using it).
    ///
    /// # Safety
    ///
    /// `at` is valid for reads of a pointer and aligned to one.
    unsafe fn read(&self, at: NonNull<u8>) -> Option<NonNull<u8>>;
}

/// Links stored as plain pointers.
#[derive(Copy, Clone, Debug, Default)]
pub struct PlainLinks;

impl LinkCodec for PlainLinks {
    const CHECKED: bool = false;

    #[inline(always)]
    fn with_secret(_: usize) -> Self {
        PlainLinks
    }

    #[inline(always)]
    unsafe fn write(&self, at: NonNull<u8>, next: Option<NonNull<u8>>) {
        // SAFETY: the caller gives a pointer-sized, pointer-aligned slot.
        unsafe { at.cast::<Option<NonNull<u8>>>().as_ptr().write(next) }
    }

    #[inline(always)]
    unsafe fn read(&self, at: NonNull<u8>) -> Option<NonNull<u8>> {
        // SAFETY: as above.
        unsafe { at.cast::<Option<NonNull<u8>>>().as_ptr().read() }
    }
}

/// Links stored as `next ^ (slot >> 12) ^ secret`: glibc's safe-linking position mix (a link
/// copied to another slot decodes differently) keyed with a per-heap secret (an attacker who
/// knows heap addresses still cannot forge one). Decoded addresses get their pointers back
/// through exposed provenance: every block was exposed when it was pushed.
#[derive(Copy, Clone, Debug)]
pub struct SafeLinks {
    secret: usize,
}

impl LinkCodec for SafeLinks {
    const CHECKED: bool = true;

    fn with_secret(secret: usize) -> Self {
        SafeLinks { secret }
    }

    #[inline(always)]
    unsafe fn write(&self, at: NonNull<u8>, next: Option<NonNull<u8>>) {
        let next = next.map_or(0, |p| p.as_ptr().expose_provenance());
        let word = next ^ (at.as_ptr() as usize >> 12) ^ self.secret;
        // SAFETY: the caller gives a pointer-sized, pointer-aligned slot.
        unsafe { at.cast::<usize>().as_ptr().write(word) }
    }

    #[inline(always)]
    unsafe fn read(&self, at: NonNull<u8>) -> Option<NonNull<u8>> {
        // SAFETY: as above.
        let word = unsafe { at.cast::<usize>().as_ptr().read() };
        let addr = word ^ (at.as_ptr() as usize >> 12) ^ self.secret;
        NonNull::new(core::ptr::with_exposed_provenance_mut(addr))
    }
}

/// A LIFO list of free blocks, each at least a pointer long and pointer-aligned. The head lives
/// with the allocator (out of reach of block overflows); the links live in the blocks.
#[derive(Debug)]
pub struct FreeList {
    /// Newest free block; each block's first word links to the one freed before it.
    head: Option<NonNull<u8>>,
}

// SAFETY: the list owns the free blocks linked from it; moving the list moves that ownership.
unsafe impl Send for FreeList {}

impl Default for FreeList {
    fn default() -> Self {
        FreeList::new()
    }
}

impl FreeList {
    /// An empty list.
    pub const fn new() -> Self {
        FreeList { head: None }
    }

    /// True when no block is on the list.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The block that [`FreeList::pop`] would return.
    #[inline(always)]
    pub fn peek(&self) -> Option<NonNull<u8>> {
        self.head
    }

    /// Puts `block` on the list.
    ///
    /// # Safety
    ///
    /// - `block` is valid for writes of a pointer and aligned to a pointer;
    /// - it is not on any list and nothing else uses it until it is popped.
    #[inline(always)]
    pub unsafe fn push<C: LinkCodec>(&mut self, block: NonNull<u8>, codec: &C) {
        // SAFETY: the caller hands over a pointer-sized, pointer-aligned block nobody else uses.
        unsafe { codec.write(block, self.head) };
        self.head = Some(block);
    }

    /// Takes the newest block off the list. The block after it becomes the head as read from
    /// the block's link; with a checked codec the caller validates [`FreeList::peek`] before
    /// the next pop (or calls [`FreeList::clear`] when it is wild).
    ///
    /// # Safety
    ///
    /// Every block on the list was pushed with `codec` under `push`'s guarantees, and the head is
    /// a valid block (with a checked codec: validated after the previous pop).
    #[inline(always)]
    pub unsafe fn pop<C: LinkCodec>(&mut self, codec: &C) -> Option<NonNull<u8>> {
        let node = self.head?;
        // SAFETY: the head is a block on the list, owned by it, so its link word is readable.
        self.head = unsafe { codec.read(node) };
        Some(node)
    }

    /// Drops every block from the list (they are leaked, not freed): what a heap does when it
    /// finds a corrupted link and chooses to go on.
    pub fn clear(&mut self) {
        self.head = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifo<C: LinkCodec>(codec: C) {
        let mut blocks = [[0usize; 2]; 3];
        // Every pointer derives from one raw base, so none invalidates another.
        let base = blocks.as_mut_ptr();
        // SAFETY: index < 3, inside the array.
        let block = |i: usize| NonNull::new(unsafe { base.add(i) }).unwrap().cast::<u8>();
        let mut l = FreeList::new();
        // SAFETY: an empty list has nothing to read.
        assert!(unsafe { l.pop(&codec) }.is_none());
        for i in 0..3 {
            // SAFETY: each block is pointer-aligned, two words long and used by nothing else.
            unsafe { l.push(block(i), &codec) };
        }
        let third = block(2);
        assert_eq!(l.peek(), Some(third));
        // SAFETY: the blocks were pushed with this codec and are untouched.
        unsafe {
            assert_eq!(l.pop(&codec), Some(third));
            assert_eq!(l.pop(&codec), Some(block(1)));
            assert_eq!(l.pop(&codec), Some(block(0)));
            assert!(l.pop(&codec).is_none() && l.is_empty());
        }
    }

    #[test]
    fn pops_in_lifo_order_with_either_codec() {
        lifo(PlainLinks);
        lifo(SafeLinks::with_secret(0x5eed_1234));
    }

    #[test]
    fn an_overwritten_safe_link_decodes_to_a_wild_address() {
        let codec = SafeLinks::with_secret(0x9e37_79b9_7f4a_7c15);
        let mut blocks = [[0usize; 2]; 2];
        let base = blocks.as_mut_ptr();
        // SAFETY: index < 2.
        let block = |i: usize| NonNull::new(unsafe { base.add(i) }).unwrap().cast::<u8>();
        let mut l = FreeList::new();
        // SAFETY: two free, pointer-aligned blocks.
        unsafe {
            l.push(block(0), &codec);
            l.push(block(1), &codec);
            // An overflow writes the address of block 0 itself into block 1's link: plain links
            // would follow it; safe links decode it to something else entirely.
            block(1).cast::<usize>().as_ptr().write(block(0).as_ptr() as usize);
            l.pop(&codec);
        }
        let next = l.peek().map_or(0, |p| p.as_ptr() as usize);
        assert_ne!(next, block(0).as_ptr() as usize);
        assert_ne!(next, 0);
        l.clear();
        assert!(l.is_empty());
    }
}
