//! Reloading centralino.toml into a running host: `POST /admin/reload`,
//! `centralino reload`, or `SIGHUP` to `centralino run`.
//!
//! Two phases, so an invalid config changes nothing:
//!
//! 1. **check**: the file is read and checked as at start-up (errors name the file, the
//!    line, the key), its secrets resolved, every routing chain loaded and configured, and
//!    every connector whose plugin file, settings, grants or limits changed (or that is
//!    being enabled) gets a candidate version compiled, checked and configured beside the
//!    running one. Any failure: the error is returned and nothing changed.
//! 2. **apply**: candidates are swapped in (calls in flight finish on the old versions),
//!    connectors enabled or disabled, and each tenant's chains, offer timeout, reply rules
//!    and operators replaced in its running engine (conversations, the queue and
//!    assignments are kept).
//!
//! What cannot change live is listed in [`ConfigReload::restart_required`] and left as it
//! runs: addresses, the store, new connectors or tenants, a connector's accounts, brands
//! or poll interval. A connector removed from the file is disabled.

use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Config, ResolvedSecrets};
use crate::connectors::ReloadReport;
use crate::host::{RoutingReport, RoutingUpdate};
use crate::routing::PolicyChain;
use crate::runtime::Runtime;
use crate::{Error, Host};

/// What a config reload applied.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConfigReload {
    /// The file read.
    pub file: PathBuf,
    /// Connectors whose plugin was swapped (new file, settings, grants or limits).
    pub connectors: Vec<ReloadReport>,
    /// Connectors enabled (`tenant/name`).
    pub enabled: Vec<String>,
    /// Connectors disabled (`tenant/name`), including those removed from the file.
    pub disabled: Vec<String>,
    /// Tenants whose routing was replaced.
    pub routing: Vec<RoutingReport>,
    /// Changes left for a restart, each saying what and why.
    pub restart_required: Vec<String>,
}

/// Reloads one config file into the host started from it, remembering the config it
/// applied last (to tell which host settings changed).
#[derive(Debug)]
pub struct ConfigReloader {
    path: PathBuf,
    runtime: Runtime,
    current: tokio::sync::Mutex<Config>,
}

impl ConfigReloader {
    /// A reloader for the host started from `config`, loading plugins on `runtime`.
    pub fn new(config: Config, runtime: Runtime) -> Self {
        ConfigReloader {
            path: config.path.clone(),
            runtime,
            current: tokio::sync::Mutex::new(config),
        }
    }

    /// The file it reads.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reads the file again and applies it to `host`; one reload at a time. An invalid
    /// config is refused ([`Error::Refused`] with the same message `centralino check`
    /// prints) and nothing changes.
    pub async fn reload(&self, host: &Host) -> Result<ConfigReload, Error> {
        let mut current = self.current.lock().await;
        let attempt = async {
            let config = Config::load(&self.path).map_err(|e| Error::Refused(e.to_string()))?;
            let secrets = config
                .resolve_secrets()
                .map_err(|e| Error::Refused(e.to_string()))?;
            let report = config
                .apply_to(host, &self.runtime, &secrets, Some(&current))
                .await?;
            Ok::<_, Error>((config, report))
        };
        match attempt.await {
            Ok((config, report)) => {
                *current = config;
                host.count_config_reload(true);
                tracing::info!(
                    file = %self.path.display(),
                    swapped = report.connectors.len(),
                    routing = report.routing.len(),
                    restart_required = report.restart_required.len(),
                    "configuration reloaded"
                );
                for item in &report.restart_required {
                    tracing::warn!(file = %self.path.display(), "not applied until a restart: {item}");
                }
                Ok(report)
            }
            Err(error) => {
                host.count_config_reload(false);
                tracing::warn!(file = %self.path.display(), "configuration reload refused, nothing changed: {error}");
                Err(error)
            }
        }
    }
}

fn file_sha256(path: &std::path::Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
}

