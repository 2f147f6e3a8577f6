//! Polling leases: each (tenant, connector, account) is polled by one host at a time.
//!
//! Several hosts on one PostgreSQL database all run the same pollers; before polling an
//! account a host must hold its lease, a row naming the holder and when the lease expires.
//! Taking and renewing it is one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE`): a
//! lease is granted when nobody holds it, when it has expired, or when the caller already
//! holds it (a renewal, each poll cycle). A host that dies stops renewing; once its lease
//! expires the next host to try takes it over. A clean shutdown releases the host's
//! leases at once, so the hand-over does not wait for the expiry.
//!
//! **Fencing.** Each change of holder increments the lease's `generation`, and a poll
//! commits its messages and cursor only if, inside the same transaction, the lease still
//! has the holder and generation the poll started with (the check locks the row on
//! PostgreSQL, so a takeover waits for the commit or the commit sees the takeover). A host
//! that stalled past its lease, and whose account moved to another host meanwhile, thus
//! cannot write back a stale cursor: its transaction is rolled back, and the new holder,
//! which polls from the last committed cursor, fetches those messages itself.
//!
//! Expiry is measured on the database's clock (PostgreSQL's `clock_timestamp()`), so
//! hosts whose clocks disagree still agree on when a lease has expired. On SQLite, a single
//! host, the leases work the same and are always granted.
//!
//! A holder is a host id plus an instance id drawn at start-up: a host restarted under
//! the same id takes its own leases back at once (it is the same host; the old process is
//! gone), and the generation still moves, so the old process, were it alive, is fenced.

use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row;
use tokio::sync::{RwLock, RwLockReadGuard};

use super::{Backend, Ingested, Store, ms, new_id};
use crate::types::Message;

/// Lease time when neither the admin nor a poll interval says otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// How long a poll lease lasts when `configured` is not given: three poll intervals, and
/// at least [`DEFAULT_LEASE_TTL`]. A configured value is kept unless it is not longer
/// than the poll interval (the lease would lapse between two polls of its own holder and
/// flap between hosts); then twice the interval is used.
pub fn lease_ttl(configured: Option<Duration>, poll_interval: Option<Duration>) -> Duration {
    let interval = poll_interval.unwrap_or_default();
    match configured {
        Some(ttl) if ttl > interval => ttl,
        Some(_) => interval.saturating_mul(2),
        None => interval.saturating_mul(3).max(DEFAULT_LEASE_TTL),
    }
}

/// Who polls: this host's id and this start's instance id. Also the gate a shutdown
/// closes: polls in flight finish, later ones do not start, then the leases are released.
#[derive(Debug)]
pub struct LeaseHolder {
    host_id: String,
    instance: String,
    ttl: Option<Duration>,
    stopping: AtomicBool,
    in_flight: RwLock<()>,
}

/// Longest a shutdown waits for polls in flight before releasing the leases anyway (their
/// commits are then fenced out by whoever takes the accounts over).
const STOP_GRACE: Duration = Duration::from_secs(5);

impl LeaseHolder {
    /// A holder for host `host_id`, with a fresh instance id; `ttl` is the admin's lease
    /// time, if any (see [`lease_ttl`]).
    pub fn new(host_id: impl Into<String>, ttl: Option<Duration>) -> Self {
        LeaseHolder {
            host_id: host_id.into(),
            instance: new_id(),
            ttl,
            stopping: AtomicBool::new(false),
            in_flight: RwLock::new(()),
        }
    }

    /// Lets one poll through, until the guard drops; `None` once the host is stopping.
    pub(crate) async fn enter(&self) -> Option<RwLockReadGuard<'_, ()>> {
        let guard = self.in_flight.read().await;
        (!self.stopping.load(Ordering::SeqCst)).then_some(guard)
    }

    /// Stops polling under these leases and releases them: new polls are refused, polls in
    /// flight get [`STOP_GRACE`] to commit, then every lease of this instance expires at
    /// once. Returns how many leases were released.
    pub async fn stop(&self, store: &Store) -> anyhow::Result<u64> {
        self.stopping.store(true, Ordering::SeqCst);
        if tokio::time::timeout(STOP_GRACE, self.in_flight.write())
            .await
            .is_err()
        {
            tracing::warn!("polls still running after {STOP_GRACE:?}; releasing the leases anyway");
        }
        store.release_poll_leases(self).await
    }

    /// The host id.
    #[cfg(feature = "test-support")]
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The lease time for a connector polled every `poll_interval`.
    pub fn ttl(&self, poll_interval: Option<Duration>) -> Duration {
        lease_ttl(self.ttl, poll_interval)
    }
}

