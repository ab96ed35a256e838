//! `compare`: every allocator and peer on the built-in workloads, one child process per
//! measurement (so peak RSS belongs to one workload), alternating allocators between repetitions.
//! Prints a table and writes `report.md` and `chart.html` under `target/compare/`.
//!
//! Also replays a recorded trace (`--trace FILE`) and runs unmodified programs under glibc and
//! `LD_PRELOAD`ed mimalloc, jemalloc and tcmalloc (`--exec -- PROGRAM ARGS`).

use benches::contenders::{self, Contender};
use benches::measure::Sample;
use benches::workloads::{self, Scale, Workload};
use benches::{CONTENDERS, WORKLOADS};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The command line, parsed by clap: `--help` is generated from these definitions, and a name
/// that is not a workload or an allocator is an error that suggests the closest one.
#[derive(clap::Parser)]
#[command(
    name = "compare",
    about = "compare: our allocators against glibc, mimalloc, jemalloc, talc and bumpalo",
    long_about = "compare: our allocators against glibc, mimalloc, jemalloc, talc and bumpalo.\n\n\
                  With no mode, runs the built-in workloads (default: all) on every allocator, one \
                  child process per measurement, and writes report.md, report.json and chart.html.",
    after_help = "Modes:\n  compare [OPTIONS]                       the built-in workloads\n  \
                  compare --trace FILE [OPTIONS]          replay a recorded Alloc(n)/Free(i) trace\n  \
                  compare --exec [--runs N] -- PROGRAM [ARGS...]\n                                          \
                  a program under glibc and LD_PRELOADed peers\n  \
                  compare --programs [--runs N] [--threads N]\n                                          \
                  the built-in C programs and sort, python3, gcc, git\n  \
                  compare --list                          the workloads and allocators",
    override_usage = "compare [OPTIONS] [--exec -- PROGRAM [ARGS...]]"
)]
struct Cli {
    /// List the workloads and allocators, then exit
    #[arg(long)]
    list: bool,
    /// Workloads to run, comma-separated (see --list)
    #[arg(long = "workload", visible_alias = "workloads", value_name = "A,B", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(WORKLOADS.iter().map(|w| w.name)),
          hide_possible_values = true)]
    workloads: Vec<String>,
    /// Allocators to run, comma-separated (see --list)
    #[arg(long = "allocators", visible_alias = "allocator", value_name = "A,B", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(CONTENDERS.iter().map(|c| c.name)),
          hide_possible_values = true)]
    allocators: Vec<String>,
    /// Repetitions per measurement, alternating allocators between them
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Multiply every workload's iteration count
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    scale: f64,
    /// Also count instructions per operation with valgrind's callgrind (slow)
    #[arg(long)]
    instructions: bool,
    /// Where report.md, report.json and chart.html go
    #[arg(long, value_name = "DIR", default_value = "target/compare")]
    out: PathBuf,
    /// Replay a recorded Alloc(n)/Free(i) trace on every allocator
    #[arg(long, value_name = "FILE", conflicts_with_all = ["exec", "programs"])]
    trace: Option<PathBuf>,
    /// Also print each result's change against a saved report.json
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Run the program after `--` under glibc, the LD_PRELOADed peers and our presets
    #[arg(long, requires = "program", conflicts_with = "programs")]
    exec: bool,
    /// Run the built-in C programs (shapes of cfrac, larson, xmalloc-test, ...) and sort, python3,
    /// gcc, git, each under glibc, the peers and our presets
    #[arg(long)]
    programs: bool,
    /// With --exec and --programs: runs per allocator
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// With --programs: threads of the threaded programs
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// With --exec and --programs: also run under this shared library, LD_PRELOADed (a build of
    /// your own, an allocator Debian does not ship), named NAME in the tables; repeatable
    #[arg(long, value_name = "NAME=PATH", value_parser = preload)]
    preload: Vec<(String, PathBuf)>,
    /// With --exec: the program and its arguments
    #[arg(last = true, value_name = "PROGRAM", requires = "exec")]
    program: Vec<String>,
}

/// A `--preload` value: a name for the tables and a library that exists.
fn preload(v: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = v
        .split_once('=')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        .ok_or_else(|| format!("wants NAME=PATH, got {v:?}"))?;
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok((name.to_string(), path))
}

fn positive(v: &str) -> Result<f64, String> {
    v.parse()
        .ok()
        .filter(|s: &f64| *s > 0.0 && s.is_finite())
        .ok_or_else(|| format!("wants a positive number, got {v:?}"))
}

/// A bad input found after parsing (a trace that does not load, a program that fails): printed,
/// exit status 1.
struct Usage(String);

