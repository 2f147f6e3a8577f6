//! Keeping a tenant's engine in line with the store: opening a change (the tenant's lock
//! and a sync on PostgreSQL), finishing it, taking up conversations the engine has not
//! seen (a restart, another host) and restoring the store's state at start-up.

use std::time::Instant;

use crate::crm::CrmEvent;
use crate::routing::{
    Conversation, ConversationNumber, CustomerMessage, Notice, Status, ThreadKey,
};
use crate::store::{
    ConversationStatus, Horizon, RoutedConversation, RoutingTx, Store, StoredAssignment,
};

use super::decide::{AutoAnswer, auto_reply};
use super::{Change, FULL_SYNC, IDLE_SYNC, TenantRouting, engine_status, gone, stored_state};

impl TenantRouting {
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
                horizon: None,
            });
        };
        // Until this change commits, the engine may be ahead of the store: a change that
        // fails leaves the next one to read everything again.
        let since = self.horizon.take();
        let horizon = tx.horizon();
        let notices = self
            .sync(store, tenant, &mut tx, since, wanted, brand)
            .await?;
        Ok(Change {
            tx: Some(tx),
            notices,
            events: Vec::new(),
            horizon: Some(horizon),
        })
    }

    /// Brings the engine in line with the store, inside a change holding the routing lock:
    /// takes up the conversations asked for and those waiting in the store, closes or
    /// moves the ones resolved, handed over or taken back elsewhere, sets each operator's
    /// load to the store's count, and offers the queue to seats that freed. Returns the
    /// assignments made.
    ///
    /// With `since` (the horizon of the last change this host committed) only the
    /// conversations changed from then on are read, and those asked for; every
    /// [`FULL_SYNC`], or without it, every conversation the engine knows (a deletion
    /// leaves no changed row behind, though only resolved conversations are deleted).
    pub(super) async fn sync<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        tx: &mut RoutingTx,
        since: Option<Horizon>,
        wanted: &[(&str, bool)],
        brand: &B,
    ) -> anyhow::Result<Vec<Notice>>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let since = since.filter(|_| {
            self.fully_synced_at
                .is_some_and(|at| at.elapsed() < FULL_SYNC)
        });
        // A full read asks for every conversation the engine knows, by id.
        let every_known: Vec<(ConversationNumber, String)> = match since {
            Some(_) => Vec::new(),
            None => self
                .engine
                .conversations()
                .iter()
                .filter(|c| c.status != Status::Resolved)
                .filter_map(|c| Some((c.id, self.to_store.get(&c.id)?.clone())))
                .collect(),
        };
        let mut ids: Vec<&str> = every_known.iter().map(|(_, id)| id.as_str()).collect();
        ids.extend(
            wanted
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !self.to_engine.contains_key(*id)),
        );
        if since.is_none() {
            // Read before the assignments, so the newer of two reads of a row wins.
            self.held.reset(tx.held().await?);
        }
        let stored = tx.assignments(&ids, since.as_ref()).await?;
        for row in stored.values() {
            self.held.apply(row);
        }
        // The conversations the engine knows to bring in line: every one after a full
        // read, else those among what changed.
        let known: Vec<(ConversationNumber, String)> = match since {
            Some(_) => stored
                .keys()
                .filter_map(|id| Some((self.to_engine.get(id)?.0, id.clone())))
                .collect(),
            None => {
                self.fully_synced_at = Some(Instant::now());
                every_known
            }
        };
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
        let loads = self.held.loads();
        let freed =
            self.engine.roster().iter().any(|(operator, state)| {
                loads.get(&operator.id).copied().unwrap_or(0) < state.load
            });
        self.engine.set_loads(loads);
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
    /// answers are queued: first wait estimates, and corrections of estimates that turned
    /// out wrong.
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
            horizon,
        } = change;
        let (changes, notice_events, estimates) = self.outcomes(tenant, notices);
        events.extend(notice_events);
        events.extend(after);
        match tx {
            Some(mut tx) => {
                tx.record(&changes, &events).await?;
                tx.commit().await?;
                self.horizon = horizon;
            }
            None => store.record_routing(tenant, &changes, &events).await?,
        }
        self.answer(store, tenant, estimates).await
    }

    /// Queues the automatic answers a recorded change calls for: first wait estimates
    /// (`estimates`), then corrections of estimates that turned out wrong.
    pub(crate) async fn answer(
        &mut self,
        store: &Store,
        tenant: &str,
        estimates: Vec<AutoAnswer>,
    ) -> anyhow::Result<()> {
        let mut answers = estimates;
        answers.extend(self.corrections());
        let now = self.engine.now();
        for answer in answers {
            if auto_reply(
                store,
                tenant,
                &answer.conversation,
                &answer.text,
                &answer.key,
            )
            .await?
            {
                self.sent(&answer, now);
            }
        }
        Ok(())
    }

    /// Whether the ticker has something to do now: always on SQLite (the engine's timers);
    /// on PostgreSQL, when a timer is due, when service levels or told waits were last
    /// measured [`IDLE_SYNC`] ago, or when operators are at work here and the store was
    /// last read [`IDLE_SYNC`] ago (seats freed and conversations queued through other
    /// hosts).
    pub(crate) fn tick_due(&self, store: &Store) -> bool {
        if !Self::shared(store) {
            return true;
        }
        let now = self.engine.now();
        if self.engine.next_deadline().is_some_and(|at| at <= now) {
            return true;
        }
        // Service levels and wait corrections are measured every IDLE_SYNC (each time a
        // lock and a read of the store), whatever else brings the store in line.
        let measures = self.watches_service_levels() || !self.told.is_empty();
        if measures && self.measured_at.is_none_or(|at| at.elapsed() >= IDLE_SYNC) {
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
    ) -> anyhow::Result<Option<ConversationNumber>>
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
    pub(super) async fn take_up_stored<B>(
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
    pub(super) fn unlink(&mut self, id: ConversationNumber) {
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
    pub(super) async fn forget_stale(
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
    pub(super) fn take_up(
        &mut self,
        stored: RoutedConversation,
        brand: &impl Fn(&str, &str) -> Option<String>,
    ) -> ConversationNumber {
        let RoutedConversation {
            record,
            assigned_at,
            transferred,
            last_text,
            messages,
            language,
        } = stored;
        let at = |ms: i64| u64::try_from(ms).unwrap_or(0);
        let status = engine_status(record.status);
        // Rows assigned before the store recorded assignment times: the conversation's last
        // change is the closest (later, so an offer timeout never fires early).
        let assigned_at =
            (record.assignee.is_some()).then(|| at(assigned_at.unwrap_or(record.updated_at)));
        let conversation = Conversation {
            id: ConversationNumber(0),
            thread: ThreadKey {
                channel: record.channel.clone(),
                account: record.account.clone(),
                key: record.thread_key.clone(),
            },
            brand: brand(&record.channel, &record.account),
            language,
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
}