/// A lease held now: what the poll's commit must still find in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Account.
    pub account: String,
    /// Holder's host id.
    pub host_id: String,
    instance: String,
    /// Generation the lease had when it was taken or renewed.
    pub generation: i64,
}

/// The outcome of asking for a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// Held (taken, taken over or renewed).
    Held(Fence),
    /// Another host holds it (its id), unexpired.
    Elsewhere(String),
}

/// A lease as stored, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PollLease {
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Account.
    pub account: String,
    /// Host id of the holder.
    pub holder: String,
    /// Incremented at each change of holder.
    pub generation: i64,
    /// When the current holder took it (ms, database clock).
    pub acquired_at: i64,
    /// When it lapses unless renewed (ms, database clock).
    pub expires_at: i64,
}

/// A poll's commit found the lease with another holder or generation: nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseLost {
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Account.
    pub account: String,
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the polling lease of account `{}` of connector `{}` (tenant `{}`) moved to \
             another host during the poll; nothing was stored, the new holder polls it",
            self.account, self.connector, self.tenant
        )
    }
}

impl std::error::Error for LeaseLost {}

/// Milliseconds since the epoch on the database's clock.
fn now_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Store {
    /// Takes, takes over or renews the polling lease of one account for `holder`, for
    /// `ttl`; one statement, atomic on both backends.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn acquire_poll_lease(
        &self,
        tenant: &str,
        connector: &str,
        account: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> anyhow::Result<Acquired> {
        // The database's clock, shared by every host, unless the store was given a clock
        // (then it is bound as `$7`).
        let now = match self.clock {
            None => now_sql(self.backend).to_string(),
            Some(_) => "$7".to_string(),
        };
        // Every SET expression reads the row as it was: the generation moves (and the
        // acquisition time resets) only when the holder changes.
        let sql = format!(
            "INSERT INTO poll_leases (tenant, connector, account, holder, instance, generation,
                acquired_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, 1, {now}, {now} + $6)
             ON CONFLICT (tenant, connector, account) DO UPDATE SET
                generation = CASE WHEN poll_leases.holder = excluded.holder
                    AND poll_leases.instance = excluded.instance
                    THEN poll_leases.generation ELSE poll_leases.generation + 1 END,
                acquired_at = CASE WHEN poll_leases.holder = excluded.holder
                    AND poll_leases.instance = excluded.instance
                    THEN poll_leases.acquired_at ELSE excluded.acquired_at END,
                holder = excluded.holder,
                instance = excluded.instance,
                expires_at = excluded.expires_at
             WHERE poll_leases.holder = excluded.holder
                OR poll_leases.expires_at <= excluded.acquired_at
             RETURNING generation"
        );
        let mut query = sqlx::query(&sql)
            .bind(tenant)
            .bind(connector)
            .bind(account)
            .bind(&holder.host_id)
            .bind(&holder.instance)
            .bind(ttl_ms(ttl));
        if self.clock.is_some() {
            query = query.bind(ms(self.now_ms()));
        }
        let row = query.fetch_optional(&self.pool).await?;
        if let Some(row) = row {
            return Ok(Acquired::Held(Fence {
                tenant: tenant.to_string(),
                connector: connector.to_string(),
                account: account.to_string(),
                host_id: holder.host_id.clone(),
                instance: holder.instance.clone(),
                generation: row.try_get("generation")?,
            }));
        }
        let current = self.poll_lease(tenant, connector, account).await?;
        Ok(Acquired::Elsewhere(current.map_or_else(
            || "another host".to_string(),
            |lease| lease.holder,
        )))
    }

    /// Gives up every lease `holder` (this instance) holds, so other hosts take them over
    /// at their next poll instead of after the expiry. The generation is kept, so it only
    /// ever grows. Returns how many were released.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn release_poll_leases(&self, holder: &LeaseHolder) -> anyhow::Result<u64> {
        let released = sqlx::query(
            "UPDATE poll_leases SET expires_at = 0 WHERE holder = $1 AND instance = $2",
        )
        .bind(&holder.host_id)
        .bind(&holder.instance)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    /// [`Store::ingest_polled`] under a lease: stores a poll's messages (applying the
    /// deletions and edits among them) and advances the account's cursor in one
    /// transaction, only if `fence` still holds when it commits.
    /// Fails with [`LeaseLost`] (nothing written) when the lease moved meanwhile.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn ingest_polled_fenced(
        &self,
        fence: &Fence,
        messages: Vec<Message>,
        cursor: Option<&str>,
    ) -> anyhow::Result<Vec<Ingested>> {
        // Deletions and edits travel as marked messages (see `crate::conventions`).
        let (messages, amendments) = super::Amendments::split(messages, Vec::new());
        let mut tx = self.begin_writing().await?;
        // First, so a takeover waits for this commit rather than racing it.
        check_fence(&mut tx, fence).await?;
        let now = ms(self.now_ms());
        let (outcomes, _, applied) = super::receipts::store_and_amend(
            &mut tx,
            self.backend,
            &fence.tenant,
            &fence.connector,
            &messages,
            &amendments,
            now,
        )
        .await?;
        if let Some(cursor) = cursor {
            super::set_cursor(
                &mut tx,
                &fence.tenant,
                &fence.connector,
                &fence.account,
                cursor,
                now,
            )
            .await?;
        }
        tx.commit().await.context("committing polled messages")?;
        applied.log(&fence.tenant, &fence.connector, &fence.account);
        Ok(outcomes)
    }

    /// The lease of one account, if it was ever taken.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn poll_lease(
        &self,
        tenant: &str,
        connector: &str,
        account: &str,
    ) -> anyhow::Result<Option<PollLease>> {
        let row = sqlx::query(
            "SELECT * FROM poll_leases WHERE tenant = $1 AND connector = $2 AND account = $3",
        )
        .bind(tenant)
        .bind(connector)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| lease_from_row(&r)).transpose()
    }

    /// Every lease of `tenant`, by connector and account.
    #[cfg(feature = "test-support")]
    pub async fn poll_leases(&self, tenant: &str) -> anyhow::Result<Vec<PollLease>> {
        let rows =
            sqlx::query("SELECT * FROM poll_leases WHERE tenant = $1 ORDER BY connector, account")
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(lease_from_row).collect()
    }
}

