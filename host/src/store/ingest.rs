//! Storing a delivery's inbound messages with a handful of statements, whatever its size.
//!
//! A platform batches: one Messenger delivery or one X poll page carries up to a hundred
//! messages. Every statement costs a round trip to the database (on SQLite, a hand-off to
//! the connection's thread and back, about 70 µs on the project's machine), so the work is
//! done per delivery, not per message:
//!
//! 1. one look-up of the messages already stored (per account, usually one);
//! 2. one look-up of the open conversations of the delivery's threads;
//! 3. one insert of the conversations that are new, one update of the others' `updated_at`;
//! 4. one insert of the messages and one of their `message-received` events.
//!
//! Statements are split in chunks so no statement binds more than a few thousand values.
//! The outcome is the one a message-by-message loop would give, in the delivery's order:
//! the first message of a new thread opens its conversation, later ones join it, and a
//! message stored before (or twice in the same delivery) is a duplicate that changes nothing.
//!
//! Text from the platform is bound in its stored form (see [`super::text`]), so a message
//! holding U+0000 stores on PostgreSQL too instead of failing its whole delivery.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::text::{read, stored, stored_opt};
use super::{
    Backend, Ingested, MAX_BINDS, MAX_IN_LIST, events, if_racing, kind_str, marks, may_race,
    new_id, positional, rows as values,
};
use crate::crm::CrmEvent;
use crate::types::Message;

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Stores `messages` (inside `tx`) and appends their events; returns one outcome per message.
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
    // Platform ids already stored, and those seen earlier in this delivery.
    let mut known = stored_ids(tx, backend, tenant, channel, messages).await?;
    let mut fresh: Vec<usize> = Vec::with_capacity(messages.len());
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(messages.len());
    for (index, m) in messages.iter().enumerate() {
        let key = (m.account.as_str(), m.external_id.as_str());
        if known.contains_key(&(m.account.clone(), m.external_id.clone())) || !seen.insert(key) {
            continue;
        }
        fresh.push(index);
    }
    // Messages of erased customers: a redelivery or a replay must not bring them back.
    let refused = super::erasure::refused(tx, backend, tenant, channel, messages, &fresh).await?;
    fresh.retain(|index| !refused.contains(index));

    let threads = conversations(tx, backend, tenant, channel, messages, &fresh, now).await?;

    // The new messages, then their events, each in as few statements as possible.
    let mut rows: Vec<NewRow> = Vec::with_capacity(fresh.len());
    let mut opened: HashSet<&str> = HashSet::new();
    for &index in &fresh {
        let m = &messages[index];
        let Some((conversation_id, is_new)) = threads.get(m.conversation_key.as_str()) else {
            anyhow::bail!(
                "no conversation for thread `{}` after opening it",
                m.conversation_key
            );
        };
        rows.push(NewRow {
            index,
            id: new_id(),
            conversation_id: conversation_id.clone(),
            // Only the first message of a conversation opened now counts as opening it.
            new_conversation: *is_new && opened.insert(conversation_id.as_str()),
        });
    }
    let inserted = insert_messages(tx, backend, tenant, channel, messages, &rows, now).await?;

    let events: Vec<CrmEvent> = rows
        .iter()
        .filter(|row| inserted.contains(&row.id))
        .map(|row| CrmEvent::MessageReceived {
            conversation_id: row.conversation_id.clone().into(),
            new_conversation: row.new_conversation,
            connector: channel.into(),
            message_id: row.id.clone(),
            message: Box::new(messages[row.index].clone()),
        })
        .collect();
    // Their authors, filed under customers (and the links that suggests).
    let authors: Vec<&Message> = rows
        .iter()
        .filter(|row| inserted.contains(&row.id))
        .map(|row| &messages[row.index])
        .collect();
    let mut events = events;
    let mut returning = false;
    if !authors.is_empty() {
        let (more, known) =
            super::customers::file_authors(tx, backend, tenant, channel, &authors, now).await?;
        events.extend(more);
        returning = known;
    }
    events::append_many(tx, backend, tenant, &events, now).await?;
    // Their files, for the media fetcher (see `media.rs`).
    let stored: Vec<(usize, &str, &str)> = rows
        .iter()
        .filter(|row| inserted.contains(&row.id))
        .map(|row| (row.index, row.id.as_str(), row.conversation_id.as_str()))
        .collect();
    super::media::enqueue(tx, backend, tenant, channel, messages, &stored, now).await?;

    // Outcomes in the delivery's order.
    let mut row_of: Vec<Option<&NewRow>> = vec![None; messages.len()];
    for row in &rows {
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
        if refused.contains(&index) {
            outcomes.push(Ingested {
                erased: true,
                ..outcome(String::new(), String::new(), false, true)
            });
            continue;
        }
        let key = (m.account.clone(), m.external_id.clone());
        outcomes.push(match row {
            Some(row) if inserted.contains(&row.id) => {
                known.insert(key, (row.id.clone(), row.conversation_id.clone()));
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
                let Some((message_id, conversation_id)) = known.get(&key) else {
                    anyhow::bail!("message `{}` vanished while being stored", m.external_id);
                };
                outcome(message_id.clone(), conversation_id.clone(), false, true)
            }
        });
    }
    Ok((outcomes, returning))
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

