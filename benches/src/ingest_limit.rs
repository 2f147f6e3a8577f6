//! The store's own limit for the ingest run: the rows centralino leaves behind for a
//! delivery, written by a plain batched insert, with nothing else around it.
//!
//! Machines differ by 2× or more in how fast they commit to disk, so the ingest figure is
//! also given as a share of what the database does on the same machine, in the same
//! process run. The plain insert works on a store opened by [`Store::open`] (the same
//! schema, indexes and full-text triggers, the same connection and pragmas: WAL,
//! `synchronous = FULL`) and writes, per delivery and in one transaction, what a durable
//! delivery of the ingest run ends with: each conversation already assigned, each
//! message, each customer and identity, and the two CRM events per message (received,
//! assigned) with the same JSON. The same `concurrency` callers share the connection. No
//! dedup look-up, no threading, no signature, no routing: the floor under centralino's
//! cost, not a design it could adopt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use centralino::connectors::DEFAULT_TENANT;
use centralino::crm::CrmEvent;
use centralino::runtime::Runtime;
use centralino::store::Store;
use centralino::types::{Message, MessageKind, WebhookRequest};
use sqlx::AnyPool;

use crate::fixtures::{facebook_config, facebook_spec};

/// Most values one statement binds (as the store does).
const MAX_BINDS: usize = 2_000;

/// The messages of each delivery, as the `facebook` plugin normalises them (done before
/// any clock starts).
pub async fn normalised(
    runtime: &Runtime,
    plugins: &std::path::Path,
    requests: Vec<WebhookRequest>,
) -> anyhow::Result<Vec<Vec<Message>>> {
    let plugin = runtime.load_channel(crate::component(plugins, "facebook")?)?;
    let (config, grants) = facebook_config();
    let limits = facebook_spec(plugins).limits;
    let mut connector = plugin.instance(config, grants, limits);
    connector.ready().await?;
    let mut out = Vec::with_capacity(requests.len());
    for request in requests {
        let outcome = connector.handle_webhook(request).await?;
        anyhow::ensure!(outcome.response.status == 200, "plugin refused a delivery");
        out.push(outcome.messages);
    }
    Ok(out)
}

/// Writes every delivery of `batches` with `concurrency` callers on a fresh store at
/// `url`; returns the time taken and the store's `synchronous` and `journal_mode`.
pub async fn run(
    url: &str,
    batches: Vec<Vec<Message>>,
    operators: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, String)> {
    let store = Store::open(url).await?;
    let settings = settings(&store).await?;
    let expected: usize = batches.iter().map(Vec::len).sum();
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let pool = store.pool().clone();
        let queue = queue.clone();
        let counter = counter.clone();
        callers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(batch) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                insert_delivery(&pool, &batch, operators.max(1), &counter).await?;
            }
        }));
    }
    for caller in callers {
        caller.await??;
    }
    let time = started.elapsed();
    let stored = store.message_count(DEFAULT_TENANT).await?;
    anyhow::ensure!(
        stored == expected as i64,
        "plain insert: {stored} of {expected} messages in the store"
    );
    Ok((time, settings))
}

/// `synchronous` (as SQLite names its level) and `journal_mode` of the store's connection.
pub async fn settings(store: &Store) -> anyhow::Result<String> {
    use sqlx::Row as _;
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await?
        .try_get(0)?;
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await?
        .try_get(0)?;
    let sync = match sync {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        _ => "?",
    };
    Ok(format!("synchronous = {sync}, journal_mode = {journal}"))
}

/// A time-ordered id of the store's shape (32 hex digits, new ones at the right end).
fn id(counter: &AtomicU64, now: u64) -> String {
    format!("{now:012x}{:020x}", counter.fetch_add(1, Ordering::Relaxed))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn kind(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::PublicPost => "public-post",
        MessageKind::PrivateMessage => "private-message",
        MessageKind::Comment => "comment",
    }
}

fn rows(template: &str, count: usize) -> String {
    vec![template; count].join(", ")
}

