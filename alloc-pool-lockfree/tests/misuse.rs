//! The bad-input catalog cases the pool detects, each in a child process under the default
//! `Abort` policy: the process dies with SIGABRT after one exact line on stderr (or, at a
//! guarded pool's guard page, with SIGSEGV).
#![cfg(not(loom))]

use alloc_core::{Allocator, Layout};
use alloc_pool_lockfree::Pool;
use conformance::misuse::{announce, expect_abort, expect_fault};

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[test]
fn double_free_through_the_global_front_aborts() {
    expect_abort("double_free_through_the_global_front_aborts", "double free", || {
        use core::alloc::GlobalAlloc;
        static POOL: Pool = Pool::new();
        // SAFETY: the first free is legitimate; the second is the misuse under test.
        unsafe {
            let p = POOL.alloc(layout(100));
            announce(p as usize);
            POOL.dealloc(p, layout(100));
            POOL.dealloc(p, layout(100));
        }
    });
}

#[test]
fn free_with_the_wrong_size_aborts() {
    expect_abort(
        "free_with_the_wrong_size_aborts",
        "free with a size or alignment that does not fit the block",
        || {
            let pool = Pool::new();
            let p = (&pool).allocate(layout(100)).unwrap().cast::<u8>();
            announce(p.as_ptr() as usize);
            // SAFETY: deliberately violated: allocated as 100 bytes, freed as 40 (a smaller class).
            unsafe { (&pool).deallocate(p, layout(40)) };
        },
    );
}

/// The free path does not ask whether the pool was ever used (a pool not made yet has an id no
/// thread's cache holds): a block of another pool freed into a pool never used is still
/// reported as foreign, through both frees.
fn free_into_a_pool_never_used(name: &str, unsized_free: bool) {
    expect_abort(name, "free of a pointer this allocator never allocated", || {
        let used = Pool::new();
        let unused = Pool::new();
        let p = (&used).allocate(layout(40)).unwrap().cast::<u8>();
        announce(p.as_ptr() as usize);
        // SAFETY: deliberately the wrong pool: the misuse under test.
        unsafe {
            if unsized_free {
                unused.free_unsized(p)
            } else {
                (&unused).deallocate(p, layout(40))
            }
        }
    });
}

#[test]
fn a_free_into_a_pool_never_used_aborts_as_foreign() {
    free_into_a_pool_never_used("a_free_into_a_pool_never_used_aborts_as_foreign", false);
}

#[test]
fn a_c_free_into_a_pool_never_used_aborts_as_foreign() {
    free_into_a_pool_never_used("a_c_free_into_a_pool_never_used_aborts_as_foreign", true);
}

/// A guarded pool's slab ends in a guard page: an overflow that runs off the slab's last block
/// faults there (writing up to the slab's end, byte by byte, as a runaway copy would).
#[test]
#[cfg(target_os = "linux")]
fn an_overflow_off_a_guarded_slab_faults() {
    expect_fault("an_overflow_off_a_guarded_slab_faults", || {
        let pool: Pool = Pool::with_guarded_source(alloc_core::DefaultSource::new());
        let p = (&pool).allocate(layout(48)).unwrap().cast::<u8>().as_ptr();
        let slab_end = (p as usize | 0xffff) + 1;
        for a in p as usize..slab_end {
            // SAFETY: deliberately not: every byte from the block to its slab's end, which holds
            // other blocks (free), the slab's unused tail and its guard page: the misuse under test.
            unsafe { core::ptr::write_volatile(p.add(a - p as usize), 0x41) };
        }
    });
}

conformance::misuse_suite!(pool: Pool::new(), 48, delayed, foreign);
