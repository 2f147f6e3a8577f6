//! Retention: what the host keeps only for a while.
//!
//! Conversations and messages stay as long as each tenant's [`ContentRetention`] says
//! (`[retention]` in centralino.toml; by default, forever): past `messages`, a message's
//! content (text, attachments and the files the store kept of them, extras, the author's
//! handle and name) is emptied and its row kept, so the counts reports read and deduplication stay; past `conversations`, a
//! conversation resolved that long ago is deleted with its messages and replies.
//! [`Store::prune_content`] applies both, on the store's clock.
//!
//! What the host keeps for its own work stops mattering once it is done: CRM events once delivered (the CRM has them),
//! and replies once sent or failed for good (the CRM was told), with the images kept for them. Keeping them forever makes
//! every table grow with traffic; [`Store::prune`] deletes those older than a cutoff, in
//! small batches so other writers are never held up for long. A reply's idempotency key is
//! remembered as long as its row: a CRM that repeats a request after the retention period
//! queues a new reply.
//!
//! Replies whose fate is unknown (`uncertain`, caught mid-send by a crash) are kept: a
//! person has to look at the platform before anything is done about them.

use serde::Serialize;

use super::{Store, ms};

/// Rows deleted per statement.
const BATCH: i64 = 1_000;

/// What one pruning deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Delivered CRM events.
    pub events: u64,
    /// Replies sent or failed for good.
    pub replies: u64,
}

/// How long a tenant's conversations and messages are kept. `None`: forever (the
/// default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContentRetention {
    /// How long after it was resolved a conversation is kept (then deleted with its
    /// messages and replies).
    pub conversations: Option<std::time::Duration>,
    /// How long after it arrived a message keeps its content (then its text, attachments,
    /// extras and author's handle and name are emptied; the row stays for the counts).
    pub messages: Option<std::time::Duration>,
}

impl ContentRetention {
    /// Keeps everything forever.
    pub fn forever() -> Self {
        ContentRetention::default()
    }

    /// Deletes conversations `keep` after they were resolved.
    pub fn conversations(mut self, keep: std::time::Duration) -> Self {
        self.conversations = Some(keep);
        self
    }

    /// Empties messages `keep` after they arrived.
    pub fn messages(mut self, keep: std::time::Duration) -> Self {
        self.messages = Some(keep);
        self
    }
}

/// What one pass of a tenant's content retention did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PrunedContent {
    /// Conversations deleted.
    pub(crate) conversations: u64,
    /// Messages emptied.
    pub(crate) messages: u64,
}

/// Deletes up to `$2` delivered CRM events created before `$1`.
pub(super) const PRUNE_EVENTS: &str = "DELETE FROM crm_events WHERE id IN (
     SELECT id FROM crm_events WHERE status = 'delivered' AND created_at < $1 LIMIT $2)";

impl Store {
    /// Applies `tenant`'s content retention as of now on the store's clock (see the module
    /// docs), in batches.
    pub(crate) async fn prune_content(
        &self,
        tenant: &str,
        retention: &ContentRetention,
    ) -> anyhow::Result<PrunedContent> {
        let now = self.now_ms();
        let cutoff = |keep: std::time::Duration| {
            ms(now.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX)))
        };
        let mut pruned = PrunedContent::default();
        if let Some(keep) = retention.messages {
            let before = cutoff(keep);
            loop {
                let done = sqlx::query(
                    "UPDATE messages SET text = '', attachments = '[]', extra = '[]',
                        author_handle = NULL, author_name = NULL
                     WHERE id IN (SELECT id FROM messages WHERE tenant = $1 AND received_at < $2
                         AND (text <> '' OR attachments <> '[]' OR extra <> '[]'
                              OR author_handle IS NOT NULL OR author_name IS NOT NULL)
                         LIMIT $3)",
                )
                .bind(tenant)
                .bind(before)
                .bind(BATCH)
                .execute(&self.pool)
                .await?;
                pruned.messages += done.rows_affected();
                if done.rows_affected() < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            // The files of those messages (an inbound file is recorded when its message
            // arrives) go with their content.
            sqlx::query(
                "DELETE FROM media WHERE tenant = $1 AND direction = 'inbound' AND created_at < $2",
            )
            .bind(tenant)
            .bind(before)
            .execute(&self.pool)
            .await?;
        }
        if let Some(keep) = retention.conversations {
            let before = cutoff(keep);
            loop {
                let mut tx = self.begin_writing().await?;
                let ids: Vec<String> = sqlx::query(
                    "SELECT id FROM conversations WHERE tenant = $1 AND status = 'resolved'
                         AND resolved_at < $2 LIMIT $3",
                )
                .bind(tenant)
                .bind(before)
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| sqlx::Row::try_get(row, "id"))
                .collect::<Result<_, _>>()?;
                for chunk in ids.chunks(super::MAX_IN_LIST) {
                    for table in ["media", "outbox", "message_versions", "messages"] {
                        let sql = super::positional(
                            self.backend,
                            &format!(
                                "DELETE FROM {table} WHERE conversation_id IN ({})",
                                super::marks(chunk.len())
                            ),
                        );
                        let mut query = sqlx::query(&sql);
                        for id in chunk {
                            query = query.bind(id);
                        }
                        query.execute(&mut *tx).await?;
                    }
                    let sql = super::positional(
                        self.backend,
                        &format!(
                            "DELETE FROM conversations WHERE id IN ({})",
                            super::marks(chunk.len())
                        ),
                    );
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    pruned.conversations += query.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                if ids.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(pruned)
    }

    /// Deletes delivered CRM events created before `before_ms`, and replies sent or failed
    /// whose last change is older than it (milliseconds since the epoch).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn prune(&self, before_ms: u64) -> anyhow::Result<Pruned> {
        let cutoff = ms(before_ms);
        let events = self.delete_in_batches(PRUNE_EVENTS, cutoff).await?;
        let replies = self
            .delete_in_batches(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox WHERE status IN ('sent', 'failed') AND updated_at < $1
                     LIMIT $2)",
                cutoff,
            )
            .await?;
        if replies > 0 {
            // The images kept with those replies.
            sqlx::query(
                "DELETE FROM media WHERE direction = 'outbound'
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.id = media.owner_id)",
            )
            .execute(&self.pool)
            .await?;
        }
        Ok(Pruned { events, replies })
    }

    async fn delete_in_batches(&self, sql: &str, cutoff: i64) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let done = sqlx::query(sql)
                .bind(cutoff)
                .bind(BATCH)
                .execute(&self.pool)
                .await?;
            total += done.rows_affected();
            if done.rows_affected() < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                return Ok(total);
            }
            // Let other writers in between batches.
            tokio::task::yield_now().await;
        }
    }
}
