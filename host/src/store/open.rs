//! Opening the store: the backend from the URL, the pool's settings for each, and the
//! in-memory database's anchor connection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection as _;
use sqlx::any::AnyPoolOptions;

use super::sql::new_id;
use super::{Backend, Store};

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://…`.
    ///
    /// A SQLite file gets three connections, each on a thread of its own: the one that
    /// writes (every transaction of the host, in turn), one that checkpoints the log beside
    /// it and one that only reads, for deliveries read while the writer writes others. An
    /// in-memory database gets the writing one (and one more that only keeps the database
    /// alive as long as the store); PostgreSQL a pool of up to 8.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "store URL `{}`: expected `sqlite://…`, `sqlite::memory:` or `postgres://…`",
                redacted_url(url)
            );
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let url = match backend {
            Backend::Sqlite => {
                // SQLite has one writer at a time, and a deferred transaction that reads then
                // writes fails at once ("database is locked") when another writer got in
                // between. One connection serialises the host's transactions instead, which
                // is also what an in-memory database needs.
                let memory = url.contains(":memory:");
                // Checking out the one in-process connection needs no test query first.
                options = options
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            set(conn, WRITER).await?;
                            // The log is checkpointed beside the writer (`checkpoint.rs`);
                            // the writer does it only should that fall behind.
                            sqlx::query(&format!(
                                "PRAGMA wal_autocheckpoint = {}",
                                super::checkpoint::BACKSTOP_PAGES
                            ))
                            .execute(&mut *conn)
                            .await?;
                            Ok(())
                        })
                    });
                if url == "sqlite::memory:" {
                    // An in-memory database lives as long as a connection to it, and the
                    // pool closes its connection now and then (at its maximum lifetime, after
                    // a failed test on release, when a checkout is cancelled midway), which
                    // would silently start an empty database. So the database gets a name of
                    // its own, shared by the pool's connection and an anchor connection the
                    // store holds until it is dropped.
                    format!(
                        "sqlite:file:centralino-memory-{}?mode=memory&cache=shared",
                        new_id()
                    )
                } else if memory || url.contains("mode=") {
                    url.to_string()
                } else {
                    format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
                }
            }
            Backend::Postgres => {
                // Each statement is planned for its own parameters and the tables as they
                // are now. A plan cached per connection (PostgreSQL's default after five
                // runs of a prepared statement) keeps the estimates of when it was made: on
                // a new store, those of empty tables, and the duplicate, thread and identity
                // look-ups of every delivery grew slower with the tables until autovacuum
                // next analysed them (27 ms to 206 ms each as a fresh store grew to 20,000
                // messages; BENCHMARKS.md section 2). Planning these statements costs a
                // fraction of a millisecond. (Searches set it per transaction already.)
                options = options.max_connections(8).after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET plan_cache_mode = force_custom_plan")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                });
                url.to_string()
            }
        };
        let memory_anchor = if url.starts_with("sqlite:file:centralino-memory-") {
            let anchor = sqlx::AnyConnection::connect(&url)
                .await
                .context("opening the in-memory store")?;
            Some(Arc::new(std::sync::Mutex::new(anchor)))
        } else {
            None
        };
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("opening the store at {}", redacted_url(&url)))?;
        if backend == Backend::Postgres {
            let row = sqlx::query("SHOW server_version_num")
                .fetch_one(&pool)
                .await
                .with_context(|| {
                    format!("asking the store at {} for its version", redacted_url(&url))
                })?;
            let version: String = sqlx::Row::try_get(&row, 0)?;
            supported_postgres(&version)
                .with_context(|| format!("opening the store at {}", redacted_url(&url)))?;
        }
        let mut store = Store {
            pool,
            backend,
            clock: None,
            _memory_anchor: memory_anchor,
            _checkpointer: None,
            reader: None,
        };
        store.migrate().await?;
        if super::checkpoint::wanted(&url) {
            store._checkpointer = Some(Arc::new(super::checkpoint::start(&url).await?));
            store.reader = Some(reader(&url).await?);
        }
        Ok(store)
    }
}

