//! Misuse that must kill the process: run in a child process, asserted from the parent.
//!
//! A test calls [`expect_abort`] (or [`expect_fault`]) with the test's own name, the phrase the
//! report must carry, and the whole sequence (allocate, free, misuse) as a closure. In the
//! parent, the function re-runs the test binary filtered to that one test, with an environment
//! variable telling the child to run the sequence; the child announces the address the report
//! must name (with [`announce`]) before the misuse. The parent then asserts the child died of
//! SIGABRT and that stderr holds exactly `allocator error: <what> at <address>` (or, for a fault,
//! that it died of SIGSEGV or SIGBUS). Doing the first free in the parent and only the misuse in
//! the child would be wrong: blocks may be reused in between.

use crate::child;

/// Tells the parent which address the report must name. Call it in the sequence, before the
/// misuse.
pub fn announce(addr: usize) {
    use std::io::Write;
    println!("MISUSE-ADDRESS {addr:#x}");
    let _ = std::io::stdout().flush();
}

/// Runs `sequence` in a child and asserts it aborts with `allocator error: {what} at <address>`.
///
/// `test` is the test's name as the harness knows it (`module::name`, without the crate), so the
/// child can run exactly this test.
#[track_caller]
pub fn expect_abort(test: &str, what: &str, sequence: impl FnOnce()) {
    if child::is_child(test) {
        sequence();
        // Still alive: the misuse was not detected.
        println!("MISUSE-NOT-DETECTED");
        std::process::exit(3);
    }
    let out = child::run(test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("MISUSE-NOT-DETECTED"), "{test}: the misuse went undetected\nstderr:\n{stderr}");
    let addr = stdout
        .lines()
        .find_map(|l| l.split("MISUSE-ADDRESS ").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{test}: the child announced no address\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    let line = format!("allocator error: {what} at {addr}");
    assert!(
        stderr.lines().any(|l| l == line),
        "{test}: expected the line {line:?} on stderr\nstderr:\n{stderr}\nstatus: {}",
        child::describe(&out)
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "{test}: the child should die of SIGABRT, got {}",
            child::describe(&out)
        );
    }
}

/// The permissions `/proc/self/maps` gives the mapping holding `addr` (`"rw-p"`, `"---p"`),
/// `None` where nothing is mapped: for tests that check where an allocator put its guard pages.
#[cfg(target_os = "linux")]
pub fn protection(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    maps.lines().find_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
        (lo <= addr && addr < hi).then(|| rest.split(' ').next().unwrap_or("").to_string())
    })
}

/// Runs `sequence` in a child and asserts the bad access in it faults (SIGSEGV or SIGBUS): for
/// guard pages and quarantined memory, where the hardware, not the allocator, stops the program.
#[track_caller]
pub fn expect_fault(test: &str, sequence: impl FnOnce()) {
    if child::is_child(test) {
        sequence();
        println!("MISUSE-NOT-DETECTED");
        std::process::exit(3);
    }
    let out = child::run(test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("MISUSE-NOT-DETECTED"), "{test}: the bad access did not fault\nstderr:\n{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            matches!(out.status.signal(), Some(11) | Some(7)),
            "{test}: the child should die of SIGSEGV or SIGBUS, got {}\nstderr:\n{stderr}",
            child::describe(&out)
        );
    }
}

/// Emits the misuse tests every detecting allocator owes, in a module named after it: each runs
/// in a child process (see [`expect_abort`]) and must die after the exact report line.
///
/// `misuse_suite!(name: make, size)` takes an expression that makes a fresh allocator (anything
/// with the [`crate::Heap`] calls, under an aborting error policy) and a typical block size
/// (at least 32; the interior pointer is half of it in, rounded to 16); it emits
/// - `double_free_right_after_the_first_aborts`,
/// - `free_of_an_interior_pointer_aborts`;
///
/// and, for allocators that catch them:
/// - `delayed`: `double_free_after_other_frees_aborts` (four other blocks freed in between);
/// - `foreign`: `free_of_a_pointer_never_allocated_aborts` (a page-aligned stack address).
///
/// ```ignore
/// conformance::misuse_suite!(pool: alloc_pool_lockfree::Pool::new(), 48, delayed, foreign);
/// ```
#[macro_export]
macro_rules! misuse_suite {
    ($name:ident : $make:expr, $size:expr $(, $cap:ident)* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::Heap as _;

            fn layout() -> ::core::alloc::Layout {
                ::core::alloc::Layout::from_size_align($size, 16).unwrap()
            }

            fn test(name: &str) -> String {
                $crate::test_path(module_path!(), name)
            }

            #[test]
            fn double_free_right_after_the_first_aborts() {
                $crate::misuse::expect_abort(&test("double_free_right_after_the_first_aborts"), "double free", || {
                    let heap = $make;
                    let p = heap.allocate(layout()).unwrap().cast::<u8>();
                    let _neighbour = heap.allocate(layout()).unwrap();
                    $crate::misuse::announce(p.as_ptr() as usize);
                    // SAFETY: the first free is legitimate; the second is the misuse under test.
                    unsafe {
                        heap.deallocate(p, layout());
                        heap.deallocate(p, layout());
                    }
                });
            }

            #[test]
            fn free_of_an_interior_pointer_aborts() {
                $crate::misuse::expect_abort(
                    &test("free_of_an_interior_pointer_aborts"),
                    "free of an interior or misaligned pointer",
                    || {
                        let heap = $make;
                        let p = heap.allocate(layout()).unwrap().cast::<u8>();
                        let inside = p.as_ptr().wrapping_add(($size / 2) & !15);
                        $crate::misuse::announce(inside as usize);
                        // SAFETY: deliberately violated: inside a live block.
                        unsafe { heap.deallocate(::core::ptr::NonNull::new(inside).unwrap(), layout()) };
                    },
                );
            }

            $( $crate::__misuse_capability!($cap, $make, $size); )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __misuse_capability {
    (delayed, $make:expr, $size:expr) => {
        #[test]
        fn double_free_after_other_frees_aborts() {
            $crate::misuse::expect_abort(&test("double_free_after_other_frees_aborts"), "double free", || {
                let heap = $make;
                let blocks: Vec<_> = (0..5).map(|_| heap.allocate(layout()).unwrap().cast::<u8>()).collect();
                $crate::misuse::announce(blocks[0].as_ptr() as usize);
                // SAFETY: every block freed once, then the first again: the misuse.
                unsafe {
                    for &b in &blocks {
                        heap.deallocate(b, layout());
                    }
                    heap.deallocate(blocks[0], layout());
                }
            });
        }
    };
    (foreign, $make:expr, $size:expr) => {
        #[test]
        fn free_of_a_pointer_never_allocated_aborts() {
            $crate::misuse::expect_abort(
                &test("free_of_a_pointer_never_allocated_aborts"),
                "free of a pointer this allocator never allocated",
                || {
                    let heap = $make;
                    let _one = heap.allocate(layout()).unwrap();
                    #[repr(align(4096))]
                    struct Page([u8; 4096]);
                    let local = Page([0; 4096]);
                    let foreign = ::core::ptr::NonNull::from(&local).cast::<u8>();
                    $crate::misuse::announce(foreign.as_ptr() as usize);
                    // SAFETY: deliberately violated: a stack address.
                    unsafe { heap.deallocate(foreign, layout()) };
                },
            );
        }
    };
}
