//! [`Host`]: the plugin host a CRM embeds.
//!
//! One file per concern: [`builder`] (what a host is made of, start-up), `conversations`
//! (reply, resolve, transfer, presence), `outbox` (sending replies once), `routing` (every
//! stored message through the tenant's engine), `tasks` (supervised background work),
//! `search` (search and paged lists), `readiness`, `admin` (hot swap, enable/disable, routing updates) and `watch` (plugin
//! files). This file holds the host itself and what the others share.

mod accounts;
mod admin;
mod builder;
mod conversations;
mod crm_events;
mod customers;
mod delivery;
mod media;
mod metrics_text;
mod outbox;
mod pruner;
mod readiness;
mod routing;
mod search;
mod tasks;
mod traffic;
mod watch;

pub use admin::{RoutingReport, RoutingUpdate};
pub use builder::{DEFAULT_ACCOUNT_CHECK, DEFAULT_RETENTION, HostBuilder};
pub use customers::MAX_HISTORY_PAGE;
pub(crate) use media::check_images;
pub use media::{MAX_FILE_NAME_CHARS, MAX_REPLY_IMAGES, MediaLimits, ReplyImage};
pub(crate) use readiness::Readiness;
pub use readiness::STUCK_AFTER;
pub use routing::HOST_AUTHOR;
pub use tasks::TaskHealth;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::connectors::{Connector, PollReport};
use crate::crm::LocalInbox;
use crate::error::Error;
use crate::ids::{ConnectorId, TenantId};
use crate::metrics::Metrics;
use crate::routing::{RoutingEngine, RoutingStats};
use crate::runtime::Runtime;
use crate::store::leases::LeaseHolder;
use crate::store::{Ingested, Store};
use crate::types::{WebhookRequest, WebhookResponse};
use routing::TenantRouting;
use tasks::TaskBook;

fn unknown_connector(tenant: &str, connector: &str) -> Error {
    Error::UnknownConnector {
        tenant: tenant.into(),
        connector: connector.into(),
    }
}

/// The embeddable plugin host. Cheap to clone; runs inside the caller's tokio runtime.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    runtime: Runtime,
    store: Store,
    connectors: HashMap<(String, String), Arc<Connector>>,
    max_webhook_body: usize,
    inbox: Option<Arc<LocalInbox>>,
    host_id: String,
    /// Who this host is when it takes polling leases.
    leases: LeaseHolder,
    routing: HashMap<String, tokio::sync::Mutex<TenantRouting>>,
    /// Each routed tenant's webhook deliveries waiting to be written (SQLite only).
    delivery_queues: HashMap<String, delivery::DeliveryQueue>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// How the supervised background tasks are doing.
    task_book: Arc<TaskBook>,
    metrics: Metrics,
    /// Host-held account tokens ([`crate::accounts`]).
    accounts: Arc<crate::accounts::AccountBook>,
    /// Each tenant's retention of conversations and messages (absent: kept forever).
    content_retention: HashMap<String, crate::store::ContentRetention>,
    /// How long delivered CRM events and finished replies are kept.
    retention: Option<std::time::Duration>,
    /// The largest file and each tenant's quota of stored files.
    media_limits: MediaLimits,
    /// Passes the outbox sender has finished: a test that changed something waits for two
    /// more, so that one whole pass has looked at its change.
    outbox_passes: std::sync::atomic::AtomicU64,
}

impl HostInner {
    /// Routes what a connector just stored. Routing problems are logged: the messages are
    /// stored and reported already, and nothing the engine does can lose them.
    async fn route(&self, connector: &Connector, ingested: &[Ingested]) {
        self.count_stored(connector, ingested);
        if ingested.iter().all(|i| i.duplicate) {
            return;
        }
        let Some(routing) = self.routing.get(&connector.tenant) else {
            return;
        };
        let mut routing = routing.lock().await;
        if let Err(e) = routing
            .route(
                &self.store,
                &connector.tenant,
                connector,
                ingested,
                &self.metrics,
                &self.brands(&connector.tenant),
            )
            .await
        {
            tracing::error!(tenant = %connector.tenant, connector = %connector.name, "routing: {e:#}");
        }
    }

