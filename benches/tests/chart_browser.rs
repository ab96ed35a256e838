//! The HTML chart `compare` writes, opened in a real headless browser (Chromium): it renders, it
//! shows every allocator of the run in every workload's chart, and no two labels, and no label
//! and bar, overlap. The page is measured by a script the test adds to a copy of it (the layout
//! the browser computed, `getBoundingClientRect`), and a screenshot is written beside it.
//!
//! Needs Chromium (Debian: `apt-get install chromium-headless-shell`, or `chromium`; or set
//! `CHROMIUM` to the browser to use), so it is `#[ignore]`d in the plain test run; CI installs the
//! browser and runs it with `cargo test -p benches --test chart_browser -- --ignored`, where a
//! missing browser fails.

use std::path::{Path, PathBuf};
use std::process::Command;

const ALLOCATORS: [&str; 5] = ["glibc", "mimalloc", "segregated-locked", "pool", "bump-locked"];
const WORKLOADS: [&str; 2] = ["alloc-free-pair", "small-churn-lifo"];

fn browser() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"] {
        if let Some(p) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(name))
            .find(|p| p.exists())
        {
            return p;
        }
    }
    panic!("no Chromium found: `apt-get install chromium-headless-shell` (or set CHROMIUM)");
}

/// Measures the rendered page: per chart, the labels shown and every pair of overlapping labels
/// or label and bar, written into the DOM for `--dump-dom` to return.
const MEASURE: &str = r#"<script>
const charts = [];
for (const svg of document.querySelectorAll('svg')) {
  const frame = svg.getBoundingClientRect();
  const items = [...svg.querySelectorAll('text, rect')].map(e => ({
    kind: e.tagName, text: e.textContent, box: e.getBoundingClientRect() }));
  const overlaps = [], outside = [];
  const cross = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
                       && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  for (let i = 0; i < items.length; i++) {
    const a = items[i];
    if (a.box.width <= 0 || a.box.height <= 0) outside.push('empty ' + a.kind + ' ' + a.text);
    if (a.box.left < frame.left - 0.5 || a.box.right > frame.right + 0.5
        || a.box.top < frame.top - 0.5 || a.box.bottom > frame.bottom + 0.5)
      outside.push(a.kind + ' ' + a.text);
    for (let j = i + 1; j < items.length; j++) {
      const b = items[j];
      if (a.kind === 'rect' && b.kind === 'rect') continue;
      if (cross(a.box, b.box)) overlaps.push(a.kind + ' "' + a.text + '" / ' + b.kind + ' "' + b.text + '"');
    }
  }
  charts.push({ title: svg.previousElementSibling ? svg.previousElementSibling.textContent : '',
                labels: items.filter(i => i.kind === 'text').map(i => i.text),
                bars: items.filter(i => i.kind === 'rect').length, overlaps, outside });
}
const pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = 'MEASURED' + JSON.stringify(charts) + 'END';
document.body.appendChild(pre);
</script>"#;

#[test]
#[ignore = "needs Chromium; CI runs it with --ignored after installing chromium-headless-shell"]
fn the_chart_renders_every_allocator_with_no_overlapping_labels() {
    let browser = browser();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart-browser");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--workload", &WORKLOADS.join(","), "--allocators", &ALLOCATORS.join(",")])
        .args(["--reps", "1", "--scale", "0.01", "--out"])
        .arg(&dir)
        .output()
        .expect("compare runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(dir.join("chart.html")).expect("compare wrote chart.html");
    let page = dir.join("chart-measured.html");
    std::fs::write(&page, format!("{html}{MEASURE}")).unwrap();

    let url = format!("file://{}", page.display());
    let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1400"];
    let dom = Command::new(&browser).args(flags).arg("--dump-dom").arg(&url).output().expect("the browser runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let json = dom
        .split("id=\"measured\">MEASURED")
        .nth(1)
        .and_then(|r| r.split("END").next())
        .unwrap_or_else(|| panic!("the page's script did not run in {}:\n{dom}", browser.display()));
    let json = json.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    let charts: serde_json::Value = serde_json::from_str(&json).expect("the measurement is JSON");
    let charts = charts.as_array().expect("one entry per chart");

    assert_eq!(charts.len(), WORKLOADS.len(), "one chart per workload: {charts:#?}");
    for (chart, workload) in charts.iter().zip(WORKLOADS) {
        assert_eq!(chart["title"], workload, "{chart:#}");
        let labels: Vec<&str> = chart["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        for name in ALLOCATORS {
            assert!(labels.contains(&name), "{workload}: no label for {name}: {labels:?}");
        }
        assert_eq!(chart["bars"], ALLOCATORS.len(), "{workload}: one bar per allocator: {chart:#}");
        assert_eq!(chart["overlaps"].as_array().unwrap().len(), 0, "{workload}: overlapping: {chart:#}");
        assert_eq!(chart["outside"].as_array().unwrap().len(), 0, "{workload}: outside the chart: {chart:#}");
    }

    // The screenshot: a PNG of the rendered page, kept for a person to look at.
    let shot = dir.join("chart.png");
    let status = Command::new(&browser)
        .args(flags)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("chart.html").display()))
        .output()
        .expect("the browser runs");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {status:?}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "not a rendered page: {} bytes", png.len());
    eprintln!("screenshot: {}", shot.display());
}
