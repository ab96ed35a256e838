//! One suite, run identically against every allocator in the workspace.
//!
//! An allocator joins with one line in a test file:
//!
//! ```ignore
//! conformance::suite!(bump: BumpSubject, reset, global, sync);
//! ```
//!
//! which emits one `#[test]` per property, so a failure names the property. Every property drives
//! the allocator through a [`Machine`]: a shadow model of every live block that checks, after each
//! operation, that blocks are aligned, as long as asked, disjoint from every other live block
//! (other threads' included), inside the allocator's own memory, and still hold the distinct byte
//! pattern written into them; blocks are freed with any layout that fits them; and the
//! allocator's heap validator runs after operations.
//!
//! Each property runs in a child process of the test binary ([`isolated`]), so one that crashes
//! the process (a block one byte past its mapping) fails with its own name and the signal
//! instead of taking the whole test binary down. `CONFORMANCE_IN_PROCESS=1` runs them in the
//! test process, for a debugger.
//!
//! The suite proves it can fail: [`broken`] holds deliberately broken allocators, and this crate's
//! tests assert that each is rejected while the reference allocators pass.

pub mod broken;
mod child;
pub mod fuzz;
mod heap;
pub mod layers;
pub mod misuse;
mod model;
mod ops;
pub mod props;
mod stress;
pub mod trace;
pub mod wasm_target;

pub use alloc_core::source::Meter;
pub use child::{test_path, IN_PROCESS};
pub use heap::{Borrowed, Heap, ViaGlobalAlloc};
pub use model::{Failure, Hooks, Machine, Outcome, Parcel, SharedSpans};
pub use ops::{decode_align, decode_size, op_strategy, Op};

use alloc_core::{Corruption, Stats};
#[doc(hidden)]
pub use alloc_core::{Corruption as __Corruption, Stats as __Stats};
use core::alloc::Layout;
use core::ptr::NonNull;

