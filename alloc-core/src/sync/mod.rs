//! Synchronisation: the atomics shim every lock-free structure goes through, and the spin lock
//! used as the default lock policy of [`crate::Locked`].

pub mod atomic;
mod spin;

pub use spin::SpinLock;
