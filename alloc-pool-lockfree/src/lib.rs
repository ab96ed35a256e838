#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]

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
pub use pool::{FreeLeft, Pool, PoolStats, DIRECT_MAX, MAX_ALIGN, MAX_SMALL};

/// The pool's size classes: 16-byte steps to 128 bytes, then four per doubling to 16 KiB (blocks
/// have no header: a class size is what the caller gets).
#[cfg(not(loom))]
pub(crate) type Classes = alloc_core::Quarters<14>;

/// Block sizes by class, padded to 64 entries so that `c & 63` indexes it
/// without a bounds check.
#[cfg(not(loom))]
const BLOCK: [u32; 64] = {
    let mut t = [0u32; 64];
    let mut c = 0;
    while c < <Classes as alloc_core::SizeClasses>::COUNT {
        t[c] = Classes::class_size(c) as u32;
        c += 1;
    }
    t
};

/// The size of class `c`'s blocks: one load from a table.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn block_size(c: usize) -> usize {
    BLOCK[c & 63] as usize
}

#[cfg(all(feature = "cabi", not(loom)))]
pub use cabi::cabi_realloc;
