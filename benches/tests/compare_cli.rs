//! `compare` as a user runs it: the JSON report it writes beside the Markdown one,
//! `--baseline` reading a saved report back and printing the change per result, and `--exec`
//! going on past an allocator a program fails under.

use std::path::Path;
use std::process::Command;

fn compare(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--workload", "alloc-free-pair", "--allocators", "glibc,pool", "--reps", "1", "--scale", "0.01"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("compare runs")
}

#[test]
fn a_saved_report_is_json_and_a_later_run_prints_its_change_against_it() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-cli");
    let (first, second) = (dir.join("first"), dir.join("second"));
    let out = compare(&first, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = first.join("report.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).expect("valid JSON");
    let results = json["results"].as_array().expect("a results array");
    let names: Vec<_> = results.iter().map(|r| r["allocator"].as_str().unwrap()).collect();
    assert_eq!(names, ["glibc", "pool"], "{json}");
    assert!(results
        .iter()
        .all(|r| r["workload"] == "alloc-free-pair" && r["ns_per_op"].as_f64().is_some_and(|v| v > 0.0)));

    let out = compare(&second, &["--baseline", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Against the baseline"), "{stdout}");
    for name in ["glibc", "pool"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| alloc-free-pair | {name} |")) && l.matches('%').count() == 2)
            .unwrap_or_else(|| panic!("no change line for {name}:\n{stdout}"));
        assert!(line.contains('+') || line.contains('-'), "{line}");
    }
}

#[test]
fn a_baseline_that_is_not_a_report_is_an_error_that_says_so() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-cli-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("not-a-report.json");
    std::fs::write(&bad, "this is not json").unwrap();
    let out = compare(&dir.join("out"), &["--baseline", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a report.json of compare"), "{stderr}");
}

#[test]
fn a_misspelt_name_is_an_error_that_suggests_the_closest_one() {
    for (flag, wrong, right) in
        [("--workload", "alloc-fre-pair", "alloc-free-pair"), ("--allocators", "glibc,mimaloc", "mimalloc")]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_compare")).args([flag, wrong]).output().expect("compare runs");
        assert_eq!(out.status.code(), Some(2), "{flag} {wrong}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("a similar value exists: '{right}'")), "{stderr}");
    }
}

#[test]
fn help_is_generated_from_the_definitions_and_names_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_compare")).arg("--help").output().expect("compare runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--list",
        "--workload",
        "--allocators",
        "--reps",
        "--scale",
        "--instructions",
        "--out",
        "--trace",
        "--baseline",
        "--exec",
        "--programs",
        "--runs",
        "--threads",
        "--preload",
    ] {
        assert!(help.contains(option), "--help does not name {option}:\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_compare")).args(["--exec"]).output().expect("compare runs");
    assert_eq!(out.status.code(), Some(2), "--exec without a program is a usage error");
}

#[test]
fn a_program_that_fails_under_one_allocator_is_that_rows_result_and_under_glibc_an_error() {
    // Any library will do for `--preload` (the program only looks at the variable): the
    // system's libm, else compare itself (ld.so ignores what it cannot preload and the variable
    // is set all the same). So at least one row fails on every machine, peers or none.
    let lib = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| env!("CARGO_BIN_EXE_compare").into());
    // Succeeds with nothing preloaded (glibc), fails under every preloaded allocator.
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .arg("--preload")
        .arg(format!("mine={}", lib.display()))
        .args(["--exec", "--runs", "1", "--", "sh", "-c", "test -z \"$LD_PRELOAD\""])
        .output()
        .expect("compare runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| allocator")).collect();
    assert!(rows[0].starts_with("| glibc | ") && !rows[0].contains("failed"), "{table}");
    assert!(rows.last().is_some_and(|r| r.starts_with("| mine | ")), "--preload's row comes last: {table}");
    // Every preloaded row: the peers found, our presets when the socket is built, and `mine`.
    assert!(rows.len() >= 2, "{table}");
    for row in &rows[1..] {
        assert!(row.contains("failed: \"sh\" exited with status 1"), "{row}");
    }
    // A program that fails on its own (under glibc) is an error, not a table.
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--exec", "--runs", "1", "--", "sh", "-c", "kill -ABRT $$"])
        .output()
        .expect("compare runs");
    assert_eq!(out.status.code(), Some(1), "a run that fails exits with 1 (2 is for bad arguments)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("killed by signal 6 (SIGABRT)"), "{err}");
}