/// (account, platform id) → (message id, conversation id) of the delivery's messages that
/// are stored already.
async fn stored_ids(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
) -> anyhow::Result<HashMap<(String, String), (String, String)>> {
    let mut by_account: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in messages {
        by_account
            .entry(m.account.as_str())
            .or_default()
            .push(m.external_id.as_str());
    }
    let mut found = HashMap::new();
    for (account, ids) in by_account {
        for chunk in ids.chunks(MAX_IN_LIST) {
            let sql = positional(
                backend,
                &format!(
                    "SELECT external_id, id, conversation_id FROM messages
                 WHERE tenant = ? AND channel = ? AND account = ? AND external_id IN ({})",
                    marks(chunk.len())
                ),
            );
            let mut query = sqlx::query(&sql)
                .bind(tenant)
                .bind(channel)
                .bind(stored(account));
            for id in chunk {
                query = query.bind(stored(id));
            }
            for row in query.fetch_all(&mut **tx).await? {
                found.insert(
                    (account.to_string(), read(row.try_get("external_id")?)),
                    (row.try_get("id")?, row.try_get("conversation_id")?),
                );
            }
        }
    }
    Ok(found)
}

/// The host id of one stored message.
async fn stored_id(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    m: &Message,
) -> anyhow::Result<String> {
    let row = sqlx::query(
        "SELECT id FROM messages
         WHERE tenant = $1 AND channel = $2 AND account = $3 AND external_id = $4",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(&m.account))
    .bind(stored(&m.external_id))
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("id")?)
}

/// Thread key → (conversation id, opened now) for the threads of the fresh messages:
/// their open conversation (its `updated_at` moved to `now`), or a new one.
async fn conversations<'m>(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &'m [Message],
    fresh: &[usize],
    now: i64,
) -> anyhow::Result<HashMap<&'m str, (String, bool)>> {
    // Each thread once, with the message that would open it (the first).
    let mut first: Vec<&'m Message> = Vec::new();
    let mut seen: HashSet<&'m str> = HashSet::new();
    for &index in fresh {
        let m = &messages[index];
        if seen.insert(m.conversation_key.as_str()) {
            first.push(m);
        }
    }
    let keys: Vec<&str> = first.iter().map(|m| m.conversation_key.as_str()).collect();
    let mut threads: HashMap<&'m str, (String, bool)> = HashMap::with_capacity(keys.len());
    let open = open_conversations(tx, backend, tenant, channel, &keys).await?;
    let mut existing = Vec::with_capacity(open.len());
    for m in &first {
        if let Some(id) = open.get(m.conversation_key.as_str()) {
            existing.push(id.clone());
            threads.insert(m.conversation_key.as_str(), (id.clone(), false));
        }
    }
    for chunk in existing.chunks(MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "UPDATE conversations SET updated_at = ? WHERE id IN ({})",
                marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(now);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut **tx).await?;
    }

    let to_open: Vec<&Message> = first
        .into_iter()
        .filter(|m| !threads.contains_key(m.conversation_key.as_str()))
        .collect();
    const COLUMNS: usize = 10;
    let mut raced = Vec::new();
    for chunk in to_open.chunks(MAX_BINDS / COLUMNS) {
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO conversations (id, tenant, channel, account, thread_key, customer_id,
                    customer_handle, kind, created_at, updated_at, status, priority)
                 VALUES {}{}",
                values("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', 0)", chunk.len()),
                if_racing(
                    backend,
                    " ON CONFLICT (tenant, channel, thread_key) WHERE status <> 'resolved'
                      DO NOTHING RETURNING id, thread_key"
                )
            ),
        );
        let ids: Vec<String> = chunk.iter().map(|_| new_id()).collect();
        let mut query = sqlx::query(&sql);
        for (m, id) in chunk.iter().zip(&ids) {
            query = query
                .bind(id)
                .bind(tenant)
                .bind(channel)
                .bind(stored(&m.account))
                .bind(stored(&m.conversation_key))
                .bind(stored(&m.author.id))
                .bind(stored_opt(m.author.handle.as_ref()))
                .bind(kind_str(m.kind))
                .bind(now)
                .bind(now);
        }
        if !may_race(backend) {
            query.execute(&mut **tx).await?;
            for (m, id) in chunk.iter().zip(ids) {
                threads.insert(m.conversation_key.as_str(), (id, true));
            }
            continue;
        }
        let mut opened: HashMap<String, String> = HashMap::with_capacity(chunk.len());
        for row in query.fetch_all(&mut **tx).await? {
            opened.insert(read(row.try_get("thread_key")?), row.try_get("id")?);
        }
        for m in chunk {
            match opened.remove(m.conversation_key.as_str()) {
                Some(id) => {
                    threads.insert(m.conversation_key.as_str(), (id, true));
                }
                None => raced.push(m.conversation_key.as_str()),
            }
        }
    }
    // Opened by another host between our look-up and our insert: join theirs.
    if !raced.is_empty() {
        let open = open_conversations(tx, backend, tenant, channel, &raced).await?;
        for key in raced {
            let Some(id) = open.get(key) else {
                anyhow::bail!(
                    "joining the conversation of thread `{key}`, opened concurrently: not found"
                );
            };
            threads.insert(key, (id.clone(), false));
        }
    }
    Ok(threads)
}

