//! The drop registry: values that need `Drop` are registered in a list threaded through the
//! arena itself, newest first, and dropped in reverse order of allocation when the arena is reset,
//! rewound or freed.
//!
//! A value of a type that needs `Drop` is stored behind a small header ([`Entry`]: the previous
//! entry and the function that drops what follows it), allocated in the same block, so the list
//! costs one allocation and no table. A value that needs no `Drop` (`mem::needs_drop` is a
//! compile-time constant) gets no header and never touches the list: it costs nothing extra.
//!
//! Only `T: Send + 'static` values are registered: the list erases `T`, and what it erases must
//! not matter when the value is finally dropped, later and perhaps on another thread (the arena
//! is `Send`, the shared arena `Sync`). A value that borrowed a local, dropped after the local
//! died, would write into freed memory; an `Rc` dropped on another thread would race on its
//! count. The bounds are on `register_one` and `register_many`, so no caller can forget them.
//!
//! A panicking `Drop` does not stop the rest: each entry is unlinked before its value is
//! dropped (so nothing is dropped twice) and a guard drops the remaining entries while the panic
//! unwinds; the panic then goes on to the caller. A second panic during that unwinding aborts,
//! as it does everywhere in Rust.

use alloc_core::sync::atomic::{AtomicPtr, Ordering};
use core::alloc::Layout;
use core::ptr::{self, NonNull};

/// The header before a value (or slice) that needs `Drop`.
#[repr(C)]
pub(crate) struct Entry {
    prev: *mut Entry,
    drop: unsafe fn(NonNull<Entry>),
    /// Elements initialised after the header (1 for a single value).
    len: usize,
}

/// A value behind its header.
#[repr(C)]
struct One<T> {
    entry: Entry,
    value: T,
}

/// Where a slice's elements start after its header, and the layout of header plus `len` elements.
fn slice_layout<T>(len: usize) -> Option<(Layout, usize)> {
    let (l, off) = Layout::new::<Entry>().extend(Layout::array::<T>(len).ok()?).ok()?;
    Some((l.pad_to_align(), off))
}

/// Drops the value behind a single-value header.
///
/// # Safety
///
/// `e` heads a `One<T>` whose value is initialised and not dropped yet.
unsafe fn drop_one<T>(e: NonNull<Entry>) {
    // SAFETY: as the caller promises.
    unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*e.cast::<One<T>>().as_ptr()).value)) }
}

/// Drops the initialised elements of a slice behind its header.
///
/// # Safety
///
/// `e` heads a slice of T laid out by `slice_layout`, its first `len` elements initialised.
unsafe fn drop_slice<T>(e: NonNull<Entry>) {
    // SAFETY: as the caller promises; the offset was computed the same way at allocation.
    unsafe {
        let len = (*e.as_ptr()).len;
        let off = slice_layout::<T>(0).map_or(0, |(_, off)| off);
        let first = e.cast::<u8>().as_ptr().add(off).cast::<T>();
        ptr::drop_in_place(ptr::slice_from_raw_parts_mut(first, len));
    }
}

/// How to allocate a `T` (with its header when it needs `Drop`), and where the value goes.
pub(crate) fn one_layout<T>() -> (Layout, usize) {
    if core::mem::needs_drop::<T>() {
        (Layout::new::<One<T>>(), core::mem::offset_of!(One<T>, value))
    } else {
        (Layout::new::<T>(), 0)
    }
}

/// How to allocate `len` Ts (with a header when T needs `Drop`), and where the elements go.
pub(crate) fn many_layout<T>(len: usize) -> Option<(Layout, usize)> {
    if core::mem::needs_drop::<T>() {
        slice_layout::<T>(len)
    } else {
        Some((Layout::array::<T>(len).ok()?, 0))
    }
}

/// A list of entries, newest first: pushed to through `&self`, run through `&mut self`.
///
/// With `SHARED` (the shared arena, pushed to from many threads), pushing is a compare-and-swap
/// loop on the head that only ever adds (the entry's `prev` is written before the release CAS
/// publishes it); entries are taken only with exclusive access, so there is no ABA and no read
/// of memory another thread is writing. Without it (an arena of one thread, which is not
/// `Sync`), a push is a plain load and store: a locked CAS per value would double the cost of
/// allocating small values that need `Drop`.
pub(crate) struct DropList<const SHARED: bool> {
    head: AtomicPtr<Entry>,
}

/// A mark in a [`DropList`]: the newest entry when it was taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mark(*mut Entry);

