//! Storing a delivery's inbound messages with a handful of statements, whatever its size.
//!
//! A platform batches: one Messenger delivery or one X poll page carries up to a hundred
//! messages. Every statement costs a round trip to the database (on SQLite, a hand-off to
//! the connection's thread and back, about 70 µs on the project's machine), so the work is
//! done per delivery, not per message, in two steps ([`Plan`]):
//!
//! 1. **reads** ([`Plan::read`]): the messages already stored (per account, usually one
//!    look-up), erasures, the open conversations of the delivery's threads, the authors'
//!    identities filed before. From them the plan knows every outcome, new ids included;
//! 2. **writes** ([`Plan::write`]): one update of the joined conversations' `updated_at`,
//!    one insert of the new conversations (already routed, when routing decided before
//!    the write: see `delivery.rs`), one of the messages, the authors' customers and
//!    identities, and one insert of every CRM event of the delivery.
//!
//! Statements are split in chunks so no statement binds more than a few thousand values
//! (`statements.rs`). The outcome is the one a message-by-message loop would give, in the
//! delivery's order: the first message of a new thread opens its conversation, later ones
//! join it, and a message stored before (or twice in the same delivery) is a duplicate
//! that changes nothing.
//!
//! Text from the platform is bound in its stored form (see [`super::text`]), so a message
//! holding U+0000 stores on PostgreSQL too instead of failing its whole delivery.

use std::collections::{HashMap, HashSet};

use super::customers as filing;
use super::sink::Sink;
use super::{Backend, Ingested, events, new_id};
use crate::crm::CrmEvent;
use crate::types::Message;
use statements::{insert_messages, open, open_conversations, stored_id, stored_ids, touch};

mod statements;

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Stores `messages` (inside `tx`) and appends their events; returns one outcome per message.
#[cfg(feature = "test-support")]
pub(super) async fn messages(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    now: i64,
) -> anyhow::Result<Vec<Ingested>> {
    Ok(
        stored_and_authors(tx, backend, tenant, channel, messages, now)
            .await?
            .0,
    )
}

/// [`messages`], also telling whether an author of the messages stored was filed under a
/// customer before this delivery (only such a customer can have a last helper).
pub(super) async fn stored_and_authors(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    now: i64,
) -> anyhow::Result<(Vec<Ingested>, bool)> {
    let mut plan = Plan::read(tx, backend, tenant, channel, messages, now).await?;
    let inserted = plan
        .write(
            &mut Sink::Run(tx),
            backend,
            tenant,
            channel,
            messages,
            &Decided::default(),
            &[],
        )
        .await?;
    let outcomes = plan
        .outcomes(tx, tenant, channel, messages, &inserted)
        .await?;
    Ok((outcomes, plan.returning()))
}

/// Routing's decisions for conversations a [`Plan`] opens, written with them: conversation
/// id → (status, assignee), and when they were decided.
#[derive(Default)]
pub(super) struct Decided<'d> {
    pub(super) states: HashMap<&'d str, (&'d str, Option<&'d str>)>,
    pub(super) at: i64,
}

/// What a delivery's reads found, before anything of it is written: which messages are new,
/// the open conversations they join and those they open (with their ids, chosen now), and
/// their authors filed before. Written by [`Plan::write`], inside the same transaction.
pub(super) struct Plan {
    now: i64,
    /// (account, platform id) → (message id, conversation id) of the messages stored before.
    known: HashMap<(String, String), (String, String)>,
    /// Messages of erased customers (by index): a redelivery must not bring them back.
    refused: HashSet<usize>,
    /// The messages to insert.
    rows: Vec<NewRow>,
    /// Open conversations the new messages join (their `updated_at` moves to `now`).
    joined: Vec<String>,
    /// Conversations the new messages open: the first message's index and the new id.
    opening: Vec<(usize, String)>,
    /// The authors' identities filed before (see [`filing::Filed`]).
    filed: filing::Filed,
}

