//! Live administration: a connector's plugin hot-swapped under continuous load through
//! the real HTTP ingress with nothing lost or duplicated, broken builds refused while the
//! old version keeps serving, the file watcher, enabling and disabling connectors through
//! the admin API, and reloading centralino.toml (routing chain and operators) live.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::api::AdminApi;
use centralino::capabilities::Secret;
use centralino::clock::ManualClock;
use centralino::config::{Config, ConfigReloader};
use centralino::crm::CrmEvent;
use centralino::store::OutboxStatus;
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;
use serde_json::Value;

use crate::component;
use crate::hostile::{health, stored_ids, twitter};
use crate::support::{eventually, eventually_within};

const CONSUMER_SECRET: &str = "x-consumer-secret";
const ADMIN_TOKEN: &str = "admin-token-swap";

/// Appends a custom section to a component: a valid component with new bytes.
fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// The Twitter component re-stamped as version `version`: a new build as far as the host
/// can tell (new bytes, new hash, a new version in its metadata).
pub(crate) fn twitter_build(version: &str) -> Vec<u8> {
    let bytes = std::fs::read(component("twitter")).unwrap();
    // The contract it was built against stays as the build says.
    let contract = centralino::runtime::inspect(&component("twitter"), &bytes)
        .unwrap()
        .contract
        .to_string();
    let metadata = serde_json::json!({
        "name": "twitter",
        "version": version,
        "contract": contract,
    });
    with_custom_section(
        &bytes,
        centralino::runtime::METADATA_SECTION,
        metadata.to_string().as_bytes(),
    )
}

/// Writes `bytes` over `path` the way a careless deploy does: in place.
fn overwrite(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

struct Bench {
    host: Host,
    ingress: SocketAddr,
    admin: SocketAddr,
    x: XApi,
    plugin: PathBuf,
    /// The host's clock: time-based decisions (a reply's next try) come due when moved.
    clock: ManualClock,
    _dir: tempfile::TempDir,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// A host whose Twitter connector runs a copy of the Twitter plugin in a temporary folder,
/// served on loopback, with the admin API (token required).
async fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("twitter.wasm");
    std::fs::copy(component("twitter"), &plugin).unwrap();
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    let mut spec = twitter(&x);
    spec.plugin = plugin.clone();
    spec.poll_interval = None;
    let clock = ManualClock::at_system_time();
    let host = Host::builder()
        .connector(spec)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = listener.local_addr().unwrap();
    let serving = host.clone();
    let mut servers = vec![tokio::spawn(async move {
        serving.serve(listener).await.unwrap();
    })];
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN_TOKEN)));
    servers.push(tokio::spawn(async move {
        api.serve(admin_listener).await.unwrap();
    }));
    Bench {
        host,
        ingress,
        admin,
        x,
        plugin,
        clock,
        _dir: dir,
        servers,
    }
}

/// One signed Account Activity delivery of a mention with tweet id `id`.
fn delivery(id: u64) -> (Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        &id.to_string(),
        ("42", "mario_rossi", "Mario"),
        &format!("@TIM_Official messaggio {id}"),
        None,
    ))
    .unwrap();
    (twitter_delivery_headers(CONSUMER_SECRET, &body), body)
}

/// Posts a delivery as X does: again after a 5xx, until it is acknowledged. Returns the
/// attempts it took.
async fn deliver_until_acknowledged(
    client: &reqwest::Client,
    ingress: SocketAddr,
    id: u64,
) -> usize {
    let (headers, body) = delivery(id);
    for attempt in 1..=200 {
        let mut request = client
            .post(format!("http://{ingress}/webhooks/twitter"))
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let status = request.send().await.map(|r| r.status().as_u16());
        match status {
            Ok(200) => return attempt,
            Ok(status) if status >= 500 => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("delivery {id}: {other:?}"),
        }
    }
    panic!("delivery {id} never acknowledged");
}

