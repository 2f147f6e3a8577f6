//! Ingest throughput: signed Facebook webhook batches → the `facebook` plugin verifies the
//! signature and normalises → dedup and threading → routing (`skills > least-loaded`, wasm)
//! → SQLite commit on disk → the CRM.
//!
//! Three runs, each on a fresh SQLite file in the temp dir (on disk, WAL mode, the store's
//! own settings):
//!
//! 1. **durable**: the real [`Host`], [`Host::deliver_webhook_stored`] called by
//!    `concurrency` callers, as the ingress does; a delivery returns once its messages and
//!    routing outcome are committed. The CRM is held shut meanwhile, so this is the ingest
//!    path alone: messages per second acknowledged durably.
//! 2. **CRM drain**: then the CRM opens and the host's dispatcher delivers the backlog
//!    (two events per message: received, assigned) to a counting [`Crm`].
//! 3. **end to end**: a fresh host with the CRM open from the start; the clock stops when
//!    the CRM has counted every event.
//!
//! Runs 1 and 2 are repeated `rounds` times, each round followed by the store's own limit
//! on a fresh file: the same rows by a plain batched insert ([`crate::ingest_limit`]), so
//! centralino's rate is also given as a share of what the database does on this machine
//! in this run. With a PostgreSQL server, run 1 is repeated there with one host and with
//! two hosts sharing a fresh database.
//!
//! The share of time per stage comes from a fourth run that makes the same calls the host
//! makes on SQLite, one delivery at a time, with a timer around each stage: the plugin
//! (`handle_webhook`), the store's reads (`begin_ingest`: duplicates, erasures, open
//! threads, known authors, in the delivery's transaction), the routing chain
//! (`RoutingEngine::receive`), and the delivery's writes with its routing outcome
//! (`record_routing`: conversations inserted already routed, messages, customers, every
//! CRM event of the delivery) in the same transaction, then its one commit; the CRM's
//! share is the drain of run 2. A
//! fifth run repeats the fourth on an in-memory database: what remains is CPU, the
//! difference is waiting for the disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::connectors::DEFAULT_TENANT;
use centralino::crm::{BoxFuture, Crm, CrmDelivery, CrmEvent};
use centralino::routing::{
    ChainSpec, CustomerMessage, Notice, Operator, PolicyChain, RoutingEngine,
};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::store::{ConversationStatus, Store};
use centralino::types::{Presence, WebhookRequest};

use crate::fixtures::{facebook_config, facebook_spec, messenger_batch, signed_delivery};

/// The routing chain every message goes through.
pub const CHAIN: &str = "skills > least-loaded";

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Messages per run.
    pub messages: usize,
    /// Messages per webhook delivery (Messenger batches entries).
    pub batch: usize,
    /// Concurrent callers of the host (webhook requests in flight).
    pub concurrency: usize,
    /// Operators on the roster (all serve `tim` in Italian, with room for every
    /// conversation of the run, so every message is assigned).
    pub operators: usize,
    /// Rounds of the durable run and of the plain insert, interleaved (medians reported).
    pub rounds: usize,
    /// A PostgreSQL server (URL naming a database the user may connect to): the durable
    /// run is repeated there with one host and with two hosts sharing a fresh database.
    pub postgres: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            messages: 5_000,
            batch: 100,
            concurrency: 4,
            operators: 9,
            rounds: 3,
            postgres: None,
        }
    }
}

/// Time spent in one stage over the whole composed run.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Stage name.
    pub name: &'static str,
    /// Total time.
    pub time: Duration,
}

/// The ingest figures.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The options used.
    pub options: Options,
    /// Run 1: deliveries acknowledged, CRM held shut (median of the rounds).
    pub durable: Duration,
    /// Run 1, every round.
    pub durable_rounds: Vec<Duration>,
    /// Run 1, every round: webhook deliveries per commit of the store, on average
    /// (deliveries that wait while another is written share its commit).
    pub per_commit: Vec<f64>,
    /// The store's own limit: the same rows by a plain batched insert (median of the
    /// rounds, each run right after a durable round; see [`crate::ingest_limit`]).
    pub limit: Duration,
    /// The limit, every round.
    pub limit_rounds: Vec<Duration>,
    /// The SQLite settings both ran with, as read back from the connection.
    pub settings: String,
    /// PostgreSQL, when measured: (one host, two hosts sharing the database), durable, or
    /// why it could not be measured.
    pub postgres: Option<Result<(Duration, Duration), String>>,
    /// Run 2: the CRM's drain of run 1's events.
    pub crm_drain: Duration,
    /// CRM events delivered in run 2.
    pub crm_events: u64,
    /// Run 3: first delivery to the CRM's last event, CRM open.
    pub end_to_end: Duration,
    /// Run 3: when the last delivery was acknowledged.
    pub end_to_end_acked: Duration,
    /// Run 4: stage timers.
    pub stages: Vec<Stage>,
    /// Run 4: total.
    pub composed: Duration,
    /// Run 5: the stage timers of run 4 on an in-memory database (no disk, no fsync): the
    /// CPU part of each stage.
    pub stages_in_memory: Vec<Stage>,
    /// One statement's round trip to the SQLite file through the store's pool
    /// (`Store::ping`, a `SELECT 1`), median of 1,000.
    pub round_trip: Duration,
    /// Where the databases were.
    pub database_dir: String,
}

