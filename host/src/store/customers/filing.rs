//! Filing a delivery's authors under customers, and the links the host suggests.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::super::text::{read, stored, stored_opt};
use super::super::{
    Backend, MAX_BINDS, MAX_IN_LIST, if_racing, marks, may_race, new_id, positional, rows as values,
};
use super::Tx;
use crate::crm::CrmEvent;
use crate::types::Message;

/// The digest the host keeps instead of an e-mail address or phone number.
fn contact_hash(kind: &str, value: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!("{kind}:{value}").as_bytes()))
}

/// An author of a delivery, as filed.
struct Author<'m> {
    id: &'m str,
    handle: Option<&'m String>,
    email: Option<String>,
    phone: Option<String>,
}

/// The identities filed before of a delivery's authors: platform id → (customer id, e-mail
/// hash, phone hash). Read before the delivery is written ([`file_authors`] uses it).
#[derive(Default)]
pub(in crate::store) struct Filed(HashMap<String, (String, Option<String>, Option<String>)>);

impl Filed {
    /// Whether any author was filed under a customer before.
    pub(in crate::store) fn any(&self) -> bool {
        !self.0.is_empty()
    }
}

/// Looks up which of the platform ids `authors` (repeats allowed) are filed already.
pub(in crate::store) async fn filed(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    authors: &[&str],
) -> anyhow::Result<Filed> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(authors.len());
    let ids: Vec<&str> = authors
        .iter()
        .copied()
        .filter(|id| seen.insert(id))
        .collect();
    let mut known = HashMap::new();
    for chunk in ids.chunks(MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "SELECT platform_id, customer_id, email_hash, phone_hash FROM customer_identities
                 WHERE tenant = ? AND channel = ? AND platform_id IN ({})",
                marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(tenant).bind(channel);
        for id in chunk {
            query = query.bind(stored(id));
        }
        for row in query.fetch_all(&mut **tx).await? {
            known.insert(
                read(row.try_get("platform_id")?),
                (
                    row.try_get("customer_id")?,
                    row.try_get("email_hash")?,
                    row.try_get("phone_hash")?,
                ),
            );
        }
    }
    Ok(Filed(known))
}

/// Files the authors of `messages` (just stored, inside `tx`) under customers, `filed`
/// being what [`filed`] found for them in the same transaction: a new identity gets a
/// customer of its own; an identity that now carries an e-mail address or phone number
/// another customer's identity carries too is suggested to the CRM (the returned events).
/// A handful of statements per delivery, whatever its size.
pub(in crate::store) async fn file_authors(
    sink: &mut crate::store::sink::Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[&Message],
    filed: &Filed,
    now: i64,
) -> anyhow::Result<Vec<CrmEvent>> {
    let mut authors: Vec<Author<'_>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for m in messages {
        let (email, phone) = crate::conventions::contact(m);
        let email = email.map(|e| contact_hash("email", &e));
        let phone = phone.map(|p| contact_hash("phone", &p));
        match at.get(m.author.id.as_str()) {
            Some(&i) => {
                let author = &mut authors[i];
                author.email = author.email.take().or(email);
                author.phone = author.phone.take().or(phone);
            }
            None => {
                at.insert(m.author.id.as_str(), authors.len());
                authors.push(Author {
                    id: m.author.id.as_str(),
                    handle: m.author.handle.as_ref(),
                    email,
                    phone,
                });
            }
        }
    }
    let known = &filed.0;
    let fresh: Vec<&Author<'_>> = authors
        .iter()
        .filter(|a| !known.contains_key(a.id))
        .collect();
    // Each contact newly seen on an identity: (customer id, kind, hash).
    let mut contacts: Vec<(String, &str, String)> = Vec::new();
    for chunk in fresh.chunks(MAX_BINDS / 9) {
        let customers: Vec<String> = chunk.iter().map(|_| new_id()).collect();
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO customers (id, tenant, created_at, updated_at) VALUES {}",
                values("(?, ?, ?, ?)", chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql);
        for id in &customers {
            query = query.bind(id).bind(tenant).bind(now).bind(now);
        }
        sink.execute(query).await?;
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO customer_identities (tenant, channel, platform_id, customer_id,
                    handle, email_hash, phone_hash, created_at, linked_by)
                 VALUES {}{}",
                values("(?, ?, ?, ?, ?, ?, ?, ?, 'host')", chunk.len()),
                if_racing(
                    backend,
                    " ON CONFLICT (tenant, channel, platform_id) DO NOTHING RETURNING customer_id"
                )
            ),
        );
        let mut query = sqlx::query(&sql);
        for (author, customer) in chunk.iter().zip(&customers) {
            query = query
                .bind(tenant)
                .bind(channel)
                .bind(stored(author.id))
                .bind(customer)
                .bind(stored_opt(author.handle))
                .bind(author.email.clone())
                .bind(author.phone.clone())
                .bind(now);
        }
        // The identities another host filed between our look-up and our insert (only
        // where inserts race): their new customers are dropped again.
        let lost: HashSet<&String> = if may_race(backend) {
            let filed: HashSet<String> = query
                .fetch_all(&mut **sink.tx()?)
                .await?
                .iter()
                .map(|row| row.try_get("customer_id"))
                .collect::<Result<_, _>>()?;
            customers.iter().filter(|c| !filed.contains(*c)).collect()
        } else {
            sink.execute(query).await?;
            HashSet::new()
        };
        for (author, customer) in chunk.iter().zip(&customers) {
            if lost.contains(customer) {
                // Filed by another host between our look-up and our insert.
                sink.execute(sqlx::query("DELETE FROM customers WHERE id = $1").bind(customer))
                    .await?;
                continue;
            }
            if let Some(hash) = &author.email {
                contacts.push((customer.clone(), "email", hash.clone()));
            }
            if let Some(hash) = &author.phone {
                contacts.push((customer.clone(), "phone", hash.clone()));
            }
        }
    }
    // Known identities that carry a contact for the first time.
    for author in &authors {
        let Some((customer, email, phone)) = known.get(author.id) else {
            continue;
        };
        for (kind, given, had) in [
            ("email", &author.email, email),
            ("phone", &author.phone, phone),
        ] {
            if let (Some(hash), None) = (given, had) {
                let sql = format!(
                    "UPDATE customer_identities SET {kind}_hash = $1
                     WHERE tenant = $2 AND channel = $3 AND platform_id = $4"
                );
                let query = sqlx::query(&sql)
                    .bind(hash)
                    .bind(tenant)
                    .bind(channel)
                    .bind(stored(author.id));
                sink.execute(query).await?;
                contacts.push((customer.clone(), kind, hash.clone()));
            }
        }
    }
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    suggest(sink.tx()?, tenant, &contacts, now).await
}

