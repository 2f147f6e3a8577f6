use sqlx::Row as _;

use super::{Store, redacted_url};

/// What SQLite's planner says it does for `sql`, one line per step.
pub(super) async fn plan(store: &Store, sql: &str) -> String {
    sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String, _>("detail").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_shown_store_url_keeps_only_scheme_host_port_and_database() {
    for (url, shown) in [
        (
            "postgres://centralino:s3cret@db.example:5432/centralino",
            "postgres://***@db.example:5432/centralino",
        ),
        (
            "postgres://db.example/centralino?password=s3cret&sslmode=require",
            "postgres://db.example/centralino?***",
        ),
        (
            "postgresql://u:p@ss@db/c?user=x&password=y#frag",
            "postgresql://***@db/c?***",
        ),
        (
            "postgres://db.example/centralino",
            "postgres://db.example/centralino",
        ),
        (
            "postgres://db.example/centralino#x",
            "postgres://db.example/centralino",
        ),
        (
            "sqlite:///var/lib/centralino.db?mode=rwc",
            "sqlite:///var/lib/centralino.db?***",
        ),
        ("sqlite::memory:", "sqlite::memory:"),
        ("mysql://localhost/db", "mysql://localhost/db"),
    ] {
        assert_eq!(redacted_url(url), shown, "{url}");
    }
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_data_when_the_pool_closes_its_connection() {
    let store = super::Store::open("sqlite::memory:").await.unwrap();
    sqlx::query("CREATE TABLE kept (x INTEGER)")
        .execute(&store.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES (1)")
        .execute(&store.pool)
        .await
        .unwrap();
    // What the pool does at a connection's maximum lifetime, after a failed test on
    // release, or when a checkout is cancelled midway.
    store.pool.acquire().await.unwrap().close().await.unwrap();
    let row = sqlx::query("SELECT COUNT(*) FROM kept")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&row, 0).unwrap(), 1);
    // The migrated schema is still there too.
    assert_eq!(store.message_count("default").await.unwrap(), 0);

    // Two in-memory stores are two databases.
    let other = super::Store::open("sqlite::memory:").await.unwrap();
    assert!(
        sqlx::query("SELECT COUNT(*) FROM kept")
            .fetch_one(&other.pool)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_file_stores_log_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = super::Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    // About 2 MB in one commit: 500 pages, under the writer's own threshold (4,000), so
    // only the checkpointer copies them into the database file.
    let mut tx = store.begin_writing().await.unwrap();
    sqlx::query("CREATE TABLE filler (x TEXT)")
        .execute(&mut *tx)
        .await
        .unwrap();
    for _ in 0..500 {
        sqlx::query("INSERT INTO filler VALUES ($1)")
            .bind("x".repeat(4_000))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 2_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {} bytes (from {before})",
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
