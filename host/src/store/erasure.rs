//! What the law gives a customer over their data: an export of everything the store holds
//! about them, and its erasure.
//!
//! **Erasure** runs in one transaction. Every conversation of the customer's identities is
//! resolved and emptied: the customer's and the company's texts, attachments (the
//! platform URLs and descriptions, and the files the store kept), extras, handles and names, platform
//! ids and thread keys are overwritten; the rows stay, so the counts reports read
//! (messages per channel and direction, first-response times) stay true. Replies in the
//! outbox are emptied (those not yet sent never go out), the CRM events about those
//! conversations are deleted, and the customer's identities, suggestions and record go.
//! What is kept instead is a *tombstone*: the SHA-256 of each erased platform message id
//! and of each identity, so a webhook redelivered later, or a poll that goes back in
//! time, is refused at ingest instead of bringing the customer back (a message the same
//! person writes after the erasure is new, and kept). The erasure is written to the audit
//! log and told to the CRM ([`CrmEvent::CustomerErased`]) in the same transaction.
//!
//! On SQLite the store runs with `secure_delete` (freed space is zeroed) and, after an
//! erasure, merges the full-text index (so the erased words leave its older segments),
//! checkpoints the write-ahead log and truncates it, so neither the database file, the
//! index nor the WAL keeps the erased bytes. On PostgreSQL the old row versions stay in the
//! table files until vacuum reclaims them (autovacuum, or `VACUUM` after an erasure).

use std::collections::HashSet;

use serde::Serialize;
use sqlx::Row;

use super::customers::{Customer, Suggestion};
use super::text::stored;
use super::{
    Backend, ConversationRecord, OutboxEntry, Store, StoredMessage, conversation_from_row, events,
    ms, new_id, outbox,
};
use super::{MAX_IN_LIST, marks, positional};
use crate::crm::CrmEvent;
use crate::types::Message;

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Everything the store holds about a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CustomerExport {
    /// The customer and their identities.
    pub customer: Customer,
    /// Links the host suggested for them.
    pub suggestions: Vec<Suggestion>,
    /// Their conversations on every channel, oldest first, each with its messages and the
    /// replies queued for it.
    pub conversations: Vec<ExportedConversation>,
    /// When the export was made (ms).
    pub exported_at: i64,
}

/// One conversation of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExportedConversation {
    /// The conversation.
    pub conversation: ConversationRecord,
    /// Its messages, oldest first, both directions.
    pub messages: Vec<StoredMessage>,
    /// The replies queued for it, as the outbox holds them.
    pub replies: Vec<OutboxEntry>,
}

/// What an erasure removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Erasure {
    /// The erased customer's id.
    pub customer_id: String,
    /// Identities removed.
    pub identities: u64,
    /// Conversations emptied (their rows stay for the counts).
    pub conversations: u64,
    /// Messages emptied (their rows stay for the counts).
    pub messages: u64,
    /// Replies emptied in the outbox.
    pub replies: u64,
    /// CRM events about them deleted.
    pub events: u64,
    /// When (ms).
    pub at: i64,
}

/// The tombstone of an erased platform message.
fn message_digest(tenant: &str, channel: &str, account: &str, external_id: &str) -> String {
    digest(&["message", tenant, channel, account, external_id])
}

/// The tombstone of an erased identity.
fn identity_digest(tenant: &str, channel: &str, platform_id: &str) -> String {
    digest(&["identity", tenant, channel, platform_id])
}

