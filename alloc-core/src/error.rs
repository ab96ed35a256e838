//! Detected heap misuse and the error policies that decide what happens next.
//!
//! The default, [`Abort`], writes one line to stderr without allocating
//! (`allocator error: <what> at <address>`) and aborts: continuing after heap corruption is how
//! exploits work. [`Panic`] is for library tests outside `GlobalAlloc`; [`Count`] records the
//! detection and lets the allocator go on, for fuzzing and for tests that check detection itself.

use crate::sync::atomic::{AtomicUsize, Ordering};
use core::fmt;

/// What was wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A block was freed that is already free.
    DoubleFree,
    /// A pointer this allocator never handed out (stack, static, another heap).
    ForeignPointer,
    /// A pointer inside a block, or not aligned like any block start.
    InteriorPointer,
    /// The layout given at free or realloc does not fit the block.
    WrongLayout,
    /// The canary past the end of a block was overwritten (a buffer overflow).
    CanaryCorrupted,
    /// A freed block was written before it was reused.
    WriteAfterFree,
    /// A freed arena or chunk was used.
    UseAfterFree,
    /// An allocator's own metadata is inconsistent.
    Corrupted,
    /// A free-list link does not decode to a block of the heap: a write after free, or an
    /// overflow of a neighbouring block into a free one.
    CorruptedFreeList,
    /// A sized deallocation (`free_sized`, C++'s sized `operator delete`) named a size or an
    /// alignment other than the block's.
    SizedMismatch,
}

impl ErrorKind {
    /// The phrase used in the report line.
    pub const fn describe(self) -> &'static str {
        match self {
            ErrorKind::DoubleFree => "double free",
            ErrorKind::ForeignPointer => "free of a pointer this allocator never allocated",
            ErrorKind::InteriorPointer => "free of an interior or misaligned pointer",
            ErrorKind::WrongLayout => "free with a size or alignment that does not fit the block",
            ErrorKind::CanaryCorrupted => "canary corrupted (overflow past the end of the block)",
            ErrorKind::WriteAfterFree => "write after free detected",
            ErrorKind::UseAfterFree => "use after free",
            ErrorKind::Corrupted => "heap metadata corrupted",
            ErrorKind::CorruptedFreeList => {
                "free list corrupted (a write after free, or an overflow into a free block)"
            }
            ErrorKind::SizedMismatch => "sized deallocation mismatch",
        }
    }
}

/// One detected misuse: what, and where.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeapError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// The address the bad call was made with.
    pub addr: usize,
}

impl HeapError {
    /// A report of `kind` at `addr`.
    pub const fn new(kind: ErrorKind, addr: usize) -> Self {
        HeapError { kind, addr }
    }
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:#x}", self.kind.describe(), self.addr)
    }
}

/// What an allocator does when it detects misuse.
///
/// After [`ErrorPolicy::report`] returns, the allocator must leave the bad call without touching
/// the memory involved (ignore the free, fail the realloc).
pub trait ErrorPolicy {
    /// The policy's initial value, for `const` constructors of global allocators.
    const INIT: Self;

    /// True when [`ErrorPolicy::report`] may panic. A layer with such a policy sets
    /// [`crate::Layer::PANICS`], and the `GlobalAlloc` fronts refuse it at compile time.
    const PANICS: bool = false;

    /// Handles one detected misuse. May not return (abort, panic).
    fn report(&self, err: HeapError);

    /// How many misuses were reported and survived so far (0 for a policy that does not record
    /// them: [`Abort`] never returns, [`Panic`] unwinds).
    fn detected(&self) -> usize {
        0
    }

    /// The most recent report recorded, if the policy records them.
    fn last(&self) -> Option<HeapError> {
        None
    }
}

/// Write the report line to stderr without allocating, then abort the process (SIGABRT).
#[derive(Copy, Clone, Debug, Default)]
pub struct Abort;

impl ErrorPolicy for Abort {
    const INIT: Self = Abort;

    #[cold]
    #[inline(never)]
    fn report(&self, err: HeapError) {
        fatal(format_args!("{err}"))
    }
}

/// Panic with the report line. Only for allocators used outside `GlobalAlloc` (a panic inside
/// `GlobalAlloc` is undefined behaviour waiting to happen).
#[derive(Copy, Clone, Debug, Default)]
pub struct Panic;

impl ErrorPolicy for Panic {
    const INIT: Self = Panic;
    const PANICS: bool = true;

    #[cold]
    #[inline(never)]
    fn report(&self, err: HeapError) {
        panic!("allocator error: {err}")
    }
}

/// Record the detection and go on: for fuzzing, and for tests that check that misuse is seen.
#[derive(Debug, Default)]
pub struct Count {
    detected: AtomicUsize,
    last_kind: AtomicUsize,
    last_addr: AtomicUsize,
}

const KINDS: [ErrorKind; 9] = [
    ErrorKind::DoubleFree,
    ErrorKind::ForeignPointer,
    ErrorKind::InteriorPointer,
    ErrorKind::WrongLayout,
    ErrorKind::CanaryCorrupted,
    ErrorKind::WriteAfterFree,
    ErrorKind::UseAfterFree,
    ErrorKind::Corrupted,
    ErrorKind::CorruptedFreeList,
];