struct Options {
    workloads: Vec<&'static Workload>,
    allocators: Vec<&'static Contender>,
    reps: usize,
    scale: f64,
    instructions: bool,
    out: PathBuf,
    trace: Option<PathBuf>,
    baseline: Option<PathBuf>,
    exec: Option<Vec<String>>,
    programs: bool,
    threads: usize,
    runs: usize,
    preload: Vec<(String, PathBuf)>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2..]);
    }
    let cli = <Cli as clap::Parser>::parse();
    if cli.list {
        println!("workloads:");
        for w in WORKLOADS {
            println!("  {:<20} {}{}", w.name, w.what, if w.threads { " [threads]" } else { "" });
        }
        println!("allocators:");
        for c in CONTENDERS {
            println!("  {:<20} {}{}", c.name, c.what, if c.ours { " [ours]" } else { "" });
        }
        return ExitCode::SUCCESS;
    }
    match run(&options(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Usage(msg)) => {
            eprintln!("compare: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The parsed command line as the runs use it: names resolved (clap has checked them).
fn options(cli: Cli) -> Options {
    fn resolve<T>(names: &[String], all: &'static [T], find: fn(&str) -> Option<&'static T>) -> Vec<&'static T> {
        if names.is_empty() {
            return all.iter().collect();
        }
        let mut out: Vec<&'static T> = Vec::new();
        for n in names {
            let t = find(n).expect("clap checked the name");
            if !out.iter().any(|o| std::ptr::eq(*o, t)) {
                out.push(t);
            }
        }
        out
    }
    Options {
        workloads: resolve(&cli.workloads, WORKLOADS, workloads::by_name),
        allocators: resolve(&cli.allocators, CONTENDERS, contenders::by_name),
        reps: cli.reps as usize,
        scale: cli.scale,
        instructions: cli.instructions,
        out: cli.out,
        trace: cli.trace,
        baseline: cli.baseline,
        exec: cli.exec.then_some(cli.program),
        programs: cli.programs,
        threads: cli.threads as usize,
        runs: cli.runs as usize,
        preload: cli.preload,
    }
}

/// The child side: one measurement, printed as a `SAMPLE` line.
fn child(args: &[String]) -> ExitCode {
    let sample = match args {
        [kind, target, alloc, scale] if kind == "workload" => {
            let (Some(w), Some(c), Ok(s)) = (workloads::by_name(target), contenders::by_name(alloc), scale.parse())
            else {
                eprintln!("compare --child: bad arguments {args:?}");
                return ExitCode::from(2);
            };
            (c.run)(w, Scale(s))
        }
        [kind, target, alloc] if kind == "trace" => {
            let Some(c) = contenders::by_name(alloc) else { return ExitCode::from(2) };
            match conformance::trace::Trace::load(Path::new(target)) {
                Ok(t) => Some((c.trace)(&t)),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => return ExitCode::from(2),
    };
    match sample {
        Some(s) => println!("{}", s.encode()),
        None => println!("SKIP"),
    }
    ExitCode::SUCCESS
}

/// Progress on stderr: on a terminal, a bar with the time left (indicatif); in a log (stderr not
/// a terminal), the plain lines given to [`Progress::log`], one per pass.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// A step is running: the next step (or the end) counts it done.
    running: std::cell::Cell<bool>,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template(
                "{elapsed:>4} [{bar:30.cyan/blue}] {pos}/{len} {wide_msg} (about {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress { bar, running: std::cell::Cell::new(false) }
    }

    /// One step begins (and the one before it is done): the bar shows what it is.
    fn step(&self, what: String) {
        if let Some(bar) = &self.bar {
            if self.running.replace(true) {
                bar.inc(1);
            }
            bar.set_message(what);
        }
    }

    /// A line for a log (stderr not a terminal); a terminal has the bar instead.
    fn log(&self, line: String) {
        if self.bar.is_none() {
            eprintln!("{line}");
        }
    }

    fn finish(self, summary: String) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{summary}");
    }
}

/// Results of one measurement: repeated samples, or why there are none.
#[derive(Default)]
struct Cell {
    samples: Vec<Sample>,
    instructions: Option<f64>,
    skipped: bool,
    error: Option<String>,
}

impl Cell {
    fn median(&self, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        let mut v: Vec<f64> = self.samples.iter().map(f).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        Some(v[v.len() / 2])
    }
}

fn run(o: &Options) -> Result<(), Usage> {
    if let Some(cmd) = &o.exec {
        return exec(cmd, o.runs, &o.preload);
    }
    if o.programs {
        return programs(o);
    }
    let (rows, title): (Vec<String>, String) = match &o.trace {
        Some(path) => {
            let t = conformance::trace::Trace::load(path).map_err(Usage)?;
            let name = format!("trace:{}", t.name);
            eprintln!("trace {}: {} events, {} allocations", path.display(), t.events.len(), t.allocations());
            (vec![name], format!("trace {}", path.display()))
        }
        None => (o.workloads.iter().map(|w| w.name.to_string()).collect(), "built-in workloads".into()),
    };
    let exe = std::env::current_exe().map_err(|e| Usage(format!("cannot find my own executable: {e}")))?;
    let total = rows.len() * o.allocators.len() * o.reps;
    let mut cells: BTreeMap<(String, &'static str), Cell> = BTreeMap::new();
    let started = Instant::now();
    let mut done = 0;
    let progress = Progress::new(total);
    for rep in 0..o.reps {
        for row in &rows {
            progress.log(format!("[{:>3}/{total}] repetition {}/{}: {row}", done + 1, rep + 1, o.reps));
            // Alternate the order between repetitions so drift does not favour one allocator.
            let n = o.allocators.len();
            for k in 0..n {
                let c = o.allocators[(k + rep) % n];
                done += 1;
                progress.step(format!("{row} × {}", c.name));
                let cell = cells.entry((row.clone(), c.name)).or_default();
                if cell.skipped || cell.error.is_some() {
                    continue;
                }
                let mut cmd = Command::new(&exe);
                match &o.trace {
                    Some(path) => cmd.args(["--child", "trace", &path.to_string_lossy(), c.name]),
                    None => cmd.args(["--child", "workload", row, c.name, &o.scale.to_string()]),
                };
                match run_child(cmd) {
                    Ok(Some(s)) => cell.samples.push(s),
                    Ok(None) => cell.skipped = true,
                    Err(e) => cell.error = Some(e),
                }
            }
        }
    }
    progress.finish(format!("{done} measurements in {:.0}s", started.elapsed().as_secs_f64()));
    if o.instructions {
        count_instructions(o, &exe, &rows, &mut cells)?;
    }
    let mut table = render_table(&rows, &o.allocators, &cells, o.instructions);
    let json = report_json(&title, &rows, &o.allocators, &cells);
    if let Some(path) = &o.baseline {
        table.push_str(&against_baseline(path, &json)?);
    }
    println!("{table}");
    write_reports(o, &title, &rows, &cells, &table)?;
    let json_path = o.out.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| Usage(format!("cannot write {}: {e}", json_path.display())))?;
    eprintln!("wrote {}", json_path.display());
    Ok(())
}

/// The results as JSON: one object per (workload, allocator) with the medians, for comparing runs
/// and machines (`--baseline`).
fn report_json(
    title: &str,
    rows: &[String],
    allocators: &[&'static Contender],
    cells: &BTreeMap<(String, &'static str), Cell>,
) -> serde_json::Value {
    let mut results = Vec::new();
    for row in rows {
        for c in allocators {
            let Some(cell) = cells.get(&(row.clone(), c.name)) else { continue };
            if cell.skipped {
                continue;
            }
            results.push(serde_json::json!({
                "workload": row,
                "allocator": c.name,
                "ns_per_op": cell.median(|s| s.ns_per_op),
                "peak_rss": cell.median(|s| s.peak_rss as f64),
                "rss_after_free": cell.median(|s| s.rss_after as f64),
                "instructions_per_op": cell.instructions,
                "samples": cell.samples.len(),
                "error": cell.error,
            }));
        }
    }
    serde_json::json!({
        "title": title,
        "command": std::env::args().skip(1).collect::<Vec<_>>(),
        "machine": machine(),
        "results": results,
    })
}

/// A Markdown table of each result's change against the same (workload, allocator) in the
/// report saved at `path`.
fn against_baseline(path: &Path, now: &serde_json::Value) -> Result<String, Usage> {
    let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
    let base: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Usage(format!("{} is not a report.json of compare: {e}", path.display())))?;
    let key = |r: &serde_json::Value| {
        (r["workload"].as_str().unwrap_or("").to_string(), r["allocator"].as_str().unwrap_or("").to_string())
    };
    let old: BTreeMap<_, _> = base["results"].as_array().into_iter().flatten().map(|r| (key(r), r.clone())).collect();
    let mut t = format!(
        "\n\nAgainst the baseline `{}` ({}):\n\n| workload | allocator | ns/op | baseline | change | peak RSS | baseline | change |\n|---|---|--:|--:|--:|--:|--:|--:|\n",
        path.display(),
        base["machine"].as_str().unwrap_or("machine unknown")
    );
    let change = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:+.1} %", (a / b - 1.0) * 100.0),
        _ => "–".to_string(),
    };
    let mut matched = 0;
    for r in now["results"].as_array().into_iter().flatten() {
        let Some(b) = old.get(&key(r)) else { continue };
        matched += 1;
        let (ns, bns) = (r["ns_per_op"].as_f64(), b["ns_per_op"].as_f64());
        let (rss, brss) = (r["peak_rss"].as_f64(), b["peak_rss"].as_f64());
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            key(r).0,
            key(r).1,
            ns.map_or("–".into(), |v| format!("{v:.1}")),
            bns.map_or("–".into(), |v| format!("{v:.1}")),
            change(ns, bns),
            rss.map_or("–".into(), bytes),
            brss.map_or("–".into(), bytes),
            change(rss, brss),
        );
    }
    if matched == 0 {
        return Err(Usage(format!("{} has no result for any workload and allocator of this run", path.display())));
    }
    Ok(t)
}

