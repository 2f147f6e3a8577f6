//! Configured connectors: one plugin instance per (tenant, connector), and what the host
//! does around its calls: storing what a webhook or a poll produced before acknowledging
//! it, turning failures into answers a platform understands, and supervising the plugin.
//!
//! ## Supervision
//!
//! A call that traps, runs past its deadline, exceeds its memory or an output cap is a
//! *fault* ([`Error::Fault`]): it names the plugin and version, the instance is discarded
//! and the next call gets a fresh one. Faults in a row are counted per connector:
//!
//! ```text
//!  closed ──fault──► closed (retried at once, fresh instance)
//!         ──fault──► backing off: calls refused for fault_backoff, doubling per fault
//!         ── … ────► open after circuit_open_after faults: refused until an admin resets
//!  any answer from the plugin (a result or its own error) closes the circuit again
//! ```
//!
//! Refused calls fail fast with [`Error::Unavailable`]; a webhook delivery is answered 503
//! with `Retry-After`, so the platform delivers it again later; polling pauses (the poller
//! keeps its schedule, each tick is refused without calling the plugin). Nothing in flight
//! is lost: a failed or refused poll keeps the account's cursor, and a failed webhook is
//! never acknowledged. Only faults count: a plugin's own error (a bad signature, a platform
//! outage) means the plugin is working, so it resets the count.
//!
//! [`Host::connector_health`](crate::Host::connector_health) shows each connector's
//! [`ConnectorHealth`]; [`Host::reset_connector`](crate::Host::reset_connector) closes the
//! circuit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::capabilities::Grants;
use crate::clock::now_ms;
use crate::error::{Error, PluginFailure, PluginId};
use crate::runtime::{CallNotes, ChannelInstance, PluginLimits};
use crate::store::{Ingested, Store};
use crate::types::{ConnectorConfig, WebhookRequest, WebhookResponse};

/// Tenant used when a deployment does not mention tenants.
pub const DEFAULT_TENANT: &str = "default";

/// One connector as the admin configured it.
#[derive(Clone, Debug)]
pub struct ConnectorSpec {
    /// Tenant that owns it. Default: [`DEFAULT_TENANT`].
    pub tenant: String,
    /// Name, unique per tenant; the webhook route and the stored channel name
    /// (`twitter`, `facebook-tim`).
    pub name: String,
    /// The plugin component.
    pub plugin: PathBuf,
    /// Settings and accounts (credentials by name only).
    pub config: ConnectorConfig,
    /// What the plugin may use: hosts, credentials, secrets. Default: nothing.
    pub grants: Grants,
    /// Limits of its calls.
    pub limits: PluginLimits,
    /// How often to poll each account; `None` when the connector only gets webhooks.
    pub poll_interval: Option<Duration>,
    /// Brand of each account (account id → brand), for routing by brand.
    pub brands: std::collections::BTreeMap<String, String>,
}

impl ConnectorSpec {
    /// A connector of the default tenant with no grants, default limits and no polling.
    pub fn new(
        name: impl Into<String>,
        plugin: impl Into<PathBuf>,
        config: ConnectorConfig,
    ) -> Self {
        ConnectorSpec {
            tenant: DEFAULT_TENANT.to_string(),
            name: name.into(),
            plugin: plugin.into(),
            config,
            grants: Grants::default(),
            limits: PluginLimits {
                call_deadline: Duration::from_secs(5),
                ..PluginLimits::default()
            },
            poll_interval: None,
            brands: std::collections::BTreeMap::new(),
        }
    }
}

/// A running connector.
pub(crate) struct Connector {
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) plugin: PluginId,
    pub(crate) accounts: Vec<String>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) brands: std::collections::BTreeMap<String, String>,
    instance: Mutex<ChannelInstance>,
    /// Never held across an `await`, so health is readable while a call runs.
    supervisor: std::sync::Mutex<Supervisor>,
}

/// What one poll of one account did.
#[derive(Clone, Debug, Serialize)]
pub struct PollReport {
    /// The account.
    pub account: String,
    /// Messages stored (duplicates excluded).
    pub stored: usize,
    /// Messages already stored before.
    pub duplicates: usize,
    /// The failure, if the poll failed or was refused.
    pub error: Option<String>,
}

/// Whether a connector's calls go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Circuit {
    /// Calls go through.
    Closed,
    /// Calls are refused until [`ConnectorHealth::retry_at_ms`]; then one is tried.
    BackingOff,
    /// Calls are refused until an admin resets the connector.
    Open,
}

