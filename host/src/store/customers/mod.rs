//! Customers: one record per person, holding their identities on every channel.
//!
//! An *identity* is what a platform knows a person by: (channel, platform id), the pair a
//! conversation's `customer_id` names. The first message of an identity files it under a
//! customer of its own (in the delivery's transaction); the CRM then links identities to
//! one customer, unlinks them, or merges two customers. The host only *suggests* a link,
//! when two identities carry the same e-mail address or phone number as the platform gave
//! it (by the `centralino:email` / `centralino:phone` convention); it never merges on its
//! own.
//!
//! The customer also holds who last helped them ([`Store::record_helper`]), so a returning
//! customer goes back to the same operator whichever channel they come back on, after a
//! restart, and through any host sharing the database.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::text::{read, read_opt, stored};
use super::{Backend, MAX_IN_LIST, Store, StoredMessage, marks, message_from_row, ms, positional};
use crate::ids::ConversationId;

mod filing;
mod links;

pub(super) use filing::{Filed, file_authors, filed};

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// A person, with their identities on every channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Customer {
    /// Host id.
    pub id: String,
    /// Their identities, by channel and platform id.
    pub identities: Vec<Identity>,
    /// The operator who last helped them (answered or resolved one of their
    /// conversations), on any channel.
    pub last_operator: Option<String>,
    /// When (ms).
    pub last_operator_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// What a platform knows a customer by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Identity {
    /// Channel (connector name).
    pub channel: String,
    /// The platform's id of the person.
    pub platform_id: String,
    /// Their handle, as their first message gave it.
    pub handle: Option<String>,
    /// `host` (filed by their first message) or `crm` (linked by the CRM).
    pub linked_by: String,
    /// Created (ms).
    pub created_at: i64,
}

/// A link the host suggests: two customers whose identities carry the same e-mail
/// address or phone number, as the platforms gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Suggestion {
    /// The customer.
    pub customer_id: String,
    /// The customer who may be the same person.
    pub other_id: String,
    /// `same-email` or `same-phone`.
    pub reason: String,
    /// When the host noticed (ms).
    pub created_at: i64,
}

/// One message of a customer's history, with the conversation it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// The channel (connector) of the conversation.
    pub channel: String,
    /// The message (the customer's or the company's).
    pub message: StoredMessage,
}

/// A page of a customer's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The messages of this page.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts, when there is one (pass it back as `after`).
    pub next: Option<HistoryCursor>,
}

/// A position in a customer's history: the last message of a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryCursor {
    received_at: i64,
    batch_index: i64,
    id: String,
}

impl std::fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.received_at, self.batch_index, self.id)
    }
}

impl std::str::FromStr for HistoryCursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || format!("`{text}` is not a history cursor (give back a page's `next`)");
        let mut parts = text.splitn(3, '.');
        let received_at = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(wrong)?;
        let batch_index = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(wrong)?;
        let id = parts.next().ok_or_else(wrong)?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(wrong());
        }
        Ok(HistoryCursor {
            received_at,
            batch_index,
            id: id.to_string(),
        })
    }
}

/// Why a change to customers was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such customer in the tenant.
    UnknownCustomer(String),
    /// The identity is not the customer's.
    NotTheirs,
    /// The customer's only identity: unlinking it would leave an empty record.
    LastIdentity,
    /// Merging a customer into itself.
    SameCustomer,
}

