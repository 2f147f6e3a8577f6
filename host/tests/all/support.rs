//! Test support shared by the modules that run hosts as processes: free loopback ports and
//! a CRM endpoint that records what it is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use centralino::crm::{CrmDelivery, CrmEvent};
use centralino::types::Message;

/// An Account Activity delivery of `payload` as X posts it, signed with the app's consumer
/// `secret`.
pub fn x_delivery(secret: &str, payload: &serde_json::Value) -> centralino::types::WebhookRequest {
    let body = serde_json::to_vec(payload).unwrap();
    centralino::types::WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: centralino_emulators::webhooks::twitter_delivery_headers(secret, &body),
        body,
    }
}

/// The events of `kind` the CRM's local inbox was sent so far, in order.
pub fn inbox_events(
    inbox: &centralino::crm::LocalInbox,
    kind: impl Fn(&CrmEvent) -> bool,
) -> Vec<CrmEvent> {
    inbox
        .events()
        .into_iter()
        .map(|delivery| delivery.event)
        .filter(|event| kind(event))
        .collect()
}

/// Runs the built `centralino` binary with `args`: its exit code (-1 when a signal ended
/// it), stdout and stderr.
pub fn centralino(args: &[&str]) -> (i32, String, String) {
    centralino_with_env(args, &[])
}

/// [`centralino`] with `env` added to the test's own environment.
pub fn centralino_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` distinct loopback ports free right now, for a child that listens on several: all
/// are bound at once before any is released (binding and releasing them in turn can hand
/// out the same port twice, and the child then fails with "address in use").
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// A CRM's webhook endpoint on loopback (`url`) that keeps every event delivered to it,
/// redeliveries included; while it is away, it answers 503 to each.
pub struct CrmRecorder {
    pub url: String,
    deliveries: Arc<Mutex<Vec<CrmDelivery>>>,
    away: Arc<std::sync::atomic::AtomicBool>,
}

impl CrmRecorder {
    pub async fn start() -> CrmRecorder {
        Self::start_away(false).await
    }

    /// An endpoint that refuses every event until [`CrmRecorder::back`].
    pub async fn start_away(away: bool) -> CrmRecorder {
        let deliveries: Arc<Mutex<Vec<CrmDelivery>>> = Arc::default();
        let away = Arc::new(std::sync::atomic::AtomicBool::new(away));
        let sink = deliveries.clone();
        let refusing = away.clone();
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post(move |body: Bytes| {
                let sink = sink.clone();
                let refusing = refusing.clone();
                async move {
                    if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let Ok(delivery) = serde_json::from_slice::<CrmDelivery>(&body) else {
                        return StatusCode::BAD_REQUEST;
                    };
                    sink.lock().unwrap().push(delivery);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        CrmRecorder {
            url,
            deliveries,
            away,
        }
    }

    /// The CRM is back: events are taken from now on.
    pub fn back(&self) {
        self.away.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The events received so far, each once, in the order first received.
    pub fn events(&self) -> Vec<CrmEvent> {
        let mut seen = BTreeSet::new();
        let deliveries = self.deliveries.lock().unwrap();
        deliveries
            .iter()
            .filter(|d| seen.insert(d.id.clone()))
            .map(|d| d.event.clone())
            .collect()
    }

    /// Every delivery received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<CrmDelivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The distinct ids of the events received (a redelivery has its event's id).
    pub fn event_ids(&self) -> BTreeSet<String> {
        let deliveries = self.deliveries.lock().unwrap();
        deliveries.iter().map(|d| d.id.clone()).collect()
    }

    /// Each message received, by `key`, with the distinct ids of the events that reported
    /// it: one id per message means it reached the CRM exactly once.
    pub fn messages(&self, key: impl Fn(&Message) -> String) -> BTreeMap<String, BTreeSet<String>> {
        let deliveries = self.deliveries.lock().unwrap();
        let mut messages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for delivery in deliveries.iter() {
            if let CrmEvent::MessageReceived { message, .. } = &delivery.event {
                messages
                    .entry(key(message))
                    .or_default()
                    .insert(delivery.id.clone());
            }
        }
        messages
    }
}

/// Serves `host`'s REST API (`/api/v1`) on a loopback port with `tokens`; the server stops
/// when the returned handle is aborted or the test ends.
pub async fn serve_rest(
    host: &centralino::Host,
    tokens: centralino::api::ApiTokens,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = centralino::api::public_router(host.clone(), tokens);
    let server = tokio::spawn(async move {
        centralino::api::serve(app, listener, centralino::IngressLimits::default())
            .await
            .unwrap();
    });
    (address, server)
}

/// Every copy of `value` with one object key removed, at any depth, each with the JSON
/// pointer of the key it lacks; keys for which `keep(pointer)` holds stay (the event lists
/// and the fields naming an event's kind: without them a delivery is about something
/// else, not a customer message with an optional field missing).
pub fn without_each_field(
    value: &serde_json::Value,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, serde_json::Value)> {
    fn pointers(value: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (key, inner) in fields {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    let pointer = format!("{at}/{escaped}");
                    out.push((at.to_string(), key.clone()));
                    pointers(inner, &pointer, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (index, inner) in items.iter().enumerate() {
                    pointers(inner, &format!("{at}/{index}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    pointers(value, "", &mut found);
    found
        .into_iter()
        .filter_map(|(parent, key)| {
            let pointer = format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"));
            if keep(&pointer) {
                return None;
            }
            let mut mutated = value.clone();
            mutated.pointer_mut(&parent)?.as_object_mut()?.remove(&key);
            Some((pointer, mutated))
        })
        .collect()
}

/// Longest any `eventually` waits before the test calls it a hang.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until `check` holds, looking every 10 ms for at most [`PATIENCE`]; the one
/// helper every test module uses to wait for an asynchronous effect (the host's background
/// work, a process starting, a browser drawing a page). Time-based decisions are not
/// waited for: a test moves the host's `ManualClock` past them instead.
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(PATIENCE, what, check).await;
}

/// [`eventually`] with a patience of its own, for effects that take longer than
/// [`PATIENCE`] by design (a burst of thousands of events reaching the CRM after a kill)
/// or must come sooner (a broken start-up reported within seconds).
pub async fn eventually_within(
    patience: std::time::Duration,
    what: &str,
    check: impl AsyncFnMut() -> bool,
) {
    if !comes_true_within(patience, check).await {
        panic!("timed out after {patience:?} waiting for {what}");
    }
}

/// Whether `check` comes true within [`PATIENCE`], for a test that explains a timeout with
/// what it saw last instead of [`eventually`]'s bare message.
pub async fn comes_true(check: impl AsyncFnMut() -> bool) -> bool {
    comes_true_within(PATIENCE, check).await
}

async fn comes_true_within(
    patience: std::time::Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < patience {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// Another process writing to a SQLite store (an admin's `sqlite3` shell, a command of the
/// CLI): `db` takes the write lock and writes, holding it until the caller's `COMMIT`.
pub async fn hold_write_lock(db: &mut sqlx::SqliteConnection) {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *db)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE admin_notes (note TEXT)")
        .execute(&mut *db)
        .await
        .unwrap();
}
