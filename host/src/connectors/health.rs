//! What admins see of a connector ([`ConnectorHealth`]) and how they close its circuit.

use std::path::PathBuf;

use serde::Serialize;

use super::Connector;
use crate::error::PluginId;
use crate::ids::{ConnectorId, TenantId};

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
#[non_exhaustive]
pub struct Incident {
    /// When (milliseconds since the epoch).
    pub at_ms: u64,
    /// What, naming the plugin and its version.
    pub message: String,
}

/// How a connector is doing, for admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectorHealth {
    /// Tenant.
    pub tenant: TenantId,
    /// Connector name.
    pub connector: ConnectorId,
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
    /// The last time the platform answered with another API version than the connector
    /// asked for (Graph's `facebook-api-version` header): the version asked for is retired
    /// or unavailable, and behaviour may have changed under the connector.
    pub api_version_served: Option<Incident>,
    /// The configured API version is past, or within 90 days of, its documented end of life
    /// (Graph's `api_version` setting; Meta's published dates).
    pub api_version_retirement: Option<String>,
    /// Platform events the plugin ignored on purpose since the host started, by the reason
    /// it gave (echo, own-post, an event kind it does not handle…); at most 32 reasons,
    /// the rest counted as `other`.
    pub ignored: std::collections::BTreeMap<String, u64>,
    /// Webhook deliveries the plugin rejected as invalid input (a bad signature answered
    /// by the plugin itself is not one: that is its answer, counted in the metrics).
    pub rejections: u64,
    /// The last such rejection, with the plugin's reason. The caller of the webhook is
    /// only told `invalid request`: the reason may name secrets or grants.
    pub last_rejection: Option<Incident>,
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

impl Connector {
    /// How the connector is doing.
    pub(crate) fn health(&self) -> ConnectorHealth {
        let active = self.active();
        let s = self.supervisor();
        ConnectorHealth {
            tenant: self.tenant.clone().into(),
            connector: self.name.clone().into(),
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
            api_version_served: s.api_version_served.clone(),
            api_version_retirement: crate::platform_versions::retirement(
                &active.plugin.name,
                &active.spec.config.settings,
                self.now_ms(),
            ),
            ignored: s.ignored.clone(),
            rejections: s.rejections,
            last_rejection: s.last_rejection.clone(),
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
}
