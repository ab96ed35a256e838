//! Monotonic time for policies that act on age (a scavenger that returns pages free for longer
//! than a delay): nanoseconds from `clock_gettime(CLOCK_MONOTONIC)` on unix (the vDSO, no system
//! call), and nothing elsewhere, where such policies fall back to their byte limits.

/// Nanoseconds since an arbitrary fixed point, or `None` where the platform has no clock.
#[inline]
pub fn now_ns() -> Option<u64> {
    #[cfg(all(unix, not(miri)))]
    {
        // libc's, not rustix's: the C library's own vDSO entry is ready at startup, where
        // rustix's first call looks the vDSO symbol up (its weak-symbol code, and `CStr`'s
        // checks from std), code a preloaded malloc would otherwise bring into memory for one
        // call (alloc-malloc's RSS on small programs).
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid clock id and a valid out-pointer.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
            return None;
        }
        Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_moves_forward() {
        if let (Some(a), Some(b)) = (super::now_ns(), super::now_ns()) {
            assert!(b >= a);
        }
    }
}