/// One delivery's final rows, one transaction.
async fn insert_delivery(
    pool: &AnyPool,
    messages: &[Message],
    operators: usize,
    counter: &AtomicU64,
) -> anyhow::Result<()> {
    let now = now_ms();
    let at = i64::try_from(now).unwrap_or(i64::MAX);
    let tenant = DEFAULT_TENANT;
    let channel = "facebook";
    struct Row<'m> {
        m: &'m Message,
        index: usize,
        conversation: String,
        message: String,
        customer: String,
        operator: String,
    }
    let rows_of: Vec<Row<'_>> = messages
        .iter()
        .enumerate()
        .map(|(index, m)| Row {
            m,
            index,
            conversation: id(counter, now),
            message: id(counter, now),
            customer: id(counter, now),
            operator: format!("op-{:03}", index % operators),
        })
        .collect();
    let mut tx = pool.begin().await?;
    for chunk in rows_of.chunks(MAX_BINDS / 13) {
        let sql = format!(
            "INSERT INTO conversations (id, tenant, channel, account, thread_key, customer_id,
                customer_handle, kind, created_at, updated_at, status, priority, assignee,
                assigned_at, transferred)
             VALUES {}",
            rows(
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'assigned', 0, ?, ?, 0)",
                chunk.len()
            )
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.conversation.clone())
                .bind(tenant)
                .bind(channel)
                .bind(r.m.account.clone())
                .bind(r.m.conversation_key.clone())
                .bind(r.m.author.id.clone())
                .bind(r.m.author.handle.clone())
                .bind(kind(r.m.kind))
                .bind(at)
                .bind(at)
                .bind(r.operator.clone())
                .bind(at);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in rows_of.chunks(MAX_BINDS / 17) {
        let sql = format!(
            "INSERT INTO messages (id, tenant, channel, account, external_id, conversation_id,
                author_id, author_handle, author_name, kind, text, in_reply_to, attachments,
                extra, created_at, batch_index, received_at, direction)
             VALUES {}",
            rows(
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'inbound')",
                chunk.len()
            )
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.message.clone())
                .bind(tenant)
                .bind(channel)
                .bind(r.m.account.clone())
                .bind(r.m.external_id.clone())
                .bind(r.conversation.clone())
                .bind(r.m.author.id.clone())
                .bind(r.m.author.handle.clone())
                .bind(r.m.author.display_name.clone())
                .bind(kind(r.m.kind))
                .bind(r.m.text.clone())
                .bind(r.m.in_reply_to.clone())
                .bind(serde_json::to_string(&r.m.attachments)?)
                .bind(serde_json::to_string(&r.m.extra)?)
                .bind(i64::try_from(r.m.created_at).unwrap_or(0))
                .bind(r.index as i64)
                .bind(at);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in rows_of.chunks(MAX_BINDS / 9) {
        let sql = format!(
            "INSERT INTO customers (id, tenant, created_at, updated_at) VALUES {}",
            rows("(?, ?, ?, ?)", chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.customer.clone())
                .bind(tenant)
                .bind(at)
                .bind(at);
        }
        query.execute(&mut *tx).await?;
        let sql = format!(
            "INSERT INTO customer_identities (tenant, channel, platform_id, customer_id,
                handle, email_hash, phone_hash, created_at, linked_by)
             VALUES {}",
            rows("(?, ?, ?, ?, ?, NULL, NULL, ?, 'host')", chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(tenant)
                .bind(channel)
                .bind(r.m.author.id.clone())
                .bind(r.customer.clone())
                .bind(r.m.author.handle.clone())
                .bind(at);
        }
        query.execute(&mut *tx).await?;
    }
    let mut events = Vec::with_capacity(2 * rows_of.len());
    for r in &rows_of {
        events.push(CrmEvent::MessageReceived {
            conversation_id: r.conversation.clone().into(),
            new_conversation: true,
            connector: channel.into(),
            message_id: r.message.clone(),
            message: Box::new(r.m.clone()),
        });
    }
    for r in &rows_of {
        events.push(CrmEvent::ConversationAssigned {
            conversation_id: r.conversation.clone().into(),
            operator: r.operator.clone(),
            reason: "least-loaded".to_string(),
        });
    }
    for chunk in events.chunks(MAX_BINDS / 6) {
        let sql = format!(
            "INSERT INTO crm_events (id, tenant, payload, seq, created_at, next_attempt_at,
                status, attempts)
             VALUES {}",
            rows("(?, ?, ?, ?, ?, 0, 'pending', 0)", chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            let seq = at
                .saturating_mul(1_000_000)
                .saturating_add((counter.fetch_add(1, Ordering::Relaxed) % 1_000_000) as i64);
            query = query
                .bind(id(counter, now))
                .bind(tenant)
                .bind(serde_json::to_string(event)?)
                .bind(seq)
                .bind(at);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
