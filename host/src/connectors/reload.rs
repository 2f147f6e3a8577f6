//! Hot swap: a new version of a connector's plugin is loaded, compiled, checked and
//! configured beside the one serving ([`Candidate`]), then switched in for new calls
//! ([`Connector::install`]); calls already running finish on the old version.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use super::call::CallKind;
use super::{Active, Connector, ConnectorSpec};
use crate::error::{Error, PluginId};
use crate::ids::{ConnectorId, TenantId};
use crate::runtime::Runtime;

/// A new version of a connector's plugin, compiled, checked and configured, not yet
/// serving.
pub(crate) struct Candidate {
    next: Active,
    started: Instant,
}

/// What a reload of a connector's plugin did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Tenant.
    pub tenant: TenantId,
    /// Connector name.
    pub connector: ConnectorId,
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

impl Connector {
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
            Ok(next) => Ok(Candidate { next, started }),
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
                    tenant: self.tenant.clone().into(),
                    connector: self.name.clone().into(),
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
        let Candidate { mut next, started } = candidate;
        // The candidate's own instance, not shared yet: what its start-up noted (capability
        // requests refused, log dropped) and the instances it started join the health.
        let instance = next.instance.get_mut();
        let started_now = instance.instances_started();
        let notes = instance.take_notes();
        next.started_seen.store(started_now, Ordering::Relaxed);
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
            tenant: self.tenant.clone().into(),
            connector: self.name.clone().into(),
            swapped: true,
            previous: previous.plugin.clone(),
            plugin: next.plugin.clone(),
            sha256: next.sha256.clone(),
            error: None,
            took_ms,
        }
    }

    /// A candidate version: compiled off the async threads, instantiated and configured
    /// (a call of its own, neither refused nor counted: the version is not serving yet).
    async fn prepare(&self, runtime: &Runtime, spec: &ConnectorSpec) -> Result<Active, Error> {
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
        runtime
            .trust()
            .check_for_tenant(&spec.tenant, &spec.plugin, plugin.info())?;
        let candidate = Active::new(spec.clone(), &plugin, self.now_ms());
        let polls = self.poll_interval.is_some();
        let id = &candidate.plugin;
        self.call(
            &candidate,
            "configure",
            CallKind::Candidate,
            async |instance| {
                instance.ready().await?;
                let polling = instance
                    .description()
                    .is_some_and(|d| d.capabilities.contains(&crate::types::Capability::Polling));
                if polls && !polling {
                    return Err(Error::Refused(format!(
                        "plugin {id} does not poll, and this connector polls its accounts"
                    )));
                }
                Ok(())
            },
        )
        .await?;
        Ok(candidate)
    }
}

/// The start of a hash, enough to tell versions apart in a log line.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}
