//! Decision cost: one `route()` through a wasm policy, the same policy compiled natively,
//! the same decision from an HTTP routing service on loopback, and (for `least-loaded`)
//! its released contract 0.1 build and the same policy as an Extism plug-in.
//!
//! The three sides run interleaved in rounds (wasm, native, HTTP, then rotated), each round
//! timing a batch of back-to-back decisions on the same context; the figure is the median
//! of the rounds' per-decision times. The wasm side is the host's public path:
//! [`RouterInstance::route`] converts the host's context to the contract's types, enters
//! the instance (epoch deadline and log budget renewed), runs the guest, converts the
//! decision back and checks it against the output caps. Before timing, all sides must
//! return the same decision.
//!
//! The Extism peer runs in a process of its own (`benches/extism-peer`, see its
//! `Cargo.toml` for why), in the same bench run, on the same contexts, with the same
//! rounds: [`extism`].

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use centralino::runtime::{PluginLimits, RouterInstance, Runtime};
use centralino::types::RoutingContext;

use crate::fixtures::routing_context;
use crate::http_peer::HttpPeer;
use crate::native::Policy;
use crate::stats::{Ways, interleaved};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Roster sizes.
    pub sizes: Vec<usize>,
    /// Interleaved rounds per side.
    pub rounds: usize,
    /// Time each side spends per round (a batch of decisions).
    pub round_time: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sizes: vec![9, 200],
            rounds: 21,
            round_time: Duration::from_millis(60),
        }
    }
}

/// One policy at one roster size.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The policy.
    pub policy: Policy,
    /// Operators in the context.
    pub agents: usize,
    /// Median ns per decision through the wasm component.
    pub wasm_ns: f64,
    /// The same, in a runtime that calls every policy on a fiber
    /// (`RuntimeBuilder::routing_on_fiber`), as policies were called before 2026-12-05.
    pub wasm_on_fiber_ns: f64,
    /// Median ns per decision compiled natively.
    pub native_ns: f64,
    /// Median ns per decision through the HTTP service.
    pub http_ns: f64,
    /// Median ns per decision through the policy's released contract 0.1 build (every
    /// operator lowered per call), when there is one (`least-loaded-v0-1-0`).
    pub wasm_v0_1_ns: Option<f64>,
    /// Median ns per decision through the Extism plug-in, when measured ([`extism`]).
    pub extism_ns: Option<f64>,
    /// Decisions timed per side (all rounds), in the order wasm, native, HTTP, on a
    /// fiber, then the 0.1 build when there is one.
    pub decisions: Vec<u64>,
}

impl Figure {
    /// wasm / native.
    pub fn wasm_over_native(&self) -> f64 {
        self.wasm_ns / self.native_ns.max(0.001)
    }

    /// HTTP / wasm: how many times faster the wasm decision is than the HTTP peer.
    pub fn http_over_wasm(&self) -> f64 {
        self.http_ns / self.wasm_ns.max(0.001)
    }
}

/// A loaded, ready instance of the routing plugin `name` (its file in `plugins`) with its
/// default settings.
pub async fn instance(
    runtime: &Runtime,
    plugins: &Path,
    name: &str,
) -> anyhow::Result<RouterInstance> {
    let path = crate::component(plugins, name)?;
    let plugin = runtime.load_router(&path)?;
    let mut instance = plugin.instance(Vec::new(), PluginLimits::default());
    instance.ready().await?;
    Ok(instance)
}

#[derive(Clone, Copy)]
enum Side {
    Wasm,
    Native,
    Http,
    WasmOnFiber,
    WasmV0_1,
}

struct Sides<'a> {
    order: Vec<Side>,
    policy: Policy,
    context: &'a RoutingContext,
    wasm: &'a mut RouterInstance,
    on_fiber: &'a mut RouterInstance,
    http: &'a HttpPeer,
    v0_1: Option<&'a mut RouterInstance>,
}

impl Ways for Sides<'_> {
    fn count(&self) -> usize {
        self.order.len()
    }

    /// Runs `n` decisions on one side; returns the elapsed time.
    async fn batch(&mut self, way: usize, n: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        match self.order[way] {
            side @ (Side::Wasm | Side::WasmOnFiber) => {
                let instance = match side {
                    Side::Wasm => &mut *self.wasm,
                    _ => &mut *self.on_fiber,
                };
                for _ in 0..n {
                    black_box(instance.route(black_box(self.context)).await?);
                }
            }
            Side::Native => {
                for _ in 0..n {
                    black_box(self.policy.decide(black_box(self.context)));
                }
            }
            Side::WasmV0_1 => {
                if let Some(v0_1) = self.v0_1.as_deref_mut() {
                    for _ in 0..n {
                        black_box(v0_1.route(black_box(self.context)).await?);
                    }
                }
            }
            Side::Http => {
                for _ in 0..n {
                    black_box(
                        self.http
                            .decide(self.policy, black_box(self.context))
                            .await?,
                    );
                }
            }
        }
        Ok(started.elapsed())
    }
}

