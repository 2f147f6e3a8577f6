//! Crash safety of `centralino run`: `kill -9` in the middle of a burst of 5,000 signed…
//! here, plain-text deliveries (the echo connector: the point is the host, not a platform),
//! then a restart. Every delivery the host acknowledged reaches the CRM exactly once
//! (deduplicated by event id, as a CRM is told to); none is lost, none is doubled.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use centralino::types::Message;

use crate::component;
use crate::support::{CrmRecorder, eventually, eventually_within, free_ports};

/// Messages are told apart by their text here (`messaggio numero N`).
fn by_text(m: &Message) -> String {
    m.text.clone()
}

const DELIVERIES: usize = 5_000;
const KILL_AFTER: usize = 1_500;

fn start_host(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("CRASH_CRM_SECRET", "crash-test-crm-secret")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    eventually_within(Duration::from_secs(60), "the host to start", async || {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

/// Sends deliveries `indices` with 16 in flight; returns those acknowledged with 200.
async fn send(
    client: &reqwest::Client,
    hook: &str,
    indices: Vec<usize>,
    stop_after: Option<usize>,
) -> Vec<usize> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(Mutex::new(indices.into_iter()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, hook, acked, queue) = (
            client.clone(),
            hook.to_string(),
            acked.clone(),
            queue.clone(),
        );
        workers.spawn(async move {
            loop {
                if stop_after.is_some_and(|n| acked.lock().unwrap().len() >= n) {
                    return;
                }
                let Some(i) = queue.lock().unwrap().next() else {
                    return;
                };
                let body = format!("cliente{i}: messaggio numero {i}");
                let ok = client
                    .post(&hook)
                    .body(body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                if ok {
                    acked.lock().unwrap().push(i);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    acked.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_burst_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let crm = CrmRecorder::start().await;
    let crm_url = crm.url.clone();
    let [port, admin] = free_ports();
    let plugin = component("echo-channel");
    let config = dir.path().join("centralino.toml");
    std::fs::write(
        &config,
        format!(
            r#"[host]
store = "sqlite://centralino.db"
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
plugin_dir = "{plugins}"
crm_webhook = "{crm_url}"
crm_webhook_secret = "env:CRASH_CRM_SECRET"

[[connectors]]
name = "echo"
plugin = "echo-channel"

[[connectors.accounts]]
id = "TIM_Official"
"#,
            plugins = plugin.parent().unwrap().display()
        ),
    )
    .unwrap();
    let log = std::path::PathBuf::from("/tmp/crash-host.log");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let hook = format!("{base}/webhooks/echo");

    let mut host = start_host(&config, &log);
    wait_ready(&client, &base).await;
    // Send until a few thousand are acknowledged, then kill -9 while deliveries are in flight.
    let sender = {
        let (client, hook) = (client.clone(), hook.clone());
        tokio::spawn(async move {
            send(
                &client,
                &hook,
                (0..DELIVERIES).collect(),
                Some(KILL_AFTER + 500),
            )
            .await
        })
    };
    eventually_within(
        Duration::from_secs(240),
        "deliveries to reach the CRM before the kill",
        async || crm.event_ids().len() >= KILL_AFTER || sender.is_finished(),
    )
    .await;
    let t0 = Instant::now();
    host.kill().unwrap(); // SIGKILL: no shutdown code runs.
    host.wait().unwrap();
    let mut acked: BTreeSet<usize> = sender.await.unwrap().into_iter().collect();
    assert!(
        acked.len() >= KILL_AFTER / 2,
        "only {} acknowledged before the kill",
        acked.len()
    );

    // Restart; the platform redelivers whatever was not acknowledged, plus a few that were.
    let mut host = start_host(&config, &log);
    wait_ready(&client, &base).await;
    let mut retry: Vec<usize> = (0..DELIVERIES).filter(|i| !acked.contains(i)).collect();
    retry.extend(acked.iter().take(200).copied());
    let started = Instant::now();
    while !retry.is_empty() && started.elapsed() < Duration::from_secs(180) {
        let done = send(&client, &hook, retry.clone(), None).await;
        acked.extend(done.iter().copied());
        retry.retain(|i| !acked.contains(i));
    }
    assert_eq!(
        acked.len(),
        DELIVERIES,
        "every delivery is eventually acknowledged"
    );

    // Every acknowledged message reaches the CRM, through exactly one event.
    eventually_within(
        Duration::from_secs(240),
        "every acknowledged message to reach the CRM",
        async || crm.messages(by_text).len() >= DELIVERIES,
    )
    .await;
    eprintln!(
        "CRM caught up {:.1} s after the kill",
        t0.elapsed().as_secs_f64()
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let received = crm.messages(by_text);
    let missing: Vec<usize> = (0..DELIVERIES)
        .filter(|i| !received.contains_key(&format!("messaggio numero {i}")))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "messages never reached the CRM, e.g. {missing:?}"
    );
    let doubled: Vec<&String> = received
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(t, _)| t)
        .take(5)
        .collect();
    assert!(
        doubled.is_empty(),
        "messages reported by two different events: {doubled:?}"
    );
    assert_eq!(received.len(), DELIVERIES);
}

// ---- a reply queued before the kill is sent exactly once after the restart ----

/// `centralino run` with a Twitter connector on the X emulator (DMs by polling), one
/// operator and the REST API.
/// A child process killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_replying_host(config: &std::path::Path, log: &std::path::Path) -> Killed {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("CRASH_API_TOKEN", "crash-api-token")
        .env("CRASH_X_TOKEN", "token-tim")
        .env("CRASH_CONSUMER_SECRET", "crash-consumer-secret")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Killed)
        .unwrap()
}

async fn api_get(client: &reqwest::Client, base: &str, path: &str) -> serde_json::Value {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth("crash-api-token")
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn api_reply(
    client: &reqwest::Client,
    base: &str,
    conversation: &str,
    key: &str,
    text: &str,
) -> serde_json::Value {
    let response = client
        .post(format!(
            "{base}/api/v1/conversations/{conversation}/replies"
        ))
        .bearer_auth("crash-api-token")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "operator": "marco", "text": text }).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(status.is_success(), "reply refused with {status}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_queued_before_a_kill_9_is_sent_exactly_once_after_the_restart() {
    use centralino_emulators::Fault;
    use centralino_emulators::XApi;

    const CUSTOMERS: usize = 6;
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    for i in 0..CUSTOMERS {
        let id = format!("{}", 7_000 + i);
        x.add_user(
            &id,
            &format!("cliente{i}"),
            &format!("Cliente {i}"),
            &format!("t{i}"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let [port, admin] = free_ports();
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let config = dir.path().join("centralino.toml");
    std::fs::write(
        &config,
        format!(
            r#"api_token = "env:CRASH_API_TOKEN"

[host]
store = "sqlite://centralino.db"
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
plugin_dir = "{plugins}"

[[connectors]]
name = "twitter"
plugin = "twitter"
poll_interval_secs = 1
allowed_hosts = ["{authority}"]
settings = {{ api_base = "{base}" }}
secrets = {{ consumer_secret = "env:CRASH_CONSUMER_SECRET" }}

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
credential = "env:CRASH_X_TOKEN"

[routing]
chain = "least-loaded"

[[operators]]
id = "marco"
capacity = 20
"#,
            plugins = plugins.display(),
            authority = x.authority(),
            base = x.base_url(),
        ),
    )
    .unwrap();
    let log = std::path::PathBuf::from("/tmp/crash-replies-host.log");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let host = start_replying_host(&config, &log);
    wait_ready(&client, &base).await;
    let online = client
        .put(format!("{base}/api/v1/operators/marco/presence"))
        .bearer_auth("crash-api-token")
        .header("content-type", "application/json")
        .body(r#"{"presence":"online"}"#)
        .send()
        .await
        .unwrap();
    assert!(online.status().is_success(), "{}", online.status());
    for i in 0..CUSTOMERS {
        x.send_dm(
            &format!("{}", 7_000 + i),
            "1001",
            &format!("il modem {i} non va"),
        );
    }
    // Polled, stored and assigned to marco.
    let mut conversations: Vec<String> = Vec::new();
    eventually_within(
        Duration::from_secs(30),
        "the conversations to be assigned to marco",
        async || {
            let list = api_get(&client, &base, "/api/v1/conversations").await;
            conversations = list["conversations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["assignee"] == "marco")
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            conversations.len() == CUSTOMERS
        },
    )
    .await;

    // X refuses every DM send for now: the replies stay in the outbox, waiting to retry.
    x.inject("dm_conversations", Fault::ServerError(503), u32::MAX);
    let mut replies = Vec::new();
    for (i, conversation) in conversations.iter().enumerate() {
        let text = format!("Ciao, sono Marco: risposta {i}");
        let reply = api_reply(&client, &base, conversation, &format!("k-{i}"), &text).await;
        replies.push((reply["id"].as_str().unwrap().to_string(), text));
    }
    // Kill once each has failed once and waits for its retry (a second away at least), so
    // none is caught mid-send.
    eventually_within(
        Duration::from_secs(30),
        "every reply to be attempted and wait for its retry",
        async || {
            let mut waiting = 0;
            for (id, _) in &replies {
                let reply = api_get(&client, &base, &format!("/api/v1/replies/{id}")).await;
                if reply["status"] == "pending" && reply["attempts"].as_i64() >= Some(1) {
                    waiting += 1;
                }
            }
            waiting == replies.len()
        },
    )
    .await;
    drop(host); // SIGKILL
    let sent_before: usize = x.dms().iter().filter(|d| d.sender_id == "1001").count();
    assert_eq!(sent_before, 0, "nothing got through while X refused");

    // X is healthy again; the restarted host sends what the outbox holds, once.
    x.clear_faults();
    let t0 = Instant::now();
    let host = start_replying_host(&config, &log);
    wait_ready(&client, &base).await;
    // Routing state came back with the store: marco still answers his conversations.
    let after = api_reply(
        &client,
        &base,
        &conversations[0],
        "k-after",
        "Ciao, sono ancora Marco",
    )
    .await;
    replies.push((
        after["id"].as_str().unwrap().to_string(),
        "Ciao, sono ancora Marco".to_string(),
    ));
    let mut settled = Vec::new();
    eventually("the replies to be sent after the restart", async || {
        settled.clear();
        for (id, _) in &replies {
            settled.push(api_get(&client, &base, &format!("/api/v1/replies/{id}")).await);
        }
        settled.iter().all(|v| v["status"] == "sent")
    })
    .await;
    eprintln!(
        "{} replies queued before the kill sent {:.1} s after the restart began",
        replies.len() - 1,
        t0.elapsed().as_secs_f64()
    );
    // A little longer, to catch any second send.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(host);

    let dms = x.dms();
    for ((_, text), view) in replies.iter().zip(&settled) {
        let copies: Vec<&centralino_emulators::x::DmEvent> = dms
            .iter()
            .filter(|d| d.sender_id == "1001" && &d.text == text)
            .collect();
        assert_eq!(copies.len(), 1, "`{text}` reached X {} times", copies.len());
        assert_eq!(
            view["external_id"].as_str(),
            Some(copies[0].id.as_str()),
            "the platform id is recorded"
        );
    }
    assert_eq!(
        dms.iter().filter(|d| d.sender_id == "1001").count(),
        replies.len()
    );
}
