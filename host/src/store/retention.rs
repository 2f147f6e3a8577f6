//! Retention: what the host keeps only for a while.
//!
//! Conversations and messages are the CRM's record and stay. What the host keeps for its
//! own work stops mattering once it is done: CRM events once delivered (the CRM has them),
//! and replies once sent or failed for good (the CRM was told). Keeping them forever makes
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

impl Store {
    /// Deletes delivered CRM events created before `before_ms`, and replies sent or failed
    /// whose last change is older than it (milliseconds since the epoch).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn prune(&self, before_ms: u64) -> anyhow::Result<Pruned> {
        let cutoff = ms(before_ms);
        let events = self
            .delete_in_batches(
                "DELETE FROM crm_events WHERE id IN (
                     SELECT id FROM crm_events WHERE status = 'delivered' AND created_at < $1
                     LIMIT $2)",
                cutoff,
            )
            .await?;
        let replies = self
            .delete_in_batches(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox WHERE status IN ('sent', 'failed') AND updated_at < $1
                     LIMIT $2)",
                cutoff,
            )
            .await?;
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
