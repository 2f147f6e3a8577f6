//! Host-held account tokens (sealed, see `crate::accounts`), connect flows under way, and
//! replies held while an account needs re-authorisation.
//!
//! Refreshing is a row-level compare-and-swap: a host may spend a refresh token only after
//! [`Store::claim_refresh`] moved the row's claim to it for the generation it read, and its
//! new tokens land only if the row is still at that generation and claimed by it. So with
//! several hosts on one database exactly one of them presents a given refresh token.

use anyhow::Context as _;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{OutboxEntry, Store, ms};

/// Outbox `next_attempt_at` of a held reply: never due until its account is connected.
const HELD: i64 = i64::MAX;

/// `(tenant, connector, account)`.
pub(crate) type AccountKey = (String, String, String);

/// One account's stored token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenRow {
    pub(crate) tenant: String,
    pub(crate) connector: String,
    pub(crate) account: String,
    /// Who the platform says the account is (a handle, a page name).
    pub(crate) label: Option<String>,
    pub(crate) state: String,
    pub(crate) scopes: String,
    /// When the access token expires (ms, the host's account clock), if it does.
    pub(crate) expires_at: Option<i64>,
    pub(crate) key_id: String,
    pub(crate) sealed: String,
    pub(crate) generation: i64,
    pub(crate) refresh_by: Option<String>,
    pub(crate) refresh_until: Option<i64>,
    /// When the row last changed (ms, the writing host's clock); read only.
    pub(crate) updated_at: i64,
    /// When the platform last confirmed the account's webhook subscription; read only.
    pub(crate) subscribed_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn key(&self) -> AccountKey {
        (
            self.tenant.clone(),
            self.connector.clone(),
            self.account.clone(),
        )
    }
}

fn token_from_row(row: &AnyRow) -> anyhow::Result<TokenRow> {
    Ok(TokenRow {
        tenant: row.try_get("tenant")?,
        connector: row.try_get("connector")?,
        account: row.try_get("account")?,
        label: row.try_get("label")?,
        state: row.try_get("state")?,
        scopes: row.try_get("scopes")?,
        expires_at: row.try_get("expires_at")?,
        key_id: row.try_get("key_id")?,
        sealed: row.try_get("sealed")?,
        generation: row.try_get("generation")?,
        refresh_by: row.try_get("refresh_by")?,
        refresh_until: row.try_get("refresh_until")?,
        updated_at: row.try_get("updated_at")?,
        subscribed_at: row.try_get("subscribed_at")?,
    })
}

/// A connect flow under way, as its callback takes it.
#[derive(Clone, Debug)]
pub(crate) struct PendingConnect {
    pub(crate) tenant: String,
    pub(crate) connector: String,
    pub(crate) account: Option<String>,
    pub(crate) sealed_verifier: String,
    pub(crate) expires_at: i64,
    /// Where the browser goes after the callback (see [`crate::accounts::ReturnTo`]).
    pub(crate) return_to: Option<String>,
}

const COLUMNS: &str = "tenant, connector, account, label, state, scopes, expires_at, key_id, \
                       sealed, generation, refresh_by, refresh_until, updated_at, subscribed_at";

