//! The C allocation ABI over our allocators, as a shared library: `LD_PRELOAD` puts it under any
//! program, C or Rust (C++ `new` reaches it through libstdc++).
//!
//! ```sh
//! cargo build --release -p alloc-malloc
//! LD_PRELOAD=target/release/liballoc_malloc.so sort big.txt                 # the default preset
//! ALLOC_MALLOC_PRESET=hardened LD_PRELOAD=target/release/liballoc_malloc.so ./program
//! ```
//!
//! `ALLOC_MALLOC_PRESET` picks the allocator when the library first allocates:
//!
//! | preset | allocator |
//! |---|---|
//! | `general` (the default), `pool` | alloc-pool-lockfree: size classes with per-thread caches and lock-free remote frees, large and over-aligned blocks on alloc-span |
//! | `segregated` | alloc-segregated behind a spin lock, a 16-byte size header per block (`alloc_core::compose::Header`) |
//! | `hardened` | a pool of its own with a checked header (double free, invalid free), a tail canary (overflow), zero on free checked at reuse (write after free), a per-thread randomised quarantine, inaccessible freed large blocks and `malloc(0)` blocks, checked sized deallocation |
//! | `span` | alloc-span behind a spin lock: a page per block at least, for programs of large buffers |
//!
//! `ALLOC_MALLOC_TRACE=FILE` records every allocation and free in the trace format of
//! `conformance/traces/`, for `compare --trace FILE`.
//!
//! An unknown name stops the program at its first allocation with one line on stderr. The
//! library never calls the libc allocator; `fork` in a threaded program is safe (every lock is
//! taken before and released after, through `pthread_atfork`); a thread's pool caches go back
//! when it exits (the pool's thread-exit hook).

mod hardened;
pub mod presets;

/// alloc-core's guide (`alloc_core::guide`), run here as doctests: its examples use the
/// conformance suite and this crate, which depend on alloc-core. Only in a doctest build of the
/// workspace (the file lies outside this package).
#[cfg(doctest)]
#[doc = include_str!("../../alloc-core/src/guide.md")]
pub struct AllocCoreGuide;
mod trace;

use alloc_core::ErrorKind;
use core::ffi::{c_char, c_int, c_void};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use presets::{Backend, Direct, Preset, PRESETS};

/// The alignment `malloc` guarantees (glibc's on 64-bit targets).
const MIN_ALIGN: usize = 16;

/// The environment variable that names the preset.
const VAR: &[u8] = b"ALLOC_MALLOC_PRESET\0";
/// The environment variable that names a file to record the program's allocations in.
const TRACE_VAR: &[u8] = b"ALLOC_MALLOC_TRACE\0";

/// The chosen preset: 1 + its index in [`PRESETS`] (or [`TRACED_INDEX`]); 0 until the first
/// call picks one.
static PRESET: AtomicU8 = AtomicU8::new(0);

/// Which direct path the C entry points take past the pool's fast paths: [`VIA_PRESET`] until
/// a preset is picked and for the presets served through [`Backend`] (or any preset while a
/// trace is recorded), [`POOL_DIRECT`] for `general`/`pool` (`malloc`, `calloc` and `free` call
/// the pool directly: no preset match, no `dyn` call, no second lookup of the block on `free`),
/// [`HARDENED_DIRECT`] for `hardened` (`malloc` and `free` go straight to its checks, which look
/// the block up once and report whatever is wrong themselves). One byte, so the presets that
/// `malloc`'s and `free`'s pool fast paths fall through for pay one load to find their way.
/// Relaxed: it only chooses between paths that reach the same allocator.
static DIRECT: AtomicU8 = AtomicU8::new(VIA_PRESET);
/// [`DIRECT`]: through the preset's [`Backend`].
const VIA_PRESET: u8 = 0;
/// [`DIRECT`]: straight to `presets::POOL`.
const POOL_DIRECT: u8 = 1;
/// [`DIRECT`]: straight to the hardened preset's checks.
const HARDENED_DIRECT: u8 = 2;

