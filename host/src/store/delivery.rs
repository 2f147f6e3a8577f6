//! A webhook delivery in one transaction: its messages, receipts, deletions and edits with
//! every CRM event they cause, and, on SQLite, what routing decided for it.
//!
//! [`Store::begin_delivery`] opens the delivery's transaction; the host records the
//! routing outcome in it ([`OpenDelivery::record_routing`]) and commits once
//! ([`OpenDelivery::commit`]): one commit, so one wait for the disk, per delivery.
//!
//! **On SQLite a delivery of messages is written once routing has decided.** Nothing can
//! race the store's one connection, so the delivery's reads (duplicates, erasures, open
//! threads, known authors) tell at once what storing it will do, ids included: that is
//! what routing gets. Its writes wait in the [`OpenDelivery`] until the routing outcome
//! is recorded, and the conversations it opens are then inserted already routed, with
//! the routing events in the same insert as the delivery's own. Inserting a conversation
//! `open` and updating it to `assigned` moved three index entries per conversation and cost
//! as much as the insert (`BENCHMARKS.md` §2). A delivery with receipts, deletions or edits
//! is written at once (they may name a message of the same delivery).
//! Dropped without committing, everything rolls back and the platform is answered with a
//! retry. On SQLite the store has one connection, so while a delivery is open nothing
//! else reaches the database: whatever routing reads meanwhile goes through the open
//! delivery too.
//!
//! Deliveries that arrive while another is being written share its commit: a
//! [`DeliveryGroup`] is one transaction in which each delivery is written in a savepoint
//! of its own ([`DeliveryGroup::begin_delivery`]), so one that fails is rolled back alone,
//! and one commit (one wait for the disk) makes the whole group durable.
//!
//! A group's deliveries of messages alone can also be read and written in two steps
//! ([`DeliveryGroup::read`], [`DeliveryGroup::write`]), so the host can read one while
//! the one before is routed (`host/delivery/ahead.rs` says when that is safe); the
//! savepoint then spans the writes only, since the reads change nothing.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use anyhow::Context as _;

use super::assignments::{RoutedConversation, routed_conversation_in};
use super::sink::Sink;
use super::{Amendments, Applied, Backend, ConversationStatus, Ingested, Store, ingest, ms};
use crate::crm::CrmEvent;
use crate::types::Message;

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// A delivery written but not committed (see the module docs).
#[cfg_attr(feature = "test-support", visibility::make(pub))]
pub(crate) struct OpenDelivery<'c> {
    /// The delivery's own transaction, or its savepoint in a [`DeliveryGroup`].
    tx: sqlx::Transaction<'c, sqlx::Any>,
    backend: Backend,
    tenant: String,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
    /// Whether an author of the delivery's messages was filed under a customer before it.
    returning: bool,
    /// On SQLite, the delivery's messages, read and planned but not written yet (see the
    /// module docs).
    pending: Option<Pending>,
}

/// A delivery's messages waiting for its routing outcome.
struct Pending {
    channel: String,
    messages: Vec<Message>,
    plan: ingest::Plan,
}

impl Store {
    /// Stores one webhook delivery in one transaction: its messages (as
    /// [`Store::ingest`]) and what amends messages stored before, with every CRM event they
    /// cause.
    pub(crate) async fn ingest_delivery(
        &self,
        tenant: &str,
        channel: &str,
        messages: Vec<Message>,
        amendments: &Amendments,
    ) -> anyhow::Result<(Vec<Ingested>, Applied)> {
        let (delivery, ingested, applied) = self
            .begin_delivery(tenant, channel, messages, amendments)
            .await?;
        delivery.commit().await?;
        Ok((ingested, applied))
    }

