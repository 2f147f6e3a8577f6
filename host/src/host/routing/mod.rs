//! The host's side of routing: every new customer message goes through the tenant's
//! [`RoutingEngine`], and what the engine decides is recorded in the store and told to the
//! CRM (assignments, queue places with an honest estimate in the customer's language,
//! sent as an automatic answer where the brand asks for it, service levels at risk or
//! missed).
//!
//! The engine keeps its own, in-memory view of conversations; this module links each of
//! them to the stored conversation, so both thread a message the same way: the engine is
//! always told the account the stored conversation started on.
//!
//! **Several hosts.** On SQLite there is one host and its engine is the truth. On
//! PostgreSQL several hosts may route the same tenant, so every routing change is a
//! [`Change`]: one transaction that takes the tenant's advisory lock, brings the engine in
//! line with the store (each operator's load as the store counts it across hosts;
//! conversations resolved, handed over or taken back elsewhere; the store's waiting
//! conversations; operators' presence set through other hosts), lets the engine decide,
//! and records the outcome before it commits. Two hosts therefore decide one after the
//! other, each on what the other committed, and no operator is given more than their
//! capacity across hosts. A change costs one lock, one read of the assignments, one of the
//! loads and one of the presence, per delivery (not per message); the assignments read are
//! those changed since this host's last committed change (see `store/assignments.rs`),
//! and every [`FULL_SYNC`] all the engine knows.
//!
//! **Presence** is stored (per tenant and operator): a presence change is written in the
//! change that applies it (a plain write on SQLite), and at start-up every operator takes
//! the presence last set for them (operators never set keep the configured default).

mod decide;
mod held;
mod service_levels;
mod sync;

pub(crate) use decide::{AutoAnswer, Decided};

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::answers::Brand;
use crate::crm::CrmEvent;
use crate::routing::{ConversationNumber, Notice, RoutingEngine, Status, StoredState};
use crate::store::{
    Backend, ConversationStatus, Horizon, RoutingTx, Store, StoredAssignment, StoredPresence,
};
use crate::types::Presence;

pub use crate::types::HOST_AUTHOR;

/// On PostgreSQL, how often an idle host with operators at work re-reads the store (under
/// the routing lock) to give them conversations waiting there: seats freed and
/// conversations queued through other hosts.
const IDLE_SYNC: Duration = Duration::from_secs(2);

/// On PostgreSQL, how often a change reads every conversation the engine knows instead of
/// those changed since the last change. Only a safety net: conversations leave the store
/// (retention, erasure) only once resolved, and the resolve is a change the others read.
const FULL_SYNC: Duration = Duration::from_secs(30);

/// A routing change in progress (see the module docs): on PostgreSQL, the transaction
/// holding the tenant's routing lock; the engine's notices and the CRM events to record
/// when it ends with [`TenantRouting::finish`]. Dropped without finishing, it rolls back
/// (the next change brings the engine in line with the store again).
pub(crate) struct Change {
    tx: Option<RoutingTx>,
    /// What the engine decided so far.
    pub(crate) notices: Vec<Notice>,
    /// Events recorded before the notices' own (a transfer's).
    events: Vec<CrmEvent>,
    /// Where the change's reads stood (PostgreSQL): the next change reads what changed
    /// from here on, once this one committed.
    horizon: Option<Horizon>,
}

impl Change {
    /// Records `events` before the engine's notices' own (a service level reached before
    /// the re-route it caused).
    pub(crate) fn record_first(&mut self, events: Vec<CrmEvent>) {
        self.events.extend(events);
    }

    /// Marks a conversation resolved in the store, within the change on PostgreSQL.
    pub(crate) async fn record_resolved(
        &mut self,
        store: &Store,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        match &mut self.tx {
            Some(tx) => {
                let change = (id.to_string(), ConversationStatus::Resolved, None);
                tx.record(&[change], &[]).await
            }
            None => {
                store
                    .set_conversation_state(tenant, id, ConversationStatus::Resolved, None)
                    .await
            }
        }
    }