/// Set once the picked preset checks sized and aligned frees (`Backend::checks_sized_frees`,
/// asked once here instead of through the `dyn` backend on every C++ `delete`).
static CHECKS_SIZED: AtomicBool = AtomicBool::new(false);

fn write_stderr(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writing a valid buffer to fd 2; the result does not matter on the way out.
        let _ = unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
}

#[cold]
fn pick() -> &'static Preset {
    // SAFETY: getenv with a NUL-terminated name; it allocates nothing. The string it returns
    // stays valid while the environment is not changed, which no allocator call does.
    let value = unsafe { libc::getenv(VAR.as_ptr().cast::<c_char>()) };
    let chosen = if value.is_null() {
        0
    } else {
        // SAFETY: a NUL-terminated string from getenv.
        let name = unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes();
        match PRESETS.iter().position(|p| p.name.as_bytes() == name) {
            Some(i) => i,
            None => {
                write_stderr(&[b"alloc-malloc: unknown preset \"", name, b"\" in ALLOC_MALLOC_PRESET (known:"]);
                for (i, p) in PRESETS.iter().enumerate() {
                    write_stderr(&[if i == 0 { b" " } else { b", " }, p.name.as_bytes()]);
                }
                write_stderr(&[b")\n"]);
                // SAFETY: ends the process at once, without running anything that might allocate.
                unsafe { libc::_exit(2) }
            }
        }
    };
    // SAFETY: as for the preset's name.
    let path = unsafe { libc::getenv(TRACE_VAR.as_ptr().cast::<c_char>()) };
    let (chosen, preset) = if !path.is_null() && PRESETS[chosen].direct == Direct::Pool {
        (TRACED_INDEX, &presets::TRACED)
    } else {
        (chosen, &PRESETS[chosen])
    };
    // Before the preset is published: a thread that sees it sees whether sized frees are checked
    // (every thread picks the same preset from the same environment).
    CHECKS_SIZED.store(preset.backend.checks_sized_frees(), Ordering::Relaxed);
    if PRESET.compare_exchange(0, chosen as u8 + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: the handlers are plain functions that only take and release our locks.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
        if !path.is_null() {
            // SAFETY: a C string from getenv.
            unsafe { trace::start(path) };
        }
        if path.is_null() && preset.direct == Direct::Pool {
            DIRECT.store(POOL_DIRECT, Ordering::Relaxed);
        } else if path.is_null() && preset.direct == Direct::Hardened {
            DIRECT.store(HARDENED_DIRECT, Ordering::Relaxed);
        }
        return preset;
    }
    // Another thread picked first (the same name, from the same environment).
    chosen_preset().unwrap_or(preset)
}

/// The preset picked, if one is.
#[inline(always)]
fn chosen_preset() -> Option<&'static Preset> {
    match (PRESET.load(Ordering::Acquire) as usize).wrapping_sub(1) {
        TRACED_INDEX => Some(&presets::TRACED),
        i => PRESETS.get(i),
    }
}

/// [`PRESET`]'s index for [`presets::TRACED`], past the table.
const TRACED_INDEX: usize = PRESETS.len();

#[inline(always)]
fn backend() -> &'static dyn Backend {
    match chosen_preset() {
        Some(p) => p.backend,
        None => pick().backend,
    }
}

extern "C" fn fork_prepare() {
    trace::lock_for_fork();
    backend().lock_for_fork();
}

extern "C" fn fork_parent() {
    // SAFETY: runs after `fork_prepare` on the forking thread.
    unsafe {
        backend().unlock_after_fork();
        trace::unlock_after_fork(false);
    }
}

extern "C" fn fork_child() {
    // SAFETY: runs in the child of the fork `fork_prepare` ran before.
    unsafe {
        backend().unlock_after_fork();
        trace::unlock_after_fork(true);
    }
}

fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = e };
}

/// `malloc`'s layout for `size` bytes aligned to `align` (at least 16); `malloc(0)` gets a real
/// one-byte block, so every non-null result is unique and can be freed.
fn layout(size: usize, align: usize) -> Option<core::alloc::Layout> {
    core::alloc::Layout::from_size_align(size.max(1), align.max(MIN_ALIGN)).ok()
}

