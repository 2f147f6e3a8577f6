//! What the CRM does to customers: link an identity, unlink it, merge two customers.

use sqlx::Row;

use super::super::text::stored;
use super::super::{Store, ms, new_id};
use super::{Refusal, Tx};

/// The customer of an identity, inside `tx`.
async fn customer_of_identity(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    platform_id: &str,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT customer_id FROM customer_identities
         WHERE tenant = $1 AND channel = $2 AND platform_id = $3",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(platform_id))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get("customer_id")).transpose()?)
}

/// Whether `tenant` has customer `id`, inside `tx`.
async fn exists(tx: &mut Tx<'_>, tenant: &str, id: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("SELECT id FROM customers WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Folds customer `from` (left without identities) into `into`: the later helper is kept,
/// suggestions between them go, others move, and `from` is deleted.
async fn fold(
    tx: &mut Tx<'_>,
    tenant: &str,
    into: &str,
    from: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE customers SET last_operator = (SELECT f.last_operator FROM customers f WHERE f.id = $2),
                last_operator_at = (SELECT f.last_operator_at FROM customers f WHERE f.id = $2)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM customers f WHERE f.id = $2
             AND f.last_operator_at IS NOT NULL
             AND (customers.last_operator_at IS NULL OR f.last_operator_at > customers.last_operator_at))",
    )
    .bind(into)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM customer_suggestions WHERE tenant = $1
         AND ((customer_id = $2 AND other_id = $3) OR (customer_id = $3 AND other_id = $2))",
    )
    .bind(tenant)
    .bind(into)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    for column in ["customer_id", "other_id"] {
        // A suggestion `into` already has stays once.
        let sql = format!("DELETE FROM customer_suggestions WHERE tenant = $1 AND {column} = $2");
        sqlx::query(&sql)
            .bind(tenant)
            .bind(from)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM customers WHERE tenant = $1 AND id = $2")
        .bind(tenant)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE customers SET updated_at = $2 WHERE id = $1")
        .bind(into)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many identities customer `id` has, inside `tx`.
async fn identity_count(tx: &mut Tx<'_>, tenant: &str, id: &str) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM customer_identities WHERE tenant = $1 AND customer_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

impl Store {
    /// Links an identity to customer `id` (it may be new to the host): a customer left
    /// without identities by the move is folded into `id`.
    pub(crate) async fn link_identity(
        &self,
        tenant: &str,
        id: &str,
        channel: &str,
        platform_id: &str,
    ) -> anyhow::Result<Result<(), Refusal>> {
        let mut tx = self.begin_writing().await?;
        if !exists(&mut tx, tenant, id).await? {
            return Ok(Err(Refusal::UnknownCustomer(id.to_string())));
        }
        let now = ms(self.now_ms());
        match customer_of_identity(&mut tx, tenant, channel, platform_id).await? {
            Some(current) if current == id => {}
            Some(current) => {
                sqlx::query(
                    "UPDATE customer_identities SET customer_id = $4, linked_by = 'crm'
                     WHERE tenant = $1 AND channel = $2 AND platform_id = $3",
                )
                .bind(tenant)
                .bind(channel)
                .bind(stored(platform_id))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if identity_count(&mut tx, tenant, &current).await? == 0 {
                    fold(&mut tx, tenant, id, &current, now).await?;
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO customer_identities (tenant, channel, platform_id, customer_id,
                        linked_by, created_at) VALUES ($1, $2, $3, $4, 'crm', $5)",
                )
                .bind(tenant)
                .bind(channel)
                .bind(stored(platform_id))
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("UPDATE customers SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Takes an identity away from customer `id`: it gets a customer of its own (with no
    /// history of who helped). Returns that customer's id.
    pub(crate) async fn unlink_identity(
        &self,
        tenant: &str,
        id: &str,
        channel: &str,
        platform_id: &str,
    ) -> anyhow::Result<Result<String, Refusal>> {
        let mut tx = self.begin_writing().await?;
        if !exists(&mut tx, tenant, id).await? {
            return Ok(Err(Refusal::UnknownCustomer(id.to_string())));
        }
        if customer_of_identity(&mut tx, tenant, channel, platform_id)
            .await?
            .as_deref()
            != Some(id)
        {
            return Ok(Err(Refusal::NotTheirs));
        }
        if identity_count(&mut tx, tenant, id).await? <= 1 {
            return Ok(Err(Refusal::LastIdentity));
        }
        let now = ms(self.now_ms());
        let own = new_id();
        sqlx::query(
            "INSERT INTO customers (id, tenant, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(&own)
        .bind(tenant)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE customer_identities SET customer_id = $4, linked_by = 'crm'
             WHERE tenant = $1 AND channel = $2 AND platform_id = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(stored(platform_id))
        .bind(&own)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE customers SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(own))
    }

    /// Moves every identity of customer `from` to `into` and deletes `from`.
    pub(crate) async fn merge_customers(
        &self,
        tenant: &str,
        into: &str,
        from: &str,
    ) -> anyhow::Result<Result<(), Refusal>> {
        if into == from {
            return Ok(Err(Refusal::SameCustomer));
        }
        let mut tx = self.begin_writing().await?;
        for id in [into, from] {
            if !exists(&mut tx, tenant, id).await? {
                return Ok(Err(Refusal::UnknownCustomer(id.to_string())));
            }
        }
        sqlx::query(
            "UPDATE customer_identities SET customer_id = $2, linked_by = 'crm'
             WHERE tenant = $1 AND customer_id = $3",
        )
        .bind(tenant)
        .bind(into)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        fold(&mut tx, tenant, into, from, ms(self.now_ms())).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
