#![doc = include_str!("../README.md")]

mod cabi;
mod heap;
mod pool;
pub mod protocol;
mod sanitize;
mod segment;
mod tls;

pub use pool::{Pool, PoolStats, MAX_ALIGN, MAX_SMALL};

/// The pool's size classes: 16-byte steps to 128 bytes, then four per doubling to 16 KiB (each
/// block's 16-byte header included).
pub(crate) type Classes = alloc_core::Quarters<14>;

#[cfg(feature = "cabi")]
pub use cabi::cabi_realloc;
