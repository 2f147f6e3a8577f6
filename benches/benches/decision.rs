//! Criterion suite: one `route()` decision through the wasm policies and their native
//! versions, at 9 and 200 operators. Run with `cargo bench -p centralino-bench --bench
//! decision` after `cargo xtask plugins`. (The report binary adds the HTTP peer and
//! interleaves the sides; see `BENCHMARKS.md`.)

#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use centralino::runtime::Runtime;
use centralino_bench::decision::instance;
use centralino_bench::fixtures::routing_context;
use centralino_bench::native::Policy;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn decisions(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = Runtime::new().expect("the plugin runtime");
    let plugins = centralino_bench::default_plugin_dir();
    for policy in Policy::ALL {
        let mut group = c.benchmark_group(format!("route/{}", policy.name()));
        let mut wasm = tokio
            .block_on(instance(&runtime, &plugins, policy.name()))
            .expect("the policy plugin (run `cargo xtask plugins` first)");
        for agents in [9, 200] {
            let context = routing_context(agents);
            group.bench_with_input(BenchmarkId::new("wasm", agents), &context, |b, context| {
                b.iter(|| {
                    tokio
                        .block_on(wasm.route(black_box(context)))
                        .expect("a decision")
                })
            });
            group.bench_with_input(
                BenchmarkId::new("native", agents),
                &context,
                |b, context| b.iter(|| policy.decide(black_box(context))),
            );
        }
        group.finish();
    }
}

criterion_group!(benches, decisions);
criterion_main!(benches);