/// Something that happened to a connector, with when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// When (milliseconds since the epoch).
    pub at_ms: u64,
    /// What, naming the plugin and its version.
    pub message: String,
}

/// How a connector is doing, for admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectorHealth {
    /// Tenant.
    pub tenant: String,
    /// Connector name.
    pub connector: String,
    /// Its plugin.
    pub plugin: PluginId,
    /// Whether calls go through.
    pub circuit: Circuit,
    /// Faults in a row (reset by any answer from the plugin, or by an admin).
    pub consecutive_faults: u32,
    /// Faults since the host started.
    pub faults: u64,
    /// Calls refused without reaching the plugin (backing off or open).
    pub refused_calls: u64,
    /// While backing off: when the next call will be tried.
    pub retry_at_ms: Option<u64>,
    /// While open: since when.
    pub opened_at_ms: Option<u64>,
    /// The last fault.
    pub last_fault: Option<Incident>,
    /// Wasm instances started so far (1 + replacements).
    pub instances_started: u64,
    /// Capability requests the host refused (host off the allow-list, credential or
    /// secret not granted).
    pub denials: u64,
    /// The last refused request.
    pub last_denial: Option<Incident>,
    /// Log lines dropped over the per-call log budget.
    pub log_lines_dropped: u64,
    /// The last call that wrote more log than its budget.
    pub last_log_overflow: Option<Incident>,
}

/// Fault counting, backoff and the circuit of one connector.
#[derive(Debug)]
struct Supervisor {
    open_after: u32,
    limits: PluginLimits,
    consecutive: u32,
    faults: u64,
    refused: u64,
    /// While backing off: when calls may go through again (monotonic, and for display).
    retry_at: Option<(Instant, u64)>,
    opened_at_ms: Option<u64>,
    last_fault: Option<Incident>,
    instances_started: u64,
    denials: u64,
    last_denial: Option<Incident>,
    log_lines_dropped: u64,
    last_log_overflow: Option<Incident>,
}

impl Supervisor {
    fn new(limits: &PluginLimits) -> Self {
        Supervisor {
            open_after: limits.circuit_open_after.max(1),
            limits: limits.clone(),
            consecutive: 0,
            faults: 0,
            refused: 0,
            retry_at: None,
            opened_at_ms: None,
            last_fault: None,
            instances_started: 0,
            denials: 0,
            last_denial: None,
            log_lines_dropped: 0,
            last_log_overflow: None,
        }
    }

    /// `Err` (reason, retry after ms) when calls are refused right now; counts the refusal.
    fn admit(&mut self) -> Result<(), (String, Option<u64>)> {
        if self.opened_at_ms.is_some() {
            self.refused += 1;
            return Err((
                format!(
                    "its circuit is open after {} consecutive faults (last: {}); an admin \
                     must reset it",
                    self.consecutive,
                    self.last_fault
                        .as_ref()
                        .map_or("unknown", |f| f.message.as_str())
                ),
                None,
            ));
        }
        if let Some((until, _)) = self.retry_at {
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                self.refused += 1;
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                return Err((
                    format!(
                        "backing off after {} consecutive faults; next attempt in {ms} ms",
                        self.consecutive
                    ),
                    Some(ms),
                ));
            }
        }
        Ok(())
    }

    /// Counts a call's outcome; returns what changed, for the log.
    fn record<T>(&mut self, result: &Result<T, Error>) -> Option<Transition> {
        let Err(error @ Error::Fault { .. }) = result else {
            // The plugin answered (with a result or its own error): it works.
            let recovered = self.consecutive > 0;
            self.consecutive = 0;
            self.retry_at = None;
            return recovered.then_some(Transition::Recovered);
        };
        self.consecutive = self.consecutive.saturating_add(1);
        self.faults += 1;
        let now = now_ms();
        self.last_fault = Some(Incident {
            at_ms: now,
            message: error.to_string(),
        });
        if self.consecutive >= self.open_after {
            self.retry_at = None;
            self.opened_at_ms = Some(now);
            return Some(Transition::Opened);
        }
        let wait = self.limits.backoff_after(self.consecutive);
        if wait.is_zero() {
            return None;
        }
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.retry_at = Some((Instant::now() + wait, now.saturating_add(wait_ms)));
        Some(Transition::BackingOff(wait))
    }

    fn absorb(&mut self, notes: CallNotes, instances_started: u64) {
        self.instances_started = instances_started;
        let now = now_ms();
        self.denials += notes.denials;
        self.log_lines_dropped += notes.log_lines_dropped;
        if let Some(message) = notes.last_denial {
            self.last_denial = Some(Incident {
                at_ms: now,
                message,
            });
        }
        if let Some(message) = notes.last_log_overflow {
            self.last_log_overflow = Some(Incident {
                at_ms: now,
                message,
            });
        }
    }

    fn circuit(&self) -> Circuit {
        if self.opened_at_ms.is_some() {
            Circuit::Open
        } else if self
            .retry_at
            .is_some_and(|(until, _)| until > Instant::now())
        {
            Circuit::BackingOff
        } else {
            Circuit::Closed
        }
    }

    fn reset(&mut self) {
        self.consecutive = 0;
        self.retry_at = None;
        self.opened_at_ms = None;
    }
}

