//! `mmap` on unix: map, unmap, decommit (`madvise(MADV_DONTNEED)`), protect (`mprotect`), and
//! reserve-then-commit. The only module in the workspace that makes memory-management syscalls.
//!
//! `ENOMEM` is an ordinary out-of-memory and makes `map` return `None`; any other failure means
//! the allocator's own bookkeeping is wrong, and aborts naming the call and errno.

use super::{Access, Decommit, PageSource, Protect, Reserve};
use crate::error::fatal;
use core::ptr::NonNull;

/// Pages straight from the kernel with anonymous private mappings.
#[derive(Copy, Clone, Debug, Default)]
pub struct MmapSource;

impl MmapSource {
    /// The source (stateless: every run is its own mapping).
    pub const fn new() -> Self {
        MmapSource
    }

    fn raw_map(size: usize, align: usize, prot: libc::c_int, flags: libc::c_int) -> Option<NonNull<u8>> {
        let page = page_size();
        debug_assert!(size > 0 && size.is_multiple_of(page), "size {size} is not a multiple of the page");
        let align = align.max(page);
        // Over-map by `align - page` so an aligned run of `size` fits, then trim both ends.
        let total = size.checked_add(align - page)?;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; no existing memory is
        // touched.
        let base = unsafe {
            libc::mmap(core::ptr::null_mut(), total, prot, flags | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if base == libc::MAP_FAILED {
            let errno = errno();
            if errno == libc::ENOMEM || errno == libc::EINVAL && total > isize::MAX as usize {
                return None;
            }
            fatal(format_args!("mmap of {total} bytes failed with errno {errno} at 0x0"));
        }
        let base = base.cast::<u8>();
        let start = crate::ptr::align_up(base as usize, align)?;
        let head = start - base as usize;
        let tail = total - head - size;
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

/// The OS page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 {
        4096
    } else {
        p as usize
    }
}

fn errno() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe {
        *libc::__errno_location()
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: __error returns this thread's errno slot, always valid.
    unsafe {
        *libc::__error()
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    )))]
    0
}

/// # Safety
///
/// `ptr..ptr+len` is a page-aligned piece of a mapping nobody uses any more.
unsafe fn unmap_or_abort(ptr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    if unsafe { libc::munmap(ptr.cast(), len) } != 0 {
        fatal(format_args!("munmap of {len} bytes failed with errno {} at {ptr:p}", errno()));
    }
}

// SAFETY: every run is a fresh private mapping of at least `size` bytes, aligned as asked, that
// only the caller knows about until it is unmapped.
unsafe impl PageSource for MmapSource {
    fn page_size(&self) -> usize {
        page_size()
    }

    fn map(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        Self::raw_map(size, align, libc::PROT_READ | libc::PROT_WRITE, 0)
    }

    unsafe fn unmap(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller gives back a run (or piece of one) it no longer uses.
        unsafe { unmap_or_abort(ptr.as_ptr(), size) }
    }

    fn maps_zeroed(&self) -> bool {
        true
    }
}

// SAFETY: MADV_DONTNEED on private anonymous memory drops the pages; the range stays mapped and
// reads as zero-fill on the next touch.
unsafe impl Decommit for MmapSource {
    unsafe fn decommit(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller names a page-aligned range of one of our mappings it no longer needs.
        if unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_DONTNEED) } != 0 {
            fatal(format_args!("madvise of {size} bytes failed with errno {} at {ptr:p}", errno()));
        }
    }
}

// SAFETY: mprotect changes the rights of exactly the named pages, keeping their contents.
unsafe impl Protect for MmapSource {
    unsafe fn protect(&mut self, ptr: NonNull<u8>, size: usize, access: Access) {
        let prot = match access {
            Access::None => libc::PROT_NONE,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        };
        // SAFETY: the caller names a page-aligned range of one of our mappings.
        if unsafe { libc::mprotect(ptr.as_ptr().cast(), size, prot) } != 0 {
            fatal(format_args!("mprotect of {size} bytes failed with errno {} at {ptr:p}", errno()));
        }
    }
}

// SAFETY: a reservation is a PROT_NONE mapping (faults until committed); commit makes pages
// read/write with mprotect.
unsafe impl Reserve for MmapSource {
    fn reserve(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        Self::raw_map(size, align, libc::PROT_NONE, libc::MAP_NORESERVE)
    }

    unsafe fn commit(&mut self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller names a page-aligned range of one of our reservations.
        if unsafe { libc::mprotect(ptr.as_ptr().cast(), size, libc::PROT_READ | libc::PROT_WRITE) } == 0 {
            return true;
        }
        let e = errno();
        if e == libc::ENOMEM {
            return false;
        }
        fatal(format_args!("mprotect of {size} bytes failed with errno {e} at {ptr:p}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot unmap part of a mapping, which aligned maps trim")]
    fn map_honours_large_alignment_and_is_zeroed() {
        let mut s = MmapSource::new();
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
        let mut s = MmapSource::new();
        let page = s.page_size();
        assert!(s.map(crate::ptr::align_down(usize::MAX, page), page).is_none());
        assert!(s.map(1 << 60, page).is_none());
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri supports only read/write anonymous mappings")]
    fn decommit_zeroes_and_reserve_commits() {
        let mut s = MmapSource::new();
        let page = s.page_size();
        let p = s.reserve(page * 4, page).expect("reserve");
        // SAFETY: committing and using pages of our own reservation.
        unsafe {
            assert!(s.commit(p, page * 2));
            p.as_ptr().write(42);
            s.decommit(p, page);
            assert_eq!(*p.as_ptr(), 0);
            s.protect(p, page, Access::None);
            s.protect(p, page, Access::ReadWrite);
            assert_eq!(*p.as_ptr(), 0);
            s.unmap(p, page * 4);
        }
    }
}