/// Measures both policies at every size in `options`; `on_fiber` is a runtime built with
/// `routing_on_fiber(true)`.
pub async fn run(
    runtime: &Runtime,
    on_fiber: &Runtime,
    plugins: &Path,
    options: &Options,
) -> anyhow::Result<Vec<Figure>> {
    let http = HttpPeer::start().await?;
    let mut figures = Vec::new();
    for policy in Policy::ALL {
        let mut wasm = instance(runtime, plugins, policy.name()).await?;
        let mut wasm_on_fiber = instance(on_fiber, plugins, policy.name()).await?;
        // The released 0.1 build, where the tree keeps one.
        let mut v0_1 = match policy {
            Policy::LeastLoaded => Some(instance(runtime, plugins, "least-loaded-v0-1-0").await?),
            _ => None,
        };
        for &agents in &options.sizes {
            let context = routing_context(agents);
            let native = policy.decide(&context);
            let from_wasm = wasm.route(&context).await?;
            let from_fiber = wasm_on_fiber.route(&context).await?;
            let from_http = http.decide(policy, &context).await?;
            anyhow::ensure!(
                from_wasm == native && from_fiber == native && from_http == native,
                "{} disagrees with its native version at {agents} operators:\n wasm   {from_wasm:?}\n fiber  {from_fiber:?}\n native {native:?}\n http   {from_http:?}",
                policy.name()
            );
            if let Some(v0_1) = v0_1.as_mut() {
                let from_v0_1 = v0_1.route(&context).await?;
                anyhow::ensure!(
                    from_v0_1 == native,
                    "the 0.1 build of {} disagrees at {agents} operators: {from_v0_1:?}",
                    policy.name()
                );
            }
            let order = if v0_1.is_some() {
                vec![
                    Side::Wasm,
                    Side::Native,
                    Side::Http,
                    Side::WasmOnFiber,
                    Side::WasmV0_1,
                ]
            } else {
                vec![Side::Wasm, Side::Native, Side::Http, Side::WasmOnFiber]
            };
            let mut sides = Sides {
                order,
                policy,
                context: &context,
                wasm: &mut wasm,
                on_fiber: &mut wasm_on_fiber,
                http: &http,
                v0_1: v0_1.as_mut(),
            };
            let timed = interleaved(&mut sides, options.rounds, options.round_time).await?;
            figures.push(Figure {
                policy,
                agents,
                wasm_ns: timed[0].ns,
                native_ns: timed[1].ns,
                http_ns: timed[2].ns,
                wasm_on_fiber_ns: timed[3].ns,
                wasm_v0_1_ns: timed.get(4).map(|t| t.ns),
                extism_ns: None,
                decisions: timed.iter().map(|t| t.operations).collect(),
            });
        }
    }
    Ok(figures)
}

/// Where the Extism peer was built (`benches/extism-peer`, built into `dir`).
pub struct ExtismPeer {
    /// The runner binary (`extism-runner`).
    pub runner: std::path::PathBuf,
    /// The plug-in (`extism_least_loaded.wasm`).
    pub plugin: std::path::PathBuf,
}

impl ExtismPeer {
    /// The peer built into `dir` (a cargo target dir), if both pieces are there.
    pub fn in_target(dir: &Path) -> Option<Self> {
        let peer = ExtismPeer {
            runner: dir.join("release/extism-runner"),
            plugin: dir.join("wasm32-unknown-unknown/release/extism_least_loaded.wasm"),
        };
        (peer.runner.exists() && peer.plugin.exists()).then_some(peer)
    }
}

/// Times the Extism least-loaded plug-in on the `least-loaded` figures' contexts (same
/// rosters, same rounds) in the peer's own process, and fills their `extism_ns`. The
/// runner checks the plug-in returns the native decision before timing.
pub fn extism(peer: &ExtismPeer, options: &Options, figures: &mut [Figure]) -> anyhow::Result<()> {
    let cases: Vec<serde_json::Value> = figures
        .iter()
        .filter(|f| f.policy == Policy::LeastLoaded)
        .map(|f| {
            let context = routing_context(f.agents);
            serde_json::json!({
                "agents": f.agents,
                "context": context,
                "expected": f.policy.decide(&context),
            })
        })
        .collect();
    let file = std::env::temp_dir().join(format!(
        "centralino-bench-extism-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, serde_json::to_vec(&cases)?)?;
    let output = std::process::Command::new(&peer.runner)
        .arg(&peer.plugin)
        .arg(&file)
        .arg(options.rounds.to_string())
        .arg(options.round_time.as_millis().to_string())
        .output();
    let _ = std::fs::remove_file(&file);
    let output = output?;
    anyhow::ensure!(
        output.status.success(),
        "the Extism runner failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let measured: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    for m in measured {
        let agents = m["agents"].as_u64().unwrap_or(0) as usize;
        if let Some(f) = figures
            .iter_mut()
            .find(|f| f.policy == Policy::LeastLoaded && f.agents == agents)
        {
            f.extism_ns = m["ns"].as_f64();
        }
    }
    Ok(())
}
