//! The reply outbox: a reply is stored before it is sent, sent once, and its platform id
//! recorded.
//!
//! Life of a row: `pending` → (claimed by one host) `sending` → `sent` | `pending` again
//! (temporary failure, with a later `next_attempt_at`) | `failed` (refused for good, with
//! the reason). A row found in `sending` when a host starts was caught mid-send by a crash:
//! the platform may or may not have it, so it becomes `uncertain` and is reported, never
//! blindly sent again. Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
//! hosts never send the same row.

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, kind_str, ms, new_id, text};
use crate::ids::{ConnectorId, ConversationId, TenantId};
use crate::types::OutboundMessage;

/// Where a reply stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboxStatus {
    /// Waiting to be sent (or to be retried).
    Pending,
    /// Claimed by a host that is sending it.
    Sending,
    /// Accepted by the platform.
    Sent,
    /// Refused for good; `last_error` says why.
    Failed,
    /// A host stopped while sending it: check the platform before sending again.
    Uncertain,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Uncertain => "uncertain",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "pending" => OutboxStatus::Pending,
            "sending" => OutboxStatus::Sending,
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            "uncertain" => OutboxStatus::Uncertain,
            other => anyhow::bail!("unknown outbox status `{other}` in the store"),
        })
    }
}

/// One reply in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Host id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Connector that sends it.
    pub connector: ConnectorId,
    /// Conversation it answers.
    pub conversation_id: ConversationId,
    /// Operator who wrote it.
    pub author: String,
    /// The reply.
    pub message: OutboundMessage,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Send attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Platform id once sent.
    pub external_id: Option<String>,
    /// How far the sent reply got, as the platform's receipts said (none yet: unknown).
    pub delivery: Option<crate::types::DeliveryState>,
}

