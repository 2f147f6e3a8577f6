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
//!
//! ## Layout
//!
//! `spec` (what the admin configures), `supervisor` (fault counting and the circuit),
//! `health` (what admins see), `call` (the one way into the plugin: lock → admit → call →
//! observe), `webhook` and `poll` (storing what those calls return), `reload` (hot swap).

mod accounts;
mod call;
mod health;
mod poll;
mod reload;
mod spec;
mod supervisor;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

pub use health::{Circuit, ConnectorHealth, Incident};
pub use poll::{MAX_POLL_PAUSE, PollReport};
pub(crate) use reload::Candidate;
pub use reload::ReloadReport;
pub use spec::{ConnectorSpec, DEFAULT_TENANT};
pub(crate) use webhook::Normalised;

use crate::clock::Clock;
use crate::error::{Error, PluginId};
use crate::runtime::{ChannelInstance, ChannelPlugin};
use call::CallKind;
use supervisor::Supervisor;

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
    /// The host's clock (see [`crate::clock`]); the system clock without one.
    clock: Option<Arc<dyn Clock>>,
    /// Accounts the platform asked not to poll before a time (epoch ms), from the plugin's
    /// `next_poll_after_ms`; see `poll.rs`.
    poll_pauses: std::sync::Mutex<std::collections::HashMap<String, u64>>,
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
    /// The reply window the plugin declares ([`crate::windows`]).
    reply_window: Option<crate::windows::ReplyWindow>,
    /// What the host fetches inbound files with, under this version's grants.
    media: crate::runtime::MediaFetcher,
}

impl Active {
    fn new(spec: ConnectorSpec, plugin: &ChannelPlugin, now_ms: u64) -> Self {
        let instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        Active {
            media: instance.media_fetcher(),
            plugin: plugin.id().clone(),
            sha256: plugin.info().sha256.clone(),
            loaded_at_ms: now_ms,
            spec,
            instance: Mutex::new(instance),
            started_seen: AtomicU64::new(0),
            reply_window: plugin.info().reply_window.clone(),
        }
    }
}

impl Connector {
    /// A connector serving `plugin` (already loaded) with `spec`'s settings.
    pub(crate) fn new(
        spec: &ConnectorSpec,
        plugin: &ChannelPlugin,
        clock: Option<Arc<dyn Clock>>,
    ) -> Self {
        let now = crate::clock::read(clock.as_ref());
        Connector {
            tenant: spec.tenant.to_string(),
            name: spec.name.to_string(),
            accounts: spec.config.accounts.iter().map(|a| a.id.clone()).collect(),
            poll_interval: spec.poll_interval,
            brands: spec.brands.clone(),
            supervisor: std::sync::Mutex::new(Supervisor::new(&spec.limits, clock.clone())),
            active: std::sync::RwLock::new(Arc::new(Active::new(spec.clone(), plugin, now))),
            enabled: AtomicBool::new(spec.enabled),
            reloading: Mutex::new(()),
            refusals: crate::throttle::Throttle::new(crate::throttle::LOG_EVERY),
            clock,
            poll_pauses: std::sync::Mutex::default(),
        }
    }

    /// Now on the host's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        crate::clock::read(self.clock.as_ref())
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

    /// What the host fetches this connector's inbound files with (its grants, limits and
    /// rate-limit book).
    pub(crate) fn media_fetcher(&self) -> crate::runtime::MediaFetcher {
        self.active().media.clone()
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
        self.call(active, "configure", CallKind::Configure, async |instance| {
            Ok(instance.ready().await?)
        })
        .await
    }

    fn supervisor(&self) -> std::sync::MutexGuard<'_, Supervisor> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters stay usable.
        self.supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
}
