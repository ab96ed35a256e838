//! What alloc-bump promises beyond the common contract.

use alloc_bump::{Bump, MAX_CHUNK, MIN_CHUNK};
use alloc_core::{Allocator, Layout, Limited, MmapSource};
use allocator_api2::vec::Vec;

fn limited(budget: usize) -> Bump<Limited<MmapSource>, alloc_core::Counting> {
    Bump::with_source(Limited::new(MmapSource::new(), budget))
}

#[test]
fn chunks_double_up_to_the_cap_and_never_run_away() {
    let bump = Bump::with_stats();
    // 64 MiB in 1 KiB pieces.
    for _ in 0..(64 << 10) {
        bump.alloc([0u8; 1024]);
    }
    let s = bump.stats();
    let b = bump.bump_stats();
    assert_eq!(s.bytes_live, 64 << 20);
    // Doubling from 4 KiB to 16 MiB, then 16 MiB chunks: capacity stays within 1.5x of use.
    assert!(b.capacity < (64 << 20) * 3 / 2, "capacity {} for 64 MiB live", b.capacity);
    assert!(s.peak_bytes_mapped == b.capacity);
    assert!(b.chunks >= (64 << 20) / MAX_CHUNK);
}

#[test]
fn a_huge_request_maps_what_it_needs_not_double() {
    let bump = Bump::with_stats();
    bump.alloc(1u8);
    let before = bump.bump_stats().capacity;
    let size = 200 << 20;
    let l = Layout::from_size_align(size, 8).unwrap();
    let p = (&bump).allocate(l).unwrap();
    let grew = bump.bump_stats().capacity - before;
    assert!(grew >= size && grew < size + 2 * 4096, "mapped {grew} bytes for a {size}-byte request");
    // The small-object chunk stays current: the next small block does not map anything.
    bump.alloc(2u8);
    assert_eq!(bump.bump_stats().capacity - before, grew);
    // Freeing the dedicated block unmaps its chunk.
    // SAFETY: p is live with layout l.
    unsafe { (&bump).deallocate(p.cast(), l) };
    assert_eq!(bump.bump_stats().capacity, before);
    assert!(bump.stats().bytes_returned >= size);
}

#[test]
fn a_megabyte_buffer_freed_in_a_loop_does_not_pile_up() {
    let bump = Bump::with_stats();
    let l = Layout::from_size_align(1 << 20, 16).unwrap();
    for _ in 0..1000 {
        let p = (&bump).allocate(l).unwrap();
        // SAFETY: live block of 1 MiB.
        unsafe {
            p.cast::<u8>().as_ptr().write_bytes(1, 1 << 20);
            (&bump).deallocate(p.cast(), l);
        }
    }
    assert!(bump.stats().bytes_mapped <= 2 << 20, "{:?}", bump.stats());
}

#[test]
fn the_newest_block_grows_in_place() {
    let bump = Bump::with_stats();
    let mut v: Vec<u8, _> = Vec::with_capacity_in(16, &bump);
    v.extend_from_slice(&[7; 16]);
    let first = v.as_ptr();
    for _ in 0..1000 {
        v.push(7);
    }
    assert_eq!(v.as_ptr(), first, "the vector moved although it was the newest block");
    assert!(v.iter().all(|&b| b == 7));
}

#[test]
fn lifo_frees_give_bytes_back() {
    let bump = Bump::with_stats();
    let l = Layout::from_size_align(64, 8).unwrap();
    let blocks: std::vec::Vec<_> = (0..10).map(|_| (&bump).allocate(l).unwrap()).collect();
    let used = bump.bump_stats().allocated;
    for b in blocks.iter().rev() {
        // SAFETY: each block is live with layout l.
        unsafe { (&bump).deallocate(b.cast(), l) };
    }
    assert_eq!(used, 640);
    assert_eq!(bump.bump_stats().allocated, 0);
    assert_eq!(bump.stats().bytes_live, 0);
}

#[test]
fn reset_keeps_one_chunk_and_reuses_it() {
    let mut bump = Bump::with_stats();
    for _ in 0..100_000 {
        bump.alloc(0u64);
    }
    let chunks = bump.bump_stats().chunks;
    assert!(chunks > 3);
    bump.reset();
    let after = bump.bump_stats();
    assert_eq!((after.chunks, after.allocated), (1, 0));
    let mapped = bump.stats().bytes_mapped;
    for _ in 0..1000 {
        bump.alloc(0u64);
    }
    assert_eq!(bump.stats().bytes_mapped, mapped, "reset's kept chunk should serve the next round");
}