fn run_child(mut cmd: Command) -> Result<Option<Sample>, String> {
    let out = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output().map_err(|e| format!("spawn: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(format!("{} ({last})", out.status));
    }
    if stdout.lines().any(|l| l == "SKIP") {
        return Ok(None);
    }
    stdout.lines().find_map(Sample::decode).map(Some).ok_or_else(|| "no sample printed".into())
}

/// Runs each measurement once more under callgrind, collecting only inside the timed pass.
fn count_instructions(
    o: &Options,
    exe: &Path,
    rows: &[String],
    cells: &mut BTreeMap<(String, &'static str), Cell>,
) -> Result<(), Usage> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err(Usage("--instructions needs valgrind (Debian package `valgrind`)".into()));
    }
    let scale = (o.scale * 0.02).to_string();
    let total = rows
        .iter()
        .flat_map(|r| o.allocators.iter().map(move |c| (r, c)))
        .filter(|(r, c)| cells.get(&((*r).clone(), c.name)).is_some_and(|cell| !cell.samples.is_empty()))
        .count();
    let progress = Progress::new(total);
    for row in rows {
        for c in &o.allocators {
            let Some(cell) = cells.get_mut(&(row.clone(), c.name)) else { continue };
            if cell.samples.is_empty() {
                continue;
            }
            progress.step(format!("callgrind: {row} × {}", c.name));
            progress.log(format!("callgrind: {row} × {}", c.name));
            let mut cmd = Command::new("valgrind");
            cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*timed_pass*"]).arg(exe);
            match &o.trace {
                Some(path) => cmd.args(["--child", "trace", &path.to_string_lossy(), c.name]),
                None => cmd.args(["--child", "workload", row, c.name, &scale]),
            };
            let out = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output();
            let Ok(out) = out else { continue };
            let err = String::from_utf8_lossy(&out.stderr);
            let collected = err.lines().find_map(|l| l.split("Collected :").nth(1)?.trim().parse::<f64>().ok());
            let sample = String::from_utf8_lossy(&out.stdout).lines().find_map(Sample::decode);
            if let (Some(n), Some(s)) = (collected, sample) {
                cell.instructions = Some(n / s.ops.max(1) as f64);
            }
        }
    }
    progress.finish("callgrind done".into());
    Ok(())
}

