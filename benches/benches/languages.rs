//! Criterion suite: a connector written in TypeScript (`whatsapp-ts`, built with
//! componentize-js: its component carries the SpiderMonkey engine, ~12 MB) beside one written
//! in Rust (`telegram`, ~0.3 MB). Three costs each: loading the component from the host's
//! artifact cache (`load`, what a host with `cache_dir` pays at start once the component was
//! compiled; compiling it is measured once per run and printed), starting an instance (instantiate, describe, configure) and one signed
//! webhook delivery holding one text message through a ready instance. Run with
//! `cargo bench -p centralino-bench --bench languages` after `cargo xtask plugins`.

#![allow(clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use centralino::capabilities::{Grants, Secret};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};
use criterion::{Criterion, criterion_group, criterion_main};

const APP_SECRET: &str = "wa-app-secret";
const TG_SECRET: &str = "tg-webhook-secret";

fn account(id: &str, credential: &str) -> AccountConfig {
    AccountConfig {
        id: id.to_string(),
        credential: Some(credential.to_string()),
        ..AccountConfig::default()
    }
}

fn post(body: Vec<u8>, header: (&str, String)) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: String::new(),
        query: String::new(),
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            (header.0.to_string(), header.1),
        ],
        body,
    }
}

/// Name, config, grants and a delivery each connector takes.
fn cases() -> Vec<(&'static str, ConnectorConfig, Grants, WebhookRequest)> {
    let update = serde_json::json!({
        "update_id": 900_001,
        "message": {
            "message_id": 55,
            "from": {"id": 4242, "is_bot": false, "first_name": "Mario", "username": "mario_rossi"},
            "chat": {"id": 4242, "type": "private", "first_name": "Mario"},
            "date": 1_795_856_400,
            "text": "il mio modem non va"
        }
    });
    let telegram = (
        "telegram",
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![account("7001", "tim-bot")],
        },
        Grants::default().secret("webhook_secret".to_string(), Secret::new(TG_SECRET)),
        post(
            serde_json::to_vec(&update).expect("json"),
            ("x-telegram-bot-api-secret-token", TG_SECRET.to_string()),
        ),
    );
    let delivery = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Mario Rossi"}, "wa_id": "393471234567"}],
            "messages": [{"from": "393471234567", "id": "wamid.HBgM1", "timestamp": "1764790000",
                          "type": "text", "text": {"body": "il mio modem non va"}}]
        }}]}]
    });
    let body = serde_json::to_vec(&delivery).expect("json");
    let mac = Secret::new(APP_SECRET).hmac_sha256(&body);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let whatsapp = (
        "whatsapp-ts",
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![account("106540352242922", "wa-token")],
        },
        Grants::default()
            .secret("app_secret".to_string(), Secret::new(APP_SECRET))
            .secret("verify_token".to_string(), Secret::new("wa-verify")),
        post(body, ("x-hub-signature-256", format!("sha256={hex}"))),
    );
    vec![telegram, whatsapp]
}

fn languages(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let plugins = centralino_bench::default_plugin_dir();
    let cache =
        std::env::temp_dir().join(format!("centralino-bench-languages-{}", std::process::id()));
    let runtime = Runtime::builder()
        .cache_dir(&cache)
        .build()
        .expect("the plugin runtime");
    for (name, config, grants, request) in cases() {
        let component = centralino_bench::component(&plugins, name)
            .expect("the plugins (run `cargo xtask plugins` first)");
        let compiling = Instant::now();
        runtime.load_channel(&component).expect("the plugin");
        eprintln!(
            "languages/{name}/compile: {:.0} ms (once, filling the cache)",
            compiling.elapsed().as_secs_f64() * 1000.0
        );
        let mut group = c.benchmark_group(format!("languages/{name}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        // A new runtime each time, as a host starting up: the artifact comes from disk.
        group.bench_function("load", |b| {
            b.iter(|| {
                Runtime::builder()
                    .cache_dir(&cache)
                    .build()
                    .expect("the plugin runtime")
                    .load_channel(&component)
                    .expect("the plugin")
            })
        });
        let plugin = runtime.load_channel(&component).expect("the plugin");
        let limits = PluginLimits::default();
        group.sample_size(30);
        group.measurement_time(Duration::from_secs(10));
        group.bench_function("start", |b| {
            b.iter(|| {
                let mut instance = plugin.instance(config.clone(), grants.clone(), limits.clone());
                tokio.block_on(instance.ready()).expect("a ready instance");
                instance
            })
        });
        let mut instance = plugin.instance(config.clone(), grants.clone(), limits.clone());
        tokio.block_on(instance.ready()).expect("a ready instance");
        group.sample_size(100);
        group.bench_function("webhook", |b| {
            b.iter(|| {
                let outcome = tokio
                    .block_on(instance.handle_webhook(request.clone()))
                    .expect("a delivery");
                assert_eq!(outcome.messages.len(), 1);
                outcome
            })
        });
        group.finish();
    }
    let _ = std::fs::remove_dir_all(&cache);
}

criterion_group!(benches, languages);
criterion_main!(benches);
