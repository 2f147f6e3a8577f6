//! The statements of a delivery's messages: the look-ups its [`Plan`](super::Plan) is read
//! from and the inserts that write it, each batched over the whole delivery.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::super::sink::Sink;
use super::super::text::{read, stored, stored_opt};
use super::super::{
    Backend, MAX_BINDS, MAX_IN_LIST, if_racing, kind_str, marks, may_race, positional,
    rows as values,
};
use super::{Decided, Inserted, NewRow, Tx};
use crate::types::Message;

/// (account, platform id) → (message id, conversation id) of the delivery's messages that
/// are stored already.
pub(super) async fn stored_ids(
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
pub(super) async fn stored_id(
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

/// Moves the `updated_at` of the open conversations `ids` to `now`.
pub(super) async fn touch(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    ids: &[String],
    now: i64,
) -> anyhow::Result<()> {
    for chunk in ids.chunks(MAX_IN_LIST) {
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
        sink.execute(query).await?;
    }
    Ok(())
}

/// Inserts the conversations of `opening` (the first message's index and the new id),
/// `open` or as routing `decided`; returns those another host opened on the same thread
/// between our look-up and our insert (only where inserts race).
#[allow(clippy::too_many_arguments)]
pub(super) async fn open(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    opening: &[(usize, String)],
    decided: &Decided<'_>,
    now: i64,
) -> anyhow::Result<Vec<(usize, String)>> {
    const COLUMNS: usize = 13;
    let mut raced = Vec::new();
    for chunk in opening.chunks(MAX_BINDS / COLUMNS) {
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO conversations (id, tenant, channel, account, thread_key, customer_id,
                    customer_handle, kind, created_at, updated_at, status, assignee, assigned_at,
                    priority)
                 VALUES {}{}",
                values("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", chunk.len()),
                if_racing(
                    backend,
                    " ON CONFLICT (tenant, channel, thread_key) WHERE status <> 'resolved'
                      DO NOTHING RETURNING id"
                )
            ),
        );
        let mut query = sqlx::query(&sql);
        for (index, id) in chunk {
            let m = &messages[*index];
            let (status, assignee, updated_at) = match decided.states.get(id.as_str()) {
                Some(&(status, assignee)) => (status, assignee, decided.at),
                None => ("open", None, now),
            };
            let assigned_at = assignee.map(|_| decided.at);
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
                .bind(updated_at)
                .bind(status)
                .bind(assignee)
                .bind(assigned_at);
        }
        if !may_race(backend) {
            sink.execute(query).await?;
            continue;
        }
        let mut opened: HashSet<String> = HashSet::with_capacity(chunk.len());
        for row in query.fetch_all(&mut **sink.tx()?).await? {
            opened.insert(row.try_get("id")?);
        }
        raced.extend(chunk.iter().filter(|(_, id)| !opened.contains(id)).cloned());
    }
    Ok(raced)
}

/// Thread key → id of the open (not resolved) conversations of `keys`.
pub(super) async fn open_conversations(
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

/// Inserts the messages of `rows`; returns which went in (where inserts race, a message
/// another host stored meanwhile is skipped).
pub(super) async fn insert_messages(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    rows: &[NewRow],
    now: i64,
) -> anyhow::Result<Inserted> {
    const COLUMNS: usize = 17;
    let mut returned = HashSet::new();
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
                .bind(super::super::ms(m.created_at))
                .bind(i64::try_from(*index).unwrap_or(i64::MAX))
                .bind(now);
        }
        if may_race(backend) {
            for row in query.fetch_all(&mut **sink.tx()?).await? {
                returned.insert(row.try_get::<String, _>("id")?);
            }
        } else {
            sink.execute(query).await?;
        }
    }
    Ok(if may_race(backend) {
        Inserted::Only(returned)
    } else {
        Inserted::All
    })
}
