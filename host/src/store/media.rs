//! Files attached to messages, kept in the store (migration 12).
//!
//! **Inbound**: a customer's message that carries a file (an image, a video, a sticker…)
//! at a platform's address gets one row per such attachment, in `fetching` state, in the
//! delivery's own transaction, so a crash can lose no file the message promised. The
//! host's media fetcher (`host/media.rs`) then claims due rows, fetches each with the
//! account's credential under the connector's grants, and settles it: `stored` (the bytes
//! are here), retried later on a temporary failure, or `failed` with the reason. The
//! message itself never waits for its files.
//!
//! **Outbound**: the images of a reply are kept with the reply in the outbox (one row per
//! image, `stored` from the start, owned by the outbox entry), so a reply retried after a
//! restart still has them.
//!
//! Limits: a file over the host's per-file cap, or one that would take the tenant over
//! its quota (the sum of its stored files), is `failed` with a reason that says which.
//! Retention and erasure delete the rows with the messages they belong to.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, MAX_BINDS, ms, new_id, positional, rows as values};
use crate::types::{Attachment, Message};

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// The table, written once per backend (only the type of the bytes differs), then its
/// indexes. `owner_id` is the message (`inbound`) or the outbox entry (`outbound`) the
/// file belongs to; `position` its place among that owner's attachments.
macro_rules! media_migration {
    ($bytes:literal) => {
        &[
            concat!(
                "CREATE TABLE media (
                id TEXT PRIMARY KEY,
                tenant TEXT NOT NULL,
                direction TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                conversation_id TEXT NOT NULL,
                position BIGINT NOT NULL,
                channel TEXT NOT NULL,
                account TEXT NOT NULL,
                source_url TEXT,
                state TEXT NOT NULL,
                mime_type TEXT,
                size BIGINT NOT NULL DEFAULT 0,
                content ",
                $bytes,
                ",
                error TEXT,
                attempts BIGINT NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (direction, owner_id, position)
            )"
            ),
            "CREATE INDEX media_due ON media (state, next_attempt_at)",
            "CREATE INDEX media_by_tenant ON media (tenant, state)",
            "CREATE INDEX media_by_conversation ON media (conversation_id)",
        ]
    };
}

/// Migration 12 on SQLite.
pub(super) const SQLITE_MIGRATION: &[&str] = media_migration!("BLOB");
/// Migration 12 on PostgreSQL.
pub(super) const POSTGRES_MIGRATION: &[&str] = media_migration!("BYTEA");

/// Attachment kinds whose address is a file the host fetches and keeps. A location, a
/// link preview or a template keeps its address only.
const FILE_KINDS: &[&str] = &[
    "image",
    "photo",
    "video",
    "animated_gif",
    "audio",
    "file",
    "sticker",
    "media",
];

/// Whether the host fetches and keeps `attachment`'s file.
pub(crate) fn is_file(attachment: &Attachment) -> bool {
    FILE_KINDS.contains(&attachment.kind.as_str())
        && attachment
            .url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://") || url.starts_with("http://"))
}

/// Where a kept file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MediaState {
    /// Waiting to be fetched from the platform (or for another try).
    Fetching,
    /// In the store.
    Stored,
    /// Not fetched, for the reason given; the platform's address is all there is.
    Failed,
}

impl MediaState {
    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "fetching" => MediaState::Fetching,
            "stored" => MediaState::Stored,
            "failed" => MediaState::Failed,
            other => anyhow::bail!("unknown media state `{other}` in the store"),
        })
    }
}

/// A file of a message or a reply, as the store keeps it (without its bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MediaRecord {
    /// Its id: the stable part of its REST address (`/api/v1/media/{id}`).
    pub id: String,
    /// The message (inbound) or the outbox entry (outbound) it belongs to.
    pub owner_id: String,
    /// Its place among its owner's attachments (from 0).
    pub position: u32,
    /// Where it is.
    pub state: MediaState,
    /// Its type, from the platform's answer (inbound) or the reply (outbound).
    pub mime_type: Option<String>,
    /// Its size in bytes (0 until stored).
    pub size: u64,
    /// Why it is `failed`, or what the last try said while it is still `fetching`.
    pub error: Option<String>,
    /// Tries so far.
    pub attempts: u32,
}

/// A stored file and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaContent {
    /// What the store knows of it.
    pub record: MediaRecord,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A file the fetcher claimed.
#[derive(Clone, Debug)]
pub(crate) struct DueMedia {
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) channel: String,
    pub(crate) account: String,
    pub(crate) url: String,
    /// Tries before this one.
    pub(crate) attempts: u32,
}

const RECORD_COLUMNS: &str = "id, owner_id, position, state, mime_type, size, error, attempts";

fn record_from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<MediaRecord> {
    let state: String = row.try_get("state")?;
    Ok(MediaRecord {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        position: u32::try_from(row.try_get::<i64, _>("position")?).unwrap_or(u32::MAX),
        state: MediaState::parse(&state)?,
        mime_type: row.try_get("mime_type")?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        error: row.try_get("error")?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
    })
}