    /// [`Store::ingest`], leaving the transaction open for the routing outcome
    /// (benchmarks: the host's ingest path, one stage at a time). On SQLite the messages
    /// are only read here, and written by [`OpenDelivery::record_routing`] or
    /// [`OpenDelivery::commit`].
    #[cfg(feature = "test-support")]
    pub async fn begin_ingest(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
    ) -> anyhow::Result<(OpenDelivery<'static>, Vec<Ingested>)> {
        let (delivery, ingested, _) = self
            .begin_delivery(tenant, channel, messages.to_vec(), &Amendments::default())
            .await?;
        Ok((delivery, ingested))
    }

    /// [`Store::ingest_delivery`], leaving the transaction open for the caller to add the
    /// routing outcome and commit.
    pub(crate) async fn begin_delivery(
        &self,
        tenant: &str,
        channel: &str,
        messages: Vec<Message>,
        amendments: &Amendments,
    ) -> anyhow::Result<(OpenDelivery<'static>, Vec<Ingested>, Applied)> {
        let tx = self.begin_writing().await?;
        OpenDelivery::new(tx, self.backend, tenant, self.clock.clone())
            .write(channel, messages, amendments)
            .await
    }

    /// Opens a transaction for several deliveries ([`DeliveryGroup`]).
    pub(crate) async fn begin_group(&self) -> anyhow::Result<DeliveryGroup> {
        Ok(DeliveryGroup {
            tx: self.begin_writing().await?,
            backend: self.backend,
            clock: self.clock.clone(),
        })
    }
}

impl Store {
    /// Whether this store has a connection for reading beside its writer
    /// ([`Store::read_beside`]): a SQLite file opened for writing.
    pub(crate) fn reads_beside(&self) -> bool {
        self.reader.is_some()
    }

    /// [`DeliveryGroup::read`] on the store's reading connection, in a read transaction of
    /// its own, while the writer runs a group's other deliveries: what it finds is what
    /// was committed. So it is asked only for a delivery that shares no message, thread or
    /// author with a delivery of the open group (see `host/delivery/ahead.rs`), and the
    /// group's commit is the only write that can happen meanwhile.
    pub(crate) async fn read_beside(
        &self,
        tenant: &str,
        channel: &str,
        messages: Vec<Message>,
    ) -> anyhow::Result<(ReadDelivery, Vec<Ingested>)> {
        let Some(reader) = &self.reader else {
            anyhow::bail!("this store has no connection for reading beside its writer");
        };
        let mut tx = reader.begin().await?;
        let read = read_delivery(
            &mut tx,
            self.backend,
            self.clock.clone(),
            tenant,
            channel,
            messages,
        )
        .await;
        // It wrote nothing; ending it lets a checkpoint go past what it saw. A failed read
        // is what the caller hears of, whatever ending it said.
        let ended = tx.rollback().await;
        let read = read?;
        ended?;
        Ok(read)
    }
}

/// Reads a delivery of messages alone in `tx` (see [`DeliveryGroup::read`]).
async fn read_delivery(
    tx: &mut Tx<'_>,
    backend: Backend,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
    tenant: &str,
    channel: &str,
    messages: Vec<Message>,
) -> anyhow::Result<(ReadDelivery, Vec<Ingested>)> {
    anyhow::ensure!(
        !super::may_race(backend) && !messages.is_empty(),
        "a delivery is read ahead of its writing only on SQLite, and only with messages"
    );
    let now = ms(crate::clock::read(clock.as_ref()));
    let (pending, ingested) = read_pending(tx, backend, tenant, channel, messages, now).await?;
    let returning = pending.plan.returning();
    let helpers = returning_helpers(tx, backend, tenant, channel, returning, &ingested).await?;
    let read = ReadDelivery {
        tenant: tenant.to_string(),
        helpers,
        pending,
        clock,
    };
    Ok((read, ingested))
}

/// Several webhook deliveries in one transaction (see the module docs): each is written in
/// a savepoint of its own, and [`DeliveryGroup::commit`] makes them durable together.
pub(crate) struct DeliveryGroup {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
}