fn bytes(n: f64) -> String {
    let (v, unit) = if n >= 1e9 {
        (n / (1u64 << 30) as f64, "GiB")
    } else if n >= 1e6 {
        (n / (1u64 << 20) as f64, "MiB")
    } else if n >= 1e3 {
        (n / 1024.0, "KiB")
    } else {
        (n, "B")
    };
    format!("{v:.1} {unit}")
}

fn render_table(
    rows: &[String],
    allocators: &[&'static Contender],
    cells: &BTreeMap<(String, &'static str), Cell>,
    instructions: bool,
) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "| workload | allocator | ns/op | × glibc | × mimalloc | peak RSS | RSS / live | RSS after free | after trim |"
    );
    if instructions {
        t.push_str(" instr/op |");
    }
    t.push('\n');
    t.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|");
    if instructions {
        t.push_str("--:|");
    }
    t.push('\n');
    for row in rows {
        let ns = |name: &str| cells.get(&(row.clone(), name)).and_then(|c| c.median(|s| s.ns_per_op));
        let (glibc, mimalloc) = (ns("glibc"), ns("mimalloc"));
        for c in allocators {
            let Some(cell) = cells.get(&(row.clone(), c.name)) else { continue };
            let name = if c.ours { format!("**{}**", c.name) } else { c.name.to_string() };
            if cell.skipped {
                continue;
            }
            if let Some(e) = &cell.error {
                let _ =
                    writeln!(t, "| {row} | {name} | failed: {e} | | | | | | |{}", if instructions { " |" } else { "" });
                continue;
            }
            let Some(v) = ns(c.name) else { continue };
            let ratio = |base: Option<f64>| base.map_or("–".into(), |b| format!("{:.2}", v / b));
            let peak = cell.median(|s| s.peak_rss as f64).unwrap_or(0.0);
            let after = cell.median(|s| s.rss_after as f64).unwrap_or(0.0);
            let trimmed = cell.median(|s| s.rss_trimmed as f64).filter(|&t| t < u64::MAX as f64);
            let over = cell.median(|s| s.overhead().unwrap_or(0.0)).unwrap_or(0.0);
            let _ = write!(
                t,
                "| {row} | {name} | {v:.1} | {} | {} | {} | {over:.2} | {} | {} |",
                ratio(glibc),
                ratio(mimalloc),
                bytes(peak),
                bytes(after),
                trimmed.map_or("–".into(), bytes)
            );
            if instructions {
                let _ = write!(t, " {} |", cell.instructions.map_or("–".into(), |i| format!("{i:.0}")));
            }
            t.push('\n');
        }
    }
    t
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

fn write_reports(
    o: &Options,
    title: &str,
    rows: &[String],
    cells: &BTreeMap<(String, &'static str), Cell>,
    table: &str,
) -> Result<(), Usage> {
    std::fs::create_dir_all(&o.out).map_err(|e| Usage(format!("cannot create {}: {e}", o.out.display())))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut md = String::new();
    let _ = writeln!(md, "# compare: {title}\n");
    let _ = writeln!(md, "- machine: {}", machine());
    let _ = writeln!(md, "- command: `cargo run --release -p benches --bin compare -- {}`", args.join(" "));
    let _ = writeln!(md, "- repetitions: {} (medians shown), scale {}", o.reps, o.scale);
    let _ = writeln!(
        md,
        "- ns/op: wall time of the timed pass / allocator operations; ratios below 1 are faster than the peer.\n\
         - peak RSS: resident memory above the process's baseline; RSS / live: that peak over the peak bytes the \
         workload held; RSS after free: resident memory above baseline once everything was freed; after trim: \
         the same after the allocator's own call to give memory back (glibc `malloc_trim(0)`, our `trim`; – \
         where there is none).\n\
         - multi-thread workloads on a 2-core machine show contention, not scaling.\n"
    );
    md.push_str(table);
    let md_path = o.out.join("report.md");
    std::fs::write(&md_path, md).map_err(|e| Usage(format!("cannot write {}: {e}", md_path.display())))?;

    let html_path = o.out.join("chart.html");
    std::fs::write(&html_path, chart(title, rows, &o.allocators, cells))
        .map_err(|e| Usage(format!("cannot write {}: {e}", html_path.display())))?;
    eprintln!("wrote {} and {}", md_path.display(), html_path.display());
    Ok(())
}

/// One horizontal bar chart per workload: time per operation relative to glibc (log scale).
fn chart(
    title: &str,
    rows: &[String],
    allocators: &[&'static Contender],
    cells: &BTreeMap<(String, &'static str), Cell>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><meta charset=utf-8><title>compare: {title}</title>\
         <style>body{{font:14px sans-serif;margin:2em}}h2{{font-size:15px;margin:1.5em 0 .3em}}</style>\
         <h1>compare: {title}</h1><p>{}. Time per operation relative to glibc (log scale; shorter is faster). \
         Ours in blue, peers in grey.</p>",
        machine()
    );
    for row in rows {
        let glibc = cells.get(&(row.clone(), "glibc")).and_then(|c| c.median(|s| s.ns_per_op));
        let bars: Vec<(&str, bool, f64, f64)> = allocators
            .iter()
            .filter_map(|c| {
                let ns = cells.get(&(row.clone(), c.name))?.median(|s| s.ns_per_op)?;
                Some((c.name, c.ours, ns, glibc.map_or(1.0, |g| ns / g)))
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        let (w, bh) = (760.0, 22.0);
        let max_log = bars.iter().map(|b| b.3.log2().abs()).fold(1.0f64, f64::max).ceil();
        let x = |r: f64| 120.0 + (r.log2() + max_log) / (2.0 * max_log) * (w - 320.0);
        let height = bars.len() as f64 * bh + 20.0;
        // Every attribute quoted: an unquoted value swallows the `/` of `/>`, and the browser
        // then nests everything after the first bar inside it (a blank chart; the browser test
        // in tests/chart_browser.rs found it).
        let _ = write!(h, "<h2>{row}</h2><svg width=\"{w}\" height=\"{height}\">");
        let mid = x(1.0);
        let _ = write!(
            h,
            "<line x1=\"{mid:.1}\" x2=\"{mid:.1}\" y1=\"0\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"3\" />",
            bars.len() as f64 * bh
        );
        for (i, (name, ours, ns, ratio)) in bars.iter().enumerate() {
            let y = i as f64 * bh;
            let (a, b) = (mid.min(x(*ratio)), mid.max(x(*ratio)));
            let colour = if *ours { "#2f6fdf" } else { "#999" };
            let _ = write!(
                h,
                "<text x=\"0\" y=\"{}\">{name}</text>\
                 <rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\" />\
                 <text x=\"{:.1}\" y=\"{}\">{ratio:.2}× ({ns:.1} ns)</text>",
                y + 15.0,
                y + 3.0,
                (b - a).max(1.0),
                bh - 6.0,
                w - 185.0,
                y + 15.0
            );
        }
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\">1× glibc</text></svg>",
            mid - 20.0,
            bars.len() as f64 * bh + 15.0
        );
    }
    h
}

/// Where Debian puts a peer's shared library, and the package that provides it.
const PRELOADS: &[(&str, &str, &str)] = &[
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("scudo", "libclang_rt.scudo_standalone-x86_64.so", "libclang-rt-14-dev"),
];

fn find_library(file: &str) -> Option<PathBuf> {
    let plain = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
        .iter()
        .map(|d| Path::new(d).join(file))
        .find(|p| p.exists());
    // LLVM's compiler-rt libraries (Scudo) live under /usr/lib/llvm-N/lib/clang/VERSION/lib/linux.
    plain.or_else(|| {
        let llvm = std::fs::read_dir("/usr/lib").ok()?;
        let mut found: Vec<PathBuf> = llvm
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
            .filter_map(|e| std::fs::read_dir(e.path().join("lib/clang")).ok())
            .flat_map(|versions| versions.flatten().map(|v| v.path().join("lib/linux").join(file)))
            .filter(|p| p.exists())
            .collect();
        found.sort();
        found.pop()
    })
}

struct ExecSample {
    wall: Duration,
    cpu: Duration,
    max_rss: u64,
}

fn exec_once(cmd: &[String], preload: Option<&Path>, preset: Option<&str>) -> Result<ExecSample, String> {
    let runner = Path::new(env!("BENCH_PROGRAMS")).join("runner");
    if runner.exists() {
        return exec_with_runner(&runner, cmd, preload, preset);
    }
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]).stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null());
    if let Some(p) = preload {
        c.env("LD_PRELOAD", p);
    }
    if let Some(p) = preset {
        c.env("ALLOC_MALLOC_PRESET", p);
    }
    let start = Instant::now();
    let child = c.spawn().map_err(|e| format!("cannot run {:?}: {e}", cmd[0]))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers; std's Child is not waited on
    // afterwards (dropping it does not wait).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed();
    if r != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{:?} {}", cmd[0], how_it_ended(status)));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(ExecSample { wall, cpu: tv(ru.ru_utime) + tv(ru.ru_stime), max_rss: ru.ru_maxrss as u64 * 1024 })
}

/// A failed child's wait status in words: "exited with status 2", "killed by signal 6
/// (SIGABRT)".
fn how_it_ended(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = match sig {
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGTRAP => " (SIGTRAP)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    }
}

/// glibc, each peer found installed, and our presets (when the socket is built): a name, the
/// library to preload, the preset.
type Config = (String, Option<PathBuf>, Option<&'static str>);

/// The configurations `--exec` and `--programs` run: glibc, the peers found, hardened_malloc
/// when built, our presets when the socket is built, then each `--preload` library.
fn configs(extra: &[(String, PathBuf)]) -> Vec<Config> {
    let mut configs = found_configs();
    configs.extend(extra.iter().map(|(name, path)| (name.clone(), Some(path.clone()), None)));
    configs
}

fn found_configs() -> Vec<Config> {
    let mut configs: Vec<Config> = vec![("glibc".into(), None, None)];
    for (name, file, package) in PRELOADS {
        match find_library(file) {
            Some(p) => configs.push((name.to_string(), Some(p), None)),
            None => eprintln!("{name}: {file} not found; install Debian's {package} to include it"),
        }
    }
    let beside = |file: &str| std::env::current_exe().ok().and_then(|e| Some(e.parent()?.join(file)));
    // GrapheneOS's hardened_malloc, which no Debian package ships: built from its sources on
    // crates.io by `benches/peers/hardened_malloc.sh`, beside this program.
    match beside("libhardened_malloc.so").filter(|p| p.exists()) {
        Some(p) => configs.push(("hardened_malloc".into(), Some(p), None)),
        None => eprintln!("hardened_malloc: not built; `sh benches/peers/hardened_malloc.sh` to include it"),
    }
    // Our presets: the socket built beside this program (`cargo build --release -p alloc-malloc`).
    match beside("liballoc_malloc.so").filter(|p| p.exists()) {
        Some(lib) => {
            for preset in ["general", "segregated", "hardened"] {
                configs.push((format!("**{preset}**"), Some(lib.clone()), Some(preset)));
            }
        }
        None => eprintln!("our presets: liballoc_malloc.so not found; `cargo build --release -p alloc-malloc` first"),
    }
    configs
}

/// Runs `cmd` through the launcher `c/runner.c`, whose child starts with a max RSS of zero
/// (started from here, a program's peak RSS would be at least this process's).
fn exec_with_runner(
    runner: &Path,
    cmd: &[String],
    preload: Option<&Path>,
    preset: Option<&str>,
) -> Result<ExecSample, String> {
    let mut c = Command::new(runner);
    c.args(cmd).stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(p) = preload {
        c.env("LD_PRELOAD", p);
    }
    if let Some(p) = preset {
        c.env("ALLOC_MALLOC_PRESET", p);
    }
    let out = c.output().map_err(|e| format!("cannot run {}: {e}", runner.display()))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<i64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match f[..] {
        [wall, cpu, rss, 0] if out.status.success() => Ok(ExecSample {
            wall: Duration::from_nanos(wall as u64),
            cpu: Duration::from_nanos(cpu as u64),
            max_rss: rss as u64 * 1024,
        }),
        [_, _, _, status] => Err(format!("{:?} {}", cmd[0], how_it_ended(status as libc::c_int))),
        _ => Err(format!("{} printed {line:?} for {:?}", runner.display(), cmd[0])),
    }
}

fn exec(cmd: &[String], runs: usize, extra: &[(String, PathBuf)]) -> Result<(), Usage> {
    let configs = configs(extra);
    let mut results: Vec<Vec<ExecSample>> = configs.iter().map(|_| Vec::new()).collect();
    // As in `--programs`: a failure under one allocator is its row's result (under glibc, the
    // first, it is the program's own, and ends the comparison).
    let mut failed: Vec<Option<String>> = configs.iter().map(|_| None).collect();
    let progress = Progress::new(runs * configs.len());
    for run in 0..runs {
        progress.log(format!("[run {}/{runs}]", run + 1));
        for (i, (name, preload, preset)) in configs.iter().enumerate() {
            progress.step(format!("run {}/{runs}: {name}", run + 1));
            if failed[i].is_some() {
                continue;
            }
            match exec_once(cmd, preload.as_deref(), *preset) {
                Ok(sample) => results[i].push(sample),
                Err(e) if i == 0 => return Err(Usage(e)),
                Err(e) => {
                    progress.log(format!("under {name}: {e}"));
                    results[i].clear();
                    failed[i] = Some(e);
                }
            }
        }
    }
    progress.finish(format!("{} runs", runs * configs.len()));
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let stats: Vec<Option<(f64, f64, f64)>> = results
        .iter()
        .map(|r| {
            (!r.is_empty()).then(|| {
                (
                    med(&mut r.iter().map(|s| s.wall.as_secs_f64()).collect()),
                    med(&mut r.iter().map(|s| s.cpu.as_secs_f64()).collect()),
                    med(&mut r.iter().map(|s| s.max_rss as f64).collect()),
                )
            })
        })
        .collect();
    let Some((gw, _, gr)) = stats[0] else { return Err(Usage("no run under glibc".into())) };
    println!("`{}`, {runs} runs each, medians\n", cmd.join(" "));
    println!("| allocator | wall | × glibc | CPU | peak RSS | × glibc |\n|---|--:|--:|--:|--:|--:|");
    for (((name, _, _), stat), e) in configs.iter().zip(&stats).zip(&failed) {
        match (stat, e) {
            (Some((w, c, r)), _) => {
                println!("| {name} | {:.3} s | {:.2} | {:.3} s | {} | {:.2} |", w, w / gw, c, bytes(*r), r / gr)
            }
            (None, e) => println!("| {name} | failed: {} | | | | |", e.as_deref().unwrap_or("no run")),
        }
    }
    Ok(())
}

/// One program of the `--programs` suite.
struct Program {
    name: String,
    cmd: Vec<String>,
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The suite: the C programs `build.rs` compiled, and the real programs that are installed, with
/// their inputs written under `dir`.
fn suite(threads: usize, dir: &Path) -> Result<Vec<Program>, Usage> {
    let bin = Path::new(env!("BENCH_PROGRAMS"));
    let t = threads.to_string();
    let mut out = Vec::new();
    let mut c = |name: &str, args: &[&str]| {
        let exe = bin.join(name);
        if exe.exists() {
            let mut cmd = vec![exe.to_string_lossy().into_owned()];
            cmd.extend(args.iter().map(|a| a.to_string()));
            out.push(Program { name: name.replace('_', "-"), cmd });
        } else {
            eprintln!("{name}: not built (no C compiler when benches was built)");
        }
    };
    c("cfrac", &[]);
    c("alloc_test", &[&t]);
    c("larson", &[&t]);
    c("xmalloc_test", &[&t]);
    c("cache_scratch", &[&t]);
    c("thread_bench", &[&t]);
    c("malloc_large", &[&t]);
    std::fs::create_dir_all(dir).map_err(|e| Usage(format!("cannot create {}: {e}", dir.display())))?;
    let write = |name: &str, text: String| -> Result<String, Usage> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Usage(format!("cannot write {}: {e}", p.display())))?;
        Ok(p.to_string_lossy().into_owned())
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    if installed("sort") {
        let mut text = String::new();
        for _ in 0..400_000 {
            let _ = writeln!(text, "{:016x} {}", next(), next() % 100_000);
        }
        out.push(Program { name: "sort".into(), cmd: vec!["sort".into(), write("lines.txt", text)?] });
    }
    if installed("python3") {
        let script = "d = {i: [i, str(i) * 3] for i in range(300000)}\n\
                      s = sorted(d.values(), key=lambda v: v[1])\n\
                      print(len(s), sum(len(v[1]) for v in s))\n";
        out.push(Program { name: "python3".into(), cmd: vec!["python3".into(), write("dicts.py", script.into())?] });
    }
    if installed("gcc") {
        let mut text = String::from("#include <stddef.h>\n");
        for f in 0..400 {
            let _ = writeln!(
                text,
                "static int g{f}(int *a, size_t n) {{ int s = {f}; for (size_t i = 0; i < n; i++) s += a[i] * {f} ^ (s >> 3); return s; }}"
            );
        }
        text.push_str("int all(int *a, size_t n) { return 0");
        for f in 0..400 {
            let _ = write!(text, " + g{f}(a, n)");
        }
        text.push_str("; }\n");
        let src = write("gen.c", text)?;
        out.push(Program {
            name: "gcc".into(),
            cmd: vec!["gcc".into(), "-O2".into(), "-S".into(), "-o".into(), "/dev/null".into(), src],
        });
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if installed("git") && repo.join(".git").exists() {
        out.push(Program {
            name: "git".into(),
            cmd: ["git", "-C", &repo.to_string_lossy(), "log", "-p", "-n", "300"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    }
    Ok(out)
}

fn programs(o: &Options) -> Result<(), Usage> {
    let configs = configs(&o.preload);
    let list = suite(o.threads, &o.out.join("inputs"))?;
    let mut samples: Vec<Vec<Vec<ExecSample>>> =
        list.iter().map(|_| configs.iter().map(|_| Vec::new()).collect()).collect();
    // A program that fails under one allocator (a hardened one that stops it on a bug of its
    // own, say) is that cell's result: the rest of the run goes on, without it.
    let mut failed: Vec<Vec<Option<String>>> = list.iter().map(|_| configs.iter().map(|_| None).collect()).collect();
    let progress = Progress::new(o.runs * list.len() * configs.len());
    for run in 0..o.runs {
        for (p, prog) in list.iter().enumerate() {
            progress.log(format!("[run {}/{}] {}", run + 1, o.runs, prog.name));
            // Rotate the order each run so drift does not favour one allocator.
            for k in 0..configs.len() {
                let i = (k + run) % configs.len();
                let (name, preload, preset) = &configs[i];
                progress.step(format!("run {}/{}: {} × {name}", run + 1, o.runs, prog.name));
                if failed[p][i].is_some() {
                    continue;
                }
                match exec_once(&prog.cmd, preload.as_deref(), *preset) {
                    Ok(sample) => samples[p][i].push(sample),
                    Err(e) => {
                        progress.log(format!("{} under {name}: {e}", prog.name));
                        samples[p][i].clear();
                        failed[p][i] = Some(e);
                    }
                }
            }
        }
    }
    progress.finish(format!("{} runs", o.runs * list.len() * configs.len()));
    // Ratios to mimalloc when it is installed, else to glibc; then, for the hardened
    // allocators' cost, to our `general` preset.
    let base = configs.iter().position(|c| c.0 == "mimalloc").unwrap_or(0);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "`compare --programs --runs {} --threads {}`: wall time and peak RSS, medians of {} runs\n",
        o.runs, o.threads, o.runs
    );
    program_table(&mut t, &list, &configs, &samples, base);
    if let Some(general) = configs.iter().position(|c| c.0 == "**general**") {
        t.push('\n');
        program_table(&mut t, &list, &configs, &samples, general);
    }
    for (p, prog) in list.iter().enumerate() {
        for (i, e) in failed[p].iter().enumerate() {
            if let Some(e) = e {
                let _ = writeln!(t, "\n{} failed under {}: {e}", prog.name, configs[i].0);
            }
        }
    }
    print!("{t}");
    let path = o.out.join("programs.md");
    std::fs::write(&path, &t).map_err(|e| Usage(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One table of `compare --programs`: each program's median wall time and peak RSS under every
/// configuration, as ratios to configuration `base`'s, and their geometric means.
fn program_table(t: &mut String, list: &[Program], configs: &[Config], samples: &[Vec<Vec<ExecSample>>], base: usize) {
    let med = |v: &[ExecSample], f: &dyn Fn(&ExecSample) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    let base_name = &configs[base].0;
    let _ = write!(t, "| program | {base_name} time |");
    for c in configs {
        let _ = write!(t, " {} |", c.0);
    }
    let _ = write!(t, "\n|---|--:|");
    for _ in configs {
        let _ = write!(t, "--:|");
    }
    t.push('\n');
    // Per configuration: the sums of the ratios' logarithms, and how many programs they cover
    // (a program failed under the configuration, or under the base, has no ratio).
    let mut logs = vec![(0.0f64, 0.0f64, 0usize); configs.len()];
    for (p, prog) in list.iter().enumerate() {
        if samples[p][base].is_empty() {
            let _ = write!(t, "| {} | failed |", prog.name);
            for _ in configs {
                let _ = write!(t, " – |");
            }
            t.push('\n');
            continue;
        }
        let bw = med(&samples[p][base], &|s| s.wall.as_secs_f64());
        let br = med(&samples[p][base], &|s| s.max_rss as f64);
        let _ = write!(t, "| {} | {:.3} s |", prog.name, bw);
        for (i, _) in configs.iter().enumerate() {
            if samples[p][i].is_empty() {
                let _ = write!(t, " failed |");
                continue;
            }
            let w = med(&samples[p][i], &|s| s.wall.as_secs_f64()) / bw;
            let r = med(&samples[p][i], &|s| s.max_rss as f64) / br;
            logs[i].0 += w.ln();
            logs[i].1 += r.ln();
            logs[i].2 += 1;
            let _ = write!(t, " {w:.2} / {r:.2} |");
        }
        t.push('\n');
    }
    // A mean over fewer than every program says over how many (the means are then not over
    // the same programs, and should not be compared as if they were).
    let all = list.len();
    let _ = write!(t, "| **geometric mean** | |");
    for &(w, r, n) in &logs {
        match n {
            0 => {
                let _ = write!(t, " – |");
            }
            _ => {
                let k = n as f64;
                let _ = write!(t, " **{:.2} / {:.2}**", (w / k).exp(), (r / k).exp());
                let _ = write!(t, "{} |", if n < all { format!(" ({n} of {all} programs)") } else { String::new() });
            }
        }
    }
    t.push('\n');
    let _ = writeln!(t, "\nEach cell: time × {base_name} / peak RSS × {base_name}.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: f64, rss: u64) -> ExecSample {
        ExecSample { wall: Duration::from_secs_f64(secs), cpu: Duration::from_secs_f64(secs), max_rss: rss }
    }

    /// A program that failed under one configuration: that cell says so, and that
    /// configuration's geometric mean leaves it out and says over how many programs it is; a
    /// program that failed under the base has no ratios at all, and no mean covers it.
    #[test]
    fn a_failed_cell_is_left_out_of_its_geometric_mean_and_named() {
        let list = ["a", "b", "c"].map(|n| Program { name: n.into(), cmd: vec![n.into()] });
        let configs: Vec<Config> = vec![("base".into(), None, None), ("other".into(), None, None)];
        // a: other 2x, b: other failed, c: the base failed.
        let samples = vec![
            vec![vec![sample(1.0, 100)], vec![sample(2.0, 300)]],
            vec![vec![sample(1.0, 100)], vec![]],
            vec![vec![], vec![sample(1.0, 100)]],
        ];
        let mut t = String::new();
        program_table(&mut t, &list, &configs, &samples, 0);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows[2], "| a | 1.000 s | 1.00 / 1.00 | 2.00 / 3.00 |", "{t}");
        assert_eq!(rows[3], "| b | 1.000 s | 1.00 / 1.00 | failed |", "{t}");
        assert_eq!(rows[4], "| c | failed | – | – |", "{t}");
        assert_eq!(
            rows[5], "| **geometric mean** | | **1.00 / 1.00** (2 of 3 programs) | **2.00 / 3.00** (1 of 3 programs) |",
            "{t}"
        );
    }
}