/// One file row to insert.
struct NewFile<'a> {
    owner_id: &'a str,
    conversation_id: &'a str,
    position: usize,
    account: &'a str,
    source_url: Option<&'a str>,
    mime_type: Option<&'a str>,
    bytes: Option<&'a [u8]>,
}

/// Records the files of freshly stored inbound messages (inside the delivery's
/// transaction): `stored` gives each message's index in `messages`, its id and its
/// conversation. One statement per chunk; nothing when no message carries a file.
pub(super) async fn enqueue(
    sink: &mut super::sink::Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    stored: &[(usize, &str, &str)],
    now: i64,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for &(index, message_id, conversation_id) in stored {
        let Some(message) = messages.get(index) else {
            continue;
        };
        for (position, attachment) in message.attachments.iter().enumerate() {
            if is_file(attachment) {
                files.push(NewFile {
                    owner_id: message_id,
                    conversation_id,
                    position,
                    account: &message.account,
                    source_url: attachment.url.as_deref(),
                    mime_type: attachment.mime_type.as_deref(),
                    bytes: None,
                });
            }
        }
    }
    insert(sink, backend, tenant, channel, "inbound", &files, now).await
}

async fn insert(
    sink: &mut super::sink::Sink<'_, '_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    direction: &str,
    files: &[NewFile<'_>],
    now: i64,
) -> anyhow::Result<()> {
    const COLUMNS: usize = 14;
    for chunk in files.chunks(MAX_BINDS / COLUMNS) {
        let sql = positional(
            backend,
            &format!(
                "INSERT INTO media (id, tenant, direction, owner_id, conversation_id, position,
                    channel, account, source_url, state, mime_type, size, content,
                    next_attempt_at, created_at, updated_at)
                 VALUES {}",
                values(
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    chunk.len()
                )
            ),
        );
        let mut query = sqlx::query(&sql);
        for file in chunk {
            let state = if file.bytes.is_some() {
                "stored"
            } else {
                "fetching"
            };
            let size = file.bytes.map_or(0, <[u8]>::len);
            query = query
                .bind(new_id())
                .bind(tenant)
                .bind(direction)
                .bind(file.owner_id)
                .bind(file.conversation_id)
                .bind(i64::try_from(file.position).unwrap_or(i64::MAX))
                .bind(channel)
                .bind(super::text::stored(file.account))
                .bind(file.source_url.map(super::text::stored))
                .bind(state)
                .bind(file.mime_type)
                .bind(i64::try_from(size).unwrap_or(i64::MAX))
                .bind(file.bytes.map(<[u8]>::to_vec))
                .bind(now)
                .bind(now)
                .bind(now);
        }
        sink.execute(query).await?;
    }
    Ok(())
}

/// An image of a reply, to keep with it in the outbox.
pub(crate) struct OutboundFile<'a> {
    pub(crate) mime_type: &'a str,
    pub(crate) bytes: &'a [u8],
}

