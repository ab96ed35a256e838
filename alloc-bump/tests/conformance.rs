//! alloc-bump runs the whole conformance suite, single-threaded and behind the lock.

use alloc_bump::{Bump, BumpRegion, GlobalBump};
use alloc_core::compose::Header;
use alloc_core::{Abort, Counting, Limited, Local, MmapSource};
use conformance::{Meter, Subject};
use core::alloc::Layout;

type Source = Limited<MmapSource>;

fn source(budget: usize, meter: &'static Meter) -> Source {
    Limited::new(MmapSource::new(), budget).metered(meter)
}

struct LocalBump;

impl Subject for LocalBump {
    type Alloc = Bump<Source, Counting>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        Bump::with_source(source(budget, meter))
    }
}

struct LockedBump;

impl Subject for LockedBump {
    type Alloc = GlobalBump<Source, Counting>;
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc {
        GlobalBump::new(BumpRegion::new(source(budget, meter)))
    }
}

/// The region under `compose::Header` with a canary: the header passes on the region's in-place
/// resize (the realloc properties grow and shrink the newest block where it is, and every free
/// checks the moved canary) and its reset.
struct HeaderedBump;

type Headered = Local<Header<BumpRegion<Source>, Abort, true>>;

impl Subject for HeaderedBump {
    type Alloc = Headered;
    fn make(budget: usize, meter: &'static Meter) -> Headered {
        Local::new(Header::new(BumpRegion::new(source(budget, meter))))
    }
}

#[test]
fn a_header_passes_the_region_s_in_place_resize_on() {
    use alloc_core::layer::Layer;
    use allocator_api2::alloc::Allocator;
    assert!(<Header<BumpRegion<Source>, Abort, true> as Layer>::RESIZE.is_some());
    let heap = HeaderedBump::new();
    let l = |n| Layout::from_size_align(n, 8).unwrap();
    let p = (&heap).allocate(l(100)).unwrap().cast::<u8>();
    // SAFETY: `p` is the newest block, live with the layouts given; every byte written is inside
    // the block's size at that point.
    unsafe {
        p.as_ptr().write_bytes(0x5a, 100);
        let q = (&heap).grow(p, l(100), l(3000)).unwrap().cast::<u8>();
        assert_eq!(q, p, "the newest block grows where it is, header and all");
        assert!(std::slice::from_raw_parts(q.as_ptr(), 100).iter().all(|&b| b == 0x5a));
        q.as_ptr().write_bytes(0x6b, 3000);
        let r = (&heap).shrink(q, l(3000), l(40)).unwrap().cast::<u8>();
        assert_eq!(r, p);
        r.as_ptr().write_bytes(0x7c, 40);
        // The size word and the canary moved with the block: a free with the new size passes the
        // header's checks (a stale size or canary would abort here).
        (&heap).deallocate(r, l(40));
    }
    assert_eq!(heap.validate(), Ok(()));
}

// A bump region reuses only the newest block's bytes, so steady churn is not `bounded`.
conformance::suite!(bump: LocalBump, reset, stats, introspect);
conformance::suite!(global_bump: LockedBump, reset, sync, global, stats);
conformance::suite!(headered_bump: HeaderedBump, reset);
