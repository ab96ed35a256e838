//! What alloc-span promises beyond the common contract: best fit, coalescing, in-place resizing,
//! scavenging by limit, by age and on demand, zero pages not zeroed again, huge blocks.

use alloc_core::{Allocator, Count, Counting, ErrorKind, Layout, Limited, MmapSource};
use alloc_span::{Span, SpanConfig};
use conformance::resident_pages;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

const PAGE: usize = 4096;

fn pages(n: usize) -> Layout {
    Layout::from_size_align(n * PAGE, 8).unwrap()
}

type Heap = Span<MmapSource, Count, Counting>;

/// Transparent huge pages off: a write into one 4 KiB page (the arena's page map, a neighbouring
/// block) would make the whole 2 MiB around it resident, and these tests count resident pages.
const BASE: SpanConfig = SpanConfig { huge_pages: false, ..SpanConfig::DEFAULT };

fn heap() -> Heap {
    Span::with_config(MmapSource::new(), BASE)
}

fn heap_with(config: SpanConfig) -> Heap {
    Span::with_config(MmapSource::new(), config)
}

fn alloc(h: &Heap, l: Layout) -> NonNull<u8> {
    (&h).allocate(l).expect("memory").cast()
}

fn free(h: &Heap, p: NonNull<u8>, l: Layout) {
    // SAFETY: every caller frees a live block with its layout.
    unsafe { (&h).deallocate(p, l) }
}

fn touch(p: NonNull<u8>, len: usize) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: within a live block of `len` bytes.
        unsafe { p.as_ptr().add(off).write_volatile(1) };
    }
}

