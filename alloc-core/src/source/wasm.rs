//! `memory.grow` on wasm32: the linear memory only grows, so runs are never returned to the
//! host; an unmapped run at the top of what this source grew is reused by the next `map`.

use super::PageSource;
use core::cell::Cell;
use core::ptr::NonNull;

const WASM_PAGE: usize = 65536;

/// The granule this source hands out: finer than the 64 KiB wasm page so small heaps stay small.
const GRANULE: usize = 4096;

/// Pages from the wasm linear memory through `memory.grow`.
#[derive(Debug, Default)]
pub struct WasmSource {
    /// Start of free space inside pages this source grew, up to `end`.
    top: Cell<usize>,
    /// End of the memory this source grew.
    end: Cell<usize>,
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
        let align = align.max(GRANULE);
        let mut start = crate::ptr::align_up(self.top.get(), align)?;
        if self.top.get() == 0 || start.checked_add(size)? > self.end.get() {
            let need = crate::ptr::align_up(size.checked_add(align)?, WASM_PAGE)? / WASM_PAGE;
            let old = core::arch::wasm32::memory_grow(0, need);
            if old == usize::MAX {
                return None;
            }
            let grown = old * WASM_PAGE;
            if grown != self.end.get() {
                // Someone else grew memory in between: start afresh at our new pages.
                self.top.set(grown);
            }
            self.end.set(grown + need * WASM_PAGE);
            start = crate::ptr::align_up(self.top.get(), align)?;
        }
        self.top.set(start + size);
        NonNull::new(start as *mut u8)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        if ptr.as_ptr() as usize + size == self.top.get() {
            self.top.set(ptr.as_ptr() as usize);
        }
    }

    fn maps_zeroed(&self) -> bool {
        // Fresh wasm pages are zero, but a run reused after unmap is not.
        false
    }
}
