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
//! outage) means the plugin is working, so it resets the count; a result refused by policy
//! (over an output cap, such as an oversized batch the platform keeps redelivering) is
//! counted in `faults` and shown as the last fault, but never moves the circuit.
//!
//! [`Host::connector_health`](crate::Host::connector_health) shows each connector's
//! [`ConnectorHealth`]; [`Host::reset_connector`](crate::Host::reset_connector) closes the
//! circuit.
//!
//! ## Hot swap
//!
//! The plugin version a connector runs sits in a swappable slot: every call first clones
//! the slot's `Arc`, then works on that version's instance. A reload
//! ([`Host::reload_connector`](crate::Host::reload_connector)) loads and compiles the file
//! anew, checks its world and contract, instantiates it and runs its `describe` and
//! `configure` with the connector's settings, all *beside* the running version; only then
//! does it replace the slot. Calls that started before the switch finish on the old
//! version (it is dropped when the last one ends), calls after it run on the new one: each
//! call runs exactly once, so nothing is lost or duplicated. A candidate that fails any
//! step is dropped, the old version keeps serving, and the reason stays visible in
//! [`ConnectorHealth::last_reload_error`]. A successful swap closes the circuit.
//!
//! ## Disabled connectors
//!
//! A disabled connector ([`Host::set_connector_enabled`](crate::Host::set_connector_enabled),
//! or `enabled = false` in centralino.toml) keeps its plugin loaded but takes no calls: its
//! webhooks are answered 503 with `Retry-After` (the platform delivers them again later),
//! its polls are skipped (cursors stay), and replies wait in the outbox, neither sent nor
//! counted as failed, until it is enabled again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::capabilities::Grants;
use crate::clock::now_ms;
use crate::error::{Error, Fault, PluginFailure, PluginId};
use crate::runtime::{CallNotes, ChannelInstance, ChannelPlugin, PluginLimits, Runtime};
use crate::store::leases::{Acquired, LeaseHolder};
use crate::store::{Ingested, Store};
use crate::types::{ConnectorConfig, WebhookRequest, WebhookResponse};

/// Tenant used when a deployment does not mention tenants.
pub const DEFAULT_TENANT: &str = "default";

/// One connector as the admin configured it.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Whether it takes calls from the start. A disabled connector is loaded (its plugin
    /// compiled) but answers webhooks 503, skips polls and keeps replies queued until
    /// enabled. Default: `true`.
    pub enabled: bool,
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
            enabled: true,
        }
    }
}

/// A running connector.
pub(crate) struct Connector {
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) accounts: Vec<String>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) brands: std::collections::BTreeMap<String, String>,
    /// The plugin version serving now. Read (and the `Arc` cloned) at the start of every
    /// call; replaced whole by a reload. Never held across an `await`.
    active: std::sync::RwLock<Arc<Active>>,
    enabled: AtomicBool,
    /// One reload at a time per connector.
    reloading: Mutex<()>,
    /// Never held across an `await`, so health is readable while a call runs.
    supervisor: std::sync::Mutex<Supervisor>,
    /// The WARN line for refused webhook deliveries: anyone can send refusals by the
    /// thousand, so a line at most per interval, counting the others.
    refusals: crate::throttle::Throttle,
}

/// One loaded version of a connector's plugin and its instance.
struct Active {
    plugin: PluginId,
    /// What it was built from: file, settings, grants, limits.
    spec: ConnectorSpec,
    sha256: String,
    loaded_at_ms: u64,
    instance: Mutex<ChannelInstance>,
    /// Instances this version had started when last observed (for the running total).
    started_seen: AtomicU64,
}

impl Active {
    fn new(spec: ConnectorSpec, plugin: &ChannelPlugin) -> Self {
        let instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        Active {
            plugin: plugin.id().clone(),
            sha256: plugin.info().sha256.clone(),
            loaded_at_ms: now_ms(),
            spec,
            instance: Mutex::new(instance),
            started_seen: AtomicU64::new(0),
        }
    }
}