fn alloc(size: usize, align: usize, zero: bool) -> *mut c_void {
    if size == 0 && align <= MIN_ALIGN {
        // `hardened`: a unique address no access may touch.
        if let Some(p) = backend().alloc_zero_sized() {
            trace::alloc(p.as_ptr().cast(), 0);
            return p.as_ptr().cast();
        }
    }
    match layout(size, align).and_then(|l| backend().alloc(l, zero)) {
        Some(p) => {
            trace::alloc(p.as_ptr().cast(), size);
            p.as_ptr().cast()
        }
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// What the C caller is doing with a pointer, for the report when it is not a live block.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Use {
    /// `free`: a freed block freed again is a double free.
    Free,
    /// `realloc`, `malloc_usable_size`: a freed block used again is a use after free.
    Read,
}

/// The live block at `ptr` and its layout; reports what is wrong with any other pointer (a
/// double free, a use after free, an interior or a foreign pointer).
///
/// # Safety
///
/// `ptr` is what the C caller passed.
unsafe fn live(ptr: *mut c_void, how: Use) -> Option<(NonNull<u8>, core::alloc::Layout)> {
    let p = NonNull::new(ptr.cast::<u8>())?;
    let b = backend();
    // SAFETY: non-null; the backend checks that it owns `p` before reading near it.
    match unsafe { b.layout_of(p) } {
        Some(l) => Some((p, l)),
        None => {
            let mut err = b.misuse(p);
            if err.kind == ErrorKind::DoubleFree && how == Use::Read {
                err.kind = ErrorKind::UseAfterFree;
            }
            presets::report(err);
            None
        }
    }
}

/// C `malloc`.
///
/// # Safety
///
/// Always safe to call; the result is freed with `free`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // The common sizes first, with one compare: tested under `MAX_SMALL` first, a size of 1 KiB
    // or less took two (until 2026-12-03). The pool's fast path is the same code either way; the
    // compiler drops its own bound tests, which the branch already made.
    if size <= alloc_pool_lockfree::DIRECT_MAX {
        return match presets::POOL.allocate_small_fast(size) {
            Some(p) => p.as_ptr().cast(),
            None => malloc_small_slow(size),
        };
    }
    if size <= alloc_pool_lockfree::MAX_SMALL {
        // The pool's fast path alone (0 bytes get its smallest block, a unique pointer as
        // `malloc(0)` must be); everything else, the pool's slow path included, is a tail call,
        // so this path makes no call and needs no stack frame (it saved and restored a register
        // for the calls after it until 2026-12-02). It is tried before the preset is looked at
        // (since 2026-12-02; 3 instructions a call less): it finds a block only on a thread with
        // a heap of `POOL`, which no other preset makes (a traced `general` has a pool of its
        // own, `presets::POOL_TRACED`); everywhere else `malloc_small_slow` picks the path.
        return match presets::POOL.allocate_small_fast(size) {
            Some(p) => p.as_ptr().cast(),
            None => malloc_small_slow(size),
        };
    }
    malloc_other(size, DIRECT.load(Ordering::Relaxed))
}

/// `malloc` past the pool's fast path for the presets but `general` (`direct` is [`DIRECT`]).
#[inline(always)]
fn malloc_other(size: usize, direct: u8) -> *mut c_void {
    if direct == HARDENED_DIRECT && size != 0 {
        return malloc_hardened(size);
    }
    malloc_slow(size)
}

/// `malloc` of a small block when the pool's fast path had none: under `general` the pool's
/// slow path, under any other preset (or before one is picked) that preset's path. Every path
/// is a tail call, so the presets that come this way on every call keep no stack frame.
#[cold]
#[inline(never)]
extern "C" fn malloc_small_slow(size: usize) -> *mut c_void {
    match DIRECT.load(Ordering::Relaxed) {
        POOL_DIRECT => malloc_pool_slow(size),
        direct => malloc_other(size, direct),
    }
}