    /// Records that a conversation reached service-level `step`, within the change on
    /// PostgreSQL; returns the step it had, or `None` if it was told before (by this host
    /// before a restart, or by another).
    pub(crate) async fn raise_service_level(
        &mut self,
        store: &Store,
        tenant: &str,
        id: &str,
        step: u8,
    ) -> anyhow::Result<Option<u8>> {
        match &mut self.tx {
            Some(tx) => tx.raise_service_level(id, step).await,
            None => store.raise_service_level(tenant, id, step).await,
        }
    }

    /// Records an operator's presence in the store, within the change on PostgreSQL;
    /// returns what was stored.
    pub(crate) async fn record_presence(
        &mut self,
        store: &Store,
        tenant: &str,
        operator: &str,
        presence: Presence,
    ) -> anyhow::Result<StoredPresence> {
        match &mut self.tx {
            Some(tx) => tx.set_presence(operator, presence).await,
            None => {
                store
                    .set_operator_presence(tenant, operator, presence)
                    .await
            }
        }
    }

    /// Every stored presence of the tenant, read within the change on PostgreSQL.
    async fn stored_presence(
        &mut self,
        store: &Store,
        tenant: &str,
    ) -> anyhow::Result<HashMap<String, StoredPresence>> {
        match &mut self.tx {
            Some(tx) => tx.operator_presence().await,
            None => store.operator_presence(tenant).await,
        }
    }

    /// Records that a person handed a conversation to `to`, and tells the CRM.
    pub(crate) async fn record_transfer(
        &mut self,
        store: &Store,
        tenant: &str,
        id: &str,
        to: &str,
    ) -> anyhow::Result<()> {
        match &mut self.tx {
            Some(tx) => tx.set_assignee(id, to, true).await?,
            None => {
                store
                    .set_conversation_assignee(tenant, id, to, true)
                    .await?
            }
        }
        self.events.push(CrmEvent::ConversationAssigned {
            conversation_id: id.into(),
            operator: to.to_string(),
            reason: "transferred".to_string(),
        });
        Ok(())
    }
}

/// One tenant's routing: the engine and the links between its conversations and the store's.
pub(crate) struct TenantRouting {
    pub(crate) engine: RoutingEngine,
    to_store: HashMap<ConversationNumber, String>,
    to_engine: HashMap<String, (ConversationNumber, String)>,
    /// The tenant's brands by id: answers, hours, service levels.
    brands: BTreeMap<String, Brand>,
    /// The wait each waiting customer was last told, by stored conversation.
    told: HashMap<String, decide::Told>,
    /// When each customer (channel, customer id) was last sent an automatic answer.
    customer_told: HashMap<(String, String), u64>,
    /// How far each unanswered conversation got toward missing its service level.
    service_steps: HashMap<ConversationNumber, service_levels::Watched>,
    /// When the engine was last brought in line with the store (PostgreSQL).
    synced_at: Option<Instant>,
    /// When it last read every conversation it knows (PostgreSQL).
    fully_synced_at: Option<Instant>,
    /// Where the reads of the last change this host committed stood (PostgreSQL).
    horizon: Option<Horizon>,
    /// Who holds each assigned conversation, as of that change's reads (PostgreSQL).
    held: held::Held,
    /// When the ticker last measured service levels (PostgreSQL paces it).
    measured_at: Option<Instant>,
    /// The stored presence of each operator as this host last applied or wrote it: a
    /// stored row that differs was set through another host (PostgreSQL).
    presence_seen: HashMap<String, StoredPresence>,
}

impl TenantRouting {
    pub(crate) fn new(engine: RoutingEngine, brands: Vec<Brand>) -> Self {
        TenantRouting {
            engine,
            to_store: HashMap::new(),
            to_engine: HashMap::new(),
            brands: brands.into_iter().map(|b| (b.id.clone(), b)).collect(),
            told: HashMap::new(),
            customer_told: HashMap::new(),
            service_steps: HashMap::new(),
            synced_at: None,
            fully_synced_at: None,
            horizon: None,
            held: held::Held::default(),
            measured_at: None,
            presence_seen: HashMap::new(),
        }
    }

