//! `cabi_realloc`: the one allocation entry point of the WebAssembly component model's canonical
//! ABI. The host calls it to get memory in the guest for the values it lowers (strings, lists):
//! `cabi_realloc(0, 0, align, size)` allocates; `cabi_realloc(ptr, old_size, align, new_size)`
//! resizes (and keeps the first `min(old_size, new_size)` bytes); a new size of 0 frees.

use crate::Pool;
use alloc_core::source::{Decommit, PageSource};
use alloc_core::{ErrorPolicy, Layout, SharedLayer};
use core::ptr::NonNull;

impl<S: PageSource + Decommit + Send + Sync, E: ErrorPolicy + Send + Sync> Pool<S, E> {
    /// The canonical ABI's `cabi_realloc` over this pool. Returns null when memory runs out or
    /// the alignment is not a power of two (the exported symbol aborts instead, as the component
    /// model expects); a zero new size frees and returns a dangling pointer aligned as asked.
    ///
    /// # Safety
    ///
    /// `ptr` is null with `old_size` 0, or a block from this pool allocated (or last resized)
    /// with `old_size` bytes and `align`.
    pub unsafe fn cabi_realloc(&self, ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, align) else { return core::ptr::null_mut() };
        let mut layer = self;
        let result = match NonNull::new(ptr).filter(|_| old_size != 0) {
            None => alloc_core::front::allocate(&mut layer, new),
            Some(p) => {
                let Ok(old) = Layout::from_size_align(old_size, align) else { return core::ptr::null_mut() };
                // SAFETY: the caller's block and layout.
                unsafe { alloc_core::front::reallocate(&mut layer, p, old, new, false) }
            }
        };
        let _ = <Self as SharedLayer>::ZERO_SIZE_OK;
        result.map_or(core::ptr::null_mut(), |b| b.cast::<u8>().as_ptr())
    }
}

/// The exported `cabi_realloc` (feature `cabi`), over the program's global allocator, which a
/// component built on this crate makes a [`Pool`] (`#[global_allocator] static A: Pool =
/// Pool::new();`). Aborts when memory runs out, as the canonical ABI cannot take a null.
///
/// # Safety
///
/// As for [`Pool::cabi_realloc`], with blocks of the global allocator.
#[cfg(feature = "cabi")]
#[no_mangle]
pub unsafe extern "C" fn cabi_realloc(ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    let Ok(new) = Layout::from_size_align(new_size, align) else {
        alloc_core::error::fatal(format_args!("cabi_realloc with alignment {align} at {ptr:p}"));
    };
    // SAFETY: the caller's block and layout, through the global allocator's entry points.
    let p = unsafe {
        if ptr.is_null() || old_size == 0 {
            if new_size == 0 {
                return align as *mut u8;
            }
            std::alloc::alloc(new)
        } else if new_size == 0 {
            std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(old_size, align));
            return align as *mut u8;
        } else {
            std::alloc::realloc(ptr, Layout::from_size_align_unchecked(old_size, align), new_size)
        }
    };
    if p.is_null() {
        std::alloc::handle_alloc_error(new);
    }
    p
}
