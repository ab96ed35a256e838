//! `mmap` on unix, through `rustix` (raw syscalls on Linux, typed errno): map, unmap, decommit
//! (`madvise(MADV_DONTNEED)`), protect (`mprotect`), reserve-then-commit, and the huge-page hint.
//! The only module in the workspace that makes memory-management syscalls.
//!
//! `ENOMEM` is an ordinary out-of-memory and makes `map` return `None`; any other failure means
//! the allocator's own bookkeeping is wrong, and aborts naming the call and errno.
//!
//! Under Miri (`cfg(miri)`), which models a mapping as one allocation with read and write
//! access and runs neither `madvise` nor `mprotect`: runs are not trimmed and nothing is
//! unmapped (the addresses are never reused, as after a real `munmap`), reservations are mapped
//! read/write, `decommit` writes the zeroes Linux would give, and `protect` does nothing, so a
//! use after free does not fault under Miri. Everything above the source runs unchanged.

use super::{Access, Decommit, PageSource, Protect, Reserve};
use crate::error::fatal;
// The page-size cache is not a structure loom models: core's atomics, so it stays a `static`.
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};

/// Pages straight from the kernel with anonymous private mappings.
#[derive(Copy, Clone, Debug, Default)]
pub struct MmapSource;

/// The page size, read once: 0 until the first call of [`page_size`].
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The OS page size (4 KiB on x86_64, 16 or 64 KiB on some arm64 kernels), read from the auxiliary
/// vector once and cached.
#[inline]
pub fn page_size() -> usize {
    // Relaxed: every thread computes the same value; a race only repeats the read.
    let p = PAGE_SIZE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    let p = rustix::param::page_size();
    let p = if p.is_power_of_two() { p } else { 4096 };
    PAGE_SIZE.store(p, Ordering::Relaxed);
    p
}

impl MmapSource {
    /// The source (stateless: every run is its own mapping).
    pub const fn new() -> Self {
        MmapSource
    }

    fn raw_map(size: usize, align: usize, prot: ProtFlags, flags: MapFlags) -> Option<NonNull<u8>> {
        let page = page_size();
        crate::debug_check!(
            size > 0 && size.is_multiple_of(page),
            "mmap of {size} bytes: not a multiple of the page ({page})"
        );
        let align = align.max(page);
        // Over-map by `align - page` so an aligned run of `size` fits, then trim both ends.
        let total = size.checked_add(align - page)?;
        if total > isize::MAX as usize {
            return None;
        }
        // Miri maps read/write only (a reservation is committed from the start there).
        let prot = if cfg!(miri) { ProtFlags::READ | ProtFlags::WRITE } else { prot };
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; no existing memory is
        // touched.
        let base = match unsafe { mm::mmap_anonymous(core::ptr::null_mut(), total, prot, flags | MapFlags::PRIVATE) } {
            Ok(p) => p.cast::<u8>(),
            Err(Errno::NOMEM) => return None,
            Err(e) => fatal(format_args!("mmap of {total} bytes failed with errno {} at 0x0", e.raw_os_error())),
        };
        let start = crate::ptr::align_up(base as usize, align)?;
        let head = start - base as usize;
        let tail = total - head - size;
        if cfg!(miri) {
            // SAFETY: `base + head` is inside the mapping (see the module docs for why nothing
            // is trimmed under Miri).
            return Some(unsafe { NonNull::new_unchecked(base.add(head)) });
        }
        // SAFETY: head and tail are page-aligned pieces of the mapping just made that we never
        // hand out.
        unsafe {
            if head > 0 {
                unmap_or_abort(base, head);
            }
            if tail > 0 {
                unmap_or_abort(base.add(head + size), tail);
            }
        }
        // SAFETY: `base + head` is inside the mapping and non-null (mmap never maps page 0 here).
        Some(unsafe { NonNull::new_unchecked(base.add(head)) })
    }
}

/// # Safety
///
/// `ptr..ptr+len` is a page-aligned piece of a mapping nobody uses any more.
unsafe fn unmap_or_abort(ptr: *mut u8, len: usize) {
    if cfg!(miri) {
        return; // Miri cannot unmap a piece of a mapping (see the module docs).
    }
    // SAFETY: guaranteed by the caller.
    if let Err(e) = unsafe { mm::munmap(ptr.cast::<c_void>(), len) } {
        fatal(format_args!("munmap of {len} bytes failed with errno {} at {ptr:p}", e.raw_os_error()));
    }
}

// SAFETY: every run is a fresh private mapping of at least `size` bytes, aligned as asked, that
// only the caller knows about until it is unmapped; fresh anonymous pages read as zero.
unsafe impl PageSource for MmapSource {
    #[inline]
    fn page_size(&self) -> usize {
        page_size()
    }

    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        Self::raw_map(size, align, ProtFlags::READ | ProtFlags::WRITE, MapFlags::empty())
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller gives back a run (or piece of one) it no longer uses.
        unsafe { unmap_or_abort(ptr.as_ptr(), size) }
    }

    fn maps_zeroed(&self) -> bool {
        true
    }

    fn prefer_huge_pages(&self, ptr: NonNull<u8>, size: usize) {
        #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
        // SAFETY: advice only; the range is a run of ours. A kernel without transparent huge
        // pages answers EINVAL, which is harmless here, so the result is ignored.
        unsafe {
            let _ = mm::madvise(ptr.as_ptr().cast(), size, mm::Advice::LinuxHugepage);
        }
        #[cfg(any(not(any(target_os = "linux", target_os = "android")), miri))]
        let _ = (ptr, size);
    }

    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller's guarantees are `decommit`'s.
        unsafe { self.decommit(ptr, size) };
        true
    }

    fn discard_zeroes(&self) -> bool {
        self.decommit_zeroes()
    }
}