    /// Notes the presence this host just stored for `operator` (`None` forgets it, so
    /// the next change on PostgreSQL applies whatever the store has).
    pub(crate) fn saw_presence(&mut self, operator: &str, stored: Option<StoredPresence>) {
        match stored {
            Some(stored) => {
                self.presence_seen.insert(operator.to_string(), stored);
            }
            None => {
                self.presence_seen.remove(operator);
            }
        }
    }

    /// Gives the engine the stored presence of each operator on its roster whose stored
    /// row changed since this host last saw it (all of them, the first time): coming
    /// online drains the queue, going offline re-routes their unanswered conversations,
    /// as a local change would. Returns what the engine decided.
    async fn adopt_presence(&mut self, stored: HashMap<String, StoredPresence>) -> Vec<Notice> {
        let mut stored: Vec<(String, StoredPresence)> = stored
            .into_iter()
            .filter(|(operator, row)| self.presence_seen.get(operator) != Some(row))
            .collect();
        stored.sort_by(|a, b| a.0.cmp(&b.0));
        let mut notices = Vec::new();
        for (operator, row) in stored {
            let Some(state) = self.engine.roster().state(&operator) else {
                // Not on this host's roster (not configured here, or not yet).
                continue;
            };
            if state.presence != row.presence {
                match self.engine.set_presence(&operator, row.presence).await {
                    Ok(more) => notices.extend(more),
                    Err(e) => {
                        tracing::warn!(operator, "applying a stored presence: {e}");
                        continue;
                    }
                }
            }
            self.presence_seen.insert(operator, row);
        }
        notices
    }

    /// Gives `operators` (just added to the roster by a reload) the presence stored for
    /// them, within `change`.
    pub(crate) async fn adopt_stored_presence(
        &mut self,
        store: &Store,
        tenant: &str,
        change: &mut Change,
        operators: &[String],
    ) -> anyhow::Result<()> {
        if operators.is_empty() {
            return Ok(());
        }
        let mut stored = change.stored_presence(store, tenant).await?;
        stored.retain(|operator, _| operators.contains(operator));
        for operator in operators {
            self.presence_seen.remove(operator);
        }
        let notices = self.adopt_presence(stored).await;
        change.notices.extend(notices);
        Ok(())
    }

    /// Replaces the brands' answers, hours and service levels (a config reload).
    pub(crate) fn set_brands(&mut self, brands: Vec<Brand>) {
        self.brands = brands.into_iter().map(|b| (b.id.clone(), b)).collect();
    }

    /// The configured brand of an engine conversation, if any.
    pub(crate) fn brand_of(&self, id: ConversationNumber) -> Option<&Brand> {
        let brand = self.engine.conversation(id)?.brand.as_deref()?;
        self.brands.get(brand)
    }

    /// The engine's id of a stored conversation.
    pub(crate) fn engine_id(&self, store_id: &str) -> Option<ConversationNumber> {
        self.to_engine.get(store_id).map(|(id, _)| *id)
    }

    /// Whether the tenant's engine may be out of line with the store: several hosts
    /// share a PostgreSQL database.
    fn shared(store: &Store) -> bool {
        store.backend() == Backend::Postgres
    }
}

/// What the engine is told about a stored conversation.
fn stored_state(stored: &StoredAssignment) -> StoredState {
    let at = |ms: Option<i64>| ms.and_then(|ms| u64::try_from(ms).ok());
    StoredState {
        status: engine_status(stored.status),
        assignee: stored.assignee.clone(),
        assigned_at: at(stored.assigned_at),
        transferred: stored.transferred,
        first_response_at: at(stored.first_response_at),
    }
}

/// What the engine is told about a conversation the store no longer has.
fn gone() -> StoredState {
    StoredState {
        status: Status::Resolved,
        assignee: None,
        assigned_at: None,
        transferred: false,
        first_response_at: None,
    }
}

/// The engine's status of a stored one.
fn engine_status(status: ConversationStatus) -> Status {
    match status {
        ConversationStatus::Assigned => Status::Assigned,
        ConversationStatus::Resolved => Status::Resolved,
        ConversationStatus::Open => Status::Open,
        ConversationStatus::Waiting => Status::Waiting,
    }
}