#[test]
fn the_smallest_free_span_that_fits_is_taken() {
    let h = heap();
    // Free spans of 10, 5 and 8 pages, kept apart by live one-page blocks.
    let mut holes = Vec::new();
    for n in [10, 5, 8] {
        holes.push((alloc(&h, pages(n)), n));
        let _fence = alloc(&h, pages(1));
    }
    for &(p, n) in &holes {
        free(&h, p, pages(n));
    }
    assert_eq!(alloc(&h, pages(5)), holes[1].0, "5 pages go to the 5-page span");
    assert_eq!(alloc(&h, pages(7)), holes[2].0, "7 pages go to the 8-page span, not the 10-page one");
    assert_eq!(alloc(&h, pages(9)), holes[0].0);
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn an_aligned_hole_of_exactly_the_size_is_reused() {
    // Segments of a pool: 4 MiB at 4 MiB alignment. One freed between two live ones leaves a
    // free span of exactly 4 MiB at an aligned address, which the next segment must reuse rather
    // than map more (a span sure to fit would need 8 MiB less a page). One arena holds all three,
    // so `b` lies between `a` and `c` wherever the system places the mapping.
    let h = heap_with(SpanConfig { first_arena: 64 << 20, ..BASE });
    let seg = Layout::from_size_align(4 << 20, 4 << 20).unwrap();
    let (a, b, c) = (alloc(&h, seg), alloc(&h, seg), alloc(&h, seg));
    let _fence = alloc(&h, pages(1));
    free(&h, b, seg);
    let mapped = h.stats().bytes_mapped;
    for _ in 0..100 {
        let again = alloc(&h, seg);
        assert_eq!(again, b, "the aligned hole was not reused");
        free(&h, again, seg);
    }
    assert_eq!(h.stats().bytes_mapped, mapped);
    // A hole that is big enough but misaligned is not taken for an aligned block.
    free(&h, a, seg);
    free(&h, c, seg);
    let big = Layout::from_size_align(5 << 20, 2 << 20).unwrap();
    let p = alloc(&h, big);
    assert_eq!(p.as_ptr() as usize % (2 << 20), 0);
    free(&h, p, big);
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn freed_neighbours_coalesce_into_one_span() {
    let h = heap();
    let (a, b, c) = (alloc(&h, pages(3)), alloc(&h, pages(4)), alloc(&h, pages(5)));
    let _fence = alloc(&h, pages(1));
    let before = h.span_stats().free_spans;
    free(&h, a, pages(3));
    free(&h, c, pages(5));
    assert_eq!(h.span_stats().free_spans, before + 2);
    free(&h, b, pages(4));
    assert_eq!(h.span_stats().free_spans, before + 1, "a, b and c merged");
    assert_eq!(alloc(&h, pages(12)), a, "the merged span serves a block of all three");
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn a_block_grows_into_its_free_neighbour_and_shrinks_in_place() {
    let h = heap();
    let a = alloc(&h, pages(4));
    let b = alloc(&h, pages(4));
    let _fence = alloc(&h, pages(1));
    free(&h, b, pages(4));
    touch(a, 4 * PAGE);
    // SAFETY: a is live with layout pages(4); the new layouts are larger, then smaller.
    unsafe {
        let g = (&h).grow(a, pages(4), pages(7)).unwrap();
        assert_eq!(g.cast::<u8>(), a, "grew into the free neighbour");
        assert_eq!(g.len(), 7 * PAGE);
        let s = (&h).shrink(a, pages(7), pages(2)).unwrap();
        assert_eq!(s.cast::<u8>(), a, "shrank in place");
    }
    // The tail given back serves the next block.
    assert_eq!(alloc(&h, pages(6)).as_ptr() as usize, a.as_ptr() as usize + 2 * PAGE);
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn scavenge_returns_free_pages_and_their_reuse_writes_no_zeroes() {
    let mut h = heap();
    let l = Layout::from_size_align(8 << 20, 64).unwrap();
    let p = alloc(&h, l);
    touch(p, 8 << 20);
    assert!(resident_pages(p, 8 << 20) > 1000);
    free(&h, p, l);
    // Kept resident for reuse (under the 64 MiB limit, younger than the delay).
    assert!(h.span_stats().idle >= 8 << 20);
    assert!(h.trim() >= 8 << 20);
    let s = h.span_stats();
    assert_eq!(s.idle, 0);
    // The arena was left empty, so scavenge unmapped it: allocate anew and look at the pages.
    let q = (&h).allocate_zeroed(l).unwrap().cast::<u8>();
    assert_eq!(resident_pages(q, 8 << 20), 0, "zeroed memory over clean pages was written");
    touch(q, 8 << 20);
    free(&h, q, l);
    // Scavenged without unmapping (another block keeps the arena): the pages come back zero
    // and untouched.
    let keep = alloc(&h, pages(1));
    let r = alloc(&h, l);
    touch(r, 8 << 20);
    free(&h, r, l);
    h.trim();
    assert_eq!(resident_pages(r, 8 << 20), 0);
    let z = (&h).allocate_zeroed(l).unwrap().cast::<u8>();
    assert_eq!(z, r, "the same pages are reused");
    assert_eq!(resident_pages(z, 8 << 20), 0, "clean pages were zeroed again");
    // SAFETY: a live block of 8 MiB.
    assert_eq!(unsafe { *z.as_ptr().add(12345) }, 0);
    free(&h, z, l);
    free(&h, keep, pages(1));
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn free_memory_above_the_limit_goes_back_oldest_first() {
    let h = heap_with(SpanConfig { retain: 4 << 20, ..BASE });
    let l = Layout::from_size_align(4 << 20, 8).unwrap();
    let blocks: Vec<_> = (0..4).map(|_| alloc(&h, l)).collect();
    for &b in &blocks {
        touch(b, 4 << 20);
    }
    for &b in &blocks {
        free(&h, b, l);
    }
    let s = h.span_stats();
    assert!(s.idle <= 4 << 20, "{s:?}");
    assert!(s.scavenged >= 12 << 20, "{s:?}");
    // The first freed block is the oldest: it went back first.
    assert_eq!(resident_pages(blocks[0], 4 << 20), 0);
    assert_eq!(h.validate(), Ok(()));
}

/// Two 2 MiB blocks with every page touched and a one-page block after them (so the two do not
/// merge with the heap's free tail), the first one freed: `(first, second, their layout)`.
fn two_touched_blocks_one_freed(h: &Heap) -> (NonNull<u8>, NonNull<u8>, Layout) {
    let l = Layout::from_size_align(2 << 20, 8).unwrap();
    let a = alloc(h, l);
    let b = alloc(h, l);
    let _fence = alloc(h, pages(1));
    touch(a, 2 << 20);
    touch(b, 2 << 20);
    free(h, a, l);
    (a, b, l)
}

static NOW: AtomicU64 = AtomicU64::new(1);

fn test_clock() -> Option<u64> {
    Some(NOW.load(Ordering::Relaxed))
}

#[test]
fn pages_free_longer_than_the_delay_go_back() {
    let h = heap_with(SpanConfig { delay_ns: 1_000, clock: test_clock, ..BASE });
    let (a, b, l) = two_touched_blocks_one_freed(&h);
    assert!(resident_pages(a, 2 << 20) > 0, "young free pages are kept");
    NOW.store(5_000, Ordering::Relaxed);
    // The next free looks at ages: `a` has been free for longer than the delay.
    free(&h, b, l);
    assert_eq!(resident_pages(a, 2 << 20), 0, "old free pages went back to the OS");
    assert!(resident_pages(b, 2 << 20) > 0, "the block freed just now is kept");
    assert_eq!(h.validate(), Ok(()));
}

static NOW_EXACT: AtomicU64 = AtomicU64::new(1);

fn exact_clock() -> Option<u64> {
    Some(NOW_EXACT.load(Ordering::Relaxed))
}

/// Free for exactly the delay is old enough: the pages go back.
#[test]
fn pages_free_for_exactly_the_delay_go_back() {
    let h = heap_with(SpanConfig { delay_ns: 1_000, clock: exact_clock, ..BASE });
    let (a, b, l) = two_touched_blocks_one_freed(&h);
    NOW_EXACT.store(1 + 1_000, Ordering::Relaxed);
    free(&h, b, l);
    assert_eq!(resident_pages(a, 2 << 20), 0, "free for exactly the delay: given back");
    assert_eq!(h.validate(), Ok(()));
}

/// The bytes counted as scavenged are the dirty pages given back, no more: a free span of
/// dirty pages among clean ones goes back one run of dirty pages at a time.
#[test]
fn scavenged_bytes_are_the_dirty_pages_given_back() {
    let mut h = heap();
    let _keep = alloc(&h, pages(1));
    let a = alloc(&h, pages(4));
    let fence = alloc(&h, pages(1));
    touch(a, 4 * 4096);
    touch(fence, 4096);
    free(&h, a, pages(4));
    free(&h, fence, pages(1));
    // One free span: five dirty pages, then the arena's clean rest.
    let before = h.span_stats().scavenged;
    h.trim();
    assert_eq!(h.span_stats().scavenged - before, 5 * 4096, "{:?}", h.span_stats());
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn huge_blocks_have_their_own_mapping() {
    let h = heap_with(SpanConfig { huge: 8 << 20, ..BASE });
    let l = Layout::from_size_align(16 << 20, 4096).unwrap();
    let before = h.span_stats().mapped;
    let p = alloc(&h, l);
    touch(p, 16 << 20);
    let s = h.span_stats();
    assert_eq!(s.huge_spans, 1);
    assert!(s.mapped >= before + (16 << 20));
    assert_eq!(h.size_of(p), Some(l));
    free(&h, p, l);
    let s = h.span_stats();
    assert_eq!((s.huge_spans, s.live_spans), (0, 0));
    // What stays mapped is the heap's own metadata (the arena index table, record pools).
    assert!(s.mapped < before + (2 << 20), "the mapping went back: {s:?}");
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn a_gibibyte_calloc_leaves_its_pages_untouched() {
    for heap in [heap(), heap_with(SpanConfig { huge: usize::MAX, ..BASE })] {
        let l = Layout::from_size_align(1 << 30, 16).unwrap();
        let p = (&heap).allocate_zeroed(l).unwrap().cast::<u8>();
        assert!(resident_pages(p, 1 << 30) < 16, "fresh zeroed memory was written");
        free(&heap, p, l);
        assert_eq!(heap.validate(), Ok(()));
    }
}

#[test]
fn out_of_memory_fails_cleanly_and_the_heap_keeps_serving() {
    let h: Span<Limited<MmapSource>> = Span::with_source(Limited::new(MmapSource::new(), 32 << 20));
    let big = Layout::from_size_align(24 << 20, 8).unwrap();
    let p = (&h).allocate(big).unwrap();
    assert!((&h).allocate(big).is_err(), "a second 24 MiB block exceeds the 32 MiB budget");
    let small = (&h).allocate(pages(3)).expect("small blocks still fit");
    // SAFETY: both live with these layouts.
    unsafe {
        (&h).deallocate(p.cast(), big);
        (&h).deallocate(small.cast(), pages(3));
    }
    assert!((&h).allocate(big).is_ok(), "after the free the large block fits again");
}

#[test]
fn misuse_is_reported_with_the_address() {
    let h = heap();
    let l = pages(3);
    let a = alloc(&h, l);
    let b = alloc(&h, l);
    let _fence = alloc(&h, pages(1));
    let local = 0u64;
    let cases: [(NonNull<u8>, Layout, ErrorKind); 4] = [
        // SAFETY: one page into a three-page block.
        (unsafe { a.add(PAGE) }, l, ErrorKind::InteriorPointer),
        (NonNull::from(&local).cast(), l, ErrorKind::ForeignPointer),
        (a, pages(7), ErrorKind::WrongLayout),
        (a, Layout::from_size_align(3 * PAGE, 64).unwrap(), ErrorKind::WrongLayout),
    ];
    for (i, &(p, layout, kind)) in cases.iter().enumerate() {
        free(&h, p, layout);
        let e = h.last_error().unwrap();
        assert_eq!((e.kind, e.addr, h.errors_detected()), (kind, p.as_ptr() as usize, i + 1));
    }
    free(&h, a, l);
    free(&h, a, l);
    assert_eq!(h.last_error().unwrap().kind, ErrorKind::DoubleFree);
    // Merged with its free neighbour, `a` is inside free pages: still a double free.
    free(&h, b, l);
    free(&h, a, l);
    assert_eq!(h.last_error().unwrap().kind, ErrorKind::DoubleFree);
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn many_live_spans_stay_consistent() {
    let h = heap();
    let mut live = Vec::new();
    let mut x = 7u64;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if !live.is_empty() && x.is_multiple_of(3) {
            let (p, l) = live.swap_remove((x >> 8) as usize % live.len());
            free(&h, p, l);
        } else {
            let l = pages(1 + (x >> 20) as usize % 300);
            live.push((alloc(&h, l), l));
        }
        if i % 5000 == 0 {
            assert_eq!(h.validate(), Ok(()));
        }
    }
    for (p, l) in live {
        free(&h, p, l);
    }
    assert_eq!(h.validate(), Ok(()));
    assert_eq!(h.span_stats().live_spans, 0);
}

/// The statistics against what is known from outside: bytes in use are the live spans' pages
/// plus the huge blocks, and mapped bytes are what the page source was asked for (counted by a
/// meter on the source), arenas, huge blocks and the heap's own records together.
#[test]
fn span_stats_agree_with_the_live_blocks_and_the_source() {
    static METER: alloc_core::Meter = alloc_core::Meter::new();
    let config = SpanConfig { huge: 1 << 20, ..BASE };
    let h: Span<Limited<MmapSource>, Count, Counting> =
        Span::with_config(Limited::new(MmapSource::new(), 1 << 30).metered(&METER), config);
    let huge = Layout::from_size_align((2 << 20) + 100, 8).unwrap();
    let blocks = [(alloc_on(&h, pages(3)), pages(3)), (alloc_on(&h, pages(10)), pages(10)), (alloc_on(&h, huge), huge)];
    let s = h.span_stats();
    assert_eq!((s.live_spans, s.huge_spans), (3, 1), "live spans count the huge one");
    assert_eq!(s.mapped, METER.mapped(), "mapped bytes are what the source mapped");
    let with_huge = s.in_use;
    for (p, l) in blocks.into_iter().rev() {
        // SAFETY: live blocks with their layouts.
        unsafe { (&h).deallocate(p, l) };
        if l == huge {
            let s = h.span_stats();
            assert_eq!(s.in_use, 13 * PAGE, "the two spans' pages");
            assert!(with_huge - s.in_use >= huge.size(), "the huge block's bytes: {with_huge}");
            assert_eq!(s.mapped, METER.mapped(), "after the huge block went back");
        }
    }
    let s = h.span_stats();
    assert_eq!((s.in_use, s.live_spans, s.huge_spans), (0, 0, 0));
    assert_eq!(s.mapped, METER.mapped(), "after the huge block went back");
    assert!(s.idle + s.released >= 13 * PAGE, "the freed spans' pages are idle or released: {s:?}");
}

fn alloc_on<S: alloc_core::source::PageSource + alloc_core::source::Decommit>(
    h: &Span<S, Count, Counting>,
    l: Layout,
) -> NonNull<u8> {
    (&h).allocate(l).expect("memory").cast()
}

/// An alignment larger than a page taken from a half-clean (half scavenged) free span whose
/// skipped head is more than half of it: the head becomes a free span of its own, and both
/// parts' counts of clean pages must match the bitmap (the validator checks each).
#[test]
fn an_aligned_block_from_a_clean_span_splits_its_clean_pages_exactly() {
    let mut h = heap();
    let a = alloc(&h, pages(1));
    let start = a.as_ptr() as usize;
    // A 16-page boundary at least 40 pages on; the 16-page hole starts 12 pages before it, so
    // that boundary is the only one in the hole.
    let target = (start + 40 * PAGE).next_multiple_of(16 * PAGE);
    let hole_start = target - 12 * PAGE;
    let filler = pages((hole_start - start) / PAGE - 1);
    let f = alloc(&h, filler);
    assert_eq!(f.as_ptr() as usize, start + PAGE, "carved in address order");
    let g1 = alloc(&h, pages(8));
    let g2 = alloc(&h, pages(8));
    assert_eq!((g1.as_ptr() as usize, g2.as_ptr() as usize), (hole_start, hole_start + 8 * PAGE));
    let tail = alloc(&h, pages(8));
    // The hole's first half clean (scavenged), its second half dirty (just freed).
    free(&h, g1, pages(8));
    assert!(h.trim() >= 8 * PAGE);
    free(&h, g2, pages(8));
    assert_eq!(h.validate(), Ok(()));
    let aligned = Layout::from_size_align(PAGE, 16 * PAGE).unwrap();
    let b = alloc(&h, aligned);
    assert_eq!(b.as_ptr() as usize, target, "best fit: the hole, 12 of its 16 pages in");
    assert_eq!(h.validate(), Ok(()));
    for (p, l) in [(a, pages(1)), (f, filler), (b, aligned), (tail, pages(8))] {
        free(&h, p, l);
    }
    assert_eq!(h.validate(), Ok(()));
}

/// Each new arena doubles the last (up to `max_arena`), so a heap that grows to N bytes maps
/// about log2(N / first_arena) arenas, not N / first_arena.
#[test]
fn arenas_double_as_the_heap_grows() {
    let h = heap_with(SpanConfig { first_arena: 2 << 20, max_arena: 32 << 20, ..BASE });
    let l = pages(256);
    let blocks: Vec<_> = (0..24).map(|_| alloc(&h, l)).collect();
    let arenas = h.span_stats().arenas;
    assert!((3..=6).contains(&arenas), "{arenas} arenas for 24 MiB from 2 MiB doubling");
    for p in blocks {
        free(&h, p, l);
    }
}

/// A second free of a block right after a block in use: the address is where the in-use block
/// ends, and must be told as a double free of the freed one, not an interior pointer of its
/// neighbour.
#[test]
fn a_double_free_next_to_a_block_in_use_is_a_double_free() {
    let h = heap();
    let l = pages(2);
    let a = alloc(&h, l);
    let b = alloc(&h, l);
    let c = alloc(&h, l);
    free(&h, b, l);
    free(&h, b, l);
    let e = h.last_error().unwrap();
    assert_eq!((e.kind, e.addr), (ErrorKind::DoubleFree, b.as_ptr() as usize));
    free(&h, a, l);
    free(&h, c, l);
    assert_eq!(h.errors_detected(), 1);
    assert_eq!(h.validate(), Ok(()));
}

/// Below the retain limit freed pages stay resident for reuse; `trim` then returns every
/// free page, whole arenas included, and says how many bytes.
#[test]
fn freed_pages_stay_under_the_retain_limit_and_scavenge_counts_what_goes() {
    let mut h = heap_with(SpanConfig { retain: 1 << 20, delay_ns: u64::MAX, ..BASE });
    let small = pages(16);
    let p = alloc(&h, small);
    touch(p, 16 * PAGE);
    free(&h, p, small);
    let s = h.span_stats();
    assert_eq!(s.idle, 16 * PAGE, "16 dirty pages under a 1 MiB limit stay: {s:?}");
    let big = pages(2048);
    let q = alloc(&h, big);
    touch(q, 2048 * PAGE);
    free(&h, q, big);
    assert!(h.span_stats().idle <= 1 << 20, "over the limit, the oldest go back");
    let returned = h.trim();
    assert!(returned >= 8 << 20, "scavenge returned {returned} bytes of an 8 MiB arena left free");
    let s = h.span_stats();
    assert_eq!((s.idle, s.arenas), (0, 0));
}

/// The span heap as a page source for other layers (alloc-bump's chunks come from it): runs are
/// page-aligned, writable, zeroed when asked, and given back to the heap for reuse.
#[test]
fn span_source_hands_out_page_runs_and_takes_them_back() {
    use alloc_core::source::PageSource;
    let mut s = alloc_span::SpanSource::new();
    assert_eq!(s.page_size(), MmapSource::new().page_size());
    let a = s.map(3 * PAGE, PAGE).expect("a run");
    assert_eq!(a.as_ptr() as usize % PAGE, 0);
    touch(a, 3 * PAGE);
    let z = s.map_zeroed(2 * PAGE, PAGE).expect("a zeroed run");
    // SAFETY: a fresh run of two pages.
    assert!(unsafe { core::slice::from_raw_parts(z.as_ptr(), 2 * PAGE) }.iter().all(|&b| b == 0));
    assert!(s.map(PAGE, 2 * PAGE).is_none(), "no alignment above a page");
    // SAFETY: runs of this source with their sizes, given back once.
    unsafe {
        s.unmap(a, 3 * PAGE);
        s.unmap(z, 2 * PAGE);
    }
    assert_eq!(s.span().span_stats().in_use, 0);
    assert_eq!(s.map(3 * PAGE, PAGE), Some(a), "the freed run is reused");
}