impl Store {
    /// Stores a reply to be sent. The same idempotency key (per tenant) always maps to the
    /// same row: a CRM retrying its request never sends twice. Returns the row and whether
    /// it was new.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn enqueue_reply(
        &self,
        tenant: &str,
        connector: &str,
        conversation_id: &str,
        author: &str,
        message: &OutboundMessage,
    ) -> anyhow::Result<(OutboxEntry, bool)> {
        self.enqueue_reply_with_images(tenant, connector, conversation_id, author, message, &[])
            .await
    }

    /// [`Store::enqueue_reply`], keeping `images` with the reply in the same transaction
    /// (only when the reply is new: a repeated key keeps the first reply's images).
    pub(crate) async fn enqueue_reply_with_images(
        &self,
        tenant: &str,
        connector: &str,
        conversation_id: &str,
        author: &str,
        message: &OutboundMessage,
        images: &[crate::ReplyImage],
    ) -> anyhow::Result<(OutboxEntry, bool)> {
        let now = ms(self.now_ms());
        let id = new_id();
        let mut tx = self.begin_writing().await?;
        let inserted = sqlx::query(
            "INSERT INTO outbox (id, tenant, channel, conversation_id, idempotency_key, author, payload, status,
                attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8)
             ON CONFLICT (tenant, idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(tenant)
        .bind(connector)
        .bind(conversation_id)
        .bind(&message.idempotency_key)
        .bind(author)
        .bind(serde_json::to_string(message)?)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("storing a reply in the outbox")?;
        let new = inserted.rows_affected() == 1;
        if new && !images.is_empty() {
            // The images go with the reply, in its transaction (see `media.rs`).
            let files: Vec<super::media::OutboundFile<'_>> = images
                .iter()
                .map(|image| super::media::OutboundFile {
                    mime_type: &image.mime_type,
                    bytes: &image.data,
                })
                .collect();
            super::media::keep_outbound(
                &mut tx,
                self.backend,
                tenant,
                connector,
                &message.account,
                &id,
                conversation_id,
                &files,
                now,
            )
            .await
            .context("keeping a reply's images in the outbox")?;
        }
        let row = sqlx::query("SELECT * FROM outbox WHERE tenant = $1 AND idempotency_key = $2")
            .bind(tenant)
            .bind(&message.idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await.context("committing a reply")?;
        Ok((entry_from_row(&row)?, new))
    }

    /// The reply queued under `key` for `tenant`, if there is one.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn outbox_by_key(
        &self,
        tenant: &str,
        key: &str,
    ) -> anyhow::Result<Option<OutboxEntry>> {
        let row = sqlx::query("SELECT * FROM outbox WHERE tenant = $1 AND idempotency_key = $2")
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| entry_from_row(&r)).transpose()
    }

    /// Claims up to `limit` replies that are due, for `host` to send.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn claim_outbox(
        &self,
        host: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<OutboxEntry>> {
        let now = ms(self.now_ms());
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', claimed_by = $1, attempts = attempts + 1, updated_at = $2
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2
                          ORDER BY created_at, id LIMIT $3{lock})
             RETURNING *"
        );
        let rows = sqlx::query(&sql)
            .bind(host)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut entries: Vec<OutboxEntry> = rows
            .iter()
            .map(entry_from_row)
            .collect::<anyhow::Result<_>>()?;
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(entries)
    }

    /// Records that the platform accepted a reply: the row becomes `sent`, the reply joins
    /// its conversation as an outbound message, and the first-response time is set (by a
    /// person's reply, not by the host's automatic wait estimate).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn outbox_sent(
        &self,
        entry: &OutboxEntry,
        external_id: &str,
        sent_at: u64,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_writing().await?;
        let now = ms(self.now_ms());
        sqlx::query(
            "UPDATE outbox SET status = 'sent', external_id = $2, last_error = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(&entry.id)
        .bind(text::stored(external_id))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let m = &entry.message;
        sqlx::query(
            "INSERT INTO messages (id, tenant, channel, account, external_id, conversation_id, direction,
                author_id, author_handle, author_name, kind, text, in_reply_to, attachments, extra,
                created_at, received_at, batch_index)
             VALUES ($1, $2, $3, $4, $5, $6, 'outbound', $7, NULL, NULL, $8, $9, $10, $11, '[]', $12, $13, 0)
             ON CONFLICT (tenant, channel, account, external_id) DO NOTHING",
        )
        .bind(new_id())
        .bind(entry.tenant.as_str())
        .bind(entry.connector.as_str())
        .bind(text::stored(&m.account))
        .bind(text::stored(external_id))
        .bind(entry.conversation_id.as_str())
        .bind(text::stored(&entry.author))
        .bind(kind_str(m.kind))
        .bind(text::stored(&m.text))
        .bind(text::stored_opt(m.in_reply_to.as_ref()))
        .bind(serde_json::to_string(&m.attachments)?)
        .bind(ms(sent_at))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // The host's own automatic messages (wait estimates) are not a response: only a
        // person answering starts the first-response clock.
        let first_response = (entry.author != crate::types::HOST_AUTHOR).then_some(ms(sent_at));
        sqlx::query(
            "UPDATE conversations SET first_response_at = COALESCE(first_response_at, $3), updated_at = $4
             WHERE tenant = $1 AND id = $2",
        )
        .bind(entry.tenant.as_str())
        .bind(entry.conversation_id.as_str())
        .bind(first_response)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at` (ms), or failed for good when `None`.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn outbox_failed(
        &self,
        entry: &OutboxEntry,
        reason: &str,
        retry_at: Option<u64>,
    ) -> anyhow::Result<()> {
        let (status, next) = match retry_at {
            Some(at) => (OutboxStatus::Pending, ms(at)),
            None => (OutboxStatus::Failed, ms(self.now_ms())),
        };
        sqlx::query("UPDATE outbox SET status = $2, last_error = $3, next_attempt_at = $4, updated_at = $5 WHERE id = $1")
            .bind(&entry.id)
            .bind(status.as_str())
            .bind(text::stored(reason))
            .bind(next)
            .bind(ms(self.now_ms()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Hands a claimed reply back unsent, as if it had not been claimed: `pending` again,
    /// due at `retry_at` (ms), and the attempt the claim counted taken back. For a reply
    /// whose connector is disabled: it waits in the outbox, never counted as failed.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn outbox_release(
        &self,
        entry: &OutboxEntry,
        retry_at: u64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, attempts = attempts - 1,
                next_attempt_at = $2, updated_at = $3
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(&entry.id)
        .bind(ms(retry_at))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks replies that `host` was sending when it stopped as `uncertain` and returns
    /// them: the platform may have them already, so they are reported, not sent again.
    /// `None` takes every such row (a single host).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn reconcile_outbox(
        &self,
        host: Option<&str>,
    ) -> anyhow::Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'uncertain',
                last_error = 'the host stopped while sending: check the platform before sending again',
                updated_at = $2
             WHERE status = 'sending' AND (CAST($1 AS TEXT) IS NULL OR claimed_by = $1) RETURNING *",
        )
        .bind(host)
        .bind(ms(self.now_ms()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// One outbox row of `tenant`.
    pub async fn outbox_entry(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<OutboxEntry>> {
        let row = sqlx::query("SELECT * FROM outbox WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| entry_from_row(&r)).transpose()
    }
}

/// Replies waiting in one tenant's outbox (see [`Store::outbox_backlog`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxBacklog {
    /// The tenant.
    pub tenant: TenantId,
    /// Replies not sent yet (due now or later: a retry, a disabled connector).
    pub pending: u64,
    /// Of those, the ones due now.
    pub due: u64,
    /// Replies being sent right now.
    pub sending: u64,
    /// When the oldest pending reply was queued (ms), if there is one.
    pub oldest_pending_ms: Option<u64>,
    /// Since when the longest-due reply has been due (ms), if one is due.
    pub oldest_due_ms: Option<u64>,
    /// Since when the longest send in progress has run (ms), if one is.
    pub oldest_sending_ms: Option<u64>,
}

impl Store {
    /// The replies waiting in the outbox, per tenant with any (for `/metrics` and the
    /// readiness probe).
    pub async fn outbox_backlog(&self) -> anyhow::Result<Vec<OutboxBacklog>> {
        let now = ms(self.now_ms());
        let rows = sqlx::query(
            "SELECT tenant,
                SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,
                SUM(CASE WHEN status = 'pending' AND next_attempt_at <= $1 THEN 1 ELSE 0 END) AS due,
                SUM(CASE WHEN status = 'sending' THEN 1 ELSE 0 END) AS sending,
                MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest_pending,
                MIN(CASE WHEN status = 'pending' AND next_attempt_at <= $1 THEN next_attempt_at END) AS oldest_due,
                MIN(CASE WHEN status = 'sending' THEN updated_at END) AS oldest_sending
             FROM outbox WHERE status IN ('pending', 'sending')
             GROUP BY tenant ORDER BY tenant",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .context("reading the outbox backlog")?;
        let count = |row: &AnyRow, column: &str| -> anyhow::Result<u64> {
            let n: Option<i64> = row.try_get(column)?;
            Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
        };
        let time = |row: &AnyRow, column: &str| -> anyhow::Result<Option<u64>> {
            let at: Option<i64> = row.try_get(column)?;
            Ok(at.map(|at| u64::try_from(at).unwrap_or(0)))
        };
        rows.iter()
            .map(|row| {
                Ok(OutboxBacklog {
                    tenant: row.try_get::<String, _>("tenant")?.into(),
                    pending: count(row, "pending")?,
                    due: count(row, "due")?,
                    sending: count(row, "sending")?,
                    oldest_pending_ms: time(row, "oldest_pending")?,
                    oldest_due_ms: time(row, "oldest_due")?,
                    oldest_sending_ms: time(row, "oldest_sending")?,
                })
            })
            .collect()
    }
}

pub(super) fn entry_from_row(row: &AnyRow) -> anyhow::Result<OutboxEntry> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        tenant: row.try_get::<String, _>("tenant")?.into(),
        connector: row.try_get::<String, _>("channel")?.into(),
        conversation_id: row.try_get::<String, _>("conversation_id")?.into(),
        author: row.try_get("author")?,
        message: serde_json::from_str(&payload).context("reading an outbox payload")?,
        status: OutboxStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        last_error: text::read_opt(row.try_get("last_error")?),
        external_id: text::read_opt(row.try_get("external_id")?),
        delivery: super::receipts::parse_state(row.try_get("delivery")?),
    })
}
