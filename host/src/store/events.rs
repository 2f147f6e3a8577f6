//! The CRM event log: events are appended in the transaction of the change they report,
//! then claimed and delivered in order by the dispatcher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Row;

use super::sink::Sink;
use super::{Backend, Store, ms, new_id};
use crate::crm::{CrmDelivery, CrmEvent};

/// How long a claimed event stays with the host that claimed it.
const CLAIM_LEASE_MS: i64 = 30_000;

/// The PostgreSQL advisory lock that orders hosts' claims of CRM events (the store's
/// migrations hold 7421001).
const CLAIM_LOCK_KEY: i64 = 7_421_002;

/// Orders events written within the same millisecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn next_seq(now: i64) -> i64 {
    let n = i64::try_from(SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000).unwrap_or(0);
    now.saturating_mul(1_000_000).saturating_add(n)
}

/// Appends events inside an open transaction, in order, with one statement per
/// [`super::MAX_BINDS`] values; returns their ids. Each is due at once
/// (`next_attempt_at = 0`), so it enters none of the indexes of events waiting.
pub(crate) async fn append_many(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    tenant: &str,
    events: &[CrmEvent],
    now: i64,
) -> anyhow::Result<Vec<String>> {
    append_to(&mut Sink::Run(tx), backend, tenant, events, now).await
}

