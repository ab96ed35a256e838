//! Which heap the calling thread uses for each pool, and the thread-exit hook that hands a
//! thread's heaps back.
//!
//! A thread keeps up to [`ENTRIES`] (pool, heap) pairs in native thread-local storage, the most
//! recent first (the common case, one pool, is one compare). No destructor is registered with
//! Rust's thread-local machinery (that could allocate); a pthread key's destructor, set once per
//! thread, runs at thread exit and abandons every heap whose pool is still alive (checked under
//! the global lock that pool drops take, so a pool cannot go away mid-abandon).

use crate::heap::ThreadHeap;
use core::cell::UnsafeCell;

/// (pool, heap) pairs a thread remembers.
pub(crate) const ENTRIES: usize = 8;

/// Abandons `heap` of the type-erased pool `inner`.
pub(crate) type AbandonFn = unsafe fn(*const (), *mut ThreadHeap);

#[derive(Copy, Clone)]
pub(crate) struct Entry {
    /// The pool's unique id (never reused, unlike its address).
    pub id: u64,
    pub inner: *const (),
    pub heap: *mut ThreadHeap,
    pub abandon: Option<AbandonFn>,
}

const EMPTY: Entry = Entry { id: 0, inner: core::ptr::null(), heap: core::ptr::null_mut(), abandon: None };

struct Cache {
    entries: [Entry; ENTRIES],
    hooked: bool,
}

#[cfg(not(all(feature = "initial-exec-tls", target_os = "linux", target_arch = "x86_64", not(miri))))]
std::thread_local! {
    static CACHE: UnsafeCell<Cache> = const { UnsafeCell::new(Cache { entries: [EMPTY; ENTRIES], hooked: false }) };
}

/// The calling thread's cache, through Rust's `thread_local!` (`None` while the thread's
/// thread-locals are being destroyed).
#[cfg(not(all(feature = "initial-exec-tls", target_os = "linux", target_arch = "x86_64", not(miri))))]
#[inline(always)]
fn with_cache<R>(f: impl FnOnce(&UnsafeCell<Cache>) -> R) -> Option<R> {
    CACHE.try_with(f).ok()
}

/// With the `initial-exec-tls` feature on x86_64 Linux (what alloc-malloc's `LD_PRELOAD`
/// library uses), the cache is a thread-local symbol of the *initial-exec* model, read as
/// `fs:0` plus an offset the dynamic linker stored in the GOT: two instructions. Rust's
/// `thread_local!` in a shared library compiles to the general-dynamic model, a call to
/// `__tls_get_addr` on every access (measured in alloc-malloc's README); stable Rust has no
/// switch for the model (`-Z tls-model` is nightly), so the symbol is declared in assembly.
/// A library loaded with `dlopen` takes such a symbol from glibc's small static-TLS reserve,
/// which is why the feature is off by default.
///
/// The memory starts zeroed (`.tbss`), which is the cache's empty value (every entry's id 0,
/// null pointers, no function; `hooked` false); it lives as long as the thread.
#[cfg(all(feature = "initial-exec-tls", target_os = "linux", target_arch = "x86_64", not(miri)))]
mod ie {
    use super::Cache;

    alloc_core::initial_exec_tls! {
        /// The calling thread's cache.
        pub fn cache() -> *mut Cache = "alloc_pool_lockfree_tls_cache_v0_1";
    }
}

#[cfg(all(feature = "initial-exec-tls", target_os = "linux", target_arch = "x86_64", not(miri)))]
#[inline(always)]
fn with_cache<R>(f: impl FnOnce(&UnsafeCell<Cache>) -> R) -> Option<R> {
    // SAFETY: the thread's own cache (see `ie`): zero-initialised, valid for the thread's life,
    // and `UnsafeCell<Cache>` has `Cache`'s layout.
    Some(f(unsafe { &*ie::cache().cast::<UnsafeCell<Cache>>() }))
}

/// The calling thread's heap for pool `id`, if it has one: the front entry in one compare.
#[inline(always)]
pub(crate) fn lookup(id: u64) -> Option<*mut ThreadHeap> {
    with_cache(|c| {
        // SAFETY: the cache is this thread's own; nothing else borrows it during this call.
        let c = unsafe { &mut *c.get() };
        if c.entries[0].id == id {
            return Some(c.entries[0].heap);
        }
        lookup_slow(c, id)
    })
    .flatten()
}

/// The calling thread's heap for pool `id` if it is the front entry (the common case, one
/// pool): one compare, nothing else.
#[inline(always)]
pub(crate) fn lookup_first(id: u64) -> Option<*mut ThreadHeap> {
    with_cache(|c| {
        // SAFETY: the cache is this thread's own; nothing else borrows it during this call.
        let c = unsafe { &*c.get() };
        (c.entries[0].id == id).then_some(c.entries[0].heap)
    })
    .flatten()
}