impl Config {
    /// Applies this config to `host` (see the [`ConfigReloader`] documentation): checks everything
    /// first and changes nothing when anything fails. `previous` is the config the host
    /// runs now, when known, to list host settings that only a restart applies.
    pub async fn apply_to(
        &self,
        host: &Host,
        runtime: &Runtime,
        secrets: &ResolvedSecrets,
        previous: Option<&Config>,
    ) -> Result<ConfigReload, Error> {
        let file = self.path.display().to_string();
        let mut report = ConfigReload {
            file: self.path.clone(),
            ..ConfigReload::default()
        };
        if let Some(previous) = previous {
            report.restart_required = host_changes(previous, self);
        }

        // Phase 1: check and prepare everything.
        let mut updates = Vec::new();
        for tenant in &self.tenants {
            match (&tenant.routing, host.has_routing(&tenant.id)) {
                (Some(plan), true) => {
                    let load =
                        |spec| PolicyChain::load(runtime, spec, &plan.plugin_dir, &plan.limits);
                    let chain = load(&plan.chain).await.map_err(|e| {
                        Error::Refused(format!(
                            "{file}: tenant `{}`: routing.chain: {e}",
                            tenant.id
                        ))
                    })?;
                    let shadow = match &plan.shadow {
                        Some(spec) => Some(load(spec).await.map_err(|e| {
                            Error::Refused(format!(
                                "{file}: tenant `{}`: routing.shadow: {e}",
                                tenant.id
                            ))
                        })?),
                        None => None,
                    };
                    updates.push((
                        tenant.id.clone(),
                        RoutingUpdate {
                            chain,
                            shadow,
                            offer_timeout: plan.offer_timeout,
                            reply_rules: tenant.reply_rules(),
                            brands: tenant.brands.clone(),
                            operators: tenant.operators.clone(),
                        },
                    ));
                }
                (Some(_), false) => report.restart_required.push(format!(
                    "tenant `{}` has routing now; it starts with a restart",
                    tenant.id
                )),
                (None, true) => report.restart_required.push(format!(
                    "tenant `{}` no longer has routing; it keeps routing until a restart",
                    tenant.id
                )),
                (None, false) => {}
            }
        }
        let mut candidates = Vec::new();
        let mut enable = Vec::new();
        let mut disable = Vec::new();
        let mut refused = Vec::new();
        let specs = self.connector_specs(secrets);
        for spec in specs.iter().cloned() {
            let label = format!("{}/{}", spec.tenant, spec.name);
            let (Some(running), Some(health)) = (
                host.connector_spec(&spec.tenant, &spec.name),
                host.connector_health()
                    .into_iter()
                    .find(|h| h.tenant == spec.tenant && h.connector == spec.name),
            ) else {
                report.restart_required.push(format!(
                    "connector `{label}` is new; it starts with a restart"
                ));
                continue;
            };
            let mut same = running.clone();
            same.enabled = spec.enabled;
            let changed = same != spec
                || file_sha256(&spec.plugin).as_deref() != Some(health.plugin_sha256.as_str());
            let enabling = spec.enabled && !health.enabled;
            if changed || enabling {
                match host.connector_candidate(spec.clone()).await {
                    Ok(candidate) => candidates.push(candidate),
                    Err(report) => refused.push(format!(
                        "connector `{label}`: {}",
                        report.error.unwrap_or_default()
                    )),
                }
            }
            match (spec.enabled, health.enabled) {
                (true, false) => enable.push(spec.clone()),
                (false, true) => disable.push(spec.clone()),
                _ => {}
            }
        }
        for health in host.connector_health() {
            let configured = specs
                .iter()
                .any(|s| s.tenant == health.tenant && s.name == health.connector);
            if !configured {
                report.restart_required.push(format!(
                    "connector `{}/{}` is no longer in the file: disabled now, gone after a restart",
                    health.tenant, health.connector
                ));
                if health.enabled {
                    let mut spec = host
                        .connector_spec(&health.tenant, &health.connector)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "connector `{}/{}` vanished",
                                health.tenant,
                                health.connector
                            )
                        })?;
                    spec.enabled = false;
                    disable.push(spec);
                }
            }
        }
        if !refused.is_empty() {
            return Err(Error::Refused(format!(
                "{file}: nothing changed: {}",
                refused.join("; ")
            )));
        }

        // Phase 2: apply.
        for candidate in candidates {
            report.connectors.push(host.install_candidate(candidate));
        }
        for spec in disable {
            host.set_connector_enabled(&spec.tenant, &spec.name, false)
                .await?;
            report
                .disabled
                .push(format!("{}/{}", spec.tenant, spec.name));
        }
        for spec in enable {
            host.set_connector_enabled(&spec.tenant, &spec.name, true)
                .await?;
            report
                .enabled
                .push(format!("{}/{}", spec.tenant, spec.name));
        }
        for (tenant, update) in updates {
            report
                .routing
                .push(host.update_routing(&tenant, update).await?);
        }
        Ok(report)
    }
}

/// Host settings that differ between `old` and `new`: each applies only at a restart.
fn host_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut changes = Vec::new();
    let mut check = |changed: bool, key: &str| {
        if changed {
            changes.push(format!("{key} changed; it applies at a restart"));
        }
    };
    check(old.store != new.store, "host.store");
    check(old.listen != new.listen, "host.listen");
    check(old.admin_listen != new.admin_listen, "host.admin_listen");
    check(old.api_listen != new.api_listen, "host.api_listen");
    check(old.admin_token != new.admin_token, "host.admin_token");
    check(old.cache_dir != new.cache_dir, "host.cache_dir");
    check(old.host_id != new.host_id, "host.host_id");
    check(
        old.crm_webhook != new.crm_webhook || old.crm_webhook_secret != new.crm_webhook_secret,
        "host.crm_webhook",
    );
    check(old.watch_plugins != new.watch_plugins, "host.watch_plugins");
    check(old.log_format != new.log_format, "host.log_format");
    check(
        old.ingress != new.ingress,
        "host.max_webhook_body_bytes, header_read_timeout_ms, body_read_timeout_ms, \
         max_connections or max_connections_per_peer",
    );
    check(
        old.pooling_instances != new.pooling_instances,
        "host.pooling_instances",
    );
    check(
        old.trust != new.trust,
        "host.trusted_keys or host.require_signed",
    );
    let tokens = |c: &Config| -> Vec<(String, Option<super::SecretRef>)> {
        c.tenants
            .iter()
            .map(|t| (t.id.clone(), t.api_token.clone()))
            .collect()
    };
    check(tokens(old) != tokens(new), "a tenant's api_token");
    changes
}
