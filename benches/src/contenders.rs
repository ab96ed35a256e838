//! The contenders: each is a name, a kind, and a constructor, behind one generic runner so a
//! workload monomorphises per allocator (no dynamic dispatch inside the timed loops).

use crate::measure::Sample;
use crate::workloads::{Scale, Workload};
use alloc_core::source::{PageSource, Reserve};
use alloc_core::{MmapSource, SpinLock};
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use core::ptr::NonNull;
use std::alloc::{GlobalAlloc, System};

/// How an allocator gives memory back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reuses freed blocks (malloc-like).
    General,
    /// Frees everything at once; individual frees reclaim little (bump-like).
    Arena,
}

/// One allocator in the comparison.
pub struct Contender {
    /// Short name used on the command line and in tables.
    pub name: &'static str,
    /// What it is, in a few words.
    pub what: &'static str,
    /// Ours, or a peer.
    pub ours: bool,
    /// How it gives memory back.
    pub kind: Kind,
    /// Runs one workload once at `scale`; `None` when the workload does not apply (a
    /// multi-threaded workload on a single-threaded allocator).
    pub run: fn(&Workload, Scale) -> Option<Sample>,
    /// Replays one recorded trace.
    pub trace: fn(&conformance::trace::Trace) -> Sample,
}

/// A `GlobalAlloc` (glibc, mimalloc, jemalloc) seen through `allocator_api2::Allocator`; growth
/// and shrinkage go to the allocator's own `realloc`, as a C program's would.
pub struct ViaGlobal<G>(pub G);

// SAFETY: every block comes from the wrapped GlobalAlloc with the caller's layout; zero-size
// requests get a dangling pointer and are never passed on.
unsafe impl<G: GlobalAlloc> Allocator for &ViaGlobal<G> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(alloc_core::ptr::dangling(layout.align()), 0));
        }
        // SAFETY: non-zero size.
        let p = unsafe { self.0.alloc(layout) };
        NonNull::new(p).map(|p| NonNull::slice_from_raw_parts(p, layout.size())).ok_or(AllocError)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: the caller's block from `alloc` with this layout.
            unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
        }
    }

    #[inline]
    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.resize(ptr, old, new) }
    }

    #[inline]
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.resize(ptr, old, new) }
    }
}

impl<G: GlobalAlloc> ViaGlobal<G> {
    /// # Safety
    ///
    /// `ptr` is live from this allocator with layout `old`.
    unsafe fn resize(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() == 0 || new.size() == 0 || new.align() != old.align() {
            let fresh = (&self).allocate(new)?;
            // SAFETY: both live and disjoint; copy what both hold, then free the old.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast().as_ptr(), old.size().min(new.size()));
                (&self).deallocate(ptr, old);
            }
            return Ok(fresh);
        }
        // SAFETY: a live block with its layout; a non-zero new size.
        let p = unsafe { self.0.realloc(ptr.as_ptr(), old, new.size()) };
        NonNull::new(p).map(|p| NonNull::slice_from_raw_parts(p, new.size())).ok_or(AllocError)
    }
}

/// Address space handed to talc (it manages a claimed span; pages are touched only as used).
const TALC_ARENA: usize = 4 << 30;

/// talc over one large mapping, behind our spin lock (uncontended in single-thread workloads).
pub struct TalcHeap {
    talck: talc::Talck<SpinLock, talc::ErrOnOom>,
    base: NonNull<u8>,
}

// SAFETY: talc's state is only reached through its lock (`Talck`); `base` is only read in Drop.
unsafe impl Sync for TalcHeap {}
// SAFETY: as above; the mapping belongs to the heap wherever it goes.
unsafe impl Send for TalcHeap {}

impl TalcHeap {
    fn new() -> Self {
        let src = MmapSource::new();
        let base = src.reserve(TALC_ARENA, 4096).expect("reserve talc's arena");
        // SAFETY: committing our own reservation (MAP_NORESERVE: pages cost nothing until touched).
        assert!(unsafe { src.commit(base, TALC_ARENA) });
        let talck = talc::Talc::new(talc::ErrOnOom).lock::<SpinLock>();
        // SAFETY: the span is ours, unused, and outlives the heap (unmapped in Drop after it).
        unsafe { talck.lock().claim(talc::Span::from_base_size(base.as_ptr(), TALC_ARENA)) }
            .expect("talc claims its arena");
        TalcHeap { talck, base }
    }
}

impl Drop for TalcHeap {
    fn drop(&mut self) {
        // SAFETY: every block was freed or is abandoned with the heap; nothing uses the span now.
        unsafe { MmapSource::new().unmap(self.base, TALC_ARENA) }
    }
}

// SAFETY: forwarded to talc's own Allocator implementation for its lock wrapper.
unsafe impl Allocator for &TalcHeap {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.talck.allocate(layout)
    }
    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.talck.deallocate(ptr, layout) }
    }
    unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.talck.grow(ptr, old, new) }
    }
    unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.talck.shrink(ptr, old, new) }
    }
}

