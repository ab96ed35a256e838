//! Monotonic time for policies that act on age (a scavenger that returns pages free for longer
//! than a delay): nanoseconds from `clock_gettime(CLOCK_MONOTONIC)` on unix (the vDSO, no system
//! call), and nothing elsewhere, where such policies fall back to their byte limits.

/// Nanoseconds since an arbitrary fixed point, or `None` where the platform has no clock.
#[inline]
pub fn now_ns() -> Option<u64> {
    #[cfg(all(unix, not(miri)))]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
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
