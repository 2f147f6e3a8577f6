//! What routing keeps in the store so it survives a restart, and so a host sharing the
//! database can pick up a conversation another host routed: each open conversation's
//! status, assignee, when the assignee got it and whether a person handed it over, plus
//! the customer's latest text (what a policy reads when it is routed again).
//!
//! **What changed since a host last looked (PostgreSQL).** Every change to a
//! conversation's routing state (status, assignee, when and how it was given, the first
//! response) stamps the row with the writing transaction's id (`changed_xid`, by a trigger,
//! so no writer can forget it, and without a shared row any two writers would have to take
//! in the same order). A routing change takes its horizon with the routing lock, in the
//! same statement: that statement's snapshot, as its `xmax` (the first transaction id not
//! yet given out) and the ids still in progress below it. It then reads only the rows
//! stamped by a transaction the previous change's snapshot did not see as ended: at or
//! above that `xmax`, or one of those in progress. Every other stamp belongs to a
//! transaction that had ended by the previous change, whose reads saw it. Rows are read
//! again at most once more than needed, never missed.
//!
//! A transaction left open for long (a report, a session idle in a transaction) is one id
//! in the list: its own rows are read when it ends, and the changes committed meanwhile
//! are read once each. With the snapshot's `xmin` as the horizon (the oldest transaction
//! still running), every change would read everything stamped since that transaction
//! began; that bound is still used while the oldest running transaction is near (within
//! [`NEAR`] ids of `xmax`, as the host's own deliveries in flight are), where it reads
//! only a few rows more in one range scan.

use std::collections::HashMap;

use anyhow::Context as _;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Backend, ConversationRecord, ConversationStatus, MAX_BINDS, MAX_IN_LIST, Store,
    conversation_from_row, events, marks, ms, positional, rows,
};
use crate::crm::CrmEvent;

/// A stored conversation with what routing needs to take it up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedConversation {
    /// The conversation.
    pub record: ConversationRecord,
    /// When the current assignee got it (ms), if recorded.
    pub assigned_at: Option<i64>,
    /// Whether a person handed it over (then any operator may reply).
    pub transferred: bool,
    /// Text of the customer's latest message.
    pub last_text: String,
    /// Customer messages so far.
    pub messages: i64,
    /// The language the platform gave the customer's first message that carried one (X's
    /// `lang`), as routing matches it; none when no message carried one.
    pub language: Option<String>,
}

const SELECT: &str = "SELECT c.*,
        (SELECT m.text FROM messages m
         WHERE m.tenant = c.tenant AND m.conversation_id = c.id AND m.direction = 'inbound'
         ORDER BY m.created_at DESC, m.received_at DESC, m.batch_index DESC LIMIT 1) AS last_text,
        (SELECT COUNT(*) FROM messages m
         WHERE m.tenant = c.tenant AND m.conversation_id = c.id AND m.direction = 'inbound')
            AS inbound_messages,
        (SELECT m.extra FROM messages m
         WHERE m.tenant = c.tenant AND m.conversation_id = c.id AND m.direction = 'inbound'
             AND m.extra LIKE '%\"lang\"%'
         ORDER BY m.created_at, m.received_at, m.batch_index LIMIT 1) AS language_extra
     FROM conversations c";

/// Migration 16 on PostgreSQL: the stamp, its index, and the trigger that sets it.
pub(super) const POSTGRES_MIGRATION: &[&str] = &[
    "ALTER TABLE conversations ADD COLUMN changed_xid BIGINT NOT NULL DEFAULT 0",
    "CREATE INDEX conversations_changed ON conversations (tenant, changed_xid)",
    "CREATE FUNCTION centralino_conversation_changed() RETURNS trigger AS $$
     BEGIN
         NEW.changed_xid := pg_current_xact_id()::text::bigint;
         RETURN NEW;
     END
     $$ LANGUAGE plpgsql",
    "CREATE TRIGGER conversations_changed
     BEFORE INSERT OR UPDATE OF status, assignee, assigned_at, transferred, first_response_at
     ON conversations
     FOR EACH ROW EXECUTE FUNCTION centralino_conversation_changed()",
];