/// What the runner needs of a contender's heap beyond `Allocator`.
pub trait Bench: 'static {
    /// The heap; `&Heap` is an `Allocator`.
    type Heap: conformance::Heap;
    /// A fresh heap.
    fn make() -> Self::Heap;
    /// Frees everything at once, where the allocator can.
    fn reset(_heap: &mut Self::Heap) -> bool {
        false
    }
    /// Gives free memory back to the OS, where the allocator has a call for it (run once the
    /// workload freed everything, for the "RSS after trim" column).
    fn trim(_heap: &mut Self::Heap) -> bool {
        false
    }
}

/// glibc malloc.
pub struct Glibc;
impl Bench for Glibc {
    type Heap = ViaGlobal<System>;
    fn make() -> Self::Heap {
        ViaGlobal(System)
    }
    fn trim(_heap: &mut Self::Heap) -> bool {
        // SAFETY: malloc_trim has no preconditions; it gives free heap memory back to the OS.
        unsafe { libc::malloc_trim(0) };
        true
    }
}

/// mimalloc, built from source by the `mimalloc` crate.
pub struct Mimalloc;
impl Bench for Mimalloc {
    type Heap = ViaGlobal<mimalloc::MiMalloc>;
    fn make() -> Self::Heap {
        ViaGlobal(mimalloc::MiMalloc)
    }
}

/// jemalloc, built from source by `tikv-jemallocator`.
pub struct Jemalloc;
impl Bench for Jemalloc {
    type Heap = ViaGlobal<tikv_jemallocator::Jemalloc>;
    fn make() -> Self::Heap {
        ViaGlobal(tikv_jemallocator::Jemalloc)
    }
}

/// talc.
pub struct Talc;
impl Bench for Talc {
    type Heap = TalcHeap;
    fn make() -> Self::Heap {
        TalcHeap::new()
    }
}

/// rlsf's TLSF (O(1), the classic no_std design) as a global allocator over the OS.
pub struct Rlsf;
impl Bench for Rlsf {
    type Heap = ViaGlobal<rlsf::SmallGlobalTlsf>;
    fn make() -> Self::Heap {
        ViaGlobal(rlsf::SmallGlobalTlsf::new())
    }
}

/// bumpalo.
pub struct Bumpalo;
impl Bench for Bumpalo {
    type Heap = bumpalo::Bump;
    fn make() -> Self::Heap {
        bumpalo::Bump::new()
    }
    fn reset(heap: &mut Self::Heap) -> bool {
        heap.reset();
        true
    }
}

/// alloc-bump's `Bump`.
pub struct OurBump;
impl Bench for OurBump {
    type Heap = alloc_bump::Bump;
    fn make() -> Self::Heap {
        alloc_bump::Bump::new()
    }
    fn reset(heap: &mut Self::Heap) -> bool {
        heap.reset();
        true
    }
}

/// alloc-arena's `Arena` over the process-wide chunk pool (quarantine on).
pub struct OurArena;
impl Bench for OurArena {
    type Heap = alloc_arena::Arena;
    fn make() -> Self::Heap {
        alloc_arena::Arena::new()
    }
    fn reset(heap: &mut Self::Heap) -> bool {
        heap.reset();
        true
    }
}

/// alloc-bump's region behind the spin lock (`GlobalBump`).
pub struct OurBumpLocked;
impl Bench for OurBumpLocked {
    type Heap = alloc_bump::GlobalBump;
    fn make() -> Self::Heap {
        alloc_bump::GlobalBump::new(alloc_bump::BumpRegion::new(alloc_bump::BumpSource::new()))
    }
    fn reset(heap: &mut Self::Heap) -> bool {
        use alloc_core::layer::Reset;
        heap.get_mut().reset();
        true
    }
}

/// alloc-segregated's `Segregated` (one thread).
pub struct OurSegregated;
impl Bench for OurSegregated {
    type Heap = alloc_segregated::Segregated;
    fn make() -> Self::Heap {
        let mut heap = alloc_segregated::Segregated::new();
        // For experiments with the retain limit: ALLOC_SEGREGATED_RETAIN=bytes.
        if let Some(bytes) = std::env::var("ALLOC_SEGREGATED_RETAIN").ok().and_then(|v| v.parse().ok()) {
            heap.heap().set_retain(bytes);
        }
        heap
    }
    fn trim(heap: &mut Self::Heap) -> bool {
        heap.heap().trim();
        true
    }
}

/// alloc-segregated behind the spin lock (`GlobalSegregated`).
pub struct OurSegregatedLocked;
impl Bench for OurSegregatedLocked {
    type Heap = alloc_segregated::GlobalSegregated;
    fn make() -> Self::Heap {
        alloc_segregated::GlobalSegregated::new(alloc_segregated::SegregatedHeap::new(MmapSource::new()))
    }
    fn trim(heap: &mut Self::Heap) -> bool {
        heap.get_mut().trim();
        true
    }
}

