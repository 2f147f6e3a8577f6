//! What a connector written in Python costs against one written in Rust: the `mastodon-py`
//! component (componentize-py) beside the `telegram` one (the Rust SDK).
//!
//! For each: the component's size; loading it in a fresh runtime (validation and
//! compilation without an artifact cache, then from a filled cache); starting an instance (instantiate, `describe`, `configure`);
//! and one `poll` against a loopback server that answers "nothing new" (one HTTP exchange
//! through the host, one JSON parse). Medians of the runs given (default 5 loads, 20
//! starts, 200 polls).
//!
//! `cargo run --release -p centralino-bench --example connector_languages [loads starts polls]`
//! after `cargo xtask plugins`.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::routing::get;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{AccountConfig, ConnectorConfig};
use serde_json::json;

struct Subject {
    plugin: &'static str,
    account: &'static str,
    credential: Credential,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (loads, starts, polls) = (
        args.first().copied().unwrap_or(5),
        args.get(1).copied().unwrap_or(20),
        args.get(2).copied().unwrap_or(200),
    );
    let plugins = centralino_bench::default_plugin_dir();

    // Mastodon's notifications and Telegram's getUpdates, both with nothing new.
    let app = Router::new()
        .route("/api/v1/notifications", get(|| async { Json(json!([])) }))
        .route(
            "/{bot}/getUpdates",
            get(|| async { Json(json!({ "ok": true, "result": [] })) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let authority = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{authority}");

    println!(
        "| connector | language | size | load: compile / cache hit | start (instantiate + configure) | poll |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for subject in [
        Subject {
            plugin: "telegram",
            account: "7001",
            credential: Credential::PathSegment(Secret::new("7001:AAH-bench")),
        },
        Subject {
            plugin: "mastodon-py",
            account: "100001",
            credential: Credential::Bearer(Secret::new("bench-token")),
        },
    ] {
        let path = centralino_bench::component(&plugins, subject.plugin)?;
        let size = std::fs::metadata(&path)?.len();
        let mut load = Vec::new();
        let mut plugin = None;
        for _ in 0..loads {
            let runtime = Runtime::new()?;
            let started = Instant::now();
            plugin = Some(runtime.load_channel(&path)?);
            load.push(started.elapsed());
        }
        let plugin = plugin.expect("at least one load");
        // The same load from the compiled-artifact cache (filled by the first, untimed).
        let cache = std::env::temp_dir().join(format!(
            "centralino-languages-{}-{}",
            std::process::id(),
            subject.plugin
        ));
        Runtime::builder()
            .cache_dir(&cache)
            .build()?
            .load_channel(&path)?;
        let mut cached = Vec::new();
        for _ in 0..loads {
            let runtime = Runtime::builder().cache_dir(&cache).build()?;
            let started = Instant::now();
            runtime.load_channel(&path)?;
            cached.push(started.elapsed());
        }
        std::fs::remove_dir_all(&cache)?;
        let config = ConnectorConfig {
            settings: vec![("api_base".to_string(), base.clone())],
            accounts: vec![AccountConfig {
                id: subject.account.to_string(),
                handle: None,
                credential: Some("token".to_string()),
                settings: Vec::new(),
            }],
        };
        let grants = Grants::default()
            .allow_host(authority.clone())
            .credential("token", subject.credential);
        let mut start = Vec::new();
        let mut instance = None;
        for _ in 0..starts {
            let started = Instant::now();
            let mut fresh =
                plugin.instance(config.clone(), grants.clone(), PluginLimits::default());
            fresh.ready().await?;
            start.push(started.elapsed());
            instance = Some(fresh);
        }
        let mut instance = instance.expect("at least one start");
        let mut poll = Vec::new();
        for _ in 0..polls {
            let started = Instant::now();
            let result = instance.poll(subject.account, Some("1")).await?;
            poll.push(started.elapsed());
            assert!(result.messages.is_empty());
        }
        println!(
            "| {} | {} | {:.1} MB | {:.0} ms / {:.1} ms | {:.2} ms | {:.3} ms |",
            subject.plugin,
            if subject.plugin.ends_with("-py") {
                "Python"
            } else {
                "Rust"
            },
            size as f64 / 1e6,
            median(load).as_secs_f64() * 1e3,
            median(cached).as_secs_f64() * 1e3,
            median(start).as_secs_f64() * 1e3,
            median(poll).as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
