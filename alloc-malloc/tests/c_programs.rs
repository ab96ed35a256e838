//! The malloc socket under unmodified programs: C test programs built with `gcc` call every
//! entry point and check results and `errno`; a threaded program forks; the hardened preset's
//! detections abort with the address; system programs (`sort`, `python3`, `gcc`, `git` log and
//! threaded grep over this repository, a threaded C++ program) give the same output under every
//! preset as without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const PRESETS: [&str; 5] = ["general", "pool", "segregated", "hardened", "span"];

/// The shared library cargo built beside this test.
fn library() -> PathBuf {
    // `cargo test` builds the library (cdylib and rlib) into `deps/`, beside this binary; only
    // `cargo build` copies it up a level.
    let exe = std::env::current_exe().expect("test binary");
    let lib = exe.parent().expect("deps directory").join("liballoc_malloc.so");
    assert!(lib.exists(), "{} is missing: cargo builds the cdylib before the tests", lib.display());
    lib
}

/// Compiles `tests/c/{name}` with gcc (or g++) into the test's scratch directory, once per test
/// binary: tests run in parallel, and rewriting an executable another test is running fails
/// with "text file busy".
fn build(name: &str, compiler: &str, extra: &[&str]) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = format!("{name} {compiler} {extra:?}");
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == key) {
        return p.clone();
    }
    let out = compile(name, compiler, extra, built.len());
    built.push((key, out.clone()));
    out
}

fn compile(name: &str, compiler: &str, extra: &[&str], n: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c").join(name);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{n}", name.replace('.', "_")));
    let status = Command::new(compiler)
        // -w: the programs make impossible and bad calls on purpose, which gcc warns about.
        .args(["-O1", "-g", "-w", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra)
        .status()
        .unwrap_or_else(|e| panic!("{compiler} could not run: {e}"));
    assert!(status.success(), "{compiler} failed on {name}");
    out
}

