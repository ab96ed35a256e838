//! The composable-allocator paper's example, built from our layers, under the whole
//! conformance suite:
//!
//! ```text
//! paper:  mmap_heap :: buddy(spinlock, [64 KiB, MAX)) :: slab(classes, [0, 64 KiB)) :: tail_chksum(xor) :: malloc_socket
//! ours:   Locked<SpinLock> ( Header<canary> ( Segregate<64 KiB> ( SegregatedHeap, SpanHeap ) ) )
//! ```
//!
//! The OS layer is each heap's `MmapSource`, the span heap stands in for the buddy layer (best
//! fit with coalescing), the segregated bins for the slab, `Header` with a canary for the xor
//! tail checksum, and `Locked` for the spin lock; `alloc-malloc` is the socket.

use alloc_core::compose::{Counted, Header, Segregate};
use alloc_core::{Abort, Corruption, Counting, Limited, Locked, MmapSource, SizeOf, SpinLock, Stats};
use alloc_segregated::SegregatedHeap;
use alloc_span::SpanHeap;
use conformance::{Meter, SharedSubject, StatsSubject, Subject};

type Source = Limited<MmapSource>;
type Paper = Locked<
    Counted<Header<Segregate<SegregatedHeap<Source>, SpanHeap<Source>, { 64 << 10 }>, Abort, true>, Counting>,
    SpinLock,
>;

fn paper(budget: usize, meter: &'static Meter) -> Paper {
    let small = SegregatedHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
    let large = SpanHeap::new(Limited::new(MmapSource::new(), budget / 2).metered(meter));
    Locked::new(Counted::new(Header::new(Segregate::new(small, large))))
}

struct PaperExample;

impl Subject for PaperExample {
    type Alloc = Paper;
    /// The span heap's first arena (4 MiB) in each half of the budget.
    const MIN_BUDGET: usize = 16 << 20;
    fn make(budget: usize, meter: &'static Meter) -> Paper {
        paper(budget, meter)
    }
    fn validate(heap: &Paper) -> Option<Result<(), Corruption>> {
        let h = heap.lock();
        let s = h.inner().inner();
        Some(alloc_core::Validate::validate(&s.small).and_then(|()| alloc_core::Validate::validate(&s.large)))
    }
}

impl SharedSubject for PaperExample {
    fn live_bytes(heap: &Paper) -> usize {
        heap.lock().counters().get().bytes_live
    }
}

impl StatsSubject for PaperExample {
    fn stats(heap: &Paper) -> Stats {
        heap.lock().counters().get()
    }
}

conformance::suite!(paper_example: PaperExample, sync, global, stats);

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