impl DeliveryGroup {
    /// [`Store::begin_delivery`] inside the group, in a savepoint: committing the
    /// [`OpenDelivery`] releases the savepoint (the delivery is then part of the group's
    /// commit); dropping it, or an error here, rolls back this delivery alone.
    pub(crate) async fn begin_delivery(
        &mut self,
        tenant: &str,
        channel: &str,
        messages: Vec<Message>,
        amendments: &Amendments,
    ) -> anyhow::Result<(OpenDelivery<'_>, Vec<Ingested>, Applied)> {
        use sqlx::Acquire as _;
        let savepoint = (&mut self.tx).begin().await?;
        OpenDelivery::new(savepoint, self.backend, tenant, self.clock.clone())
            .write(channel, messages, amendments)
            .await
    }

    /// Reads a delivery of messages alone inside the group, writing nothing (so in no
    /// savepoint): what storing it will do, ids included, and the last helpers of its
    /// authors filed before. [`DeliveryGroup::write`] writes it once routing has decided.
    ///
    /// Another delivery of the group may be written between the two: one that shares
    /// none of this one's messages, threads and authors changes nothing these reads found
    /// (the host reads ahead only then, see `host/delivery/ahead.rs`).
    pub(crate) async fn read(
        &mut self,
        tenant: &str,
        channel: &str,
        messages: Vec<Message>,
    ) -> anyhow::Result<(ReadDelivery, Vec<Ingested>)> {
        let clock = self.clock.clone();
        read_delivery(&mut self.tx, self.backend, clock, tenant, channel, messages).await
    }

    /// The routing state of stored conversations (those not resolved are for the engine to
    /// take up), read inside the group.
    pub(crate) async fn routed_conversations(
        &mut self,
        tenant: &str,
        ids: &[String],
    ) -> anyhow::Result<Vec<RoutedConversation>> {
        routed_conversations(&mut self.tx, tenant, ids).await
    }