/// `malloc` of a small block under `general` when the pool's fast path had none: the pool's
/// slow path (which reports a misuse the fast path found, before anything else is handed out).
#[cold]
#[inline(never)]
extern "C" fn malloc_pool_slow(size: usize) -> *mut c_void {
    match presets::POOL.allocate_small_slow(size) {
        Ok(b) => b.as_ptr().cast(),
        Err(_) => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc` under `hardened` (size above 0): the preset's whole path in one function.
/// `extern "C"`, as `malloc_slow` is: a call that cannot unwind can be a tail call out of
/// `malloc` (which must not unwind), so `malloc` keeps no stack frame for any preset (until
/// 2026-12-02 the hardened call sat in `malloc`, whose frame then cost `general` 3 instructions
/// a call; a wrapper of its own cost `hardened` 11). The preset gives `None` only when the
/// system has no memory for the block: `ENOMEM`, with no second try through the generic path
/// (which asked the preset again, and made this function keep the size in a saved register
/// across the preset's calls: two instructions of every `malloc` until 2026-12-03).
#[inline(never)]
extern "C" fn malloc_hardened(size: usize) -> *mut c_void {
    match hardened::malloc(size) {
        Some(p) => p.as_ptr().cast(),
        None => out_of_memory(),
    }
}

/// A `malloc` that found no memory: `ENOMEM` and null.
#[cold]
#[inline(never)]
extern "C" fn out_of_memory() -> *mut c_void {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// `malloc` through the preset chosen (and the trace, when one is recorded).
#[cold]
#[inline(never)]
extern "C" fn malloc_slow(size: usize) -> *mut c_void {
    alloc(size, MIN_ALIGN, false)
}

/// C `free`.
///
/// # Safety
///
/// `ptr` is null or a live block from this library.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if let Some(p) = NonNull::new(ptr.cast::<u8>()) {
        // As in `malloc`, the pool's fast path comes before the preset: it frees only a block
        // of a heap of `POOL` this thread has, which no other preset makes; everything else is
        // left to `free_rest` untouched, and the preset decides there. Its common path makes no
        // call; the rest is a tail call (no stack frame).
        // SAFETY: the caller's block; the pool reports (and aborts on) any other pointer, with
        // the same line as the path below.
        if let Err(left) = unsafe { presets::POOL.free_unsized_fast(p) } {
            // SAFETY: as above.
            unsafe { free_rest(p, left) };
        }
    }
}

/// What the pool's common free path left (another thread's block, a large one, a misuse; or,
/// under any other preset, everything). Every path is a tail call, so the presets that come
/// this way on every call keep no stack frame.
///
/// # Safety
///
/// As for `free`; `left` is what the pool's fast path said of `p`.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_rest(p: NonNull<u8>, left: alloc_pool_lockfree::FreeLeft) {
    match DIRECT.load(Ordering::Relaxed) {
        // SAFETY: as the caller promises. (`extern "C"`: a tail call.)
        POOL_DIRECT => unsafe { presets::POOL.free_unsized_rest(p, left) },
        // As in `malloc`: the hardened preset's call is here, not on the cold path.
        // SAFETY: the caller's pointer; the preset checks it before anything else.
        HARDENED_DIRECT => unsafe { hardened::free_unsized(p) },
        // SAFETY: the caller's pointer.
        _ => unsafe { free_slow(p.as_ptr().cast()) },
    }
}

/// `free` through the preset chosen (and the trace, when one is recorded).
///
/// # Safety
///
/// As for `free`.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow(ptr: *mut c_void) {
    // SAFETY: the caller's pointer.
    if let Some((p, l)) = unsafe { live(ptr, Use::Free) } {
        // Recorded before the block can be handed to another thread.
        trace::free(ptr);
        // SAFETY: a live block with the layout the backend found.
        unsafe { backend().free(p, l) }
    }
}

/// C `calloc`: `n * size` zeroed bytes; `ENOMEM` when the product overflows.
///
/// # Safety
///
/// Always safe to call.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    if DIRECT.load(Ordering::Relaxed) == POOL_DIRECT {
        if let Some(total @ ..=alloc_pool_lockfree::MAX_SMALL) = n.checked_mul(size) {
            // SAFETY: as in `malloc`.
            let l = unsafe { core::alloc::Layout::from_size_align_unchecked(total.max(1), MIN_ALIGN) };
            if let Ok(b) = alloc_core::SharedLayer::allocate_zeroed(&presets::POOL, l) {
                return b.as_ptr().cast();
            }
        }
    }
    match n.checked_mul(size) {
        Some(total) => alloc(total, MIN_ALIGN, true),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// C `realloc`: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns NULL
/// (glibc's behaviour); on failure `p` is untouched and `errno` is `ENOMEM`.
///
/// # Safety
///
/// `ptr` is null or a live block from this library.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return alloc(size, MIN_ALIGN, false);
    }
    if size == 0 {
        // SAFETY: the caller's block.
        unsafe { free(ptr) };
        return ptr::null_mut();
    }
    // SAFETY: the caller's pointer.
    let Some((p, old)) = (unsafe { live(ptr, Use::Read) }) else { return ptr::null_mut() };
    let Some(new) = layout(size, old.align()) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    trace::free(ptr);
    // SAFETY: a live block with its layout.
    match unsafe { backend().realloc(p, old, new) } {
        Some(q) => {
            trace::alloc(q.as_ptr().cast(), size);
            q.as_ptr().cast()
        }
        None => {
            // The block stays: in the trace, a new allocation of its old size.
            trace::alloc(ptr, old.size());
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// C `reallocarray`: `realloc(ptr, n * size)`, with `ENOMEM` when the product overflows.
///
/// # Safety
///
/// As for `realloc`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: the caller's guarantees.
        Some(total) => unsafe { realloc(ptr, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// C `posix_memalign`: `EINVAL` unless `align` is a power of two multiple of `sizeof(void *)`;
/// `ENOMEM` when memory runs out. Returns the error; `errno` is left alone.
///
/// # Safety
///
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let saved = errno();
    let p = alloc(size, align, false);
    if p.is_null() {
        set_errno(saved);
        return libc::ENOMEM;
    }
    // SAFETY: as the caller promises.
    unsafe { out.write(p) };
    0
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// C11 `aligned_alloc`: `EINVAL` and NULL unless `align` is a power of two.
///
/// # Safety
///
/// Always safe to call.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    alloc(size, align, false)
}

/// `memalign`: like glibc, an alignment that is not a power of two is rounded up to one.
///
/// # Safety
///
/// Always safe to call.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.checked_next_power_of_two() {
        Some(a) => alloc(size, a, false),
        None => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

fn page() -> usize {
    alloc_core::source::page_size()
}

/// `valloc`: page-aligned.
///
/// # Safety
///
/// Always safe to call.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    alloc(size, page(), false)
}

/// `pvalloc`: page-aligned, the size rounded up to whole pages (a page for 0).
///
/// # Safety
///
/// Always safe to call.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page();
    match size.max(1).checked_next_multiple_of(page) {
        Some(s) => alloc(s, page, false),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc_usable_size`: the bytes the caller may use at `ptr` (0 for NULL).
///
/// # Safety
///
/// `ptr` is null or a live block from this library.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: the caller's pointer.
    match unsafe { live(ptr, Use::Read) } {
        // SAFETY: a live block with its layout.
        Some((p, l)) => unsafe { backend().usable(p, l) },
        None => 0,
    }
}

/// A sized or aligned free: under `hardened` the size (and alignment, when given) must be the
/// block's; the other presets free the block as `free` does.
///
/// # Safety
///
/// As for `free`.
unsafe fn free_checked(ptr: *mut c_void, size: usize, align: Option<usize>) {
    let Some(p) = NonNull::new(ptr.cast::<u8>()) else { return };
    if CHECKS_SIZED.load(Ordering::Relaxed) {
        trace::free(ptr);
        // SAFETY: the caller's pointer; the preset checks it before anything else.
        return unsafe { backend().free_sized(p, size, align.map(|a| a.max(MIN_ALIGN))) };
    }
    // SAFETY: the caller's pointer.
    unsafe { free(ptr) }
}

/// C23 `free_sized`: `free` of a block allocated with `size` bytes.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn free_sized(ptr: *mut c_void, size: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, None) }
}