/// A change of a connector's circuit worth a log line.
enum Transition {
    Recovered,
    BackingOff(Duration),
    Opened,
}

impl Connector {
    pub(crate) fn new(spec: &ConnectorSpec, instance: ChannelInstance) -> Self {
        Connector {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            plugin: instance.id().clone(),
            accounts: spec.config.accounts.iter().map(|a| a.id.clone()).collect(),
            poll_interval: spec.poll_interval,
            brands: spec.brands.clone(),
            supervisor: std::sync::Mutex::new(Supervisor::new(&spec.limits)),
            instance: Mutex::new(instance),
        }
    }

    /// Instantiates and configures the plugin now, so a bad config fails at start-up.
    pub(crate) async fn ready(&self) -> Result<(), Error> {
        let mut instance = self.instance.lock().await;
        let result = instance.ready().await;
        self.observe(&mut instance, &result);
        result
    }

    fn supervisor(&self) -> std::sync::MutexGuard<'_, Supervisor> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters stay usable.
        self.supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses fast while the connector backs off or its circuit is open.
    fn admit(&self) -> Result<(), Error> {
        self.supervisor()
            .admit()
            .map_err(|(reason, retry_after_ms)| Error::Unavailable {
                connector: self.name.clone(),
                plugin: self.plugin.clone(),
                reason,
                retry_after_ms,
            })
    }

    /// Counts a call's outcome and collects the instance's notes.
    fn observe<T>(&self, instance: &mut ChannelInstance, result: &Result<T, Error>) {
        let mut supervisor = self.supervisor();
        supervisor.absorb(instance.take_notes(), instance.instances_started());
        let transition = supervisor.record(result);
        let consecutive = supervisor.consecutive;
        drop(supervisor);
        let (tenant, connector, plugin) = (&self.tenant, &self.name, &self.plugin);
        match transition {
            Some(Transition::Recovered) => tracing::info!(
                tenant, connector, %plugin, "plugin answered again after {consecutive} faults"
            ),
            Some(Transition::BackingOff(wait)) => tracing::warn!(
                tenant, connector, %plugin,
                "{consecutive} consecutive faults; calls refused for {} ms", wait.as_millis()
            ),
            Some(Transition::Opened) => tracing::error!(
                tenant, connector, %plugin,
                "circuit opened after {consecutive} consecutive faults; calls refused until an admin resets the connector"
            ),
            None => {}
        }
    }

    /// How the connector is doing.
    pub(crate) fn health(&self) -> ConnectorHealth {
        let s = self.supervisor();
        ConnectorHealth {
            tenant: self.tenant.clone(),
            connector: self.name.clone(),
            plugin: self.plugin.clone(),
            circuit: s.circuit(),
            consecutive_faults: s.consecutive,
            faults: s.faults,
            refused_calls: s.refused,
            retry_at_ms: s.retry_at.map(|(_, at)| at),
            opened_at_ms: s.opened_at_ms,
            last_fault: s.last_fault.clone(),
            instances_started: s.instances_started,
            denials: s.denials,
            last_denial: s.last_denial.clone(),
            log_lines_dropped: s.log_lines_dropped,
            last_log_overflow: s.last_log_overflow.clone(),
        }
    }

    /// Closes the circuit and forgets the faults in a row; the next call goes through
    /// (on a fresh instance, since a fault already discarded the old one).
    pub(crate) fn reset(&self) -> ConnectorHealth {
        self.supervisor().reset();
        tracing::info!(tenant = %self.tenant, connector = %self.name, plugin = %self.plugin, "circuit reset by an admin");
        self.health()
    }