/// Checks, inside the poll's transaction, that `fence` still holds: same holder, same
/// instance, same generation. The statement writes the row (to itself), which on
/// PostgreSQL locks it until the transaction ends, so no takeover can slip in between
/// this check and the commit. Fails with [`LeaseLost`] otherwise; the caller must then
/// roll back.
pub(crate) async fn check_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    fence: &Fence,
) -> anyhow::Result<()> {
    let held = sqlx::query(
        "UPDATE poll_leases SET generation = generation
         WHERE tenant = $1 AND connector = $2 AND account = $3
           AND holder = $4 AND instance = $5 AND generation = $6",
    )
    .bind(&fence.tenant)
    .bind(&fence.connector)
    .bind(&fence.account)
    .bind(&fence.host_id)
    .bind(&fence.instance)
    .bind(fence.generation)
    .execute(&mut **tx)
    .await?;
    if held.rows_affected() == 1 {
        Ok(())
    } else {
        Err(LeaseLost {
            tenant: fence.tenant.clone(),
            connector: fence.connector.clone(),
            account: fence.account.clone(),
        }
        .into())
    }
}

fn lease_from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<PollLease> {
    Ok(PollLease {
        tenant: row.try_get("tenant")?,
        connector: row.try_get("connector")?,
        account: row.try_get("account")?,
        holder: row.try_get("holder")?,
        generation: row.try_get("generation")?,
        acquired_at: row.try_get("acquired_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}