/// The other customers whose identities carry a contact (`kind`: `email` or `phone`) of
/// the given digest: `$1` tenant, `$2` digest, `$3` the customer asking.
fn same_contact_sql(kind: &str) -> String {
    format!(
        "SELECT DISTINCT customer_id FROM customer_identities
         WHERE tenant = $1 AND {kind}_hash = $2 AND customer_id <> $3"
    )
}

/// Suggests a link between each customer of `contacts` and the other customers whose
/// identities carry the same contact; returns the events for the CRM.
async fn suggest(
    tx: &mut Tx<'_>,
    tenant: &str,
    contacts: &[(String, &str, String)],
    now: i64,
) -> anyhow::Result<Vec<CrmEvent>> {
    let mut events = Vec::new();
    for (customer, kind, hash) in contacts {
        let others: Vec<String> = sqlx::query(&same_contact_sql(kind))
            .bind(tenant)
            .bind(hash)
            .bind(customer)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| row.try_get("customer_id"))
            .collect::<Result<_, _>>()?;
        let reason = format!("same-{kind}");
        for other in others {
            for (a, b) in [(customer, &other), (&other, customer)] {
                sqlx::query(
                    "INSERT INTO customer_suggestions (tenant, customer_id, other_id, reason, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .bind(a)
                .bind(b)
                .bind(&reason)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            events.push(CrmEvent::CustomerMatchSuggested {
                customer_id: customer.clone(),
                other_customer_id: other,
                reason: reason.clone(),
            });
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::same_contact_sql;
    use crate::store::Store;
    use crate::store::tests::plan;

    #[tokio::test]
    async fn a_contacts_look_up_reads_the_index_of_identities_that_have_one() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for kind in ["email", "phone"] {
            let plan = plan(&store, &same_contact_sql(kind)).await;
            assert!(
                plan.contains(&format!("USING INDEX customer_identities_by_{kind}")),
                "{plan}"
            );
        }
        // The indexes hold only identities with a contact (migration 18).
        let partial: i64 = sqlx::query(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index'
             AND name IN ('customer_identities_by_email', 'customer_identities_by_phone')
             AND sql LIKE '%IS NOT NULL%'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        assert_eq!(partial, 2);
    }
}
