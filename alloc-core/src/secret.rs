//! Per-heap secrets for hardening (encoded free-list links, tail canaries): random words from the
//! OS where there is one, else mixed from address-space layout randomisation. Never allocates.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A counter so two secrets asked for at the same address still differ.
static DRAWS: AtomicUsize = AtomicUsize::new(0);

/// splitmix64's finaliser: spreads every input bit over the whole word.
#[inline]
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh non-zero secret. `salt` is any address the caller has (a heap's own address, a
/// freshly mapped run): under ASLR it carries entropy of its own, used on top of the OS's.
pub fn fresh(salt: usize) -> usize {
    let mut seed = mix(salt as u64 ^ 0x9e37_79b9_7f4a_7c15);
    // Relaxed: only uniqueness matters.
    seed ^= mix(DRAWS.fetch_add(1, Ordering::Relaxed) as u64 + 1);
    seed ^= os_random();
    let s = mix(seed) as usize;
    if s == 0 {
        0x5eed
    } else {
        s
    }
}

#[cfg(unix)]
fn os_random() -> u64 {
    let mut buf = [0u8; 8];
    // Non-blocking: early in boot the pool may not be ready, and an allocator must not block.
    match rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::NONBLOCK) {
        Ok(8) => u64::from_ne_bytes(buf),
        _ => {
            let local = 0u8;
            // The stack's address is randomised too.
            mix(&local as *const u8 as usize as u64)
        }
    }
}

#[cfg(not(unix))]
fn os_random() -> u64 {
    let local = 0u8;
    mix(&local as *const u8 as usize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_non_zero_and_differ() {
        let a = fresh(0x1000);
        let b = fresh(0x1000);
        assert!(a != 0 && b != 0 && a != b);
    }
}
