//! Tests and benchmarks that build a wasm32 module need the `wasm32-unknown-unknown` standard
//! library. On a fresh machine it is not installed: install it with rustup on first use, or fail
//! with a message that says what to run.

use std::process::Command;
use std::sync::OnceLock;

/// The target the wasm modules are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

fn installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "target-libdir", "--target", TARGET]).output() else {
        return false;
    };
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success()
        && std::fs::read_dir(&dir)
            .map(|entries| {
                entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
            })
            .unwrap_or(false)
}

/// Makes sure the wasm32 target is installed, running `rustup target add` once if it is not.
pub fn ensure() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if installed() {
            return Ok(());
        }
        eprintln!("the {TARGET} target is not installed: running `rustup target add {TARGET}`");
        match Command::new("rustup").args(["target", "add", TARGET]).output() {
            Ok(out) if out.status.success() && installed() => Ok(()),
            Ok(out) => Err(format!(
                "the {TARGET} target is not installed and `rustup target add {TARGET}` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!(
                "the {TARGET} target is not installed and rustup could not be run ({e}); install the target's \
                 standard library for this toolchain"
            )),
        }
    })
    .clone()
}
