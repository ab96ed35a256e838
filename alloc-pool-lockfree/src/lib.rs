#![doc = include_str!("../README.md")]

// Under `--cfg loom` only the concurrent protocol is built, for the model checks.
#[cfg(not(loom))]
mod cabi;
#[cfg(not(loom))]
mod heap;
#[cfg(not(loom))]
mod pool;
pub mod protocol;
#[cfg(not(loom))]
mod sanitize;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod tls;

#[cfg(not(loom))]
pub use pool::{Pool, PoolStats, MAX_ALIGN, MAX_SMALL};

/// The pool's size classes: 16-byte steps to 128 bytes, then four per doubling to 16 KiB (each
/// block's 16-byte header included).
#[cfg(not(loom))]
pub(crate) type Classes = alloc_core::Quarters<14>;

#[cfg(all(feature = "cabi", not(loom)))]
pub use cabi::cabi_realloc;
