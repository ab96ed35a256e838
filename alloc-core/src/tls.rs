//! Thread-local storage of the *initial-exec* model, for allocators loaded as shared libraries.
//!
//! Rust's `thread_local!` in a `cdylib` compiles to the *general-dynamic* model: every access
//! calls `__tls_get_addr`. An allocator pays that on every `malloc` and `free`. The initial-exec
//! model reads the thread pointer and adds an offset the dynamic linker wrote into the GOT: two
//! instructions. Stable Rust cannot ask for that model (`#[thread_local]` is unstable), so
//! [`initial_exec_tls!`](crate::initial_exec_tls) declares the symbol in assembly, as mimalloc
//! does in C with `__attribute__((tls_model("initial-exec")))`.
//!
//! The cost is static TLS: a library loaded with `dlopen` after the program started gets its
//! initial-exec symbols from glibc's small reserve (about 1.6 KiB shared by all such libraries),
//! so keep the objects small. x86_64 Linux only; elsewhere, and under Miri, use `thread_local!`.

/// Declares a zero-initialised thread-local object of type `$t` (at most 8-aligned) as the
/// *initial-exec* TLS symbol `$sym`, and a function that returns the calling thread's copy.
///
/// The object lives as long as its thread and starts as all zero bytes (`.tbss`), so zero must
/// be a valid value of `$t`. The symbol is hidden (not exported) but its name must be unique in
/// the process: put the crate's name and version in it. Only for x86_64 Linux (gate the call
/// with `#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]`).
///
/// The function is safe: it only computes an address. Reading or writing through the pointer is
/// up to the caller's `unsafe` block, which must know that all-zero bytes are a valid `$t` (the
/// macro cannot check it), that no other reference to the object is live, and that the pointer
/// is used on its own thread while that thread runs (another thread's copy is another object,
/// freed when that thread exits).
///
/// ```
/// #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
/// alloc_core::initial_exec_tls! {
///     /// This thread's count.
///     fn count() -> *mut u64 = "alloc_core_doc_count_v0_1";
/// }
///
/// # #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
/// fn main() {
///     // SAFETY: the thread's own object; nothing else refers to it while it is written.
///     unsafe { *count() += 2 };
///     // SAFETY: as above, on the other thread.
///     let other = std::thread::spawn(|| unsafe { *count() }).join().unwrap();
///     // SAFETY: as above.
///     assert_eq!((unsafe { *count() }, other), (2, 0));
/// }
/// # #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! initial_exec_tls {
    ($(#[$attr:meta])* $vis:vis fn $f:ident() -> *mut $t:ty = $sym:literal;) => {
        ::core::arch::global_asm!(
            concat!(".pushsection .tbss.", $sym, ",\"awT\",@nobits"),
            ".p2align 3",
            concat!(".globl ", $sym),
            concat!(".hidden ", $sym),
            concat!(".type ", $sym, ",@object"),
            concat!(".size ", $sym, ", {size}"),
            concat!($sym, ":"),
            ".zero {size}",
            ".popsection",
            size = const ::core::mem::size_of::<$t>(),
        );

        const _: () = assert!(::core::mem::align_of::<$t>() <= 8, "the symbol is 8-aligned");

        $(#[$attr])*
        #[inline(always)]
        $vis fn $f() -> *mut $t {
            let p: *mut $t;
            // SAFETY: reads the thread pointer (`fs:0` holds its own address on x86_64 Linux)
            // and adds the symbol's offset from the GOT; nothing is written. The result points
            // at this thread's copy of the symbol, sized for `$t` and 8-aligned (above).
            unsafe {
                ::core::arch::asm!(
                    "mov {p}, qword ptr fs:[0]",
                    concat!("add {p}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                    p = out(reg) p,
                    options(pure, readonly, nostack),
                );
            }
            p
        }
    };
}
