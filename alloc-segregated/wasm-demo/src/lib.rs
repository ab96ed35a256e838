//! Exports a tiny allocator interface and an exercise over `alloc` collections; the host (the
//! test) drives them and checks the results in the module's linear memory.
#![no_std]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};

#[cfg(not(feature = "null-allocator"))]
#[global_allocator]
static HEAP: alloc_segregated::WasmGlobal =
    alloc_segregated::WasmGlobal::new(alloc_segregated::SegregatedHeap::new(alloc_core::WasmSource::new()));

// The baseline for measuring code size: an allocator whose every call goes to the host, so the
// optimiser keeps the rest of the module exactly as it is with the real allocator.
#[cfg(feature = "null-allocator")]
extern "C" {
    fn host_alloc(size: usize, align: usize) -> *mut u8;
    fn host_free(ptr: *mut u8, size: usize, align: usize);
    fn host_realloc(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8;
}
#[cfg(feature = "null-allocator")]
struct Null;
#[cfg(feature = "null-allocator")]
// SAFETY: the host is trusted to implement the GlobalAlloc contract (the module is only measured,
// never run).
unsafe impl GlobalAlloc for Null {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: see above.
        unsafe { host_alloc(l.size(), l.align()) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: see above.
        unsafe { host_free(p, l.size(), l.align()) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see above.
        unsafe { host_realloc(p, l.size(), l.align(), new_size) }
    }
}
#[cfg(feature = "null-allocator")]
#[global_allocator]
static HEAP: Null = Null;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap_or_else(|_| core::arch::wasm32::unreachable())
}

/// Allocates `size` bytes aligned to `align` through the global allocator (0 on failure).
#[no_mangle]
pub extern "C" fn seg_alloc(size: usize, align: usize) -> *mut u8 {
    // SAFETY: the host never asks for size 0.
    unsafe { HEAP.alloc(layout(size, align)) }
}

/// Frees a block from `seg_alloc` / `seg_realloc`.
///
/// # Safety
///
/// `ptr` is live from this module's allocator with this size and alignment.
#[no_mangle]
pub unsafe extern "C" fn seg_free(ptr: *mut u8, size: usize, align: usize) {
    // SAFETY: the caller's guarantee.
    unsafe { HEAP.dealloc(ptr, layout(size, align)) }
}

/// Resizes a block (0 on failure, the old block then stays live).
///
/// # Safety
///
/// `ptr` is live from this module's allocator with this size and alignment.
#[no_mangle]
pub unsafe extern "C" fn seg_realloc(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8 {
    // SAFETY: the caller's guarantee.
    unsafe { HEAP.realloc(ptr, layout(size, align), new_size) }
}

/// Builds collections of `n` items and returns a checksum the host recomputes.
#[no_mangle]
pub extern "C" fn exercise(n: u32) -> u32 {
    let mut v: Vec<u32> = Vec::new();
    let mut map = BTreeMap::new();
    let mut s = String::new();
    for i in 0..n {
        v.push(i.wrapping_mul(2_654_435_761));
        map.insert(i % 97, i);
        if i % 10 == 0 {
            s.push_str("wasm");
        }
    }
    v.sort_unstable();
    let mut sum = 0u32;
    for (i, x) in v.iter().enumerate() {
        sum = sum.wrapping_add(x ^ i as u32);
    }
    for (k, val) in &map {
        sum = sum.wrapping_add(k.wrapping_mul(*val));
    }
    sum.wrapping_add(s.len() as u32)
}
