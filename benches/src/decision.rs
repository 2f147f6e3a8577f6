//! Decision cost: one `route()` through a wasm policy, the same policy compiled natively,
//! and the same decision from an HTTP routing service on loopback.
//!
//! The three sides run interleaved in rounds (wasm, native, HTTP, then rotated), each round
//! timing a batch of back-to-back decisions on the same context; the figure is the median
//! of the rounds' per-decision times. The wasm side is the host's public path:
//! [`RouterInstance::route`] converts the host's context to the contract's types, enters
//! the instance (epoch deadline and log budget renewed), runs the guest, converts the
//! decision back and checks it against the output caps. Before timing, all three sides
//! must return the same decision.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use centralino::runtime::{PluginLimits, RouterInstance, Runtime};
use centralino::types::RoutingContext;

use crate::fixtures::routing_context;
use crate::http_peer::HttpPeer;
use crate::native::Policy;
use crate::stats::{median, ns_per};

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
    /// Median ns per decision compiled natively.
    pub native_ns: f64,
    /// Median ns per decision through the HTTP service.
    pub http_ns: f64,
    /// Decisions timed per side (all rounds).
    pub decisions: [u64; 3],
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

/// A loaded, ready instance of a policy plugin with its default settings.
pub async fn instance(
    runtime: &Runtime,
    plugins: &Path,
    policy: Policy,
) -> anyhow::Result<RouterInstance> {
    let path = crate::component(plugins, policy.name())?;
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
}

struct Sides<'a> {
    policy: Policy,
    context: &'a RoutingContext,
    wasm: &'a mut RouterInstance,
    http: &'a HttpPeer,
}

impl Sides<'_> {
    /// Runs `n` decisions on one side; returns the elapsed time.
    async fn batch(&mut self, side: Side, n: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        match side {
            Side::Wasm => {
                for _ in 0..n {
                    black_box(self.wasm.route(black_box(self.context)).await?);
                }
            }
            Side::Native => {
                for _ in 0..n {
                    black_box(self.policy.decide(black_box(self.context)));
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

    /// How many decisions of `side` fill `time`, from a short trial.
    async fn calibrate(&mut self, side: Side, time: Duration) -> anyhow::Result<u64> {
        let mut n = 1;
        loop {
            let elapsed = self.batch(side, n).await?;
            if elapsed >= Duration::from_millis(5) || n >= 1 << 24 {
                let per = elapsed.as_secs_f64() / n as f64;
                return Ok(((time.as_secs_f64() / per) as u64).max(1));
            }
            n *= 4;
        }
    }
}

/// Measures both policies at every size in `options`.
pub async fn run(
    runtime: &Runtime,
    plugins: &Path,
    options: &Options,
) -> anyhow::Result<Vec<Figure>> {
    let http = HttpPeer::start().await?;
    let mut figures = Vec::new();
    for policy in Policy::ALL {
        let mut wasm = instance(runtime, plugins, policy).await?;
        for &agents in &options.sizes {
            let context = routing_context(agents);
            let native = policy.decide(&context);
            let from_wasm = wasm.route(&context).await?;
            let from_http = http.decide(policy, &context).await?;
            anyhow::ensure!(
                from_wasm == native && from_http == native,
                "{} disagrees with its native version at {agents} operators:\n wasm   {from_wasm:?}\n native {native:?}\n http   {from_http:?}",
                policy.name()
            );
            let mut sides = Sides {
                policy,
                context: &context,
                wasm: &mut wasm,
                http: &http,
            };
            let order = [Side::Wasm, Side::Native, Side::Http];
            let per_round = [
                sides.calibrate(Side::Wasm, options.round_time).await?,
                sides.calibrate(Side::Native, options.round_time).await?,
                sides.calibrate(Side::Http, options.round_time).await?,
            ];
            let mut samples: [Vec<f64>; 3] = Default::default();
            let mut counts = [0u64; 3];
            for round in 0..options.rounds {
                for k in 0..3 {
                    let index = (round + k) % 3;
                    let elapsed = sides.batch(order[index], per_round[index]).await?;
                    samples[index].push(ns_per(elapsed, per_round[index]));
                    counts[index] += per_round[index];
                }
            }
            figures.push(Figure {
                policy,
                agents,
                wasm_ns: median(&samples[0]),
                native_ns: median(&samples[1]),
                http_ns: median(&samples[2]),
                decisions: counts,
            });
        }
    }
    Ok(figures)
}