// SAFETY: MADV_DONTNEED drops the pages; the range stays mapped and usable. On Linux, private
// anonymous pages read as zero-fill on the next touch; elsewhere the contents are unspecified,
// which `decommit_zeroes` says.
unsafe impl Decommit for MmapSource {
    unsafe fn decommit(&self, ptr: NonNull<u8>, size: usize) {
        if cfg!(miri) {
            // SAFETY: the caller's range of our mapping, which it no longer needs.
            return unsafe { ptr.as_ptr().write_bytes(0, size) };
        }
        // SAFETY: the caller names a page-aligned range of one of our mappings it no longer needs.
        if let Err(e) = unsafe { mm::madvise(ptr.as_ptr().cast(), size, mm::Advice::LinuxDontNeed) } {
            fatal(format_args!("madvise of {size} bytes failed with errno {} at {ptr:p}", e.raw_os_error()));
        }
    }

    fn decommit_zeroes(&self) -> bool {
        cfg!(any(target_os = "linux", target_os = "android"))
    }
}

// SAFETY: mprotect changes the rights of exactly the named pages, keeping their contents.
unsafe impl Protect for MmapSource {
    unsafe fn protect(&self, ptr: NonNull<u8>, size: usize, access: Access) {
        if cfg!(miri) {
            return; // no mprotect under Miri (see the module docs)
        }
        let prot = match access {
            Access::None => MprotectFlags::empty(),
            Access::ReadWrite => MprotectFlags::READ | MprotectFlags::WRITE,
        };
        // SAFETY: the caller names a page-aligned range of one of our mappings.
        if let Err(e) = unsafe { mm::mprotect(ptr.as_ptr().cast(), size, prot) } {
            fatal(format_args!("mprotect of {size} bytes failed with errno {} at {ptr:p}", e.raw_os_error()));
        }
    }
}

// SAFETY: a reservation is a PROT_NONE mapping (faults until committed); commit makes pages
// read/write with mprotect, and they read as zero (fresh anonymous memory).
unsafe impl Reserve for MmapSource {
    fn reserve(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        Self::raw_map(size, align, ProtFlags::empty(), MapFlags::NORESERVE)
    }

    unsafe fn commit(&self, ptr: NonNull<u8>, size: usize) -> bool {
        if cfg!(miri) {
            return true; // reservations are read/write under Miri
        }
        // SAFETY: the caller names a page-aligned range of one of our reservations.
        match unsafe { mm::mprotect(ptr.as_ptr().cast(), size, MprotectFlags::READ | MprotectFlags::WRITE) } {
            Ok(()) => true,
            Err(Errno::NOMEM) => false,
            Err(e) => fatal(format_args!("mprotect of {size} bytes failed with errno {} at {ptr:p}", e.raw_os_error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot unmap part of a mapping, which aligned maps trim")]
    fn map_honours_large_alignment_and_is_zeroed() {
        let s = MmapSource::new();
        let page = s.page_size();
        for align in [page, 1 << 16, 1 << 21] {
            let p = s.map(page * 3, align).expect("map");
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: the run is 3 pages of fresh zeroed memory.
            unsafe {
                assert_eq!(*p.as_ptr(), 0);
                p.as_ptr().add(page * 3 - 1).write(7);
                s.unmap(p, page * 3);
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri's mmap does not model the kernel's address-space limit")]
    fn impossible_sizes_fail_cleanly() {
        let s = MmapSource::new();
        let page = s.page_size();
        assert!(s.map(crate::ptr::align_down(usize::MAX, page), page).is_none());
        assert!(s.map(1 << 60, page).is_none());
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri supports only read/write anonymous mappings")]
    fn decommit_zeroes_and_reserve_commits() {
        let s = MmapSource::new();
        let page = s.page_size();
        let p = s.reserve(page * 4, page).expect("reserve");
        // SAFETY: committing and using pages of our own reservation.
        unsafe {
            assert!(s.commit(p, page * 2));
            p.as_ptr().write(42);
            s.decommit(p, page);
            if s.decommit_zeroes() {
                assert_eq!(*p.as_ptr(), 0);
            }
            s.protect(p, page, Access::None);
            s.protect(p, page, Access::ReadWrite);
            s.unmap(p, page * 4);
        }
    }

    #[test]
    fn the_page_size_is_read_once_and_is_a_power_of_two() {
        let p = page_size();
        assert!(p.is_power_of_two() && p >= 4096);
        assert_eq!(page_size(), p);
        assert_eq!(MmapSource::new().page_size(), p);
    }
}
