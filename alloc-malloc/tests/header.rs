//! `alloc_core::compose::Header` over the segregated heap, with a counting error policy: what
//! the `segregated` and `hardened` presets detect, checked in process.

use alloc_core::compose::Header;
use alloc_core::{front, Count, ErrorKind, Layout, MmapSource, NoStats, SafeLinks, SizeOf};
use alloc_segregated::SegregatedHeap;

type Hardened = Header<SegregatedHeap<MmapSource, Count, NoStats, SafeLinks>, Count, true>;

fn heap() -> Hardened {
    Header::new(SegregatedHeap::new(MmapSource::new()))
}

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[test]
fn the_size_comes_back_from_the_pointer() {
    let mut h = heap();
    for (size, align) in [(1, 1), (100, 8), (4000, 64), (70_000, 4096)] {
        let p = front::allocate(&mut h, l(size, align)).unwrap().cast::<u8>();
        assert_eq!(p.as_ptr() as usize % align, 0);
        // SAFETY: a live block of `h`.
        let found = unsafe { h.size_of(p) }.unwrap();
        assert_eq!(found.size(), size);
        assert!(found.align() >= align);
        // SAFETY: freed once, with the layout found.
        unsafe { front::deallocate(&mut h, p, found) };
    }
    assert_eq!(h.errors().detected(), 0);
}

#[test]
fn a_double_free_an_overflow_and_a_wrong_layout_are_reported() {
    let mut h = heap();
    let layout = l(40, 16);
    let _keep = front::allocate(&mut h, layout).unwrap();
    let p = front::allocate(&mut h, layout).unwrap().cast::<u8>();
    // SAFETY: p is live; freed once, then (the misuse) again.
    unsafe {
        front::deallocate(&mut h, p, layout);
        front::deallocate(&mut h, p, layout);
    }
    let e = h.errors().last().unwrap();
    assert_eq!((e.kind, e.addr), (ErrorKind::DoubleFree, p.as_ptr() as usize));

    let q = front::allocate(&mut h, layout).unwrap().cast::<u8>();
    // SAFETY: one byte past the block: the canary's first byte (the misuse).
    unsafe { q.as_ptr().add(40).write(b'x') };
    // SAFETY: q is live.
    unsafe { front::deallocate(&mut h, q, layout) };
    let e = h.errors().last().unwrap();
    assert_eq!((e.kind, e.addr), (ErrorKind::CanaryCorrupted, q.as_ptr() as usize + 40));

    let r = front::allocate(&mut h, l(64, 16)).unwrap().cast::<u8>();
    // SAFETY: r is live; the layout claims more than the block has (the misuse).
    unsafe { front::deallocate(&mut h, r, l(4096, 16)) };
    assert_eq!(h.errors().last().unwrap().kind, ErrorKind::WrongLayout);
    // SAFETY: r is live; the layout claims less than the block has (the misuse).
    unsafe { front::deallocate(&mut h, r, l(63, 16)) };
    assert_eq!(h.errors().last().unwrap().kind, ErrorKind::WrongLayout, "a smaller size is wrong too");
    // SAFETY: r is still live (the bad frees were refused).
    unsafe { front::deallocate(&mut h, r, l(64, 16)) };
    assert_eq!(h.errors().detected(), 4);
}

/// A freed large block's first words hold the segregated heap's link and residency flag: the
/// header lies past them, so the second free still reads "freed".
#[test]
fn a_double_free_of_a_large_block_is_a_double_free() {
    let mut h = heap();
    for size in [16 << 10, 100 << 10, 1 << 20] {
        let layout = l(size, 8);
        let _keep = front::allocate(&mut h, layout).unwrap();
        let p = front::allocate(&mut h, layout).unwrap().cast::<u8>();
        // SAFETY: p is live; freed once, then (the misuse) again.
        unsafe {
            front::deallocate(&mut h, p, layout);
            front::deallocate(&mut h, p, layout);
        }
        let e = h.errors().last().unwrap();
        assert_eq!((e.kind, e.addr), (ErrorKind::DoubleFree, p.as_ptr() as usize), "{size} bytes");
    }
}

#[test]
fn a_pointer_the_heap_does_not_own_is_foreign() {
    let mut h = heap();
    let _ = front::allocate(&mut h, l(16, 16)).unwrap();
    let local = [0u64; 8];
    let p = core::ptr::NonNull::from(&local[4]).cast::<u8>();
    // SAFETY: none (the misuse); the header layer asks the heap whether it owns `p` first.
    unsafe { front::deallocate(&mut h, p, l(16, 16)) };
    assert_eq!(h.errors().last().unwrap().kind, ErrorKind::ForeignPointer);
}

/// The `hardened` fuzz target's committed seeds and minimised findings (`fuzz/seeds/hardened`,
/// `fuzz/regressions/hardened`), replayed through the same composition with the segregated
/// heap's validator on and nothing reported.
#[test]
fn hardened_fuzz_inputs_replay() {
    use alloc_core::front::Local;
    use alloc_core::{Abort, Limited};
    type Heap = Local<Header<SegregatedHeap<Limited<MmapSource>, Abort, NoStats, SafeLinks>, Abort, true>>;
    let n = conformance::fuzz::replay_committed("hardened", |data| {
        let heap: Heap = Local::new(Header::new(SegregatedHeap::new(Limited::new(MmapSource::new(), 256 << 20))));
        let hooks = conformance::Hooks::<Heap> { validate: Some(|h| h.validate()), owns: Some(|h, p| h.owns(p)) };
        conformance::fuzz::run(heap, hooks, None, data);
    });
    assert!(n >= 7, "expected the committed seeds, replayed {n}");
}
