//! `memory.grow` on wasm32: the linear memory only grows, so runs are never returned to the
//! host; an unmapped run at the top of what this source grew is reused by the next `map`.

use super::PageSource;
use core::cell::Cell;
use core::ptr::NonNull;

const WASM_PAGE: u64 = 65536;

/// The granule this source hands out: finer than the 64 KiB wasm page so small heaps stay small.
const GRANULE: usize = 4096;

/// Pages from the wasm linear memory through `memory.grow`.
#[derive(Debug, Default)]
pub struct WasmSource {
    /// Start of free space inside pages this source grew, up to `end`. 64-bit: a 32-bit memory
    /// grown to its full 4 GiB ends at 2^32, which a 32-bit `usize` cannot hold.
    top: Cell<u64>,
    /// End of the memory this source grew.
    end: Cell<u64>,
}

impl WasmSource {
    /// A source that has grown nothing yet.
    pub const fn new() -> Self {
        WasmSource { top: Cell::new(0), end: Cell::new(0) }
    }
}

// SAFETY: runs are carved from pages that `memory.grow` just added (and so belong to nobody
// else) or from the unused tail of earlier growth, aligned to at least the granule as the
// contract says; linear memory never shrinks.
unsafe impl PageSource for WasmSource {
    fn page_size(&self) -> usize {
        GRANULE
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        // In 64-bit arithmetic nothing below overflows: every value stays under 2^34.
        let (size, align) = (size as u64, align.max(GRANULE) as u64);
        let mut grew = false;
        loop {
            let start = (self.top.get() + align - 1) & !(align - 1);
            // Before the first growth `top` and `end` are 0: nothing fits (a zero-size run at
            // address 0 is refused by `NonNull::new`).
            if start + size <= self.end.get() {
                self.top.set(start + size);
                return NonNull::new(start as usize as *mut u8);
            }
            if grew {
                return None;
            }
            grew = true;
            // Enough whole wasm pages for `size` bytes at any alignment-`align` start in them
            // (more than the 65,536 a memory can have is refused by `memory.grow`).
            let need = (size + align).div_ceil(WASM_PAGE);
            let old = core::arch::wasm32::memory_grow(0, need.min(1 << 17) as usize);
            if old == usize::MAX {
                return None;
            }
            let grown = old as u64 * WASM_PAGE;
            if grown != self.end.get() {
                // Someone else grew memory in between: start afresh at our new pages.
                self.top.set(grown);
            }
            self.end.set(grown + need * WASM_PAGE);
        }
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        if ptr.as_ptr() as u64 + size as u64 == self.top.get() {
            self.top.set(ptr.as_ptr() as u64);
        }
    }

    fn maps_zeroed(&self) -> bool {
        // Fresh wasm pages are zero, but a run reused after unmap is not.
        false
    }
}
