//! [`Host`]: the plugin host a CRM embeds, and its builder.

mod admin;
mod routing;
mod tasks;
mod watch;

pub use admin::{RoutingReport, RoutingUpdate};
pub use routing::HOST_AUTHOR;
pub use tasks::TaskHealth;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::connectors::{Connector, ConnectorSpec, DEFAULT_TENANT, PollReport};
use crate::crm::{Crm, CrmEvent, LocalInbox};
use crate::error::{Error, PluginFailure};
use crate::metrics::Metrics;
use crate::routing::{ConversationId, RoutingEngine};
use crate::runtime::Runtime;
use crate::store::leases::LeaseHolder;
use crate::store::{Backend, ConversationStatus, Ingested, OutboxEntry, Store};
use crate::types::{OutboundMessage, Presence, Sent, WebhookRequest, WebhookResponse};
use routing::TenantRouting;
use tasks::{TaskBook, supervise};

/// Builds a [`Host`]. Defaults: an in-memory SQLite store, a runtime without a disk cache,
/// no connectors, webhook bodies up to 1 MiB, events kept in a [`LocalInbox`], host id
/// `centralino`.
pub struct HostBuilder {
    store_url: String,
    runtime: Option<Runtime>,
    connectors: Vec<ConnectorSpec>,
    max_webhook_body: usize,
    crm: Option<Arc<dyn Crm>>,
    host_id: String,
    routing: HashMap<String, RoutingEngine>,
    auto_reply: bool,
    poll_lease_ttl: Option<Duration>,
    retention: Option<Duration>,
}

/// How long delivered CRM events and finished replies are kept by default (see
/// [`HostBuilder::retention`]).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a due reply may wait unsent (or a send last) before the host reports itself
/// not ready: the sender handles dozens of replies a second, so minutes mean it is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// How often the host prunes what it no longer needs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("store_url", &crate::store::redacted_url(&self.store_url))
            .field("connectors", &self.connectors.len())
            .field("host_id", &self.host_id)
            .finish_non_exhaustive()
    }
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            store_url: "sqlite::memory:".to_string(),
            runtime: None,
            connectors: Vec::new(),
            max_webhook_body: 1 << 20,
            crm: None,
            host_id: "centralino".to_string(),
            routing: HashMap::new(),
            auto_reply: true,
            poll_lease_ttl: None,
            retention: Some(DEFAULT_RETENTION),
        }
    }
}

