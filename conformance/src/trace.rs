//! Allocation traces recorded from real programs (`Alloc(n)` / `Free(i)` lines), parsed and
//! replayed through the shadow model with every pattern check on.
//!
//! The traces in this crate's `traces/` folder were recorded for the wee_alloc project's test
//! suite (MPL-2.0); any extra `*.trace` file in `../shared/traces/` beside the workspace is
//! replayed too.

use crate::heap::Heap;
use crate::model::{fail, layout, Failure, Handle, Machine, Outcome};
use std::path::{Path, PathBuf};

/// One event of a trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Allocate `n` bytes; allocations are numbered from 0 in order.
    Alloc(usize),
    /// Free allocation number `i`.
    Free(usize),
}

/// A parsed trace.
#[derive(Clone, Debug)]
pub struct Trace {
    /// File name.
    pub name: String,
    /// Events in order.
    pub events: Vec<Event>,
}

impl Trace {
    /// Parses trace text; lines may end with a comma, blank lines are skipped. Every `Free`
    /// must name an allocation made earlier and not yet freed.
    pub fn parse(name: &str, text: &str) -> Result<Trace, String> {
        let mut events = Vec::new();
        let mut allocs = 0usize;
        let mut freed = Vec::<bool>::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim().trim_end_matches(',').trim();
            if line.is_empty() {
                continue;
            }
            let bad = || format!("{name}:{}: expected Alloc(n) or Free(i), found {raw:?}", n + 1);
            let arg =
                |prefix: &str| -> Option<usize> { line.strip_prefix(prefix)?.strip_suffix(')')?.trim().parse().ok() };
            if let Some(size) = arg("Alloc(") {
                events.push(Event::Alloc(size));
                allocs += 1;
                freed.push(false);
            } else if let Some(i) = arg("Free(") {
                if i >= allocs {
                    return Err(format!("{name}:{}: Free({i}) before Alloc number {i}", n + 1));
                }
                if std::mem::replace(&mut freed[i], true) {
                    return Err(format!("{name}:{}: Free({i}) frees allocation {i} twice", n + 1));
                }
                events.push(Event::Free(i));
            } else {
                return Err(bad());
            }
        }
        Ok(Trace { name: name.to_string(), events })
    }

    /// Reads and parses a trace file.
    pub fn load(path: &Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read trace {}: {e}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Trace::parse(&name, &text)
    }

    /// Number of allocations.
    pub fn allocations(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Alloc(_))).count()
    }
}

/// The malloc alignment for a traced size: 16, or the smallest power of two covering smaller sizes.
pub fn trace_align(size: usize) -> usize {
    size.max(1).next_power_of_two().min(16)
}

/// The folders traces are read from: this crate's own, then `../shared/traces` beside the
/// workspace where it exists.
pub fn trace_dirs() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![here.join("traces")];
    let shared = here.join("../../shared/traces");
    if shared.is_dir() {
        dirs.push(shared);
    }
    dirs
}

/// Every trace, each file name once (the crate's own copy wins).
pub fn all_traces() -> Result<Vec<Trace>, String> {
    let mut seen = std::collections::BTreeMap::new();
    for dir in trace_dirs() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|x| x == "trace") {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if let std::collections::btree_map::Entry::Vacant(e) = seen.entry(name) {
                    e.insert(Trace::load(&p)?);
                }
            }
        }
    }
    Ok(seen.into_values().collect())
}

/// Replays `trace` through the model `m` (make it strict: nothing may be refused), freeing what
/// the trace leaves live at the end.
pub fn replay<A: Heap>(mut m: Machine<A>, trace: &Trace) -> Outcome {
    let mut handles: Vec<Option<Handle>> = Vec::with_capacity(trace.allocations());
    for (step, e) in trace.events.iter().enumerate() {
        let r = match *e {
            Event::Alloc(n) => layout(n, trace_align(n)).and_then(|l| m.allocate(l, false)).map(|h| handles.push(h)),
            Event::Free(i) => match handles[i].take() {
                Some(h) => m.free(h),
                None => fail!("allocation {i} was refused, yet freed"),
            },
        };
        r.map_err(|f| Failure(format!("trace {} event {step} ({e:?}): {f}", trace.name)))?;
        if step % 1024 == 0 {
            m.validate(&format!("trace {} event {step}", trace.name))?;
        }
    }
    m.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trailing_commas_and_blank_lines() {
        let t = Trace::parse("t", "Alloc(8),\n\nAlloc(16)\nFree(0),\n").unwrap();
        assert_eq!(t.events, vec![Event::Alloc(8), Event::Alloc(16), Event::Free(0)]);
    }

    #[test]
    fn rejects_garbage_and_bad_frees_with_the_line() {
        assert!(Trace::parse("t", "Alloc(8)\nMalloc(3)").unwrap_err().contains("t:2"));
        assert!(Trace::parse("t", "Free(0)").unwrap_err().contains("before Alloc"));
        assert!(Trace::parse("t", "Alloc(1)\nFree(0)\nFree(0)").unwrap_err().contains("twice"));
    }

    #[test]
    fn every_shipped_trace_parses() {
        let traces = all_traces().unwrap();
        assert!(traces.len() >= 7, "expected the 7 recorded traces, found {}", traces.len());
        for t in &traces {
            assert!(t.allocations() > 0, "{} is empty", t.name);
        }
    }

    #[test]
    fn trace_alignment_is_malloc_like() {
        assert_eq!(trace_align(0), 1);
        assert_eq!(trace_align(3), 4);
        assert_eq!(trace_align(16), 16);
        assert_eq!(trace_align(1000), 16);
    }
}
