//! One suite, run identically against every allocator in the workspace.
//!
//! An allocator joins with one line in a test file:
//!
//! ```ignore
//! conformance::suite!(bump: BumpSubject, reset, sync);
//! ```
//!
//! which emits one `#[test]` per property, so a failure names the property. Every property drives
//! the allocator through a [`Machine`]: a shadow model of every live block that checks, after each
//! operation, that blocks are aligned, as long as asked, disjoint from every other live block, and
//! still hold the distinct byte pattern written into them.
//!
//! The suite proves it can fail: [`broken`] holds deliberately broken allocators, and this crate's
//! tests assert that each is rejected while the reference allocator passes.

pub mod broken;
pub mod fuzz;
mod heap;
pub mod misuse;
mod model;
mod ops;
pub mod props;
mod stress;
pub mod trace;

pub use heap::{Borrowed, Heap};
pub use model::{Failure, Machine, Outcome};
pub use ops::{decode_align, decode_size, op_strategy, Op};

/// An allocator under test: how to make one, plain and with a memory budget.
pub trait Subject {
    /// The allocator; it is used through `&Alloc` as an `allocator_api2` `Allocator`.
    type Alloc: Heap;

    /// A fresh allocator over its usual page source.
    fn new() -> Self::Alloc;

    /// A fresh allocator whose page source fails once `budget` bytes are mapped (built on
    /// [`alloc_core::Limited`]).
    fn with_budget(budget: usize) -> Self::Alloc;
}

/// An allocator that can free everything at once.
pub trait ResetSubject: Subject {
    /// Frees every block.
    fn reset(heap: &mut Self::Alloc);
}

/// An allocator that threads share (`Sync`), and that counts its live bytes.
pub trait SharedSubject: Subject<Alloc: Sync> {
    /// Bytes allocated and not yet freed, as the allocator counts them.
    fn live_bytes(heap: &Self::Alloc) -> usize;
}

/// Panics with the failure's message; what the generated tests call.
#[track_caller]
pub fn check(outcome: Outcome) {
    if let Err(f) = outcome {
        panic!("{f}");
    }
}

/// Emits the conformance tests for one allocator, in a module named after it.
///
/// `suite!(name: SubjectType)` runs every property; add `reset` for a [`ResetSubject`] and `sync`
/// for a [`SharedSubject`] to run the reset and multi-thread properties too.
#[macro_export]
macro_rules! suite {
    ($name:ident : $subject:ty $(, $cap:ident)* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__properties!($subject);
            $( $crate::__capability!($cap, $subject); )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __properties {
    ($s:ty) => {
        #[test]
        fn blocks_are_aligned_and_disjoint() {
            $crate::check($crate::props::blocks_are_aligned_and_disjoint::<$s>())
        }
        #[test]
        fn patterns_survive_until_free() {
            $crate::check($crate::props::patterns_survive_until_free::<$s>())
        }
        #[test]
        fn realloc_keeps_prefix() {
            $crate::check($crate::props::realloc_keeps_prefix::<$s>())
        }
        #[test]
        fn zeroed_allocation_is_zero() {
            $crate::check($crate::props::zeroed_allocation_is_zero::<$s>())
        }
        #[test]
        fn zero_size_requests_are_dangling() {
            $crate::check($crate::props::zero_size_requests_are_dangling::<$s>())
        }
        #[test]
        fn impossible_sizes_fail_cleanly() {
            $crate::check($crate::props::impossible_sizes_fail_cleanly::<$s>())
        }
        #[test]
        fn alignments_up_to_a_page() {
            $crate::check($crate::props::alignments_up_to_a_page::<$s>())
        }
        #[test]
        fn out_of_memory_is_clean() {
            $crate::check($crate::props::out_of_memory_is_clean::<$s>())
        }
        #[test]
        fn model_based_operations() {
            $crate::check($crate::props::model_based_operations::<$s>(None))
        }
        #[test]
        fn traces_replay() {
            $crate::check($crate::props::traces_replay::<$s>())
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __capability {
    (reset, $s:ty) => {
        #[test]
        fn reset_frees_everything() {
            $crate::check($crate::props::reset_frees_everything::<$s>())
        }
        #[test]
        fn model_based_operations_with_reset() {
            $crate::check($crate::props::model_based_operations::<$s>(Some(<$s as $crate::ResetSubject>::reset)))
        }
    };
    (sync, $s:ty) => {
        #[test]
        fn threads_free_each_others_blocks() {
            $crate::check($crate::props::threads_free_each_others_blocks::<$s>())
        }
    };
}
