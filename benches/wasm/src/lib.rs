//! One wasm module per allocator: the same workload (talc's wasm benchmark's shape: random sizes
//! and alignments, a mix of allocate, reallocate and free over a table of live blocks) with the
//! allocator chosen by feature as `#[global_allocator]`. run.mjs times `bench` in V8 and reads
//! `memory.size`; the `null` build is the code-size baseline.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};

#[cfg(any(feature = "ours", feature = "ours-small"))]
#[global_allocator]
static A: alloc_segregated::WasmGlobal =
    alloc_segregated::WasmGlobal::new(alloc_segregated::SegregatedHeap::new(alloc_core::WasmSource::new()));

#[cfg(feature = "talc")]
#[global_allocator]
// SAFETY: the module is single-threaded wasm.
static A: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

#[cfg(feature = "rlsf")]
#[global_allocator]
static A: rlsf::SmallGlobalTlsf = rlsf::SmallGlobalTlsf::new();

#[cfg(feature = "lol_alloc")]
#[global_allocator]
// SAFETY: the module is single-threaded wasm.
static A: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

#[cfg(feature = "dlmalloc")]
#[global_allocator]
static A: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(feature = "wee_alloc")]
#[global_allocator]
static A: wee_alloc::WeeAlloc<'static> = wee_alloc::WeeAlloc::INIT;

#[cfg(feature = "null")]
extern "C" {
    fn host_alloc(size: usize, align: usize) -> *mut u8;
    fn host_free(ptr: *mut u8, size: usize, align: usize);
    fn host_realloc(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8;
}
#[cfg(feature = "null")]
struct Null;
// SAFETY: the null build is only measured, never run.
#[cfg(feature = "null")]
unsafe impl GlobalAlloc for Null {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: see above.
        unsafe { host_alloc(l.size(), l.align()) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: see above.
        unsafe { host_free(p, l.size(), l.align()) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: see above.
        unsafe { host_realloc(p, l.size(), l.align(), n) }
    }
}
#[cfg(feature = "null")]
#[global_allocator]
static A: Null = Null;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

const SLOTS: usize = 1024;
static mut LIVE: [(usize, usize, usize); SLOTS] = [(0, 0, 0); SLOTS];

struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    /// Sizes: mostly small, a tail up to 16 KiB (as wasm programs' strings and vectors).
    fn size(&mut self) -> usize {
        let r = self.next();
        match r % 16 {
            0 => 1 + (r >> 8) as usize % 16384,
            1..=3 => 1 + (r >> 8) as usize % 1024,
            _ => 1 + (r >> 8) as usize % 128,
        }
    }
    fn align(&mut self) -> usize {
        1 << (self.next() % 7) // 1 to 64
    }
}

/// Runs `actions` allocate / reallocate / free actions over 1,024 slots; returns a checksum of
/// the addresses (so nothing is optimised away) or 0 when an allocation failed.
#[no_mangle]
pub extern "C" fn bench(actions: u32, seed: u32) -> u32 {
    let mut rng = Rng(seed | 1);
    let mut sum = 0u32;
    // SAFETY: single-threaded; the table is only touched here.
    let live = unsafe { &mut *core::ptr::addr_of_mut!(LIVE) };
    for _ in 0..actions {
        let i = rng.next() as usize % SLOTS;
        let (p, size, align) = live[i];
        // SAFETY: every block in the table is live with the recorded layout.
        unsafe {
            if p == 0 {
                let (s, a) = (rng.size(), rng.align());
                let q = A.alloc(Layout::from_size_align_unchecked(s, a));
                if q.is_null() {
                    return 0;
                }
                q.write(1);
                live[i] = (q as usize, s, a);
                sum = sum.wrapping_add(q as u32);
            } else if rng.next() % 4 == 0 {
                let s = rng.size();
                let q = A.realloc(p as *mut u8, Layout::from_size_align_unchecked(size, align), s);
                if q.is_null() {
                    return 0;
                }
                live[i] = (q as usize, s, align);
                sum = sum.wrapping_add(q as u32);
            } else {
                A.dealloc(p as *mut u8, Layout::from_size_align_unchecked(size, align));
                live[i] = (0, 0, 0);
            }
        }
    }
    sum | 1
}

/// Frees every block still in the table.
#[no_mangle]
pub extern "C" fn clear() {
    // SAFETY: single-threaded; every block in the table is live with the recorded layout.
    unsafe {
        let live = &mut *core::ptr::addr_of_mut!(LIVE);
        for slot in live.iter_mut() {
            if slot.0 != 0 {
                A.dealloc(slot.0 as *mut u8, Layout::from_size_align_unchecked(slot.1, slot.2));
                *slot = (0, 0, 0);
            }
        }
    }
}
