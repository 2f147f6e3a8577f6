//! Checkpoints of a SQLite store's write-ahead log, on a connection of their own.
//!
//! In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint
//! copies them back into the database file and syncs it, so the log can start over. Left
//! to SQLite, the connection whose commit takes the log past 1,000 pages runs the
//! checkpoint itself, inside that commit. For the store that is its one writing
//! connection: every few commits, deliveries waited while it copied a few megabytes and
//! synced the database file.
//!
//! A store on a file therefore checkpoints beside the writer: a task with its own
//! connection (so its own thread) runs `PRAGMA wal_checkpoint(PASSIVE)`, which copies what
//! it can without blocking the writer or any reader, every [`BUSY_INTERVAL`] while
//! commits keep coming and every [`IDLE_INTERVAL`] once they stop. The writer's own
//! automatic checkpoint stays, at [`BACKSTOP_PAGES`], should this one fall behind; a
//! checkpoint never changes what a commit made durable, only where its pages are kept.
//! The task stops when the last clone of the store is dropped.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::{Connection as _, Row as _};

use crate::throttle::{LOG_EVERY, Throttle};

/// How often the log is checkpointed while commits keep coming.
const BUSY_INTERVAL: Duration = Duration::from_millis(20);

/// How often it is looked at once nothing new was committed.
const IDLE_INTERVAL: Duration = Duration::from_millis(500);

/// The writer's own automatic checkpoint, for when the checkpointer falls behind: pages of
/// log (of 4 KiB) after which a commit checkpoints (SQLite's default is 1,000).
pub(super) const BACKSTOP_PAGES: u32 = 4_000;

/// The running checkpointer of one store; stopping it is dropping it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a store at `url` (as the pool opened it) gets a checkpointer: a SQLite file
/// opened for writing. An in-memory database has no log, and a read-only one cannot
/// checkpoint.
pub(super) fn wanted(url: &str) -> bool {
    url.starts_with("sqlite:")
        && !url.contains(":memory:")
        && !url.contains("mode=memory")
        && !url.contains("mode=ro")
}

/// Opens the checkpointer's connection to the store at `url` and starts it.
pub(super) async fn start(url: &str) -> anyhow::Result<Checkpointer> {
    let mut conn = sqlx::AnyConnection::connect(url).await.with_context(|| {
        format!(
            "opening the checkpointing connection to the store at {}",
            super::redacted_url(url)
        )
    })?;
    let task = tokio::spawn(async move {
        let failures = Throttle::new(LOG_EVERY);
        let mut copied_before = -1_i64;
        loop {
            let pause = match checkpoint(&mut conn).await {
                Ok(copied) if copied != copied_before => {
                    copied_before = copied;
                    BUSY_INTERVAL
                }
                Ok(_) => IDLE_INTERVAL,
                Err(e) => {
                    if let Some(held_back) = failures.admit(Instant::now()) {
                        tracing::warn!(
                            held_back,
                            "checkpointing the store's log failed (the writer checkpoints \
                             it instead, past {BACKSTOP_PAGES} pages): {e:#}"
                        );
                    }
                    IDLE_INTERVAL
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
    Ok(Checkpointer { task })
}

/// One passive checkpoint; returns how many pages of the log are now in the database file
/// (SQLite's third column: it grows as commits are copied, and starts again from zero
/// when the writer starts the log over).
async fn checkpoint(conn: &mut sqlx::AnyConnection) -> anyhow::Result<i64> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>(2)?)
}
