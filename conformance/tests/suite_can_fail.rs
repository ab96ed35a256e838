//! The suite against allocators whose behaviour is known: the system allocator and a correct bump
//! allocator must pass every property; each deliberately broken allocator must be rejected, by
//! the property aimed at its defect and by the model-based test.

use conformance::broken::{self, FaultySubject, ReferenceSubject};
use conformance::{props, Outcome};

conformance::suite!(reference: ReferenceSubject, sync);
conformance::suite!(correct_bump: FaultySubject<{ broken::NONE }>);

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
    type S = FaultySubject<{ broken::IGNORES_LIMIT }>;
    rejected("ignores its memory limit", props::out_of_memory_is_clean::<S>());
}

#[test]
fn dirty_zeroed_memory_is_rejected() {
    type S = FaultySubject<{ broken::DIRTY_ZEROED }>;
    rejected("does not zero allocate_zeroed", props::zeroed_allocation_is_zero::<S>());
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