/// An allocator under test: how to make one, and what it can tell about itself.
pub trait Subject: 'static {
    /// The allocator; it is used through `&Alloc` as an `allocator_api2` `Allocator`. `Send`:
    /// every allocator must keep working after it moves to another thread.
    type Alloc: Heap + Send + 'static;

    /// A fresh allocator whose page source refuses to map past `budget` bytes at once
    /// ([`alloc_core::Limited`]) and counts what it maps in `meter` (read after the allocator is
    /// dropped: did it give every page back?).
    fn make(budget: usize, meter: &'static Meter) -> Self::Alloc;

    /// The block size the allocator is built for: the waste property measures overhead around
    /// it (a page-span heap is built for 64 KiB and more, a segregated heap for tens of bytes).
    const TYPICAL_SIZE: usize = 64;

    /// The smallest page-source budget the allocator can work in at all (its first mappings):
    /// the out-of-memory property limits it to at least this.
    const MIN_BUDGET: usize = 1 << 20;

    /// Dropping the allocator leaves its pages mapped by design: a heap built only to be a
    /// global, which is never dropped (alloc-segregated without its `run-list` feature). The
    /// drop property then checks that the drop unmaps nothing, instead of everything.
    const LEAVES_PAGES_ON_DROP: bool = false;

    /// The allocator's heap validator, where it has one.
    fn validate(heap: &Self::Alloc) -> Option<Result<(), Corruption>> {
        let _ = heap;
        None
    }

    /// Whether `ptr` lies in memory the allocator manages, where it can tell ([`alloc_core::Owns`]).
    fn owns(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<bool> {
        let _ = (heap, ptr);
        None
    }

    /// A fresh allocator with no memory limit and a meter of its own.
    fn new() -> Self::Alloc {
        Self::make(usize::MAX, new_meter())
    }

    /// A fresh allocator with a memory budget.
    fn with_budget(budget: usize) -> Self::Alloc {
        Self::make(budget, new_meter())
    }
}

/// How many of the pages of `ptr..ptr+len` are resident (have been touched since they were
/// mapped or last given back), from `mincore(2)`: how tests see that a large `allocate_zeroed`
/// did not write zeroes over fresh pages, and that freed memory went back to the OS.
#[cfg(unix)]
pub fn resident_pages(ptr: NonNull<u8>, len: usize) -> usize {
    let page = alloc_core::source::page_size();
    let start = ptr.as_ptr() as usize & !(page - 1);
    let end = (ptr.as_ptr() as usize + len).next_multiple_of(page);
    let mut vec = vec![0u8; (end - start) / page];
    // SAFETY: the range is page-aligned and mapped (the caller's live block, rounded out to whole
    // pages of the same mapping); `vec` has one byte per page.
    let r = unsafe { libc::mincore(start as *mut libc::c_void, end - start, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore failed: {}", std::io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// A fresh meter that outlives any allocator (leaked: tests make a few dozen). Each is also kept
/// in a static list, so it stays reachable and Miri's leak check, which stays on for the
/// allocators under test, does not count it.
pub fn new_meter() -> &'static Meter {
    static METERS: std::sync::Mutex<Vec<&'static Meter>> = std::sync::Mutex::new(Vec::new());
    let meter: &'static Meter = Box::leak(Box::new(Meter::new()));
    METERS.lock().unwrap_or_else(|e| e.into_inner()).push(meter);
    meter
}

/// The model hooks a subject provides.
pub fn hooks<S: Subject>() -> Hooks<S::Alloc> {
    // Probe once on a fresh allocator whether the subject has each capability.
    let probe = S::with_budget(1 << 20);
    let dangling = NonNull::<u8>::dangling();
    Hooks {
        validate: S::validate(&probe).map(|_| (|h: &S::Alloc| S::validate(h).unwrap_or(Ok(()))) as fn(&_) -> _),
        owns: S::owns(&probe, dangling).map(|_| (|h: &S::Alloc, p| S::owns(h, p).unwrap_or(true)) as fn(&_, _) -> _),
    }
}

/// A machine over a fresh allocator of `S`, with the subject's hooks.
pub fn machine<S: Subject>(heap: S::Alloc, strict: bool) -> Machine<S::Alloc> {
    Machine::new(heap, strict).with_hooks(hooks::<S>())
}

/// An allocator that can free everything at once.
pub trait ResetSubject: Subject {
    /// Frees every block.
    fn reset(heap: &mut Self::Alloc);
}

/// An allocator that can give memory back to its page source while blocks stay live (trim,
/// scavenge). The suite calls it between model steps and checks every block and the validator
/// after it.
pub trait TrimSubject: Subject {
    /// Gives back what the allocator may give back now.
    fn trim(heap: &mut Self::Alloc);
}

/// An allocator that threads share (`Sync`), and that counts its live bytes.
pub trait SharedSubject: Subject<Alloc: Sync> {
    /// Bytes allocated and not yet freed, as the allocator counts them.
    fn live_bytes(heap: &Self::Alloc) -> usize;

    /// Waits until threads that used `heap` and were joined have finished handing back what
    /// they kept per thread, so the validator may walk everything. A joined thread runs its
    /// thread-local destructors after `join` returns; an allocator with per-thread caches (the
    /// pool) gives them back there. Default: nothing to wait for.
    fn settle(heap: &Self::Alloc) {
        let _ = heap;
    }
}

/// An allocator that keeps [`Stats`].
pub trait StatsSubject: Subject {
    /// The counters now.
    fn stats(heap: &Self::Alloc) -> Stats;
}

/// An allocator that can say how large a block is from its address, or how much of it is usable.
///
/// Both answers come from the allocator's metadata near `ptr`, which is only there to read for
/// the addresses the allocator's own `unsafe` traits allow, so both are `unsafe` to call (the
/// suite calls them on its live blocks only) and an implementation may rely on that. Safe code
/// cannot hand them an arbitrary address:
///
/// ```compile_fail,E0133
/// use conformance::IntrospectSubject;
/// fn ask<S: IntrospectSubject>(heap: &S::Alloc) -> Option<usize> {
///     let anywhere = core::ptr::NonNull::<u8>::dangling();
///     S::usable_size(heap, anywhere, core::alloc::Layout::new::<u8>())
/// }
/// ```
pub trait IntrospectSubject: Subject {
    /// `UsableSize::usable_size`, where the allocator has it.
    ///
    /// # Safety
    ///
    /// As for [`alloc_core::UsableSize::usable_size`]: `ptr` is a block currently allocated from
    /// `heap` and `layout` fits it.
    unsafe fn usable_size(heap: &Self::Alloc, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        let _ = (heap, ptr, layout);
        None
    }
    /// `SizeOf::size_of`, where the allocator has it: `Some(answer)`.
    ///
    /// # Safety
    ///
    /// As for [`alloc_core::SizeOf::size_of`]: `heap` owns `ptr` (the suite asks about the
    /// starts of its live blocks and one byte into them).
    unsafe fn size_of(heap: &Self::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
        let _ = (heap, ptr);
        None
    }
}

/// How [`suite!`] finds an allocator's capabilities through alloc-core's own traits, so a
/// subject need not restate them. `(&&Probe(heap)).found_validate()` resolves, by method lookup
/// on the concrete type where `suite!` expands, to [`ValidateFound`](probe::ValidateFound) (implemented for
/// `&Probe<A>` where `A: Validate`: the allocator's answer) when it applies, else one
/// dereference later to [`ValidateMissing`](probe::ValidateMissing) (`None`); the same for `Owns`.
#[doc(hidden)]
pub mod probe {
    use alloc_core::{Corruption, Layout, Owns, SizeOf, Statistics, Stats, UsableSize, Validate};
    use core::ptr::NonNull;

    /// An allocator under probe.
    pub struct Probe<'a, A>(pub &'a A);

    /// The allocator has a validator: its answer.
    pub trait ValidateFound {
        /// [`Validate::validate`].
        fn found_validate(&self) -> Option<Result<(), Corruption>>;
    }
    impl<A: Validate> ValidateFound for &Probe<'_, A> {
        fn found_validate(&self) -> Option<Result<(), Corruption>> {
            Some(self.0.validate())
        }
    }
    /// It has none.
    pub trait ValidateMissing {
        /// `None`.
        fn found_validate(&self) -> Option<Result<(), Corruption>> {
            None
        }
    }
    impl<A> ValidateMissing for Probe<'_, A> {}

    /// The allocator can tell its own memory: its answer.
    pub trait OwnsFound {
        /// [`Owns::owns`].
        fn found_owns(&self, ptr: NonNull<u8>) -> Option<bool>;
    }
    impl<A: Owns> OwnsFound for &Probe<'_, A> {
        fn found_owns(&self, ptr: NonNull<u8>) -> Option<bool> {
            Some(self.0.owns(ptr))
        }
    }
    /// It cannot.
    pub trait OwnsMissing {
        /// `None`.
        fn found_owns(&self, _: NonNull<u8>) -> Option<bool> {
            None
        }
    }
    impl<A> OwnsMissing for Probe<'_, A> {}

    /// A subject under probe: `(&&&Of::<S>::NEW).found_stats(heap)` takes the subject's own
    /// answer where it states one ([`crate::StatsSubject`]), else the allocator's
    /// ([`alloc_core::Statistics`]), else `None`; the same for live bytes.
    pub struct Of<S>(core::marker::PhantomData<S>);

    impl<S> Of<S> {
        /// The probe.
        pub const NEW: Self = Of(core::marker::PhantomData);
    }

    /// The subject states its statistics.
    pub trait StatsFromSubject<A> {
        /// [`crate::StatsSubject::stats`].
        fn found_stats(&self, heap: &A) -> Option<Stats>;
    }
    impl<S: crate::StatsSubject> StatsFromSubject<S::Alloc> for &&Of<S> {
        fn found_stats(&self, heap: &S::Alloc) -> Option<Stats> {
            Some(S::stats(heap))
        }
    }
    /// The allocator counts.
    pub trait StatsFromAlloc<A> {
        /// [`Statistics::stats`].
        fn found_stats(&self, heap: &A) -> Option<Stats>;
    }
    impl<S: crate::Subject<Alloc: Statistics>> StatsFromAlloc<S::Alloc> for &Of<S> {
        fn found_stats(&self, heap: &S::Alloc) -> Option<Stats> {
            Some(heap.stats())
        }
    }
    /// Neither.
    pub trait StatsMissing<A> {
        /// `None`.
        fn found_stats(&self, _: &A) -> Option<Stats> {
            None
        }
    }
    impl<S: crate::Subject> StatsMissing<S::Alloc> for Of<S> {}

    /// The subject states its live bytes (and how to settle).
    pub trait LiveFromSubject<A> {
        /// [`crate::SharedSubject::live_bytes`].
        fn found_live(&self, heap: &A) -> Option<usize>;
        /// [`crate::SharedSubject::settle`].
        fn found_settle(&self, heap: &A);
    }
    impl<S: crate::SharedSubject> LiveFromSubject<S::Alloc> for &&Of<S> {
        fn found_live(&self, heap: &S::Alloc) -> Option<usize> {
            Some(S::live_bytes(heap))
        }
        fn found_settle(&self, heap: &S::Alloc) {
            S::settle(heap)
        }
    }
    /// The allocator counts its live bytes.
    pub trait LiveFromAlloc<A> {
        /// [`Stats::bytes_live`] of [`Statistics::stats`].
        fn found_live(&self, heap: &A) -> Option<usize>;
        /// Nothing to settle.
        fn found_settle(&self, _: &A) {}
    }
    impl<S: crate::Subject<Alloc: Statistics>> LiveFromAlloc<S::Alloc> for &Of<S> {
        fn found_live(&self, heap: &S::Alloc) -> Option<usize> {
            Some(heap.stats().bytes_live)
        }
    }
    /// Neither.
    pub trait LiveMissing<A> {
        /// `None`.
        fn found_live(&self, _: &A) -> Option<usize> {
            None
        }
        /// Nothing to settle.
        fn found_settle(&self, _: &A) {}
    }
    impl<S: crate::Subject> LiveMissing<S::Alloc> for Of<S> {}

    /// Generates the three-step probe of one mutating capability: the subject's trait, else the
    /// allocator's alloc-core trait, else `None`.
    macro_rules! probe_mut {
        ($found:ident, $subject_trait:ident, $from_subject:ident, $core_trait:ident, $from_alloc:ident, $missing:ident, $what:literal) => {
            #[doc = concat!("The subject states how to ", $what, ".")]
            pub trait $from_subject<A> {
                #[doc = concat!("[`crate::", stringify!($subject_trait), "`].")]
                fn $found(&self) -> Option<fn(&mut A)>;
            }
            impl<S: crate::$subject_trait> $from_subject<S::Alloc> for &&Of<S> {
                fn $found(&self) -> Option<fn(&mut S::Alloc)> {
                    Some(<S as crate::$subject_trait>::$found)
                }
            }
            #[doc = concat!("The allocator can ", $what, " (`alloc_core::", stringify!($core_trait), "`).")]
            pub trait $from_alloc<A> {
                #[doc = concat!("[`alloc_core::", stringify!($core_trait), "`].")]
                fn $found(&self) -> Option<fn(&mut A)>;
            }
            impl<S: crate::Subject<Alloc: alloc_core::$core_trait>> $from_alloc<S::Alloc> for &Of<S> {
                fn $found(&self) -> Option<fn(&mut S::Alloc)> {
                    Some(|heap| alloc_core::$core_trait::$found(heap))
                }
            }
            /// Neither.
            pub trait $missing<A> {
                /// `None`.
                fn $found(&self) -> Option<fn(&mut A)> {
                    None
                }
            }
            impl<S: crate::Subject> $missing<S::Alloc> for Of<S> {}
        };
    }

    /// The allocator says how many bytes of a block are usable.
    pub trait UsableFound {
        /// [`UsableSize::usable_size`].
        ///
        /// # Safety
        ///
        /// As for [`UsableSize::usable_size`].
        unsafe fn found_usable(&self, ptr: NonNull<u8>, layout: Layout) -> Option<usize>;
    }
    impl<A: UsableSize> UsableFound for &Probe<'_, A> {
        unsafe fn found_usable(&self, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
            // SAFETY: the caller's guarantees.
            Some(unsafe { self.0.usable_size(ptr, layout) })
        }
    }
    /// It does not.
    pub trait UsableMissing {
        /// `None`.
        ///
        /// # Safety
        ///
        /// None needed; `unsafe` to match [`UsableFound`].
        unsafe fn found_usable(&self, _: NonNull<u8>, _: Layout) -> Option<usize> {
            None
        }
    }
    impl<A> UsableMissing for Probe<'_, A> {}

    /// The allocator finds a block's layout from its address.
    pub trait SizeOfFound {
        /// [`SizeOf::size_of`].
        ///
        /// # Safety
        ///
        /// As for [`SizeOf::size_of`].
        unsafe fn found_size_of(&self, ptr: NonNull<u8>) -> Option<Option<Layout>>;
    }
    impl<A: SizeOf> SizeOfFound for &Probe<'_, A> {
        unsafe fn found_size_of(&self, ptr: NonNull<u8>) -> Option<Option<Layout>> {
            // SAFETY: the caller's guarantees.
            Some(unsafe { self.0.size_of(ptr) })
        }
    }
    /// It does not.
    pub trait SizeOfMissing {
        /// `None`.
        ///
        /// # Safety
        ///
        /// None needed; `unsafe` to match [`SizeOfFound`].
        unsafe fn found_size_of(&self, _: NonNull<u8>) -> Option<Option<Layout>> {
            None
        }
    }
    impl<A> SizeOfMissing for Probe<'_, A> {}

    /// The subject answers introspection itself (its [`crate::IntrospectSubject`] answers come
    /// first; `None` from it falls through to the allocator's traits).
    pub trait IntrospectFromSubject<A> {
        /// [`crate::IntrospectSubject::usable_size`].
        ///
        /// # Safety
        ///
        /// As for [`crate::IntrospectSubject::usable_size`].
        unsafe fn subject_usable(&self, heap: &A, ptr: NonNull<u8>, layout: Layout) -> Option<usize>;
        /// [`crate::IntrospectSubject::size_of`].
        ///
        /// # Safety
        ///
        /// As for [`crate::IntrospectSubject::size_of`].
        unsafe fn subject_size_of(&self, heap: &A, ptr: NonNull<u8>) -> Option<Option<Layout>>;
    }
    impl<S: crate::IntrospectSubject> IntrospectFromSubject<S::Alloc> for &Of<S> {
        unsafe fn subject_usable(&self, heap: &S::Alloc, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
            // SAFETY: the caller's guarantees.
            unsafe { S::usable_size(heap, ptr, layout) }
        }
        unsafe fn subject_size_of(&self, heap: &S::Alloc, ptr: NonNull<u8>) -> Option<Option<Layout>> {
            // SAFETY: the caller's guarantees.
            unsafe { S::size_of(heap, ptr) }
        }
    }
    /// It does not.
    pub trait IntrospectMissing<A> {
        /// `None`.
        ///
        /// # Safety
        ///
        /// None needed; `unsafe` to match [`IntrospectFromSubject`].
        unsafe fn subject_usable(&self, _: &A, _: NonNull<u8>, _: Layout) -> Option<usize> {
            None
        }
        /// `None`.
        ///
        /// # Safety
        ///
        /// None needed; `unsafe` to match [`IntrospectFromSubject`].
        unsafe fn subject_size_of(&self, _: &A, _: NonNull<u8>) -> Option<Option<Layout>> {
            None
        }
    }
    impl<S: crate::Subject> IntrospectMissing<S::Alloc> for Of<S> {}

    probe_mut!(reset, ResetSubject, ResetFromSubject, Reset, ResetFromAlloc, ResetMissing, "free every block at once");
    probe_mut!(trim, TrimSubject, TrimFromSubject, Trim, TrimFromAlloc, TrimMissing, "give memory back");
}

