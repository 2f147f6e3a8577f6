//! Live administration of a [`Host`]: hot swap of connectors' plugins, enabling and
//! disabling connectors, and routing changes (chain, operators) without a restart. See
//! [`crate::connectors`] for what a swap guarantees.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Host;
use crate::connectors::{Candidate, Connector, ConnectorHealth, ConnectorSpec, ReloadReport};
use crate::error::Error;
use crate::ids::{ConnectorId, TenantId};
use crate::routing::{Operator, PolicyChain, ReplyRules, RosterChange};

/// How long a reply of a disabled connector waits in the outbox before the host looks
/// at it again.
pub(crate) const DISABLED_OUTBOX_RECHECK_MS: u64 = 2_000;

/// A tenant's routing as a reload applies it: everything but the conversations, the
/// queue and the operators' live state, which are kept.
#[derive(Debug)]
pub struct RoutingUpdate {
    /// The active chain, loaded and configured.
    pub chain: PolicyChain,
    /// The shadow chain, if any.
    pub shadow: Option<PolicyChain>,
    /// Offer timeout; `None` never takes a conversation back.
    pub offer_timeout: Option<Duration>,
    /// Which channels operators answer from their own account on.
    pub reply_rules: ReplyRules,
    /// The tenant's brands: automatic answers, business hours, service levels.
    pub brands: Vec<crate::answers::Brand>,
    /// The whole roster as configured now.
    pub operators: Vec<Operator>,
}

/// A connector and a new version of its plugin, ready to swap in.
pub(crate) struct PreparedSwap {
    connector: Arc<Connector>,
    candidate: Candidate,
}

/// What a routing update changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RoutingReport {
    /// The tenant.
    pub tenant: TenantId,
    /// The active chain now.
    pub chain: String,
    /// The shadow chain now.
    pub shadow: Option<String>,
    /// Roster changes.
    pub operators: RosterChange,
}

impl Host {
    fn known_connector(&self, tenant: &str, name: &str) -> Result<&Arc<Connector>, Error> {
        self.connector(tenant, name)
            .ok_or_else(|| Error::UnknownConnector {
                tenant: tenant.into(),
                connector: name.into(),
            })
    }

