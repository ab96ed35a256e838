//! What alloc-segregated promises beyond the common contract.

use alloc_core::{Allocator, Count, Counting, ErrorKind, FixedSource, Layout, Limited, MmapSource};
use alloc_segregated::class::{class_of, class_size};
use alloc_segregated::Segregated;
use allocator_api2::vec::Vec;

type Capped = Segregated<Limited<MmapSource>, Count, Counting>;

fn capped(budget: usize) -> Capped {
    Segregated::with_source(Limited::new(MmapSource::new(), budget))
}

#[test]
fn a_mebibyte_buffer_reused_10000_times_stays_under_4_mib() {
    // The page source refuses past 4 MiB, so a leak fails the allocation itself.
    let heap = capped(4 << 20);
    let big = Layout::from_size_align(1 << 20, 16).unwrap();
    for i in 0..10_000u32 {
        let p = (&heap).allocate(big).expect("the 1 MiB buffer is reused, not leaked");
        // SAFETY: a live 1 MiB block.
        unsafe {
            p.cast::<u8>().as_ptr().write_bytes(i as u8, 1 << 20);
            (&heap).deallocate(p.cast(), big);
        }
        if i % 100 == 0 {
            // Growing buffers in between, the way a decoder or a string builder grows.
            let mut v: Vec<u8, _> = Vec::new_in(&heap);
            for j in 0..(300_000 + i as usize) {
                v.push(j as u8);
            }
            let mut s: Vec<u64, _> = Vec::new_in(&heap);
            s.extend(0..10_000u64);
        }
    }
    let stats = heap.stats();
    assert!(stats.peak_bytes_mapped < 4 << 20, "{stats:?}");
    assert_eq!(stats.bytes_live, 0);
}

#[test]
fn large_and_over_aligned_blocks_are_reused() {
    let heap = capped(8 << 20);
    for (size, align) in [(200, 1), (5000, 8), (100, 256), (64, 4096), (300_000, 16)] {
        let l = Layout::from_size_align(size, align).unwrap();
        let a = (&heap).allocate(l).unwrap();
        // SAFETY: live block with layout l.
        unsafe { (&heap).deallocate(a.cast(), l) };
        let b = (&heap).allocate(l).unwrap();
        assert_eq!(a.cast::<u8>(), b.cast::<u8>(), "{size}/{align} was not reused");
        // SAFETY: as above.
        unsafe { (&heap).deallocate(b.cast(), l) };
    }
}

#[test]
fn realloc_stays_in_place_within_the_class_and_at_the_top() {
    let heap = capped(8 << 20);
    let l = Layout::from_size_align(20, 4).unwrap();
    let p = (&heap).allocate(l).unwrap();
    assert_eq!(p.len(), class_size(class_of(20, 4)));
    // 20 -> 32 stays in the 32-byte class.
    // SAFETY: live block with layout l; 32 >= 20.
    let q = unsafe { (&heap).grow(p.cast(), l, Layout::from_size_align(32, 4).unwrap()) }.unwrap();
    assert_eq!(p.cast::<u8>(), q.cast::<u8>());
    if !cfg!(feature = "top-reuse") {
        return;
    }
    // A large block at the top of the run grows in place into the next class.
    let big = Layout::from_size_align(8192, 8).unwrap();
    let b = (&heap).allocate(big).unwrap();
    // SAFETY: live block with layout big.
    let c = unsafe { (&heap).grow(b.cast(), big, Layout::from_size_align(16384, 8).unwrap()) }.unwrap();
    assert_eq!(b.cast::<u8>(), c.cast::<u8>(), "the top block should grow in place");
}

#[test]
fn immediate_double_free_is_reported() {
    let mut heap = capped(1 << 20);
    let l = Layout::from_size_align(48, 8).unwrap();
    let p = (&heap).allocate(l).unwrap().cast::<u8>();
    // SAFETY: the first free is legitimate; the second is the misuse under test, which the Count
    // policy records and ignores without touching the list.
    unsafe {
        (&heap).deallocate(p, l);
        (&heap).deallocate(p, l);
    }
    let e = heap.heap().errors().last().expect("detected");
    assert_eq!((e.kind, e.addr), (ErrorKind::DoubleFree, p.as_ptr() as usize));
    // The list was not corrupted: two allocations get two different blocks.
    let a = (&heap).allocate(l).unwrap();
    let b = (&heap).allocate(l).unwrap();
    assert_ne!(a.cast::<u8>(), b.cast::<u8>());
}