/// Panics with the failure's message; what the generated tests call.
#[track_caller]
pub fn check(outcome: Outcome) {
    if let Err(f) = outcome {
        panic!("{f}");
    }
}

/// Runs `property` in a child process of the test binary (re-run filtered to exactly this
/// test), and fails with the child's message, or with the signal that killed it, naming the
/// test. `module_path` is the caller's `module_path!()`, `name` the test function's name.
/// In-process under Miri, or when `CONFORMANCE_IN_PROCESS` is set.
#[track_caller]
pub fn isolated(module_path: &str, name: &str, property: impl FnOnce() -> Outcome) {
    let test = child::test_path(module_path, name);
    if cfg!(miri) || std::env::var_os(child::IN_PROCESS).is_some() || child::is_child(&test) {
        return check(property());
    }
    let out = child::run(&test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("1 passed") {
        return;
    }
    if out.status.success() {
        panic!("{test}: the child ran no test (is the test name right?)\n{}", child::tail(&out.stdout, 10));
    }
    panic!("{test} failed in its child process ({}):\n{}", child::describe(&out), child::failure(&out));
}

/// Emits the conformance tests for one allocator, in a module named after it.
///
/// The allocator's validator, ownership test and counters are found through alloc-core's own
/// traits ([`alloc_core::Validate`], [`alloc_core::Owns`], [`alloc_core::Statistics`]) on
/// `Subject::Alloc`: a subject that has them needs only [`Subject::make`] (its own answer,
/// where it states one, comes first).
///
/// `suite!(name: SubjectType)` runs every property every allocator owes; add
/// - `reset` for an allocator with [`alloc_core::Reset`] (or a [`ResetSubject`]): reset frees,
///   reuses memory and gives mapped bytes back;
/// - `sync` for an allocator threads share (cross-thread frees, several threads' models at once):
///   its live bytes come from [`SharedSubject`] where the subject implements it, else from
///   [`alloc_core::Statistics`];
/// - `global` when `Alloc: GlobalAlloc` (the `GlobalAlloc` entry points);
/// - `bounded` for an allocator that reuses freed blocks (steady churn maps no more pages);
/// - `stats` for an allocator that counts: [`StatsSubject`] where the subject implements it, else
///   [`alloc_core::Statistics`];
/// - `introspect` for an allocator with [`alloc_core::UsableSize`] or [`alloc_core::SizeOf`] (or
///   an [`IntrospectSubject`]): usable size, size from a pointer, ownership;
/// - `trim` for an allocator with [`alloc_core::Trim`] (or a [`TrimSubject`]): memory given back
///   between model steps, blocks intact.
#[macro_export]
macro_rules! suite {
    ($name:ident : $subject:ty $(, $cap:ident)* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            /// The subject as the suite runs it: with the capabilities found through
            /// alloc-core's traits. Visible where `suite!` is written, so a property can be
            /// run on it by hand.
            #[allow(dead_code)]
            pub(super) struct Found;
            impl $crate::Subject for Found {
                type Alloc = <$subject as $crate::Subject>::Alloc;
                const TYPICAL_SIZE: usize = <$subject as $crate::Subject>::TYPICAL_SIZE;
                const MIN_BUDGET: usize = <$subject as $crate::Subject>::MIN_BUDGET;
                const LEAVES_PAGES_ON_DROP: bool = <$subject as $crate::Subject>::LEAVES_PAGES_ON_DROP;
                fn make(budget: usize, meter: &'static $crate::Meter) -> Self::Alloc {
                    <$subject as $crate::Subject>::make(budget, meter)
                }
                fn validate(heap: &Self::Alloc) -> Option<Result<(), $crate::__Corruption>> {
                    #[allow(unused_imports)]
                    use $crate::probe::{OwnsFound, OwnsMissing, ValidateFound, ValidateMissing};
                    <$subject as $crate::Subject>::validate(heap)
                        .or_else(|| (&&$crate::probe::Probe(heap)).found_validate())
                }
                fn owns(heap: &Self::Alloc, ptr: core::ptr::NonNull<u8>) -> Option<bool> {
                    #[allow(unused_imports)]
                    use $crate::probe::{OwnsFound, OwnsMissing, ValidateFound, ValidateMissing};
                    <$subject as $crate::Subject>::owns(heap, ptr)
                        .or_else(|| (&&$crate::probe::Probe(heap)).found_owns(ptr))
                }
            }
            $crate::__properties!(Found);
            $( $crate::__forward!($cap, $subject); $crate::__capability!($cap, Found); )*
        }
    };
}