    /// Loads a connector's plugin file anew and swaps it in: the candidate is compiled,
    /// checked (world, contract), instantiated and configured with the connector's
    /// settings beside the running version, then new calls go to it while calls already
    /// running finish on the old one. A candidate that fails any step is dropped and the
    /// old version keeps serving; the report and the connector's health
    /// ([`ConnectorHealth::last_reload_error`]) say why. `Err` only for an unknown
    /// connector.
    pub async fn reload_connector(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
    ) -> Result<ReloadReport, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let c = self.known_connector(tenant, connector)?.clone();
        Ok(self.reload(&c, None).await)
    }

    /// Like [`Host::reload_connector`], with new settings: `spec` names the connector
    /// (tenant and name) and gives its plugin file, settings, grants and limits. Accounts,
    /// brands and the poll interval must stay as they are (changing them takes a restart).
    pub async fn reload_connector_spec(&self, spec: ConnectorSpec) -> Result<ReloadReport, Error> {
        let c = self.known_connector(&spec.tenant, &spec.name)?.clone();
        Ok(self.reload(&c, Some(spec)).await)
    }

    /// Reloads every connector's plugin, one after the other (see
    /// [`Host::reload_connector`]), sorted by tenant and name.
    pub async fn reload_connectors(&self) -> Vec<ReloadReport> {
        let mut connectors: Vec<Arc<Connector>> = self.inner.connectors.values().cloned().collect();
        connectors.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
        let mut reports = Vec::new();
        for c in connectors {
            reports.push(self.reload(&c, None).await);
        }
        reports
    }

    async fn reload(&self, connector: &Connector, mut spec: Option<ConnectorSpec>) -> ReloadReport {
        // A new spec's connected credentials become the accounts' live ones.
        if let Some(spec) = &mut spec {
            self.inner.accounts.rebind(spec);
        }
        let report = connector.reload(&self.inner.runtime, spec).await;
        self.inner
            .metrics
            .plugin_reload(&report.tenant, &report.connector, report.swapped);
        report
    }

    /// A candidate version for `spec`'s connector, prepared beside the running one (for
    /// a config reload that swaps several connectors only once all are ready). A refusal
    /// is counted and recorded in the connector's health.
    pub(crate) async fn connector_candidate(
        &self,
        mut spec: ConnectorSpec,
    ) -> Result<PreparedSwap, ReloadReport> {
        self.inner.accounts.rebind(&mut spec);
        let connector = match self.known_connector(&spec.tenant, &spec.name) {
            Ok(c) => c.clone(),
            Err(e) => {
                return Err(ReloadReport {
                    tenant: spec.tenant.clone(),
                    connector: spec.name.clone(),
                    swapped: false,
                    previous: crate::PluginId {
                        name: String::new(),
                        version: String::new(),
                    },
                    plugin: crate::PluginId {
                        name: String::new(),
                        version: String::new(),
                    },
                    sha256: String::new(),
                    error: Some(e.to_string()),
                    took_ms: 0,
                });
            }
        };
        match connector.candidate(&self.inner.runtime, Some(spec)).await {
            Ok(candidate) => Ok(PreparedSwap {
                connector,
                candidate,
            }),
            Err(report) => {
                self.inner
                    .metrics
                    .plugin_reload(&report.tenant, &report.connector, false);
                Err(report)
            }
        }
    }

    /// Swaps in a prepared candidate.
    pub(crate) fn install_candidate(&self, prepared: PreparedSwap) -> ReloadReport {
        let report = prepared.connector.install(prepared.candidate);
        self.inner
            .metrics
            .plugin_reload(&report.tenant, &report.connector, true);
        report
    }

    /// Enables or disables a connector. A disabled one answers its webhooks 503 with
    /// `Retry-After` (platforms deliver them again later), skips its polls and keeps its
    /// replies queued in the outbox; enabling it (after configuring its plugin, if it never
    /// ran) lets all of that through again. Returns its health.
    pub async fn set_connector_enabled(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        enabled: bool,
    ) -> Result<ConnectorHealth, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let c = self.known_connector(tenant, connector)?.clone();
        c.set_enabled(enabled).await
    }

    /// The spec a connector's serving version was built from (file, settings, grants,
    /// limits, accounts).
    pub fn connector_spec(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
    ) -> Option<ConnectorSpec> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        self.connector(tenant, connector).map(|c| c.spec())
    }

    /// Applies a tenant's new routing live: the chains, offer timeout, reply rules and
    /// brands are replaced, and the roster becomes `update.operators` (see
    /// the routing engine's roster update).
    /// Conversations, the queue and assignments are kept; waiting conversations go to
    /// operators who can now take them, and the outcome is recorded and told to the CRM.
    pub async fn update_routing(
        &self,
        tenant: impl Into<TenantId>,
        update: RoutingUpdate,
    ) -> Result<RoutingReport, Error> {
        let tenant: &TenantId = &tenant.into();
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let chain = update.chain.spec().to_string();
        let shadow = update.shadow.as_ref().map(|s| s.spec().to_string());
        routing.engine.replace_chains(update.chain, update.shadow);
        routing.engine.set_offer_timeout(update.offer_timeout);
        routing.engine.set_reply_rules(update.reply_rules);
        routing.set_brands(update.brands);
        let store = &self.inner.store;
        let mut pending = routing
            .open(store, tenant, &[], &self.inner.brands(tenant))
            .await?;
        let (change, notices) = routing.engine.apply_roster(update.operators).await;
        pending.notices.extend(notices);
        // Operators new to the roster come back as they were last set (a restart would
        // give them the same), not offline.
        routing
            .adopt_stored_presence(store, tenant, &mut pending, &change.added)
            .await?;
        routing.finish(store, tenant, pending, Vec::new()).await?;
        tracing::info!(
            tenant = %tenant,
            chain,
            added = ?change.added,
            updated = ?change.updated,
            removed = ?change.removed,
            retained = ?change.retained,
            "routing updated live"
        );
        Ok(RoutingReport {
            tenant: tenant.into(),
            chain,
            shadow,
            operators: change,
        })
    }

    /// Whether `tenant` has routing (an engine that [`Host::update_routing`] can change).
    pub fn has_routing(&self, tenant: impl Into<TenantId>) -> bool {
        let tenant: &TenantId = &tenant.into();
        self.inner.routing.contains_key(tenant.as_str())
    }

    /// Counts a reload of the configuration, for `/metrics`.
    pub(crate) fn count_config_reload(&self, applied: bool) {
        self.inner.metrics.config_reload(applied);
    }

    /// Watches every connector's plugin file and hot-swaps it when it changes: the file
    /// is looked at every `every`; once its size and modification time have held still
    /// for one more look (a copy in progress keeps changing them) and its content differs
    /// from the version serving, it is reloaded as by [`Host::reload_connector`]. A
    /// half-written or broken file fails its checks and leaves the old version serving;
    /// the same content is not tried again, and the next complete write swaps. Stops when
    /// the host is dropped.
    pub fn watch_plugins(&self, every: Duration) {
        let host = Arc::downgrade(&self.inner);
        let task = super::tasks::supervise(
            self.inner.task_book.clone(),
            "plugin-watcher".to_string(),
            move || super::watch::watch(host.clone(), every),
        );
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.push(task);
        }
    }
}
