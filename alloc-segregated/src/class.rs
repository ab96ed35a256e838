//! Size classes: powers of two from 16 bytes. A request goes to the smallest class that holds
//! both its size and its alignment, so every class's blocks can be kept aligned to their own size
//! (up to a page) and one class serves any alignment up to a page. The reference design's four
//! bins (16, 32, 64, 128) are the first four classes.

/// log2 of the smallest class.
pub const MIN_SHIFT: u32 = 4;
/// The smallest block.
pub const MIN_BLOCK: usize = 1 << MIN_SHIFT;
/// Blocks are aligned to their class size up to this; larger classes are page-aligned.
pub const NATURAL_ALIGN_MAX: usize = 4096;
/// Number of classes: 16 B up to the top bit of the address space.
pub const CLASSES: usize = (usize::BITS - MIN_SHIFT + 1) as usize;

const _: () = assert!(MIN_BLOCK >= core::mem::size_of::<usize>() && MIN_BLOCK.is_power_of_two());

/// The class for `size` bytes aligned to `align` (a power of two): `ceil(log2(max(size, align,
/// 16))) - 4`, size 0 included. Since `ceil_log2(max(a, b)) = max(ceil_log2(a), ceil_log2(b))`,
/// or-ing `size - 1` with `align - 1` replaces the max, and a constant alignment up to 16 folds
/// away: a saturating subtract, an or, a leading-zero count, a subtract.
#[inline(always)]
pub const fn class_of(size: usize, align: usize) -> usize {
    let bits = size.saturating_sub(1) | (align - 1) | (MIN_BLOCK - 1);
    (usize::BITS - bits.leading_zeros() - MIN_SHIFT) as usize
}

/// `class_align(c) - 1`, branch-free: the low bits that are zero in every block of class `c`.
#[inline(always)]
pub const fn class_align_mask(c: usize) -> usize {
    (class_size(c) - 1) & (NATURAL_ALIGN_MAX - 1)
}

/// The block size of class `c`.
#[inline(always)]
pub const fn class_size(c: usize) -> usize {
    MIN_BLOCK << c
}

/// The alignment every block of class `c` has.
#[inline(always)]
pub const fn class_align(c: usize) -> usize {
    let s = class_size(c);
    if s < NATURAL_ALIGN_MAX {
        s
    } else {
        NATURAL_ALIGN_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_hold_size_and_alignment() {
        for size in 1..5000usize {
            for shift in 0..13 {
                let align = 1 << shift;
                let c = class_of(size, align);
                assert!(class_size(c) >= size && class_size(c) >= align, "{size}/{align} -> {c}");
                assert!(class_align(c) >= align.min(NATURAL_ALIGN_MAX));
                assert_eq!(class_align_mask(c), class_align(c) - 1);
                assert!(c == 0 || class_size(c - 1) < size.max(align), "{size}/{align} not the smallest class");
            }
        }
    }

    #[test]
    fn the_first_four_classes_are_the_reference_bins() {
        assert_eq!(
            [class_of(1, 1), class_of(16, 8), class_of(17, 1), class_of(64, 16), class_of(128, 1)],
            [0, 0, 1, 2, 3]
        );
        assert_eq!(class_of(129, 1), 4);
        assert_eq!((class_of(0, 1), class_of(0, 64)), (0, 2));
        assert_eq!(class_of(isize::MAX as usize, 1), CLASSES - 2);
        assert!(class_of(1 << 63, 1) < CLASSES);
    }
}
