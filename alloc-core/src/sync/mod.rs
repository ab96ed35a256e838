//! Synchronisation: the atomics and cell shims every lock-free structure goes through (switched
//! to `loom` for model checking), the remote-free list, and the spin lock used as the default
//! lock policy of [`crate::Locked`].

pub mod atomic;
pub mod cell;
pub mod remote_list;
mod spin;

pub use remote_list::{Link, RemoteList};
pub use spin::SpinLock;
