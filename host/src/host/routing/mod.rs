//! The host's side of routing: every new customer message goes through the tenant's
//! [`RoutingEngine`], and what the engine decides is recorded in the store and told to the
//! CRM (assignments, queue places with an honest estimate, optionally as an auto-reply).
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
//! loads and one of the presence, per delivery (not per message).
//!
//! **Presence** is stored (per tenant and operator): a presence change is written in the
//! change that applies it (a plain write on SQLite), and at start-up every operator takes
//! the presence last set for them (operators never set keep the configured default).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::connectors::Connector;
use crate::crm::CrmEvent;
use crate::metrics::Metrics;
use crate::routing::{
    Conversation, ConversationId, CustomerMessage, Notice, RoutingEngine, Status, StoredState,
    ThreadKey,
};
use crate::store::{
    Backend, ConversationStatus, Ingested, RoutedConversation, RoutingTx, Store, StoredAssignment,
    StoredPresence,
};
use crate::types::{MessageKind, Presence};

/// Author recorded for messages the host itself sends (auto-replies).
pub const HOST_AUTHOR: &str = "centralino";

/// On PostgreSQL, how often an idle host with operators at work re-reads the store (under
/// the routing lock) to give them conversations waiting there: seats freed and
/// conversations queued through other hosts.
const IDLE_SYNC: Duration = Duration::from_secs(2);

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
}

impl Change {
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
            conversation_id: id.to_string(),
            operator: to.to_string(),
            reason: "transferred".to_string(),
        });
        Ok(())
    }
}

/// One tenant's routing: the engine and the links between its conversations and the store's.
pub(crate) struct TenantRouting {
    pub(crate) engine: RoutingEngine,
    to_store: HashMap<ConversationId, String>,
    to_engine: HashMap<String, (ConversationId, String)>,
    auto_reply: bool,
    /// When the engine was last brought in line with the store (PostgreSQL).
    synced_at: Option<Instant>,
    /// The stored presence of each operator as this host last applied or wrote it: a
    /// stored row that differs was set through another host (PostgreSQL).
    presence_seen: HashMap<String, StoredPresence>,
}

impl TenantRouting {
    pub(crate) fn new(engine: RoutingEngine, auto_reply: bool) -> Self {
        TenantRouting {
            engine,
            to_store: HashMap::new(),
            to_engine: HashMap::new(),
            auto_reply,
            synced_at: None,
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

    /// Whether waiting customers get the wait estimate as an automatic reply (a config
    /// reload may change it).
    pub(crate) fn set_auto_reply(&mut self, enabled: bool) {
        self.auto_reply = enabled;
    }

    /// The engine's id of a stored conversation.
    pub(crate) fn engine_id(&self, store_id: &str) -> Option<ConversationId> {
        self.to_engine.get(store_id).map(|(id, _)| *id)
    }

    /// Whether the tenant's engine may be out of line with the store: several hosts
    /// share a PostgreSQL database.
    fn shared(store: &Store) -> bool {
        store.backend() == Backend::Postgres
    }

    /// Starts a routing change. `wanted` are the stored conversations the change is about
    /// (with whether each was just opened): the engine takes up the ones it does not know
    /// (a restart, another host), except new ones nobody routed yet, which the caller
    /// routes itself. On PostgreSQL the change holds the tenant's routing lock and the
    /// engine is brought in line with the store first (see the module docs); freed seats
    /// then go to the queue.
    pub(crate) async fn open<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        wanted: &[(&str, bool)],
        brand: &B,
    ) -> anyhow::Result<Change>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let Some(mut tx) = store.begin_routing(tenant).await? else {
            // One host: the engine is the truth; it only takes up what it has not seen
            // since it started.
            let mut taken = false;
            for (id, new) in wanted {
                if !new && !self.to_engine.contains_key(*id) {
                    taken |= self.take_up_stored(store, tenant, id, brand).await?;
                }
            }
            let notices = if taken {
                // A waiting conversation taken up may find a free seat at once.
                self.engine.resume().await
            } else {
                Vec::new()
            };
            return Ok(Change {
                tx: None,
                notices,
                events: Vec::new(),
            });
        };
        let notices = self.sync(store, tenant, &mut tx, wanted, brand).await?;
        Ok(Change {
            tx: Some(tx),
            notices,
            events: Vec::new(),
        })
    }