impl Store {
    /// Records what routing decided for a batch of conversations, in one transaction: each
    /// conversation's new status and assignee (in order; a later change of the same
    /// conversation wins), then `events` for the CRM, in order. One statement per distinct
    /// (status, assignee) and one for the events, however many conversations.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn record_routing(
        &self,
        tenant: &str,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[crate::crm::CrmEvent],
    ) -> anyhow::Result<()> {
        if changes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_writing().await?;
        record_routing_in(
            &mut super::sink::Sink::Run(&mut tx),
            self.backend,
            tenant,
            changes,
            events,
            self.now_ms(),
        )
        .await?;
        tx.commit().await.context("recording routing outcomes")?;
        Ok(())
    }

    /// Every conversation of `tenant` that is not resolved, oldest first, for routing to
    /// take up at start-up.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn open_conversations(
        &self,
        tenant: &str,
    ) -> anyhow::Result<Vec<RoutedConversation>> {
        let sql = format!(
            "{SELECT} WHERE c.tenant = $1 AND c.status <> 'resolved' ORDER BY c.created_at, c.id"
        );
        let rows = sqlx::query(&sql).bind(tenant).fetch_all(&self.pool).await?;
        rows.iter().map(routed_from_row).collect()
    }

    /// One conversation of `tenant` with its routing state.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn routed_conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<RoutedConversation>> {
        let mut conn = self.pool.acquire().await?;
        routed_conversation_in(&mut conn, tenant, id).await
    }

    /// How many conversations each operator of `tenant` holds, as committed.
    pub(crate) async fn operator_loads(
        &self,
        tenant: &str,
    ) -> anyhow::Result<HashMap<String, u32>> {
        let mut conn = self.pool.acquire().await?;
        operator_loads_in(&mut conn, tenant).await
    }

    /// Records that `operator` holds a conversation now (assigned by routing, or handed
    /// over by a person when `transferred`).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn set_conversation_assignee(
        &self,
        tenant: &str,
        id: &str,
        operator: &str,
        transferred: bool,
    ) -> anyhow::Result<()> {
        set_assignee(&self.pool, tenant, id, operator, transferred, self.now_ms()).await
    }

    /// Who holds one conversation of `tenant` now, as committed.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn assignment(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<StoredAssignment>> {
        let row = sqlx::query(
            "SELECT id, status, assignee, assigned_at, transferred, first_response_at
                     FROM conversations
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| assignment_from_row(&r)).transpose()
    }

    /// On PostgreSQL, begins a routing change of `tenant`: a transaction that holds the
    /// tenant's routing lock (`pg_advisory_xact_lock`) until it commits or rolls back, so
    /// hosts sharing the database decide for a tenant one at a time, each on what the one
    /// before committed. `None` on SQLite: one host, whose engine is the truth.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn begin_routing(&self, tenant: &str) -> anyhow::Result<Option<RoutingTx>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut tx = self.begin_writing().await?;
        // The horizon in the lock's round trip: the statement's snapshot is taken before
        // the lock is granted, so it may be older than needed (more is read), never newer.
        let row = sqlx::query(
            "SELECT pg_snapshot_xmin(s)::text::bigint AS xmin,
                    pg_snapshot_xmax(s)::text::bigint AS xmax,
                    COALESCE((SELECT string_agg(x::text, ',') FROM pg_snapshot_xip(s) AS x), '')
                        AS running
             FROM (SELECT pg_current_snapshot() AS s
                   FROM (SELECT pg_advisory_xact_lock($1)) AS locked) AS snapshot",
        )
        .bind(routing_lock_key(tenant))
        .fetch_one(&mut *tx)
        .await
        .with_context(|| format!("taking the routing lock of tenant `{tenant}`"))?;
        Ok(Some(RoutingTx {
            tx,
            backend: self.backend,
            tenant: tenant.to_string(),
            clock: self.clock.clone(),
            horizon: Horizon {
                xmin: row.try_get("xmin")?,
                xmax: row.try_get("xmax")?,
                running: row.try_get("running")?,
            },
        }))
    }
}