/// Runs `cmd` with the library preloaded under `preset` (no preload when `None`).
fn run(mut cmd: Command, preset: Option<&str>) -> Output {
    if let Some(p) = preset {
        cmd.env("LD_PRELOAD", library()).env("ALLOC_MALLOC_PRESET", p);
    }
    cmd.output().expect("program runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn every_entry_point_behaves_like_c_says_under_every_preset() {
    let exe = build("api.c", "gcc", &[]);
    for preset in PRESETS {
        let out = run(Command::new(&exe), Some(preset));
        assert!(
            out.status.success() && text(&out.stdout).trim() == "ok",
            "{preset}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn the_library_really_serves_the_program() {
    // The dynamic linker's own account: with the library preloaded, a program's `malloc`
    // binds to it, not to glibc's.
    let out = Command::new("sh")
        .arg("-c")
        .arg("LD_DEBUG=bindings /bin/true 2>&1 | grep -c \"to .*liballoc_malloc.so .*symbol .malloc.\" || true")
        .env("LD_PRELOAD", library())
        .output()
        .unwrap();
    let n: u32 = text(&out.stdout).trim().parse().unwrap_or(0);
    assert!(n >= 1, "malloc did not bind to the library: {}", text(&out.stdout));
}

#[test]
fn an_unknown_preset_is_a_one_line_error() {
    let exe = build("api.c", "gcc", &[]);
    let out = run(Command::new(&exe), Some("fastest"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "alloc-malloc: unknown preset \"fastest\" in ALLOC_MALLOC_PRESET (known: general, pool, segregated, hardened, \
         span)\n"
    );
}

#[test]
fn fork_in_a_threaded_program_works_under_every_preset() {
    let exe = build("fork_threads.c", "gcc", &["-pthread"]);
    for preset in PRESETS {
        let mut cmd = Command::new("timeout");
        cmd.arg("120").arg(&exe);
        let out = run(cmd, Some(preset));
        assert!(
            out.status.success() && text(&out.stdout).trim() == "ok",
            "{preset}: {:?} {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// Runs misuse.c's `case` and asserts it aborts with `what` at the last announced address.
fn expect_report(preset: &str, case: &str, what: &str, offset: usize) {
    expect_abort(misuse_program(), preset, case, what, offset, false);
}

/// As [`expect_report`], with a trace being recorded (`ALLOC_MALLOC_TRACE`): every call then
/// takes the library's generic path instead of the preset's direct one.
fn expect_report_traced(preset: &str, case: &str, what: &str) {
    expect_abort(misuse_program(), preset, case, what, 0, true);
}

fn misuse_program() -> PathBuf {
    // -O0: at -O1 gcc drops a store into a block that is freed right after.
    build("misuse.c", "gcc", &["-O0", "-Wno-free-nonheap-object"])
}

/// Runs `exe case` under `preset` and asserts it aborts with `what` at the last announced
/// address (plus `offset`).
fn expect_abort_in(exe: &Path, preset: &str, case: &str, what: &str, offset: usize) {
    expect_abort(exe.to_path_buf(), preset, case, what, offset, false);
}

fn expect_abort(exe: PathBuf, preset: &str, case: &str, what: &str, offset: usize, traced: bool) {
    let mut cmd = Command::new(exe);
    cmd.arg(case);
    let trace = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("misuse-{preset}-{case}.trace"));
    if traced {
        cmd.env("ALLOC_MALLOC_TRACE", &trace);
    }
    let out = run(cmd, Some(preset));
    let _ = std::fs::remove_file(&trace);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("NOT-DETECTED"), "{preset} {case}: not detected");
    let addr = stdout.lines().filter_map(|l| l.strip_prefix("MISUSE-ADDRESS ")).next_back().expect("an address");
    let addr = usize::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap() + offset;
    let line = format!("allocator error: {what} at {addr:#x}");
    let stderr = text(&out.stderr);
    assert!(stderr.lines().any(|l| l == line), "{preset} {case}: expected {line:?}, stderr: {stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(6), "{preset} {case}: {:?}", out.status);
}

#[test]
fn the_hardened_preset_reports_bad_frees_and_overflows() {
    expect_report("hardened", "double-free", "double free", 0);
    expect_report("hardened", "overflow", "canary corrupted (overflow past the end of the block)", 40);
    expect_report("hardened", "overflow-large", "canary corrupted (overflow past the end of the block)", 100_000);
    expect_report("hardened", "foreign", "free of a pointer this allocator never allocated", 0);
    expect_report("hardened", "interior", "free of an interior or misaligned pointer", 0);
    // A recorded trace keeps the preset: only `hardened` has the canary (a traced `general`
    // has a pool of its own; every other preset stays what it is).
    expect_abort(
        misuse_program(),
        "hardened",
        "overflow",
        "canary corrupted (overflow past the end of the block)",
        40,
        true,
    );
}

#[test]
fn the_pool_preset_reports_double_and_foreign_frees() {
    expect_report("general", "double-free", "double free", 0);
    expect_report("general", "foreign", "free of a pointer this allocator never allocated", 0);
}

/// Every preset names the misuse it sees, small blocks and large alike: a double free is a
/// double free (not an interior pointer, not a foreign one), a pointer inside a block is an
/// interior pointer, and `realloc` or `malloc_usable_size` of a freed block is a use after free.
#[test]
fn every_preset_names_the_misuse() {
    for preset in PRESETS {
        expect_report(preset, "double-free", "double free", 0);
        expect_report(preset, "double-free-large", "double free", 0);
        expect_report(preset, "interior", "free of an interior or misaligned pointer", 0);
        expect_report(preset, "interior-large", "free of an interior or misaligned pointer", 0);
        expect_report(preset, "foreign", "free of a pointer this allocator never allocated", 0);
        expect_report(preset, "realloc-freed", "use after free", 0);
        expect_report(preset, "realloc-interior", "free of an interior or misaligned pointer", 0);
        expect_report(preset, "usable-size-freed", "use after free", 0);
        // The same through the generic path a recorded trace takes (the hardened preset's
        // direct `free` finds a double free from its state word; the generic one asks the
        // preset what is wrong with a block that is no live one).
        expect_report_traced(preset, "double-free", "double free");
        expect_report_traced(preset, "realloc-freed", "use after free");
        expect_report_traced(preset, "interior", "free of an interior or misaligned pointer");
    }
}

/// `cmd` prints the same under every preset as without the library.
fn same_output(name: &str, make: impl Fn() -> Command) {
    let plain = run(make(), None);
    assert!(plain.status.success(), "{name} without the library: {}", text(&plain.stderr));
    for preset in PRESETS {
        let out = run(make(), Some(preset));
        assert!(out.status.success(), "{name} under {preset}: {:?} {}", out.status, text(&out.stderr));
        assert!(out.stdout == plain.stdout, "{name} under {preset}: output differs");
        // The library says nothing when nothing is wrong.
        assert!(out.stderr == plain.stderr, "{name} under {preset}: stderr {}", text(&out.stderr));
    }
}

#[test]
fn cpp_exceptions_unwind_through_the_programs_own_unwinder_under_every_preset() {
    let exe = build("exceptions.cc", "g++", &["-O2", "-pthread"]);
    same_output("exceptions.cc", || Command::new(&exe));
}

/// The library needs no libgcc_s on Linux (its `no-unwinder` feature, on by default): its
/// dynamic section names no such library, and it exports none of the unwinder's entry points,
/// whose stubs would otherwise take over every C++ program's exceptions.
#[cfg(target_os = "linux")]
#[test]
fn the_library_loads_no_unwinder_and_exports_none() {
    let lib = library();
    let out = Command::new("readelf").arg("-dW").arg(&lib).output().expect("readelf (binutils) runs");
    let dynamic = text(&out.stdout);
    assert!(dynamic.contains("(NEEDED)") && dynamic.contains("libc.so"), "readelf -d: {dynamic}");
    assert!(!dynamic.contains("libgcc_s"), "the library needs libgcc_s: {dynamic}");
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("nm (binutils) runs");
    let exported = text(&out.stdout);
    assert!(exported.contains(" malloc"), "nm -D: {exported}");
    assert!(!exported.contains("_Unwind_"), "the library exports the unwinder's stubs: {exported}");
}

#[test]
fn system_programs_run_unchanged_under_every_preset() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // sort on a generated file of 200,000 lines.
    let data = dir.join("sort-input.txt");
    let mut lines = String::new();
    let mut x: u64 = 1;
    for _ in 0..200_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lines.push_str(&format!("{:x} {}\n", x >> 20, x % 1000));
    }
    std::fs::write(&data, lines).unwrap();
    same_output("sort", || {
        let mut c = Command::new("sort");
        c.arg(&data);
        c
    });
    // A threaded C++ program.
    let cpp = build("threads.cc", "g++", &["-O2", "-pthread"]);
    same_output("threads.cc", || Command::new(&cpp));
    // gcc compiling a file (cc1 is a big allocation-heavy program).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/api.c");
    same_output("gcc", || {
        let mut c = Command::new("gcc");
        c.args(["-O2", "-S", "-o", "-"]).arg(&src);
        c
    });
    // git over this repository: the history with every patch, and a grep on four threads (its
    // output order does not depend on the threads) over the committed tree of HEAD, not the
    // working tree, so a file edited while the tests run cannot make the runs differ.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let in_repo = Command::new("git").arg("-C").arg(root).args(["rev-parse", "--git-dir"]).output();
    if in_repo.is_ok_and(|o| o.status.success()) {
        same_output("git log -p", || {
            let mut c = Command::new("git");
            c.arg("-C").arg(root).args(["log", "-p", "--stat", "-n", "40", "--no-color"]);
            c
        });
        same_output("git grep", || {
            let mut c = Command::new("git");
            c.arg("-C").arg(root).args(["grep", "-n", "--threads=4", "--no-color", "SAFETY", "HEAD"]);
            c
        });
    }
    if have("python3") {
        same_output("python3", || {
            let mut c = Command::new("python3");
            c.arg("-c").arg(
                "d = {}\nfor i in range(200000):\n    d[str(i)] = [i] * (i % 17)\nprint(sum(len(v) for v in d.values()))\n\
                 print(len(sorted(d, key=lambda k: -len(d[k]))))",
            );
            c
        });
    }
}

#[test]
fn a_recorded_trace_replays_in_the_conformance_format() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let input = dir.join("trace-input.txt");
    std::fs::write(&input, (0..20_000).rev().map(|i| format!("line {i}\n")).collect::<String>()).unwrap();
    for preset in ["general", "hardened"] {
        let file = dir.join(format!("sort-{preset}.trace"));
        // A file left by an earlier run would pass for this run's trace.
        let _ = std::fs::remove_file(&file);
        let mut cmd = Command::new("sort");
        cmd.arg(&input).env("ALLOC_MALLOC_TRACE", &file);
        let out = run(cmd, Some(preset));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let trace = conformance::trace::Trace::load(&file).expect("a well-formed trace");
        let allocs = trace.events.iter().filter(|e| matches!(e, conformance::trace::Event::Alloc(_))).count();
        let frees = trace.events.len() - allocs;
        assert!(allocs > 100 && frees > 50, "{preset}: {allocs} allocations, {frees} frees recorded");
    }
    // 200,000 blocks live at once: every free is matched to its allocation (the recorder's table
    // of live addresses probes past slots that collide).
    let file = dir.join("many-small.trace");
    let _ = std::fs::remove_file(&file);
    let mut cmd = Command::new(hardened_program());
    cmd.arg("many-small").env("ALLOC_MALLOC_TRACE", &file);
    let out = run(cmd, Some("general"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trace = conformance::trace::Trace::load(&file).expect("a well-formed trace");
    let allocs = trace.events.iter().filter(|e| matches!(e, conformance::trace::Event::Alloc(_))).count();
    let frees = trace.events.len() - allocs;
    assert!(allocs >= 200_000 && frees >= 200_000, "{allocs} allocations, {frees} frees recorded");
}

/// hardened.c, built once.
fn hardened_program() -> PathBuf {
    // -O0: the stores into freed blocks must happen.
    build("hardened.c", "gcc", &["-O0", "-pthread"])
}

fn run_case(exe: &Path, preset: &str, case: &str) -> Output {
    let mut cmd = Command::new(exe);
    cmd.arg(case);
    run(cmd, Some(preset))
}

/// Issue 19's five classes, each as the hardened preset must handle it: aborts naming the
/// address, faults, and properties that hold.
#[test]
fn the_hardened_preset_catches_what_the_strictest_hardened_mallocs_catch() {
    use std::os::unix::process::ExitStatusExt;
    let exe = hardened_program();
    // 1. Freed small memory reads as zero, and a write after free is caught when the slot is
    //    handed out again.
    for case in [
        "freed-reads-zero",
        "mid-reads-zero",
        "small-large-boundary",
        "zero-size",
        "sized-ok",
        "delayed-reuse",
        "large-reuse",
        "large-aligned",
        "large-calloc-zero",
        "many-large",
        // A correct program whose slabs change class and back runs clean (it aborted with a
        // false `write after free` every run until 2026-12-02).
        "class-cycle",
    ] {
        let out = run_case(&exe, "hardened", case);
        assert!(
            out.status.success() && text(&out.stdout).lines().any(|l| l == "OK"),
            "hardened {case}: {:?}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    expect_abort_in(&exe, "hardened", "write-after-free", "write after free detected", 0);
    expect_abort_in(&exe, "hardened", "mid-write-after-free", "write after free detected", 0);
    expect_abort_in(&exe, "hardened", "foreign-with-large-live", "free of a pointer this allocator never allocated", 0);
    // A header forged inside a live block does not let a free through.
    expect_abort_in(&exe, "hardened", "forged-header", "free of an interior or misaligned pointer", 0);
    expect_abort_in(&exe, "hardened", "forged-zero-header", "free of an interior or misaligned pointer", 0);
    // The canaries are keyed by the process secret and the address: none is zero, two blocks'
    // differ, and a second run's differ from the first's (a constant canary, or one that is 0 or
    // 1, passes every overflow test that writes other bytes). The runs have address-space
    // randomisation turned off where the system lets a process do that (`setarch -R`), so that
    // a secret that is no secret (a constant) gives both runs the same addresses and canaries:
    // with randomisation on, the addresses alone made the canaries differ.
    let canaries = || {
        let mut cmd = Command::new(&exe);
        cmd.arg("canaries");
        // SAFETY: between fork and exec, only the async-signal-safe `personality` is called.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
                Ok(())
            });
        }
        let out = text(&run(cmd, Some("hardened")).stdout);
        let v: Vec<String> = out.split_whitespace().take(5).map(str::to_string).collect();
        assert_eq!(v.len(), 5, "hardened canaries: {out}");
        v
    };
    // Two small blocks' canaries, a large block's, two large blocks' state words.
    let (first, second) = (canaries(), canaries());
    for c in first.iter().chain(&second) {
        assert!(u64::from_str_radix(c, 16).is_ok_and(|c| c > 1), "hardened: a canary or state word of {c}");
    }
    assert_ne!(first[0], first[1], "hardened: two blocks have the same canary");
    assert_ne!(first[3], first[4], "hardened: two large blocks have the same state word");
    for (i, what) in
        ["small canary", "small canary", "large canary", "large state word", "large state word"].iter().enumerate()
    {
        assert_ne!(first[i], second[i], "hardened: two runs have the same {what}");
    }
    // 2. A freed large block's pages fault (and a reused mapping's pages past its block); 3. so
    //    does any access to a zero-size block.
    for case in [
        "large-read-after-free",
        "large-write-after-free",
        "large-aligned-write-after-free",
        "large-reused-tail",
        "zero-size-read",
        "zero-size-write",
        "segment-guard-before",
        "segment-guard-after",
        "slab-guard",
    ] {
        let out = run_case(&exe, "hardened", case);
        assert!(!text(&out.stdout).contains("NOT-FAULTED"), "hardened {case}: the access did not fault");
        assert!(
            matches!(out.status.signal(), Some(11) | Some(7)),
            "hardened {case}: should die of SIGSEGV, got {:?}\n{}",
            out.status,
            text(&out.stderr)
        );
    }
    //    The segment and slab guards are the hardened pool's: under `general` the same writes
    //    land in pages that hold nothing or in a free block, and the program runs on (so the
    //    faults above are the guards').
    for case in ["segment-guard-before", "segment-guard-after", "slab-guard"] {
        let out = run_case(&exe, "general", case);
        assert!(text(&out.stdout).contains("NOT-FAULTED"), "general {case}: {:?}\n{}", out.status, text(&out.stderr));
    }
    // 4. Sized deallocation is checked, small and large, size and alignment.
    for case in ["sized-mismatch", "sized-mismatch-large", "aligned-sized-mismatch"] {
        expect_abort_in(&exe, "hardened", case, "sized deallocation mismatch", 0);
    }
    let cxx = build("sized_delete.cc", "g++", &["-O1"]);
    expect_abort_in(&cxx, "hardened", "mismatch", "sized deallocation mismatch", 0);
    // 5. Delayed (checked above) and randomised reuse: two runs give the freed blocks back in
    //    different orders, and not in the pool's newest-first order.
    let order = |preset| text(&run_case(&exe, preset, "reuse-order").stdout).lines().next().unwrap_or("").to_string();
    let (a, b, lifo) = (order("hardened"), order("hardened"), order("general"));
    assert!(a.split(' ').count() > 100, "hardened: the freed blocks did not come back: {a:?}");
    assert_ne!(a, b, "hardened: two runs reused freed blocks in the same order");
    assert_ne!(a, lifo, "hardened: the reuse order is the pool's own");
    //    The large blocks' quarantine and cache stay bounded: 300 frees of 1 MiB blocks
    //    leave about 65 MiB of address space (64 quarantined, the cache emptied by the next
    //    malloc each time), not 300.
    let out = text(&run_case(&exe, "hardened", "large-quarantine-bounded").stdout);
    let grown: usize = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("the growth in MiB");
    assert!(
        (40..150).contains(&grown),
        "hardened: 300 freed 1 MiB blocks left {grown} MiB of address space (the quarantine keeps 64)"
    );
    //    Under churn, long after the quarantine filled, a block is reused only after the 32
    //    frees its FIFO holds it for (measured: 34; 3 with the FIFO's index stuck at 0, a
    //    mutant that "delayed-reuse" lets through because it frees nothing after its block).
    let out = text(&run_case(&exe, "hardened", "reuse-distance").stdout);
    let fewest: i64 = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("the fewest frees");
    assert!(fewest >= 32, "hardened: a block came back after {fewest} frees, not at least 32");
    //    A thread's quarantine, reserves and the quarantine itself go back to the pool when it
    //    exits: 400 threads that each leave about 20 KiB behind grow the resident memory by a
    //    few hundred KiB (measured: 150), not the 10 MiB of an exit hook that gives nothing
    //    back (measured with the hook's body removed).
    let out = text(&run_case(&exe, "hardened", "thread-exit-returns-blocks").stdout);
    let grown: i64 = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("the growth in KiB");
    assert!(grown < 2048, "hardened: 400 exited threads left {grown} KiB more resident memory behind");
    //    The byte bounds hold too, also after the cache gave a mapping back: 8 MiB blocks leave
    //    1 live + 31 quarantined + 7 cached mappings, about 312 MiB (a ring that ignored its
    //    byte bound kept 64 blocks, 570; one mapping more or less in the cache is 8 MiB).
    let out = text(&run_case(&exe, "hardened", "large-cache-bytes-bounded").stdout);
    let grown: usize = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("the growth in MiB");
    assert!((306..318).contains(&grown), "hardened: 8 MiB blocks left {grown} MiB of address space, not about 312");
    //    A mapping taken back out of the cache is all zero (its pages went back at the free),
    //    so `calloc` may take it: under every preset, `calloc` of 8 MiB after 40 filled and
    //    freed is zero.
    for preset in ["hardened", "general"] {
        let out = text(&run_case(&exe, preset, "large-calloc-is-zero").stdout);
        assert_eq!(out.lines().next(), Some("-1"), "{preset}: calloc gave a byte that is not zero: {out}");
    }
    //    ... and they hold address space, not memory: a freed large block's pages go back to
    //    the OS at once (an 8 MiB buffer filled and freed 20 times peaked at 166 MB resident
    //    when the quarantine kept them; `general`, hardened_malloc and Scudo: about 10).
    let out = text(&run_case(&exe, "hardened", "large-free-gives-pages-back").stdout);
    let grown: i64 = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("the growth in MiB");
    assert!(grown < 24, "hardened: 20 freed 8 MiB buffers grew the peak resident memory by {grown} MiB");
    //    Fresh blocks are placed at random too: consecutive allocations are neighbours about
    //    1 time in RESERVE (8) or less (the guarded pool shuffles each carve: 28-36 of 999 for
    //    200-byte blocks, 65-80 without), not always as the pool carves them, and runs differ.
    //    Two runs differ: the whole sequence of distances between consecutive blocks is
    //    compared (its hash), not only the count and the first block's offset, which matched by
    //    chance about once in 150 pairs of runs and failed a baseline run.
    let placement = |preset, case| {
        let out = text(&run_case(&exe, preset, case).stdout);
        let mut it = out.lines().next().unwrap_or("").split_whitespace();
        let neighbours: usize = it.next().and_then(|w| w.parse().ok()).expect("the neighbour count");
        (neighbours, it.map(str::to_string).collect::<Vec<_>>())
    };
    for case in ["fresh-placement", "fresh-placement-4k"] {
        let (general, _) = placement("general", case);
        assert!(
            general > 900,
            "general {case}: the pool carves in address order, yet {general} of 999 were neighbours"
        );
        let (h1, rest1) = placement("hardened", case);
        let (h2, rest2) = placement("hardened", case);
        for n in [h1, h2] {
            assert!(n < 400, "hardened {case}: {n} of 999 consecutive allocations were neighbours");
        }
        assert_eq!(rest1.len(), 2, "hardened {case}: the first offset and the hash");
        assert!((h1, &rest1) != (h2, &rest2), "hardened {case}: two runs placed blocks alike");
    }
    // Everything caught before stays caught with threads: two threads freeing one block.
    expect_abort_in(&exe, "hardened", "two-threads-double-free", "double free", 0);
    // And every class is caught on a thread other than the main one (the quarantine and the
    // checks are per thread).
    for (case, what) in [
        ("thread:write-after-free", "write after free detected"),
        ("thread:sized-mismatch", "sized deallocation mismatch"),
        ("thread:sized-mismatch-large", "sized deallocation mismatch"),
    ] {
        expect_abort_in(&exe, "hardened", case, what, 0);
    }
    for case in ["thread:large-read-after-free", "thread:zero-size-write"] {
        let out = run_case(&exe, "hardened", case);
        assert!(matches!(out.status.signal(), Some(11) | Some(7)), "hardened {case}: {:?}", out.status);
    }
    for case in ["thread:freed-reads-zero", "thread:delayed-reuse"] {
        let out = run_case(&exe, "hardened", case);
        assert!(
            out.status.success() && text(&out.stdout).lines().any(|l| l == "OK"),
            "hardened {case}: {:?}",
            out.status
        );
    }
}

/// The sized and aligned entry points work under every preset (and skip the check outside
/// `hardened`); correct C++ sized and aligned deletes run clean everywhere, and aligned `new`
/// of an impossible size throws `std::bad_alloc`. Threads start cleanly when arming the
/// per-thread exit hook makes the C library allocate (more than 32 pthread keys in use).
#[test]
fn sized_and_aligned_deallocation_runs_clean_under_every_preset() {
    let exe = hardened_program();
    let cxx = build("sized_delete.cc", "g++", &["-O1"]);
    for preset in PRESETS {
        for (prog, case) in [(&exe, "sized-ok"), (&exe, "many-keys"), (&cxx, "ok"), (&cxx, "oom")] {
            let out = run_case(prog, preset, case);
            assert!(
                out.status.success() && text(&out.stdout).lines().any(|l| l == "OK"),
                "{preset} {}: {:?}\n{}{}",
                prog.display(),
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}