    /// Runs a delivery through the plugin and stores its messages; the platform's answer
    /// is returned only once they are committed. Failures become answers that make the
    /// platform retry (5xx) or give up (4xx) as appropriate, so nothing acknowledged is lost.
    pub(crate) async fn deliver(
        &self,
        store: &Store,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let outcome = {
            let mut instance = self.instance.lock().await;
            match self.admit() {
                Ok(()) => {
                    let outcome = instance.handle_webhook(request).await;
                    self.observe(&mut instance, &outcome);
                    outcome
                }
                Err(refused) => Err(refused),
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Error::Plugin {
                failure: PluginFailure::InvalidInput { detail },
                ..
            }) => {
                tracing::warn!(tenant = %self.tenant, connector = %self.name, plugin = %self.plugin, "rejected webhook: {detail}");
                return (error_response(400, &detail), Vec::new());
            }
            Err(Error::Unavailable { retry_after_ms, .. }) => {
                tracing::debug!(tenant = %self.tenant, connector = %self.name, "webhook refused: connector not taking calls");
                // Platforms retry 5xx answers; `Retry-After` is a hint in whole seconds.
                let seconds = retry_after_ms.map_or(60, |ms| ms.div_ceil(1000).max(1));
                let mut response = error_response(503, "temporarily unavailable, retry later");
                response
                    .headers
                    .push(("retry-after".to_string(), seconds.to_string()));
                return (response, Vec::new());
            }
            Err(e) => {
                tracing::error!(tenant = %self.tenant, connector = %self.name, "webhook not processed: {e}");
                return (
                    error_response(503, "not processed, retry later"),
                    Vec::new(),
                );
            }
        };
        if outcome.response.status >= 300 || outcome.messages.is_empty() {
            if outcome.response.status >= 400 {
                tracing::warn!(
                    tenant = %self.tenant, connector = %self.name, status = outcome.response.status,
                    "plugin {} refused a webhook delivery", self.plugin
                );
            }
            return (outcome.response, Vec::new());
        }
        match store
            .ingest(&self.tenant, &self.name, &outcome.messages)
            .await
        {
            Ok(ingested) => (outcome.response, ingested),
            Err(e) => {
                tracing::error!(tenant = %self.tenant, connector = %self.name, "storing webhook messages failed: {e:#}");
                (error_response(503, "not stored, retry later"), Vec::new())
            }
        }
    }

    /// Polls every account once, storing messages and cursors together. A failed or
    /// refused poll leaves the account's cursor where it was, so the next successful poll
    /// fetches the same messages again.
    pub(crate) async fn poll_all(&self, store: &Store) -> (Vec<PollReport>, Vec<Ingested>) {
        let mut reports = Vec::new();
        let mut all = Vec::new();
        for account in &self.accounts {
            let mut report = PollReport {
                account: account.clone(),
                stored: 0,
                duplicates: 0,
                error: None,
            };
            if let Err(refused) = self.admit() {
                tracing::debug!(tenant = %self.tenant, connector = %self.name, account, "poll skipped: {refused}");
                report.error = Some(refused.to_string());
                reports.push(report);
                continue;
            }
            let cursor = match store.cursor(&self.tenant, &self.name, account).await {
                Ok(cursor) => cursor,
                Err(e) => {
                    report.error = Some(format!("reading the cursor: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let polled = {
                let mut instance = self.instance.lock().await;
                match self.admit() {
                    Ok(()) => {
                        let polled = instance.poll(account, cursor.as_deref()).await;
                        self.observe(&mut instance, &polled);
                        polled
                    }
                    Err(refused) => Err(refused),
                }
            };
            match polled {
                Ok(result) => {
                    match store
                        .ingest_polled(
                            &self.tenant,
                            &self.name,
                            account,
                            &result.messages,
                            result.cursor.as_deref(),
                        )
                        .await
                    {
                        Ok(ingested) => {
                            report.duplicates = ingested.iter().filter(|i| i.duplicate).count();
                            report.stored = ingested.len() - report.duplicates;
                            all.extend(ingested);
                        }
                        Err(e) => report.error = Some(format!("storing: {e:#}")),
                    }
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            if let Some(error) = &report.error {
                tracing::warn!(tenant = %self.tenant, connector = %self.name, account, "poll failed: {error}");
            }
            reports.push(report);
        }
        (reports, all)
    }

    /// Sends through the plugin; refused fast while the connector backs off or is open.
    pub(crate) async fn send(
        &self,
        message: crate::types::OutboundMessage,
    ) -> Result<crate::types::Sent, Error> {
        let mut instance = self.instance.lock().await;
        self.admit()?;
        let sent = instance.send(message).await;
        self.observe(&mut instance, &sent);
        sent
    }
}

fn error_response(status: u16, message: &str) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    }
}
