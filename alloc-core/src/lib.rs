//! The contract every allocator in this workspace is built on.
//!
//! An allocator here is a chain of **layers** (after the composable-allocator framework and D's
//! `std.experimental.allocator`): each layer is generic over what sits below it and over zero-sized
//! **policy slots**, so a composition monomorphises to straight-line code.
//!
//! - [`layer`]: the exclusive [`Layer`] trait (`&mut self`), the shared [`SharedLayer`] (`&self`
//!   from many threads; [`Locked`] bridges one to the other), and the optional capabilities
//!   ([`Resize`], [`UsableSize`], [`Owns`], [`SizeOf`], [`Reset`], [`Validate`]). A capability a
//!   layer lacks is absent, never a stub that always fails; fronts see from [`Layer::RESIZE`]
//!   whether a layer resizes in place.
//! - [`source`]: page sources, the OS layer: [`MmapSource`] on unix, `WasmSource` on wasm32,
//!   [`FixedSource`] over a buffer, and [`Limited`] that fails past a byte budget.
//! - [`front`]: what users touch: [`Local`] (one thread, `allocator_api2::alloc::Allocator`),
//!   [`Locked`] (a lock policy, `GlobalAlloc` + `Allocator`) and [`shared_front!`] for any shared
//!   layer, all handling zero-size requests, zeroing and reallocation the same way for every
//!   layer, and refusing at compile time a panicking layer behind `GlobalAlloc`.
//! - [`error`]: detected misuse ([`HeapError`]) and the error policies [`Abort`], [`Panic`], [`Count`].
//! - [`stats`]: the statistics every allocator reports ([`StatsPolicy`] for exclusive layers,
//!   [`SharedStatsPolicy`] with atomic counters for shared ones).
//! - [`ptr`]: alignment and address arithmetic, checked for overflow.
//! - [`sync`]: the atomics and cell shims (switchable to `loom`), the ABA-free remote-free list
//!   [`RemoteList`], and the [`SpinLock`] lock policy.
//!
//! ```
//! use alloc_core::{Layer, Locked, MmapSource, PageSource};
//! use core::{alloc::Layout, ptr::NonNull};
//! use allocator_api2::alloc::AllocError;
//! // The smallest real layer: whole pages per block, straight from the OS. It has no in-place
//! // resize, so the fronts move blocks on realloc.
//! struct PagePerBlock(MmapSource);
//! // SAFETY: every block is a fresh mapping of its own, aligned to a page and refused above;
//! // nothing here panics.
//! unsafe impl Layer for PagePerBlock {
//!     fn allocate(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
//!         let page = self.0.page_size();
//!         if layout.align() > page { return Err(AllocError); }
//!         let len = alloc_core::ptr::align_up(layout.size(), page).ok_or(AllocError)?;
//!         let ptr = self.0.map(len, page).ok_or(AllocError)?;
//!         Ok(NonNull::slice_from_raw_parts(ptr, len))
//!     }
//!     // Fresh pages from mmap are zero: no memset for `allocate_zeroed`.
//!     fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
//!         self.allocate(layout)
//!     }
//!     unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
//!         let page = self.0.page_size();
//!         let len = alloc_core::ptr::align_up(layout.size(), page).unwrap_or(page);
//!         // SAFETY: the caller hands back a block we mapped with this length.
//!         unsafe { self.0.unmap(ptr, len) }
//!     }
//! }
//! let heap = Locked::<_>::new(PagePerBlock(MmapSource::new()));
//! let mut v = allocator_api2::vec::Vec::new_in(&heap);
//! v.extend_from_slice(b"hello");
//! v.extend_from_slice(&[b'!'; 5000]); // moves: the layer cannot grow in place
//! assert_eq!(&v[..5], b"hello");
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

pub mod class;
pub mod clock;
pub mod compose;
pub mod error;
pub mod freelist;
pub mod front;
// Rendered by rustdoc only: the guide's examples use the conformance suite and the C socket,
// which depend on this crate, so alloc-malloc runs them as its doctests.
#[cfg(all(doc, not(doctest)))]
#[doc = include_str!("guide.md")]
pub mod guide {}
pub mod layer;
pub mod ptr;
pub mod secret;
pub mod source;
pub mod stats;
pub mod sync;
pub mod tls;

pub use allocator_api2::alloc::{AllocError, Allocator};
pub use class::{PowerOfTwo, Primes, Quarters, SizeClasses};
pub use core::alloc::Layout;
pub use error::{Abort, Count, ErrorKind, ErrorPolicy, HeapError, Panic};
pub use freelist::{FreeList, LinkCodec, PlainLinks, SafeLinks};
pub use front::{Local, Locked, LockedRef};
pub use layer::{Corruption, Layer, Owns, Reset, Resize, SharedLayer, SizeOf, Trim, UsableSize, Validate};
#[cfg(unix)]
pub use source::MmapSource;
#[cfg(target_arch = "wasm32")]
pub use source::WasmSource;
pub use source::{FixedSource, Limited, Meter, PageSource};
#[cfg(not(loom))]
pub use stats::AtomicCounting;
pub use stats::{Counting, NoStats, SharedStatsPolicy, Statistics, Stats, StatsPolicy};
pub use sync::{RemoteList, SpinLock};

/// The page source a native allocator uses unless told otherwise.
#[cfg(unix)]
pub type DefaultSource = MmapSource;
/// The page source a native allocator uses unless told otherwise.
#[cfg(target_arch = "wasm32")]
pub type DefaultSource = WasmSource;
