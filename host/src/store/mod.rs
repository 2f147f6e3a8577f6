//! Durable state: messages (deduplicated), conversations, the reply outbox and poll cursors.
//!
//! One code path serves SQLite (the embedded default, in WAL mode) and PostgreSQL (several
//! hosts sharing one database), through sqlx's `Any` driver and portable SQL. Every row
//! carries its tenant, and every query filters on it.
//!
//! The guarantees the rest of the host builds on:
//! - `Store::ingest` stores a batch of inbound messages in one transaction; a message seen
//!   before (same tenant, channel, account and platform id) changes nothing, so webhook
//!   redeliveries are harmless. Only after it returns is the platform acknowledged.
//! - a thread has at most one open conversation (a partial unique index), so a customer's
//!   new message joins the open conversation and never creates a second one.

mod assignments;
mod console;
mod customers;
mod delivery;
mod erasure;
pub(crate) mod events;
mod figures;
mod ingest;
internal_mod! {
    leases;
}
pub(crate) mod media;
mod outbox;
mod presence;
mod query;
mod receipts;
mod retention;
mod schema;
mod search;
mod service_levels;
pub(crate) mod text;
pub(crate) mod tokens;
mod traffic;

pub(crate) use console::{StoredAudit, StoredConsoleUser, StoredSession};
pub(crate) use customers::Refusal as CustomerRefusal;
pub use customers::{Customer, HistoryCursor, HistoryEntry, HistoryPage, Identity, Suggestion};
pub use erasure::{CustomerExport, Erasure, ExportedConversation};
pub(crate) use figures::{FirstResponse, MessageCount};
pub use media::{MediaContent, MediaRecord, MediaState};
pub use outbox::{OutboxBacklog, OutboxEntry, OutboxStatus};
pub use query::{
    DEFAULT_PAGE, Direction, MAX_CURSOR_CHARS, MAX_PAGE, MAX_SEARCH_CHARS, Page, SearchQuery,
};
pub(crate) use query::{InvalidCursor, InvalidQuery, page_limit};
pub(crate) use receipts::{Amendments, Applied};
pub use retention::ContentRetention;
pub(crate) use traffic::{MAX_THREADS as MAX_TRAFFIC_THREADS, StoredThread};

internal_use!(
    assignments::Horizon,
    assignments::RoutedConversation,
    assignments::RoutingTx,
    assignments::StoredAssignment,
    assignments::routing_lock_key,
    delivery::OpenDelivery,
    presence::StoredPresence,
    retention::Pruned,
);
pub(crate) use delivery::{DeliveryGroup, ReadDelivery, Recorded};
#[cfg(not(feature = "test-support"))]
pub(crate) use {
    assignments::{Horizon, RoutedConversation, RoutingTx, StoredAssignment},
    delivery::OpenDelivery,
    presence::StoredPresence,
};

use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::clock::Clock;
use crate::types::{Message, MessageKind, OutboundMessage};

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (or memory) database: one host.
    Sqlite,
    /// PostgreSQL: several hosts.
    Postgres,
}

/// The durable store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The injected clock ([`Store::with_clock`]); `None`: the system clock, and the
    /// database's own clock for poll leases (one clock for every host sharing it).
    clock: Option<Arc<dyn Clock>>,
    /// For an in-memory database, a connection held open outside the pool for as long as
    /// the store lives, so the database outlives any pool connection (see [`Store::open`]).
    _memory_anchor: Option<Arc<std::sync::Mutex<sqlx::AnyConnection>>>,
    /// For a SQLite file, the task that checkpoints its log beside the writer (see
    /// `checkpoint.rs`), stopped with the last clone of the store.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    /// For a SQLite file, one connection that only reads, beside the pool's writer: the
    /// reads of deliveries that share nothing with the group being written run on it while
    /// the writer writes (see `Store::read_beside`).
    reader: Option<AnyPool>,
}

mod checkpoint;
mod open;
mod records;
mod sink;
mod sql;

pub use open::redacted_url;

pub use records::{ConversationRecord, ConversationStatus, Ingested, StoredMessage};
use records::{kind_str, parse_kind};
use sql::{MAX_BINDS, MAX_IN_LIST, if_racing, marks, may_race, ms, new_id, positional, rows};

