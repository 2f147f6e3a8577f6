//! [`HostBuilder`]: what a host is made of, its documented defaults, and the start-up
//! that opens the store, starts every connector, takes up the store's state and starts the
//! supervised background tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::outbox::outbox_sender;
use super::routing::TenantRouting;
use super::tasks::{TaskBook, supervise};
use super::{Host, HostInner};
use crate::accounts::{AccountBook, AccountClock, BookParts, ConnectorAccounts, OAuthApp};
use crate::answers::Brand;
use crate::clock::Clock;
use crate::connectors::{Connector, ConnectorSpec, DEFAULT_TENANT};
use crate::crm::{Crm, CrmEvent, LocalInbox};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::routing::RoutingEngine;
use crate::runtime::Runtime;
use crate::store::leases::LeaseHolder;
use crate::store::{Backend, ContentRetention, Store};

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
    brands: HashMap<String, Vec<Brand>>,
    poll_lease_ttl: Option<Duration>,
    retention: Option<Duration>,
    content_retention: HashMap<String, ContentRetention>,
    media_limits: super::MediaLimits,
    accounts: AccountsSetup,
    clock: Option<Arc<dyn Clock>>,
}

/// What the builder knows of host-held accounts ([`crate::accounts`]).
#[derive(Default)]
struct AccountsSetup {
    key: Option<crate::capabilities::Secret>,
    apps: HashMap<(String, String), OAuthApp>,
    clock: Option<AccountClock>,
    check_every: Option<Duration>,
}

/// How often the account book looks for tokens to refresh by default.
pub const DEFAULT_ACCOUNT_CHECK: Duration = Duration::from_secs(15);

