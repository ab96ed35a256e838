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