impl HostBuilder {
    /// The store: `sqlite://file.db`, `sqlite::memory:` or `postgres://…`.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store_url = url.into();
        self
    }

    /// How long delivered CRM events and replies sent or failed for good are kept; the
    /// host deletes older ones every hour ([`Store::prune`]). `None` keeps them forever.
    /// Conversations and messages are never deleted. Default: [`DEFAULT_RETENTION`], 30
    /// days.
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.retention = keep;
        self
    }

    /// Shares an existing runtime (and its compiled components).
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Adds a connector.
    pub fn connector(mut self, spec: ConnectorSpec) -> Self {
        self.connectors.push(spec);
        self
    }

    /// Largest webhook body accepted; larger ones get 413.
    pub fn max_webhook_body(mut self, bytes: usize) -> Self {
        self.max_webhook_body = bytes;
        self
    }

    /// Where events go: the CRM's own [`Crm`] implementation, or a
    /// [`WebhookCrm`](crate::crm::WebhookCrm). Default: a [`LocalInbox`].
    pub fn crm(mut self, crm: Arc<dyn Crm>) -> Self {
        self.crm = Some(crm);
        self
    }

    /// A stable name for this host, used to claim outbox rows and, after a crash, to find
    /// the replies it was sending. Hosts sharing a database need distinct names.
    pub fn host_id(mut self, id: impl Into<String>) -> Self {
        self.host_id = id.into();
        self
    }

    /// How long a polling lease lasts without renewal: when this host dies, another host
    /// sharing the database takes its accounts over at most this long (plus one poll
    /// interval) later. Default: three poll intervals of each connector, at least 10 s; a
    /// value not longer than a connector's poll interval is raised to twice the interval.
    /// See [`crate::store::leases`].
    pub fn poll_lease_ttl(mut self, ttl: Duration) -> Self {
        self.poll_lease_ttl = Some(ttl);
        self
    }

    /// Routes the default tenant's conversations with `engine` (operators, policy chain).
    /// Without routing, conversations are stored and reported but nobody is assigned.
    pub fn routing(self, engine: RoutingEngine) -> Self {
        self.tenant_routing(DEFAULT_TENANT, engine)
    }

    /// Routes `tenant`'s conversations with `engine`.
    pub fn tenant_routing(mut self, tenant: impl Into<String>, engine: RoutingEngine) -> Self {
        self.routing.insert(tenant.into(), engine);
        self
    }

    /// Whether a customer who has to wait gets the honest wait estimate as an automatic
    /// reply (once per conversation). Default: yes.
    pub fn auto_reply(mut self, enabled: bool) -> Self {
        self.auto_reply = enabled;
        self
    }

    /// Opens the store, loads every plugin and configures every connector, then starts the
    /// background work (CRM delivery, the outbox, polling) on the current tokio runtime.
    /// Any failure names the connector and the plugin.
    pub async fn build(self) -> Result<Host, Error> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => Runtime::new()?,
        };
        let store = Store::open(&self.store_url).await?;
        let mut connectors = HashMap::new();
        let mut plugins: HashMap<PathBuf, crate::runtime::ChannelPlugin> = HashMap::new();
        for spec in &self.connectors {
            let key = (spec.tenant.clone(), spec.name.clone());
            if connectors.contains_key(&key) {
                return Err(Error::Other(anyhow::anyhow!(
                    "connector `{}` is configured twice for tenant `{}`",
                    spec.name,
                    spec.tenant
                )));
            }
            // One compiled component serves every tenant; each connector gets its own instance.
            let plugin = match plugins.get(&spec.plugin) {
                Some(plugin) => plugin.clone(),
                None => {
                    let plugin = runtime.load_channel(&spec.plugin)?;
                    plugins.insert(spec.plugin.clone(), plugin.clone());
                    plugin
                }
            };
            let connector = Connector::new(spec, &plugin);
            connector.ready().await.with_context(|| {
                format!(
                    "starting connector `{}` of tenant `{}`",
                    spec.name, spec.tenant
                )
            })?;
            connectors.insert(key, Arc::new(connector));
        }
        let (crm, inbox): (Arc<dyn Crm>, Option<Arc<LocalInbox>>) = match self.crm {
            Some(crm) => (crm, None),
            None => {
                let inbox = Arc::new(LocalInbox::new());
                (inbox.clone(), Some(inbox))
            }
        };
        // Replies this host was sending when it last stopped: report, never resend. On
        // SQLite there is only one host, so every such row is ours.
        let claimer = (store.backend() == Backend::Postgres).then_some(self.host_id.as_str());
        let reclaimed = store.reclaim_events(claimer).await?;
        if reclaimed > 0 {
            tracing::info!(
                reclaimed,
                "CRM events that were being delivered at the last stop go out again"
            );
        }
        for entry in store.reconcile_outbox(claimer).await? {
            tracing::warn!(outbox = %entry.id, "reply caught mid-send by a stop; reported as uncertain");
            let event = CrmEvent::ReplyFailed {
                conversation_id: entry.conversation_id.clone(),
                outbox_id: entry.id.clone(),
                reason: entry.last_error.clone().unwrap_or_default(),
                uncertain: true,
            };
            store.append_event(&entry.tenant, &event).await?;
        }
        let routing = self
            .routing
            .into_iter()
            .map(|(tenant, engine)| {
                (
                    tenant,
                    tokio::sync::Mutex::new(TenantRouting::new(engine, self.auto_reply)),
                )
            })
            .collect();
        let inner = Arc::new(HostInner {
            routing,
            runtime,
            store: store.clone(),
            connectors,
            max_webhook_body: self.max_webhook_body,
            inbox,
            host_id: self.host_id.clone(),
            leases: LeaseHolder::new(self.host_id.clone(), self.poll_lease_ttl),
            tasks: std::sync::Mutex::new(Vec::new()),
            task_book: Arc::new(TaskBook::default()),
            metrics: Metrics::default(),
        });
        let host = Host { inner };
        // Routing picks up where the store left off: open conversations with their
        // assignees, the rest back in the queue.
        for (tenant, routing) in &host.inner.routing {
            let restored = routing
                .lock()
                .await
                .restore(&host.inner.store, tenant, &host.inner.brands(tenant))
                .await
                .with_context(|| format!("restoring the routing state of tenant `{tenant}`"))?;
            if restored > 0 {
                tracing::info!(
                    tenant,
                    restored,
                    "routing took up the store's open conversations"
                );
            }
        }
        let book = host.inner.task_book.clone();
        let mut tasks = vec![
            supervise(book.clone(), "crm-dispatcher".to_string(), {
                let host_id = self.host_id.clone();
                move || crate::crm::dispatcher(store.clone(), crm.clone(), host_id.clone())
            }),
            supervise(book.clone(), "outbox-sender".to_string(), {
                let host = Arc::downgrade(&host.inner);
                move || outbox_sender(host.clone())
            }),
        ];
        if !host.inner.routing.is_empty() {
            let host = Arc::downgrade(&host.inner);
            tasks.push(supervise(
                book.clone(),
                "routing-ticker".to_string(),
                move || ticker(host.clone()),
            ));
        }
        if let Some(keep) = self.retention {
            let store = host.inner.store.clone();
            tasks.push(supervise(book.clone(), "pruner".to_string(), move || {
                pruner(store.clone(), keep)
            }));
        }
        for connector in host.inner.connectors.values() {
            if let Some(interval) = connector.poll_interval {
                let host = Arc::downgrade(&host.inner);
                let connector = connector.clone();
                let name = format!("poller:{}/{}", connector.tenant, connector.name);
                tasks.push(supervise(book.clone(), name, move || {
                    poller(host.clone(), connector.clone(), interval)
                }));
            }
        }
        if let Ok(mut slot) = host.inner.tasks.lock() {
            slot.extend(tasks);
        }
        Ok(host)
    }
}

