//! Address arithmetic: alignment helpers, all checked for overflow. Every pointer computation in
//! the workspace's layers goes through here so the overflow reasoning lives in one place.

use core::ptr::NonNull;

/// Rounds `addr` up to a multiple of `align` (a power of two), or `None` on overflow.
#[inline(always)]
pub const fn align_up(addr: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    match addr.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `addr` down to a multiple of `align` (a power of two).
#[inline(always)]
pub const fn align_down(addr: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    addr & !(align - 1)
}

/// True when `addr` is a multiple of `align` (a power of two).
#[inline(always)]
pub const fn is_aligned(addr: usize, align: usize) -> bool {
    addr & (align - 1) == 0
}

/// A non-null, `align`-aligned pointer for a zero-size block. Never dereferenced; freeing it is a
/// no-op in every front.
#[inline(always)]
pub const fn dangling(align: usize) -> NonNull<u8> {
    debug_assert!(align.is_power_of_two());
    // `align` is a power of two, hence non-zero, and aligned to itself.
    NonNull::without_provenance(match core::num::NonZeroUsize::new(align) {
        Some(a) => a,
        None => core::num::NonZeroUsize::MIN,
    })
}

/// A slice pointer of `len` bytes at `ptr`.
#[inline(always)]
pub const fn block(ptr: NonNull<u8>, len: usize) -> NonNull<[u8]> {
    NonNull::slice_from_raw_parts(ptr, len)
}

/// The pointer `offset` bytes past `base`, keeping `base`'s provenance.
///
/// # Safety
///
/// `base + offset` lies within (or one past) the allocation `base` points into.
#[inline(always)]
pub unsafe fn add(base: NonNull<u8>, offset: usize) -> NonNull<u8> {
    // SAFETY: the caller keeps the result inside base's allocation, which does not wrap to null.
    unsafe { base.add(offset) }
}

/// A pointer to `addr` that carries `base`'s provenance (for layers that track addresses as
/// integers and point back into one mapping).
///
/// # Safety
///
/// `addr` lies within (or one past) the allocation `base` points into.
#[inline(always)]
pub unsafe fn with_addr(base: NonNull<u8>, addr: usize) -> NonNull<u8> {
    // SAFETY: addr is inside base's allocation, whose addresses are never zero.
    unsafe { base.with_addr(core::num::NonZeroUsize::new_unchecked(addr)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_and_detects_overflow() {
        assert_eq!(align_up(0, 16), Some(0));
        assert_eq!(align_up(1, 16), Some(16));
        assert_eq!(align_up(16, 16), Some(16));
        assert_eq!(align_up(4097, 4096), Some(8192));
        assert_eq!(align_up(usize::MAX, 2), None);
        assert_eq!(align_up(usize::MAX - 4094, 4096), None);
    }

    #[test]
    fn align_down_and_is_aligned_agree() {
        for a in [1usize, 2, 8, 64, 4096] {
            for x in [0usize, 1, 63, 64, 65, 4095, 4096, 10_000] {
                assert!(is_aligned(align_down(x, a), a));
                assert!(align_down(x, a) <= x && x - align_down(x, a) < a);
            }
        }
    }

    #[test]
    fn dangling_is_aligned_and_non_null() {
        for shift in 0..20 {
            let a = 1usize << shift;
            assert_eq!(dangling(a).as_ptr() as usize, a);
        }
    }
}