/// [`append_many`] to a [`Sink`]: run at once, or recorded with the delivery's other
/// statements.
pub(crate) async fn append_to(
    sink: &mut Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    events: &[CrmEvent],
    now: i64,
) -> anyhow::Result<Vec<String>> {
    const COLUMNS: usize = 6;
    let mut ids = Vec::with_capacity(events.len());
    for chunk in events.chunks(super::MAX_BINDS / COLUMNS) {
        let sql = super::positional(
            backend,
            &format!(
                "INSERT INTO crm_events (id, tenant, payload, seq, created_at,
                    next_attempt_at, status, attempts)
                 VALUES {}",
                super::rows("(?, ?, ?, ?, ?, 0, 'pending', 0)", chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            let id = new_id();
            query = query
                .bind(id.clone())
                .bind(tenant)
                .bind(serde_json::to_string(event)?)
                .bind(next_seq(now))
                .bind(now);
            ids.push(id);
        }
        sink.execute(query).await?;
    }
    Ok(ids)
}

/// The claim (see [`Store::claim_events`]): `$1` the host, `$2` now, `$3` how many at
/// most, `$4` when the claim's lease ends.
fn claim_sql(backend: Backend) -> String {
    // PostgreSQL: skip rows another host is claiming. SQLite: walk the undelivered
    // events in `seq` order and stop after one batch; left to itself, its planner picked
    // an index on the status (dropped since, migration 17) and sorted the whole backlog
    // for every claim (measured: the CRM's drain of a 10,000-event backlog went from
    // 21,300 to 31,400 events/s). The barrier reads `crm_events_waiting`.
    let (hint, lock) = if backend == Backend::Postgres {
        ("", " FOR UPDATE OF e SKIP LOCKED")
    } else {
        (" INDEXED BY crm_events_undelivered", "")
    };
    format!(
        "UPDATE crm_events SET status = 'delivering', claimed_by = $1, attempts = attempts + 1,
                    next_attempt_at = $4
             WHERE id IN (
                 WITH barrier AS (
                     SELECT tenant, MIN(seq) AS seq FROM crm_events
                     WHERE status IN ('pending', 'delivering') AND next_attempt_at > 0
                       AND next_attempt_at > $2
                     GROUP BY tenant)
                 SELECT e.id FROM crm_events e{hint} LEFT JOIN barrier b ON b.tenant = e.tenant
                 WHERE e.status IN ('pending', 'delivering') AND e.next_attempt_at <= $2
                   AND (b.seq IS NULL OR e.seq < b.seq)
                 ORDER BY e.seq LIMIT $3{lock})
             RETURNING id, tenant, payload, created_at, attempts, seq"
    )
}

/// Makes a host's claims claimable again (see [`Store::reclaim_events`]): `$1` the host, or
/// `NULL` for every host's.
const RECLAIM: &str = "UPDATE crm_events SET status = 'pending', next_attempt_at = 0
     WHERE status IN ('pending', 'delivering') AND status = 'delivering'
       AND (CAST($1 AS TEXT) IS NULL OR claimed_by = $1)";

/// How many events of tenant `$1` are not delivered yet.
const UNDELIVERED: &str = "SELECT COUNT(*) FROM crm_events
     WHERE status IN ('pending', 'delivering') AND tenant = $1";

impl Store {
    /// Makes the events `host` was delivering when it stopped claimable again at once (on
    /// SQLite, `None`: every such event, since there is only one host).
    pub(crate) async fn reclaim_events(&self, host: Option<&str>) -> anyhow::Result<u64> {
        let done = sqlx::query(RECLAIM).bind(host).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Appends one event on its own.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn append_event(
        &self,
        tenant: &str,
        event: &CrmEvent,
    ) -> anyhow::Result<String> {
        let mut tx = self.begin_writing().await?;
        let ids = append_many(
            &mut tx,
            self.backend,
            tenant,
            std::slice::from_ref(event),
            ms(self.now_ms()),
        )
        .await?;
        tx.commit().await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("appending an event returned no id"))
    }

    /// Claims the oldest due events (with their attempt counts), in order. An event waiting
    /// for a retry, or being delivered by another host, holds back every later event of its
    /// tenant, so a CRM never sees events out of order. A claim is a lease: events claimed
    /// by a host that died are claimable again once it expires, so a crash delays delivery
    /// but never stops it (the CRM may then see an event twice, with the same id).
    pub(crate) async fn claim_events(
        &self,
        host: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(CrmDelivery, i64)>> {
        let now = ms(self.now_ms());
        let sql = claim_sql(self.backend);
        let query = sqlx::query(&sql)
            .bind(host)
            .bind(now)
            .bind(limit)
            .bind(now.saturating_add(CLAIM_LEASE_MS));
        let rows = if self.backend == Backend::Postgres {
            // Hosts claim one at a time, each after the one before committed. The barrier
            // is read in the claim's snapshot: a host claiming at the same moment as
            // another saw that one's events as still pending, skipped them as locked and
            // took the next ones, so a CRM got a tenant's later events first (seen in the
            // two-host edits test). The CRM's deliveries themselves run outside the lock.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CLAIM_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .context("taking the CRM claim lock")?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        } else {
            query.fetch_all(&self.pool).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let payload: String = row.try_get("payload")?;
            let seq: i64 = row.try_get("seq")?;
            out.push((
                seq,
                CrmDelivery {
                    id: row.try_get("id")?,
                    tenant: row.try_get::<String, _>("tenant")?.into(),
                    created_at: row.try_get("created_at")?,
                    event: serde_json::from_str(&payload)?,
                },
                row.try_get::<i64, _>("attempts")?,
            ));
        }
        out.sort_by_key(|(seq, _, _)| *seq);
        Ok(out.into_iter().map(|(_, d, a)| (d, a)).collect())
    }

    /// Marks delivered events, in one statement per [`super::MAX_IN_LIST`] ids.
    pub(crate) async fn events_delivered(&self, ids: &[String]) -> anyhow::Result<()> {
        for chunk in ids.chunks(super::MAX_IN_LIST) {
            let sql = super::positional(
                self.backend,
                &format!(
                    "UPDATE crm_events SET status = 'delivered', last_error = NULL WHERE id IN ({})",
                    super::marks(chunk.len())
                ),
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    pub(crate) async fn event_failed(
        &self,
        id: &str,
        reason: &str,
        retry_in: Duration,
    ) -> anyhow::Result<()> {
        let at = ms(self.now_ms())
            .saturating_add(i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX));
        sqlx::query("UPDATE crm_events SET status = 'pending', last_error = $2, next_attempt_at = $3 WHERE id = $1")
            .bind(id)
            .bind(super::text::stored(reason))
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts claimed events back, untouched (their attempt is not counted).
    pub(crate) async fn events_release(&self, ids: &[String]) -> anyhow::Result<()> {
        for chunk in ids.chunks(super::MAX_IN_LIST) {
            let sql = super::positional(
                self.backend,
                &format!(
                    "UPDATE crm_events SET status = 'pending', attempts = attempts - 1, next_attempt_at = 0
                     WHERE id IN ({})",
                    super::marks(chunk.len())
                ),
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Every event the store still holds for `tenant` (delivered or not), in order.
    #[cfg(feature = "test-support")]
    pub async fn held_events(&self, tenant: &str) -> anyhow::Result<Vec<CrmEvent>> {
        sqlx::query("SELECT payload FROM crm_events WHERE tenant = $1 ORDER BY seq")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(serde_json::from_str(&row.try_get::<String, _>("payload")?)?))
            .collect()
    }

    /// Events of `tenant` not yet delivered.
    pub async fn undelivered_events(&self, tenant: &str) -> anyhow::Result<i64> {
        let row = sqlx::query(UNDELIVERED)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan;
    use super::{Backend, RECLAIM, Store, UNDELIVERED, claim_sql};

    #[tokio::test]
    async fn the_event_logs_statements_read_the_indexes_of_the_events_they_are_about() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let claim = plan(&store, &claim_sql(Backend::Sqlite)).await;
        assert!(
            claim.contains("USING INDEX crm_events_waiting"),
            "the barrier reads the events claimed or waiting for a retry:\n{claim}"
        );
        assert!(
            claim.contains("USING INDEX crm_events_undelivered"),
            "{claim}"
        );
        assert!(
            !claim.contains("SCAN crm_events\n") && !claim.ends_with("SCAN crm_events"),
            "{claim}"
        );
        for (sql, index) in [
            (RECLAIM, "crm_events_undelivered"),
            (UNDELIVERED, "crm_events_undelivered"),
            (
                super::super::retention::PRUNE_EVENTS,
                "crm_events_delivered",
            ),
        ] {
            let plan = plan(&store, sql).await;
            assert!(plan.contains(&format!("INDEX {index}")), "{sql}\n{plan}");
        }
    }

    #[tokio::test]
    async fn an_event_log_written_before_migration_17_is_claimed_held_back_and_pruned_as_before() {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        );
        // A store as migration 16 left it, with events as they were written then: due at
        // their creation time, not at 0.
        let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut db)
        .await
        .unwrap();
        for (version, statements) in super::super::schema::MIGRATIONS {
            if *version > 16 {
                continue;
            }
            let own = super::super::schema::for_backend(*version, Backend::Sqlite);
            for statement in statements.iter().chain(own) {
                sqlx::query(statement).execute(&mut db).await.unwrap();
            }
            sqlx::query("INSERT INTO schema_migrations VALUES ($1, 0)")
                .bind(*version)
                .execute(&mut db)
                .await
                .unwrap();
        }
        let now = i64::try_from(crate::clock::read(None)).unwrap();
        let resolved = |id: &str| {
            serde_json::to_string(&crate::crm::CrmEvent::ConversationResolved {
                conversation_id: id.to_string().into(),
            })
            .unwrap()
        };
        for (id, tenant, seq, status, due, created) in [
            ("e1", "t", 1, "delivered", 1_000, 1_000),
            ("e2", "t", 2, "pending", now - 10_000, now - 10_000),
            // `u`'s first event waits for a retry in an hour; its second is due.
            ("e3", "u", 3, "pending", now + 3_600_000, now - 10_000),
            ("e4", "u", 4, "pending", now - 10_000, now - 10_000),
        ] {
            sqlx::query(
                "INSERT INTO crm_events (id, tenant, payload, seq, next_attempt_at, created_at,
                     status, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
            )
            .bind(id)
            .bind(tenant)
            .bind(resolved(id))
            .bind(seq)
            .bind(due)
            .bind(created)
            .bind(status)
            .execute(&mut db)
            .await
            .unwrap();
        }
        db.close().await.unwrap();

        let store = Store::open(&url).await.unwrap();
        let claimed: Vec<String> = store
            .claim_events("host", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(delivery, _)| delivery.id)
            .collect();
        assert_eq!(
            claimed,
            ["e2"],
            "u's due event stays behind the one waiting"
        );
        assert_eq!(store.undelivered_events("u").await.unwrap(), 2);
        assert_eq!(store.prune(2_000).await.unwrap().events, 1);
        assert_eq!(store.reclaim_events(None).await.unwrap(), 1);
        let claimed = store.claim_events("host", 100).await.unwrap();
        assert_eq!(claimed.len(), 1, "e2 again, once reclaimed");
    }
}
