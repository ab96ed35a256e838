//! The operation enum shared by the model-based property tests and the fuzz targets, so a
//! fuzzer finding replays as a proptest case and the other way round.

use arbitrary::Arbitrary;
use proptest::prelude::*;

/// One step of the allocator state machine. Sizes and alignments are raw codes, decoded by
/// [`decode_size`] and [`decode_align`], so every value a fuzzer produces is meaningful.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Allocate a block (zeroed if asked).
    Alloc {
        /// Size code.
        size: u32,
        /// Alignment code.
        align: u8,
        /// Use `allocate_zeroed`.
        zeroed: bool,
    },
    /// Free the live block at `slot % live`.
    Free {
        /// Which live block.
        slot: u16,
    },
    /// Grow or shrink the live block at `slot % live` to a new size.
    Realloc {
        /// Which live block.
        slot: u16,
        /// New size code.
        size: u32,
        /// Use `grow_zeroed` when growing.
        zeroed: bool,
    },
    /// Free everything at once.
    Reset,
    /// Grow or shrink the live block at `slot % live` to a new size *and* alignment (a larger
    /// alignment in place is where class-based heaps go wrong).
    ReallocAligned {
        /// Which live block.
        slot: u16,
        /// New size code.
        size: u32,
        /// New alignment code.
        align: u8,
        /// Use `grow_zeroed` when growing.
        zeroed: bool,
    },
}

/// Sizes up to 1 MiB, log-uniform: the top five bits pick a power-of-two bound
/// (1 B .. 1 MiB), the rest a size under it. Zero comes up often enough to test.
pub fn decode_size(code: u32) -> usize {
    let bound_shift = (code >> 27) % 21;
    (code & 0x07ff_ffff) as usize % ((1usize << bound_shift) + 1)
}

/// Alignments 1 .. 4096.
pub fn decode_align(code: u8) -> usize {
    1 << (code % 13)
}

/// Size codes weighted to small blocks (what programs allocate most) with a tail to 1 MiB.
fn size_code() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => (0u32..=8, any::<u32>()).prop_map(|(b, r)| (b << 27) | (r & 0x07ff_ffff)),
        3 => (9u32..=16, any::<u32>()).prop_map(|(b, r)| (b << 27) | (r & 0x07ff_ffff)),
        1 => (17u32..=20, any::<u32>()).prop_map(|(b, r)| (b << 27) | (r & 0x07ff_ffff)),
    ]
}

/// Alignment codes weighted to the common 1..16.
fn align_code() -> impl Strategy<Value = u8> {
    prop_oneof![6 => 0u8..=4, 1 => 5u8..=12]
}

/// The proptest strategy for [`Op`].
pub fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (size_code(), align_code(), any::<bool>()).prop_map(|(size, align, zeroed)| Op::Alloc { size, align, zeroed }),
        7 => any::<u16>().prop_map(|slot| Op::Free { slot }),
        4 => (any::<u16>(), size_code(), any::<bool>()).prop_map(|(slot, size, zeroed)| Op::Realloc { slot, size, zeroed }),
        2 => (any::<u16>(), size_code(), align_code(), any::<bool>())
            .prop_map(|(slot, size, align, zeroed)| Op::ReallocAligned { slot, size, align, zeroed }),
        1 => Just(Op::Reset),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_span_zero_to_a_mebibyte() {
        assert_eq!(decode_size(0), 0);
        // top bits 31 % 21 = 10: sizes up to 1 KiB
        assert_eq!(decode_size(u32::MAX), 0x07ff_ffff % 1025);
        assert_eq!(decode_size((20 << 27) | 0x07ff_ffff), 0x07ff_ffff % ((1 << 20) + 1));
        let max = (0..=u32::MAX).step_by(4099).map(decode_size).max().unwrap();
        assert!(max <= 1 << 20 && max > 1 << 19);
    }

    #[test]
    fn alignments_are_powers_of_two_up_to_a_page() {
        for c in 0..=255u8 {
            let a = decode_align(c);
            assert!(a.is_power_of_two() && a <= 4096);
        }
        assert_eq!(decode_align(12), 4096);
    }
}
