//! `suite!` finds a subject's validator and ownership test through alloc-core's traits: a
//! subject that states neither gets the allocator's own, and one without them gets none.

// The two references are the probe: method lookup tries `&Probe` first (the trait found), then
// `Probe` (missing). Clippy sees only that one is not needed where the trait is missing.
#![allow(clippy::needless_borrow)]

use alloc_core::{Corruption, Owns, Validate};
use conformance::probe::{OwnsFound, OwnsMissing, Probe, ValidateFound, ValidateMissing};
use core::ptr::NonNull;

struct Both;
impl Validate for Both {
    fn validate(&self) -> Result<(), Corruption> {
        Err(Corruption { what: "found through the trait", addr: 7 })
    }
}
// SAFETY: answers for no address; a test type that owns nothing.
unsafe impl Owns for Both {
    fn owns(&self, _: NonNull<u8>) -> bool {
        false
    }
}

struct Neither;

#[test]
fn the_probe_answers_with_the_trait_where_there_is_one_and_none_otherwise() {
    let p = NonNull::<u8>::dangling();
    assert_eq!((&&Probe(&Both)).found_validate(), Some(Err(Corruption { what: "found through the trait", addr: 7 })));
    assert_eq!((&&Probe(&Both)).found_owns(p), Some(false));
    assert_eq!((&&Probe(&Neither)).found_validate(), None);
    assert_eq!((&&Probe(&Neither)).found_owns(p), None);
}
