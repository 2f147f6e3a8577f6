//! Cold start: a fresh process builds a host with three plugins (the `facebook` connector
//! and the chain `skills > least-loaded`) on a new SQLite file, and is ready when
//! [`Host::readiness`] says so.
//!
//! Each start is a child process (the bench binary again, with a hidden argument). The
//! child reports how long it took from `main` to ready; the parent also times the whole
//! process, from spawn to exit. Without the cache every start compiles all three
//! components; with it, a first start fills the cache and later starts load the compiled
//! artifacts.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::routing::{ChainSpec, PolicyChain, RoutingEngine};
use centralino::runtime::{PluginLimits, Runtime};

use crate::fixtures::facebook_spec;
use crate::stats::median;

/// The hidden argument that makes the bench binary a cold-start child.
pub const CHILD_ARG: &str = "__cold-child";

/// One start, as the child saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start {
    /// `main` to ready.
    pub ready_ns: f64,
    /// Of which: building the runtime (engine, linkers).
    pub runtime_ns: f64,
    /// Of which: loading the two routing policies.
    pub chain_ns: f64,
    /// Of which: the host (store, connector plugin, first instance).
    pub host_ns: f64,
    /// Spawn to exit, seen by the parent.
    pub process_ns: f64,
}

/// The figures of one mode.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `no cache`, `cache, first start`, `cache hit`.
    pub mode: &'static str,
    /// Medians over the starts.
    pub median: Start,
    /// Starts measured.
    pub starts: usize,
}

/// The child's work: start the host, print the timings as one JSON line.
pub async fn child(
    plugins: &Path,
    cache: Option<&Path>,
    main_started: Instant,
) -> anyhow::Result<String> {
    let dir = crate::scratch_dir("cold")?;
    let t = Instant::now();
    let mut builder = Runtime::builder();
    if let Some(cache) = cache {
        builder = builder.cache_dir(cache);
    }
    let runtime = builder.build()?;
    let runtime_ns = t.elapsed().as_nanos() as f64;
    let t = Instant::now();
    let spec: ChainSpec = "skills > least-loaded".parse()?;
    let chain = PolicyChain::load(&runtime, &spec, plugins, &PluginLimits::default()).await?;
    let chain_ns = t.elapsed().as_nanos() as f64;
    let t = Instant::now();
    let host = Host::builder()
        .store(format!("sqlite://{}", dir.join("cold.db").display()))
        .runtime(runtime)
        .connector(facebook_spec(plugins))
        .routing(RoutingEngine::builder(chain).build())
        .build()
        .await?;
    host.readiness().await.map_err(anyhow::Error::msg)?;
    let host_ns = t.elapsed().as_nanos() as f64;
    let ready_ns = main_started.elapsed().as_nanos() as f64;
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::json!({
        "ready_ns": ready_ns,
        "runtime_ns": runtime_ns,
        "chain_ns": chain_ns,
        "host_ns": host_ns,
    })
    .to_string())
}

fn spawn(plugins: &Path, cache: Option<&Path>) -> anyhow::Result<Start> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.arg(CHILD_ARG).arg(plugins);
    match cache {
        Some(dir) => command.arg(dir),
        None => command.arg("-"),
    };
    let t = Instant::now();
    let out = command.output()?;
    let process_ns = t.elapsed().as_nanos() as f64;
    anyhow::ensure!(
        out.status.success(),
        "cold-start child failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| anyhow::anyhow!("cold-start child printed nothing"))?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let get = |key: &str| v[key].as_f64().unwrap_or(0.0);
    Ok(Start {
        ready_ns: get("ready_ns"),
        runtime_ns: get("runtime_ns"),
        chain_ns: get("chain_ns"),
        host_ns: get("host_ns"),
        process_ns,
    })
}

fn medians(starts: &[Start]) -> Start {
    let of = |f: fn(&Start) -> f64| median(&starts.iter().map(f).collect::<Vec<_>>());
    Start {
        ready_ns: of(|s| s.ready_ns),
        runtime_ns: of(|s| s.runtime_ns),
        chain_ns: of(|s| s.chain_ns),
        host_ns: of(|s| s.host_ns),
        process_ns: of(|s| s.process_ns),
    }
}

/// `starts` starts without the cache, one start filling it, `starts` starts from it.
pub fn run(plugins: &Path, starts: usize) -> anyhow::Result<Vec<Figure>> {
    for name in ["facebook", "skills", "least-loaded"] {
        crate::component(plugins, name)?;
    }
    let starts = starts.max(1);
    let cache = crate::scratch_dir("cold-cache")?;
    let mut figures = Vec::new();
    let none: Vec<Start> = (0..starts)
        .map(|_| spawn(plugins, None))
        .collect::<anyhow::Result<_>>()?;
    figures.push(Figure {
        mode: "no cache (compiles 3 components)",
        median: medians(&none),
        starts,
    });
    let first = spawn(plugins, Some(&cache))?;
    let artifacts = std::fs::read_dir(&cache)?.count();
    anyhow::ensure!(
        artifacts == 3,
        "the first start should have cached 3 artifacts, found {artifacts}"
    );
    figures.push(Figure {
        mode: "cache empty (compiles and stores 3)",
        median: first,
        starts: 1,
    });
    let hits: Vec<Start> = (0..starts)
        .map(|_| spawn(plugins, Some(&cache)))
        .collect::<anyhow::Result<_>>()?;
    figures.push(Figure {
        mode: "cache hit (loads 3 artifacts)",
        median: medians(&hits),
        starts,
    });
    let _ = std::fs::remove_dir_all(&cache);
    Ok(figures)
}

/// Formats a duration given in ns.
pub fn ms(ns: f64) -> String {
    format!(
        "{:.1} ms",
        Duration::from_nanos(ns as u64).as_secs_f64() * 1000.0
    )
}
