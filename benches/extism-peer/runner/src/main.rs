//! Run with `extism-runner PLUGIN.wasm CASES.json ROUNDS ROUND_MS`.
//!
//! `CASES.json` is what `centralino-bench` writes: a list of `{"agents": n, "context":
//! <RoutingContext as JSON>, "expected": <RoutingDecision as JSON>}`. For each case the
//! runner loads the plug-in once (the `extism` crate, default settings, no WASI), checks
//! that it returns the expected decision, then times back-to-back `route` calls the way
//! the decision bench times its sides: a batch sized to fill `ROUND_MS`, `ROUNDS` times,
//! the median of the rounds' per-call times. Each call serialises the context to JSON on
//! the host, as an Extism host passes data, and parses the decision back. Prints
//! `[{"agents": n, "ns": median, "calls": total}]`.

use std::time::{Duration, Instant};

use extism::{Manifest, Plugin, Wasm};
use serde_json::Value;

fn main() {
    if let Err(e) = run() {
        eprintln!("extism-runner: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, plugin, cases, rounds, round_ms] = args.as_slice() else {
        return Err("usage: extism-runner PLUGIN.wasm CASES.json ROUNDS ROUND_MS".to_string());
    };
    let rounds: usize = rounds.parse().map_err(|e| format!("ROUNDS: {e}"))?;
    let round_time = Duration::from_millis(round_ms.parse().map_err(|e| format!("ROUND_MS: {e}"))?);
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(cases).map_err(|e| format!("{cases}: {e}"))?)
            .map_err(|e| format!("{cases}: {e}"))?;
    // The bytes, not the path: file-based registration is a feature this build leaves out.
    let bytes = std::fs::read(plugin).map_err(|e| format!("{plugin}: {e}"))?;
    let manifest = Manifest::new([Wasm::data(bytes)]);
    let mut plugin =
        Plugin::new(&manifest, [], false).map_err(|e| format!("loading {plugin}: {e}"))?;
    let mut figures = Vec::new();
    for case in &cases {
        let agents = case["agents"].as_u64().unwrap_or(0);
        let context = &case["context"];
        let decide = |plugin: &mut Plugin| -> Result<Value, String> {
            let input = serde_json::to_vec(context).map_err(|e| e.to_string())?;
            let output = plugin
                .call::<&[u8], &[u8]>("route", &input)
                .map_err(|e| format!("route: {e}"))?;
            serde_json::from_slice(output).map_err(|e| format!("route's output: {e}"))
        };
        let got = decide(&mut plugin)?;
        if got != case["expected"] {
            return Err(format!(
                "at {agents} operators the Extism plug-in decided {got}, expected {}",
                case["expected"]
            ));
        }
        let batch = |plugin: &mut Plugin, n: u64| -> Result<Duration, String> {
            let started = Instant::now();
            for _ in 0..n {
                std::hint::black_box(decide(plugin)?);
            }
            Ok(started.elapsed())
        };
        let mut n = 1u64;
        let per_round = loop {
            let elapsed = batch(&mut plugin, n)?;
            if elapsed >= Duration::from_millis(5) || n >= 1 << 24 {
                let per = elapsed.as_secs_f64() / n as f64;
                break ((round_time.as_secs_f64() / per) as u64).max(1);
            }
            n *= 4;
        };
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let elapsed = batch(&mut plugin, per_round)?;
            samples.push(elapsed.as_nanos() as f64 / per_round as f64);
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        figures.push(serde_json::json!({
            "agents": agents,
            "ns": median,
            "calls": per_round * rounds as u64,
        }));
    }
    println!("{}", Value::Array(figures));
    Ok(())
}
