//! The contract every allocator in this workspace is built on.
//!
//! An allocator here is a chain of **layers** (after the composable-allocator framework and D's
//! `std.experimental.allocator`): each layer is generic over what sits below it and over zero-sized
//! **policy slots**, so a composition monomorphises to straight-line code.
//!
//! - [`layer`]: the required [`Layer`] trait and the optional capabilities ([`Resize`],
//!   [`UsableSize`], [`Owns`], [`SizeOf`], [`Reset`]). A capability a layer lacks is absent, never
//!   a stub that always fails.
//! - [`source`]: page sources, the OS layer: [`MmapSource`] on unix, [`WasmSource`] on wasm32,
//!   [`FixedSource`] over a buffer, and [`Limited`] that fails past a byte budget.
//! - [`front`]: what users touch: [`Local`] (one thread, `allocator_api2::alloc::Allocator`) and
//!   [`Locked`] (a lock policy, `GlobalAlloc` + `Allocator`), both handling zero-size requests,
//!   overflow and reallocation the same way for every layer.
//! - [`error`]: detected misuse ([`HeapError`]) and the error policies [`Abort`], [`Panic`], [`Count`].
//! - [`stats`]: the statistics every allocator reports.
//! - [`ptr`]: alignment and address arithmetic, checked for overflow.
//! - [`sync`]: the atomics shim (switchable to `loom`) and the [`SpinLock`] lock policy.
//!
//! ```
//! use alloc_core::{Layer, Locked, MmapSource};
//! # use alloc_core::layer::Resize;
//! # use core::{alloc::Layout, ptr::NonNull};
//! # use allocator_api2::alloc::AllocError;
//! // The smallest real layer: one page per block, straight from the OS.
//! struct PagePerBlock(MmapSource);
//! // SAFETY: every block is a fresh mapping of its own, aligned to a page (4096) and refused above.
//! unsafe impl Layer for PagePerBlock {
//!     fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
//!         use alloc_core::source::PageSource;
//!         if layout.align() > 4096 { return Err(AllocError); }
//!         let len = alloc_core::ptr::align_up(layout.size(), 4096).ok_or(AllocError)?;
//!         let ptr = self.0.map(len, 4096).ok_or(AllocError)?;
//!         Ok(NonNull::slice_from_raw_parts(ptr, len))
//!     }
//!     unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
//!         use alloc_core::source::PageSource;
//!         let len = alloc_core::ptr::align_up(layout.size(), 4096).unwrap();
//!         // SAFETY: the caller hands back a block we mapped with this length.
//!         unsafe { self.0.unmap(ptr, len) }
//!     }
//! }
//! // SAFETY: no block ever changes size in place; refusing is always allowed.
//! unsafe impl Resize for PagePerBlock {
//!     unsafe fn resize_in_place(&mut self, _: NonNull<u8>, old: Layout, new_size: usize) -> Result<usize, AllocError> {
//!         let cap = alloc_core::ptr::align_up(old.size(), 4096).unwrap();
//!         if new_size <= cap { Ok(cap) } else { Err(AllocError) }
//!     }
//! }
//! let heap = Locked::<_>::new(PagePerBlock(MmapSource::new()));
//! let mut v = allocator_api2::vec::Vec::new_in(&heap);
//! v.extend_from_slice(b"hello");
//! assert_eq!(&v[..], b"hello");
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

pub mod error;
pub mod freelist;
pub mod front;
pub mod layer;
pub mod ptr;
pub mod source;
pub mod stats;
pub mod sync;

pub use allocator_api2::alloc::{AllocError, Allocator};
pub use core::alloc::Layout;
pub use error::{Abort, Count, ErrorKind, ErrorPolicy, HeapError, Panic};
pub use freelist::FreeList;
pub use front::{Local, Locked};
pub use layer::{Layer, Owns, Reset, Resize, SizeOf, UsableSize};
#[cfg(unix)]
pub use source::MmapSource;
#[cfg(target_arch = "wasm32")]
pub use source::WasmSource;
pub use source::{FixedSource, Limited, PageSource};
pub use stats::{Counting, NoStats, Stats, StatsPolicy};
pub use sync::SpinLock;

/// The page source a native allocator uses unless told otherwise.
#[cfg(unix)]
pub type DefaultSource = MmapSource;
/// The page source a native allocator uses unless told otherwise.
#[cfg(target_arch = "wasm32")]
pub type DefaultSource = WasmSource;