/// Where a routing change's reads stood on PostgreSQL (see the module docs): its
/// snapshot's bounds and the transactions in progress between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Horizon {
    /// The oldest transaction still in progress (`xmax` when none was).
    xmin: i64,
    /// The first transaction id not yet given out.
    xmax: i64,
    /// The transactions in progress, each at or above `xmin` and below `xmax`, as the
    /// server listed them (comma-separated; bound back as they are, see [`ChangedSince`]).
    running: String,
}

/// Most transactions in progress a change names one by one; past them it reads from the
/// oldest on, as much as needed and more.
const MAX_RUNNING: usize = 200;

/// How far (in transaction ids) the oldest transaction in progress may lag before a
/// change names the running ones instead of reading from the oldest on. Below it the
/// extra rows are few and one range scan reads them; a report left open for minutes
/// lags by far more.
const NEAR: i64 = 1_000;

/// The condition on `changed_xid` a [`Horizon`] reads from, with the values it binds
/// (bound, not written into the SQL: the statement's text stays the same from one change
/// to the next, so it is prepared once per connection).
enum ChangedSince<'h> {
    /// Stamped at or above this id.
    From(i64),
    /// Stamped at or above this id, or by one of these (comma-separated).
    FromOrBy(i64, &'h str),
}

impl ChangedSince<'_> {
    fn sql(&self) -> &'static str {
        match self {
            ChangedSince::From(_) => "changed_xid >= ?",
            ChangedSince::FromOrBy(..) => {
                "(changed_xid >= ? OR changed_xid = ANY(string_to_array(?, ',')::bigint[]))"
            }
        }
    }
}

impl Horizon {
    /// What changed from this horizon on: from the oldest transaction then running while
    /// it is near, else from `xmax` plus the running ones (module docs).
    fn changed_since(&self) -> ChangedSince<'_> {
        let near = self.xmax.saturating_sub(self.xmin) <= NEAR;
        if near || self.running.split(',').count() > MAX_RUNNING {
            ChangedSince::From(self.xmin)
        } else {
            ChangedSince::FromOrBy(self.xmax, &self.running)
        }
    }
}

/// What the store says about who holds a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAssignment {
    /// The conversation.
    pub id: String,
    /// Its status.
    pub status: ConversationStatus,
    /// Who holds it.
    pub assignee: Option<String>,
    /// Since when (ms), if recorded.
    pub assigned_at: Option<i64>,
    /// Whether a person handed it over.
    pub transferred: bool,
    /// When a reply first reached the customer (ms).
    pub first_response_at: Option<i64>,
}

