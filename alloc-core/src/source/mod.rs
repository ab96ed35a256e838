//! Page sources: the OS layer at the bottom of every allocator.
//!
//! A source hands out page-aligned runs of memory and takes them back, through `&self`, so one
//! source can serve several layers and the shared (lock-free) ones. Optional capabilities, each
//! its own trait, say what else it can do: [`Decommit`] (give the pages' memory back to the OS
//! while keeping the addresses), [`Protect`] (make pages fault on any access, for quarantine and
//! guard pages) and [`Reserve`] (address space first, memory later).

mod fixed;
mod limit;
#[cfg(unix)]
mod mmap;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use fixed::FixedSource;
pub use limit::{Limited, Meter};
#[cfg(unix)]
pub use mmap::{page_size, MmapSource};
#[cfg(target_arch = "wasm32")]
pub use wasm::WasmSource;

use core::ptr::NonNull;

/// A source of page-aligned memory.
///
/// # Safety
///
/// A run returned by [`PageSource::map`] is valid for reads and writes of `size` bytes, aligned to
/// `max(align, page_size())`, disjoint from every other run currently mapped from this source, and
/// stays valid until it is unmapped or the source is dropped. When [`PageSource::maps_zeroed`]
/// says so, every run reads as zero when handed out. [`PageSource::page_size`] never changes.
/// No method calls back into an allocator built on this source (the layers above promise the
/// same of themselves, see [`crate::Layer`]).
pub unsafe trait PageSource {
    /// The granule of this source: every size passed in is a multiple of it. A power of two,
    /// the same on every call.
    fn page_size(&self) -> usize;

    /// Maps `size` bytes aligned to `align`, or `None` when the memory is not available (the
    /// caller fails cleanly). `size` is a non-zero multiple of [`PageSource::page_size`];
    /// `align` is a power of two.
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>>;

    /// Gives a run back.
    ///
    /// # Safety
    ///
    /// `ptr` and `size` are exactly a run currently mapped from this source (or a page-aligned
    /// tail or head of one that the caller stops using), and nothing uses it afterwards.
    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize);

    /// True when every run comes back zero-filled from [`PageSource::map`] (fresh pages from the
    /// OS), so allocators can skip zeroing fresh memory and a large `calloc` stays lazy. A
    /// property of the source: the same answer for its whole life.
    fn maps_zeroed(&self) -> bool {
        false
    }

    /// Gives the memory behind `ptr..ptr+size` back where this source can (it implements
    /// [`Decommit`]), keeping the range mapped and usable; `false`, touching nothing, where it
    /// cannot. How a layer generic over every source returns free memory where there is an OS
    /// to return it to.
    ///
    /// # Safety
    ///
    /// As for [`Decommit::decommit`].
    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        let _ = (ptr, size);
        false
    }

    /// True when a range [`PageSource::discard`] gave back reads as zero afterwards
    /// ([`Decommit::decommit_zeroes`]), so a layer may skip zeroing it when it is reused.
    fn discard_zeroes(&self) -> bool {
        false
    }

    /// [`PageSource::map`], with the run reading as zero. The default writes zeroes unless
    /// [`PageSource::maps_zeroed`]; a source that knows which of its pages are already zero (a
    /// span heap over fresh or decommitted pages) writes only the others, so a huge zeroed
    /// request stays lazy on it too.
    fn map_zeroed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let p = self.map(size, align)?;
        if !self.maps_zeroed() {
            // SAFETY: a fresh run of `size` bytes, ours.
            unsafe { p.as_ptr().write_bytes(0, size) };
        }
        Some(p)
    }

    /// A hint that `ptr..ptr+size` (in a run from this source) is a large heap that benefits
    /// from huge pages (fewer TLB misses and page faults). Sources without huge pages ignore it.
    fn prefer_huge_pages(&self, ptr: NonNull<u8>, size: usize) {
        let _ = (ptr, size);
    }
}

/// Capability: return the memory behind mapped pages to the OS, keeping the addresses usable.
/// This is how allocators scavenge.
///
/// # Safety
///
/// After `decommit`, the range stays mapped and readable and writable; it reads as zero when
/// [`Decommit::decommit_zeroes`] is true, and holds unspecified bytes otherwise.
pub unsafe trait Decommit: PageSource {
    /// Returns the memory behind `ptr..ptr+size` to the OS.
    ///
    /// # Safety
    ///
    /// The range lies in a run mapped from this source, is page-aligned, and holds no data the
    /// caller still needs.
    unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize);

    /// True when decommitted pages read as zero afterwards (Linux's `MADV_DONTNEED` on private
    /// anonymous memory), so a layer may skip zeroing them when they are reused.
    fn decommit_zeroes(&self) -> bool;
}

/// How pages may be accessed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every access faults (quarantine, guard pages).
    None,
    /// Ordinary read and write.
    ReadWrite,
}

/// Capability: change the access rights of mapped pages.
///
/// # Safety
///
/// After `protect(.., Access::None)` any access to the range faults; after `Access::ReadWrite`
/// the range is usable again with its contents kept.
pub unsafe trait Protect: PageSource {
    /// Sets the access rights of `ptr..ptr+size`.
    ///
    /// # Safety
    ///
    /// The range lies in a run mapped from this source and is page-aligned; with `Access::None`,
    /// nothing the caller owns is accessed through it afterwards.
    unsafe fn protect(&self, ptr: NonNull<u8>, size: usize, access: Access);
}

/// Capability: reserve address space without memory, and commit it later.
///
/// # Safety
///
/// A reserved run faults on access until committed; committed pages behave like mapped ones and
/// read as zero at first. Reserved runs are given back with [`PageSource::unmap`].
pub unsafe trait Reserve: PageSource {
    /// Reserves `size` bytes of address space aligned to `align` (same rules as `map`).
    fn reserve(&self, size: usize, align: usize) -> Option<NonNull<u8>>;

    /// Makes `ptr..ptr+size` usable; `false` when the memory is not available.
    ///
    /// # Safety
    ///
    /// The range lies in a reserved run from this source and is page-aligned.
    unsafe fn commit(&self, ptr: NonNull<u8>, size: usize) -> bool;
}

// A reference to a source is a source: several layers can share one by borrowing it.
// SAFETY: every call is forwarded to the referenced source, which upholds the contract.
unsafe impl<S: PageSource + ?Sized> PageSource for &S {
    fn page_size(&self) -> usize {
        (**self).page_size()
    }
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        (**self).map(size, align)
    }
    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).unmap(ptr, size) }
    }
    fn maps_zeroed(&self) -> bool {
        (**self).maps_zeroed()
    }
    fn map_zeroed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        (**self).map_zeroed(size, align)
    }
    fn prefer_huge_pages(&self, ptr: NonNull<u8>, size: usize) {
        (**self).prefer_huge_pages(ptr, size)
    }
    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).discard(ptr, size) }
    }
    fn discard_zeroes(&self) -> bool {
        (**self).discard_zeroes()
    }
}

// SAFETY: forwarded to the referenced source.
unsafe impl<S: Decommit + ?Sized> Decommit for &S {
    unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).decommit(ptr, size) }
    }
    fn decommit_zeroes(&self) -> bool {
        (**self).decommit_zeroes()
    }
}

// SAFETY: forwarded to the referenced source.
unsafe impl<S: Protect + ?Sized> Protect for &S {
    unsafe fn protect(&self, ptr: NonNull<u8>, size: usize, access: Access) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).protect(ptr, size, access) }
    }
}