impl Count {
    /// A counter at zero.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Count { detected: AtomicUsize::new(0), last_kind: AtomicUsize::new(0), last_addr: AtomicUsize::new(0) }
    }

    /// How many misuses were reported so far.
    pub fn detected(&self) -> usize {
        // Relaxed: a statistic, read after the reporting call returned on the same thread or
        // after a join that already orders it.
        self.detected.load(Ordering::Relaxed)
    }

    /// The most recent report, if any.
    pub fn last(&self) -> Option<HeapError> {
        if self.detected() == 0 {
            return None;
        }
        let kind = KINDS[self.last_kind.load(Ordering::Relaxed)];
        Some(HeapError::new(kind, self.last_addr.load(Ordering::Relaxed)))
    }
}

#[cfg(not(loom))]
impl ErrorPolicy for Count {
    #[allow(clippy::declare_interior_mutable_const, reason = "an initial value, copied into each allocator")]
    const INIT: Self = Count::new();

    fn report(&self, err: HeapError) {
        let index = KINDS.iter().position(|k| *k == err.kind).unwrap_or(0);
        self.last_kind.store(index, Ordering::Relaxed);
        self.last_addr.store(err.addr, Ordering::Relaxed);
        self.detected.fetch_add(1, Ordering::Relaxed);
    }

    fn detected(&self) -> usize {
        Count::detected(self)
    }

    fn last(&self) -> Option<HeapError> {
        Count::last(self)
    }
}

/// Writes `allocator error: <message>` and a newline to stderr without allocating, then aborts.
///
/// Used by [`Abort`] and for OS calls that fail with anything but `ENOMEM`. Takes no lock and
/// formats into a stack buffer, so it is safe to call from inside an allocator.
#[cold]
#[inline(never)]
pub fn fatal(message: fmt::Arguments<'_>) -> ! {
    // wasm32 has no stderr: trap at once and keep `core::fmt` out of the module (kilobytes).
    #[cfg(target_arch = "wasm32")]
    {
        let _ = message;
        sys::abort()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut line = LineBuf::new();
        // Writing to a fixed buffer cannot fail; a message too long is cut.
        let _ = fmt::Write::write_fmt(&mut line, format_args!("allocator error: {message}\n"));
        sys::write_stderr(line.as_line());
        sys::abort()
    }
}

/// A fixed stack buffer that `fmt::Write` fills, cutting what does not fit. (wasm32 has no
/// stderr: `fatal` traps there without formatting.)
#[cfg(not(target_arch = "wasm32"))]
struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl LineBuf {
    const fn new() -> Self {
        LineBuf { buf: [0; 256], len: 0 }
    }

    /// The line to write. A line cut at the buffer's end gets a newline in its last byte, so
    /// the next output starts on a line of its own.
    fn as_line(&mut self) -> &[u8] {
        if self.len == self.buf.len() {
            self.buf[self.len - 1] = b'\n';
        }
        &self.buf[..self.len]
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

mod sys {
    #[cfg(unix)]
    pub fn write_stderr(bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: the borrowed descriptor 2 lives only for this call, and nothing here closes
            // it. If stderr is closed, write fails and we stop. (rustix makes this call safe when
            // something else in the build turns on its `std` feature: the block is then unneeded.)
            #[allow(unused_unsafe)]
            let fd = unsafe { rustix::stdio::stderr() };
            match rustix::io::write(fd, rest) {
                Ok(n) if n > 0 => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                _ => return,
            }
        }
    }

    #[cfg(unix)]
    pub fn abort() -> ! {
        // SAFETY: abort has no preconditions; it raises SIGABRT and does not return (glibc's
        // abort neither allocates nor flushes stdio).
        unsafe { libc::abort() }
    }

    #[cfg(target_arch = "wasm32")]
    pub fn abort() -> ! {
        core::arch::wasm32::unreachable()
    }

    #[cfg(not(any(unix, target_arch = "wasm32")))]
    pub fn write_stderr(_bytes: &[u8]) {}

    #[cfg(not(any(unix, target_arch = "wasm32")))]
    pub fn abort() -> ! {
        // No portable abort in core: a panic inside a panic aborts.
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("allocator error: aborting");
            }
        }
        let _bomb = Bomb;
        panic!("allocator error: aborting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn report_line_names_what_and_where() {
        let e = HeapError::new(ErrorKind::DoubleFree, 0x1000);
        assert_eq!(e.to_string(), "double free at 0x1000");
    }

    #[test]
    fn count_records_the_last_report() {
        let c = Count::new();
        assert_eq!(c.last(), None);
        c.report(HeapError::new(ErrorKind::CanaryCorrupted, 0x20));
        c.report(HeapError::new(ErrorKind::WrongLayout, 0x40));
        assert_eq!(c.detected(), 2);
        assert_eq!(c.last(), Some(HeapError::new(ErrorKind::WrongLayout, 0x40)));
    }

    #[test]
    #[should_panic(expected = "allocator error: double free at 0x10")]
    fn panic_policy_panics_with_the_line() {
        Panic.report(HeapError::new(ErrorKind::DoubleFree, 0x10));
    }

    #[test]
    fn long_lines_are_cut_not_overflowed() {
        let mut b = LineBuf::new();
        for _ in 0..100 {
            let _ = fmt::Write::write_str(&mut b, "0123456789");
        }
        let line = b.as_line();
        assert_eq!((line.len(), line.last()), (256, Some(&b'\n')), "cut, and still one line");
    }
}