/// The advisory-lock key of a tenant's routing: FNV-1a (64 bits) of a namespace and the
/// tenant's name, the same on every host and build.
pub fn routing_lock_key(tenant: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"centralino:routing:".iter().chain(tenant.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_le_bytes(hash.to_le_bytes())
}

/// A tenant's routing change on PostgreSQL (see [`Store::begin_routing`]): reads see what
/// other hosts committed before the lock was granted, and what the change records is
/// committed together, or not at all.
#[derive(Debug)]
pub struct RoutingTx {
    pub(super) tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    pub(super) tenant: String,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
    horizon: Horizon,
}

impl RoutingTx {
    /// Now on the store's clock.
    pub(super) fn now_ms(&self) -> u64 {
        crate::clock::read(self.clock.as_ref())
    }

    /// Every assigned conversation of the tenant with its assignee, across every host.
    pub(crate) async fn held(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, assignee FROM conversations
             WHERE tenant = $1 AND status = 'assigned' AND assignee IS NOT NULL",
        )
        .bind(&self.tenant)
        .fetch_all(&mut *self.tx)
        .await
        .context("reading who holds each assigned conversation")?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("assignee")?)))
            .collect()
    }

    /// The horizon of this change's reads (see the module docs): a later change that
    /// passes it to [`RoutingTx::assignments`] reads every conversation changed since
    /// these reads, from any host.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn horizon(&self) -> Horizon {
        self.horizon.clone()
    }

    /// The assignment of each conversation of `ids` the store has, by id, and of every
    /// conversation waiting in the queue, or, with `since`, of every conversation changed
    /// from that horizon on instead.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn assignments(
        &mut self,
        ids: &[&str],
        since: Option<&Horizon>,
    ) -> anyhow::Result<HashMap<String, StoredAssignment>> {
        let mut found = HashMap::new();
        let mut chunks: Vec<&[&str]> = ids.chunks(MAX_IN_LIST).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let changed = since.map(Horizon::changed_since);
        for (n, chunk) in chunks.into_iter().enumerate() {
            let also = changed
                .as_ref()
                .map_or("status = 'waiting'", ChangedSince::sql);
            let filter = match (n, chunk.is_empty()) {
                (0, true) => also.to_string(),
                (0, false) => format!("({also} OR id IN ({}))", marks(chunk.len())),
                _ => format!("id IN ({})", marks(chunk.len())),
            };
            let sql = positional(
                self.backend,
                &format!(
                    "SELECT id, status, assignee, assigned_at, transferred, first_response_at
                     FROM conversations
                     WHERE tenant = ? AND {filter}"
                ),
            );
            let mut query = sqlx::query(&sql).bind(&self.tenant);
            match (n, &changed) {
                (0, Some(ChangedSince::From(xid))) => query = query.bind(*xid),
                (0, Some(ChangedSince::FromOrBy(xid, running))) => {
                    query = query.bind(*xid).bind(*running);
                }
                _ => {}
            }
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query
                .fetch_all(&mut *self.tx)
                .await
                .context("reading conversations' assignments")?
            {
                let stored = assignment_from_row(&row)?;
                found.insert(stored.id.clone(), stored);
            }
        }
        Ok(found)
    }

    /// [`Store::record_routing`] in this change.
    pub async fn record(
        &mut self,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<()> {
        let now = self.now_ms();
        record_routing_in(
            &mut super::sink::Sink::Run(&mut self.tx),
            self.backend,
            &self.tenant,
            changes,
            events,
            now,
        )
        .await
    }

    /// [`Store::set_conversation_assignee`] in this change.
    pub async fn set_assignee(
        &mut self,
        id: &str,
        operator: &str,
        transferred: bool,
    ) -> anyhow::Result<()> {
        let now = self.now_ms();
        set_assignee(&mut *self.tx, &self.tenant, id, operator, transferred, now).await
    }

    /// Commits the change and releases the routing lock.
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx
            .commit()
            .await
            .with_context(|| format!("committing a routing change of tenant `{}`", self.tenant))
    }
}

/// [`Store::routed_conversation`] on `conn` (inside a transaction, say).
pub(super) async fn routed_conversation_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    id: &str,
) -> anyhow::Result<Option<RoutedConversation>> {
    let sql = format!("{SELECT} WHERE c.tenant = $1 AND c.id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| routed_from_row(&r)).transpose()
}

/// How many conversations each operator of `tenant` holds, read on `conn`.
async fn operator_loads_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
) -> anyhow::Result<HashMap<String, u32>> {
    let rows = sqlx::query(
        "SELECT assignee, COUNT(*) AS held FROM conversations
         WHERE tenant = $1 AND status = 'assigned' AND assignee IS NOT NULL
         GROUP BY assignee",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .context("reading operators' loads")?;
    rows.iter()
        .map(|row| {
            let held: i64 = row.try_get("held")?;
            Ok((
                row.try_get("assignee")?,
                u32::try_from(held).unwrap_or(u32::MAX),
            ))
        })
        .collect()
}

fn assignment_from_row(row: &AnyRow) -> anyhow::Result<StoredAssignment> {
    Ok(StoredAssignment {
        id: row.try_get("id")?,
        status: ConversationStatus::parse(&row.try_get::<String, _>("status")?)?,
        assignee: row.try_get("assignee")?,
        assigned_at: row.try_get("assigned_at")?,
        transferred: row.try_get::<i64, _>("transferred")? != 0,
        first_response_at: row.try_get("first_response_at")?,
    })
}

async fn set_assignee<'e, E>(
    executor: E,
    tenant: &str,
    id: &str,
    operator: &str,
    transferred: bool,
    now_ms: u64,
) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let now = ms(now_ms);
    sqlx::query(
        "UPDATE conversations SET status = $3, assignee = $4, assigned_at = $5,
            transferred = $6, updated_at = $5
         WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(ConversationStatus::Assigned.as_str())
    .bind(operator)
    .bind(now)
    .bind(i64::from(transferred))
    .execute(executor)
    .await?;
    Ok(())
}