    /// Writes a delivery [`DeliveryGroup::read`] read, with its routing outcome, in a
    /// savepoint: on `Err` this delivery alone is rolled back, and the group goes on.
    pub(crate) async fn write(
        &mut self,
        read: ReadDelivery,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<()> {
        self.in_savepoint(async |tx| read.write_to(&mut Sink::Run(tx), changes, events).await)
            .await
    }

    /// Runs the writes of a delivery recorded on the host's side ([`ReadDelivery::record`]),
    /// in a savepoint, as [`DeliveryGroup::write`] does.
    pub(crate) async fn run(&mut self, recorded: Recorded) -> anyhow::Result<()> {
        self.in_savepoint(async |tx| super::sink::run(tx, recorded.0).await)
            .await
    }

    /// Runs `write` in a savepoint of the group, released when it succeeds.
    async fn in_savepoint(
        &mut self,
        write: impl AsyncFnOnce(&mut Tx<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        use sqlx::Acquire as _;
        let mut savepoint = (&mut self.tx).begin().await?;
        write(&mut savepoint).await?;
        savepoint
            .commit()
            .await
            .context("releasing a webhook delivery's savepoint")
    }

    /// Commits every delivery of the group whose savepoint was released.
    pub(crate) async fn commit(self) -> anyhow::Result<()> {
        self.tx
            .commit()
            .await
            .context("committing a group of webhook deliveries")
    }
}

/// A delivery of messages alone read inside a [`DeliveryGroup`] and waiting for its routing
/// outcome to be written ([`DeliveryGroup::read`]).
pub(crate) struct ReadDelivery {
    tenant: String,
    pending: Pending,
    /// The last operator who helped each returning author (platform id), and when.
    helpers: HashMap<String, (String, u64)>,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
}

/// The writes of a delivery, built and bound, for [`DeliveryGroup::run`].
pub(crate) struct Recorded(Vec<super::sink::Statement>);

impl ReadDelivery {
    /// Whether its writes can be built before they run: they read nothing. Only an
    /// author's e-mail address or phone number can make them read (when new to the store,
    /// the other customers it matches, for the CRM's suggestions), so a delivery whose
    /// messages carry one is not recordable.
    pub(crate) fn recordable(&self) -> bool {
        self.pending
            .messages
            .iter()
            .all(|m| crate::conventions::contact(m) == (None, None))
    }

    /// Builds the delivery's writes with its routing outcome, the statements
    /// [`DeliveryGroup::write`] would run, for [`DeliveryGroup::run`]: on the host's side,
    /// while the group's connection runs the writes before (see `sink.rs`).
    pub(crate) async fn record(
        self,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<Recorded> {
        let mut statements = Vec::new();
        self.write_to(&mut Sink::Record(&mut statements), changes, events)
            .await?;
        Ok(Recorded(statements))
    }

    /// Sends the delivery's writes with its routing outcome to `sink`.
    async fn write_to(
        self,
        sink: &mut Sink<'_, '_>,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<()> {
        let now = crate::clock::read(self.clock.as_ref());
        // Read ahead only on SQLite (`DeliveryGroup::read`).
        let backend = Backend::Sqlite;
        let pending = Some(self.pending);
        record(sink, backend, &self.tenant, pending, changes, events, now).await
    }

    /// The last operator who helped each of the delivery's returning authors (platform
    /// id), and when, as [`Store::helpers`] reads them.
    pub(crate) fn helpers(&self) -> &HashMap<String, (String, u64)> {
        &self.helpers
    }
}

impl<'c> OpenDelivery<'c> {
    fn new(
        tx: sqlx::Transaction<'c, sqlx::Any>,
        backend: Backend,
        tenant: &str,
        clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
    ) -> Self {
        OpenDelivery {
            tx,
            backend,
            tenant: tenant.to_string(),
            clock,
            returning: false,
            pending: None,
        }
    }

    /// Writes the delivery's messages and amendments with every CRM event they cause; on
    /// SQLite, a delivery of messages alone is only read, and written with its
    /// routing outcome (see the module docs).
    async fn write(
        mut self,
        channel: &str,
        messages: Vec<Message>,
        amendments: &Amendments,
    ) -> anyhow::Result<(Self, Vec<Ingested>, Applied)> {
        let now = ms(crate::clock::read(self.clock.as_ref()));
        let (tx, backend, tenant) = (&mut self.tx, self.backend, self.tenant.as_str());
        let defer = !super::may_race(backend) && !messages.is_empty() && amendments.is_empty();
        if defer {
            let (pending, ingested) =
                read_pending(tx, backend, tenant, channel, messages, now).await?;
            self.returning = pending.plan.returning();
            self.pending = Some(pending);
            return Ok((self, ingested, Applied::default()));
        }
        let (ingested, returning, applied) = super::receipts::store_and_amend(
            tx, backend, tenant, channel, &messages, amendments, now,
        )
        .await?;
        self.returning = returning;
        Ok((self, ingested, applied))
    }

    /// The stored routing state of the conversations `ids` (those found), read inside the
    /// delivery.
    pub(crate) async fn routed_conversations(
        &mut self,
        ids: &[String],
    ) -> anyhow::Result<Vec<RoutedConversation>> {
        routed_conversations(&mut self.tx, &self.tenant, ids).await
    }

    /// The last helpers of the authors of `ingested`'s fresh messages, read inside the
    /// delivery (see [`returning_helpers`]).
    pub(crate) async fn helpers(
        &mut self,
        channel: &str,
        ingested: &[Ingested],
    ) -> anyhow::Result<HashMap<String, (String, u64)>> {
        let (tx, backend, tenant) = (&mut self.tx, self.backend, self.tenant.as_str());
        returning_helpers(tx, backend, tenant, channel, self.returning, ingested).await
    }

    /// [`Store::record_routing`], inside the delivery.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn record_routing(
        &mut self,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<()> {
        let now = crate::clock::read(self.clock.as_ref());
        let pending = self.pending.take();
        record(
            &mut Sink::Run(&mut self.tx),
            self.backend,
            &self.tenant,
            pending,
            changes,
            events,
            now,
        )
        .await
    }

    /// Commits the delivery: its messages, their events and the routing outcome at once (in
    /// a [`DeliveryGroup`], releases its savepoint: the group's commit makes it durable).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn commit(mut self) -> anyhow::Result<()> {
        if self.pending.is_some() {
            // Nothing routed (every message a duplicate): written as read.
            self.record_routing(&[], &[]).await?;
        }
        self.tx
            .commit()
            .await
            .context("committing a webhook delivery")
    }
}

/// Writes a routing outcome: with the delivery's `pending` messages when they wait for it
/// (the conversations they open inserted in their routed state), then the changes left
/// for conversations stored before.
async fn record(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    pending: Option<Pending>,
    changes: &[(String, ConversationStatus, Option<String>)],
    events: &[CrmEvent],
    now: u64,
) -> anyhow::Result<()> {
    let (changes, events) = match pending {
        Some(pending) => (
            Cow::Owned(write_pending(sink, backend, tenant, pending, changes, events, now).await?),
            &[][..],
        ),
        None => (Cow::Borrowed(changes), events),
    };
    if changes.is_empty() && events.is_empty() {
        return Ok(());
    }
    super::assignments::record_routing_in(sink, backend, tenant, &changes, events, now).await
}

/// Writes a delivery's messages with its routing outcome (`events` after the delivery's
/// own): the conversations it opens in their last routed state (one a change resolves is
/// left to the update of stored conversations, which sets `resolved_at`). Returns the
/// changes left for that update.
async fn write_pending(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    pending: Pending,
    changes: &[(String, ConversationStatus, Option<String>)],
    events: &[CrmEvent],
    now: u64,
) -> anyhow::Result<Vec<(String, ConversationStatus, Option<String>)>> {
    let Pending {
        channel,
        messages,
        mut plan,
    } = pending;
    let opening: HashSet<&str> = plan.opening().collect();
    let mut decided = ingest::Decided {
        states: HashMap::new(),
        at: ms(now),
    };
    for (id, status, assignee) in changes {
        if opening.contains(id.as_str()) {
            decided
                .states
                .insert(id.as_str(), (status.as_str(), assignee.as_deref()));
        }
    }
    decided
        .states
        .retain(|_, (status, _)| *status != ConversationStatus::Resolved.as_str());
    plan.write(sink, backend, tenant, &channel, &messages, &decided, events)
        .await?;
    Ok(changes
        .iter()
        .filter(|(id, ..)| !decided.states.contains_key(id.as_str()))
        .cloned()
        .collect())
}

/// A delivery of messages alone read and planned, not written (SQLite: its outcomes, ids
/// included, are known from the reads).
async fn read_pending(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: Vec<Message>,
    now: i64,
) -> anyhow::Result<(Pending, Vec<Ingested>)> {
    let mut plan = ingest::Plan::read(tx, backend, tenant, channel, &messages, now).await?;
    let ingested = plan
        .outcomes(tx, tenant, channel, &messages, &ingest::Inserted::All)
        .await?;
    let pending = Pending {
        channel: channel.to_string(),
        messages,
        plan,
    };
    Ok((pending, ingested))
}

/// [`Store::helpers`] of the authors of `ingested`'s fresh messages; nothing is read when
/// none was filed before the delivery (`returning` false: a new customer has no last
/// helper).
async fn returning_helpers(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    returning: bool,
    ingested: &[Ingested],
) -> anyhow::Result<HashMap<String, (String, u64)>> {
    if !returning {
        return Ok(HashMap::new());
    }
    let authors: Vec<&str> = ingested
        .iter()
        .filter(|i| !i.duplicate)
        .map(|i| i.message.author.id.as_str())
        .collect();
    super::customers::helpers_in(tx, backend, tenant, channel, &authors).await
}

/// The stored routing state of the conversations `ids`, those found.
async fn routed_conversations(
    tx: &mut Tx<'_>,
    tenant: &str,
    ids: &[String],
) -> anyhow::Result<Vec<RoutedConversation>> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.extend(routed_conversation_in(tx, tenant, id).await?);
    }
    Ok(found)
}
