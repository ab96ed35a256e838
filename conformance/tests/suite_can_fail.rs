//! The suite against allocators whose behaviour is known: the system allocator, a correct
//! size-class allocator, and small correct layers behind the fronts must pass every property;
//! each deliberately broken allocator must be rejected by the property aimed at its defect.

use alloc_core::{Limited, Local, Locked, MmapSource};
use conformance::broken::{self, FaultySubject, OverlapsAcrossThreadsSubject, ReferenceSubject, Unhooked};
use conformance::layers::Pages;
use conformance::{props, Meter, Outcome, SharedSubject, Subject};

conformance::suite!(reference: ReferenceSubject, sync, bounded);
conformance::suite!(correct_faulty: FaultySubject<{ broken::NONE }>, reset, global, bounded, stats, introspect, trim);

/// A page-per-block layer without `Resize` and without `ZERO_SIZE_OK`, behind the one-thread
/// front: the fronts' zero-size path and their moving realloc.
struct PagesLocal;

impl Subject for PagesLocal {
    type Alloc = Local<Pages<false>>;
    const TYPICAL_SIZE: usize = 4096;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Local::new(Pages::new(Limited::new(MmapSource::new(), budget).metered(meter)))
    }
}

/// The same layer with an in-place resize, behind the lock: the fronts' alignment check before
/// an in-place resize, `GlobalAlloc`, and threads.
struct PagesLocked;

impl Subject for PagesLocked {
    type Alloc = Locked<Pages<true>>;
    const TYPICAL_SIZE: usize = 4096;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Locked::new(Pages::new(Limited::new(MmapSource::new(), budget).metered(meter)))
    }
}

impl SharedSubject for PagesLocked {
    fn live_bytes(heap: &Self::Alloc) -> usize {
        heap.lock().mapped()
    }
}

conformance::suite!(pages_local: PagesLocal, bounded);
conformance::suite!(pages_locked: PagesLocked, global, sync, bounded);

#[track_caller]
fn rejected(what: &str, outcome: Outcome) {
    match outcome {
        Ok(()) => panic!("the suite accepted an allocator that {what}"),
        Err(f) => eprintln!("rejected, as it should be ({what}): {f}"),
    }
}

#[test]
fn overlapping_blocks_are_rejected() {
    type S = FaultySubject<{ broken::OVERLAPS }>;
    rejected("hands out overlapping blocks", props::blocks_are_aligned_and_disjoint::<S>());
    rejected("hands out overlapping blocks", props::patterns_survive_until_free::<S>());
    rejected("hands out overlapping blocks", props::model_based_operations::<S>(None));
    rejected("hands out overlapping blocks", props::traces_replay::<S>());
}

#[test]
fn misaligned_blocks_are_rejected() {
    type S = FaultySubject<{ broken::MISALIGNS }>;
    rejected("misaligns", props::blocks_are_aligned_and_disjoint::<S>());
    rejected("misaligns", props::alignments_up_to_a_page::<S>());
    rejected("misaligns", props::model_based_operations::<S>(None));
}

#[test]
fn bytes_lost_on_realloc_are_rejected() {
    type S = FaultySubject<{ broken::LOSES_BYTES_ON_REALLOC }>;
    rejected("loses bytes on realloc", props::realloc_keeps_prefix::<S>());
    rejected("loses bytes on realloc", props::model_based_operations::<S>(None));
}

#[test]
fn ignored_memory_limit_is_rejected() {
    rejected("ignores its memory limit", props::out_of_memory_is_clean::<FaultySubject<{ broken::IGNORES_LIMIT }>>());
}

#[test]
fn dirty_zeroed_memory_is_rejected() {
    rejected(
        "does not zero allocate_zeroed",
        props::zeroed_allocation_is_zero::<FaultySubject<{ broken::DIRTY_ZEROED }>>(),
    );
}

#[test]
fn a_misaligned_zero_size_pointer_is_rejected() {
    type S = FaultySubject<{ broken::ZERO_SIZE_MISALIGNED }>;
    rejected("misaligns zero-size blocks", props::zero_size_requests_are_dangling::<S>());
}

#[test]
fn a_reset_that_leaks_is_rejected() {
    type S = FaultySubject<{ broken::RESET_LEAKS }>;
    rejected("leaks its chunks at reset", props::reset_frees_and_reuses_everything::<S>());
}

#[test]
fn a_reset_that_keeps_a_stale_bump_pointer_is_rejected() {
    type S = FaultySubject<{ broken::RESET_STALE }>;
    rejected("keeps a stale bump pointer at reset", props::reset_frees_and_reuses_everything::<S>());
}

#[test]
fn a_page_per_small_block_is_rejected() {
    rejected("wastes a page per block", props::memory_overhead_is_bounded::<FaultySubject<{ broken::WASTES }>>());
}

#[test]
fn a_free_parked_on_the_wrong_list_is_rejected() {
    type S = FaultySubject<{ broken::LEAKS_FREED }>;
    rejected("parks freed blocks where they are never reused", props::steady_churn_maps_no_more::<S>());
}

