//! The bad-input catalog cases alloc-span detects, each in a child process under the default
//! `Abort` policy (the process dies with SIGABRT after one exact line), and the guard page that
//! makes a write past a block fault.

use alloc_core::{Allocator, Layout, MmapSource};
use alloc_span::{GuardPages, Span};
use conformance::misuse::{announce, expect_abort, expect_fault};

fn layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * 4096, 16).unwrap()
}

#[test]
fn free_of_an_interior_pointer_aborts() {
    expect_abort("free_of_an_interior_pointer_aborts", "free of an interior or misaligned pointer", || {
        let heap = Span::new();
        let p = (&heap).allocate(layout(4)).unwrap().cast::<u8>();
        // SAFETY: two pages into a four-page block; freeing it is the misuse under test.
        let inside = unsafe { p.add(8192) };
        announce(inside.as_ptr() as usize);
        // SAFETY: deliberately violated.
        unsafe { (&heap).deallocate(inside, layout(4)) };
    });
}

#[test]
fn free_of_a_pointer_never_allocated_aborts() {
    expect_abort(
        "free_of_a_pointer_never_allocated_aborts",
        "free of a pointer this allocator never allocated",
        || {
            let heap = Span::new();
            let _one = (&heap).allocate(layout(1)).unwrap();
            let local = [0u64; 4];
            let foreign = core::ptr::NonNull::from(&local).cast::<u8>();
            announce(foreign.as_ptr() as usize);
            // SAFETY: deliberately violated: a stack address.
            unsafe { (&heap).deallocate(foreign, layout(1)) };
        },
    );
}

#[test]
fn double_free_aborts() {
    expect_abort("double_free_aborts", "double free", || {
        let heap = Span::new();
        let p = (&heap).allocate(layout(2)).unwrap().cast::<u8>();
        let _neighbour = (&heap).allocate(layout(2)).unwrap();
        announce(p.as_ptr() as usize);
        // SAFETY: the first free is legitimate; the second is the misuse under test.
        unsafe {
            (&heap).deallocate(p, layout(2));
            (&heap).deallocate(p, layout(2));
        }
    });
}

#[test]
fn free_with_the_wrong_layout_aborts() {
    expect_abort(
        "free_with_the_wrong_layout_aborts",
        "free with a size or alignment that does not fit the block",
        || {
            let heap = Span::new();
            let p = (&heap).allocate(layout(2)).unwrap().cast::<u8>();
            announce(p.as_ptr() as usize);
            // SAFETY: deliberately violated: the block is two pages, freed as ten.
            unsafe { (&heap).deallocate(p, layout(10)) };
        },
    );
}

#[test]
fn resize_with_the_wrong_old_layout_aborts() {
    expect_abort(
        "resize_with_the_wrong_old_layout_aborts",
        "free with a size or alignment that does not fit the block",
        || {
            let heap = Span::new();
            let p = (&heap).allocate(layout(2)).unwrap().cast::<u8>();
            announce(p.as_ptr() as usize);
            // The old layout claims a 64-byte alignment the block never had.
            let old = Layout::from_size_align(2 * 4096, 64).unwrap();
            // SAFETY: deliberately violated (the misuse under test).
            let _ = unsafe { (&heap).grow(p, old, layout(3)) };
        },
    );
}

#[test]
fn a_write_past_a_block_hits_the_guard_page() {
    expect_fault("a_write_past_a_block_hits_the_guard_page", || {
        let heap: Span<MmapSource, alloc_core::Abort, alloc_core::NoStats, GuardPages> =
            Span::with_source(MmapSource::new());
        let p = (&heap).allocate(layout(3)).unwrap().cast::<u8>();
        // SAFETY: the last byte of the block is ours.
        unsafe { p.as_ptr().add(3 * 4096 - 1).write_volatile(1) };
        // SAFETY: deliberately violated: one byte past the block, on its guard page.
        unsafe { p.as_ptr().add(3 * 4096).write_volatile(1) };
    });
}
