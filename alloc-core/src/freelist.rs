//! The intrusive free list: a LIFO stack threaded through the free blocks themselves (each free
//! block's first word points at the next). The one place allocators read and write those links.

use core::ptr::NonNull;

/// A free block seen as a list node.
#[repr(C)]
struct Node {
    next: Option<NonNull<Node>>,
}

/// A LIFO list of free blocks, each at least a pointer long and pointer-aligned.
#[derive(Debug)]
pub struct FreeList {
    /// Newest free block; each block's first word links to the one freed before it.
    head: Option<NonNull<Node>>,
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
        self.head.map(NonNull::cast)
    }

    /// Puts `block` on the list.
    ///
    /// # Safety
    ///
    /// - `block` is valid for writes of a pointer and aligned to a pointer;
    /// - it is not on any list and nothing else uses it until it is popped.
    #[inline(always)]
    pub unsafe fn push(&mut self, block: NonNull<u8>) {
        let node = block.cast::<Node>();
        // SAFETY: the caller hands over a pointer-sized, pointer-aligned block nobody else uses.
        unsafe { node.as_ptr().write(Node { next: self.head }) };
        self.head = Some(node);
    }

    /// Takes the newest block off the list.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<NonNull<u8>> {
        let node = self.head?;
        // SAFETY: every node on the list was pushed with `push`'s guarantees and is still owned by
        // the list, so its link word is valid to read.
        self.head = unsafe { node.as_ptr().read().next };
        Some(node.cast())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_lifo_order() {
        let mut blocks = [[0usize; 2]; 3];
        // Every pointer derives from one raw base, so none invalidates another.
        let base = blocks.as_mut_ptr();
        // SAFETY: index < 3, inside the array.
        let block = |i: usize| NonNull::new(unsafe { base.add(i) }).unwrap().cast::<u8>();
        let mut l = FreeList::new();
        assert!(l.pop().is_none());
        for i in 0..3 {
            // SAFETY: each block is pointer-aligned, two words long and used by nothing else.
            unsafe { l.push(block(i)) };
        }
        let third = block(2);
        assert_eq!(l.peek(), Some(third));
        assert_eq!(l.pop(), Some(third));
        assert!(l.pop().is_some() && l.pop().is_some());
        assert!(l.pop().is_none() && l.is_empty());
    }
}