/// The subject's answer to one capability, else the allocator's through alloc-core's trait;
/// a test that needs it and finds neither fails, naming both.
#[doc(hidden)]
#[macro_export]
macro_rules! __found {
    ($word:literal, $s:ty, $subject_trait:literal, $core_trait:literal, [$($probe:ident),+] $m:ident($($arg:expr),*)) => {{
        #[allow(unused_imports)]
        use $crate::probe::{$($probe),+};
        (&&&$crate::probe::Of::<$s>::NEW).$m($($arg),*).unwrap_or_else(|| {
            panic!(
                "`{}` needs it: {} implements no {}, and its allocator no alloc_core::{}",
                $word,
                stringify!($s),
                $subject_trait,
                $core_trait
            )
        })
    }};
}

/// Passes one capability of the subject (or of its allocator) on to `Found`.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward {
    (reset, $s:ty) => {
        impl $crate::ResetSubject for Found {
            fn reset(heap: &mut Self::Alloc) {
                let reset = $crate::__found!("reset", $s, "ResetSubject", "Reset",
                    [ResetFromAlloc, ResetFromSubject, ResetMissing] reset());
                reset(heap)
            }
        }
    };
    (trim, $s:ty) => {
        impl $crate::TrimSubject for Found {
            fn trim(heap: &mut Self::Alloc) {
                let trim = $crate::__found!("trim", $s, "TrimSubject", "Trim",
                    [TrimFromAlloc, TrimFromSubject, TrimMissing] trim());
                trim(heap)
            }
        }
    };
    (sync, $s:ty) => {
        impl $crate::SharedSubject for Found {
            fn live_bytes(heap: &Self::Alloc) -> usize {
                $crate::__found!("sync", $s, "SharedSubject", "Statistics",
                    [LiveFromAlloc, LiveFromSubject, LiveMissing] found_live(heap))
            }
            fn settle(heap: &Self::Alloc) {
                #[allow(unused_imports)]
                use $crate::probe::{LiveFromAlloc, LiveFromSubject, LiveMissing};
                (&&&$crate::probe::Of::<$s>::NEW).found_settle(heap)
            }
        }
    };
    (stats, $s:ty) => {
        impl $crate::StatsSubject for Found {
            fn stats(heap: &Self::Alloc) -> $crate::__Stats {
                $crate::__found!("stats", $s, "StatsSubject", "Statistics",
                    [StatsFromAlloc, StatsFromSubject, StatsMissing] found_stats(heap))
            }
        }
    };
    (introspect, $s:ty) => {
        impl $crate::IntrospectSubject for Found {
            unsafe fn usable_size(
                heap: &Self::Alloc,
                ptr: core::ptr::NonNull<u8>,
                layout: core::alloc::Layout,
            ) -> Option<usize> {
                #[allow(unused_imports)]
                use $crate::probe::{IntrospectFromSubject, IntrospectMissing, UsableFound, UsableMissing};
                // SAFETY: the caller's guarantees (a live block, a layout that fits it), which are
                // what both the subject's and the allocator's answers need.
                unsafe {
                    (&&$crate::probe::Of::<$s>::NEW)
                        .subject_usable(heap, ptr, layout)
                        .or_else(|| (&&$crate::probe::Probe(heap)).found_usable(ptr, layout))
                }
            }
            unsafe fn size_of(heap: &Self::Alloc, ptr: core::ptr::NonNull<u8>) -> Option<Option<core::alloc::Layout>> {
                #[allow(unused_imports)]
                use $crate::probe::{IntrospectFromSubject, IntrospectMissing, SizeOfFound, SizeOfMissing};
                // SAFETY: the caller's guarantee (the heap owns `ptr`), which is what both the
                // subject's and the allocator's answers need.
                unsafe {
                    (&&$crate::probe::Of::<$s>::NEW)
                        .subject_size_of(heap, ptr)
                        .or_else(|| (&&$crate::probe::Probe(heap)).found_size_of(ptr))
                }
            }
        }
    };
    ($other:ident, $s:ty) => {};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __property {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            $crate::isolated(module_path!(), stringify!($name), || $body)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __properties {
    ($s:ty) => {
        $crate::__property!(blocks_are_aligned_and_disjoint, $crate::props::blocks_are_aligned_and_disjoint::<$s>());
        $crate::__property!(patterns_survive_until_free, $crate::props::patterns_survive_until_free::<$s>());
        $crate::__property!(realloc_keeps_prefix, $crate::props::realloc_keeps_prefix::<$s>());
        $crate::__property!(realloc_across_alignments, $crate::props::realloc_across_alignments::<$s>());
        $crate::__property!(frees_with_any_fitting_size, $crate::props::frees_with_any_fitting_size::<$s>());
        $crate::__property!(zeroed_allocation_is_zero, $crate::props::zeroed_allocation_is_zero::<$s>());
        $crate::__property!(zero_size_requests_are_dangling, $crate::props::zero_size_requests_are_dangling::<$s>());
        $crate::__property!(impossible_sizes_fail_cleanly, $crate::props::impossible_sizes_fail_cleanly::<$s>());
        $crate::__property!(alignments_up_to_a_page, $crate::props::alignments_up_to_a_page::<$s>());
        $crate::__property!(out_of_memory_is_clean, $crate::props::out_of_memory_is_clean::<$s>());
        $crate::__property!(memory_overhead_is_bounded, $crate::props::memory_overhead_is_bounded::<$s>());
        $crate::__property!(dropping_gives_every_page_back, $crate::props::dropping_gives_every_page_back::<$s>());
        $crate::__property!(works_after_moving_threads, $crate::props::works_after_moving_threads::<$s>());
        $crate::__property!(model_based_operations, $crate::props::model_based_operations::<$s>(None));
        $crate::__property!(traces_replay, $crate::props::traces_replay::<$s>());
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __capability {
    (reset, $s:ty) => {
        $crate::__property!(
            reset_frees_and_reuses_everything,
            $crate::props::reset_frees_and_reuses_everything::<$s>()
        );
        $crate::__property!(
            model_based_operations_with_reset,
            $crate::props::model_based_operations::<$s>(Some(<$s as $crate::ResetSubject>::reset))
        );
    };
    (sync, $s:ty) => {
        $crate::__property!(threads_free_each_others_blocks, $crate::props::threads_free_each_others_blocks::<$s>());
        $crate::__property!(threads_share_one_model, $crate::props::threads_share_one_model::<$s>());
    };
    (global, $s:ty) => {
        $crate::__property!(global_alloc_entry_points, $crate::props::global_alloc_entry_points::<$s>());
    };
    (bounded, $s:ty) => {
        $crate::__property!(steady_churn_maps_no_more, $crate::props::steady_churn_maps_no_more::<$s>());
    };
    (stats, $s:ty) => {
        $crate::__property!(statistics_track_blocks, $crate::props::statistics_track_blocks::<$s>());
    };
    (trim, $s:ty) => {
        $crate::__property!(model_based_operations_with_trim, $crate::props::model_based_operations_with_trim::<$s>());
    };
    (introspect, $s:ty) => {
        $crate::__property!(
            introspection_agrees_with_the_model,
            $crate::props::introspection_agrees_with_the_model::<$s>()
        );
    };
}
