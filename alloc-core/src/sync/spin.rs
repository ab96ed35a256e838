//! A test-and-test-and-set spin lock with exponential backoff, as a `lock_api::RawMutex`, so any
//! layer can sit behind `lock_api::Mutex<SpinLock, _>` in `no_std` and inside `GlobalAlloc`
//! (it never allocates, unlike OS-parking mutexes that create per-thread state).

// lock_api needs a `const INIT`, which loom's atomics cannot give; the lock is not what the loom
// tests model (they check the lock-free structures), so under loom it uses core's atomics.
#[cfg(not(loom))]
use super::atomic::{spin_hint, AtomicBool, Ordering};
#[cfg(loom)]
use core::{
    hint::spin_loop as spin_hint,
    sync::atomic::{AtomicBool, Ordering},
};

/// The default lock policy of [`crate::Locked`].
#[derive(Debug)]
pub struct SpinLock {
    locked: AtomicBool,
}

// SAFETY: `lock` returns only after swapping `locked` from false to true with Acquire ordering,
// so one holder at a time; `unlock` stores false with Release, publishing the holder's writes.
unsafe impl lock_api::RawMutex for SpinLock {
    #[allow(clippy::declare_interior_mutable_const, reason = "lock_api's required const initialiser")]
    const INIT: SpinLock = SpinLock { locked: AtomicBool::new(false) };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        // Fast path: one uncontended swap.
        if !self.locked.swap(true, Ordering::Acquire) {
            return;
        }
        self.lock_contended();
    }

    #[inline]
    fn try_lock(&self) -> bool {
        !self.locked.swap(true, Ordering::Acquire)
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl SpinLock {
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 1u32;
        loop {
            // Test before test-and-set: spin on a shared read so waiting cores don't bounce the
            // cache line with writes.
            while self.locked.load(Ordering::Relaxed) {
                if spins <= 64 {
                    for _ in 0..spins {
                        spin_hint();
                    }
                    spins *= 2;
                } else {
                    yield_thread();
                }
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

/// Gives the core away when spinning has gone on long enough that the holder is probably not
/// running (more threads than cores, as on our 2-core machines).
fn yield_thread() {
    #[cfg(unix)]
    // SAFETY: sched_yield has no preconditions.
    unsafe {
        libc::sched_yield();
    }
    #[cfg(not(unix))]
    spin_hint();
}

#[cfg(test)]
mod tests {
    use super::*;
    use lock_api::RawMutex;

    #[test]
    fn lock_excludes_and_unlock_releases() {
        let l = SpinLock::INIT;
        l.lock();
        assert!(l.is_locked());
        assert!(!l.try_lock());
        // SAFETY: locked just above on this thread.
        unsafe { l.unlock() };
        assert!(l.try_lock());
        // SAFETY: locked by the try_lock above.
        unsafe { l.unlock() };
    }

    /// Fewer rounds under Miri, which interprets every step.
    const ROUNDS: u64 = if cfg!(miri) { 50 } else { 10_000 };

    #[test]
    fn threads_increment_under_the_lock() {
        let m = std::sync::Arc::new(lock_api::Mutex::<SpinLock, u64>::new(0));
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 4 * ROUNDS);
    }
}
