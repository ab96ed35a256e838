//! Telling sanitizers which pool blocks are in use. Neither AddressSanitizer nor valgrind sees
//! inside memory an allocator carves for itself; mimalloc annotates its heap for both, and so
//! does the pool, behind features:
//!
//! - `asan`: a freed block's payload is poisoned and an allocated one unpoisoned
//!   (`__asan_poison_memory_region`), so a read or write after free inside the pool is reported
//!   as `use-after-poison`. Needs a build with `-Zsanitizer=address` (cargo fuzz's default).
//! - `valgrind`: memcheck is told of every block as it is allocated and freed
//!   (`VALGRIND_MALLOCLIKE_BLOCK` / `FREELIKE_BLOCK` client requests), so it reports invalid
//!   reads and writes of freed pool blocks, and leaks, as it does for malloc's.
//!
//! Without either feature every function here is empty.

use core::ptr::NonNull;

#[cfg(feature = "asan")]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// A block of `len()` bytes at `p` was handed out. The length is found only when a feature
/// needs it (the block size is an atomic load the optimiser would keep otherwise).
#[inline(always)]
pub(crate) fn allocated(p: NonNull<u8>, len: impl FnOnce() -> usize) {
    #[cfg(any(feature = "asan", feature = "valgrind"))]
    let len = len();
    #[cfg(feature = "asan")]
    // SAFETY: p..p+len is memory of ours; the call only updates ASan's shadow.
    unsafe {
        __asan_unpoison_memory_region(p.as_ptr(), len)
    };
    #[cfg(feature = "valgrind")]
    valgrind::request(valgrind::MALLOCLIKE_BLOCK, [p.as_ptr() as usize, len, 0, 0, 0]);
    let _ = (p, len);
}

/// The block of `len()` bytes at `p` was freed. Its first word stays accessible: the free
/// lists link blocks through it (the pool's blocks have no header). The length is found only
/// when a feature needs it, as for [`allocated`].
#[inline(always)]
pub(crate) fn freed(p: NonNull<u8>, len: impl FnOnce() -> usize) {
    #[cfg(feature = "asan")]
    let len = len();
    #[cfg(feature = "asan")]
    // SAFETY: as above; blocks are 16 bytes at least, so p+8..p+len is inside the block.
    unsafe {
        __asan_poison_memory_region(p.as_ptr().add(8), len - 8)
    };
    #[cfg(feature = "valgrind")]
    {
        valgrind::request(valgrind::FREELIKE_BLOCK, [p.as_ptr() as usize, 0, 0, 0, 0]);
        valgrind::request(valgrind::MAKE_MEM_DEFINED, [p.as_ptr() as usize, 8, 0, 0, 0]);
    }
    let _ = (p, len);
}

/// A whole region goes back to the span heap: nothing in it is a pool block any more.
#[inline(always)]
pub(crate) fn released(p: NonNull<u8>, len: usize) {
    #[cfg(feature = "asan")]
    // SAFETY: as above.
    unsafe {
        __asan_unpoison_memory_region(p.as_ptr(), len)
    };
    let _ = (p, len);
}

#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
mod valgrind {
    /// Core client requests (valgrind.h: `VG_USERREQ__MALLOCLIKE_BLOCK`, `FREELIKE_BLOCK`).
    pub const MALLOCLIKE_BLOCK: usize = 0x1301;
    pub const FREELIKE_BLOCK: usize = 0x1302;
    /// memcheck.h: `VG_USERREQ__MAKE_MEM_DEFINED` ('M' 'C' base + 2).
    pub const MAKE_MEM_DEFINED: usize = 0x4d43_0002;

    /// Valgrind's client request: a magic instruction sequence that does nothing natively and
    /// that valgrind's JIT recognises (valgrind.h, `VALGRIND_DO_CLIENT_REQUEST_EXPR`, amd64).
    #[inline(always)]
    pub fn request(code: usize, args: [usize; 5]) -> usize {
        let block = [code, args[0], args[1], args[2], args[3], args[4]];
        let result: usize;
        // SAFETY: the rotations by 3, 13, 61 and 51 total 128: %rdi ends as it began (declared
        // as clobbered anyway), and the xchg of %rbx with itself is a no-op; natively the sequence
        // leaves the default (0) in %rdx. Under valgrind it reads `block` through %rax.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51", "xchg rbx, rbx",
                inout("rdx") 0usize => result,
                inout("rdi") 0usize => _,
                in("rax") block.as_ptr(),
                options(nostack),
            );
        }
        result
    }
}

#[cfg(all(feature = "valgrind", not(target_arch = "x86_64")))]
mod valgrind {
    pub const MALLOCLIKE_BLOCK: usize = 0x1301;
    pub const FREELIKE_BLOCK: usize = 0x1302;
    /// memcheck.h: `VG_USERREQ__MAKE_MEM_DEFINED` ('M' 'C' base + 2).
    pub const MAKE_MEM_DEFINED: usize = 0x4d43_0002;
    /// Client requests are only wired up for x86_64.
    pub fn request(_: usize, _: [usize; 5]) -> usize {
        0
    }
}
