//! The one door to atomics. Built with `RUSTFLAGS="--cfg loom"` it re-exports `loom`'s model
//! types so `loom` can explore every interleaving of the code above it; otherwise `core`'s.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Spin-wait hint; under loom, a yield so the model scheduler can run another thread.
#[inline(always)]
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
