//! Operators' presence as last set (online, away, offline), per tenant: what an operator
//! comes back as after a restart, and, on PostgreSQL, what every host sharing the database
//! routes on. A presence change is written in the routing change that applies it (see
//! [`RoutingTx::set_presence`]), so hosts see it in the order they decide.

use std::collections::HashMap;

use anyhow::Context as _;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{RoutingTx, Store, ms};
use crate::types::Presence;

/// An operator's presence as the store has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPresence {
    /// The presence last set.
    pub presence: Presence,
    /// When it was set (ms, the setting host's clock). Hosts compare it for equality
    /// only (has it changed since I last looked), never across clocks.
    pub changed_at: i64,
}

const UPSERT: &str = "INSERT INTO operator_presence (tenant, operator, presence, changed_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, operator)
     DO UPDATE SET presence = excluded.presence, changed_at = excluded.changed_at";

const SELECT: &str = "SELECT operator, presence, changed_at FROM operator_presence
     WHERE tenant = $1";

impl Store {
    /// Records `operator`'s presence in `tenant`; returns what was stored.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn set_operator_presence(
        &self,
        tenant: &str,
        operator: &str,
        presence: Presence,
    ) -> anyhow::Result<StoredPresence> {
        set_presence(&self.pool, tenant, operator, presence, self.now_ms()).await
    }

    /// Every operator of `tenant` whose presence was ever set, with the presence last set.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn operator_presence(
        &self,
        tenant: &str,
    ) -> anyhow::Result<HashMap<String, StoredPresence>> {
        let rows = sqlx::query(SELECT)
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .context("reading operators' presence")?;
        rows.iter().map(presence_from_row).collect()
    }
}

impl RoutingTx {
    /// [`Store::set_operator_presence`] in this change.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn set_presence(
        &mut self,
        operator: &str,
        presence: Presence,
    ) -> anyhow::Result<StoredPresence> {
        let tenant = self.tenant.clone();
        let now = self.now_ms();
        set_presence(&mut *self.tx, &tenant, operator, presence, now).await
    }

    /// [`Store::operator_presence`] in this change: what other hosts committed before the
    /// routing lock was granted.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn operator_presence(
        &mut self,
    ) -> anyhow::Result<HashMap<String, StoredPresence>> {
        let rows = sqlx::query(SELECT)
            .bind(&self.tenant)
            .fetch_all(&mut *self.tx)
            .await
            .context("reading operators' presence")?;
        rows.iter().map(presence_from_row).collect()
    }
}

async fn set_presence<'e, E>(
    executor: E,
    tenant: &str,
    operator: &str,
    presence: Presence,
    now_ms: u64,
) -> anyhow::Result<StoredPresence>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let changed_at = ms(now_ms);
    sqlx::query(UPSERT)
        .bind(tenant)
        .bind(operator)
        .bind(presence_str(presence))
        .bind(changed_at)
        .execute(executor)
        .await
        .with_context(|| format!("recording the presence of operator `{operator}`"))?;
    Ok(StoredPresence {
        presence,
        changed_at,
    })
}

fn presence_from_row(row: &AnyRow) -> anyhow::Result<(String, StoredPresence)> {
    let presence: String = row.try_get("presence")?;
    Ok((
        row.try_get("operator")?,
        StoredPresence {
            presence: parse_presence(&presence)?,
            changed_at: row.try_get("changed_at")?,
        },
    ))
}

fn presence_str(presence: Presence) -> &'static str {
    match presence {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Offline => "offline",
    }
}

fn parse_presence(s: &str) -> anyhow::Result<Presence> {
    Ok(match s {
        "online" => Presence::Online,
        "away" => Presence::Away,
        "offline" => Presence::Offline,
        other => anyhow::bail!("unknown operator presence `{other}` in the store"),
    })
}