/// A block of 4 to 32 KiB freed at the top of its run gives the top back; freed again, it lies at
/// or above the top, where no live block can be. Sizes at each class from a page up.
#[test]
fn double_free_of_a_block_given_back_to_the_top_is_reported() {
    for size in [4096, 6000, 8192, 16 << 10, 32 << 10] {
        let mut heap = capped(1 << 20);
        let l = Layout::from_size_align(size, 8).unwrap();
        let _below = (&heap).allocate(Layout::from_size_align(64, 8).unwrap()).unwrap();
        let p = (&heap).allocate(l).unwrap().cast::<u8>();
        // SAFETY: the first free is legitimate; the second is the misuse under test, which the
        // Count policy records and ignores.
        unsafe {
            (&heap).deallocate(p, l);
            (&heap).deallocate(p, l);
        }
        assert_eq!(heap.validate(), Ok(()), "{size} bytes");
        let e = heap.heap().errors().last();
        assert_eq!(e.map(|e| (e.kind, e.addr)), Some((ErrorKind::DoubleFree, p.as_ptr() as usize)), "{size} bytes");
        let a = (&heap).allocate(l).unwrap().cast::<u8>();
        let b = (&heap).allocate(l).unwrap().cast::<u8>();
        assert_ne!(a, b, "{size} bytes: the same block handed out twice");
    }
}

#[test]
fn misaligned_free_is_reported() {
    let mut heap = capped(1 << 20);
    let l = Layout::from_size_align(64, 8).unwrap();
    let p = (&heap).allocate(l).unwrap().cast::<u8>();
    // SAFETY: the misuse under test; Count records it and the heap ignores the call.
    unsafe { (&heap).deallocate(p.add(8), l) };
    let e = heap.heap().errors().last().expect("detected");
    assert_eq!((e.kind, e.addr), (ErrorKind::InteriorPointer, p.as_ptr() as usize + 8));
}

#[test]
fn runs_in_a_fixed_buffer_without_an_os() {
    let mut buf = vec![0u8; 256 << 10];
    let heap: Segregated<FixedSource<'_>> = Segregated::with_source(FixedSource::new(&mut buf));
    let mut v = Vec::new_in(&heap);
    for i in 0..10_000u32 {
        v.push(i);
    }
    assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 49_995_000);
    // The buffer is 256 KiB: a request beyond it fails cleanly.
    assert!((&heap).allocate(Layout::from_size_align(1 << 20, 8).unwrap()).is_err());
}

#[test]
#[cfg(feature = "run-list")]
fn dropping_the_heap_gives_every_run_back() {
    let source = Limited::new(MmapSource::new(), 64 << 20);
    {
        let heap: Segregated<&Limited<MmapSource>> = Segregated::with_source(&source);
        let mut v: Vec<u8, _> = Vec::new_in(&heap);
        v.resize(3 << 20, 7); // a dedicated run, grown through several classes
        for size in [16usize, 200, 5000, 70_000] {
            let l = Layout::from_size_align(size, 8).unwrap();
            for _ in 0..100 {
                // Left allocated on purpose: dropping the heap must reclaim it too.
                let _live = (&heap).allocate(l).unwrap();
            }
        }
    }
    assert_eq!(source.used(), 0, "runs left mapped after the heap was dropped");
}

#[test]
fn a_gibibyte_calloc_leaves_its_pages_untouched() {
    let heap = Segregated::new();
    let l = Layout::from_size_align(1 << 30, 16).unwrap();
    let p = (&heap).allocate_zeroed(l).expect("1 GiB of address space");
    let resident = conformance::resident_pages(p.cast(), 1 << 30);
    // Fresh pages from mmap are zero already: writing zeroes would make all 262,144 resident.
    assert!(resident < 16, "{resident} pages of a fresh zeroed gibibyte are resident");
    // SAFETY: live block with layout l.
    unsafe {
        assert_eq!(*p.cast::<u8>().as_ptr().add((1 << 30) - 1), 0);
        (&heap).deallocate(p.cast(), l);
    }
    // Reused, the block is dirty: zeroing it now is the allocator's job, and it must be zero.
    let p = (&heap).allocate(l).unwrap();
    // SAFETY: a live 1 GiB block; one byte per 16 MiB is dirtied, then the block is freed.
    unsafe {
        for i in (0..1 << 30).step_by(16 << 20) {
            *p.cast::<u8>().as_ptr().add(i) = 1;
        }
        (&heap).deallocate(p.cast(), l);
    }
    let q = (&heap).allocate_zeroed(l).unwrap();
    // Freed, the gibibyte was over the retain limit and went back to the OS, so its pages read as
    // zero: only its first page was zeroed again, and the rest stays untouched (counted before
    // the reads below, which map the zero page where they look).
    let resident = conformance::resident_pages(q.cast(), 1 << 30);
    assert!(resident < 16, "{resident} pages of a given-back zeroed gibibyte are resident");
    // SAFETY: as above.
    assert!((0..1usize << 30).step_by(16 << 20).all(|i| unsafe { *q.cast::<u8>().as_ptr().add(i) } == 0));
}