/// Sends due outbox rows until the host is dropped.
async fn outbox_sender(host: std::sync::Weak<HostInner>) {
    {
        loop {
            let Some(inner) = host.upgrade() else { return };
            let handled = match send_due(&inner).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("outbox: {e:#}");
                    0
                }
            };
            drop(inner);
            if handled == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Deletes what the host no longer needs (older than `keep`) every [`PRUNE_EVERY`], the
/// first time a minute after start-up, until the host is dropped.
async fn pruner(store: Store, keep: Duration) {
    {
        tokio::time::sleep(Duration::from_secs(60)).await;
        loop {
            let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
            let before = crate::clock::now_ms().saturating_sub(keep_ms);
            match store.prune(before).await {
                Ok(pruned) if pruned != Default::default() => tracing::info!(
                    events = pruned.events,
                    replies = pruned.replies,
                    "pruned delivered CRM events and finished replies past the retention period"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!("pruning the store: {e:#}"),
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    }
}

/// Polls one connector every `interval` until the host is dropped.
async fn poller(host: std::sync::Weak<HostInner>, connector: Arc<Connector>, interval: Duration) {
    loop {
        let Some(inner) = host.upgrade() else { return };
        let (_, ingested) = connector.poll_all(&inner.store, &inner.leases).await;
        inner.route(&connector, &ingested).await;
        drop(inner);
        tokio::time::sleep(interval).await;
    }
}

/// Runs the routing engines' timers (offer timeouts, shifts) until the host is dropped.
async fn ticker(host: std::sync::Weak<HostInner>) {
    {
        loop {
            let Some(inner) = host.upgrade() else { return };
            for (tenant, routing) in &inner.routing {
                let mut routing = routing.lock().await;
                if !routing.tick_due(&inner.store) {
                    continue;
                }
                let brand = inner.brands(tenant);
                let result = async {
                    let mut change = routing.open(&inner.store, tenant, &[], &brand).await?;
                    let notices = routing.engine.tick().await;
                    change.notices.extend(notices);
                    routing
                        .finish(&inner.store, tenant, change, Vec::new())
                        .await
                }
                .await;
                if let Err(e) = result {
                    tracing::error!(tenant, "recording routing timers: {e:#}");
                }
            }
            drop(inner);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Claims and sends the replies that are due; returns how many were handled.
async fn send_due(inner: &HostInner) -> anyhow::Result<usize> {
    let batch = inner.store.claim_outbox(&inner.host_id, 32).await?;
    for entry in &batch {
        let connector = inner
            .connectors
            .get(&(entry.tenant.clone(), entry.connector.clone()));
        let result = match connector {
            // A disabled connector's replies wait in the outbox, unsent and not failed.
            Some(c) if !c.is_enabled() => {
                let retry_at = crate::clock::now_ms() + admin::DISABLED_OUTBOX_RECHECK_MS;
                inner.store.outbox_release(entry, retry_at).await?;
                continue;
            }
            Some(c) => match c.send(entry.message.clone()).await {
                // Refused before reaching the plugin (backing off after faults, circuit
                // open): not the reply's fault. It waits its turn, its attempts untouched,
                // and goes out once the connector takes calls again.
                Err(Error::Unavailable { retry_after_ms, .. }) => {
                    let wait = retry_after_ms
                        .map_or(UNAVAILABLE_RECHECK_MS, |ms| ms.min(UNAVAILABLE_RECHECK_MS));
                    let retry_at = crate::clock::now_ms() + wait;
                    inner.store.outbox_release(entry, retry_at).await?;
                    continue;
                }
                result => result,
            },
            None => Err(Error::UnknownConnector {
                tenant: entry.tenant.clone(),
                connector: entry.connector.clone(),
            }),
        };
        settle(inner, entry, result).await?;
    }
    Ok(batch.len())
}

/// Longest a reply waits before trying again a connector that refused it without calling
/// the plugin (an open circuit waits for an admin: this is how soon after a reset the
/// reply goes out).
const UNAVAILABLE_RECHECK_MS: u64 = 2_000;

/// Records the outcome of one send, counts it and tells the CRM.
async fn settle(
    inner: &HostInner,
    entry: &OutboxEntry,
    result: Result<Sent, Error>,
) -> anyhow::Result<()> {
    let store = &inner.store;
    let now = crate::clock::now_ms();
    let failure = match result {
        Ok(sent) => {
            first_response(inner, entry, sent.sent_at).await;
            store
                .outbox_sent(entry, &sent.external_id, sent.sent_at)
                .await?;
            inner.metrics.reply_sent(
                &entry.tenant,
                &entry.connector,
                &entry.message.account,
                entry.author == HOST_AUTHOR,
            );
            let event = CrmEvent::ReplySent {
                conversation_id: entry.conversation_id.clone(),
                outbox_id: entry.id.clone(),
                external_id: sent.external_id,
            };
            store.append_event(&entry.tenant, &event).await?;
            return Ok(());
        }
        Err(e) => e,
    };
    let reason = failure.to_string();
    // Temporary failures are retried (a few times); refusals are final and reported.
    let retry_at = match &failure {
        Error::Plugin {
            failure: PluginFailure::RateLimited { retry_after_ms, .. },
            ..
        } => Some(now.saturating_add(*retry_after_ms)),
        Error::Plugin {
            failure: PluginFailure::Transient { .. },
            ..
        }
        | Error::Fault { .. } => {
            let retry = u64::try_from(entry.attempts.saturating_sub(1)).unwrap_or(0);
            Some(now.saturating_add(crate::retry::OUTBOX.delay_ms(retry)))
        }
        _ => None,
    }
    .filter(|_| entry.attempts < 8);
    if matches!(
        failure,
        Error::Plugin {
            failure: PluginFailure::RateLimited { .. },
            ..
        }
    ) {
        inner.metrics.rate_limited(&entry.tenant, &entry.connector);
    }
    inner
        .metrics
        .reply_failed(&entry.tenant, &entry.connector, retry_at.is_some());
    tracing::warn!(outbox = %entry.id, retry = retry_at.is_some(), "reply not sent: {reason}");
    store.outbox_failed(entry, &reason, retry_at).await?;
    if retry_at.is_none() {
        let event = CrmEvent::ReplyFailed {
            conversation_id: entry.conversation_id.clone(),
            outbox_id: entry.id.clone(),
            reason,
            uncertain: false,
        };
        store.append_event(&entry.tenant, &event).await?;
    }
    Ok(())
}

/// The reply queued under an idempotency key, when it is the reply asked for again;
/// otherwise the key was used for another reply.
fn same_reply(
    queued: OutboxEntry,
    conversation_id: &str,
    operator: &str,
    text: &str,
    key: &str,
) -> Result<OutboxEntry, Error> {
    let same = queued.conversation_id == conversation_id
        && queued.author == operator
        && queued.message.text == text;
    if same {
        Ok(queued)
    } else {
        Err(Error::IdempotencyKeyReused {
            key: key.to_string(),
        })
    }
}

/// The refusal of a change to a conversation that is resolved (or that the store no longer
/// holds open).
fn resolved(conversation_id: &str) -> Error {
    Error::ConversationResolved {
        conversation: conversation_id.to_string(),
    }
}

/// Routing's refusal of a change to `conversation_id`.
fn refused_by_routing(conversation_id: &str, error: crate::routing::RoutingError) -> Error {
    Error::Routing {
        conversation: Some(conversation_id.to_string()),
        source: Box::new(error),
    }
}

fn unknown_connector(tenant: &str, connector: &str) -> Error {
    Error::UnknownConnector {
        tenant: tenant.to_string(),
        connector: connector.to_string(),
    }
}

/// Observes the first-response time when `entry` is the first reply of a person (not the
/// host's wait estimate) to reach the platform, before the store records it.
async fn first_response(inner: &HostInner, entry: &OutboxEntry, sent_at: u64) {
    if entry.author == HOST_AUTHOR {
        return;
    }
    let Ok(Some(conversation)) = inner
        .store
        .conversation(&entry.tenant, &entry.conversation_id)
        .await
    else {
        return;
    };
    if conversation.first_response_at.is_none() {
        let began = u64::try_from(conversation.created_at).unwrap_or(0);
        let after = Duration::from_millis(sent_at.saturating_sub(began));
        inner
            .metrics
            .first_response(&entry.tenant, &entry.connector, after);
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
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// How the supervised background tasks are doing.
    task_book: Arc<TaskBook>,
    metrics: Metrics,
}

impl HostInner {
    /// Routes what a connector just stored. Routing problems are logged: the messages are
    /// stored and reported already, and nothing the engine does can lose them.
    async fn route(&self, connector: &Connector, ingested: &[Ingested]) {
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
                tenant: tenant.to_string(),
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
    pub async fn poll_leases(
        &self,
        tenant: &str,
    ) -> Result<Vec<crate::store::leases::PollLease>, Error> {
        Ok(self.inner.store.poll_leases(tenant).await?)
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
        tenant: &str,
        connector: &str,
        request: WebhookRequest,
    ) -> WebhookResponse {
        self.deliver_webhook_stored(tenant, connector, request)
            .await
            .0
    }

    /// Like [`Host::deliver_webhook`], also returning what was stored.
    pub async fn deliver_webhook_stored(
        &self,
        tenant: &str,
        connector: &str,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        match self.connector(tenant, connector) {
            Some(c) => {
                let (response, ingested) = c.deliver(&self.inner.store, request).await;
                self.inner
                    .metrics
                    .webhook_answered(tenant, connector, response.status);
                self.inner.route(c, &ingested).await;
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
    pub async fn poll(&self, tenant: &str, connector: &str) -> Result<Vec<PollReport>, Error> {
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

    /// Queues `operator`'s reply to a conversation in the outbox and returns the row; the
    /// host sends it in the background, once, and reports the outcome to the CRM. The
    /// reply is threaded under the customer's latest message and goes out from `account`
    /// (the operator's own account on the channel) or, when `None`, from the account the
    /// customer wrote to. With routing, the account is routing's choice (the operator's
    /// own where the channel allows it): `None` takes it, and any other account is
    /// refused. The same `idempotency_key` never queues a second reply.
    pub async fn reply(
        &self,
        tenant: &str,
        conversation_id: &str,
        operator: &str,
        account: Option<&str>,
        text: &str,
        idempotency_key: &str,
    ) -> Result<OutboxEntry, Error> {
        // A blank text would go out as an empty post under the operator's name.
        if crate::types::is_blank_text(text) {
            return Err(Error::Refused(
                "the reply's text is blank: it has only whitespace or invisible characters"
                    .to_string(),
            ));
        }
        let store = &self.inner.store;
        // A retried request gets the reply its key queued, and routing is not told twice;
        // another reply under a used key is refused before routing hears of it, so a
        // refused reply never counts as the customer's answer.
        if let Some(queued) = store.outbox_by_key(tenant, idempotency_key).await? {
            return same_reply(queued, conversation_id, operator, text, idempotency_key);
        }
        let conversation = store
            .conversation(tenant, conversation_id)
            .await?
            .ok_or_else(|| Error::UnknownConversation {
                tenant: tenant.to_string(),
                conversation: conversation_id.to_string(),
            })?;
        if conversation.status == ConversationStatus::Resolved {
            return Err(resolved(conversation_id));
        }
        let in_reply_to = store.latest_inbound_id(tenant, conversation_id).await?;
        let queue = |account: Option<String>| {
            let message = conversation.reply(
                account,
                in_reply_to.clone(),
                text.to_string(),
                idempotency_key.to_string(),
            );
            async move {
                store
                    .enqueue_reply(
                        tenant,
                        &conversation.channel,
                        conversation_id,
                        operator,
                        &message,
                    )
                    .await
            }
        };
        let Some(routing) = self.inner.routing.get(tenant) else {
            let (entry, new) = queue(account.map(str::to_string)).await?;
            return if new {
                Ok(entry)
            } else {
                same_reply(entry, conversation_id, operator, text, idempotency_key)
            };
        };
        // With routing, only the assignee (or anyone after a transfer) may answer, and the
        // engine picks the sending account: the operator's own where the channel allows it.
        // Who holds the conversation is read from the store on PostgreSQL (another host may
        // have resolved or handed it over). The reply counts as the answer only once the
        // outbox has accepted it.
        let mut routing = routing.lock().await;
        let id = routing
            .current(store, tenant, conversation_id, &self.inner.brands(tenant))
            .await?
            .ok_or_else(|| resolved(conversation_id))?;
        let route = routing
            .engine
            .authorize_reply(id, operator)
            .map_err(|e| refused_by_routing(conversation_id, e))?;
        // The account asked for is honoured when it is the one routing allows, and refused
        // otherwise: a reply never goes out from an account nobody asked for silently.
        if let Some(asked) = account
            && asked != route.account
        {
            return Err(Error::Refused(format!(
                "`{operator}` answers conversation `{conversation_id}` from account `{}`, \
                 not `{asked}`: leave the account out to use it",
                route.account
            )));
        }
        let (entry, new) = queue(Some(route.account)).await?;
        if !new {
            // Queued meanwhile under the same key (a concurrent retry): already counted.
            return same_reply(entry, conversation_id, operator, text, idempotency_key);
        }
        routing
            .engine
            .record_reply(id, operator)
            .map_err(|e| refused_by_routing(conversation_id, e))?;
        Ok(entry)
    }

    /// Closes a conversation: the operator's seat frees and the queue moves. Resolving a
    /// resolved conversation changes nothing; an unknown one is an error.
    pub async fn resolve(&self, tenant: &str, conversation_id: &str) -> Result<(), Error> {
        let store = &self.inner.store;
        let conversation = store
            .conversation(tenant, conversation_id)
            .await?
            .ok_or_else(|| Error::UnknownConversation {
                tenant: tenant.to_string(),
                conversation: conversation_id.to_string(),
            })?;
        if conversation.status == ConversationStatus::Resolved {
            return Ok(());
        }
        let event = CrmEvent::ConversationResolved {
            conversation_id: conversation_id.to_string(),
        };
        let Some(routing) = self.inner.routing.get(tenant) else {
            store
                .set_conversation_state(tenant, conversation_id, ConversationStatus::Resolved, None)
                .await?;
            store.append_event(tenant, &event).await?;
            return Ok(());
        };
        let mut routing = routing.lock().await;
        let brand = self.inner.brands(tenant);
        let mut change = routing
            .open(store, tenant, &[(conversation_id, false)], &brand)
            .await?;
        // Unknown to routing now: another host resolved it meanwhile.
        let Some(id) = routing.engine_id(conversation_id) else {
            routing.finish(store, tenant, change, Vec::new()).await?;
            return Ok(());
        };
        match routing.engine.resolve(id).await {
            Ok(notices) => change.notices.extend(notices),
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                return Err(refused_by_routing(conversation_id, e));
            }
        }
        change
            .record_resolved(store, tenant, conversation_id)
            .await?;
        routing.finish(store, tenant, change, vec![event]).await?;
        Ok(())
    }

    /// Sets an operator's presence; coming online drains the queue, going offline re-routes
    /// their unanswered conversations. The presence is stored: the operator keeps it
    /// across restarts, and on PostgreSQL every host sharing the database routes on it.
    pub async fn set_presence(
        &self,
        tenant: &str,
        operator: &str,
        presence: Presence,
    ) -> Result<(), Error> {
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let store = &self.inner.store;
        let mut change = routing
            .open(store, tenant, &[], &self.inner.brands(tenant))
            .await?;
        let notices = match routing.engine.set_presence(operator, presence).await {
            Ok(notices) => notices,
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                return Err(Error::Routing {
                    conversation: None,
                    source: Box::new(e),
                });
            }
        };
        change.notices.extend(notices);
        // Until the change commits, the next one applies whatever the store has.
        routing.saw_presence(operator, None);
        let stored = change
            .record_presence(store, tenant, operator, presence)
            .await?;
        routing.finish(store, tenant, change, Vec::new()).await?;
        routing.saw_presence(operator, Some(stored));
        Ok(())
    }

    /// Hands a conversation to another operator.
    pub async fn transfer(
        &self,
        tenant: &str,
        conversation_id: &str,
        to: &str,
    ) -> Result<(), Error> {
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let store = &self.inner.store;
        let mut change = routing
            .open(
                store,
                tenant,
                &[(conversation_id, false)],
                &self.inner.brands(tenant),
            )
            .await?;
        let result = match routing.engine_id(conversation_id) {
            Some(id) => routing
                .engine
                .transfer(id, to)
                .await
                .map_err(|e| refused_by_routing(conversation_id, e)),
            None => Err(resolved(conversation_id)),
        };
        match result {
            Ok(notices) => {
                change.notices.extend(notices);
                change
                    .record_transfer(store, tenant, conversation_id, to)
                    .await?;
                routing.finish(store, tenant, change, Vec::new()).await?;
                Ok(())
            }
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                Err(e)
            }
        }
    }

    /// Runs `f` with a tenant's routing engine (statistics, roster, queue).
    pub async fn with_routing<T>(
        &self,
        tenant: &str,
        f: impl FnOnce(&RoutingEngine) -> T,
    ) -> Result<T, Error> {
        let routing = self.inner.tenant_routing(tenant).await?;
        Ok(f(&routing.engine))
    }

    /// Sends a reply through a connector directly, bypassing the outbox (tools and tests).
    pub async fn send(
        &self,
        tenant: &str,
        connector: &str,
        message: OutboundMessage,
    ) -> Result<Sent, Error> {
        let c = self
            .connector(tenant, connector)
            .ok_or_else(|| unknown_connector(tenant, connector))?;
        c.send(message).await
    }

    /// The webhook ingress as an axum router, to serve or to nest in the CRM's own server.
    pub fn ingress(&self) -> axum::Router {
        crate::server::router(self.clone(), self.inner.max_webhook_body)
    }

    /// Serves the ingress on `listener` until the future is dropped, with this host's body
    /// cap and the default [`IngressLimits`](crate::server::IngressLimits) (header and body
    /// read timeouts, connection cap).
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let limits = crate::server::IngressLimits {
            max_body_bytes: self.inner.max_webhook_body,
            ..Default::default()
        };
        crate::server::serve(self.clone(), listener, limits).await
    }

    /// Serves the ingress on `listener` with explicit `limits`.
    pub async fn serve_with(
        &self,
        listener: tokio::net::TcpListener,
        limits: crate::server::IngressLimits,
    ) -> std::io::Result<()> {
        crate::server::serve(self.clone(), listener, limits).await
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
        tenant: &str,
        connector: &str,
    ) -> Result<crate::connectors::ConnectorHealth, Error> {
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
        crate::metrics::render(self).await
    }

    /// Whether the host can take work: the store answers a query and every connector has
    /// started an instance of its plugin. The error says what is not ready.
    pub async fn readiness(&self) -> Result<(), String> {
        self.inner
            .store
            .ping()
            .await
            .map_err(|e| format!("the store does not answer: {e:#}"))?;
        let waiting: Vec<String> = self
            .connector_health()
            .into_iter()
            .filter(|h| h.enabled && h.instances_started == 0)
            .map(|h| format!("{}/{}", h.tenant, h.connector))
            .collect();
        if !waiting.is_empty() {
            return Err(format!("connectors not started: {}", waiting.join(", ")));
        }
        self.inner.task_book.readiness()?;
        self.outbox_readiness().await
    }

    /// `Err` when replies are stuck: due for longer than [`STUCK_AFTER`] without being
    /// sent, or in the middle of a send for that long.
    async fn outbox_readiness(&self) -> Result<(), String> {
        let now = crate::clock::now_ms();
        let stuck_ms = u64::try_from(STUCK_AFTER.as_millis()).unwrap_or(u64::MAX);
        let backlog = self
            .inner
            .store
            .outbox_backlog()
            .await
            .map_err(|e| format!("reading the outbox backlog: {e:#}"))?;
        let stuck: Vec<String> = backlog
            .iter()
            .filter_map(|b| {
                let oldest = b
                    .oldest_due_ms
                    .into_iter()
                    .chain(b.oldest_sending_ms)
                    .min()?;
                let waited = now.saturating_sub(oldest);
                (waited >= stuck_ms).then(|| {
                    format!(
                        "tenant `{}`: {} replies due and {} sending, the oldest waiting {} s",
                        b.tenant,
                        b.due,
                        b.sending,
                        waited / 1000
                    )
                })
            })
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!("replies are stuck: {}", stuck.join("; ")))
        }
    }

    /// The supervised background tasks (outbox sender, CRM dispatcher, routing ticker,
    /// pruner, pollers, plugin watcher): whether each runs, and its restarts after panics.
    pub fn background_tasks(&self) -> Vec<TaskHealth> {
        self.inner.task_book.health()
    }

    /// Testing only (feature `fault-injection`): makes background task `task` (a name from
    /// [`Host::background_tasks`]) panic at its next await point, to show the supervision.
    #[cfg(feature = "fault-injection")]
    pub fn inject_task_panic(&self, task: &str) {
        self.inner.task_book.inject_panic(task);
    }
}