impl Plan {
    /// The delivery's reads: the messages stored already, erasures, the open conversations
    /// of its threads, its authors' identities. Nothing is written.
    pub(super) async fn read(
        tx: &mut Tx<'_>,
        backend: Backend,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        now: i64,
    ) -> anyhow::Result<Plan> {
        // Platform ids already stored, and those seen earlier in this delivery.
        let known = stored_ids(tx, backend, tenant, channel, messages).await?;
        let mut fresh: Vec<usize> = Vec::with_capacity(messages.len());
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(messages.len());
        for (index, m) in messages.iter().enumerate() {
            let key = (m.account.as_str(), m.external_id.as_str());
            if known.contains_key(&(m.account.clone(), m.external_id.clone())) || !seen.insert(key)
            {
                continue;
            }
            fresh.push(index);
        }
        let refused =
            super::erasure::refused(tx, backend, tenant, channel, messages, &fresh).await?;
        fresh.retain(|index| !refused.contains(index));

        // Each thread once, with the message that would open it (the first).
        let mut first: Vec<usize> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for &index in &fresh {
            if seen.insert(messages[index].conversation_key.as_str()) {
                first.push(index);
            }
        }
        let keys: Vec<&str> = first
            .iter()
            .map(|&i| messages[i].conversation_key.as_str())
            .collect();
        let open = open_conversations(tx, backend, tenant, channel, &keys).await?;
        let mut threads: HashMap<&str, (String, bool)> = HashMap::with_capacity(keys.len());
        let (mut joined, mut opening) = (Vec::new(), Vec::new());
        for index in first {
            let key = messages[index].conversation_key.as_str();
            match open.get(key) {
                Some(id) => {
                    joined.push(id.clone());
                    threads.insert(key, (id.clone(), false));
                }
                None => {
                    let id = new_id();
                    opening.push((index, id.clone()));
                    threads.insert(key, (id, true));
                }
            }
        }

        let mut rows: Vec<NewRow> = Vec::with_capacity(fresh.len());
        let mut opened: HashSet<&str> = HashSet::new();
        for &index in &fresh {
            let m = &messages[index];
            let Some((conversation_id, is_new)) = threads.get(m.conversation_key.as_str()) else {
                anyhow::bail!("no conversation for thread `{}`", m.conversation_key);
            };
            rows.push(NewRow {
                index,
                id: new_id(),
                conversation_id: conversation_id.clone(),
                // Only the first message of a conversation opened now counts as opening it.
                new_conversation: *is_new && opened.insert(conversation_id.as_str()),
            });
        }
        let authors: Vec<&str> = rows
            .iter()
            .map(|row| messages[row.index].author.id.as_str())
            .collect();
        let filed = filing::filed(tx, backend, tenant, channel, &authors).await?;
        Ok(Plan {
            now,
            known,
            refused,
            rows,
            joined,
            opening,
            filed,
        })
    }

    /// Whether an author of the delivery was filed under a customer before it.
    pub(super) fn returning(&self) -> bool {
        self.filed.any()
    }

    /// Ids of the conversations the delivery opens.
    pub(super) fn opening(&self) -> impl Iterator<Item = &str> {
        self.opening.iter().map(|(_, id)| id.as_str())
    }