async fn admin_call(
    admin: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, format!("http://{admin}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn calls(host: &Host, version: &str) -> u64 {
    health(host, "twitter")
        .calls_by_version
        .get(&format!("twitter@{version}"))
        .copied()
        .unwrap_or(0)
}

/// The MessageReceived events the CRM got, by external id.
fn crm_received(host: &Host) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for delivery in host.local_inbox().unwrap().events() {
        if let CrmEvent::MessageReceived { message, .. } = delivery.event {
            *seen.entry(message.external_id.clone()).or_default() += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_swapped_under_load_loses_and_duplicates_nothing_and_broken_builds_are_refused() {
    // Deliveries between the steps: traffic runs before, during and after each reload,
    // however long a compile takes on this machine.
    const STEP: usize = 400;
    const WORKERS: usize = 4;
    const BASE: u64 = 1_870_000_000_000_000_000;
    let bench = Arc::new(bench().await);
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The load: WORKERS platforms delivering as fast as the host acknowledges, until told
    // to stop.
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (bench, next, acknowledged, attempts, stop) = (
            bench.clone(),
            next.clone(),
            acknowledged.clone(),
            attempts.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut ids = Vec::new();
            loop {
                if stop.load(Ordering::SeqCst) {
                    return ids;
                }
                let n = next.fetch_add(1, Ordering::SeqCst);
                let id = BASE + n as u64;
                let tries = deliver_until_acknowledged(&client, bench.ingress, id).await;
                attempts.fetch_add(tries, Ordering::SeqCst);
                acknowledged.fetch_add(1, Ordering::SeqCst);
                ids.push(id.to_string());
            }
        }));
    }
    // Waits for `n` more acknowledged deliveries (however slow this machine is).
    let more = async |n: usize| {
        let target = acknowledged.load(Ordering::SeqCst) + n;
        eventually_within(
            Duration::from_secs(600),
            &format!("{n} more acknowledged deliveries"),
            async || acknowledged.load(Ordering::SeqCst) >= target,
        )
        .await;
    };

    // 1. A new build mid-stream: copied over the configured file, then reloaded.
    more(STEP).await;
    overwrite(&bench.plugin, &twitter_build("0.2.0"));
    let report = bench
        .host
        .reload_connector("default", "twitter")
        .await
        .unwrap();
    assert!(report.swapped, "{report:?}");
    assert_eq!(report.previous.to_string(), "twitter@0.1.0");
    assert_eq!(report.plugin.to_string(), "twitter@0.2.0");
    // From here on, every call that reaches the connector runs on 0.2.0; at most the
    // deliveries in flight at the switch finish on 0.1.0.
    let old_at_swap = calls(&bench.host, "0.1.0");
    let attempts_at_swap = attempts.load(Ordering::SeqCst);
    let swap_took = report.took_ms;

    // 2. A half-written file: refused, 0.2.0 keeps serving.
    more(STEP).await;
    let full = twitter_build("0.3.0");
    overwrite(&bench.plugin, &full[..full.len() / 2]);
    let report = bench
        .host
        .reload_connector("default", "twitter")
        .await
        .unwrap();
    assert!(!report.swapped);
    assert_eq!(report.plugin.to_string(), "twitter@0.2.0");
    let error = report.error.unwrap();
    assert!(error.contains("twitter@0.2.0 keeps serving"), "{error}");
    assert!(error.contains("malformed WebAssembly"), "{error}");

    // 3. A component of another world, through the admin API: refused, visible there.
    more(STEP).await;
    overwrite(
        &bench.plugin,
        &std::fs::read(component("other-world")).unwrap(),
    );
    let (status, answer) = admin_call(
        bench.admin,
        None,
        "POST",
        "/connectors/default/twitter/reload",
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = admin_call(
        bench.admin,
        Some(ADMIN_TOKEN),
        "POST",
        "/connectors/default/twitter/reload",
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("refused")),
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("twitter@0.2.0 keeps serving"), "{message}");
    assert!(
        message.contains("plugin other-world@0.1.0 is not a centralino plugin"),
        "{message}"
    );
    let (status, listed) = admin_call(bench.admin, Some(ADMIN_TOKEN), "GET", "/connectors").await;
    assert_eq!(status, 200);
    let twitter = &listed["connectors"][0];
    assert_eq!(twitter["plugin"]["version"], "0.2.0");
    assert_eq!(twitter["reloads"], 1);
    assert_eq!(twitter["reload_failures"], 2);
    assert_eq!(
        twitter["last_reload_error"]["message"].as_str(),
        Some(message)
    );

    // Traffic goes on after the refusals, then stops.
    more(STEP).await;
    stop.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for worker in workers {
        ids.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = ids.len();
    let rate = total as f64 / elapsed.as_secs_f64();

    // Every acknowledged delivery is stored exactly once and reached the CRM once.
    ids.sort();
    assert_eq!(ids.len(), acknowledged.load(Ordering::SeqCst));
    assert!(total >= 4 * STEP, "{total} deliveries");
    assert_eq!(
        stored_ids(&bench.host, "twitter").await,
        ids,
        "stored = acknowledged"
    );
    eventually("the CRM to get every message", async || {
        crm_received(&bench.host).len() == total
    })
    .await;
    let received = crm_received(&bench.host);
    assert!(
        received.values().all(|n| *n == 1),
        "a message reached the CRM twice"
    );
    assert_eq!(received.keys().cloned().collect::<Vec<_>>(), ids);

    // Calls after the swap ran on the new version.
    let old_after = calls(&bench.host, "0.1.0");
    let new_calls = calls(&bench.host, "0.2.0");
    let total_attempts = attempts.load(Ordering::SeqCst);
    assert!(
        old_after - old_at_swap <= WORKERS as u64,
        "0.1.0 served {} calls after the swap",
        old_after - old_at_swap
    );
    assert!(
        new_calls as usize >= (total_attempts - attempts_at_swap).saturating_sub(WORKERS),
        "0.2.0 served {new_calls} calls; {} were made after the swap",
        total_attempts - attempts_at_swap
    );
    assert_eq!(calls(&bench.host, "0.3.0"), 0);
    let h = health(&bench.host, "twitter");
    assert_eq!(h.faults, 0, "{:?}", h.last_fault);
    let metrics = bench.host.metrics_text().await;
    for line in [
        "centralino_plugin_reloads_total{tenant=\"default\",connector=\"twitter\",outcome=\"swapped\"} 1",
        "centralino_plugin_reloads_total{tenant=\"default\",connector=\"twitter\",outcome=\"refused\"} 2",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    println!(
        "hot swap under load: {total} deliveries by {WORKERS} workers in {:.2} s ({rate:.0}/s), \
         {total_attempts} attempts; swap took {swap_took} ms; 0.1.0 served {old_after} calls \
         ({} after the swap), 0.2.0 served {new_calls}; lost 0, duplicated 0",
        elapsed.as_secs_f64(),
        old_after - old_at_swap
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_swaps_a_complete_file_and_leaves_a_half_written_one() {
    let bench = bench().await;
    bench.host.watch_plugins(Duration::from_millis(40));
    let client = reqwest::Client::new();
    // A half-written file: refused once, 0.1.0 keeps serving.
    let full = twitter_build("0.4.0");
    overwrite(&bench.plugin, &full[..full.len() / 3]);
    eventually("the watcher to refuse the half-written file", async || {
        health(&bench.host, "twitter").reload_failures == 1
    })
    .await;
    deliver_until_acknowledged(&client, bench.ingress, 1_880_000_000_000_000_001).await;
    let h = health(&bench.host, "twitter");
    assert_eq!(h.plugin.to_string(), "twitter@0.1.0");
    assert!(h.last_reload_error.is_some());
    // The same broken content is not tried again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(health(&bench.host, "twitter").reload_failures, 1);
    // The write completes: swapped.
    overwrite(&bench.plugin, &full);
    eventually("the watcher to swap in 0.4.0", async || {
        health(&bench.host, "twitter").plugin.to_string() == "twitter@0.4.0"
    })
    .await;
    let h = health(&bench.host, "twitter");
    assert_eq!((h.reloads, h.reload_failures), (1, 1));
    assert!(h.last_reload_error.is_none());
    deliver_until_acknowledged(&client, bench.ingress, 1_880_000_000_000_000_002).await;
    assert_eq!(calls(&bench.host, "0.4.0"), 1);
    assert_eq!(stored_ids(&bench.host, "twitter").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_connector_answers_503_keeps_replies_queued_and_takes_them_when_enabled() {
    let bench = bench().await;
    let client = reqwest::Client::new();
    // The customer's tweet exists on X, so a reply can thread under it.
    let tweet = bench
        .x
        .post_tweet(NewTweet::new("42", "@TIM_Official il modem non va"));
    deliver_until_acknowledged(&client, bench.ingress, tweet.id.parse().unwrap()).await;
    let conversation = bench.host.store().conversations("default").await.unwrap()[0]
        .id
        .clone();

    // Enabling and disabling need the admin token.
    for token in [None, Some("wrong")] {
        let (status, _) = admin_call(
            bench.admin,
            token,
            "POST",
            "/connectors/default/twitter/disable",
        )
        .await;
        assert_eq!(status, 401);
    }
    assert!(health(&bench.host, "twitter").enabled);
    let (status, answer) = admin_call(
        bench.admin,
        Some(ADMIN_TOKEN),
        "POST",
        "/connectors/default/twitter/disable",
    )
    .await;
    assert_eq!(
        (status, &answer["enabled"]),
        (200, &Value::Bool(false)),
        "{answer}"
    );
    let (status, answer) = admin_call(
        bench.admin,
        Some(ADMIN_TOKEN),
        "POST",
        "/connectors/default/nope/disable",
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("connector_not_found"))
    );

    // Webhooks: 503 with Retry-After, nothing stored.
    let (headers, body) = delivery(1_890_000_000_000_000_002);
    let mut request = client
        .post(format!("http://{}/webhooks/twitter", bench.ingress))
        .body(body);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    assert_eq!(stored_ids(&bench.host, "twitter").await.len(), 1);

    // A reply waits in the outbox: not sent, not failed, no attempt counted.
    let entry = bench
        .host
        .reply(
            "default",
            &conversation,
            "marco",
            None,
            "Ciao Mario!",
            "reply-1",
        )
        .await
        .unwrap();
    // One whole pass of the outbox sender has found it due and handed it back.
    let passes = bench.host.outbox_passes();
    eventually("an outbox pass after the reply", async || {
        bench.host.outbox_passes() >= passes + 2
    })
    .await;
    let waiting = bench
        .host
        .store()
        .outbox_entry("default", &entry.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (waiting.status, waiting.attempts),
        (OutboxStatus::Pending, 0)
    );
    let posted = |x: &XApi| {
        x.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/2/tweets")
            .count()
    };
    assert_eq!(posted(&bench.x), 0);
    let metrics = bench.host.metrics_text().await;
    assert!(
        metrics
            .contains("centralino_connector_enabled{tenant=\"default\",connector=\"twitter\"} 0")
    );

    // Enabled again: the platform's redelivery is accepted, the reply goes out once.
    let (status, answer) = admin_call(
        bench.admin,
        Some(ADMIN_TOKEN),
        "POST",
        "/connectors/default/twitter/enable",
    )
    .await;
    assert_eq!(
        (status, &answer["enabled"]),
        (200, &Value::Bool(true)),
        "{answer}"
    );
    deliver_until_acknowledged(&client, bench.ingress, 1_890_000_000_000_000_002).await;
    assert_eq!(stored_ids(&bench.host, "twitter").await.len(), 2);
    // The reply's next look at its connector (2 s after it was handed back) comes due.
    bench.clock.advance(Duration::from_secs(2));
    eventually("the queued reply to be sent", async || {
        bench
            .host
            .store()
            .outbox_entry("default", &entry.id)
            .await
            .unwrap()
            .is_some_and(|e| e.status == OutboxStatus::Sent)
    })
    .await;
    assert_eq!(posted(&bench.x), 1);
}

/// A config with the echo connector, routing and operators, in a temporary folder whose
/// plugins are the built ones.
fn echo_config(chain: &str, operators: &str) -> String {
    let plugins = component("echo-channel")
        .parent()
        .unwrap()
        .display()
        .to_string();
    format!(
        r#"[host]
store = "sqlite::memory:"
plugin_dir = "{plugins}"

[[connectors]]
name = "echo"
plugin = "echo-channel"

[[connectors.accounts]]
id = "support"
brand = "tim"

[routing]
chain = "{chain}"
{operators}"#
    )
}

const MARCO: &str = "\n[[operators]]\nid = \"marco\"\nskills = [\"tim\"]\ncapacity = 1\n";
const GIULIA: &str = "\n[[operators]]\nid = \"giulia\"\nskills = [\"tim\"]\ncapacity = 2\n";

fn echo_delivery(text: &str) -> centralino::types::WebhookRequest {
    centralino::types::WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: text.as_bytes().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_changes_chain_and_operators_live_and_an_invalid_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    std::fs::write(&file, echo_config("skills > least-loaded", MARCO)).unwrap();
    let config = Config::load(&file).unwrap();
    let secrets = config.resolve_secrets().unwrap();
    let runtime = config.runtime().unwrap();
    let tenant = config.tenant("default").unwrap();
    let engine = tenant.engine(&runtime).await.unwrap().unwrap();
    let host = config
        .host_builder(runtime.clone(), &secrets)
        .routing(engine)
        .build()
        .await
        .unwrap();
    let reloader = Arc::new(ConfigReloader::new(config, runtime));
    host.set_presence("default", "marco", centralino::types::Presence::Online)
        .await
        .unwrap();
    // Marco takes the first customer; the second waits (capacity 1).
    for text in ["anna: il modem non va", "bruno: la fibra è lenta"] {
        let response = host
            .deliver_webhook("default", "echo", echo_delivery(text))
            .await;
        assert_eq!(response.status, 200);
    }
    let (assigned, waiting) = host
        .with_routing("default", |e| (e.stats().assignments, e.queue().len()))
        .await
        .unwrap();
    assert_eq!((assigned, waiting), (1, 1));

    // Reload: a new chain, Marco with more capacity, Giulia joins (offline).
    std::fs::write(
        &file,
        echo_config(
            "round-robin",
            &format!("{}{GIULIA}", MARCO.replace("capacity = 1", "capacity = 2")),
        ),
    )
    .unwrap();
    let report = reloader.reload(&host).await.unwrap();
    assert_eq!(report.routing.len(), 1, "{report:?}");
    let routing = &report.routing[0];
    assert_eq!(routing.chain, "round-robin");
    assert_eq!(routing.operators.added, ["giulia"]);
    assert_eq!(routing.operators.updated, ["marco"]);
    assert!(
        report.connectors.is_empty(),
        "echo is unchanged: {report:?}"
    );
    assert!(report.restart_required.is_empty(), "{report:?}");
    // The waiting customer went to Marco's new seat; nothing was forgotten.
    let (chain, assigned, waiting, conversations, giulia) = host
        .with_routing("default", |e| {
            (
                e.chain().spec().to_string(),
                e.stats().assignments,
                e.queue().len(),
                e.conversations().iter().count(),
                e.roster().operator("giulia").is_some(),
            )
        })
        .await
        .unwrap();
    assert_eq!(chain, "round-robin");
    assert_eq!((assigned, waiting, conversations), (2, 0, 2));
    assert!(giulia);

    // An invalid config: refused with the check's exact message; nothing changes.
    std::fs::write(
        &file,
        echo_config(
            "skills",
            &format!("{MARCO}{GIULIA}").replace("capacity = 2", "capacity = \"2\""),
        ),
    )
    .unwrap();
    let centralino::Error::Refused(error) = reloader.reload(&host).await.unwrap_err() else {
        panic!("not a refusal")
    };
    assert_eq!(
        error,
        format!(
            "{}:24: operators[1].capacity: invalid type: string \"2\", expected a whole number",
            file.display()
        )
    );
    let chain = host
        .with_routing("default", |e| e.chain().spec().to_string())
        .await
        .unwrap();
    assert_eq!(chain, "round-robin");

    // The same through the admin API: token required, 409 with the message.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    let api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN_TOKEN))).with_reloader(reloader);
    let server = tokio::spawn(async move { api.serve(listener).await.unwrap() });
    let (status, _) = admin_call(admin, None, "POST", "/reload").await;
    assert_eq!(status, 401);
    let (status, answer) = admin_call(admin, Some(ADMIN_TOKEN), "POST", "/reload").await;
    assert_eq!(
        (status, answer["error"]["message"].as_str()),
        (409, Some(error.as_str()))
    );
    // Fixed: Giulia leaves (she holds nothing), the chain is `skills`.
    std::fs::write(&file, echo_config("skills", MARCO)).unwrap();
    let (status, answer) = admin_call(admin, Some(ADMIN_TOKEN), "POST", "/reload").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["routing"][0]["chain"], "skills");
    assert_eq!(
        answer["routing"][0]["operators"]["removed"],
        serde_json::json!(["giulia"])
    );
    let metrics = host.metrics_text().await;
    assert!(
        metrics.contains("centralino_config_reloads_total{outcome=\"applied\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("centralino_config_reloads_total{outcome=\"refused\"} 2"),
        "{metrics}"
    );
    server.abort();
}

/// Reads `stderr` line by line on a thread, so a test can wait for a line.
fn lines_of(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}

/// Collects lines until one contains `needle`; fails after 60 s.
fn wait_for(lines: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with `{needle}`:\n{}", seen.join("\n"));
}

#[test]
fn json_logs_are_one_object_per_line_with_the_plugin_call_span() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    let config = echo_config("skills", MARCO).replace(
        "store = \"sqlite::memory:\"\n",
        "store = \"sqlite::memory:\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         log_format = \"json\"\n",
    );
    std::fs::write(&file, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "info")
        .env_remove("CENTRALINO_LOG_FORMAT")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "admin API on");
    // SIGHUP reloads the config (and logs it).
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for(&lines, &mut seen, "configuration reloaded");
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }

    let events: Vec<Value> = seen
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for event in &events {
        assert!(event["timestamp"].is_string(), "{event}");
        assert!(event["level"].is_string(), "{event}");
        assert!(event["fields"]["message"].is_string(), "{event}");
    }
    // The echo plugin's own log line, inside the span of its `configure` call.
    let configured = events
        .iter()
        .find(|e| e["fields"]["message"] == "configured 1 account(s)")
        .unwrap_or_else(|| panic!("no plugin log line:\n{}", seen.join("\n")));
    let span = &configured["span"];
    assert_eq!(span["name"], "plugin_call", "{configured}");
    assert_eq!(span["plugin"], "echo-channel", "{configured}");
    assert_eq!(span["version"], "0.1.0", "{configured}");
    assert_eq!(span["tenant"], "default", "{configured}");
    assert_eq!(span["connector"], "echo", "{configured}");
    assert_eq!(span["function"], "configure", "{configured}");
    let reloaded = events
        .iter()
        .find(|e| e["fields"]["message"] == "configuration reloaded")
        .unwrap();
    assert_eq!(reloaded["fields"]["swapped"], 0, "{reloaded}");
}