/// C23 `free_aligned_sized`: `free` of a block from `aligned_alloc(align, size)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(ptr: *mut c_void, align: usize, size: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, Some(align)) }
}

/// C++ `operator delete(void*, std::size_t)` (sized deallocation, the default since C++14).
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdlPvm(ptr: *mut c_void, size: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, None) }
}

/// C++ `operator delete[](void*, std::size_t)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdaPvm(ptr: *mut c_void, size: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, None) }
}

/// C++ `operator delete(void*, std::align_val_t)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdlPvSt11align_val_t(ptr: *mut c_void, align: usize) {
    // SAFETY: forwarded.
    unsafe { free_aligned(ptr, align) }
}

/// C++ `operator delete[](void*, std::align_val_t)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdaPvSt11align_val_t(ptr: *mut c_void, align: usize) {
    // SAFETY: forwarded.
    unsafe { free_aligned(ptr, align) }
}

/// C++ `operator delete(void*, std::size_t, std::align_val_t)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdlPvmSt11align_val_t(ptr: *mut c_void, size: usize, align: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, Some(align)) }
}

/// C++ `operator delete[](void*, std::size_t, std::align_val_t)`.
///
/// # Safety
///
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn _ZdaPvmSt11align_val_t(ptr: *mut c_void, size: usize, align: usize) {
    // SAFETY: forwarded.
    unsafe { free_checked(ptr, size, Some(align)) }
}