impl Store {
    /// This store reading time from `clock` (see [`crate::clock`]): every timestamp it
    /// writes and every "is it due / has it lapsed" it decides, poll leases included.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = Some(clock);
        self
    }

    /// Now on the store's clock, in milliseconds since the epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        crate::clock::read(self.clock.as_ref())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store's connection pool, with its settings (benchmarks: the database's own
    /// limit, measured on the same connection).
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Checks that the database answers a query (readiness probes).
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A transaction that will write: every writer of the store begins with this. On
    /// SQLite it takes the database's write lock at once (`BEGIN IMMEDIATE`), so another
    /// process writing to the file (an admin's command, a shell, a second host starting)
    /// makes it wait for that writer (the busy timeout) rather than fail: a deferred
    /// transaction that reads first and must then upgrade to writing gets SQLite's `BUSY`
    /// at once, without waiting.
    pub(super) async fn begin_writing(
        &self,
    ) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .context("creating schema_migrations")?;
        let mut tx = self.begin_writing().await?;
        if self.backend == Backend::Postgres {
            // Several hosts may start at once: one migrates, the others wait for it.
            sqlx::query("SELECT pg_advisory_xact_lock(7421001)")
                .execute(&mut *tx)
                .await?;
        }
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, statements) in schema::MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            for statement in statements
                .iter()
                .chain(schema::for_backend(*version, self.backend))
            {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("migration {version}"))?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(ms(self.now_ms()))
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "applied store migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores inbound messages of one connector in one transaction, threading each into
    /// its conversation. Duplicates change nothing and are reported as such.
    #[cfg(feature = "test-support")]
    pub async fn ingest(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
    ) -> anyhow::Result<Vec<Ingested>> {
        self.ingest_with_cursor(tenant, channel, messages, None)
            .await
    }

    /// [`Store::ingest`], also setting an account's poll cursor in the same transaction.
    #[cfg(feature = "test-support")]
    async fn ingest_with_cursor(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        cursor: Option<(&str, &str)>,
    ) -> anyhow::Result<Vec<Ingested>> {
        let mut tx = self.begin_writing().await?;
        let now = ms(self.now_ms());
        let outcomes =
            ingest::messages(&mut tx, self.backend, tenant, channel, messages, now).await?;
        if let Some((account, cursor)) = cursor {
            set_cursor(&mut tx, tenant, channel, account, cursor, now).await?;
        }
        tx.commit().await.context("committing inbound messages")?;
        Ok(outcomes)
    }

    /// A conversation of `tenant`, if it exists.
    pub async fn conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<ConversationRecord>> {
        let row = sqlx::query("SELECT * FROM conversations WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| conversation_from_row(&r)).transpose()
    }

    /// Every conversation of `tenant`, newest first, read at once: for small tenants and
    /// tests. Lists a CRM shows go through [`crate::Host::search_conversations`], a page at
    /// a time.
    pub async fn conversations(&self, tenant: &str) -> anyhow::Result<Vec<ConversationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE tenant = $1 ORDER BY created_at DESC, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conversation_from_row).collect()
    }

    /// Records a conversation's routing state (status and assignee).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn set_conversation_state(
        &self,
        tenant: &str,
        id: &str,
        status: ConversationStatus,
        assignee: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = ms(self.now_ms());
        let resolved_at = (status == ConversationStatus::Resolved).then_some(now);
        sqlx::query(
            "UPDATE conversations SET status = $3, assignee = $4, updated_at = $5,
                resolved_at = COALESCE($6, resolved_at)
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(status.as_str())
        .bind(assignee)
        .bind(now)
        .bind(resolved_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Platform id of the customer's latest message in a conversation: what a reply
    /// answers, for threading.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn latest_inbound_id(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> anyhow::Result<Option<String>> {
        let row = sqlx::query(
            "SELECT external_id FROM messages
             WHERE tenant = $1 AND conversation_id = $2 AND direction = 'inbound'
             ORDER BY created_at DESC, received_at DESC, batch_index DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get("external_id"))
            .transpose()?
            .map(text::read))
    }

    /// Every message of a conversation, oldest first, read at once: for tests and short
    /// conversations. Lists a CRM shows go through [`crate::Host::conversation_messages`],
    /// a page at a time.
    pub async fn messages(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> anyhow::Result<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT m.*, c.thread_key FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.tenant = $1 AND m.conversation_id = $2 ORDER BY m.created_at, m.received_at, m.batch_index",
        )
        .bind(tenant)
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// Number of stored messages of `tenant` (both directions).
    pub async fn message_count(&self, tenant: &str) -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM messages WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// The poll cursor of one account.
    pub async fn cursor(
        &self,
        tenant: &str,
        connector: &str,
        account: &str,
    ) -> anyhow::Result<Option<String>> {
        let row = sqlx::query(
            "SELECT cursor_value FROM cursors WHERE tenant = $1 AND connector = $2 AND account = $3",
        )
        .bind(tenant)
        .bind(connector)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get("cursor_value"))
            .transpose()?
            .map(text::read))
    }

    /// Stores messages from a poll and advances the account's cursor in the same
    /// transaction, so a crash between the two can neither skip nor repeat a page.
    #[cfg(feature = "test-support")]
    pub async fn ingest_polled(
        &self,
        tenant: &str,
        channel: &str,
        account: &str,
        messages: &[Message],
        cursor: Option<&str>,
    ) -> anyhow::Result<Vec<Ingested>> {
        self.ingest_with_cursor(tenant, channel, messages, cursor.map(|c| (account, c)))
            .await
    }
}

