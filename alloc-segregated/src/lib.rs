#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod class;
mod heap;

pub use heap::{SegregatedHeap, DEFAULT_RETAIN, FIRST_RUN, MAX_RUN};

use alloc_core::front::Local;
use alloc_core::layer::Corruption;
use alloc_core::source::PageSource;
use alloc_core::stats::{Counting, NoStats, Stats, StatsPolicy};
use alloc_core::{Abort, DefaultSource, ErrorPolicy, HeapError, LinkCodec, Locked, PlainLinks, SpinLock};

/// The segregated heap for one thread; `&Segregated` is an `allocator_api2::alloc::Allocator`.
/// `!Sync` by construction: see [`GlobalSegregated`] for threads and `WasmGlobal` for wasm32.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>(_: &T) {}
/// shared_between_threads(&alloc_segregated::Segregated::new());
/// ```
pub struct Segregated<
    S: PageSource = DefaultSource,
    E: ErrorPolicy = Abort,
    C: StatsPolicy = NoStats,
    L: LinkCodec = PlainLinks,
> {
    heap: Local<SegregatedHeap<S, E, C, L>>,
}

impl Segregated {
    /// An empty heap over the platform's page source; maps nothing until the first allocation.
    pub const fn new() -> Self {
        Segregated::with_source(DefaultSource::new())
    }
}

impl Default for Segregated {
    fn default() -> Self {
        Segregated::new()
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> Segregated<S, E, C, L> {
    /// An empty heap over `source` (a [`alloc_core::FixedSource`] for `no_std`, a
    /// [`alloc_core::Limited`] one to cap its memory).
    pub const fn with_source(source: S) -> Self {
        Segregated { heap: Local::new(SegregatedHeap::new(source)) }
    }

    /// The heap layer (error policy, counters, free-list lengths).
    pub fn heap(&mut self) -> &mut SegregatedHeap<S, E, C, L> {
        self.heap.get_mut()
    }

    /// Walks the heap's runs and free lists and reports the first inconsistency.
    pub fn validate(&self) -> Result<(), Corruption> {
        self.heap.validate()
    }

    /// How many misuses the error policy recorded and survived (with [`alloc_core::Count`]).
    pub fn errors_detected(&self) -> usize {
        // SAFETY: the closure only reads the error policy; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.errors().detected()) }
    }

    /// The most recent misuse the error policy recorded (with [`alloc_core::Count`]).
    pub fn last_error(&self) -> Option<HeapError> {
        // SAFETY: the closure only reads the error policy; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.errors().last()) }
    }
}

/// There is no closure-taking `inspect`: a closure given `&SegregatedHeap` could allocate
/// through the same `Segregated` and make a `&mut` to the heap while the `&` is live. Queries
/// are methods that return values; everything else goes through [`Segregated::heap`] (`&mut`).
///
/// ```compile_fail,E0599
/// let heap = alloc_segregated::Segregated::new();
/// heap.inspect(|_| allocator_api2::boxed::Box::new_in(1u8, &heap));
/// ```
#[cfg(feature = "run-list")]
impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> Segregated<S, E, C, L> {
    /// True when `ptr` lies in one of the heap's runs (O(runs)).
    pub fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        self.heap.owns(ptr)
    }
}

impl<S: PageSource, E: ErrorPolicy, L: LinkCodec> Segregated<S, E, Counting, L> {
    /// Live bytes and blocks, peak, mapped bytes.
    pub fn stats(&self) -> Stats {
        // SAFETY: the closure only reads the counters; it cannot reach this front.
        unsafe { self.heap.inspect(|h| h.counters().get()) }
    }
}

alloc_core::forward_allocator!([S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec] Segregated<S, E, C, L> => heap);

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> core::fmt::Debug for Segregated<S, E, C, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Segregated { .. }")
    }
}

/// The segregated heap behind a spin lock: `Sync`, a `#[global_allocator]` on native targets.
///
/// ```
/// use alloc_segregated::{GlobalSegregated, SegregatedHeap};
/// static HEAP: GlobalSegregated = GlobalSegregated::new(SegregatedHeap::new(alloc_core::MmapSource::new()));
/// // #[global_allocator] would make it the program's allocator; here it is used directly.
/// let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
/// v.extend_from_slice(&[1u8, 2, 3]);
/// assert_eq!(v.iter().sum::<u8>(), 6);
/// ```
///
/// A panicking error policy cannot be a global allocator (a panic would unwind out of
/// `GlobalAlloc`); the build refuses it:
///
/// ```compile_fail,E0080
/// use alloc_segregated::{GlobalSegregated, SegregatedHeap};
/// #[global_allocator]
/// static HEAP: GlobalSegregated<alloc_core::MmapSource, alloc_core::Panic> =
///     GlobalSegregated::new(SegregatedHeap::new(alloc_core::MmapSource::new()));
/// fn main() {}
/// ```
pub type GlobalSegregated<S = DefaultSource, E = Abort, C = NoStats, L = PlainLinks> =
    Locked<SegregatedHeap<S, E, C, L>, SpinLock>;

/// The segregated heap as the global allocator of a single-threaded wasm32 module (no lock).
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: alloc_segregated::WasmGlobal = alloc_segregated::WasmGlobal::new(
///     alloc_segregated::SegregatedHeap::new(alloc_core::WasmSource::new()));
/// ```
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub type WasmGlobal = alloc_core::front::WasmSingleThread<SegregatedHeap<alloc_core::WasmSource>>;

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::Validate for Segregated<S, E, C, L> {
    /// [`Segregated::validate`].
    fn validate(&self) -> Result<(), alloc_core::Corruption> {
        Segregated::validate(self)
    }
}

// SAFETY: [`Segregated::owns`]: true exactly for addresses in the memory the front's layer manages
// (its chunks, runs or pages), so a caller that routes frees by it frees into the right heap.
#[cfg(feature = "run-list")]
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::Owns for Segregated<S, E, C, L> {
    fn owns(&self, ptr: core::ptr::NonNull<u8>) -> bool {
        Segregated::owns(self, ptr)
    }
}

impl<S: PageSource, E: ErrorPolicy, L: LinkCodec> alloc_core::Statistics for Segregated<S, E, Counting, L> {
    /// [`Segregated::stats`].
    fn stats(&self) -> Stats {
        Segregated::stats(self)
    }
}

impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::Trim for Segregated<S, E, C, L> {
    /// [`SegregatedHeap::trim`] on the heap.
    fn trim(&mut self) {
        self.heap().trim();
    }
}

// SAFETY: the heap's answer (its class size, which every size up to it shares).
unsafe impl<S: PageSource, E: ErrorPolicy, C: StatsPolicy, L: LinkCodec> alloc_core::UsableSize
    for Segregated<S, E, C, L>
{
    unsafe fn usable_size(&self, ptr: core::ptr::NonNull<u8>, layout: alloc_core::Layout) -> usize {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { alloc_core::UsableSize::usable_size(&self.heap, ptr, layout) }
    }
}
