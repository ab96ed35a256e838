//! Synchronisation: the atomics shim every lock-free structure goes through, and the spin lock
//! used as the default lock policy of [`crate::Locked`].

pub mod atomic;
pub mod atomic_list;
mod spin;

pub use atomic_list::{AtomicFreeList, Link};
pub use spin::SpinLock;