/// How long delivered CRM events and finished replies are kept by default (see
/// [`HostBuilder::retention`]).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

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
            brands: HashMap::new(),
            poll_lease_ttl: None,
            retention: Some(DEFAULT_RETENTION),
            content_retention: HashMap::new(),
            media_limits: super::MediaLimits::default(),
            accounts: AccountsSetup::default(),
            clock: None,
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
    /// host deletes older ones every hour. `None` keeps them forever. (Conversations and
    /// messages have their own retention per tenant:
    /// [`content_retention`](Self::content_retention).) Default: [`DEFAULT_RETENTION`], 30 days.
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.retention = keep;
        self
    }

    /// How long `tenant`'s conversations and messages are kept (see [`ContentRetention`]);
    /// the host applies it every hour, on its [clock](Self::clock). Default: forever.
    pub fn content_retention(
        mut self,
        tenant: impl Into<String>,
        retention: ContentRetention,
    ) -> Self {
        self.content_retention.insert(tenant.into(), retention);
        self
    }

    /// How much media the host keeps: the largest file (inbound or in a reply) and each
    /// tenant's quota of stored files. Default: [`MediaLimits::default`](super::MediaLimits::default)
    /// (5 MiB per file, 1 GiB per tenant).
    pub fn media_limits(mut self, limits: super::MediaLimits) -> Self {
        self.media_limits = limits;
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
    /// See RELIABILITY.md (poll leases).
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

    /// A brand of the default tenant: its automatic answers, business hours and service
    /// levels (see [`crate::answers`]). Default: none, so nobody gets an automatic reply
    /// and no service level is watched.
    pub fn brand(self, brand: Brand) -> Self {
        self.tenant_brand(DEFAULT_TENANT, brand)
    }

    /// A brand of `tenant` (a later one with the same id replaces the earlier).
    pub fn tenant_brand(mut self, tenant: impl Into<String>, brand: Brand) -> Self {
        let brands = self.brands.entry(tenant.into()).or_default();
        brands.retain(|b| b.id != brand.id);
        brands.push(brand);
        self
    }

    /// The key that seals host-held tokens in the store (32 random bytes or more; see
    /// [`crate::accounts`]). Required when any account uses a
    /// [`ConnectedCredential`](crate::accounts::ConnectedCredential). Default: none.
    pub fn token_key(mut self, key: crate::capabilities::Secret) -> Self {
        self.accounts.key = Some(key);
        self
    }

    /// The OAuth app of `connector` of `tenant` (client id and secret, callback URL),
    /// needed for its connected accounts. Default: none.
    pub fn oauth_app(
        mut self,
        tenant: impl Into<String>,
        connector: impl Into<String>,
        app: OAuthApp,
    ) -> Self {
        self.accounts
            .apps
            .insert((tenant.into(), connector.into()), app);
        self
    }

    /// The clock token expiry is read against, and how often the host looks for tokens
    /// to refresh. Default: the host's [`clock`](Self::clock), every
    /// [`DEFAULT_ACCOUNT_CHECK`]. A simulation
    /// (a day of two-hour tokens in seconds) gives its own clock and a short period.
    pub fn account_clock(mut self, clock: AccountClock, check_every: Duration) -> Self {
        self.accounts.clock = Some(clock);
        self.accounts.check_every = Some(check_every);
        self
    }

    /// The clock the host reads the time from (see [`crate::routing::Clock`]): every
    /// timestamp it stores and every decision on time — a reply's retry being due, a
    /// poll lease having lapsed, a CRM event or a finished reply being past the
    /// [retention](Self::retention), a token expiring, a reply being outside the
    /// platform's window — and the clock of each routing engine given to
    /// [`routing`](Self::routing). Default: [`SystemClock`](crate::routing::SystemClock)
    /// (and, for poll leases, the database's clock, which every host sharing it reads).
    ///
    /// For simulations and an embedder's own tests: a clock that runs ahead makes
    /// retries, lease takeovers and expiries come due without waiting for them. The
    /// background tasks still look on real timers (the outbox every few milliseconds
    /// when idle, the pruner every hour); the clock decides what they find due.
    /// Timestamps another party checks against its own clock (the CRM webhook's
    /// signature) stay on the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Opens the store, loads every plugin and configures every connector, then starts the
    /// background work (CRM delivery, the outbox, polling) on the current tokio runtime.
    /// Any failure names the connector and the plugin.
    pub async fn build(mut self) -> Result<Host, Error> {
        for (tenant, brands) in &self.brands {
            for brand in brands {
                if let Some((key, problem)) = brand.problems().into_iter().next() {
                    return Err(Error::Other(anyhow::anyhow!(
                        "brand `{}` of tenant `{tenant}`: `{key}` {problem}",
                        brand.id
                    )));
                }
            }
        }
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => Runtime::new()?,
        };
        let mut store = Store::open(&self.store_url).await?;
        if let Some(clock) = &self.clock {
            store = store.with_clock(clock.clone());
        }
        let mut connectors = HashMap::new();
        let mut plugins: HashMap<PathBuf, crate::runtime::ChannelPlugin> = HashMap::new();
        let mut account_lists = Vec::new();
        for spec in &self.connectors {
            let key = (spec.tenant.to_string(), spec.name.to_string());
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
            runtime
                .trust()
                .check_for_tenant(&spec.tenant, &spec.plugin, plugin.info())?;
            let connector = Connector::new(spec, &plugin, self.clock.clone());
            account_lists.push(ConnectorAccounts {
                tenant: spec.tenant.to_string(),
                connector: spec.name.to_string(),
                plugin: plugin.id().to_string(),
                declaration: plugin.info().oauth.clone(),
                accounts: connector.connected_accounts(),
            });
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
        let accounts = AccountBook::new(
            BookParts {
                store: store.clone(),
                host_id: self.host_id.clone(),
                key: self.accounts.key,
                apps: self.accounts.apps,
                clock: self.accounts.clock.or_else(|| {
                    let clock = self.clock.clone()?;
                    Some(Arc::new(move || clock.now_ms()) as AccountClock)
                }),
                check_every: self.accounts.check_every.unwrap_or(DEFAULT_ACCOUNT_CHECK),
            },
            account_lists,
        )?;
        accounts
            .sync()
            .await
            .context("reading the host-held account tokens")?;
        let accounts = Arc::new(accounts);
        let mut brands = std::mem::take(&mut self.brands);
        let routing: HashMap<String, tokio::sync::Mutex<TenantRouting>> = self
            .routing
            .into_iter()
            .map(|(tenant, mut engine)| {
                if let Some(clock) = &self.clock {
                    engine.use_clock(clock.clone());
                }
                let brands = brands.remove(&tenant).unwrap_or_default();
                (
                    tenant,
                    tokio::sync::Mutex::new(TenantRouting::new(engine, brands)),
                )
            })
            .collect();
        let delivery_queues = routing
            .keys()
            .map(|tenant| (tenant.clone(), Default::default()))
            .collect();
        let inner = Arc::new(HostInner {
            routing,
            delivery_queues,
            runtime,
            store: store.clone(),
            connectors,
            max_webhook_body: self.max_webhook_body,
            inbox,
            host_id: self.host_id.clone(),
            leases: LeaseHolder::new(self.host_id.clone(), self.poll_lease_ttl),
            tasks: std::sync::Mutex::new(Vec::new()),
            task_book: Arc::new(TaskBook::new(self.clock.clone())),
            metrics: Metrics::default(),
            accounts: accounts.clone(),
            content_retention: self.content_retention,
            retention: self.retention,
            media_limits: self.media_limits,
            outbox_passes: std::sync::atomic::AtomicU64::new(0),
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
                move || super::crm_events::dispatcher(store.clone(), crm.clone(), host_id.clone())
            }),
            supervise(book.clone(), "outbox-sender".to_string(), {
                let host = Arc::downgrade(&host.inner);
                move || outbox_sender(host.clone())
            }),
            supervise(book.clone(), "media-fetcher".to_string(), {
                let host = Arc::downgrade(&host.inner);
                move || super::media::media_fetcher(host.clone())
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
        if !accounts.is_empty() {
            tasks.push(supervise(book.clone(), "accounts".to_string(), move || {
                account_keeper(Arc::downgrade(&accounts))
            }));
        }
        if self.retention.is_some() || !host.inner.content_retention.is_empty() {
            let host = Arc::downgrade(&host.inner);
            tasks.push(supervise(book.clone(), "pruner".to_string(), move || {
                super::pruner::pruner(host.clone())
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

/// Keeps host-held tokens fresh (refreshes ahead of expiry, answers refusals, follows
/// other hosts' refreshes) until the host is dropped.
async fn account_keeper(book: std::sync::Weak<AccountBook>) {
    loop {
        let Some(accounts) = book.upgrade() else {
            return;
        };
        if let Err(e) = accounts.tick().await {
            tracing::error!("accounts: {e:#}");
        }
        let every = accounts.check_every;
        drop(accounts);
        tokio::time::sleep(every).await;
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

/// Runs the routing engines' timers (offer timeouts, shifts), the brands' service levels
/// and the corrections of wait estimates until the host is dropped.
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
                    let levels = routing
                        .check_service_levels(&inner.store, tenant, &mut change)
                        .await?;
                    for step in &levels.steps {
                        inner.metrics.service_level(tenant, &step.brand, step.step);
                    }
                    change.record_first(levels.events);
                    change.notices.extend(levels.notices);
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
