//! `UnsafeCell` through one door: core's, or with `--cfg loom` loom's, which checks every access
//! for a data race (a plain read not ordered after the plain write it may see).

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// core's `UnsafeCell` with loom's access API (`with`, `with_mut`), so the same code runs under
/// both. `repr(transparent)`: a block's first word can be viewed as one.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer for reading the value.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer for writing the value.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