impl<const SHARED: bool> DropList<SHARED> {
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        DropList { head: AtomicPtr::new(ptr::null_mut()) }
    }

    #[cfg(loom)]
    pub fn new() -> Self {
        DropList { head: AtomicPtr::new(ptr::null_mut()) }
    }

    /// Writes a header at `block` (allocated with `one_layout::<T>()` when T needs `Drop`) and
    /// registers it, when T needs `Drop`. Returns where the value goes.
    ///
    /// # Safety
    ///
    /// `block` is a fresh block of the arena laid out by `one_layout::<T>()`, and the value is
    /// written before the arena can be reset, rewound or freed (which need `&mut`).
    pub unsafe fn register_one<T: Send + 'static>(&self, block: NonNull<u8>) -> NonNull<T> {
        let (_, off) = one_layout::<T>();
        if core::mem::needs_drop::<T>() {
            // SAFETY: the block starts with room for the header.
            unsafe { self.push(block.cast(), drop_one::<T>, 1) };
        }
        // SAFETY: `off` lies within the block.
        unsafe { block.add(off).cast() }
    }

    /// Like `register_one` for a slice of `len` elements laid out by `many_layout::<T>(len)`,
    /// registered with 0 elements; call `grew` as each is initialised. Returns where the
    /// elements go and the header to count them in.
    ///
    /// # Safety
    ///
    /// As for `register_one`; the elements are initialised in order.
    pub unsafe fn register_many<T: Send + 'static>(
        &self,
        block: NonNull<u8>,
        len: usize,
    ) -> (NonNull<T>, Option<NonNull<Entry>>) {
        let Some((_, off)) = many_layout::<T>(len) else { return (block.cast(), None) };
        let mut entry = None;
        if core::mem::needs_drop::<T>() {
            // SAFETY: the block starts with room for the header.
            unsafe { self.push(block.cast(), drop_slice::<T>, 0) };
            entry = Some(block.cast());
        }
        // SAFETY: `off` lies within the block.
        (unsafe { block.add(off).cast() }, entry)
    }

    /// Writes the header at `e` and links it in.
    ///
    /// # Safety
    ///
    /// `e` is fresh memory for an `Entry`, owned by the caller.
    unsafe fn push(&self, e: NonNull<Entry>, drop: unsafe fn(NonNull<Entry>), len: usize) {
        let mut head = self.head.load(Ordering::Relaxed);
        if !SHARED {
            // SAFETY: the header is ours; only this thread pushes (the arena is not `Sync`).
            unsafe { e.as_ptr().write(Entry { prev: head, drop, len }) };
            self.head.store(e.as_ptr(), Ordering::Relaxed);
            return;
        }
        loop {
            // SAFETY: the header is ours until the CAS publishes it.
            unsafe { e.as_ptr().write(Entry { prev: head, drop, len }) };
            match self.head.compare_exchange_weak(head, e.as_ptr(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// The newest entry now.
    pub fn mark(&self) -> Mark {
        Mark(self.head.load(Ordering::Acquire))
    }

    /// Drops every value registered after `mark`, newest first.
    ///
    /// # Safety
    ///
    /// `mark` came from this list (or is the empty mark) and no value registered after it is
    /// used again; the memory behind the entries is still mapped.
    pub unsafe fn run_until(&mut self, mark: Mark) {
        /// Keeps dropping if a `Drop` panics.
        struct Guard<'a, const SHARED: bool> {
            list: &'a mut DropList<SHARED>,
            mark: Mark,
        }
        impl<const SHARED: bool> Drop for Guard<'_, SHARED> {
            fn drop(&mut self) {
                // SAFETY: the caller's guarantees, as for the loop below.
                unsafe { self.list.pop_until(self.mark) };
            }
        }
        let guard = Guard { list: self, mark };
        // SAFETY: as the caller promises.
        unsafe { guard.list.pop_until(mark) };
        core::mem::forget(guard);
    }

    /// # Safety
    ///
    /// As for `run_until`.
    unsafe fn pop_until(&mut self, mark: Mark) {
        loop {
            let e = self.head.load(Ordering::Relaxed);
            if e == mark.0 || e.is_null() {
                return;
            }
            // SAFETY: entries in the list are initialised headers in mapped arena memory;
            // unlinking before dropping means a panic in `drop` cannot drop it twice.
            unsafe {
                self.head.store((*e).prev, Ordering::Relaxed);
                ((*e).drop)(NonNull::new_unchecked(e));
            }
        }
    }
}

/// The empty mark.
pub(crate) const fn empty() -> Mark {
    Mark(ptr::null_mut())
}

/// Counts one more initialised element of a registered slice.
///
/// # Safety
///
/// `entry` came from `register_many` of a live arena, and the element was just written.
pub(crate) unsafe fn grew(entry: Option<NonNull<Entry>>) {
    if let Some(e) = entry {
        // SAFETY: the header is ours until the arena drops it, which needs `&mut`.
        unsafe { (*e.as_ptr()).len += 1 };
    }
}