impl Store {
    /// Every stored account token.
    pub(crate) async fn token_rows(&self) -> anyhow::Result<Vec<TokenRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_tokens ORDER BY tenant, connector, account"
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading account tokens")?;
        rows.iter().map(token_from_row).collect()
    }

    /// One account's stored token.
    pub(crate) async fn token_row(&self, key: &AccountKey) -> anyhow::Result<Option<TokenRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_tokens WHERE tenant = $1 AND connector = $2 AND account = $3"
        ))
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .fetch_optional(&self.pool)
        .await
        .context("reading an account token")?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Stores a token from a connect flow: a new row, or a new generation of the row with
    /// any refresh claim cleared.
    pub(crate) async fn put_token(&self, row: &TokenRow) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO account_tokens (tenant, connector, account, label, state, scopes,
                expires_at, key_id, sealed, generation, refresh_by, refresh_until, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, NULL, NULL, $10)
             ON CONFLICT (tenant, connector, account) DO UPDATE SET
                label = excluded.label, state = excluded.state, scopes = excluded.scopes,
                expires_at = excluded.expires_at, key_id = excluded.key_id,
                sealed = excluded.sealed, generation = account_tokens.generation + 1,
                refresh_by = NULL, refresh_until = NULL, updated_at = excluded.updated_at",
        )
        .bind(&row.tenant)
        .bind(&row.connector)
        .bind(&row.account)
        .bind(&row.label)
        .bind(&row.state)
        .bind(&row.scopes)
        .bind(row.expires_at)
        .bind(&row.key_id)
        .bind(&row.sealed)
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await
        .context("storing an account token")?;
        Ok(())
    }

    /// Claims the right to refresh `key`'s token at `generation` until `until` (ms, the
    /// account clock): true for exactly one caller while the claim lasts.
    pub(crate) async fn claim_refresh(
        &self,
        key: &AccountKey,
        generation: i64,
        host: &str,
        now: i64,
        until: i64,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE account_tokens SET refresh_by = $5, refresh_until = $7
             WHERE tenant = $1 AND connector = $2 AND account = $3 AND generation = $4
               AND (refresh_by IS NULL OR refresh_by = $5 OR refresh_until < $6)",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .bind(generation)
        .bind(host)
        .bind(now)
        .bind(until)
        .execute(&self.pool)
        .await
        .context("claiming a token refresh")?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the tokens a claimed refresh obtained (the new access token and, when the
    /// platform rotates them, the new refresh token, sealed together) as the next
    /// generation; false when the claim was lost meanwhile.
    pub(crate) async fn finish_refresh(&self, row: &TokenRow, host: &str) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE account_tokens SET sealed = $5, key_id = $6, expires_at = $7, scopes = $8,
                state = $9, generation = generation + 1, refresh_by = NULL,
                refresh_until = NULL, updated_at = $10
             WHERE tenant = $1 AND connector = $2 AND account = $3 AND generation = $4
               AND refresh_by = $11",
        )
        .bind(&row.tenant)
        .bind(&row.connector)
        .bind(&row.account)
        .bind(row.generation)
        .bind(&row.sealed)
        .bind(&row.key_id)
        .bind(row.expires_at)
        .bind(&row.scopes)
        .bind(&row.state)
        .bind(ms(self.now_ms()))
        .bind(host)
        .execute(&self.pool)
        .await
        .context("storing refreshed tokens")?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets an account's state; true when it changed. A refresh claim stays as it is: a
    /// state change never takes a refresh away from the host doing it.
    pub(crate) async fn set_token_state(
        &self,
        key: &AccountKey,
        state: &str,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE account_tokens SET state = $4, updated_at = $5
             WHERE tenant = $1 AND connector = $2 AND account = $3 AND state <> $4",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .bind(state)
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await
        .context("recording an account's state")?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that the platform confirmed the account's webhook subscription now (or,
    /// with `None`, that it is not known to be live).
    pub(crate) async fn set_subscribed(
        &self,
        key: &AccountKey,
        at: Option<i64>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE account_tokens SET subscribed_at = $4
             WHERE tenant = $1 AND connector = $2 AND account = $3",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .bind(at)
        .execute(&self.pool)
        .await
        .context("recording a subscription")?;
        Ok(())
    }

    /// Deletes an account's token (disconnect).
    pub(crate) async fn delete_token(&self, key: &AccountKey) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "DELETE FROM account_tokens WHERE tenant = $1 AND connector = $2 AND account = $3",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .execute(&self.pool)
        .await
        .context("deleting an account token")?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces every row's seal in one transaction (key rotation): `reseal` gets each row
    /// and returns its new seal and key id.
    pub(crate) async fn reseal_tokens(
        &self,
        mut reseal: impl FnMut(&TokenRow) -> anyhow::Result<(String, String)>,
    ) -> anyhow::Result<usize> {
        let mut tx = self.begin_writing().await?;
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM account_tokens"))
            .fetch_all(&mut *tx)
            .await
            .context("reading account tokens")?;
        let rows: Vec<TokenRow> = rows
            .iter()
            .map(token_from_row)
            .collect::<anyhow::Result<_>>()?;
        for row in &rows {
            let (sealed, key_id) = reseal(row)?;
            sqlx::query(
                "UPDATE account_tokens SET sealed = $4, key_id = $5
                 WHERE tenant = $1 AND connector = $2 AND account = $3",
            )
            .bind(&row.tenant)
            .bind(&row.connector)
            .bind(&row.account)
            .bind(sealed)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Records a connect flow under way.
    pub(crate) async fn put_connect(
        &self,
        state_hash: &str,
        pending: &PendingConnect,
    ) -> anyhow::Result<()> {
        // Flows nobody completed are dropped as new ones start.
        sqlx::query("DELETE FROM account_connects WHERE expires_at < $1")
            .bind(pending.expires_at.saturating_sub(24 * 3_600_000))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO account_connects (state_hash, tenant, connector, account,
                sealed_verifier, expires_at, return_to) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(state_hash)
        .bind(&pending.tenant)
        .bind(&pending.connector)
        .bind(&pending.account)
        .bind(&pending.sealed_verifier)
        .bind(pending.expires_at)
        .bind(&pending.return_to)
        .execute(&self.pool)
        .await
        .context("recording a connect flow")?;
        Ok(())
    }

    /// Takes a connect flow by its state's hash: the row is deleted as it is read, so a
    /// state is good for one callback, whichever host receives it.
    pub(crate) async fn take_connect(
        &self,
        state_hash: &str,
    ) -> anyhow::Result<Option<PendingConnect>> {
        let row = sqlx::query(
            "DELETE FROM account_connects WHERE state_hash = $1
             RETURNING tenant, connector, account, sealed_verifier, expires_at, return_to",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .context("taking a connect flow")?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(PendingConnect {
            tenant: row.try_get("tenant")?,
            connector: row.try_get("connector")?,
            account: row.try_get("account")?,
            sealed_verifier: row.try_get("sealed_verifier")?,
            expires_at: row.try_get("expires_at")?,
            return_to: row.try_get("return_to")?,
        }))
    }

    /// Holds a claimed reply until its account is connected again: pending, never due,
    /// its attempt not counted.
    pub(crate) async fn outbox_hold(
        &self,
        entry: &OutboxEntry,
        account: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, attempts = attempts - 1,
                next_attempt_at = $2, held_for = $3, updated_at = $4
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(&entry.id)
        .bind(HELD)
        .bind(held_key(&entry.tenant, &entry.connector, account))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await
        .context("holding a reply")?;
        Ok(())
    }

    /// Makes the replies held for `key` due now; they go out in the order they were
    /// queued. Returns how many.
    pub(crate) async fn outbox_resume(&self, key: &AccountKey) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2, held_for = NULL
             WHERE held_for = $1 AND status = 'pending'",
        )
        .bind(held_key(&key.0, &key.1, &key.2))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await
        .context("releasing held replies")?;
        Ok(done.rows_affected())
    }

    /// How many replies wait for `key`'s re-authorisation.
    pub(crate) async fn outbox_held(&self, key: &AccountKey) -> anyhow::Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE held_for = $1 AND status = 'pending'",
        )
        .bind(held_key(&key.0, &key.1, &key.2))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl Store {
    /// When the customer last wrote in a conversation (ms, the platform's time of the
    /// newest inbound message), if they wrote at all.
    pub(crate) async fn last_inbound_at(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> anyhow::Result<Option<u64>> {
        let row = sqlx::query(
            "SELECT MAX(created_at) AS at FROM messages
             WHERE tenant = $1 AND conversation_id = $2 AND direction = 'inbound'",
        )
        .bind(tenant)
        .bind(conversation_id)
        .fetch_one(&self.pool)
        .await
        .context("reading when the customer last wrote")?;
        let at: Option<i64> = row.try_get("at")?;
        Ok(at.and_then(|at| u64::try_from(at).ok()))
    }
}

fn held_key(tenant: &str, connector: &str, account: &str) -> String {
    format!("{tenant}/{connector}/{account}")
}