/// A new version of a connector's plugin, compiled, checked and configured, not yet
/// serving.
pub(crate) struct Candidate {
    next: Active,
    notes: CallNotes,
    started: Instant,
}

/// What a reload of a connector's plugin did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Tenant.
    pub tenant: String,
    /// Connector name.
    pub connector: String,
    /// Whether the new version now takes the calls.
    pub swapped: bool,
    /// The version serving before the reload.
    pub previous: PluginId,
    /// The version serving now (the old one when the reload was refused).
    pub plugin: PluginId,
    /// SHA-256 of the file serving now.
    pub sha256: String,
    /// Why the candidate was refused; it names the file and, when it could be read, the
    /// candidate plugin and version.
    pub error: Option<String>,
    /// Loading, compiling, checking and switching, in milliseconds.
    pub took_ms: u64,
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
    /// The host holding the account's polling lease, when another host polls it (this
    /// one then did not); see [`crate::store::leases`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leased_to: Option<String>,
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
    /// Whether it takes calls (an admin may disable it).
    pub enabled: bool,
    /// The component file serving now.
    pub plugin_file: PathBuf,
    /// SHA-256 of that file as it was loaded.
    pub plugin_sha256: String,
    /// When that version was loaded (milliseconds since the epoch).
    pub loaded_at_ms: u64,
    /// Successful reloads (hot swaps) since the host started.
    pub reloads: u64,
    /// Reloads refused (the candidate failed to load, compile, check or configure).
    pub reload_failures: u64,
    /// The last successful swap: from which version to which.
    pub last_reload: Option<Incident>,
    /// Why the last reload was refused, if the last reload attempt was refused; cleared by
    /// a successful one.
    pub last_reload_error: Option<Incident>,
    /// Calls that reached the plugin, by the version that served them (`twitter@0.2.0`),
    /// since the host started: during and after a swap, which version did the work.
    pub calls_by_version: std::collections::BTreeMap<String, u64>,
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
    reloads: u64,
    reload_failures: u64,
    last_reload: Option<Incident>,
    last_reload_error: Option<Incident>,
    calls_by_version: std::collections::BTreeMap<String, u64>,
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
            reloads: 0,
            reload_failures: 0,
            last_reload: None,
            last_reload_error: None,
            calls_by_version: std::collections::BTreeMap::new(),
        }
    }

    /// A new version took over: its limits apply, and the circuit closes (the new version
    /// just proved it starts and configures).
    fn swapped(&mut self, limits: &PluginLimits, message: String) {
        self.open_after = limits.circuit_open_after.max(1);
        self.limits = limits.clone();
        self.reset();
        self.reloads += 1;
        self.last_reload = Some(Incident {
            at_ms: now_ms(),
            message,
        });
        self.last_reload_error = None;
    }

    fn reload_refused(&mut self, message: String) {
        self.reload_failures += 1;
        self.last_reload_error = Some(Incident {
            at_ms: now_ms(),
            message,
        });
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
        // A result refused by policy (over an output cap) is counted and shown, but it is
        // not the plugin failing: the same oversized delivery, redelivered by the platform
        // again and again, must not open the circuit for every good delivery after it.
        if let Err(
            error @ Error::Fault {
                fault: Fault::OutputLimit,
                ..
            },
        ) = result
        {
            self.faults += 1;
            self.last_fault = Some(Incident {
                at_ms: now_ms(),
                message: error.to_string(),
            });
            return None;
        }
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
        let at = Instant::now();
        self.retry_at = Some((
            at.checked_add(wait).unwrap_or(at),
            now.saturating_add(wait_ms),
        ));
        Some(Transition::BackingOff(wait))
    }

    fn absorb(&mut self, notes: CallNotes, new_instances: u64) {
        self.instances_started += new_instances;
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

/// `Retry-After` of a webhook refused because its connector is disabled: platforms retry
/// 5xx answers, so the delivery comes back once an admin enables the connector.
pub(crate) const DISABLED_RETRY_AFTER_MS: u64 = 30_000;

impl Connector {
    /// A connector serving `plugin` (already loaded) with `spec`'s settings.
    pub(crate) fn new(spec: &ConnectorSpec, plugin: &ChannelPlugin) -> Self {
        Connector {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            accounts: spec.config.accounts.iter().map(|a| a.id.clone()).collect(),
            poll_interval: spec.poll_interval,
            brands: spec.brands.clone(),
            supervisor: std::sync::Mutex::new(Supervisor::new(&spec.limits)),
            active: std::sync::RwLock::new(Arc::new(Active::new(spec.clone(), plugin))),
            enabled: AtomicBool::new(spec.enabled),
            reloading: Mutex::new(()),
            refusals: crate::throttle::Throttle::new(crate::throttle::LOG_EVERY),
        }
    }

    /// The version serving now. Calls clone it first and keep their clone to the end.
    fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The plugin serving now.
    pub(crate) fn plugin(&self) -> PluginId {
        self.active().plugin.clone()
    }

    /// The spec the serving version was built from.
    pub(crate) fn spec(&self) -> ConnectorSpec {
        self.active().spec.clone()
    }

    /// Whether the connector takes calls.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Instantiates and configures the plugin now, so a bad config fails at start-up. A
    /// disabled connector is configured when it is enabled.
    pub(crate) async fn ready(&self) -> Result<(), Error> {
        if !self.is_enabled() {
            return Ok(());
        }
        self.configure(&self.active()).await
    }

    /// Instantiates and configures `active`'s plugin (a call of its own, supervised).
    async fn configure(&self, active: &Active) -> Result<(), Error> {
        let span = self.span(active, "configure");
        async {
            let mut instance = active.instance.lock().await;
            let result = instance.ready().await;
            self.observe(active, &mut instance, &result);
            result
        }
        .instrument(span)
        .await
    }

    /// The span of one plugin call: which plugin and version, for which connector.
    fn span(&self, active: &Active, function: &'static str) -> tracing::Span {
        tracing::info_span!(
            "plugin_call",
            tenant = %self.tenant,
            connector = %self.name,
            plugin = %active.plugin.name,
            version = %active.plugin.version,
            function,
        )
    }

    fn supervisor(&self) -> std::sync::MutexGuard<'_, Supervisor> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters stay usable.
        self.supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses fast while the connector is disabled, backs off or its circuit is open.
    fn admit(&self, active: &Active) -> Result<(), Error> {
        if !self.is_enabled() {
            return Err(Error::Unavailable {
                connector: self.name.clone(),
                plugin: active.plugin.clone(),
                reason: "disabled by an admin".to_string(),
                retry_after_ms: Some(DISABLED_RETRY_AFTER_MS),
            });
        }
        self.supervisor()
            .admit()
            .map_err(|(reason, retry_after_ms)| Error::Unavailable {
                connector: self.name.clone(),
                plugin: active.plugin.clone(),
                reason,
                retry_after_ms,
            })
    }

    /// Counts a call's outcome and collects the instance's notes.
    fn observe<T>(
        &self,
        active: &Active,
        instance: &mut ChannelInstance,
        result: &Result<T, Error>,
    ) {
        let started = instance.instances_started();
        let new_instances =
            started.saturating_sub(active.started_seen.swap(started, Ordering::Relaxed));
        let mut supervisor = self.supervisor();
        supervisor.absorb(instance.take_notes(), new_instances);
        *supervisor
            .calls_by_version
            .entry(active.plugin.to_string())
            .or_default() += 1;
        let transition = supervisor.record(result);
        let consecutive = supervisor.consecutive;
        drop(supervisor);
        let (tenant, connector, plugin) = (&self.tenant, &self.name, &active.plugin);
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
        let active = self.active();
        let s = self.supervisor();
        ConnectorHealth {
            tenant: self.tenant.clone(),
            connector: self.name.clone(),
            plugin: active.plugin.clone(),
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
            enabled: self.is_enabled(),
            plugin_file: active.spec.plugin.clone(),
            plugin_sha256: active.sha256.clone(),
            loaded_at_ms: active.loaded_at_ms,
            reloads: s.reloads,
            reload_failures: s.reload_failures,
            last_reload: s.last_reload.clone(),
            last_reload_error: s.last_reload_error.clone(),
            calls_by_version: s.calls_by_version.clone(),
        }
    }

    /// Closes the circuit and forgets the faults in a row; the next call goes through
    /// (on a fresh instance, since a fault already discarded the old one).
    pub(crate) fn reset(&self) -> ConnectorHealth {
        self.supervisor().reset();
        tracing::info!(tenant = %self.tenant, connector = %self.name, plugin = %self.plugin(), "circuit reset by an admin");
        self.health()
    }

    /// Enables or disables the connector. Enabling a connector whose plugin never started
    /// (disabled from the start) configures it first; if that fails it stays disabled and
    /// the error says why. Disabling lets calls already running finish.
    pub(crate) async fn set_enabled(&self, enabled: bool) -> Result<ConnectorHealth, Error> {
        let _one = self.reloading.lock().await;
        if enabled && !self.is_enabled() {
            self.configure(&self.active()).await.map_err(|e| {
                Error::Refused(format!(
                    "connector `{}` of tenant `{}` stays disabled: {e}",
                    self.name, self.tenant
                ))
            })?;
        }
        let was = self.enabled.swap(enabled, Ordering::SeqCst);
        if was != enabled {
            let state = if enabled { "enabled" } else { "disabled" };
            tracing::info!(tenant = %self.tenant, connector = %self.name, plugin = %self.plugin(), "connector {state} by an admin");
        }
        Ok(self.health())
    }

    /// Loads `spec`'s plugin (or the serving version's file and settings again, when
    /// `None`) beside the running version, checks and configures it, then switches new
    /// calls to it; calls already running finish on the old version. A candidate that
    /// fails any step is dropped and the old version keeps serving.
    pub(crate) async fn reload(
        &self,
        runtime: &Runtime,
        spec: Option<ConnectorSpec>,
    ) -> ReloadReport {
        let _one = self.reloading.lock().await;
        match self.candidate(runtime, spec).await {
            Ok(candidate) => self.install(candidate),
            Err(refused) => refused,
        }
    }

    /// A candidate version, ready to [`install`](Self::install); a refusal is recorded in
    /// the connector's health and returned as the report.
    pub(crate) async fn candidate(
        &self,
        runtime: &Runtime,
        spec: Option<ConnectorSpec>,
    ) -> Result<Candidate, ReloadReport> {
        let started = Instant::now();
        let current = self.active();
        let spec = spec.unwrap_or_else(|| current.spec.clone());
        match self.prepare(runtime, &spec).await {
            Ok((next, notes)) => Ok(Candidate {
                next,
                notes,
                started,
            }),
            Err(error) => {
                let previous = current.plugin.clone();
                let message = format!(
                    "reload of `{}` refused, {previous} keeps serving: {error}",
                    spec.plugin.display()
                );
                self.supervisor().reload_refused(message.clone());
                let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(tenant = %self.tenant, connector = %self.name, plugin = %previous, took_ms, "{message}");
                Err(ReloadReport {
                    tenant: self.tenant.clone(),
                    connector: self.name.clone(),
                    swapped: false,
                    previous: previous.clone(),
                    plugin: previous,
                    sha256: current.sha256.clone(),
                    error: Some(message),
                    took_ms,
                })
            }
        }
    }

    /// Switches new calls to a prepared candidate. Calls already running keep their
    /// version and finish on it; it is dropped after the last one.
    pub(crate) fn install(&self, candidate: Candidate) -> ReloadReport {
        let Candidate {
            next,
            notes,
            started,
        } = candidate;
        let next = Arc::new(next);
        let limits = next.spec.limits.clone();
        let previous = {
            let mut slot = self
                .active
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *slot, next.clone())
        };
        let message = format!(
            "{} (sha256 {}) replaced by {} (sha256 {}) from {}",
            previous.plugin,
            short(&previous.sha256),
            next.plugin,
            short(&next.sha256),
            next.spec.plugin.display()
        );
        let started_now = next.started_seen.load(Ordering::Relaxed);
        {
            let mut supervisor = self.supervisor();
            supervisor.absorb(notes, started_now);
            supervisor.swapped(&limits, message.clone());
        }
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            tenant = %self.tenant, connector = %self.name, from = %previous.plugin,
            to = %next.plugin, took_ms, "plugin swapped: {message}"
        );
        ReloadReport {
            tenant: self.tenant.clone(),
            connector: self.name.clone(),
            swapped: true,
            previous: previous.plugin.clone(),
            plugin: next.plugin.clone(),
            sha256: next.sha256.clone(),
            error: None,
            took_ms,
        }
    }

    /// A candidate version: compiled off the async threads, instantiated and configured.
    async fn prepare(
        &self,
        runtime: &Runtime,
        spec: &ConnectorSpec,
    ) -> Result<(Active, CallNotes), Error> {
        if spec.tenant != self.tenant || spec.name != self.name {
            return Err(Error::Refused(format!(
                "the spec is connector `{}` of tenant `{}`",
                spec.name, spec.tenant
            )));
        }
        let accounts: Vec<&str> = spec.config.accounts.iter().map(|a| a.id.as_str()).collect();
        if accounts != self.accounts.iter().map(String::as_str).collect::<Vec<_>>()
            || spec.brands != self.brands
            || spec.poll_interval != self.poll_interval
        {
            return Err(Error::Refused(
                "its accounts, brands or poll interval changed, which takes a restart of the host"
                    .to_string(),
            ));
        }
        let path = spec.plugin.clone();
        let loader = runtime.clone();
        let plugin = tokio::task::spawn_blocking(move || loader.load_channel_quietly(&path))
            .await
            .map_err(|e| anyhow::anyhow!("compiling the plugin did not finish: {e}"))??;
        let candidate = Active::new(spec.clone(), &plugin);
        let span = self.span(&candidate, "configure");
        let mut instance = candidate.instance.lock().await;
        instance.ready().instrument(span).await?;
        if self.poll_interval.is_some() {
            let polls = instance
                .description()
                .is_some_and(|d| d.capabilities.contains(&crate::types::Capability::Polling));
            if !polls {
                return Err(Error::Refused(format!(
                    "plugin {} does not poll, and this connector polls its accounts",
                    candidate.plugin
                )));
            }
        }
        candidate
            .started_seen
            .store(instance.instances_started(), Ordering::Relaxed);
        let notes = instance.take_notes();
        drop(instance);
        Ok((candidate, notes))
    }

    /// Runs a delivery through the plugin and stores its messages; the platform's answer
    /// is returned only once they are committed. Failures become answers that make the
    /// platform retry (5xx) or give up (4xx) as appropriate, so nothing acknowledged is lost.
    pub(crate) async fn deliver(
        &self,
        store: &Store,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let active = self.active();
        let plugin = &active.plugin;
        let span = self.span(&active, "handle-webhook");
        let outcome = async {
            let mut instance = active.instance.lock().await;
            match self.admit(&active) {
                Ok(()) => {
                    let outcome = instance.handle_webhook(request).await;
                    self.observe(&active, &mut instance, &outcome);
                    outcome
                }
                Err(refused) => Err(refused),
            }
        }
        .instrument(span)
        .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Error::Plugin {
                failure: PluginFailure::InvalidInput { detail },
                ..
            }) => {
                if let Some(held_back) = self.refusals.admit(std::time::Instant::now()) {
                    tracing::warn!(
                        tenant = %self.tenant, connector = %self.name, %plugin, held_back,
                        "rejected webhook: {detail} ({held_back} more refused since the last \
                         such line, not logged)"
                    );
                }
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
            if outcome.response.status >= 400
                && let Some(held_back) = self.refusals.admit(std::time::Instant::now())
            {
                tracing::warn!(
                    tenant = %self.tenant, connector = %self.name, status = outcome.response.status,
                    held_back,
                    "plugin {plugin} refused a webhook delivery ({held_back} more refused since \
                     the last such line, not logged; all are counted in \
                     centralino_webhooks_rejected_total)"
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
    ///
    /// Only accounts whose polling lease this host holds (or takes now) are polled, and a
    /// poll's messages and cursor are committed only if the lease is still this host's.
    pub(crate) async fn poll_all(
        &self,
        store: &Store,
        leases: &LeaseHolder,
    ) -> (Vec<PollReport>, Vec<Ingested>) {
        let mut reports = Vec::new();
        let mut all = Vec::new();
        for account in &self.accounts {
            let mut report = PollReport {
                account: account.clone(),
                stored: 0,
                duplicates: 0,
                error: None,
                leased_to: None,
            };
            let active = self.active();
            if let Err(refused) = self.admit(&active) {
                tracing::debug!(tenant = %self.tenant, connector = %self.name, account, "poll skipped: {refused}");
                report.error = Some(refused.to_string());
                reports.push(report);
                continue;
            }
            // Held until the commit, so a shutdown releases the leases after it.
            let Some(_polling) = leases.enter().await else {
                report.error = Some("the host is stopping".to_string());
                reports.push(report);
                continue;
            };
            let ttl = leases.ttl(self.poll_interval);
            let fence = match store
                .acquire_poll_lease(&self.tenant, &self.name, account, leases, ttl)
                .await
            {
                Ok(Acquired::Held(fence)) => fence,
                Ok(Acquired::Elsewhere(holder)) => {
                    tracing::trace!(tenant = %self.tenant, connector = %self.name, account, holder, "polled by another host");
                    report.leased_to = Some(holder);
                    reports.push(report);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, connector = %self.name, account, "poll skipped, no lease: {e:#}");
                    report.error = Some(format!("taking the polling lease: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let cursor = match store.cursor(&self.tenant, &self.name, account).await {
                Ok(cursor) => cursor,
                Err(e) => {
                    report.error = Some(format!("reading the cursor: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let span = self.span(&active, "poll");
            let polled = async {
                let mut instance = active.instance.lock().await;
                match self.admit(&active) {
                    Ok(()) => {
                        let polled = instance.poll(account, cursor.as_deref()).await;
                        self.observe(&active, &mut instance, &polled);
                        polled
                    }
                    Err(refused) => Err(refused),
                }
            }
            .instrument(span)
            .await;
            match polled {
                Ok(result) => {
                    match store
                        .ingest_polled_fenced(&fence, &result.messages, result.cursor.as_deref())
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

    /// Sends through the plugin; refused fast while the connector is disabled, backs off
    /// or is open.
    pub(crate) async fn send(
        &self,
        message: crate::types::OutboundMessage,
    ) -> Result<crate::types::Sent, Error> {
        let active = self.active();
        let span = self.span(&active, "send");
        async {
            let mut instance = active.instance.lock().await;
            self.admit(&active)?;
            let sent = instance.send(message).await;
            self.observe(&active, &mut instance, &sent);
            sent
        }
        .instrument(span)
        .await
    }
}

/// The start of a hash, enough to tell versions apart in a log line.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
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