/// Keeps a reply's images with its outbox entry (inside the reply's transaction).
#[allow(clippy::too_many_arguments)]
pub(super) async fn keep_outbound(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    account: &str,
    outbox_id: &str,
    conversation_id: &str,
    files: &[OutboundFile<'_>],
    now: i64,
) -> anyhow::Result<()> {
    let files: Vec<NewFile<'_>> = files
        .iter()
        .enumerate()
        .map(|(position, file)| NewFile {
            owner_id: outbox_id,
            conversation_id,
            position,
            account,
            source_url: None,
            mime_type: Some(file.mime_type),
            bytes: Some(file.bytes),
        })
        .collect();
    insert(
        &mut super::sink::Sink::Run(tx),
        backend,
        tenant,
        channel,
        "outbound",
        &files,
        now,
    )
    .await
}

/// Deletes the files of the conversations `ids` (inside a retention or erasure
/// transaction); returns how many.
pub(super) async fn delete_of_conversations(
    tx: &mut Tx<'_>,
    backend: Backend,
    ids: &[String],
) -> anyhow::Result<u64> {
    let mut deleted = 0;
    for chunk in ids.chunks(super::MAX_IN_LIST) {
        let sql = positional(
            backend,
            &format!(
                "DELETE FROM media WHERE conversation_id IN ({})",
                super::marks(chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        deleted += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(deleted)
}

/// Deletes the files of one message (the customer deleted it); returns how many.
pub(super) async fn delete_of_message(tx: &mut Tx<'_>, message_id: &str) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM media WHERE direction = 'inbound' AND owner_id = $1")
        .bind(message_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// How long a claimed file stays claimed: a host that stops mid-fetch leaves it to another
/// after this.
const CLAIM_MS: i64 = 5 * 60 * 1000;

impl super::Store {
    /// Claims up to `limit` inbound files due for a fetch (several hosts may run fetchers:
    /// each file is claimed by one), counting the try.
    pub(crate) async fn claim_due_media(&self, limit: usize) -> anyhow::Result<Vec<DueMedia>> {
        let now = ms(self.now_ms());
        // One statement claims them all. The outer condition is checked again on each row
        // as it is updated, so when two hosts pick the same file only the first moves its
        // `next_attempt_at` past `now` and gets it back.
        let rows = sqlx::query(
            "UPDATE media SET next_attempt_at = $2, attempts = attempts + 1, updated_at = $1
             WHERE id IN (SELECT id FROM media
                          WHERE state = 'fetching' AND next_attempt_at <= $1
                          ORDER BY next_attempt_at LIMIT $3)
               AND state = 'fetching' AND next_attempt_at <= $1
             RETURNING id, tenant, channel, account, source_url, attempts",
        )
        .bind(now)
        .bind(now.saturating_add(CLAIM_MS))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            // The tries before this one.
            let attempts = row.try_get::<i64, _>("attempts")?.saturating_sub(1);
            due.push(DueMedia {
                id: row.try_get("id")?,
                tenant: row.try_get("tenant")?,
                channel: row.try_get("channel")?,
                account: super::text::read(row.try_get("account")?),
                url: row
                    .try_get::<Option<String>, _>("source_url")?
                    .map(super::text::read)
                    .unwrap_or_default(),
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
        Ok(due)
    }

    /// Keeps a fetched file, unless it would take its tenant past `tenant_quota` bytes of
    /// stored files: then it is `failed`, saying so. Returns whether it was kept.
    pub(crate) async fn media_fetched(
        &self,
        file: &DueMedia,
        mime_type: Option<&str>,
        bytes: &[u8],
        tenant_quota: u64,
    ) -> anyhow::Result<bool> {
        let now = ms(self.now_ms());
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let kept = sqlx::query(
            "UPDATE media SET state = 'stored', content = $2, size = $3,
                mime_type = COALESCE($4, mime_type), error = NULL, updated_at = $5
             WHERE id = $1 AND state = 'fetching'
               AND (SELECT COALESCE(SUM(size), 0) FROM media
                    WHERE tenant = $6 AND state = 'stored') + $3 <= $7",
        )
        .bind(&file.id)
        .bind(bytes.to_vec())
        .bind(size)
        .bind(mime_type)
        .bind(now)
        .bind(&file.tenant)
        .bind(i64::try_from(tenant_quota).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        if kept.rows_affected() == 1 {
            return Ok(true);
        }
        self.media_failed(
            &file.id,
            &format!(
                "tenant `{}` is at its media quota of {tenant_quota} bytes \
                 (host.media_max_tenant_mib): this file of {} bytes was not kept",
                file.tenant,
                bytes.len()
            ),
        )
        .await?;
        Ok(false)
    }

    /// Leaves a file for another try at `retry_at_ms`, noting what this one said.
    pub(crate) async fn media_retry(
        &self,
        id: &str,
        error: &str,
        retry_at_ms: u64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE media SET error = $2, next_attempt_at = $3, updated_at = $4
             WHERE id = $1 AND state = 'fetching'",
        )
        .bind(id)
        .bind(super::text::stored(error))
        .bind(ms(retry_at_ms))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Hands a claimed file back untried until `at_ms` (its connector takes no calls):
    /// the claim does not count as a try.
    pub(crate) async fn media_wait(&self, id: &str, why: &str, at_ms: u64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE media SET error = $2, next_attempt_at = $3, updated_at = $4,
                attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
             WHERE id = $1 AND state = 'fetching'",
        )
        .bind(id)
        .bind(super::text::stored(why))
        .bind(ms(at_ms))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on a file, saying why.
    pub(crate) async fn media_failed(&self, id: &str, error: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE media SET state = 'failed', error = $2, updated_at = $3
             WHERE id = $1 AND state = 'fetching'",
        )
        .bind(id)
        .bind(super::text::stored(error))
        .bind(ms(self.now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The files of `owners` (messages or outbox entries) of `tenant`, in each owner's
    /// order.
    pub async fn media_of(
        &self,
        tenant: &str,
        owners: &[String],
    ) -> anyhow::Result<Vec<MediaRecord>> {
        let mut out = Vec::new();
        for chunk in owners.chunks(super::MAX_IN_LIST) {
            let sql = positional(
                self.backend,
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM media WHERE tenant = ? AND owner_id IN ({})
                     ORDER BY owner_id, position",
                    super::marks(chunk.len())
                ),
            );
            let mut query = sqlx::query(&sql).bind(tenant);
            for owner in chunk {
                query = query.bind(owner);
            }
            for row in query.fetch_all(&self.pool).await? {
                out.push(record_from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// A file of `tenant` with its bytes (none until it is stored).
    pub async fn media_content(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<MediaContent>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS}, content FROM media WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(MediaContent {
            record: record_from_row(&row)?,
            bytes: row
                .try_get::<Option<Vec<u8>>, _>("content")?
                .unwrap_or_default(),
        }))
    }

    /// The bytes of a reply's images, in order (for the connector that sends it).
    pub(crate) async fn outbound_media(
        &self,
        tenant: &str,
        outbox_id: &str,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let rows = sqlx::query(
            "SELECT content FROM media
             WHERE tenant = $1 AND direction = 'outbound' AND owner_id = $2 ORDER BY position",
        )
        .bind(tenant)
        .bind(outbox_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(row
                    .try_get::<Option<Vec<u8>>, _>("content")?
                    .unwrap_or_default())
            })
            .collect()
    }
}
