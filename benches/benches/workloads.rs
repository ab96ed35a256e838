//! Criterion groups: one per workload of `BENCHMARKS.md`, each holding every contender (ours and
//! the peers) so every ratio comes from one run. The workloads are the ones `compare` runs, at a
//! smaller scale so a group finishes in seconds.
//!
//! `cargo bench -p benches` (HTML reports under `target/criterion/`);
//! `cargo bench -p benches -- small-churn` for one group.

use benches::{Scale, CONTENDERS, WORKLOADS};
use criterion::{criterion_main, Criterion};
use std::time::Duration;

const SCALE: Scale = Scale(0.05);

fn workloads(c: &mut Criterion) {
    for w in WORKLOADS {
        let mut g = c.benchmark_group(w.name);
        g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
        for contender in CONTENDERS {
            if (contender.run)(w, Scale(0.001)).is_none() {
                continue; // a multi-thread workload on a single-thread allocator
            }
            g.bench_function(contender.name, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let s = (contender.run)(w, SCALE).expect("applies");
                            Duration::from_nanos((s.ns_per_op * s.ops as f64) as u64)
                        })
                        .sum()
                })
            });
        }
        g.finish();
    }
}

mod group {
    #![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]
    criterion::criterion_group!(benches, super::workloads);
}
use group::benches;
criterion_main!(benches);
