//! Criterion suite: starting one `facebook` connector instance (instantiate from the
//! shared `InstancePre`, describe, configure) with the default and the pooling allocator.
//! Run with `cargo bench -p centralino-bench --bench instantiate` after `cargo xtask
//! plugins`. Instances are dropped after each start, so this is the start cost alone; the
//! report binary measures thousands kept alive, with their memory.

#![allow(clippy::expect_used, missing_docs)]

use centralino_bench::density::{Allocator, runtime};
use centralino_bench::fixtures::{facebook_config, facebook_spec};
use criterion::{Criterion, criterion_group, criterion_main};

fn instantiate(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let plugins = centralino_bench::default_plugin_dir();
    let component = centralino_bench::component(&plugins, "facebook")
        .expect("the facebook plugin (run `cargo xtask plugins` first)");
    let (config, grants) = facebook_config();
    let limits = facebook_spec(&plugins).limits;
    let mut group = c.benchmark_group("instantiate/facebook");
    for allocator in [Allocator::OnDemand, Allocator::Pooling] {
        let runtime = runtime(allocator, 64).expect("the plugin runtime");
        let plugin = runtime
            .load_channel(&component)
            .expect("the facebook plugin");
        group.bench_function(allocator.name(), |b| {
            b.iter(|| {
                let mut instance = plugin.instance(config.clone(), grants.clone(), limits.clone());
                tokio.block_on(instance.ready()).expect("a ready instance");
                instance
            })
        });
    }
    group.finish();
}

criterion_group!(benches, instantiate);
criterion_main!(benches);