fn digest(parts: &[&str]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// The messages of a delivery an erasure refuses (by their index): those whose platform id
/// was erased, and those by an erased identity written before its erasure.
pub(super) async fn refused(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    candidates: &[usize],
) -> anyhow::Result<HashSet<usize>> {
    let mut refused = HashSet::new();
    if candidates.is_empty() {
        return Ok(refused);
    }
    // Most tenants never erased anyone: one probe instead of two digests per message.
    let any = sqlx::query("SELECT 1 FROM erasures WHERE tenant = $1 LIMIT 1")
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await?;
    if any.is_none() {
        return Ok(refused);
    }
    let keys: Vec<(usize, String, String)> = candidates
        .iter()
        .map(|&i| {
            let m = &messages[i];
            (
                i,
                message_digest(tenant, channel, &m.account, &m.external_id),
                identity_digest(tenant, channel, &m.author.id),
            )
        })
        .collect();
    let mut wanted: Vec<&str> = Vec::with_capacity(keys.len() * 2);
    for (_, message, identity) in &keys {
        wanted.push(message);
        wanted.push(identity);
    }
    let mut erased: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for chunk in wanted.chunks(MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "SELECT digest, erased_at FROM erasures WHERE tenant = ? AND digest IN ({})",
                marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(tenant);
        for digest in chunk {
            query = query.bind(*digest);
        }
        for row in query.fetch_all(&mut **tx).await? {
            erased.insert(row.try_get("digest")?, row.try_get("erased_at")?);
        }
    }
    if erased.is_empty() {
        return Ok(refused);
    }
    for (i, message, identity) in keys {
        let written = ms(messages[i].created_at);
        let by_erased = erased.get(&identity).is_some_and(|at| written <= *at);
        if erased.contains_key(&message) || by_erased {
            refused.insert(i);
        }
    }
    Ok(refused)
}

/// The conversations of customer `id`'s identities.
async fn conversations_of(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    tenant: &str,
    id: &str,
) -> anyhow::Result<Vec<ConversationRecord>> {
    sqlx::query(
        "SELECT c.* FROM customer_identities i
         JOIN conversations c ON c.tenant = i.tenant AND c.channel = i.channel
             AND c.customer_id = i.platform_id
         WHERE i.tenant = $1 AND i.customer_id = $2
         ORDER BY c.created_at, c.id",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(executor)
    .await?
    .iter()
    .map(conversation_from_row)
    .collect()
}

impl Store {
    /// Everything the store holds about customer `id`, or `None` when the tenant has no
    /// such customer.
    pub async fn export_customer(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<CustomerExport>> {
        let Some(customer) = self.customer(tenant, id).await? else {
            return Ok(None);
        };
        let suggestions = self.customer_suggestions(tenant, id).await?;
        let mut conversations = Vec::new();
        for conversation in conversations_of(&self.pool, tenant, id).await? {
            let messages = self.messages(tenant, &conversation.id).await?;
            let replies = sqlx::query(
                "SELECT * FROM outbox WHERE tenant = $1 AND conversation_id = $2
                 ORDER BY created_at, id",
            )
            .bind(tenant)
            .bind(&conversation.id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox::entry_from_row)
            .collect::<anyhow::Result<_>>()?;
            conversations.push(ExportedConversation {
                conversation,
                messages,
                replies,
            });
        }
        Ok(Some(CustomerExport {
            customer,
            suggestions,
            conversations,
            exported_at: ms(self.now_ms()),
        }))
    }

    /// Erases customer `id` (see the module docs): `None` when the tenant has no such
    /// customer. `who` is written to the audit log as the one who asked.
    pub(crate) async fn erase_customer(
        &self,
        tenant: &str,
        id: &str,
        who: &str,
    ) -> anyhow::Result<Option<Erasure>> {
        let mut tx = self.begin_writing().await?;
        let now = ms(self.now_ms());
        let identities: Vec<(String, String)> = sqlx::query(
            "SELECT channel, platform_id FROM customer_identities
             WHERE tenant = $1 AND customer_id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| -> anyhow::Result<(String, String)> {
            Ok((
                row.try_get("channel")?,
                super::text::read(row.try_get("platform_id")?),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
        let exists = sqlx::query("SELECT id FROM customers WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let conversations = conversations_of(&mut *tx, tenant, id).await?;
        let mut erasure = Erasure {
            customer_id: id.to_string(),
            identities: u64::try_from(identities.len()).unwrap_or(u64::MAX),
            conversations: u64::try_from(conversations.len()).unwrap_or(u64::MAX),
            messages: 0,
            replies: 0,
            events: 0,
            at: now,
        };
        let mut tombstones: Vec<String> = identities
            .iter()
            .map(|(channel, platform_id)| identity_digest(tenant, channel, platform_id))
            .collect();
        for conversation in &conversations {
            let rows = sqlx::query(
                "SELECT channel, account, external_id FROM messages
                 WHERE tenant = $1 AND conversation_id = $2",
            )
            .bind(tenant)
            .bind(&conversation.id)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let account = super::text::read(row.try_get("account")?);
                let external_id = super::text::read(row.try_get("external_id")?);
                if !external_id.starts_with("erased:") {
                    let channel: String = row.try_get("channel")?;
                    tombstones.push(message_digest(tenant, &channel, &account, &external_id));
                }
            }
            erasure.messages +=
                empty_messages(&mut tx, "conversation_id", &conversation.id, now).await?;
            erasure.replies += empty_replies(&mut tx, tenant, &conversation.id, now).await?;
            super::media::delete_of_conversations(
                &mut tx,
                self.backend,
                std::slice::from_ref(&conversation.id),
            )
            .await?;
            erasure.events += delete_events(&mut tx, tenant, &conversation.id).await?;
            sqlx::query(
                "UPDATE conversations SET customer_id = 'erased', customer_handle = NULL,
                    thread_key = 'erased:' || id, status = 'resolved', assignee = NULL,
                    resolved_at = COALESCE(resolved_at, $2), updated_at = $2
                 WHERE id = $1",
            )
            .bind(&conversation.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // What they wrote in other people's conversations (a reply in a public thread).
        for (channel, platform_id) in &identities {
            let rows = sqlx::query(
                "SELECT id, account, external_id FROM messages
                 WHERE tenant = $1 AND channel = $2 AND author_id = $3 AND direction = 'inbound'",
            )
            .bind(tenant)
            .bind(channel)
            .bind(stored(platform_id))
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let message: String = row.try_get("id")?;
                let account = super::text::read(row.try_get("account")?);
                let external_id = super::text::read(row.try_get("external_id")?);
                tombstones.push(message_digest(tenant, channel, &account, &external_id));
                erasure.messages += empty_messages(&mut tx, "id", &message, now).await?;
                erasure.events += delete_events(&mut tx, tenant, &message).await?;
            }
        }
        // Events that name the customer (suggestions).
        erasure.events += delete_events(&mut tx, tenant, id).await?;
        for digest in &tombstones {
            sqlx::query(
                "INSERT INTO erasures (tenant, digest, erased_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, digest) DO UPDATE SET erased_at = $3",
            )
            .bind(tenant)
            .bind(digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for sql in [
            "DELETE FROM customer_identities WHERE tenant = $1 AND customer_id = $2",
            "DELETE FROM customer_suggestions WHERE tenant = $1 AND (customer_id = $2 OR other_id = $2)",
            "DELETE FROM customers WHERE tenant = $1 AND id = $2",
        ] {
            sqlx::query(sql)
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO console_audit (id, at, tenant, who, username, session, action, target, refused)
             VALUES ($1, $2, $3, $4, NULL, '-', 'erase-customer', $5, NULL)",
        )
        .bind(new_id())
        .bind(now)
        .bind(tenant)
        .bind(who)
        .bind(format!(
            "customer {id}: {} identities, {} conversations, {} messages",
            erasure.identities, erasure.conversations, erasure.messages
        ))
        .execute(&mut *tx)
        .await?;
        let event = CrmEvent::CustomerErased {
            customer_id: id.to_string(),
            conversation_ids: conversations.iter().map(|c| c.id.clone().into()).collect(),
            at: u64::try_from(now).unwrap_or(0),
        };
        events::append_many(&mut tx, self.backend, tenant, &[event], now).await?;
        tx.commit().await?;
        self.forget_erased_bytes().await?;
        Ok(Some(erasure))
    }

    /// On SQLite, merges the full-text index's segments (a deleted message's tokens stay
    /// in older segments, marked deleted, until a merge rewrites them), then moves the
    /// write-ahead log into the database file (whose freed space `secure_delete` zeroes)
    /// and truncates it, so no copy of erased rows or their words is left in either.
    pub(crate) async fn forget_erased_bytes(&self) -> anyhow::Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("INSERT INTO message_search (message_search) VALUES ('optimize')")
                .execute(&self.pool)
                .await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

/// Empties the messages whose `column` (`conversation_id` or `id`) is `value`; returns
/// how many.
async fn empty_messages(
    tx: &mut Tx<'_>,
    column: &str,
    value: &str,
    now: i64,
) -> anyhow::Result<u64> {
    // The platform's ids of their edited versions go with their own.
    let versions = format!(
        "DELETE FROM message_versions WHERE message_id IN (SELECT id FROM messages WHERE {column} = $1)"
    );
    sqlx::query(&versions)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    let sql = format!(
        "UPDATE messages SET text = '', attachments = '[]', extra = '[]', author_handle = NULL,
            author_name = NULL, in_reply_to = NULL, external_id = 'erased:' || id,
            author_id = CASE WHEN direction = 'inbound' THEN 'erased' ELSE author_id END,
            deleted_at = COALESCE(deleted_at, $2)
         WHERE {column} = $1"
    );
    let done = sqlx::query(&sql)
        .bind(value)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Empties the replies of an erased conversation (one not yet sent fails: it never goes
/// out); returns how many.
async fn empty_replies(
    tx: &mut Tx<'_>,
    tenant: &str,
    conversation: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let rows =
        sqlx::query("SELECT id, payload FROM outbox WHERE tenant = $1 AND conversation_id = $2")
            .bind(tenant)
            .bind(conversation)
            .fetch_all(&mut **tx)
            .await?;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let payload: String = row.try_get("payload")?;
        let mut message: crate::types::OutboundMessage = serde_json::from_str(&payload)?;
        message.text.clear();
        message.attachments.clear();
        message.recipient = None;
        message.in_reply_to = None;
        message.conversation_key = "erased".to_string();
        sqlx::query(
            "UPDATE outbox SET payload = $2, external_id = NULL, last_error = NULL,
                status = CASE WHEN status IN ('pending', 'sending') THEN 'failed' ELSE status END,
                held_for = NULL, updated_at = $3
             WHERE id = $1",
        )
        .bind(&id)
        .bind(stored(&serde_json::to_string(&message)?))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}

/// Deletes the CRM events that name `id` (a conversation or a customer); returns how many.
async fn delete_events(tx: &mut Tx<'_>, tenant: &str, id: &str) -> anyhow::Result<u64> {
    // Host ids are hex UUIDs, so the pattern holds no LIKE wildcard.
    let done = sqlx::query("DELETE FROM crm_events WHERE tenant = $1 AND payload LIKE $2")
        .bind(tenant)
        .bind(format!("%\"{id}\"%"))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_digests_that_keep_message_and_identity_apart() {
        let m = message_digest("t", "twitter", "1001", "42");
        assert_eq!(m.len(), 64);
        assert!(!m.contains("42"));
        assert_ne!(m, identity_digest("t", "twitter", "42"));
        assert_ne!(m, message_digest("t", "twitter", "10014", "2"));
    }
}