/// alloc-span's `Span` (one thread).
pub struct OurSpan;
impl Bench for OurSpan {
    type Heap = alloc_span::Span;
    fn make() -> Self::Heap {
        alloc_span::Span::new()
    }
    fn trim(heap: &mut Self::Heap) -> bool {
        heap.trim();
        true
    }
}

/// alloc-span behind the spin lock (`GlobalSpan`).
pub struct OurSpanLocked;
impl Bench for OurSpanLocked {
    type Heap = alloc_span::GlobalSpan;
    fn make() -> Self::Heap {
        alloc_span::GlobalSpan::new(alloc_span::SpanHeap::new(MmapSource::new()))
    }
    fn trim(heap: &mut Self::Heap) -> bool {
        heap.get_mut().trim();
        true
    }
}

/// alloc-pool-lockfree's `Pool`: per-thread heaps, lock-free remote frees.
pub struct OurPool;
impl Bench for OurPool {
    type Heap = alloc_pool_lockfree::Pool;
    fn make() -> Self::Heap {
        alloc_pool_lockfree::Pool::new()
    }
    fn trim(heap: &mut Self::Heap) -> bool {
        heap.trim();
        true
    }
}

macro_rules! local {
    ($b:ty) => {
        |w, s| crate::workloads::run_local::<$b>(w, s)
    };
}
macro_rules! trace {
    ($b:ty) => {
        |t| crate::workloads::run_trace::<$b>(t)
    };
}
macro_rules! shared {
    ($b:ty) => {
        |w, s| crate::workloads::run_shared::<$b>(w, s)
    };
}

/// Every contender, peers first.
pub static CONTENDERS: &[Contender] = &[
    Contender {
        name: "glibc",
        what: "glibc malloc (System)",
        ours: false,
        kind: Kind::General,
        run: shared!(Glibc),
        trace: trace!(Glibc),
    },
    Contender {
        name: "mimalloc",
        what: "mimalloc 2 (crate)",
        ours: false,
        kind: Kind::General,
        run: shared!(Mimalloc),
        trace: trace!(Mimalloc),
    },
    Contender {
        name: "jemalloc",
        what: "jemalloc 5 (tikv-jemallocator)",
        ours: false,
        kind: Kind::General,
        run: shared!(Jemalloc),
        trace: trace!(Jemalloc),
    },
    Contender {
        name: "talc",
        what: "talc 4 behind a spin lock",
        ours: false,
        kind: Kind::General,
        run: shared!(Talc),
        trace: trace!(Talc),
    },
    Contender {
        name: "rlsf",
        what: "rlsf 0.2 SmallGlobalTlsf (TLSF, its own lock)",
        ours: false,
        kind: Kind::General,
        run: shared!(Rlsf),
        trace: trace!(Rlsf),
    },
    Contender {
        name: "bumpalo",
        what: "bumpalo 3",
        ours: false,
        kind: Kind::Arena,
        run: local!(Bumpalo),
        trace: trace!(Bumpalo),
    },
    Contender {
        name: "bump",
        what: "alloc-bump Bump (one thread)",
        ours: true,
        kind: Kind::Arena,
        run: local!(OurBump),
        trace: trace!(OurBump),
    },
    Contender {
        name: "arena",
        what: "alloc-arena Arena (one thread, chunk quarantine, Drop registry)",
        ours: true,
        kind: Kind::Arena,
        run: local!(OurArena),
        trace: trace!(OurArena),
    },
    Contender {
        name: "segregated",
        what: "alloc-segregated Segregated (one thread)",
        ours: true,
        kind: Kind::General,
        run: local!(OurSegregated),
        trace: trace!(OurSegregated),
    },
    Contender {
        name: "segregated-locked",
        what: "alloc-segregated GlobalSegregated (spin lock)",
        ours: true,
        kind: Kind::General,
        run: shared!(OurSegregatedLocked),
        trace: trace!(OurSegregatedLocked),
    },
    Contender {
        name: "span",
        what: "alloc-span Span (one thread)",
        ours: true,
        kind: Kind::General,
        run: local!(OurSpan),
        trace: trace!(OurSpan),
    },
    Contender {
        name: "span-locked",
        what: "alloc-span GlobalSpan (spin lock)",
        ours: true,
        kind: Kind::General,
        run: shared!(OurSpanLocked),
        trace: trace!(OurSpanLocked),
    },
    Contender {
        name: "pool",
        what: "alloc-pool-lockfree Pool (thread caches, lock-free remote frees)",
        ours: true,
        kind: Kind::General,
        run: shared!(OurPool),
        trace: trace!(OurPool),
    },
    Contender {
        name: "bump-locked",
        what: "alloc-bump GlobalBump (spin lock)",
        ours: true,
        kind: Kind::Arena,
        run: shared!(OurBumpLocked),
        trace: trace!(OurBumpLocked),
    },
];

/// Finds a contender by name.
pub fn by_name(name: &str) -> Option<&'static Contender> {
    CONTENDERS.iter().find(|c| c.name == name)
}