/// Thread key → id of the open (not resolved) conversations of `keys`.
async fn open_conversations(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    keys: &[&str],
) -> anyhow::Result<HashMap<String, String>> {
    let mut open = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "SELECT id, thread_key FROM conversations
             WHERE tenant = ? AND channel = ? AND status <> 'resolved' AND thread_key IN ({})",
                marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(tenant).bind(channel);
        for key in chunk {
            query = query.bind(stored(key));
        }
        for row in query.fetch_all(&mut **tx).await? {
            open.insert(read(row.try_get("thread_key")?), row.try_get("id")?);
        }
    }
    Ok(open)
}

/// Inserts the messages of `rows`; returns the ids actually inserted (a message another
/// host stored meanwhile is skipped).
async fn insert_messages(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    rows: &[NewRow],
    now: i64,
) -> anyhow::Result<HashSet<String>> {
    const COLUMNS: usize = 17;
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(MAX_BINDS / COLUMNS) {
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO messages (id, tenant, channel, account, external_id, conversation_id,
                    author_id, author_handle, author_name, kind, text, in_reply_to, attachments,
                    extra, created_at, batch_index, received_at, direction)
                 VALUES {}{}",
                values(
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'inbound')",
                    chunk.len()
                ),
                if_racing(
                    backend,
                    " ON CONFLICT (tenant, channel, account, external_id) DO NOTHING RETURNING id"
                )
            ),
        );
        let mut query = sqlx::query(&sql);
        for NewRow {
            index,
            id,
            conversation_id,
            ..
        } in chunk
        {
            let m = &messages[*index];
            query = query
                .bind(id)
                .bind(tenant)
                .bind(channel)
                .bind(stored(&m.account))
                .bind(stored(&m.external_id))
                .bind(conversation_id)
                .bind(stored(&m.author.id))
                .bind(stored_opt(m.author.handle.as_ref()))
                .bind(stored_opt(m.author.display_name.as_ref()))
                .bind(kind_str(m.kind))
                .bind(stored(&m.text))
                .bind(stored_opt(m.in_reply_to.as_ref()))
                .bind(serde_json::to_string(&m.attachments)?)
                .bind(serde_json::to_string(&m.extra)?)
                .bind(super::ms(m.created_at))
                .bind(i64::try_from(*index).unwrap_or(i64::MAX))
                .bind(now);
        }
        if may_race(backend) {
            for row in query.fetch_all(&mut **tx).await? {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        } else {
            query.execute(&mut **tx).await?;
            inserted.extend(chunk.iter().map(|row| row.id.clone()));
        }
    }
    Ok(inserted)
}