impl Figure {
    /// Messages per second over `time`.
    pub fn rate(&self, time: Duration) -> f64 {
        self.options.messages as f64 / time.as_secs_f64().max(1e-9)
    }
}

/// A CRM that counts events, held shut until opened.
pub struct CountingCrm {
    delivered: AtomicU64,
    open: tokio::sync::watch::Sender<bool>,
}

impl CountingCrm {
    /// A CRM that is open (`true`) or shut from the start.
    pub fn new(open: bool) -> Arc<CountingCrm> {
        Arc::new(CountingCrm {
            delivered: AtomicU64::new(0),
            open: tokio::sync::watch::Sender::new(open),
        })
    }

    /// Lets deliveries through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Events delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Waits until `count` events were delivered; fails after `timeout`.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.delivered() < count {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the CRM got {} of {count} events within {timeout:?}",
                self.delivered()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }
}

impl Crm for CountingCrm {
    fn deliver<'a>(&'a self, _delivery: &'a CrmDelivery) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut open = self.open.subscribe();
            open.wait_for(|open| *open).await?;
            self.delivered.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// The roster: `operators` Italian-speaking TIM operators with room for `room` each.
fn operators(count: usize, room: u32) -> Vec<Operator> {
    (0..count)
        .map(|i| {
            Operator::new(format!("op-{i:03}"), room)
                .skills(["tim"])
                .languages(["it"])
        })
        .collect()
}

/// A routing engine over [`CHAIN`] with the roster.
pub async fn engine(
    runtime: &Runtime,
    plugins: &Path,
    options: &Options,
) -> anyhow::Result<RoutingEngine> {
    let spec: ChainSpec = CHAIN.parse()?;
    let chain = PolicyChain::load(runtime, &spec, plugins, &PluginLimits::default()).await?;
    let mut engine = RoutingEngine::builder(chain).build();
    let room = u32::try_from(options.messages).unwrap_or(u32::MAX).max(1);
    for operator in operators(options.operators, room) {
        engine.add_operator(operator, Presence::Online).await;
    }
    Ok(engine)
}

/// Pre-signed deliveries: the platform's work, done before the clock starts.
pub(crate) fn deliveries(options: &Options) -> Vec<WebhookRequest> {
    let batch = options.batch.max(1);
    (0..options.messages.div_ceil(batch))
        .map(|d| {
            let first = (d * batch) as u64;
            let count = batch.min(options.messages - d * batch);
            signed_delivery(messenger_batch(first, count))
        })
        .collect()
}

pub(crate) async fn host(
    runtime: &Runtime,
    plugins: &Path,
    options: &Options,
    url: &str,
    crm: Arc<CountingCrm>,
) -> anyhow::Result<Host> {
    Ok(Host::builder()
        .store(url)
        .runtime(runtime.clone())
        .connector(facebook_spec(plugins))
        .routing(engine(runtime, plugins, options).await?)
        .crm(crm)
        .build()
        .await?)
}

/// Sends every delivery through `host` with `concurrency` callers; checks each was
/// acknowledged with all its messages stored.
async fn deliver_all(
    host: &Host,
    requests: Vec<WebhookRequest>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter()));
    let mut callers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let host = host.clone();
        let queue = queue.clone();
        callers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(request) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                let expected = serde_json::from_slice::<serde_json::Value>(&request.body)
                    .ok()
                    .and_then(|v| v["entry"].as_array().map(Vec::len))
                    .unwrap_or(0);
                let (response, stored) = host
                    .deliver_webhook_stored(DEFAULT_TENANT, "facebook", request)
                    .await;
                anyhow::ensure!(
                    response.status == 200,
                    "delivery answered {}: {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                );
                let fresh = stored.iter().filter(|i| !i.duplicate).count();
                anyhow::ensure!(fresh == expected, "{fresh} of {expected} messages stored");
            }
        }));
    }
    for caller in callers {
        caller.await??;
    }
    Ok(())
}