    /// Brings the engine in line with the store, inside a change holding the routing lock:
    /// takes up the conversations asked for and those waiting in the store, closes or
    /// moves the ones resolved, handed over or taken back elsewhere, sets each operator's
    /// load to the store's count, and offers the queue to seats that freed. Returns the
    /// assignments made.
    async fn sync<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        tx: &mut RoutingTx,
        wanted: &[(&str, bool)],
        brand: &B,
    ) -> anyhow::Result<Vec<Notice>>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let known: Vec<(ConversationId, String)> = self
            .engine
            .conversations()
            .iter()
            .filter(|c| c.status != Status::Resolved)
            .filter_map(|c| Some((c.id, self.to_store.get(&c.id)?.clone())))
            .collect();
        let mut ids: Vec<&str> = known.iter().map(|(_, id)| id.as_str()).collect();
        ids.extend(
            wanted
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !self.to_engine.contains_key(*id)),
        );
        let stored = tx.assignments(&ids).await?;
        let mut moved = false;
        // What the engine must know and does not: the conversations asked for (new ones
        // only once another host routed them) and every conversation waiting in the store.
        let mut missing: Vec<&StoredAssignment> = stored
            .values()
            .filter(|s| s.status != ConversationStatus::Resolved)
            .filter(|s| !self.to_engine.contains_key(&s.id))
            .filter(|s| match wanted.iter().find(|(id, _)| *id == s.id) {
                Some((_, true)) => s.status != ConversationStatus::Open,
                Some((_, false)) => true,
                None => s.status == ConversationStatus::Waiting,
            })
            .collect();
        missing.sort_by(|a, b| a.id.cmp(&b.id));
        for s in missing {
            moved |= self.take_up_stored(store, tenant, &s.id, brand).await?;
        }
        // What the engine knows: as the store says now.
        for (engine_id, store_id) in known {
            // Gone from the store: nothing left to route.
            let state = stored.get(&store_id).map_or_else(gone, stored_state);
            let status = state.status;
            if self.engine.sync_conversation(engine_id, state) {
                moved = true;
                if status == Status::Resolved {
                    self.unlink(engine_id);
                }
            }
        }
        let loads = tx.operator_loads().await?;
        let freed =
            self.engine.roster().iter().any(|(operator, state)| {
                loads.get(&operator.id).copied().unwrap_or(0) < state.load
            });
        self.engine.set_loads(&loads);
        // Presence set through other hosts: applied as a local change would be.
        let presence = tx.operator_presence().await?;
        let mut notices = self.adopt_presence(presence).await;
        self.synced_at = Some(Instant::now());
        if moved || freed {
            notices.extend(self.engine.resume().await);
        }
        Ok(notices)
    }

    /// Records what a change decided (the engine's notices, `after` events last) and ends
    /// it: committed, on PostgreSQL, with the routing lock released. Then the automatic
    /// wait estimates are queued.
    pub(crate) async fn finish(
        &mut self,
        store: &Store,
        tenant: &str,
        change: Change,
        after: Vec<CrmEvent>,
    ) -> anyhow::Result<()> {
        let Change {
            tx,
            notices,
            mut events,
        } = change;
        let (changes, notice_events, estimates) = self.outcomes(tenant, notices);
        events.extend(notice_events);
        events.extend(after);
        match tx {
            Some(mut tx) => {
                tx.record(&changes, &events).await?;
                tx.commit().await?;
            }
            None => store.record_routing(tenant, &changes, &events).await?,
        }
        for (id, text) in estimates {
            auto_reply(store, tenant, &id, &text).await?;
        }
        Ok(())
    }

    /// Whether the ticker has something to do now: always on SQLite (the engine's timers);
    /// on PostgreSQL, when a timer is due, or when operators are at work here and the
    /// store was last read [`IDLE_SYNC`] ago (seats freed and conversations queued
    /// through other hosts).
    pub(crate) fn tick_due(&self, store: &Store) -> bool {
        if !Self::shared(store) {
            return true;
        }
        let now = self.engine.now();
        if self.engine.next_deadline().is_some_and(|at| at <= now) {
            return true;
        }
        self.engine.roster().working_capacity(now) > 0
            && self.synced_at.is_none_or(|at| at.elapsed() >= IDLE_SYNC)
    }

    /// The engine's id of a stored conversation, for a check or change that takes no
    /// routing lock (a reply): taken up from the store when the engine does not know it,
    /// and, on PostgreSQL, with the status and assignee the store has now (another host
    /// may have resolved or handed it over). `None` when the store has no such open
    /// conversation. On PostgreSQL nothing is decided here.
    pub(crate) async fn current<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        store_id: &str,
        brand: &B,
    ) -> anyhow::Result<Option<ConversationId>>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        if !Self::shared(store) {
            if self.engine_id(store_id).is_none() {
                let change = self
                    .open(store, tenant, &[(store_id, false)], brand)
                    .await?;
                self.finish(store, tenant, change, Vec::new()).await?;
            }
            return Ok(self.engine_id(store_id));
        }
        let Some(id) = self.engine_id(store_id) else {
            self.take_up_stored(store, tenant, store_id, brand).await?;
            return Ok(self.engine_id(store_id));
        };
        let state = store
            .assignment(tenant, store_id)
            .await?
            .map_or_else(gone, |s| stored_state(&s));
        let resolved = state.status == Status::Resolved;
        self.engine.sync_conversation(id, state);
        if resolved {
            self.unlink(id);
            return Ok(None);
        }
        Ok(Some(id))
    }

    /// Takes up a stored conversation that is not resolved; returns whether it did.
    async fn take_up_stored<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        store_id: &str,
        brand: &B,
    ) -> anyhow::Result<bool>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let Some(stored) = store.routed_conversation(tenant, store_id).await? else {
            return Ok(false);
        };
        if stored.record.status == ConversationStatus::Resolved {
            return Ok(false);
        }
        self.take_up(stored, brand);
        Ok(true)
    }

    /// Forgets the link of a conversation the engine closed.
    fn unlink(&mut self, id: ConversationId) {
        if let Some(store_id) = self.to_store.remove(&id) {
            self.to_engine.remove(&store_id);
        }
    }

    /// Rebuilds the engine's conversations from the store at start-up: every open
    /// conversation with its assignee (who keeps it, counted in their load), the others
    /// back in the queue; every operator takes their stored presence (on PostgreSQL in
    /// the change's sync); then the queue is offered to whoever can take a conversation.
    /// Returns how many conversations were taken up.
    pub(crate) async fn restore<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        brand: &B,
    ) -> anyhow::Result<usize>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let open = store.open_conversations(tenant).await?;
        let count = open.len();
        for stored in open {
            if !self.to_engine.contains_key(&stored.record.id) {
                self.take_up(stored, brand);
            }
        }
        let mut change = self.open(store, tenant, &[], brand).await?;
        if change.tx.is_none() {
            // One host: the stored presence is read once, here (on PostgreSQL every
            // change's sync reads it).
            let stored = store.operator_presence(tenant).await?;
            let notices = self.adopt_presence(stored).await;
            change.notices.extend(notices);
        }
        let notices = self.engine.resume().await;
        change.notices.extend(notices);
        self.finish(store, tenant, change, Vec::new()).await?;
        Ok(count)
    }

    /// The store just opened a conversation on `message`'s thread, yet the engine still has
    /// one open there: it was resolved through another host sharing the database. It is
    /// closed here too (its seat freed), so the new conversation is routed afresh.
    async fn forget_stale(
        &mut self,
        change: &mut Change,
        message: &CustomerMessage,
    ) -> anyhow::Result<()> {
        let Some(stale) = self
            .engine
            .conversations()
            .open_on(&message.thread())
            .map(|c| c.id)
        else {
            return Ok(());
        };
        let notices = self.engine.resolve(stale).await?;
        self.unlink(stale);
        change.notices.extend(notices);
        Ok(())
    }

    /// Gives the engine a stored conversation and links the two ids.
    fn take_up(
        &mut self,
        stored: RoutedConversation,
        brand: &impl Fn(&str, &str) -> Option<String>,
    ) -> ConversationId {
        let RoutedConversation {
            record,
            assigned_at,
            transferred,
            last_text,
            messages,
        } = stored;
        let at = |ms: i64| u64::try_from(ms).unwrap_or(0);
        let status = engine_status(record.status);
        // Rows assigned before the store recorded assignment times: the conversation's last
        // change is the closest (later, so an offer timeout never fires early).
        let assigned_at =
            (record.assignee.is_some()).then(|| at(assigned_at.unwrap_or(record.updated_at)));
        let conversation = Conversation {
            id: ConversationId(0),
            thread: ThreadKey {
                channel: record.channel.clone(),
                account: record.account.clone(),
                key: record.thread_key.clone(),
            },
            brand: brand(&record.channel, &record.account),
            language: None,
            customer: record.customer_id.clone(),
            kind: record.kind,
            status,
            assignee: record.assignee.clone(),
            transferred,
            priority: u8::try_from(record.priority.clamp(0, 255)).unwrap_or(u8::MAX),
            last_text,
            messages: u32::try_from(messages).unwrap_or(u32::MAX),
            created_at: at(record.created_at),
            waiting_since: at(record.created_at),
            assigned_at,
            first_assigned_at: assigned_at,
            first_response_at: record.first_response_at.map(at),
            resolved_at: None,
            offers: u32::from(record.assignee.is_some()),
            excluded: Vec::new(),
        };
        let id = self.engine.restore(conversation);
        self.to_store.insert(id, record.id.clone());
        self.to_engine.insert(record.id, (id, record.account));
        id
    }

    /// Routes newly stored messages, timing each decision, and records the outcome: one
    /// change (one lock and one read of the loads on PostgreSQL) for the whole delivery.
    pub(crate) async fn route<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        connector: &Connector,
        ingested: &[Ingested],
        metrics: &Metrics,
        brand: &B,
    ) -> anyhow::Result<()>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let fresh: Vec<&Ingested> = ingested.iter().filter(|i| !i.duplicate).collect();
        let wanted: Vec<(&str, bool)> = fresh
            .iter()
            .map(|i| (i.conversation_id.as_str(), i.new_conversation))
            .collect();
        // Conversations opened before a restart, or by another host sharing the database,
        // are taken up here.
        let mut change = self.open(store, tenant, &wanted, brand).await?;
        for item in fresh {
            let mut message = CustomerMessage::from_message(&connector.name, &item.message);
            message.brand = connector.brands.get(&item.message.account).cloned();
            if let Some((_, account)) = self.to_engine.get(&item.conversation_id) {
                message.account = account.clone();
                message.brand = connector.brands.get(account).cloned().or(message.brand);
            }
            if item.new_conversation && !self.to_engine.contains_key(&item.conversation_id) {
                self.forget_stale(&mut change, &message).await?;
            }
            let account = message.account.clone();
            let decisions = self.engine.stats().decisions;
            let started = Instant::now();
            let arrival = self.engine.receive(message).await;
            // A message joining an assigned conversation runs no chain: not a decision.
            if self.engine.stats().decisions > decisions {
                metrics.routing_decision(tenant, started.elapsed());
            }
            self.to_store
                .insert(arrival.conversation, item.conversation_id.clone());
            self.to_engine.insert(
                item.conversation_id.clone(),
                (arrival.conversation, account),
            );
            change.notices.extend(arrival.notices);
        }
        self.finish(store, tenant, change, Vec::new()).await
    }

    /// The store's changes, the CRM's events and the automatic wait estimates the
    /// engine's notices call for.
    #[allow(clippy::type_complexity)]
    fn outcomes(
        &self,
        tenant: &str,
        notices: Vec<Notice>,
    ) -> (
        Vec<(String, ConversationStatus, Option<String>)>,
        Vec<CrmEvent>,
        Vec<(String, String)>,
    ) {
        let mut changes = Vec::with_capacity(notices.len());
        let mut events = Vec::with_capacity(notices.len());
        let mut estimates = Vec::new();
        for notice in notices {
            match notice {
                Notice::Assigned {
                    conversation,
                    operator,
                    reason,
                    ..
                } => {
                    let Some(id) = self.to_store.get(&conversation) else {
                        continue;
                    };
                    changes.push((
                        id.clone(),
                        ConversationStatus::Assigned,
                        Some(operator.clone()),
                    ));
                    events.push(CrmEvent::ConversationAssigned {
                        conversation_id: id.clone(),
                        operator,
                        reason,
                    });
                }
                Notice::Queued {
                    conversation,
                    estimate,
                    ..
                } => {
                    let Some(id) = self.to_store.get(&conversation) else {
                        continue;
                    };
                    changes.push((id.clone(), ConversationStatus::Waiting, None));
                    let text = estimate.auto_reply();
                    let position = u32::try_from(estimate.position()).unwrap_or(u32::MAX);
                    events.push(CrmEvent::ConversationQueued {
                        conversation_id: id.clone(),
                        position,
                        estimate: text.clone(),
                    });
                    if self.auto_reply {
                        estimates.push((id.clone(), text));
                    }
                }
                Notice::OfferExpired {
                    conversation,
                    operator,
                } => {
                    tracing::info!(tenant, %conversation, operator, "offer expired; re-routing");
                }
            }
        }
        (changes, events, estimates)
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

/// Queues the wait estimate to the customer, once per conversation, from the account the
/// customer wrote to.
async fn auto_reply(
    store: &Store,
    tenant: &str,
    conversation_id: &str,
    text: &str,
) -> anyhow::Result<()> {
    let Some(conversation) = store.conversation(tenant, conversation_id).await? else {
        return Ok(());
    };
    let in_reply_to = store.latest_inbound_id(tenant, conversation_id).await?;
    let mut text = text.to_string();
    if conversation.kind == MessageKind::PublicPost
        && let Some(handle) = &conversation.customer_handle
    {
        // A public reply on X must mention the customer to land in their thread.
        text = format!("@{handle} {text}");
    }
    let message = conversation.reply(
        None,
        in_reply_to,
        text,
        format!("auto-wait:{conversation_id}"),
    );
    store
        .enqueue_reply(
            tenant,
            &conversation.channel,
            conversation_id,
            HOST_AUTHOR,
            &message,
        )
        .await?;
    Ok(())
}