/// Whether the calling thread has a heap for pool `id` anywhere in its cache. A thread that
/// has no heap at all (one that only frees) finds out with one compare: the entries in use
/// come first (see [`forget`]).
#[inline]
pub(crate) fn holds(id: u64) -> bool {
    with_cache(|c| {
        // SAFETY: the cache is this thread's own; nothing else borrows it during this call.
        let c = unsafe { &*c.get() };
        position(c, id).is_some()
    })
    .unwrap_or(false)
}

/// Where pool `id`'s entry is, looking no further than the entries in use.
#[inline(always)]
fn position(c: &Cache, id: u64) -> Option<usize> {
    c.entries.iter().take_while(|e| e.id != 0).position(|e| e.id == id)
}

#[cold]
fn lookup_slow(c: &mut Cache, id: u64) -> Option<*mut ThreadHeap> {
    let i = position(c, id)?;
    c.entries[..=i].rotate_right(1);
    Some(c.entries[0].heap)
}

/// Remembers `entry` first; returns the entry it pushed out (to be abandoned), if any.
pub(crate) fn insert(entry: Entry) -> Option<Entry> {
    with_cache(|cell| {
        // The exit hook first, with no reference to the cache alive: arming it may allocate
        // (glibc past its first 32 keys), and under alloc-malloc that allocation comes back into
        // this cache. Marked first, so such an allocation does not arm it again.
        // SAFETY: the calling thread's own cache, one field read or written at a time.
        if !unsafe { (*cell.get()).hooked } {
            // SAFETY: as above.
            unsafe { (*cell.get()).hooked = true };
            let armed = hook_exit();
            // SAFETY: as above.
            unsafe { (*cell.get()).hooked = armed };
        }
        // SAFETY: as above; nothing else borrows the cache during the rest of this call.
        let c = unsafe { &mut *cell.get() };
        let evicted = c.entries[ENTRIES - 1];
        c.entries.rotate_right(1);
        c.entries[0] = entry;
        (evicted.id != 0).then_some(evicted)
    })
    .flatten()
}

/// Forgets the entry of pool `id` (the pool is being dropped by this thread).
pub(crate) fn forget(id: u64) {
    with_cache(|c| {
        // SAFETY: as above.
        let c = unsafe { &mut *c.get() };
        // The entries after it move up: the entries in use stay first, so a lookup stops at
        // the first empty one.
        if let Some(i) = position(c, id) {
            c.entries[i..].rotate_left(1);
            c.entries[ENTRIES - 1] = EMPTY;
        }
    });
}

/// Abandons every heap of the exiting thread whose pool is alive.
fn on_exit() {
    with_cache(|c| {
        // SAFETY: as above; the thread is exiting, nothing else runs on it.
        let c = unsafe { &mut *c.get() };
        for e in core::mem::replace(&mut c.entries, [EMPTY; ENTRIES]) {
            if let Some(abandon) = e.abandon {
                crate::pool::while_alive(e.id, || {
                    // SAFETY: the pool is alive (and cannot be dropped while this runs); the heap
                    // is this thread's.
                    unsafe { abandon(e.inner, e.heap) }
                });
            }
        }
    });
}

#[cfg(unix)]
mod hook {
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The pthread key, plus one (0: not created yet).
    static KEY: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn destructor(_: *mut libc::c_void) {
        super::on_exit();
    }

    /// The key stored in [`KEY`] (one decoding for both paths that read it, so the rare one,
    /// a lost race, is the common one's code).
    fn stored(k: usize) -> libc::pthread_key_t {
        (k - 1) as libc::pthread_key_t
    }

    fn key() -> Option<libc::pthread_key_t> {
        // Relaxed: a race creates two keys, of which one wins; the other is deleted.
        match KEY.load(Ordering::Relaxed) {
            0 => {}
            k => return Some(stored(k)),
        }
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: a fresh key with our destructor; `k` is a valid out-parameter.
        if unsafe { libc::pthread_key_create(&mut k, Some(destructor)) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, k as usize + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => Some(k),
            Err(won) => {
                // SAFETY: our own key, never set.
                unsafe { libc::pthread_key_delete(k) };
                Some(stored(won))
            }
        }
    }

    /// Arms the destructor for the calling thread; false when keys are unavailable (heaps are
    /// then only handed back when they are pushed out of the cache).
    pub fn arm() -> bool {
        let Some(k) = key() else { return false };
        // SAFETY: any non-null value arms the destructor; glibc keeps the first 32 keys' values
        // in the thread descriptor, without allocating.
        unsafe { libc::pthread_setspecific(k, core::ptr::dangling::<libc::c_void>()) == 0 }
    }
}

#[cfg(unix)]
fn hook_exit() -> bool {
    hook::arm()
}

#[cfg(not(unix))]
fn hook_exit() -> bool {
    false
}