/// Webhook deliveries per commit so far, from the host's
/// `centralino_webhook_commit_deliveries` histogram (0 when it has none).
async fn deliveries_per_commit(host: &Host) -> f64 {
    let text = host.metrics_text().await;
    let sample = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let commits = sample("centralino_webhook_commit_deliveries_count{");
    let deliveries = sample("centralino_webhook_commit_deliveries_sum{");
    if commits > 0.0 {
        deliveries / commits
    } else {
        0.0
    }
}

/// Runs the three host runs and the composed run.
pub async fn run(runtime: &Runtime, plugins: &Path, options: &Options) -> anyhow::Result<Figure> {
    crate::component(plugins, "facebook")?;
    let dir = crate::scratch_dir("ingest")?;
    let events = 2 * options.messages as u64;
    let drain_timeout = Duration::from_secs(600);

    // Runs 1 and 2: durable ingest with the CRM shut, then the CRM's drain; each round
    // followed by the plain insert of the same rows (the store's own limit).
    let batches = crate::ingest_limit::normalised(runtime, plugins, deliveries(options)).await?;
    let mut durable_rounds = Vec::new();
    let mut per_commit = Vec::new();
    let mut limit_rounds = Vec::new();
    let mut drains = Vec::new();
    let mut settings = String::new();
    for round in 0..options.rounds.max(1) {
        let crm = CountingCrm::new(false);
        let url = format!(
            "sqlite://{}",
            dir.join(format!("durable-{round}.db")).display()
        );
        let gated = host(runtime, plugins, options, &url, crm.clone()).await?;
        let requests = deliveries(options);
        let started = Instant::now();
        deliver_all(&gated, requests, options.concurrency).await?;
        durable_rounds.push(started.elapsed());
        per_commit.push(deliveries_per_commit(&gated).await);
        let stored = gated.store().message_count(DEFAULT_TENANT).await?;
        anyhow::ensure!(
            stored == options.messages as i64,
            "{stored} of {} messages in the store",
            options.messages
        );
        let started = Instant::now();
        crm.open();
        crm.wait_for(events, drain_timeout).await?;
        drains.push(started.elapsed());
        settings = crate::ingest_limit::settings(gated.store()).await?;
        drop(gated);

        let url = format!(
            "sqlite://{}",
            dir.join(format!("limit-{round}.db")).display()
        );
        let (time, limit_settings) = crate::ingest_limit::run(
            &url,
            batches.clone(),
            options.operators,
            options.concurrency,
        )
        .await?;
        anyhow::ensure!(
            limit_settings == settings,
            "the plain insert ran with {limit_settings}, centralino with {settings}"
        );
        limit_rounds.push(time);
    }
    let durable = median(&durable_rounds);
    let limit = median(&limit_rounds);
    let crm_drain = median(&drains);

    // Run 3: end to end with the CRM open.
    let crm = CountingCrm::new(true);
    let url = format!("sqlite://{}", dir.join("end-to-end.db").display());
    let open = host(runtime, plugins, options, &url, crm.clone()).await?;
    let requests = deliveries(options);
    let started = Instant::now();
    deliver_all(&open, requests, options.concurrency).await?;
    let end_to_end_acked = started.elapsed();
    crm.wait_for(events, drain_timeout).await?;
    let end_to_end = started.elapsed();
    drop(open);

    // Runs 4 and 5: the same calls, one stage at a time, on disk and in memory.
    let url = format!("sqlite://{}", dir.join("composed.db").display());
    let (stages, composed_time) = composed(runtime, plugins, options, &url).await?;
    let round_trip = round_trip(&url).await?;
    let (stages_in_memory, _) = composed(runtime, plugins, options, "sqlite::memory:").await?;
    let _ = std::fs::remove_dir_all(&dir);
    let postgres = match &options.postgres {
        Some(base) => Some(
            postgres(runtime, plugins, options, base)
                .await
                .map_err(|e| format!("{e:#}")),
        ),
        None => None,
    };
    Ok(Figure {
        options: options.clone(),
        durable,
        durable_rounds,
        per_commit,
        limit,
        limit_rounds,
        settings,
        postgres,
        crm_drain,
        crm_events: events,
        end_to_end,
        end_to_end_acked,
        stages,
        composed: composed_time,
        stages_in_memory,
        round_trip,
        database_dir: std::env::temp_dir().display().to_string(),
    })
}

fn median(times: &[Duration]) -> Duration {
    let nanos: Vec<f64> = times.iter().map(|t| t.as_nanos() as f64).collect();
    Duration::from_nanos(crate::stats::median(&nanos) as u64)
}

