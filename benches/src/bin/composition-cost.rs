//! Does composing layers cost anything? The same allocator two ways: `BySize<64 KiB>` over
//! the segregated bins and the span heap, and a struct that holds both and routes with an `if`
//! written by hand. Run each under callgrind and compare instructions:
//!
//! ```sh
//! cargo build --release -p benches --bin composition-cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/composition-cost composed
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/composition-cost by-hand
//! ```

use alloc_core::compose::BySize;
use alloc_core::{AllocError, Layer, Layout, MmapSource};
use alloc_segregated::SegregatedHeap;
use alloc_span::SpanHeap;
use core::ptr::NonNull;
use std::hint::black_box;

const LIMIT: usize = 64 << 10;

/// The same routing, written by hand.
struct ByHand {
    small: SegregatedHeap<MmapSource>,
    large: SpanHeap<MmapSource>,
}

impl ByHand {
    #[inline(always)]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() <= LIMIT {
            self.small.allocate(layout)
        } else {
            self.large.allocate(layout)
        }
    }

    /// # Safety
    ///
    /// `ptr` is live with `layout`.
    #[inline(always)]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: routed to the layer that allocated it.
        unsafe {
            if layout.size() <= LIMIT {
                self.small.deallocate(ptr, layout)
            } else {
                self.large.deallocate(ptr, layout)
            }
        }
    }
}

fn sizes() -> impl Iterator<Item = Layout> {
    let mut x = 88172645463325252u64;
    (0..2_000_000).map(move |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = if i % 1000 == 0 { 100_000 } else { 16 + (x % 2000) as usize };
        Layout::from_size_align(size, 8).unwrap()
    })
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut live: Vec<(NonNull<u8>, Layout)> = Vec::with_capacity(64);
    match mode.as_str() {
        "composed" => {
            let mut h: BySize<SegregatedHeap<MmapSource>, SpanHeap<MmapSource>, LIMIT> =
                BySize::new(SegregatedHeap::new(MmapSource::new()), SpanHeap::new(MmapSource::new()));
            for l in sizes() {
                live.push((black_box(h.allocate(l).unwrap().cast()), l));
                if live.len() == 64 {
                    for (p, l) in live.drain(..) {
                        // SAFETY: live blocks of `h`, freed once.
                        unsafe { h.deallocate(p, l) };
                    }
                }
            }
        }
        "by-hand" => {
            let mut h =
                ByHand { small: SegregatedHeap::new(MmapSource::new()), large: SpanHeap::new(MmapSource::new()) };
            for l in sizes() {
                live.push((black_box(h.allocate(l).unwrap().cast()), l));
                if live.len() == 64 {
                    for (p, l) in live.drain(..) {
                        // SAFETY: live blocks of `h`, freed once.
                        unsafe { h.deallocate(p, l) };
                    }
                }
            }
        }
        _ => {
            eprintln!("usage: composition-cost composed|by-hand");
            std::process::exit(2);
        }
    }
}
