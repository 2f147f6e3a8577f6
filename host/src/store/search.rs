//! Search and paging over conversations and messages (migration 10).
//!
//! **The index.** On SQLite, `message_search` is an FTS5 table with no copy of the text
//! (`content=''`, `contentless_delete=1`): only its tokens, keyed by `message_search_docs`,
//! which gives every message a stable integer (an `INTEGER PRIMARY KEY`, which `VACUUM`
//! keeps, unlike a table's implicit rowid) in the order the host stored them. Triggers on
//! `messages` keep both in step on every insert, update of `text` (a customer's deletion
//! empties it, an erasure rewrites it) and delete, inside the statement's own transaction.
//! On PostgreSQL a GIN index over `to_tsvector('simple', text)` does the same job, kept by
//! PostgreSQL itself on every insert, update and delete. Both split text into words the
//! same way, fold case and keep accents, and neither stems, so Italian and English (and a
//! mix of both in one message) are searched alike and both backends find the same messages.
//!
//! **Queries.** A search's text is split into words (runs of letters and digits); a
//! message matches when it holds every word. A conversation matches when one of its
//! messages does. The other filters are the conversation's: channel, brand (the accounts
//! configured with it), assignee, status; time is the conversation's creation, or the
//! message's storing.
//!
//! **Paging.** Every list is cut in SQL into pages of at most [`MAX_PAGE`] rows, in an order
//! that never changes for rows already stored: conversations newest first by
//! `(created_at, id)`, messages found newest stored first, a conversation's messages oldest
//! first. The cursor names the last row of a page by that key, so the next page starts
//! after it whatever arrived meanwhile: no row is shown twice and none already stored is
//! skipped. Cursors are opaque to callers (base64url of a versioned key).
use sqlx::Row;
use sqlx::any::AnyRow;

use super::query::{Checked, InvalidCursor, Key};
use super::{
    Backend, ConversationRecord, Page, Store, StoredMessage, conversation_from_row,
    message_from_row, ms, positional, text,
};

/// Up to this many messages holding a search's words, PostgreSQL sorts them all; past it,
/// it walks the messages newest first (each then a match often enough to fill a page soon).
const FEW_MATCHES: usize = 5_000;

/// Migration 10, on both backends: the indexes that keep paged lists in SQL.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE INDEX conversations_by_time ON conversations (tenant, created_at, id)",
    "CREATE INDEX conversations_by_status_time ON conversations (tenant, status, created_at, id)",
    "CREATE INDEX conversations_by_assignee_time ON conversations (tenant, assignee, created_at, id)",
    "CREATE INDEX messages_by_time ON messages (tenant, received_at, id)",
];

/// Migration 10 on SQLite: the FTS5 index, its keys and the triggers that keep them.
pub(super) const SQLITE_MIGRATION: &[&str] = &[
    "CREATE TABLE message_search_docs (
        doc INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL
    )",
    "CREATE VIRTUAL TABLE message_search USING fts5(
        text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
    )",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
        INSERT INTO message_search_docs (message_id, conversation_id)
            VALUES (new.id, new.conversation_id);
        INSERT INTO message_search (rowid, text)
            VALUES ((SELECT doc FROM message_search_docs WHERE message_id = new.id), new.text);
    END",
    "CREATE TRIGGER message_search_update AFTER UPDATE OF id, text, conversation_id ON messages BEGIN
        DELETE FROM message_search
            WHERE rowid = (SELECT doc FROM message_search_docs WHERE message_id = old.id);
        UPDATE message_search_docs SET message_id = new.id, conversation_id = new.conversation_id
            WHERE message_id = old.id;
        INSERT INTO message_search (rowid, text)
            VALUES ((SELECT doc FROM message_search_docs WHERE message_id = new.id), new.text);
    END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
        DELETE FROM message_search
            WHERE rowid = (SELECT doc FROM message_search_docs WHERE message_id = old.id);
        DELETE FROM message_search_docs WHERE message_id = old.id;
    END",
    // The messages stored before, in the order they were stored.
    "INSERT INTO message_search_docs (message_id, conversation_id)
        SELECT id, conversation_id FROM messages ORDER BY received_at, batch_index, id",
    "INSERT INTO message_search (rowid, text)
        SELECT d.doc, m.text FROM message_search_docs d JOIN messages m ON m.id = d.message_id",
];

/// Migration 18 on SQLite: a message's index key is the row its trigger just inserted
/// (`last_insert_rowid()` inside a trigger names the trigger's own last insert), where the
/// trigger of migration 10 looked it up again by the message's id.
pub(super) const SQLITE_MIGRATION_18: &[&str] = &[
    "DROP TRIGGER message_search_insert",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
        INSERT INTO message_search_docs (message_id, conversation_id)
            VALUES (new.id, new.conversation_id);
        INSERT INTO message_search (rowid, text) VALUES (last_insert_rowid(), new.text);
    END",
];

/// Migration 10 on PostgreSQL: the full-text index, kept by PostgreSQL itself.
pub(super) const POSTGRES_MIGRATION: &[&str] =
    &["CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', text))"];

