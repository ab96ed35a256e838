//! The bad-input catalog cases alloc-segregated detects, each in a child process under the
//! default `Abort` policy: the process dies with SIGABRT after one exact line on stderr.

use alloc_core::{Allocator, Layout};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};
use conformance::misuse::{announce, expect_abort};

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A block of 4 to 32 KiB at the top of its run goes back to the top when freed (not onto a
/// list, where the immediate check looks): its second free must still be caught.
#[test]
fn double_free_of_a_block_given_back_to_the_top_aborts() {
    expect_abort("double_free_of_a_block_given_back_to_the_top_aborts", "double free", || {
        let heap = Segregated::new();
        let p = (&heap).allocate(layout(8192)).unwrap().cast::<u8>();
        announce(p.as_ptr() as usize);
        // SAFETY: the first free is legitimate; the second is the misuse under test.
        unsafe {
            (&heap).deallocate(p, layout(8192));
            (&heap).deallocate(p, layout(8192));
        }
    });
}

#[test]
fn double_free_through_the_global_front_aborts() {
    expect_abort("double_free_through_the_global_front_aborts", "double free", || {
        use core::alloc::GlobalAlloc;
        static HEAP: GlobalSegregated = GlobalSegregated::new(SegregatedHeap::new(alloc_core::MmapSource::new()));
        // SAFETY: the first free is legitimate; the second is the misuse under test. The abort
        // happens while the lock is held, which is fine: the process ends without taking it again.
        unsafe {
            let p = HEAP.alloc(layout(100));
            announce(p as usize);
            HEAP.dealloc(p, layout(100));
            HEAP.dealloc(p, layout(100));
        }
    });
}

#[test]
fn free_of_a_misaligned_stack_pointer_aborts() {
    expect_abort("free_of_a_misaligned_stack_pointer_aborts", "free of an interior or misaligned pointer", || {
        let heap = Segregated::new();
        let local = [0u64; 4];
        let foreign = (local.as_ptr() as *mut u8).wrapping_add(4);
        announce(foreign as usize);
        // SAFETY: deliberately violated: a pointer this heap never gave out, not aligned like
        // any 32-byte block.
        unsafe { (&heap).deallocate(core::ptr::NonNull::new(foreign).unwrap(), layout(32)) };
    });
}

#[test]
fn large_double_free_right_after_the_first_aborts() {
    expect_abort("large_double_free_right_after_the_first_aborts", "double free", || {
        let heap = Segregated::new();
        let big = layout(100_000);
        let p = (&heap).allocate(big).unwrap().cast::<u8>();
        let _neighbour = (&heap).allocate(big).unwrap();
        announce(p.as_ptr() as usize);
        // SAFETY: the first free is legitimate; the second is the misuse under test.
        unsafe {
            (&heap).deallocate(p, big);
            (&heap).deallocate(p, big);
        }
    });
}

conformance::misuse_suite!(segregated: Segregated::new(), 48);