    /// Writes the delivery as read: the conversations it joins and opens (those routing
    /// has `decided` already in their routed state), its messages, their authors, their
    /// CRM events followed by `then`, their files. Returns which messages went in (on
    /// PostgreSQL, a message another host stored meanwhile is skipped, and a thread another
    /// host opened meanwhile is joined instead).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write(
        &mut self,
        sink: &mut Sink<'_, '_>,
        backend: Backend,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        decided: &Decided<'_>,
        then: &[CrmEvent],
    ) -> anyhow::Result<Inserted> {
        let now = self.now;
        touch(sink, backend, &self.joined, now).await?;
        let raced = open(
            sink,
            backend,
            tenant,
            channel,
            messages,
            &self.opening,
            decided,
            now,
        )
        .await?;
        if !raced.is_empty() {
            // Opened by another host between our look-up and our insert: join theirs.
            let keys: Vec<&str> = raced
                .iter()
                .map(|&(index, _)| messages[index].conversation_key.as_str())
                .collect();
            let open = open_conversations(sink.tx()?, backend, tenant, channel, &keys).await?;
            for (index, ours) in raced {
                let key = messages[index].conversation_key.as_str();
                let Some(theirs) = open.get(key) else {
                    anyhow::bail!(
                        "joining the conversation of thread `{key}`, opened concurrently: not found"
                    );
                };
                for row in self
                    .rows
                    .iter_mut()
                    .filter(|row| row.conversation_id == ours)
                {
                    row.conversation_id = theirs.clone();
                    row.new_conversation = false;
                }
            }
        }
        let inserted =
            insert_messages(sink, backend, tenant, channel, messages, &self.rows, now).await?;

        let stored: Vec<&NewRow> = self
            .rows
            .iter()
            .filter(|row| inserted.contains(&row.id))
            .collect();
        let mut events: Vec<CrmEvent> = stored
            .iter()
            .map(|row| CrmEvent::MessageReceived {
                conversation_id: row.conversation_id.clone().into(),
                new_conversation: row.new_conversation,
                connector: channel.into(),
                message_id: row.id.clone(),
                message: Box::new(messages[row.index].clone()),
            })
            .collect();
        // Their authors, filed under customers (and the links that suggests).
        let authors: Vec<&Message> = stored.iter().map(|row| &messages[row.index]).collect();
        if !authors.is_empty() {
            events.extend(
                filing::file_authors(sink, backend, tenant, channel, &authors, &self.filed, now)
                    .await?,
            );
        }
        events.extend(then.iter().cloned());
        events::append_to(sink, backend, tenant, &events, now).await?;
        // Their files, for the media fetcher (see `media.rs`).
        let files: Vec<(usize, &str, &str)> = stored
            .iter()
            .map(|row| (row.index, row.id.as_str(), row.conversation_id.as_str()))
            .collect();
        super::media::enqueue(sink, backend, tenant, channel, messages, &files, now).await?;
        Ok(inserted)
    }

    /// One outcome per message, in the delivery's order, `inserted` being the messages that
    /// went in (on SQLite, where nothing races the delivery, [`Inserted::All`]: the
    /// outcomes are then known before anything is written).
    pub(super) async fn outcomes(
        &mut self,
        tx: &mut Tx<'_>,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        inserted: &Inserted,
    ) -> anyhow::Result<Vec<Ingested>> {
        let mut row_of: Vec<Option<&NewRow>> = vec![None; messages.len()];
        for row in &self.rows {
            row_of[row.index] = Some(row);
        }
        let mut outcomes = Vec::with_capacity(messages.len());
        for (index, (m, row)) in messages.iter().zip(row_of).enumerate() {
            let outcome = |message_id: String, conversation_id: String, new, duplicate| Ingested {
                external_id: m.external_id.clone(),
                message_id,
                conversation_id: conversation_id.into(),
                new_conversation: new,
                duplicate,
                erased: false,
                message: m.clone(),
            };
            if self.refused.contains(&index) {
                outcomes.push(Ingested {
                    erased: true,
                    ..outcome(String::new(), String::new(), false, true)
                });
                continue;
            }
            let key = (m.account.clone(), m.external_id.clone());
            outcomes.push(match row {
                Some(row) if inserted.contains(&row.id) => {
                    self.known
                        .insert(key, (row.id.clone(), row.conversation_id.clone()));
                    outcome(
                        row.id.clone(),
                        row.conversation_id.clone(),
                        row.new_conversation,
                        false,
                    )
                }
                // Stored by another host between our look-up and our insert.
                Some(row) => outcome(
                    stored_id(tx, tenant, channel, m).await?,
                    row.conversation_id.clone(),
                    row.new_conversation,
                    true,
                ),
                // Stored before, or earlier in this delivery.
                None => {
                    let Some((message_id, conversation_id)) = self.known.get(&key) else {
                        anyhow::bail!("message `{}` vanished while being stored", m.external_id);
                    };
                    outcome(message_id.clone(), conversation_id.clone(), false, true)
                }
            });
        }
        Ok(outcomes)
    }
}

/// Which rows of a [`Plan`] went in: all of them where nothing races the delivery
/// (SQLite), else those the insert's `RETURNING` named.
pub(super) enum Inserted {
    All,
    Only(HashSet<String>),
}

impl Inserted {
    fn contains(&self, id: &str) -> bool {
        match self {
            Inserted::All => true,
            Inserted::Only(ids) => ids.contains(id),
        }
    }
}

/// A message of the delivery that is to be inserted.
struct NewRow {
    /// Its position in the delivery.
    index: usize,
    /// Its host id.
    id: String,
    conversation_id: String,
    /// Whether it is the first message of a conversation opened by this delivery.
    new_conversation: bool,
}
