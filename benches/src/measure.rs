//! Time and memory of one workload run: wall time per operation, and the process's resident
//! memory from `/proc/self/status` (peak `VmHWM`, current `VmRSS`) relative to a baseline taken
//! before the allocator was made. One workload per process keeps the peak meaningful.

use std::time::Duration;

/// What one run measured.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Wall time of the timed pass divided by its operations.
    pub ns_per_op: f64,
    /// Allocator operations in the timed pass (allocations, frees, reallocations).
    pub ops: u64,
    /// Peak resident bytes above the baseline.
    pub peak_rss: u64,
    /// Resident bytes above the baseline after the workload freed everything (heap still alive).
    pub rss_after: u64,
    /// The same after the allocator's trim (glibc's `malloc_trim`, our `trim`), or
    /// `u64::MAX` where it has none.
    pub rss_trimmed: u64,
    /// Peak bytes the workload held live (requested sizes).
    pub peak_live: u64,
}

impl Sample {
    /// Peak resident bytes per peak live byte.
    pub fn overhead(&self) -> Option<f64> {
        (self.peak_live > 0).then(|| self.peak_rss as f64 / self.peak_live as f64)
    }

    /// One line for the parent process to read back.
    pub fn encode(&self) -> String {
        format!(
            "SAMPLE {} {} {} {} {} {}",
            self.ns_per_op, self.ops, self.peak_rss, self.rss_after, self.peak_live, self.rss_trimmed
        )
    }

    /// Reads a line written by [`Sample::encode`].
    pub fn decode(line: &str) -> Option<Sample> {
        let mut it = line.strip_prefix("SAMPLE ")?.split_whitespace();
        Some(Sample {
            ns_per_op: it.next()?.parse().ok()?,
            ops: it.next()?.parse().ok()?,
            peak_rss: it.next()?.parse().ok()?,
            rss_after: it.next()?.parse().ok()?,
            peak_live: it.next()?.parse().ok()?,
            rss_trimmed: it.next()?.parse().ok()?,
        })
    }
}

/// Counts a workload reports.
#[derive(Copy, Clone, Debug, Default)]
pub struct Counts {
    /// Allocator operations.
    pub ops: u64,
    /// Peak live bytes.
    pub peak_live: u64,
}

/// Tracks live bytes and their peak inside a workload.
#[derive(Default)]
pub struct Live {
    now: u64,
    peak: u64,
}

impl Live {
    /// `n` bytes became live.
    #[inline(always)]
    pub fn add(&mut self, n: usize) {
        self.now += n as u64;
        self.peak = self.peak.max(self.now);
    }
    /// `n` bytes were freed.
    #[inline(always)]
    pub fn sub(&mut self, n: usize) {
        self.now -= n as u64;
    }
    /// The peak.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

/// A field of `/proc/self/status` in bytes (Linux); 0 elsewhere.
fn status_bytes(field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident bytes now.
pub fn rss_now() -> u64 {
    status_bytes("VmRSS:")
}

/// Peak resident bytes of this process so far.
pub fn rss_peak() -> u64 {
    status_bytes("VmHWM:")
}

/// Builds a sample from a timed pass and the memory readings around it.
pub fn sample(elapsed: Duration, counts: Counts, baseline: u64, after: u64, trimmed: Option<u64>) -> Sample {
    Sample {
        ns_per_op: elapsed.as_nanos() as f64 / counts.ops.max(1) as f64,
        ops: counts.ops,
        peak_rss: rss_peak().saturating_sub(baseline),
        rss_after: after.saturating_sub(baseline),
        rss_trimmed: trimmed.map_or(u64::MAX, |t| t.saturating_sub(baseline)),
        peak_live: counts.peak_live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_through_their_line() {
        let s = Sample { ns_per_op: 12.5, ops: 1000, peak_rss: 4096, rss_after: 0, rss_trimmed: 0, peak_live: 2048 };
        assert_eq!(Sample::decode(&s.encode()), Some(s));
        assert_eq!(s.overhead(), Some(2.0));
        assert_eq!(Sample::decode("garbage"), None);
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            // Now first, then the peak: the peak can only have grown since.
            let now = rss_now();
            let peak = rss_peak();
            assert!(now > 0 && peak >= now, "VmRSS {now}, VmHWM {peak}");
        }
    }
}
