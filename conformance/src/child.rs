//! Re-running one test of the current test binary in a child process: how a property that
//! crashes the process (a SIGSEGV from a block past the end of a mapping) still fails with its
//! own name, and how misuse that must abort is observed from outside.

use std::process::{Command, Output};

/// Set in the child to the name of the test it must run for real.
pub(crate) const CHILD: &str = "CONFORMANCE_CHILD";

/// Set (to anything) to run every property in the test process itself, for debugging.
pub const IN_PROCESS: &str = "CONFORMANCE_IN_PROCESS";

/// The test's name as the harness filters it (`module::name`, without the crate), from the
/// `module_path!()` of the module the test is in.
pub fn test_path(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{name}"),
        None => name.to_string(),
    }
}

/// True in the child process that runs `test`.
pub(crate) fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// Re-runs the test binary filtered to exactly `test`, telling it (through [`CHILD`]) that it is
/// the child.
pub(crate) fn run(test: &str) -> Output {
    let exe = std::env::current_exe().expect("the test binary");
    Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        // Under AddressSanitizer a crashing child exits 1 unless told not to handle the signal.
        .env("ASAN_OPTIONS", "handle_segv=0:handle_abort=0")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the child")
}

/// How the child ended, in words: the signal's name where it died of one.
pub(crate) fn describe(out: &Output) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = out.status.signal() {
            let name = match sig {
                4 => "SIGILL",
                6 => "SIGABRT",
                7 => "SIGBUS",
                8 => "SIGFPE",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                _ => "a signal",
            };
            return format!("killed by {name} ({sig})");
        }
    }
    format!("{}", out.status)
}

/// The last `n` lines of a child's output, for a failure message.
pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a failed child said: its panic message where it panicked (without the backtrace),
/// else the end of its output.
pub(crate) fn failure(out: &Output) -> String {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        if let Some(at) = text.find("panicked at") {
            let msg: Vec<&str> = text[at..]
                .lines()
                .take_while(|l| !l.starts_with("note:") && !l.starts_with("stack backtrace:"))
                .take(40)
                .collect();
            return msg.join("\n");
        }
    }
    format!("{}\n{}", tail(&out.stdout, 20), tail(&out.stderr, 20))
}