/// A statement being written: its SQL with `?` parameters, and their values.
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Sql {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }
    fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.binds.push(Bind::Text(value.into()));
        self
    }
    fn int(&mut self, value: i64) -> &mut Self {
        self.binds.push(Bind::Int(value));
        self
    }

    async fn fetch(&self, store: &Store) -> anyhow::Result<Vec<AnyRow>> {
        let sql = positional(store.backend, &self.text);
        let mut query = sqlx::query(&sql);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(value) => query.bind(value.as_str()),
                Bind::Int(value) => query.bind(*value),
            };
        }
        // On PostgreSQL the store's connections plan each statement for its values (see
        // `open.rs`): a plan for any search text would walk the messages newest first
        // testing each, which for a rare word is every message (measured: 0.8 s over
        // 100,000); planned for the words at hand, a rare word goes through the GIN index
        // and a common one stops after a page.
        Ok(query.fetch_all(&store.pool).await?)
    }
}

impl Checked<'_> {
    /// The conversation filters (on `c`), time on `time`.
    fn conversation_filters(&self, sql: &mut Sql, time: Option<&str>) {
        let q = self.query;
        if let Some(channel) = &q.channel {
            sql.push(" AND c.channel = ?").text(text::stored(channel));
        }
        if let Some(accounts) = &self.accounts {
            sql.push(" AND (1 = 0");
            for (channel, account) in accounts {
                sql.push(" OR (c.channel = ? AND c.account = ?)")
                    .text(text::stored(channel))
                    .text(text::stored(account));
            }
            sql.push(")");
        }
        if let Some(assignee) = &q.assignee {
            sql.push(" AND c.assignee = ?").text(text::stored(assignee));
        }
        if let Some(status) = q.status {
            sql.push(" AND c.status = ?").text(status.as_str());
        }
        if let Some(time) = time {
            if let Some(since) = q.since_ms {
                sql.push(&format!(" AND {time} >= ?")).int(ms(since));
            }
            if let Some(until) = q.until_ms {
                sql.push(&format!(" AND {time} < ?")).int(ms(until));
            }
        }
    }

    /// The words as the backend's full-text query takes them.
    fn match_text(&self, backend: Backend) -> Option<String> {
        let words = self.words.as_ref()?;
        Some(match backend {
            // Each word a quoted string (they hold only letters and digits): all must match.
            Backend::Sqlite => words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" "),
            // `plainto_tsquery` ANDs the words.
            Backend::Postgres => words.join(" "),
        })
    }
}

/// `items` cut to `limit`, with the cursor after the last one when more follow.
fn page<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> Key) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page { items, next_cursor }
}

