//! The traffic a tenant's store holds for a period: the conversations opened in it with
//! their customers' messages, for replaying it through another routing chain (the
//! console's routing page).

use std::collections::HashMap;

use sqlx::Row;

use super::{
    ConversationRecord, Store, StoredMessage, conversation_from_row, message_from_row, ms,
};

/// Conversations read for one replay, at most; a longer period is cut at its start.
pub(crate) const MAX_THREADS: usize = 20_000;

/// One conversation as the store recorded it.
#[derive(Clone, Debug)]
pub(crate) struct StoredThread {
    pub(crate) conversation: ConversationRecord,
    /// When its last assignee got it, if anyone did.
    pub(crate) assigned_at: Option<i64>,
    /// The customer's messages, oldest first.
    pub(crate) inbound: Vec<StoredMessage>,
}

impl Store {
    /// The conversations of `tenant` opened in `[from_ms, to_ms)`, oldest first (at most
    /// [`MAX_THREADS`], the latest ones), each with its inbound messages.
    pub(crate) async fn traffic(
        &self,
        tenant: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> anyhow::Result<Vec<StoredThread>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE tenant = $1 AND created_at >= $2 AND created_at < $3
             ORDER BY created_at DESC, id LIMIT $4",
        )
        .bind(tenant)
        .bind(ms(from_ms))
        .bind(ms(to_ms))
        .bind(i64::try_from(MAX_THREADS).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut threads = Vec::with_capacity(rows.len());
        let mut index = HashMap::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let conversation = conversation_from_row(row)?;
            index.insert(conversation.id.clone(), threads.len());
            threads.push(StoredThread {
                assigned_at: row.try_get("assigned_at")?,
                conversation,
                inbound: Vec::new(),
            });
        }
        let earliest = threads
            .first()
            .map_or(ms(to_ms), |t| t.conversation.created_at);
        let rows = sqlx::query(
            "SELECT m.*, c.thread_key FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.tenant = $1 AND m.direction = 'inbound'
               AND c.tenant = $1 AND c.created_at >= $2 AND c.created_at < $3
             ORDER BY m.received_at, m.batch_index",
        )
        .bind(tenant)
        .bind(earliest)
        .bind(ms(to_ms))
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let conversation: String = row.try_get("conversation_id")?;
            if let Some(at) = index.get(&conversation) {
                let message = message_from_row(row)?;
                if let Some(thread) = threads.get_mut(*at) {
                    thread.inbound.push(message);
                }
            }
        }
        Ok(threads)
    }
}
