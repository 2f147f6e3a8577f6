//! The admin console's rows: its users, sessions and audit log (migration 7). The console
//! (`api/console`) decides what they mean; this file only reads and writes them.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, ms, new_id};

/// A console user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredConsoleUser {
    pub(crate) username: String,
    pub(crate) tenant: String,
    /// Argon2id, as a PHC string.
    pub(crate) password_hash: String,
}

/// A console session as stored (by the SHA-256 of its cookie, hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredSession {
    pub(crate) id: String,
    /// `admin`, `loopback` or `user`.
    pub(crate) who: String,
    pub(crate) username: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) label: String,
    pub(crate) csrf: String,
    pub(crate) created_at: u64,
    pub(crate) last_seen: u64,
    /// The message for the next page, as JSON.
    pub(crate) flash: Option<String>,
}

/// One audit entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredAudit {
    pub(crate) at: u64,
    /// The tenant the change was made to.
    pub(crate) tenant: String,
    pub(crate) who: String,
    pub(crate) username: Option<String>,
    pub(crate) session: String,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) refused: Option<String>,
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn session_from_row(row: &AnyRow) -> anyhow::Result<StoredSession> {
    Ok(StoredSession {
        id: row.try_get("id")?,
        who: row.try_get("who")?,
        username: row.try_get("username")?,
        tenant: row.try_get("tenant")?,
        label: row.try_get("label")?,
        csrf: row.try_get("csrf")?,
        created_at: unsigned(row.try_get("created_at")?),
        last_seen: unsigned(row.try_get("last_seen")?),
        flash: row.try_get("flash")?,
    })
}

impl Store {
    /// Adds a console user, or gives an existing one a new tenant and password.
    pub(crate) async fn put_console_user(&self, user: &StoredConsoleUser) -> anyhow::Result<()> {
        let now = ms(self.now_ms());
        sqlx::query(
            "INSERT INTO console_users (username, tenant, password_hash, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO UPDATE SET tenant = $2, password_hash = $3",
        )
        .bind(&user.username)
        .bind(&user.tenant)
        .bind(&user.password_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn console_user(
        &self,
        username: &str,
    ) -> anyhow::Result<Option<StoredConsoleUser>> {
        let row = sqlx::query(
            "SELECT username, tenant, password_hash FROM console_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> anyhow::Result<StoredConsoleUser> {
            Ok(StoredConsoleUser {
                username: row.try_get("username")?,
                tenant: row.try_get("tenant")?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Stores a new session; sessions idle since before `stale_before` go.
    pub(crate) async fn open_console_session(
        &self,
        session: &StoredSession,
        stale_before: u64,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE last_seen < $1")
            .bind(ms(stale_before))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions
                (id, who, username, tenant, label, csrf, created_at, last_seen, flash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(&session.id)
        .bind(&session.who)
        .bind(&session.username)
        .bind(&session.tenant)
        .bind(&session.label)
        .bind(&session.csrf)
        .bind(ms(session.created_at))
        .bind(ms(session.last_seen))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn console_session(&self, id: &str) -> anyhow::Result<Option<StoredSession>> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub(crate) async fn touch_console_session(&self, id: &str, now: u64) -> anyhow::Result<()> {
        sqlx::query("UPDATE console_sessions SET last_seen = $2 WHERE id = $1")
            .bind(id)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets (or, with `None`, clears) a session's message for its next page.
    pub(crate) async fn set_console_flash(
        &self,
        id: &str,
        flash: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE console_sessions SET flash = $2 WHERE id = $1")
            .bind(id)
            .bind(flash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close_console_session(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn append_console_audit(&self, entry: &StoredAudit) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO console_audit
                (id, at, tenant, who, username, session, action, target, refused)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(ms(entry.at))
        .bind(entry.tenant.as_str())
        .bind(&entry.who)
        .bind(&entry.username)
        .bind(&entry.session)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.refused)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `limit` audit entries before `before` (an entry's `(at, id)`; `None`:
    /// the latest of all), newest first, each with its id; only `tenant`'s when given.
    pub(crate) async fn console_audit(
        &self,
        tenant: Option<&str>,
        limit: usize,
        before: Option<(u64, &str)>,
    ) -> anyhow::Result<Vec<(String, StoredAudit)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (at, id) = before.map_or((i64::MAX, ""), |(at, id)| (ms(at), id));
        // Without a position, `at < i64::MAX` holds for every stored entry.
        let rows = sqlx::query(
            "SELECT * FROM console_audit
             WHERE ($1 IS NULL OR tenant = $1) AND (at < $2 OR (at = $2 AND id < $3))
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| -> anyhow::Result<(String, StoredAudit)> {
                Ok((
                    row.try_get("id")?,
                    StoredAudit {
                        at: unsigned(row.try_get("at")?),
                        tenant: row.try_get("tenant")?,
                        who: row.try_get("who")?,
                        username: row.try_get("username")?,
                        session: row.try_get("session")?,
                        action: row.try_get("action")?,
                        target: row.try_get("target")?,
                        refused: row.try_get("refused")?,
                    },
                ))
            })
            .collect()
    }
}
