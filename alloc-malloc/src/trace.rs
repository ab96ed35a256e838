//! Trace recording: with `ALLOC_MALLOC_TRACE=FILE`, every allocation and free the program makes
//! is written to FILE in the format of `conformance/traces/` (`Alloc(n)` numbered from 0 in
//! order, `Free(i)` naming the allocation it frees; a `realloc` is a free and a new
//! allocation), so `compare --trace FILE` replays the program against every allocator.
//!
//! Allocates nothing through `malloc`: the address-to-number table is an open-addressing hash
//! table in its own mapping, the output goes through a static buffer written with `write(2)`
//! when full and at exit. Everything is behind one spin lock. A forked child stops recording
//! (its parent's buffered lines are not written twice).

use alloc_core::SpinLock;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};

/// Slots of the address table (16 bytes each, mapped lazily by the OS): live blocks at once.
const SLOTS: usize = 1 << 23;
const BUF: usize = 1 << 16;
/// A slot whose block was freed (the probe goes on past it).
const GONE: usize = 1;

struct Recorder {
    fd: c_int,
    table: *mut [usize; 2],
    next: usize,
    live: usize,
    buf: [u8; BUF],
    len: usize,
}

// SAFETY: the table and buffer are only touched under the lock.
unsafe impl Send for Recorder {}

static ON: AtomicBool = AtomicBool::new(false);
/// All zero, so it sits in `.bss` (untouched pages are not resident) rather than taking 64 KiB
/// of `.data` that every process maps in from the file (`fd` is only read once `start` has set
/// it).
static REC: lock_api::Mutex<SpinLock, Recorder> =
    lock_api::Mutex::new(Recorder { fd: 0, table: core::ptr::null_mut(), next: 0, live: 0, buf: [0; BUF], len: 0 });

/// Starts recording into `path` (a NUL-terminated C string). Called once, at the first
/// allocation.
///
/// # Safety
///
/// `path` is a valid C string.
pub unsafe fn start(path: *const core::ffi::c_char) {
    // SAFETY: a valid C string; flags and mode for a new or truncated file.
    let fd = unsafe { libc::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o644) };
    // SAFETY: an anonymous private mapping; NORESERVE: pages are touched only as slots are used.
    let table = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            SLOTS * 16,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if fd < 0 || table == libc::MAP_FAILED {
        crate::write_stderr(&[b"alloc-malloc: cannot record the trace (open or mmap failed); not recording\n"]);
        return;
    }
    let mut r = REC.lock();
    r.fd = fd;
    r.table = table.cast();
    ON.store(true, Ordering::Release);
    drop(r);
    // SAFETY: registers a plain function; glibc keeps the first handlers in a static block.
    unsafe { libc::atexit(at_exit) };
}

extern "C" fn at_exit() {
    if ON.swap(false, Ordering::AcqRel) {
        REC.lock().flush();
    }
}

/// Takes the recorder's lock before `fork` (so no other thread holds it across the fork).
pub fn lock_for_fork() {
    core::mem::forget(REC.lock());
}

/// Releases the lock taken by [`lock_for_fork`]; in the child, also stops recording, dropping
/// the parent's buffered lines (the parent writes them).
///
/// # Safety
///
/// After `lock_for_fork` on this thread, or in the child of the fork that followed.
pub unsafe fn unlock_after_fork(child: bool) {
    if child && ON.swap(false, Ordering::AcqRel) {
        // SAFETY: this thread holds the lock (taken by `lock_for_fork` before the fork).
        unsafe { (*REC.data_ptr()).len = 0 };
    }
    // SAFETY: held since `lock_for_fork`, as the caller promises.
    unsafe { REC.force_unlock() };
}

impl Recorder {
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writing our buffer's filled part to our file.
            let n = unsafe { libc::write(self.fd, self.buf[done..].as_ptr().cast(), self.len - done) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        self.len = 0;
    }

    fn line(&mut self, what: &[u8], n: usize) {
        if self.len + 32 > BUF {
            self.flush();
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for part in [what, &digits[i..], b")\n"] {
            self.buf[self.len..self.len + part.len()].copy_from_slice(part);
            self.len += part.len();
        }
    }

    fn slot(addr: usize) -> usize {
        (alloc_core::secret::mix(addr as u64) as usize) & (SLOTS - 1)
    }

    fn insert(&mut self, addr: usize, idx: usize) -> bool {
        if self.live >= SLOTS / 2 {
            return false;
        }
        let mut s = Self::slot(addr);
        loop {
            // SAFETY: `s < SLOTS`, inside the table's mapping.
            let e = unsafe { &mut *self.table.add(s) };
            if e[0] == 0 || e[0] == GONE {
                *e = [addr, idx];
                self.live += 1;
                return true;
            }
            s = (s + 1) & (SLOTS - 1);
        }
    }

    fn remove(&mut self, addr: usize) -> Option<usize> {
        let mut s = Self::slot(addr);
        loop {
            // SAFETY: as above.
            let e = unsafe { &mut *self.table.add(s) };
            if e[0] == 0 {
                return None;
            }
            if e[0] == addr {
                e[0] = GONE;
                self.live -= 1;
                return Some(e[1]);
            }
            s = (s + 1) & (SLOTS - 1);
        }
    }
}

/// Records an allocation of `size` bytes at `addr`.
#[inline]
pub fn alloc(addr: *mut core::ffi::c_void, size: usize) {
    if !ON.load(Ordering::Relaxed) || addr.is_null() {
        return;
    }
    let mut r = REC.lock();
    let idx = r.next;
    if r.insert(addr as usize, idx) {
        r.next += 1;
        r.line(b"Alloc(", size);
    }
}

/// Records the free of the block at `addr` (unknown addresses, allocated before recording
/// started, are skipped).
#[inline]
pub fn free(addr: *mut core::ffi::c_void) {
    if !ON.load(Ordering::Relaxed) || addr.is_null() {
        return;
    }
    let mut r = REC.lock();
    if let Some(idx) = r.remove(addr as usize) {
        r.line(b"Free(", idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fork handler holds the recorder's lock from before `fork` until after it (a child
    /// forked while another thread wrote a line would otherwise inherit it held), and gives it
    /// back; in the parent, recording goes on. (The fork test cannot make a thread hold the
    /// lock at the fork on purpose: this handler's lock survived mutation testing until
    /// 2026-12-03.)
    #[test]
    fn the_fork_handler_holds_the_recorders_lock_and_gives_it_back() {
        assert!(!REC.is_locked());
        lock_for_fork();
        let held = REC.is_locked();
        // SAFETY: taken just above, by this thread.
        unsafe { unlock_after_fork(false) };
        assert!(held, "held across fork");
        assert!(!REC.is_locked(), "and given back");
    }
}