/// The settings of the store's SQLite connection, set on each connection the pool opens.
const WRITER: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    // Deleted and overwritten content is zeroed, so an erased customer's text leaves the
    // file (see `erasure.rs`).
    "PRAGMA secure_delete = ON",
    // The journal of each delivery's savepoint in a group (the pages it changes that the
    // group had changed before) stays in memory instead of going to a temporary file page
    // by page: two system calls a page, about two a message, on the writer's thread.
    "PRAGMA temp_store = MEMORY",
];

/// The settings of the store's reading connection ([`reader`]).
const READER: &[&str] = &[
    "PRAGMA busy_timeout = 10000",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA query_only = ON",
];

/// Runs `pragmas` on a connection the pool just opened.
async fn set(conn: &mut sqlx::AnyConnection, pragmas: &[&str]) -> Result<(), sqlx::Error> {
    for pragma in pragmas {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The store's reading connection to the SQLite file at `url` (see `Store::read_beside`).
/// It refuses to write (`query_only`); in WAL mode the writer never blocks it, and should
/// the file be busy anyway (another process recovering its log) it waits as the writer
/// does.
async fn reader(url: &str) -> anyhow::Result<sqlx::AnyPool> {
    AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(async move { set(conn, READER).await }))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "opening the reading connection to the store at {}",
                redacted_url(url)
            )
        })
}

/// The oldest PostgreSQL the store runs on: 13, the first with `pg_current_xact_id`, which
/// stamps each change to a conversation's routing state (see `assignments.rs`).
const OLDEST_POSTGRES: u32 = 130_000;

/// Refuses a PostgreSQL server older than [`OLDEST_POSTGRES`], from its
/// `server_version_num` (`150010` for 15.10), before anything is written to it.
fn supported_postgres(version_num: &str) -> anyhow::Result<()> {
    let number: u32 = version_num.trim().parse().map_err(|_| {
        anyhow::anyhow!("PostgreSQL answered `{version_num}` as its version number")
    })?;
    // 9.6.24 is 90624; from 10 on, 150010 is 15.10.
    let minor = if number < 100_000 {
        number / 100 % 100
    } else {
        number % 10_000
    };
    anyhow::ensure!(
        number >= OLDEST_POSTGRES,
        "PostgreSQL {}.{minor} is too old: centralino needs PostgreSQL 13 or later",
        number / 10_000,
    );
    Ok(())
}

/// A store URL as it may be shown (logs, errors, `centralino check`): its scheme, host,
/// port and database only. User information is replaced by `***@` and a query string by
/// `?***`, whatever they hold, since a password may sit in either (`user:pass@`,
/// `?password=`); a fragment is dropped.
pub fn redacted_url(url: &str) -> String {
    let (url, has_query) = match url.find(['?', '#']) {
        Some(at) => (&url[..at], url[at..].starts_with('?') && url.len() > at + 1),
        None => (url, false),
    };
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => format!("{scheme}://{authority}{path}"),
            }
        }
        None => url.to_string(),
    };
    if has_query {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::supported_postgres;

    #[test]
    fn postgres_before_13_is_refused_by_its_version() {
        for ok in ["130000", "150010", "170002\n"] {
            assert!(supported_postgres(ok).is_ok(), "{ok}");
        }
        let refused = |num: &str| format!("{:#}", supported_postgres(num).unwrap_err());
        assert_eq!(
            refused("120015"),
            "PostgreSQL 12.15 is too old: centralino needs PostgreSQL 13 or later"
        );
        assert_eq!(
            refused("90624"),
            "PostgreSQL 9.6 is too old: centralino needs PostgreSQL 13 or later"
        );
        assert_eq!(
            refused("15beta1"),
            "PostgreSQL answered `15beta1` as its version number"
        );
    }
}
