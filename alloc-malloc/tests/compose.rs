//! The composable-allocator paper's example, built from our layers, under the whole
//! conformance suite:
//!
//! ```text
//! paper:  mmap_heap :: buddy(spinlock, [64 KiB, MAX)) :: slab(classes, [0, 64 KiB)) :: tail_chksum(xor) :: malloc_socket
//! ours:   Locked<SpinLock> ( Header<canary> ( BySize<64 KiB> ( SegregatedHeap, SpanHeap ) ) )
//! ```
//!
//! The OS layer is each heap's `MmapSource`, the span heap stands in for the buddy layer (best
//! fit with coalescing), the segregated bins for the slab, `Header` with a canary for the xor
//! tail checksum, and `Locked` for the spin lock; `alloc-malloc` is the socket.

use alloc_core::compose::{BySize, Counted, Fallback, Header};
use alloc_core::{Abort, Counting, Limited, Locked, MmapSource, Owns, SizeOf, SpinLock};
use alloc_segregated::SegregatedHeap;
use alloc_span::SpanHeap;
use conformance::{Meter, SharedSubject, Subject};
use core::alloc::Layout;
use core::ptr::NonNull;

type Source = Limited<MmapSource>;
type Paper = Locked<
    Counted<Header<BySize<SegregatedHeap<Source>, SpanHeap<Source>, { 64 << 10 }>, Abort, true>, Counting>,
    SpinLock,
>;

fn paper(budget: usize, meter: &'static Meter) -> Paper {
    let small = SegregatedHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
    let large = SpanHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
    Locked::new(Counted::new(Header::new(BySize::new(small, large))))
}

struct PaperExample;

impl Subject for PaperExample {
    type Alloc = Paper;
    /// The span heap's first arena (4 MiB) in each half of the budget.
    const MIN_BUDGET: usize = 16 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Paper {
        paper(budget, meter)
    }
}

// Usable sizes through the header (found through `UsableSize` down the composition): the
// introspection property writes every usable byte, so a usable size that reached into the
// canary would abort at the free.
conformance::suite!(paper_example: PaperExample, sync, global, stats, introspect, trim);

/// `BySize` alone, with a limit that is no class size (1000 bytes: blocks of the 1024-byte
/// class report 1000 usable bytes so a free with their length still routes to the small side).
type Small = SegregatedHeap<Source, Abort, Counting>;
type Large = SpanHeap<Source, Abort, Counting>;
type Routed = Locked<BySize<Small, Large, 1000>, SpinLock>;

struct SegregateAlone;

impl Subject for SegregateAlone {
    type Alloc = Routed;
    const MIN_BUDGET: usize = 16 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Routed {
        let small = SegregatedHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
        let large = SpanHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
        Locked::new(BySize::new(small, large))
    }
}

impl SharedSubject for SegregateAlone {
    fn live_bytes(heap: &Routed) -> usize {
        let h = heap.lock();
        h.large.counters().get().bytes_live + h.small.counters().get().bytes_live
    }
}

conformance::suite!(segregate_alone: SegregateAlone, sync, global, trim);

/// `Fallback` alone: the segregated bins over a 1 MiB budget first, the span heap when they run
/// out, so the suite's blocks come from both layers and every free is routed by `Owns`.
type TwoTier = Locked<Fallback<Small, Large>, SpinLock>;

struct FallbackAlone;

impl Subject for FallbackAlone {
    type Alloc = TwoTier;
    const MIN_BUDGET: usize = 16 << 20;
    fn make(budget: usize, meter: &'static Meter) -> TwoTier {
        let first = SegregatedHeap::new(Limited::new(MmapSource::new(), budget.min(1 << 20)).metered(meter));
        let second = SpanHeap::new(Limited::new(MmapSource::new(), budget).metered(meter));
        Locked::new(Fallback::new(first, second))
    }
}

impl SharedSubject for FallbackAlone {
    fn live_bytes(heap: &TwoTier) -> usize {
        let h = heap.lock();
        h.secondary.counters().get().bytes_live + h.primary.counters().get().bytes_live
    }
}

conformance::suite!(fallback_alone: FallbackAlone, sync, global, trim);

/// Both layers of the fallback really serve: a mebibyte of small blocks fills the first.
#[test]
fn the_fallback_serves_from_both_layers_and_frees_to_the_owner() {
    let heap = FallbackAlone::new();
    let l = Layout::from_size_align(4000, 8).unwrap();
    let blocks: Vec<_> =
        (0..600).map(|_| allocator_api2::alloc::Allocator::allocate(&&heap, l).unwrap().cast::<u8>()).collect();
    let from_first = blocks.iter().filter(|&&p| heap.lock().primary.owns(p)).count();
    let from_second = blocks.iter().filter(|&&p| heap.lock().secondary.owns(p)).count();
    assert!(from_first > 0 && from_second > 0, "first {from_first}, second {from_second}");
    assert_eq!(from_first + from_second, blocks.len());
    for p in blocks {
        // SAFETY: each block is live, freed once with its layout.
        unsafe { allocator_api2::alloc::Allocator::deallocate(&&heap, p, l) };
    }
    assert_eq!(alloc_core::Validate::validate(&heap), Ok(()));
}

#[test]
fn a_block_s_size_comes_back_from_its_address_on_both_sides_of_the_limit() {
    let heap = paper(1 << 30, conformance::new_meter());
    for size in [1, 100, 64 << 10, (64 << 10) + 1, 1 << 20] {
        let l = alloc_core::Layout::from_size_align(size, 8).unwrap();
        let p = allocator_api2::alloc::Allocator::allocate(&&heap, l).unwrap().cast::<u8>();
        // SAFETY: a live block of the heap.
        let found = unsafe { heap.lock().size_of(p) }.expect("a live block");
        assert_eq!(found.size(), size);
        // SAFETY: freed once.
        unsafe { allocator_api2::alloc::Allocator::deallocate(&&heap, p, found) };
    }
}

/// A composition of the workspace's layers is a C-socket backend as it is (a preset is then one
/// line in `presets.rs`'s table): blocks come back with their layout from the address alone, the
/// usable size is exact, and an address the composition never gave out is named as foreign.
#[test]
fn a_composed_layer_serves_the_c_socket_through_the_blanket_backend() {
    use alloc_core::ErrorKind;
    use alloc_malloc::presets::{names, Backend};
    fn serve(b: &dyn Backend) {
        for size in [24, 4000, 100 << 10] {
            let layout = Layout::from_size_align(size, 16).unwrap();
            let p = b.alloc(layout, true).expect("memory");
            // SAFETY: `p` is live with `layout`; every byte written is inside it.
            unsafe {
                assert_eq!(b.layout_of(p).map(|l| l.size()), Some(size), "size from the address");
                assert_eq!(b.usable(p, layout), size);
                p.as_ptr().write_bytes(0xee, size);
                let q = b.realloc(p, layout, Layout::from_size_align(size * 2, 16).unwrap()).expect("memory");
                assert!(std::slice::from_raw_parts(q.as_ptr(), size).iter().all(|&x| x == 0xee));
                b.free(q, Layout::from_size_align(size * 2, 16).unwrap());
            }
        }
        let foreign = NonNull::from(&mut [0u64; 4][1]).cast::<u8>();
        assert_eq!(b.misuse(foreign).kind, ErrorKind::ForeignPointer);
    }
    static PAPER: std::sync::LazyLock<Paper> = std::sync::LazyLock::new(|| paper(1 << 30, conformance::new_meter()));
    serve(&*PAPER);
    assert_eq!(names(), ["general", "pool", "segregated", "hardened", "span"]);
}
