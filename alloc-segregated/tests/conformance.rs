//! alloc-segregated runs the whole conformance suite: single-threaded, with encoded free-list
//! links, and behind the lock.

use alloc_core::{Abort, Counting, Limited, MmapSource, NoStats, PlainLinks, SafeLinks};
use alloc_segregated::{GlobalSegregated, Segregated, SegregatedHeap};
use conformance::{Meter, Subject};

type Source = Limited<MmapSource>;

fn source(budget: usize, meter: &'static Meter) -> Source {
    Limited::new(MmapSource::new(), budget).metered(meter)
}

struct LocalSegregated;

/// Without the run list a heap keeps its runs when dropped (it is built to be a global).
const LEAVES_PAGES: bool = !cfg!(feature = "run-list");

impl Subject for LocalSegregated {
    type Alloc = Segregated<Source, Abort, Counting>;
    const LEAVES_PAGES_ON_DROP: bool = LEAVES_PAGES;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Segregated::with_source(source(budget, meter))
    }
}

/// The same heap with encoded, checked free-list links.
struct SafeLinked;

impl Subject for SafeLinked {
    type Alloc = Segregated<Source, Abort, NoStats, SafeLinks>;
    const LEAVES_PAGES_ON_DROP: bool = LEAVES_PAGES;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Segregated::with_source(source(budget, meter))
    }
}

struct LockedSegregated;

impl Subject for LockedSegregated {
    type Alloc = GlobalSegregated<Source, Abort, Counting, PlainLinks>;
    const LEAVES_PAGES_ON_DROP: bool = LEAVES_PAGES;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        GlobalSegregated::new(SegregatedHeap::new(source(budget, meter)))
    }
}

conformance::suite!(segregated: LocalSegregated, bounded, stats, introspect, trim);
conformance::suite!(segregated_safe_links: SafeLinked, bounded);
conformance::suite!(global_segregated: LockedSegregated, sync, global, bounded, stats);