    /// Counts what a connector stored (new messages and duplicates).
    fn count_stored(&self, connector: &Connector, ingested: &[Ingested]) {
        for item in ingested {
            if item.duplicate {
                self.metrics
                    .message_duplicate(&connector.tenant, &connector.name);
            } else {
                self.metrics.message_received(
                    &connector.tenant,
                    &connector.name,
                    &item.message.account,
                );
            }
        }
    }

    /// The brand of a tenant's account, by channel (connector) and account id.
    fn brands<'a>(&'a self, tenant: &'a str) -> impl Fn(&str, &str) -> Option<String> + 'a {
        move |channel, account| {
            self.connectors
                .get(&(tenant.to_string(), channel.to_string()))
                .and_then(|c| c.brands.get(account).cloned())
        }
    }

    async fn tenant_routing(
        &self,
        tenant: &str,
    ) -> Result<tokio::sync::MutexGuard<'_, TenantRouting>, Error> {
        let routing = self
            .routing
            .get(tenant)
            .ok_or_else(|| Error::RoutingNotConfigured {
                tenant: tenant.into(),
            })?;
        Ok(routing.lock().await)
    }
}

impl Drop for HostInner {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("connectors", &self.inner.connectors.len())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A builder with the documented defaults.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Stops polling and gives up this host's polling leases, so the other hosts sharing
    /// the database take its accounts over at their next poll rather than when the leases
    /// expire. Call it on a clean shutdown, before dropping the host; polls in flight get
    /// a few seconds to commit. Webhooks, the API and the outbox keep working until the
    /// host is dropped.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let released = self.inner.leases.stop(&self.inner.store).await?;
        tracing::info!(released, "polling stopped, leases released");
        Ok(())
    }

    /// This host's polling leases and the others', per tenant (who polls which account).
    #[cfg(feature = "test-support")]
    pub async fn poll_leases(
        &self,
        tenant: impl Into<TenantId>,
    ) -> Result<Vec<crate::store::leases::PollLease>, Error> {
        let tenant: &TenantId = &tenant.into();
        Ok(self.inner.store.poll_leases(tenant).await?)
    }

    /// Passes the outbox sender has finished since the host started. Two more than a test
    /// read after a change mean one whole pass began after it: what was due then has been
    /// tried, and what was not has been left alone.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn outbox_passes(&self) -> u64 {
        self.inner
            .outbox_passes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The durable store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    fn connector(&self, tenant: &str, name: &str) -> Option<&Arc<Connector>> {
        self.inner
            .connectors
            .get(&(tenant.to_string(), name.to_string()))
    }

    /// Runs one webhook delivery for `tenant`'s connector `connector`: the plugin verifies
    /// and normalises it, the messages are committed, then the answer for the platform is
    /// returned. Never fails: problems become 4xx (give up) or 5xx (retry) answers.
    pub async fn deliver_webhook(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        request: WebhookRequest,
    ) -> WebhookResponse {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        self.deliver_webhook_stored(tenant, connector, request)
            .await
            .0
    }

    /// Like [`Host::deliver_webhook`], also returning what was stored.
    pub async fn deliver_webhook_stored(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        match self.connector(tenant, connector) {
            Some(c) => {
                let (response, ingested) = self.inner.receive_webhook(c, request).await;
                self.inner
                    .metrics
                    .webhook_answered(tenant, connector, response.status);
                (response, ingested)
            }
            // Not labelled with what the client asked for: strangers must not grow the
            // metric label space.
            None => {
                self.inner.metrics.webhook_answered("", "", 404);
                let error = format!("no connector `{connector}` for tenant `{tenant}`");
                let response = WebhookResponse {
                    status: 404,
                    headers: vec![("content-type".to_string(), "application/json".to_string())],
                    body: serde_json::json!({ "error": error })
                        .to_string()
                        .into_bytes(),
                };
                (response, Vec::new())
            }
        }
    }

    /// Polls every account of a connector once.
    pub async fn poll(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
    ) -> Result<Vec<PollReport>, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let c = self
            .connector(tenant, connector)
            .ok_or_else(|| unknown_connector(tenant, connector))?;
        let (reports, ingested) = c.poll_all(&self.inner.store, &self.inner.leases).await;
        self.inner.route(c, &ingested).await;
        Ok(reports)
    }

    /// The local inbox, when no other CRM was configured.
    pub fn local_inbox(&self) -> Option<&Arc<LocalInbox>> {
        self.inner.inbox.as_ref()
    }

    /// A tenant's routing counters since this host started: decisions, assignments,
    /// conversations that waited, offer timeouts, the queue's peak, failed stages, and the
    /// shadow chain's agreement. `Err` when the tenant has no routing.
    pub async fn routing_stats(&self, tenant: impl Into<TenantId>) -> Result<RoutingStats, Error> {
        let tenant: &TenantId = &tenant.into();
        self.with_routing(tenant, RoutingEngine::stats).await
    }

    /// Runs `f` with a tenant's routing engine (statistics, roster, queue).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn with_routing<T>(
        &self,
        tenant: &str,
        f: impl FnOnce(&RoutingEngine) -> T,
    ) -> Result<T, Error> {
        let routing = self.inner.tenant_routing(tenant).await?;
        Ok(f(&routing.engine))
    }

    /// Sends a reply through a connector directly, bypassing the outbox (tools and tests).
    #[cfg(feature = "test-support")]
    pub async fn send(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        message: crate::types::OutboundMessage,
    ) -> Result<crate::types::Sent, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let c = self
            .connector(tenant, connector)
            .ok_or_else(|| unknown_connector(tenant, connector))?;
        c.send(message).await
    }

    /// Largest webhook body this host accepts.
    pub(crate) fn max_webhook_body(&self) -> usize {
        self.inner.max_webhook_body
    }

    /// How every connector is doing (circuit, faults, refused capability requests, log
    /// overflows), sorted by tenant and connector name.
    pub fn connector_health(&self) -> Vec<crate::connectors::ConnectorHealth> {
        let mut health: Vec<_> = self.inner.connectors.values().map(|c| c.health()).collect();
        health.sort_by(|a, b| (&a.tenant, &a.connector).cmp(&(&b.tenant, &b.connector)));
        health
    }

    /// Closes a connector's circuit and forgets its faults in a row, so calls go through
    /// again; returns its health after the reset.
    pub fn reset_connector(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
    ) -> Result<crate::connectors::ConnectorHealth, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let c = self
            .connector(tenant, connector)
            .ok_or_else(|| unknown_connector(tenant, connector))?;
        Ok(c.reset())
    }

    /// Every tenant this host serves (with connectors or routing), sorted.
    pub fn tenants(&self) -> Vec<String> {
        let mut tenants: Vec<String> = self
            .inner
            .connectors
            .keys()
            .map(|(tenant, _)| tenant.clone())
            .chain(self.inner.routing.keys().cloned())
            .collect();
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// What the host counted (messages, replies, webhooks rejected, routing latency,
    /// first-response times).
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Every metric in the Prometheus text format: what was counted, plus connector
    /// health, routing statistics, queue depth and operators' presence read now.
    pub async fn metrics_text(&self) -> String {
        metrics_text::render(self).await
    }

    /// Testing only (feature `fault-injection`): makes background task `task` (a name from
    /// [`Host::background_tasks`]) panic at its next await point, to show the supervision.
    #[cfg(feature = "fault-injection")]
    pub fn inject_task_panic(&self, task: &str) {
        self.inner.task_book.inject_panic(task);
    }
}
