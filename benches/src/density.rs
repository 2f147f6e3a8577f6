//! Tenant density: many connector instances of one compiled component.
//!
//! Each size runs in a child process of its own (the bench binary again, with a hidden
//! argument), so resident memory starts clean and one size's freed memory cannot hide the
//! next one's. The child loads the `facebook` component once (from the compiled-artifact
//! cache, as a restarted host does; a first child fills it), starts one instance to warm
//! up, reads `VmRSS`, then makes `n` more [`ChannelInstance`]s (each a tenant's connector
//! with its own store, grants and settings) and readies each one: instantiate from the
//! shared `InstancePre`, `describe`, `configure`. It reads `VmRSS` and counts the
//! process's memory mappings again with all of them alive and idle.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use centralino::runtime::{ChannelInstance, Runtime};

use crate::fixtures::{facebook_config, facebook_spec};
use crate::machine::resident_bytes;
use crate::stats::{ns_per, percentile};

/// The figures of one size.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Instances made and kept alive.
    pub instances: usize,
    /// Which instance allocator the engine used.
    pub allocator: String,
    /// Mean ns per instance (instantiate + describe + configure).
    pub mean_ns: f64,
    /// 99th percentile ns per instance.
    pub p99_ns: f64,
    /// `VmRSS` growth per idle instance, bytes.
    pub rss_per_instance: f64,
    /// `VmRSS` with every instance alive, bytes.
    pub rss_total: u64,
    /// Memory mappings of the process per instance (`/proc/self/maps` growth / count).
    pub maps_per_instance: f64,
    /// When not every instance could start: how many did, and the error.
    pub failed: Option<(usize, String)>,
}

/// How the child builds its runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// wasmtime's default on-demand allocator (the host's default).
    OnDemand,
    /// The pooling allocator, sized for the instances plus one.
    Pooling,
}

impl Allocator {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::OnDemand => "on-demand",
            Allocator::Pooling => "pooling",
        }
    }

    /// Parses [`Allocator::name`].
    pub fn parse(name: &str) -> Option<Allocator> {
        [Allocator::OnDemand, Allocator::Pooling]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// A runtime for `instances` live plugin instances with `allocator`.
pub fn runtime(allocator: Allocator, instances: usize) -> anyhow::Result<Runtime> {
    runtime_with_cache(allocator, instances, None)
}

fn runtime_with_cache(
    allocator: Allocator,
    instances: usize,
    cache: Option<&Path>,
) -> anyhow::Result<Runtime> {
    let mut builder = Runtime::builder();
    if let Some(cache) = cache {
        builder = builder.cache_dir(cache);
    }
    let builder = match allocator {
        Allocator::OnDemand => builder,
        Allocator::Pooling => builder.pooling(u32::try_from(instances + 8).unwrap_or(u32::MAX)),
    };
    Ok(builder.build()?)
}

/// Runs one size in this process (the child's side); prints nothing. The component is
/// compiled once into `cache` and loaded from there by the other children.
pub async fn measure(
    plugins: &Path,
    instances: usize,
    allocator: Allocator,
    cache: Option<&Path>,
) -> anyhow::Result<Figure> {
    let runtime = runtime_with_cache(allocator, instances, cache)?;
    let plugin = runtime.load_channel(crate::component(plugins, "facebook")?)?;
    let (config, grants) = facebook_config();
    let limits = facebook_spec(plugins).limits;
    let mut warm = plugin.instance(config.clone(), grants.clone(), limits.clone());
    warm.ready().await?;
    let before = resident_bytes().unwrap_or(0);
    let maps_before = mappings();
    let mut live: Vec<ChannelInstance> = Vec::with_capacity(instances);
    let mut each = Vec::with_capacity(instances);
    let mut failed = None;
    let started = Instant::now();
    for _ in 0..instances {
        let t = Instant::now();
        let mut instance = plugin.instance(config.clone(), grants.clone(), limits.clone());
        if let Err(e) = instance.ready().await {
            failed = Some((live.len(), e.to_string()));
            break;
        }
        each.push(t.elapsed().as_nanos() as f64);
        live.push(instance);
    }
    let elapsed = started.elapsed();
    let after = resident_bytes().unwrap_or(0);
    let made = live.len().max(1);
    anyhow::ensure!(
        live.iter().all(|i| i.instances_started() == 1),
        "every instance should have started exactly once"
    );
    Ok(Figure {
        instances,
        allocator: allocator.name().to_string(),
        mean_ns: ns_per(elapsed, made as u64),
        p99_ns: percentile(&each, 99.0),
        rss_per_instance: after.saturating_sub(before) as f64 / made as f64,
        rss_total: after,
        maps_per_instance: mappings().saturating_sub(maps_before) as f64 / made as f64,
        failed,
    })
}

/// Memory mappings of this process (lines of `/proc/self/maps`).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.lines().count())
        .unwrap_or(0)
}

/// The hidden argument that makes the bench binary a density child.
pub const CHILD_ARG: &str = "__density-child";

/// The child's output line.
pub fn to_json(figure: &Figure) -> String {
    serde_json::json!({
        "instances": figure.instances,
        "allocator": figure.allocator,
        "mean_ns": figure.mean_ns,
        "p99_ns": figure.p99_ns,
        "rss_per_instance": figure.rss_per_instance,
        "rss_total": figure.rss_total,
        "maps_per_instance": figure.maps_per_instance,
        "failed_after": figure.failed.as_ref().map(|(n, _)| n),
        "error": figure.failed.as_ref().map(|(_, e)| e),
    })
    .to_string()
}

fn from_json(line: &str) -> anyhow::Result<Figure> {
    let v: serde_json::Value = serde_json::from_str(line)?;
    let number = |key: &str| {
        v[key]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("density child: no `{key}` in {line}"))
    };
    Ok(Figure {
        instances: number("instances")? as usize,
        allocator: v["allocator"].as_str().unwrap_or_default().to_string(),
        mean_ns: number("mean_ns")?,
        p99_ns: number("p99_ns")?,
        rss_per_instance: number("rss_per_instance")?,
        rss_total: number("rss_total")? as u64,
        maps_per_instance: number("maps_per_instance")?,
        failed: v["failed_after"].as_u64().map(|n| {
            (
                n as usize,
                v["error"].as_str().unwrap_or_default().to_string(),
            )
        }),
    })
}

fn child(
    exe: &Path,
    plugins: &Path,
    cache: &Path,
    n: usize,
    allocator: Allocator,
) -> anyhow::Result<Figure> {
    let out = Command::new(exe)
        .arg(CHILD_ARG)
        .arg(n.to_string())
        .arg(allocator.name())
        .arg(plugins)
        .arg(cache)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "density child ({n} instances, {}) failed: {}",
        allocator.name(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| anyhow::anyhow!("density child printed nothing"))?;
    from_json(line)
}

/// Runs every size with every allocator, each in a child process. A first child per
/// allocator fills the compiled-artifact cache; the measured ones load the component from
/// it, as a host restarting with `cache_dir` does.
pub fn run(
    plugins: &Path,
    sizes: &[usize],
    allocators: &[Allocator],
) -> anyhow::Result<Vec<Figure>> {
    let exe = std::env::current_exe()?;
    let cache = crate::scratch_dir("density-cache")?;
    let mut figures = Vec::new();
    for &allocator in allocators {
        child(&exe, plugins, &cache, 1, allocator)?;
        for &n in sizes {
            figures.push(child(&exe, plugins, &cache, n, allocator)?);
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(figures)
}