fn routed_from_row(row: &AnyRow) -> anyhow::Result<RoutedConversation> {
    Ok(RoutedConversation {
        record: conversation_from_row(row)?,
        assigned_at: row.try_get("assigned_at")?,
        transferred: row.try_get::<i64, _>("transferred")? != 0,
        last_text: super::text::read(
            row.try_get::<Option<String>, _>("last_text")?
                .unwrap_or_default(),
        ),
        messages: row.try_get("inbound_messages")?,
        language: row
            .try_get::<Option<String>, _>("language_extra")?
            .and_then(|extra| serde_json::from_str::<crate::types::Pairs>(&extra).ok())
            .and_then(|extra| crate::conventions::language_in(&extra)),
    })
}

/// [`Store::record_routing`] inside a transaction the caller commits.
pub(super) async fn record_routing_in(
    sink: &mut super::sink::Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    changes: &[(String, ConversationStatus, Option<String>)],
    events: &[crate::crm::CrmEvent],
    now_ms: u64,
) -> anyhow::Result<()> {
    // The last change of each conversation, all of them in one statement: each row of
    // `routed` sets one conversation's status and assignee. (One statement per assignee
    // cost a round trip and a statement preparation each: half the time of recording a
    // delivery's routing, measured.)
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(changes.len());
    let mut last: Vec<(&str, &str, Option<&str>)> = Vec::with_capacity(changes.len());
    for (id, status, assignee) in changes {
        let row = (id.as_str(), status.as_str(), assignee.as_deref());
        match row_of.get(id.as_str()).and_then(|&at| last.get_mut(at)) {
            Some(slot) => *slot = row,
            None => {
                row_of.insert(id.as_str(), last.len());
                last.push(row);
            }
        }
    }
    let now = ms(now_ms);
    const PER_ROW: usize = 3;
    for chunk in last.chunks((MAX_BINDS - 4) / PER_ROW) {
        // `conversations.id = routed.id` drives the search (the primary key, for each row
        // of `routed`). Given a plain `tenant = ?`, SQLite's planner could prefer the
        // tenant's indexes and walk every conversation of the tenant; the expression keeps
        // them out of the running. Routing never reopens a conversation a person closed
        // (on another host, say): only a resolve writes over a resolved one.
        let sql = positional(
            backend,
            &format!(
                "WITH routed (id, status, assignee) AS (VALUES {})
                 UPDATE conversations SET
                    status = routed.status,
                    assignee = routed.assignee,
                    assigned_at = CASE WHEN routed.assignee IS NULL THEN NULL ELSE ? END,
                    transferred = 0,
                    updated_at = ?,
                    resolved_at = CASE WHEN routed.status = 'resolved' THEN ?
                                       ELSE conversations.resolved_at END
                 FROM routed
                 WHERE COALESCE(conversations.tenant, '') = ?
                   AND conversations.id = routed.id
                   AND (routed.status = 'resolved' OR conversations.status <> 'resolved')",
                rows("(?, ?, ?)", chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql);
        for &(id, status, assignee) in chunk {
            query = query.bind(id).bind(status).bind(assignee);
        }
        // Routing's own assignments: assigned now, by the chain (not transferred).
        query = query.bind(now).bind(now).bind(now).bind(tenant);
        sink.execute(query).await?;
    }
    events::append_to(sink, backend, tenant, events, now).await?;
    Ok(())
}