/// The durable run on PostgreSQL: one host, then two hosts sharing a fresh database (each
/// with `concurrency` callers and half the deliveries; their routing takes turns under
/// the tenant's lock). The CRM is held shut.
async fn postgres(
    runtime: &Runtime,
    plugins: &Path,
    options: &Options,
    base: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let mut times = Vec::new();
    for hosts in [1usize, 2] {
        let url = crate::search::fresh_postgres(base, &format!("ingest_{hosts}")).await?;
        let mut running = Vec::new();
        for _ in 0..hosts {
            running.push(host(runtime, plugins, options, &url, CountingCrm::new(false)).await?);
        }
        let mut shares: Vec<Vec<WebhookRequest>> = vec![Vec::new(); hosts];
        for (n, request) in deliveries(options).into_iter().enumerate() {
            shares[n % hosts].push(request);
        }
        let started = Instant::now();
        let mut callers = Vec::new();
        for (host, share) in running.iter().zip(shares) {
            let host = host.clone();
            let concurrency = options.concurrency;
            callers.push(tokio::spawn(async move {
                deliver_all(&host, share, concurrency).await
            }));
        }
        for caller in callers {
            caller.await??;
        }
        times.push(started.elapsed());
        let stored = running[0].store().message_count(DEFAULT_TENANT).await?;
        anyhow::ensure!(
            stored == options.messages as i64,
            "PostgreSQL, {hosts} host(s): {stored} of {} messages in the store",
            options.messages
        );
        drop(running);
        crate::search::drop_postgres(base, &url).await?;
    }
    Ok((times[0], times[1]))
}

/// The median time of one statement through the store's connection pool.
async fn round_trip(url: &str) -> anyhow::Result<Duration> {
    let store = Store::open(url).await?;
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        store.ping().await?;
        times.push(t.elapsed().as_nanos() as f64);
    }
    Ok(Duration::from_nanos(crate::stats::median(&times) as u64))
}

/// The host's ingest path as a sequence of public calls, timed stage by stage.
async fn composed(
    runtime: &Runtime,
    plugins: &Path,
    options: &Options,
    url: &str,
) -> anyhow::Result<(Vec<Stage>, Duration)> {
    let store = Store::open(url).await?;
    let plugin = runtime.load_channel(crate::component(plugins, "facebook")?)?;
    let (config, grants) = facebook_config();
    let limits = facebook_spec(plugins).limits;
    let mut connector = plugin.instance(config, grants, limits);
    connector.ready().await?;
    let mut engine = engine(runtime, plugins, options).await?;
    let mut to_store = HashMap::new();
    let mut times = [Duration::ZERO; 4];
    let started = Instant::now();
    for request in deliveries(options) {
        let t0 = Instant::now();
        let outcome = connector.handle_webhook(request).await?;
        anyhow::ensure!(outcome.response.status == 200, "plugin refused a delivery");
        let t1 = Instant::now();
        let (mut delivery, ingested) = store
            .begin_ingest(DEFAULT_TENANT, "facebook", &outcome.messages)
            .await?;
        let t2 = Instant::now();
        times[0] += t1 - t0;
        times[1] += t2 - t1;
        let t3 = Instant::now();
        let mut notices = Vec::new();
        for item in ingested.iter().filter(|i| !i.duplicate) {
            let mut message = CustomerMessage::from_message("facebook", &item.message);
            message.brand = Some("tim".to_string());
            let arrival = engine.receive(message).await;
            to_store.insert(arrival.conversation, item.conversation_id.clone());
            notices.extend(arrival.notices);
        }
        let t4 = Instant::now();
        // As the host records them: every outcome of the delivery in one transaction.
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for notice in notices {
            if let Notice::Assigned {
                conversation,
                operator,
                reason,
                ..
            } = notice
            {
                let Some(id) = to_store.get(&conversation) else {
                    continue;
                };
                changes.push((
                    id.to_string(),
                    ConversationStatus::Assigned,
                    Some(operator.clone()),
                ));
                events.push(CrmEvent::ConversationAssigned {
                    conversation_id: id.clone(),
                    operator,
                    reason,
                });
            }
        }
        delivery.record_routing(&changes, &events).await?;
        delivery.commit().await?;
        times[2] += t4 - t3;
        times[3] += t4.elapsed();
    }
    let composed = started.elapsed();
    let names = [
        "plugin: verify signature, parse, normalise (wasm)",
        "store: reads (duplicates, erasures, open threads, known authors)",
        "routing: skills > least-loaded (two wasm calls per message)",
        "store: the delivery's writes, routed, and its one commit",
    ];
    let stages = names
        .into_iter()
        .zip(times)
        .map(|(name, time)| Stage { name, time })
        .collect();
    Ok((stages, composed))
}
