//! The service-level step each conversation reached, kept so that each step is told to
//! the CRM once: a restarted host, or another host sharing the database, finds it here.

use sqlx::Row;

use super::{RoutingTx, Store};

/// Moves `id` to service-level `step` if it is below it; returns the step it had, or
/// `None` when it was already there or past it (told before, by this host or another).
async fn raise(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    id: &str,
    step: u8,
) -> anyhow::Result<Option<u8>> {
    let row =
        sqlx::query("SELECT service_level_step FROM conversations WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let had = u8::try_from(row.try_get::<i64, _>(0)?.clamp(0, 255)).unwrap_or(u8::MAX);
    if had >= step {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE conversations SET service_level_step = $1
         WHERE tenant = $2 AND id = $3 AND service_level_step < $1",
    )
    .bind(i64::from(step))
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(had))
}

impl Store {
    /// Records that conversation `id` of `tenant` reached service-level `step`; returns
    /// the step it had before, or `None` if it had reached it already.
    pub(crate) async fn raise_service_level(
        &self,
        tenant: &str,
        id: &str,
        step: u8,
    ) -> anyhow::Result<Option<u8>> {
        let mut conn = self.pool.acquire().await?;
        raise(&mut conn, tenant, id, step).await
    }
}

impl RoutingTx {
    /// [`Store::raise_service_level`] in this change.
    pub(crate) async fn raise_service_level(
        &mut self,
        id: &str,
        step: u8,
    ) -> anyhow::Result<Option<u8>> {
        let tenant = self.tenant.clone();
        raise(&mut self.tx, &tenant, id, step).await
    }
}