impl Store {
    /// A page of `tenant`'s conversations matching `query`, newest first.
    pub(crate) async fn search_conversations(
        &self,
        tenant: &str,
        query: &Checked<'_>,
    ) -> anyhow::Result<Page<ConversationRecord>> {
        let mut sql = Sql::default();
        sql.push("SELECT c.* FROM conversations c WHERE c.tenant = ?")
            .text(tenant);
        query.conversation_filters(&mut sql, Some("c.created_at"));
        match &query.cursor {
            None => {}
            Some(Key::Conversation(at, id)) => {
                sql.push(" AND (c.created_at, c.id) < (?, ?)")
                    .int(*at)
                    .text(id.as_str());
            }
            Some(_) => anyhow::bail!(InvalidCursor),
        }
        if let Some(text) = query.match_text(self.backend) {
            match self.backend {
                Backend::Sqlite => sql.push(
                    " AND c.id IN (SELECT d.conversation_id FROM message_search s
                        JOIN message_search_docs d ON d.doc = s.rowid
                        WHERE message_search MATCH ?)",
                ),
                Backend::Postgres => sql
                    .push(
                        " AND c.id IN (SELECT m.conversation_id FROM messages m WHERE m.tenant = ?
                        AND to_tsvector('simple', m.text) @@ plainto_tsquery('simple', ?))",
                    )
                    .text(tenant),
            }
            .text(text);
        }
        sql.push(" ORDER BY c.created_at DESC, c.id DESC LIMIT ?")
            .int(limit_plus_one(query.limit));
        let rows = sql.fetch(self).await?;
        let items = rows
            .iter()
            .map(conversation_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page(items, query.limit, |c: &ConversationRecord| {
            Key::Conversation(c.created_at, c.id.clone())
        }))
    }

    /// A page of `tenant`'s messages matching `query`, newest stored first.
    pub(crate) async fn search_messages(
        &self,
        tenant: &str,
        query: &Checked<'_>,
    ) -> anyhow::Result<Page<StoredMessage>> {
        let mut sql = Sql::default();
        let by_doc = self.backend == Backend::Sqlite && query.words.is_some();
        if by_doc {
            // SQLite walks its index newest first and stops at the page's end.
            sql.push(
                "SELECT m.*, c.thread_key, s.rowid AS search_doc FROM message_search s
                 JOIN message_search_docs d ON d.doc = s.rowid
                 JOIN messages m ON m.id = d.message_id
                 JOIN conversations c ON c.id = m.conversation_id
                 WHERE message_search MATCH ? AND m.tenant = ?",
            );
            sql.text(query.match_text(self.backend).unwrap_or_default())
                .text(tenant);
        } else {
            sql.push(
                "SELECT m.*, c.thread_key FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.tenant = ?",
            )
            .text(tenant);
            if let Some(text) = query.match_text(self.backend) {
                sql.push(" AND to_tsvector('simple', m.text) @@ plainto_tsquery('simple', ?)")
                    .text(text);
            }
        }
        sql.push(" AND c.tenant = ?").text(tenant);
        query.conversation_filters(&mut sql, Some("m.received_at"));
        if let Some(direction) = query.query.direction {
            sql.push(" AND m.direction = ?").text(direction.as_str());
        }
        match (&query.cursor, by_doc) {
            (None, _) => {}
            (Some(Key::Doc(doc)), true) => {
                sql.push(" AND s.rowid < ?").int(*doc);
            }
            (Some(Key::Stored(at, id)), false) => {
                sql.push(" AND (m.received_at, m.id) < (?, ?)")
                    .int(*at)
                    .text(id.as_str());
            }
            (Some(_), _) => anyhow::bail!(InvalidCursor),
        }
        if by_doc {
            sql.push(" ORDER BY s.rowid DESC LIMIT ?");
        } else if self.backend == Backend::Postgres && self.few_matches(tenant, query).await? {
            // Few messages hold the words: fetch them all through the GIN index and sort
            // them. (`+ 0`: an order `messages_by_time` cannot give, so PostgreSQL does
            // not walk it instead, testing every message for a word that is rare.)
            sql.push(" ORDER BY m.received_at + 0 DESC, m.id DESC LIMIT ?");
        } else {
            // No words, or common ones: walk the messages newest first; a page is found
            // after a few tests each.
            sql.push(" ORDER BY m.received_at DESC, m.id DESC LIMIT ?");
        }
        sql.int(limit_plus_one(query.limit));
        let rows = sql.fetch(self).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let doc: i64 = if by_doc {
                row.try_get("search_doc")?
            } else {
                0
            };
            found.push((doc, message_from_row(row)?));
        }
        let mut page = page(found, query.limit, |(doc, m): &(i64, StoredMessage)| {
            if by_doc {
                Key::Doc(*doc)
            } else {
                Key::Stored(m.received_at, m.id.clone())
            }
        });
        Ok(Page {
            items: page.items.drain(..).map(|(_, m)| m).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Whether at most [`FEW_MATCHES`] of the tenant's messages hold the search's words,
    /// on PostgreSQL: asked of the GIN index, which stops counting there.
    async fn few_matches(&self, tenant: &str, query: &Checked<'_>) -> anyhow::Result<bool> {
        let Some(text) = query.match_text(self.backend) else {
            return Ok(false);
        };
        let row = sqlx::query(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE tenant = $1
                AND to_tsvector('simple', text) @@ plainto_tsquery('simple', $2) LIMIT $3) found",
        )
        .bind(tenant)
        .bind(text)
        .bind(
            i64::try_from(FEW_MATCHES)
                .unwrap_or(i64::MAX)
                .saturating_add(1),
        )
        .fetch_one(&self.pool)
        .await?;
        let found: i64 = row.try_get(0)?;
        Ok(usize::try_from(found).is_ok_and(|found| found <= FEW_MATCHES))
    }

    /// A page of one conversation's messages, oldest first.
    pub(crate) async fn conversation_messages(
        &self,
        tenant: &str,
        conversation_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> anyhow::Result<Page<StoredMessage>> {
        let mut sql = Sql::default();
        sql.push(
            "SELECT m.*, c.thread_key FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.tenant = ? AND m.conversation_id = ?",
        )
        .text(tenant)
        .text(conversation_id);
        match cursor.map(Key::decode) {
            None => {}
            Some(Some(Key::Thread(created, received, batch, id))) => {
                sql.push(" AND (m.created_at, m.received_at, m.batch_index, m.id) > (?, ?, ?, ?)")
                    .int(created)
                    .int(received)
                    .int(batch)
                    .text(id);
            }
            Some(_) => anyhow::bail!(InvalidCursor),
        }
        sql.push(" ORDER BY m.created_at, m.received_at, m.batch_index, m.id LIMIT ?")
            .int(limit_plus_one(limit));
        let rows = sql.fetch(self).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let at: (i64, i64) = (row.try_get("created_at")?, row.try_get("batch_index")?);
            found.push((at, message_from_row(row)?));
        }
        let mut page = page(
            found,
            limit,
            |((created, batch), m): &((i64, i64), StoredMessage)| {
                Key::Thread(*created, m.received_at, *batch, m.id.clone())
            },
        );
        Ok(Page {
            items: page.items.drain(..).map(|(_, m)| m).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// One row more than the page, to know whether another page follows.
fn limit_plus_one(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}
