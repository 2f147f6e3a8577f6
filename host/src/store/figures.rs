//! Figures the console's overview charts: first-response times and message counts over
//! the last hours. Read at most once a minute while someone watches (the console caches
//! them), never on the webhook path.

use sqlx::Row;

use super::{Store, ms};

/// One conversation's first response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FirstResponse {
    /// When it was sent (ms).
    pub(crate) at_ms: u64,
    /// How long after the conversation began.
    pub(crate) after_ms: u64,
}

/// Messages of one channel and direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MessageCount {
    pub(crate) tenant: String,
    pub(crate) channel: String,
    pub(crate) inbound: u64,
    pub(crate) outbound: u64,
}

impl Store {
    /// First responses of `tenant` sent since `since_ms`.
    pub(crate) async fn first_responses(
        &self,
        tenant: &str,
        since_ms: u64,
    ) -> anyhow::Result<Vec<FirstResponse>> {
        let rows = sqlx::query(
            "SELECT first_response_at, created_at FROM conversations
             WHERE tenant = $1 AND first_response_at >= $2",
        )
        .bind(tenant)
        .bind(ms(since_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let at: i64 = row.try_get("first_response_at")?;
            let created: i64 = row.try_get("created_at")?;
            out.push(FirstResponse {
                at_ms: u64::try_from(at).unwrap_or(0),
                after_ms: u64::try_from(at.saturating_sub(created)).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Messages of `tenant` stored since `since_ms`, per channel, in and out.
    pub(crate) async fn message_counts(
        &self,
        tenant: &str,
        since_ms: u64,
    ) -> anyhow::Result<Vec<MessageCount>> {
        let rows = sqlx::query(
            "SELECT channel,
                SUM(CASE WHEN direction = 'inbound' THEN 1 ELSE 0 END) AS inbound,
                SUM(CASE WHEN direction = 'inbound' THEN 0 ELSE 1 END) AS outbound
             FROM messages WHERE tenant = $1 AND received_at >= $2
             GROUP BY channel ORDER BY channel",
        )
        .bind(tenant)
        .bind(ms(since_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let count = |name: &str| -> anyhow::Result<u64> {
                let value: Option<i64> = row.try_get(name)?;
                Ok(u64::try_from(value.unwrap_or(0)).unwrap_or(0))
            };
            out.push(MessageCount {
                tenant: tenant.to_string(),
                channel: row.try_get("channel")?,
                inbound: count("inbound")?,
                outbound: count("outbound")?,
            });
        }
        Ok(out)
    }
}