/// Sets an account's poll cursor inside `tx`.
async fn set_cursor(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    connector: &str,
    account: &str,
    cursor: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO cursors (tenant, connector, account, cursor_value, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, connector, account) DO UPDATE SET cursor_value = $4, updated_at = $5",
    )
    .bind(tenant)
    .bind(connector)
    .bind(account)
    .bind(text::stored(cursor))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn conversation_from_row(row: &AnyRow) -> anyhow::Result<ConversationRecord> {
    Ok(ConversationRecord {
        id: row.try_get("id")?,
        tenant: row.try_get::<String, _>("tenant")?.into(),
        channel: row.try_get("channel")?,
        account: text::read(row.try_get("account")?),
        thread_key: text::read(row.try_get("thread_key")?),
        customer_id: text::read(row.try_get("customer_id")?),
        customer_handle: text::read_opt(row.try_get("customer_handle")?),
        kind: parse_kind(&row.try_get::<String, _>("kind")?)?,
        status: ConversationStatus::parse(&row.try_get::<String, _>("status")?)?,
        assignee: row.try_get("assignee")?,
        priority: row.try_get("priority")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        first_response_at: row.try_get("first_response_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

fn message_from_row(row: &AnyRow) -> anyhow::Result<StoredMessage> {
    let attachments: String = row.try_get("attachments")?;
    let extra: String = row.try_get("extra")?;
    let author_handle: Option<String> = row.try_get("author_handle")?;
    let author_name: Option<String> = row.try_get("author_name")?;
    Ok(StoredMessage {
        id: row.try_get("id")?,
        conversation_id: row.try_get::<String, _>("conversation_id")?.into(),
        channel: row.try_get("channel")?,
        direction: row.try_get("direction")?,
        received_at: row.try_get("received_at")?,
        deleted_at: row.try_get("deleted_at")?,
        edited_at: row.try_get("edited_at")?,
        message: Message {
            external_id: text::read(row.try_get("external_id")?),
            account: text::read(row.try_get("account")?),
            conversation_key: text::read(row.try_get("thread_key")?),
            author: crate::types::Person {
                id: text::read(row.try_get("author_id")?),
                handle: text::read_opt(author_handle),
                display_name: text::read_opt(author_name),
            },
            text: text::read(row.try_get("text")?),
            kind: parse_kind(&row.try_get::<String, _>("kind")?)?,
            in_reply_to: text::read_opt(row.try_get("in_reply_to")?),
            attachments: serde_json::from_str(&attachments)?,
            created_at: u64::try_from(row.try_get::<i64, _>("created_at")?).unwrap_or(0),
            extra: serde_json::from_str(&extra)?,
        },
    })
}

#[cfg(test)]
mod tests;