/// Resident pages of `blocks` (each `len` bytes).
fn resident(blocks: &[core::ptr::NonNull<u8>], len: usize) -> usize {
    blocks.iter().map(|&p| conformance::resident_pages(p, len)).sum()
}

#[test]
fn idle_large_blocks_above_the_retain_limit_go_back_to_the_os() {
    let heap = Segregated::new();
    let l = Layout::from_size_align(1 << 20, 16).unwrap();
    let page = 4096;
    let blocks: std::vec::Vec<_> = (0..96).map(|_| (&heap).allocate(l).unwrap().cast::<u8>()).collect();
    for &p in &blocks {
        // SAFETY: a live 1 MiB block.
        unsafe { p.as_ptr().write_bytes(7, 1 << 20) };
    }
    let touched = resident(&blocks, 1 << 20);
    assert!(touched >= 96 * 256, "only {touched} pages resident after writing every one");
    for &p in &blocks {
        // SAFETY: freed once, with its layout.
        unsafe { (&heap).deallocate(p, l) };
    }
    let mut heap = heap;
    let idle = heap.heap().idle_bytes();
    assert!(idle <= alloc_segregated::DEFAULT_RETAIN, "{idle} idle bytes kept");
    // 96 MiB were freed: above 64 MiB, blocks went back down to 32 MiB, each keeping its first
    // page (its link).
    let kept = resident(&blocks, 1 << 20) * page;
    assert!(kept <= idle + 96 * page, "{kept} bytes resident with {idle} idle");
    assert!(kept <= (64 << 20) + 96 * page, "{kept} bytes of 96 MiB freed are still resident");
    // trim gives back the rest.
    heap.heap().trim();
    assert_eq!(heap.heap().idle_bytes(), 0);
    assert!(resident(&blocks, 1 << 20) <= 96, "more than the first page of each block is resident");
    assert_eq!(heap.validate(), Ok(()));
    // The blocks serve again, whole.
    let again: std::vec::Vec<_> = (0..96).map(|_| (&heap).allocate(l).unwrap().cast::<u8>()).collect();
    for &p in &again {
        // SAFETY: a live 1 MiB block.
        unsafe { p.as_ptr().add((1 << 20) - 1).write(1) };
    }
    assert_eq!(heap.heap().idle_bytes(), 0);
}

#[test]
fn with_no_retain_a_large_block_goes_back_when_freed_and_small_ones_stay() {
    let mut heap = Segregated::new();
    heap.heap().set_retain(0);
    let big = Layout::from_size_align(256 << 10, 16).unwrap();
    let small = Layout::from_size_align(32 << 10, 16).unwrap();
    let (b, s) = ((&heap).allocate(big).unwrap().cast::<u8>(), (&heap).allocate(small).unwrap().cast::<u8>());
    let _fence = (&heap).allocate(small).unwrap();
    // SAFETY: live blocks of these sizes, written whole, then freed once.
    unsafe {
        b.as_ptr().write_bytes(1, 256 << 10);
        s.as_ptr().write_bytes(1, 32 << 10);
        (&heap).deallocate(b, big);
        (&heap).deallocate(s, small);
    }
    assert_eq!(heap.heap().idle_bytes(), 0);
    assert!(resident(&[b], 256 << 10) <= 1, "a freed 256 KiB block stayed resident");
    assert_eq!(resident(&[s], 32 << 10), 8, "a small block is not large: it stays");
    assert_eq!((&heap).allocate(big).unwrap().cast::<u8>(), b, "the returned block is reused");
}
