//! Whether watching the console slows the webhook path: the ingress load (signed
//! Messenger batches over HTTP to the real ingress, [`ingest`](crate::ingest)'s
//! deliveries, CRM open) with and without the console's overview open and streaming its
//! live updates (server-sent events, a snapshot every 500 ms) on the admin listener.
//!
//! Each round runs both, each on a fresh host and SQLite file, in alternating order; the
//! figure is the median of each side and their ratio. With the stream, a client logs in
//! with the admin token, loads the overview page (which reads the charts' figures from the
//! store) and keeps `streams` event streams open, reading every event, for the whole run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::api::AdminApi;
use centralino::capabilities::Secret;
use centralino::runtime::Runtime;

use crate::ingest::{CountingCrm, Options, deliveries, host};

const TOKEN: &str = "bench-console-token";

/// What was measured.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The ingress load.
    pub options: Options,
    /// Messages per second acknowledged by the ingress, per round, without the console.
    pub without: Vec<f64>,
    /// The same with the overview streaming.
    pub with: Vec<f64>,
    /// Overview events the streams received in all (each a whole snapshot, rendered).
    pub events: u64,
    /// Event streams open during each run with the console.
    pub streams: usize,
}

/// Posts every delivery to the ingress at `ingress` with `concurrency` callers.
async fn post_all(
    ingress: &str,
    requests: Vec<centralino::types::WebhookRequest>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter()));
    let mut callers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, queue, url) = (
            http.clone(),
            queue.clone(),
            format!("{ingress}/webhooks/facebook"),
        );
        callers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(request) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut post = http.post(&url).body(request.body);
                for (name, value) in request.headers {
                    post = post.header(name, value);
                }
                let status = post.send().await?.status();
                anyhow::ensure!(status.is_success(), "the ingress answered {status}");
            }
        }));
    }
    for caller in callers {
        caller.await??;
    }
    Ok(())
}

/// A cookie's `name=value` from a response.
fn cookie(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no `{name}` cookie"))
}

/// Logs in to the console at `console`, loads the overview and opens `streams` event
/// streams that read everything; answers the tasks reading them.
async fn watch(
    console: &str,
    streams: usize,
    events: Arc<AtomicU64>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http.get(format!("{console}/login")).send().await?;
    let login_cookie = cookie(&login, "centralino_login")?;
    let html = login.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let at = html
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("no login form"))?
        + marker.len();
    let csrf: String = html[at..].chars().take_while(|c| *c != '"').collect();
    let answer = http
        .post(format!("{console}/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&token={TOKEN}"))
        .send()
        .await?;
    let session = cookie(&answer, "centralino_console")?;
    let page = http
        .get(format!("{console}/overview"))
        .header("cookie", &session)
        .send()
        .await?;
    anyhow::ensure!(
        page.status().is_success(),
        "the overview answered {}",
        page.status()
    );
    let mut readers = Vec::new();
    for _ in 0..streams {
        let mut response = http
            .get(format!("{console}/events"))
            .header("cookie", &session)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the stream answered {}",
            response.status()
        );
        let events = events.clone();
        readers.push(tokio::spawn(async move {
            while let Ok(Some(chunk)) = response.chunk().await {
                let count = chunk
                    .windows(15)
                    .filter(|w| w == b"event: overview")
                    .count();
                events.fetch_add(count as u64, Ordering::Relaxed);
            }
        }));
    }
    Ok(readers)
}

/// One run: a fresh host on a SQLite file; the deliveries through the ingress; with
/// `streams` > 0, the console watched meanwhile. Answers messages per second.
async fn one_run(
    runtime: &Runtime,
    plugins: &std::path::Path,
    options: &Options,
    dir: &std::path::Path,
    label: &str,
    streams: usize,
    events: Arc<AtomicU64>,
) -> anyhow::Result<f64> {
    let crm = CountingCrm::new(true);
    let url = format!("sqlite://{}", dir.join(format!("{label}.db")).display());
    let host: Host = host(runtime, plugins, options, &url, crm).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ingress = format!("http://{}", listener.local_addr()?);
    let serving = host.clone();
    let ingress_task = tokio::spawn(async move { serving.serve(listener).await });
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let console = format!("http://{}/console", admin_listener.local_addr()?);
    let api = AdminApi::new(host.clone(), Some(&Secret::new(TOKEN)));
    let admin_task = tokio::spawn(async move { api.serve(admin_listener).await });
    let readers = if streams > 0 {
        let readers = watch(&console, streams, events).await?;
        // The sampler is running before the clock starts.
        tokio::time::sleep(Duration::from_millis(600)).await;
        readers
    } else {
        Vec::new()
    };
    let requests = deliveries(options);
    let started = Instant::now();
    post_all(&ingress, requests, options.concurrency).await?;
    let took = started.elapsed();
    let stored = host
        .store()
        .message_count(centralino::connectors::DEFAULT_TENANT)
        .await?;
    anyhow::ensure!(
        stored == options.messages as i64,
        "{stored} of {} messages in the store",
        options.messages
    );
    for reader in readers {
        reader.abort();
    }
    ingress_task.abort();
    admin_task.abort();
    Ok(options.messages as f64 / took.as_secs_f64())
}

/// `rounds` rounds of both runs, alternating which goes first.
pub async fn run(
    runtime: &Runtime,
    plugins: &std::path::Path,
    options: &Options,
    rounds: usize,
    streams: usize,
) -> anyhow::Result<Figure> {
    crate::component(plugins, "facebook")?;
    let dir = crate::scratch_dir("console")?;
    let events = Arc::new(AtomicU64::new(0));
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for watched in order {
            let label = format!("round{round}-{}", if watched { "with" } else { "without" });
            let n = if watched { streams.max(1) } else { 0 };
            let rate = one_run(runtime, plugins, options, &dir, &label, n, events.clone()).await?;
            if watched {
                with.push(rate);
            } else {
                without.push(rate);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figure {
        options: options.clone(),
        without,
        with,
        events: events.load(Ordering::Relaxed),
        streams: streams.max(1),
    })
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