/// An aligned delete without a size: under `hardened` the alignment is checked.
///
/// # Safety
///
/// As for `free`.
unsafe fn free_aligned(ptr: *mut c_void, align: usize) {
    let Some(p) = NonNull::new(ptr.cast::<u8>()) else { return };
    if CHECKS_SIZED.load(Ordering::Relaxed) {
        // SAFETY: the caller's pointer.
        if let Some(l) = unsafe { backend().layout_of(p) } {
            if l.align() != align.max(MIN_ALIGN) {
                return presets::report(alloc_core::HeapError::new(ErrorKind::SizedMismatch, p.as_ptr() as usize));
            }
        }
    }
    // SAFETY: the caller's pointer.
    unsafe { free(ptr) }
}

/// C++ `operator new(std::size_t, std::align_val_t)`: ours, so that the aligned `delete` that
/// pairs with it finds the size it recorded. On failure it throws `std::bad_alloc` through
/// libstdc++ (found at run time), or aborts if there is none; the exception unwinds through
/// this function (the "C-unwind" ABI) to the caller's `catch`.
///
/// # Safety
///
/// Always safe to call from C++.
#[no_mangle]
pub unsafe extern "C-unwind" fn _ZnwmSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    new_aligned(size, align)
}

/// C++ `operator new[](std::size_t, std::align_val_t)`.
///
/// # Safety
///
/// As for `operator new`.
#[no_mangle]
pub unsafe extern "C-unwind" fn _ZnamSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    new_aligned(size, align)
}

fn new_aligned(size: usize, align: usize) -> *mut c_void {
    let p = if align.is_power_of_two() { alloc(size.max(1), align, false) } else { ptr::null_mut() };
    if p.is_null() {
        // SAFETY: looks a symbol up by a NUL-terminated name.
        let throw = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_ZSt17__throw_bad_allocv".as_ptr()) };
        if !throw.is_null() {
            // SAFETY: libstdc++'s `std::__throw_bad_alloc()`, a function of no arguments that
            // does not return (it throws). "C-unwind", here and on the `operator new` entry
            // points: the C++ exception unwinds through these frames to the caller's `catch`
            // (with "C", Rust aborts the process at the boundary instead).
            let f: extern "C-unwind" fn() -> ! = unsafe { core::mem::transmute(throw) };
            f();
        }
        write_stderr(&[b"alloc-malloc: operator new: out of memory\n"]);
        // SAFETY: ends the process.
        unsafe { libc::abort() }
    }
    p
}
