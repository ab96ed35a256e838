//! Size-class policies: how a slab or segregated layer rounds a request up to one of a fixed set
//! of block sizes. Each is a zero-sized type with a class count, the class of a size, and the size
//! of a class; every class size is a multiple of 16, so blocks carved back to back from a 16-byte
//! aligned start stay 16-byte aligned.
//!
//! - [`PowerOfTwo`]: 16, 32, 64, ... (a shift and a compare; up to half of a block wasted).
//! - [`Quarters`]: 16-byte steps to 128, then four classes per doubling (160, 192, 224, 256, 320,
//!   ...), as jemalloc and mimalloc space them: less than a quarter of a request wasted above 128.
//! - [`Primes`]: sizes that are a prime number of 16-byte units (the composable framework
//!   paper's prime classes, after SuperMalloc): blocks of different classes laid back to back do
//!   not fall on the same cache sets in step.

/// A size-class policy.
pub trait SizeClasses {
    /// Number of classes (class indices are `0..COUNT`).
    const COUNT: usize;
    /// The largest size a class holds.
    const MAX: usize;

    /// The smallest class holding `size` bytes (`size <= MAX`).
    fn class_of(size: usize) -> usize;

    /// The block size of class `c`.
    fn size(c: usize) -> usize;
}

/// Powers of two from 16 bytes to `2^MAX_SHIFT`.
#[derive(Copy, Clone, Debug, Default)]
pub struct PowerOfTwo<const MAX_SHIFT: u32 = 17>;

impl<const MAX_SHIFT: u32> SizeClasses for PowerOfTwo<MAX_SHIFT> {
    const COUNT: usize = (MAX_SHIFT - 4 + 1) as usize;
    const MAX: usize = 1 << MAX_SHIFT;

    #[inline(always)]
    fn class_of(size: usize) -> usize {
        let bits = size.saturating_sub(1) | 15;
        (usize::BITS - bits.leading_zeros() - 4) as usize
    }

    #[inline(always)]
    fn size(c: usize) -> usize {
        16 << c
    }
}

/// 16-byte steps up to 128 bytes, then four classes per doubling up to `2^MAX_SHIFT`.
#[derive(Copy, Clone, Debug, Default)]
pub struct Quarters<const MAX_SHIFT: u32 = 17>;

impl<const MAX_SHIFT: u32> SizeClasses for Quarters<MAX_SHIFT> {
    const COUNT: usize = 8 + 4 * (MAX_SHIFT as usize - 7);
    const MAX: usize = 1 << MAX_SHIFT;

    #[inline(always)]
    fn class_of(size: usize) -> usize {
        if size <= 128 {
            return size.saturating_sub(1) >> 4;
        }
        let s = size - 1;
        let lg = (usize::BITS - 1 - s.leading_zeros()) as usize;
        let quarter = (s >> (lg - 2)) & 3;
        8 + (lg - 7) * 4 + quarter
    }

    #[inline(always)]
    fn size(c: usize) -> usize {
        Self::class_size(c)
    }
}

impl<const MAX_SHIFT: u32> Quarters<MAX_SHIFT> {
    /// [`SizeClasses::size`] as a `const fn`, for tables built at compile time.
    #[inline(always)]
    pub const fn class_size(c: usize) -> usize {
        if c < 8 {
            return 16 * (c + 1);
        }
        let lg = 7 + (c - 8) / 4;
        let q = (c - 8) % 4;
        (1 << lg) + ((q + 1) << (lg - 2))
    }
}

/// Class sizes that are a prime number of 16-byte units, about four per doubling, up to 64 KiB.
#[derive(Copy, Clone, Debug, Default)]
pub struct Primes;

/// The prime multiples of 16 bytes: 2, 3, 5, 7 units, then primes about a fifth apart.
const PRIME_UNITS: [u16; 46] = [
    1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 43, 53, 61, 71, 83, 97, 113, 131, 151, 173, 199, 229, 263, 307, 353,
    401, 461, 523, 601, 691, 797, 911, 1049, 1201, 1381, 1583, 1823, 2099, 2411, 2777, 3191, 3659, 4096,
];

impl SizeClasses for Primes {
    const COUNT: usize = PRIME_UNITS.len();
    const MAX: usize = PRIME_UNITS[PRIME_UNITS.len() - 1] as usize * 16;

    #[inline]
    fn class_of(size: usize) -> usize {
        let units = size.div_ceil(16).max(1);
        // The first class with at least `units` units (the table is sorted): binary search.
        PRIME_UNITS.partition_point(|&u| (u as usize) < units)
    }

    #[inline(always)]
    fn size(c: usize) -> usize {
        PRIME_UNITS[c] as usize * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exhaustive<C: SizeClasses>() {
        let mut prev = 0;
        for c in 0..C::COUNT {
            let s = C::size(c);
            assert!(s > prev && s.is_multiple_of(16), "class {c} size {s} after {prev}");
            assert_eq!(C::class_of(s), c, "the size of class {c} maps back to it");
            if c + 1 < C::COUNT {
                assert_eq!(C::class_of(s + 1), c + 1, "one byte past class {c} is the next");
            }
            prev = s;
        }
        assert_eq!(C::size(C::COUNT - 1), C::MAX);
        // Every size natively; under Miri (which adds nothing to arithmetic without `unsafe`, and
        // took five minutes over every size) every 61st, the class edges being checked above.
        for size in (1..=C::MAX.min(1 << 17)).step_by(if cfg!(miri) { 61 } else { 1 }) {
            let c = C::class_of(size);
            assert!(c < C::COUNT && C::size(c) >= size, "{size} -> class {c}");
            assert!(c == 0 || C::size(c - 1) < size, "{size} is not in the smallest class");
        }
    }

    #[test]
    fn every_policy_maps_every_size_to_its_smallest_class() {
        exhaustive::<PowerOfTwo>();
        exhaustive::<Quarters>();
        exhaustive::<Quarters<14>>();
        exhaustive::<Primes>();
    }

    #[test]
    fn quarters_waste_less_than_a_quarter_above_128() {
        for size in (129..=(1 << 17)).step_by(if cfg!(miri) { 61 } else { 1 }) {
            let waste = Quarters::<17>::size(Quarters::<17>::class_of(size)) - size;
            assert!(waste * 4 < size, "{size}: {waste} wasted");
        }
    }
}
