//! An OS call that fails with anything but ENOMEM means the allocator's own bookkeeping is wrong:
//! the page source aborts naming the call and errno (BAD-INPUTS.md, last row).

use alloc_core::source::PageSource;
use alloc_core::MmapSource;
use conformance::misuse::{announce, expect_abort};

#[test]
fn munmap_failure_aborts_with_the_call_and_errno() {
    expect_abort("munmap_failure_aborts_with_the_call_and_errno", "munmap of 4096 bytes failed with errno 22", || {
        let src = MmapSource::new();
        let run = src.map(8192, 4096).expect("map two pages");
        // SAFETY: one byte into a two-page run is inside it; the address is not
        // page-aligned, so munmap refuses it with EINVAL; the source must abort.
        let bad = unsafe { run.add(1) };
        announce(bad.as_ptr() as usize);
        // SAFETY: deliberately violated (the misuse under test); the call aborts before any
        // memory is touched.
        unsafe { src.unmap(bad, 4096) };
    });
}

/// The harness can fail: a sequence that does not abort is reported as undetected misuse.
#[test]
#[should_panic(expected = "the misuse went undetected")]
fn an_undetected_misuse_fails_the_test() {
    expect_abort("an_undetected_misuse_fails_the_test", "double free", || {
        announce(0x1000);
        // Nothing wrong happens here.
    });
}

/// The harness can fail: an abort with another message is not the expected report.
#[test]
#[should_panic(expected = "expected the line")]
fn a_different_report_fails_the_test() {
    expect_abort("a_different_report_fails_the_test", "double free", || {
        let src = MmapSource::new();
        let run = src.map(4096, 4096).expect("map a page");
        // SAFETY: eight bytes into the mapped page is inside it. The address is misaligned, so
        // a munmap report, not the double-free one this test claims to expect.
        let bad = unsafe { run.add(8) };
        announce(bad.as_ptr() as usize);
        // SAFETY: deliberately violated.
        unsafe { src.unmap(bad, 4096) };
    });
}