#[test]
fn pages_kept_after_drop_are_rejected() {
    type S = FaultySubject<{ broken::DROP_LEAKS }>;
    rejected("keeps its pages after it is dropped", props::dropping_gives_every_page_back::<S>());
}

#[test]
fn a_broken_global_realloc_is_rejected() {
    type S = FaultySubject<{ broken::GLOBAL_REALLOC_LOSES }>;
    rejected("loses bytes in GlobalAlloc::realloc", props::global_alloc_entry_points::<S>());
    // The Allocator path of the same allocator is right: only the GlobalAlloc property sees it.
    assert_eq!(props::realloc_keeps_prefix::<S>(), Ok(()));
}

#[test]
fn a_free_with_a_fitting_size_filed_in_the_wrong_class_is_rejected() {
    type S = FaultySubject<{ broken::FITS_MISFILED }>;
    rejected("mishandles frees with the returned length", props::frees_with_any_fitting_size::<S>());
}

#[test]
fn keeping_the_class_on_a_larger_alignment_is_rejected() {
    type S = FaultySubject<{ broken::KEEPS_CLASS_ON_REALIGN }>;
    rejected("keeps a block in place under another class", props::realloc_across_alignments::<S>());
}

#[test]
fn a_lying_owns_is_rejected() {
    type S = FaultySubject<{ broken::OWNS_LIES }>;
    rejected("does not own its blocks' last bytes", props::introspection_agrees_with_the_model::<S>());
}

#[test]
fn a_usable_size_past_the_block_is_rejected() {
    type S = FaultySubject<{ broken::USABLE_TOO_LARGE }>;
    rejected("claims more usable bytes than it has", props::introspection_agrees_with_the_model::<S>());
}

#[test]
fn statistics_that_miss_a_resize_are_rejected() {
    type S = FaultySubject<{ broken::STATS_MISCOUNT }>;
    rejected("miscounts its statistics", props::statistics_track_blocks::<S>());
}

#[test]
fn an_allocator_bound_to_its_thread_is_rejected() {
    type S = FaultySubject<{ broken::THREAD_BOUND }>;
    rejected("stops working on another thread", props::works_after_moving_threads::<S>());
}

#[test]
fn a_block_past_its_mapping_is_rejected_before_it_is_written() {
    type S = FaultySubject<{ broken::ONE_PAST_THE_END }>;
    let e = props::patterns_survive_until_free::<S>().unwrap_err();
    assert!(e.0.contains("extends past the memory the allocator owns"), "{e}");
}

/// Without an ownership test the model writes the block, the process faults, and the child
/// process the property ran in turns that into a failure naming the property and the signal.
#[test]
#[should_panic(expected = "killed by SIGSEGV")]
fn a_crash_fails_with_the_propertys_name() {
    conformance::isolated(module_path!(), "a_crash_fails_with_the_propertys_name", || {
        props::patterns_survive_until_free::<Unhooked<{ broken::ONE_PAST_THE_END }>>()
    });
}

#[test]
fn blocks_overlapping_across_threads_are_rejected() {
    type S = OverlapsAcrossThreadsSubject;
    rejected("hands two threads the same memory", props::threads_share_one_model::<S>());
}

/// Correct in every block it hands out, but its live-byte counter never moves.
struct LiveBytesStuckAtZero;

impl Subject for LiveBytesStuckAtZero {
    type Alloc = broken::Reference;
    fn make(budget: usize, meter: &'static Meter) -> broken::Reference {
        broken::Reference::new(budget, meter)
    }
}

impl SharedSubject for LiveBytesStuckAtZero {
    fn live_bytes(_: &broken::Reference) -> usize {
        0
    }
}

#[test]
fn a_live_byte_counter_that_never_moves_is_rejected() {
    let e = props::threads_free_each_others_blocks::<LiveBytesStuckAtZero>().unwrap_err();
    assert!(e.0.contains("while") && e.0.contains("bytes in 32 blocks were held"), "{e}");
}

#[test]
fn the_rejection_message_names_the_problem() {
    let e = props::blocks_are_aligned_and_disjoint::<FaultySubject<{ broken::MISALIGNS }>>().unwrap_err();
    assert!(e.0.contains("not aligned to"), "{e}");
    let e = props::blocks_are_aligned_and_disjoint::<FaultySubject<{ broken::OVERLAPS }>>().unwrap_err();
    assert!(e.0.contains("overlaps the live block"), "{e}");
    let e = props::realloc_keeps_prefix::<FaultySubject<{ broken::LOSES_BYTES_ON_REALLOC }>>().unwrap_err();
    assert!(e.0.contains("lost its contents"), "{e}");
}

#[test]
fn a_trim_that_discards_live_blocks_is_rejected() {
    type S = FaultySubject<{ broken::TRIM_DISCARDS_LIVE }>;
    rejected("gives back the pages of live blocks when trimmed", props::model_based_operations_with_trim::<S>());
}