fn identity_from_row(row: &AnyRow) -> anyhow::Result<Identity> {
    Ok(Identity {
        channel: row.try_get("channel")?,
        platform_id: read(row.try_get("platform_id")?),
        handle: read_opt(row.try_get("handle")?),
        linked_by: row.try_get("linked_by")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// A customer of `tenant`, with their identities.
    pub async fn customer(&self, tenant: &str, id: &str) -> anyhow::Result<Option<Customer>> {
        let Some(row) = sqlx::query("SELECT * FROM customers WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let identities = sqlx::query(
            "SELECT * FROM customer_identities WHERE tenant = $1 AND customer_id = $2
             ORDER BY created_at, channel, platform_id",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(identity_from_row)
        .collect::<anyhow::Result<_>>()?;
        Ok(Some(Customer {
            id: row.try_get("id")?,
            identities,
            last_operator: row.try_get("last_operator")?,
            last_operator_at: row.try_get("last_operator_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }))
    }

    /// The customer an identity belongs to.
    pub async fn customer_by_identity(
        &self,
        tenant: &str,
        channel: &str,
        platform_id: &str,
    ) -> anyhow::Result<Option<Customer>> {
        let row = sqlx::query(
            "SELECT customer_id FROM customer_identities
             WHERE tenant = $1 AND channel = $2 AND platform_id = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(stored(platform_id))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => self.customer(tenant, &row.try_get::<String, _>(0)?).await,
            None => Ok(None),
        }
    }

    /// The links the host suggests for customer `id`.
    pub async fn customer_suggestions(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Vec<Suggestion>> {
        sqlx::query(
            "SELECT * FROM customer_suggestions WHERE tenant = $1 AND customer_id = $2
             ORDER BY created_at, other_id, reason",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(Suggestion {
                customer_id: row.try_get("customer_id")?,
                other_id: row.try_get("other_id")?,
                reason: row.try_get("reason")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// One page of customer `id`'s history across channels, newest first: at most `limit`
    /// messages (theirs and the company's) of the conversations of every identity,
    /// starting after `after`. Reads one page, never the customer's whole history.
    pub async fn customer_history(
        &self,
        tenant: &str,
        id: &str,
        limit: usize,
        after: Option<&HistoryCursor>,
    ) -> anyhow::Result<HistoryPage> {
        let limit = limit.max(1);
        let (at, index, last) = match after {
            Some(c) => (c.received_at, c.batch_index, c.id.clone()),
            None => (i64::MAX, i64::MAX, String::new()),
        };
        let rows = sqlx::query(
            "SELECT m.*, c.thread_key, c.channel AS conversation_channel
             FROM customer_identities i
             JOIN conversations c ON c.tenant = i.tenant AND c.channel = i.channel
                 AND c.customer_id = i.platform_id
             JOIN messages m ON m.conversation_id = c.id
             WHERE i.tenant = $1 AND i.customer_id = $2
               AND (m.received_at < $3 OR (m.received_at = $3 AND (m.batch_index < $4
                    OR (m.batch_index = $4 AND ($5 = '' OR m.id < $5)))))
             ORDER BY m.received_at DESC, m.batch_index DESC, m.id DESC
             LIMIT $6",
        )
        .bind(tenant)
        .bind(id)
        .bind(at)
        .bind(index)
        .bind(&last)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit;
        let mut entries = Vec::with_capacity(limit);
        let mut next = None;
        for row in rows.iter().take(limit) {
            let message = message_from_row(row)?;
            next = Some(HistoryCursor {
                received_at: message.received_at,
                batch_index: row.try_get("batch_index")?,
                id: message.id.clone(),
            });
            entries.push(HistoryEntry {
                conversation_id: row.try_get::<String, _>("conversation_id")?.into(),
                channel: row.try_get("conversation_channel")?,
                message,
            });
        }
        Ok(HistoryPage {
            entries,
            next: if more { next } else { None },
        })
    }

    /// Who last helped the customers of these identities of `channel`: platform id →
    /// (operator, when in ms).
    pub(crate) async fn helpers(
        &self,
        tenant: &str,
        channel: &str,
        platform_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, (String, u64)>> {
        let mut conn = self.pool.acquire().await?;
        helpers_in(&mut conn, self.backend, tenant, channel, platform_ids).await
    }

    /// Records that `operator` helped the customer of an identity at `at_ms` (unless a
    /// later help is recorded already).
    pub(crate) async fn record_helper(
        &self,
        tenant: &str,
        channel: &str,
        platform_id: &str,
        operator: &str,
        at_ms: u64,
    ) -> anyhow::Result<()> {
        let at = ms(at_ms);
        sqlx::query(
            "UPDATE customers SET last_operator = $1, last_operator_at = $2, updated_at = $2
             WHERE id = (SELECT customer_id FROM customer_identities
                         WHERE tenant = $3 AND channel = $4 AND platform_id = $5)
               AND (last_operator_at IS NULL OR last_operator_at <= $2)",
        )
        .bind(operator)
        .bind(at)
        .bind(tenant)
        .bind(channel)
        .bind(stored(platform_id))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// [`Store::helpers`] on `conn` (inside a transaction, say).
pub(in crate::store) async fn helpers_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    tenant: &str,
    channel: &str,
    platform_ids: &[&str],
) -> anyhow::Result<HashMap<String, (String, u64)>> {
    let mut out = HashMap::new();
    for chunk in platform_ids.chunks(MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "SELECT i.platform_id, c.last_operator, c.last_operator_at
                 FROM customer_identities i JOIN customers c ON c.id = i.customer_id
                 WHERE i.tenant = ? AND i.channel = ? AND c.last_operator IS NOT NULL
                   AND i.platform_id IN ({})",
                marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(tenant).bind(channel);
        for id in chunk {
            query = query.bind(stored(id));
        }
        for row in query.fetch_all(&mut *conn).await? {
            let at: Option<i64> = row.try_get("last_operator_at")?;
            let operator: Option<String> = row.try_get("last_operator")?;
            if let Some(operator) = operator {
                out.insert(
                    read(row.try_get("platform_id")?),
                    (operator, u64::try_from(at.unwrap_or(0)).unwrap_or(0)),
                );
            }
        }
    }
    Ok(out)
}
