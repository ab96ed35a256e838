//! Builds the C allocation benchmarks in `c/` (the shapes of mimalloc-bench's and glibc's
//! programs) into executables under `OUT_DIR`, for `compare --programs`, and the launcher that
//! measures a program's peak RSS without compare's own (`c/runner.c`). The C compiler is the
//! one the `cc` crate finds (`CC`, else `cc`); without one, the programs are skipped with a
//! warning and `compare --programs` says so.

use std::path::PathBuf;

const PROGRAMS: &[&str] =
    &["cfrac", "alloc_test", "larson", "xmalloc_test", "cache_scratch", "thread_bench", "malloc_large", "runner"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rustc-env=BENCH_PROGRAMS={}", out.display());
    let compiler = cc::Build::new().cargo_metadata(false).opt_level(2).get_compiler();
    for name in PROGRAMS {
        let src = PathBuf::from("c").join(format!("{name}.c"));
        let exe = out.join(name);
        let status = compiler.to_command().args(["-O2", "-pthread", "-Wall", "-o"]).arg(&exe).arg(&src).status();
        match status {
            Ok(s) if s.success() => {}
            other => {
                println!(
                    "cargo:warning=could not build {} ({other:?}): compare --programs will skip it",
                    src.display()
                );
                let _ = std::fs::remove_file(&exe);
            }
        }
    }
}