#[test]
fn scope_frees_what_it_allocated_and_keeps_the_rest() {
    let mut bump = Bump::with_stats();
    let outer = bump.alloc(41u64) as *mut u64;
    let mapped = bump.stats().bytes_mapped;
    let n = bump.scope(|b| {
        for i in 0..200_000u64 {
            b.alloc(i);
        }
        b.alloc_slice_copy(&[0u8; 300_000]).len()
    });
    assert_eq!(n, 300_000);
    assert_eq!(bump.stats().bytes_mapped, mapped, "chunks made inside the scope are unmapped");
    assert_eq!(bump.stats().bytes_live, 8);
    // SAFETY: allocated before the scope, so the rewind left it alone.
    unsafe { *outer += 1 };
    // SAFETY: as above.
    assert_eq!(unsafe { *outer }, 42);
}

#[test]
fn alignment_above_a_page_is_honoured() {
    let bump = Bump::with_stats();
    for shift in 12..=22 {
        let l = Layout::from_size_align(100, 1 << shift).unwrap();
        let p = (&bump).allocate(l).unwrap();
        assert_eq!(p.cast::<u8>().as_ptr() as usize % (1 << shift), 0);
    }
}

#[test]
fn out_of_memory_keeps_the_region_usable() {
    let bump = limited(256 << 10);
    let mut n = 0;
    while bump.try_alloc([0u8; 4096]).is_ok() {
        n += 1;
    }
    assert!(n > 0 && n * 4096 <= 256 << 10);
    assert!(bump.try_alloc([0u8; 8192]).is_err());
    // Small requests still fit in the tail of the current chunk or fail cleanly: never a panic.
    let _ = bump.try_alloc(1u8);
}

#[test]
fn hashbrown_and_vec_run_on_it() {
    let bump = Bump::with_stats();
    let mut map = hashbrown::HashMap::with_capacity_in(4, &bump);
    for i in 0..10_000u32 {
        map.insert(i, i * 2);
    }
    assert_eq!(map.get(&777), Some(&1554));
    assert!(bump.stats().bytes_live > 10_000 * 8);
}

#[test]
fn first_chunk_is_small() {
    let bump = Bump::with_stats();
    bump.alloc(1u8);
    assert_eq!(bump.bump_stats().capacity, MIN_CHUNK);
}

#[test]
fn a_gibibyte_calloc_leaves_its_pages_untouched() {
    let bump = Bump::new();
    let l = Layout::from_size_align(1 << 30, 16).unwrap();
    let p = (&bump).allocate_zeroed(l).expect("1 GiB of address space");
    let resident = conformance::resident_pages(p.cast(), 1 << 30);
    assert!(resident < 16, "{resident} pages of a fresh zeroed gibibyte are resident");
    // Small zeroed blocks past the finger of a fresh chunk are not written either, and blocks
    // over memory used before a reset are zeroed.
    let mut bump = Bump::new();
    let small = Layout::from_size_align(3000, 8).unwrap();
    for _ in 0..100 {
        let b = (&bump).allocate(small).unwrap();
        // SAFETY: a live block of 3000 bytes.
        unsafe { b.cast::<u8>().as_ptr().write_bytes(0xee, 3000) };
    }
    bump.reset();
    for _ in 0..200 {
        let b = (&bump).allocate_zeroed(small).unwrap();
        // SAFETY: a live zeroed block of 3000 bytes.
        assert!(unsafe { core::slice::from_raw_parts(b.cast::<u8>().as_ptr(), 3000) }.iter().all(|&x| x == 0));
    }
}

/// A layer wrapped for statistics keeps its in-place resize (D's rule: a composite has a
/// capability exactly when its parts do), and the counters follow the resize.
#[test]
fn a_counted_region_still_grows_in_place() {
    use alloc_bump::BumpRegion;
    use alloc_core::compose::Counted;
    use alloc_core::layer::Layer;
    use alloc_core::{Counting, Local};
    type Wrapped = Counted<BumpRegion<MmapSource>, Counting>;
    assert!(<Wrapped as Layer>::RESIZE.is_some(), "Counted hides the region's resize");
    let heap = Local::new(Wrapped::new(BumpRegion::new(MmapSource::new())));
    let old = Layout::from_size_align(100, 8).unwrap();
    let p = (&heap).allocate(old).unwrap().cast::<u8>();
    // SAFETY: the newest block of the region, grown with its layout.
    let q = unsafe { (&heap).grow(p, old, Layout::from_size_align(4000, 8).unwrap()) }.unwrap();
    assert_eq!(q.cast::<u8>(), p, "the newest block grows where it is");
    let live = heap.validate().map(|_| ());
    assert_eq!(live, Ok(()));
    let mut heap = heap;
    assert_eq!(heap.get_mut().counters().get().bytes_live, 4000, "the resize was counted");
}
