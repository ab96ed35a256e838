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

/// A huge block's mapping past the block (up to its 2 MiB granule) is guard, all of it.
#[test]
fn a_write_far_past_a_huge_block_hits_the_guard_pages() {
    expect_fault("a_write_far_past_a_huge_block_hits_the_guard_pages", || {
        let config = alloc_span::SpanConfig { huge: 1 << 20, ..alloc_span::SpanConfig::DEFAULT };
        let heap: Span<MmapSource, alloc_core::Abort, alloc_core::NoStats, GuardPages> =
            Span::with_config(MmapSource::new(), config);
        let size = (1 << 20) + 4096;
        let p = (&heap).allocate(Layout::from_size_align(size, 16).unwrap()).unwrap().cast::<u8>();
        // SAFETY: deliberately violated: 64 KiB past the block, in the mapping's guarded tail.
        unsafe { p.as_ptr().add(size + (64 << 10)).write_volatile(1) };
    });
}

#[test]
fn a_write_past_a_huge_block_hits_the_guard_page() {
    expect_fault("a_write_past_a_huge_block_hits_the_guard_page", || {
        // Blocks from 1 MiB on get a mapping of their own; this one leaves most of its last
        // 2 MiB granule past the block, where the guard page must be.
        let config = alloc_span::SpanConfig { huge: 1 << 20, ..alloc_span::SpanConfig::DEFAULT };
        let heap: Span<MmapSource, alloc_core::Abort, alloc_core::NoStats, GuardPages> =
            Span::with_config(MmapSource::new(), config);
        let size = (1 << 20) + 4096;
        let p = (&heap).allocate(Layout::from_size_align(size, 16).unwrap()).unwrap().cast::<u8>();
        // SAFETY: the last byte of the block is ours.
        unsafe { p.as_ptr().add(size - 1).write_volatile(1) };
        // SAFETY: deliberately violated: one byte past the block, on its guard page.
        unsafe { p.as_ptr().add(size).write_volatile(1) };
    });
}

conformance::misuse_suite!(span: Span::new(), 4 * 4096, delayed, foreign);
