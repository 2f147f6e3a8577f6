//! Erasure: nothing of the customer is left in the database file, its write-ahead log or
//! the host's log, the counts stay, the CRM and the audit log are told, and a redelivered
//! webhook cannot bring the customer back.

use std::sync::{Arc, Mutex};

use centralino::crm::CrmEvent;
use serde_json::json;

use super::{Platforms, now_ms};
use crate::support::eventually;

/// What the test plants, and every id of the customer's it must not find afterwards.
const PLANTED: &str = "PIANTATO-ac6f2e91-codice-fiscale";
const X_ID: &str = "4242424242424242";
const HANDLE: &str = "mario_piantato_77";
const PSID: &str = "7009123456789012";
const MID: &str = "m_ERASEMID_5551234987";

#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The bytes of the SQLite file and of its WAL and shared-memory files, as on disk.
fn database_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["centralino.db", "centralino.db-wal", "centralino.db-shm"]
        .into_iter()
        .filter_map(|name| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|bytes| (name.to_string(), bytes))
        })
        .collect()
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The planted string and the customer's ids found in the database files.
fn found_in_database(dir: &std::path::Path, tweet: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (file, bytes) in database_bytes(dir) {
        for needle in [PLANTED, X_ID, HANDLE, tweet, PSID, MID] {
            if holds(&bytes, needle) {
                found.push(format!("{needle} in {file}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn an_erased_customer_leaves_no_text_or_id_in_the_database_or_the_logs_and_stays_erased() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let platforms = Platforms::start().await;
    platforms
        .x
        .add_user(X_ID, HANDLE, "Mario Piantato", "token-mario");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let host = platforms.host(&store, "centralino").await;

    // Mario writes on X and on Messenger, planting the string; the CRM links the two.
    let (tweet_id, tweet) = host
        .mention(
            &platforms.x,
            (X_ID, HANDLE),
            &format!("@TIM_Official {PLANTED} il modem"),
        )
        .await;
    let written = now_ms();
    let messenger = host
        .messenger(PSID, MID, &format!("{PLANTED} su Messenger"), written)
        .await;
    let on_x = host.open_conversation("twitter", X_ID).await;
    let operator = on_x.assignee.clone().unwrap();
    host.answer_and_resolve(
        &on_x.id,
        &operator,
        &format!("@{HANDLE} ricevuto {PLANTED}"),
    )
    .await;
    let customer = host.customer_of("twitter", X_ID).await;
    let id = customer["id"].as_str().unwrap().to_string();
    host.link(&id, "facebook", PSID).await;
    let messages_before = host.host.store().message_count("default").await.unwrap();
    assert!(
        !found_in_database(dir.path(), &tweet_id).is_empty(),
        "the test plants what it looks for"
    );

    // The export holds everything, in one call.
    let (status, export) = host
        .api("GET", &format!("/api/v1/customers/{id}/export"), None)
        .await;
    assert_eq!(status, 200);
    let exported = export.to_string();
    assert!(exported.contains(PLANTED) && exported.contains(PSID) && exported.contains(X_ID));
    assert_eq!(export["conversations"].as_array().unwrap().len(), 2);

    // The erasure.
    let (status, erasure) = host
        .api("DELETE", &format!("/api/v1/customers/{id}"), None)
        .await;
    assert_eq!(status, 200, "{erasure}");
    assert_eq!(erasure["identities"], 2);
    assert_eq!(erasure["conversations"], 2);
    assert!(erasure["messages"].as_u64().unwrap() >= 3, "{erasure}");
    let (status, gone) = host
        .api("GET", &format!("/api/v1/customers/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(gone["error"]["code"], "customer_not_found");
    // The counts reports need stay.
    assert_eq!(
        host.host.store().message_count("default").await.unwrap(),
        messages_before
    );
    // The CRM is told, without the customer's data.
    let inbox = host.host.local_inbox().unwrap().clone();
    eventually("the CRM hears of the erasure", async || {
        inbox.events().iter().any(|d| {
            matches!(&d.event, CrmEvent::CustomerErased { customer_id, conversation_ids, .. }
                if *customer_id == id && conversation_ids.len() == 2)
        })
    })
    .await;

    // Nothing of them in the database file, its WAL, or the log.
    assert_eq!(
        found_in_database(dir.path(), &tweet_id),
        Vec::<String>::new()
    );
    let logged = log.text();
    assert!(!logged.is_empty());
    for needle in [PLANTED, X_ID, HANDLE, &tweet_id, PSID, MID] {
        assert!(!logged.contains(needle), "the log holds {needle}");
    }

    // The audit log has the erasure.
    let audit = {
        use sqlx::{Connection as _, Row as _};
        let mut db = sqlx::SqliteConnection::connect(&store).await.unwrap();
        sqlx::query("SELECT who, action, target FROM console_audit")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                format!(
                    "{} {} {}",
                    row.get::<String, _>("who"),
                    row.get::<String, _>("action"),
                    row.get::<String, _>("target")
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(
        audit[0].starts_with(&format!("crm erase-customer customer {id}")),
        "{audit:?}"
    );

    // Redelivered webhooks, and a replayed message of theirs the host never stored,
    // bring nothing back.
    let conversations = host
        .host
        .store()
        .conversations("default")
        .await
        .unwrap()
        .len();
    host.redeliver_tweet(&tweet).await;
    host.redeliver_messenger(&messenger).await;
    host.messenger(PSID, "m_replayed_older_1", "vecchio", written - 1_000)
        .await;
    assert_eq!(
        host.host.store().message_count("default").await.unwrap(),
        messages_before
    );
    assert_eq!(
        host.host
            .store()
            .conversations("default")
            .await
            .unwrap()
            .len(),
        conversations
    );
    let (status, _) = host
        .api(
            "GET",
            &format!("/api/v1/customers?channel=facebook&platform_id={PSID}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "the erased identity is not filed again");
    assert_eq!(
        found_in_database(dir.path(), &tweet_id),
        Vec::<String>::new()
    );

    // Writing again later is a new start: kept, as a new customer.
    host.messenger(PSID, "m_after_erasure_1", "ciao di nuovo", now_ms() + 1_000)
        .await;
    let again = host.customer_of("facebook", PSID).await;
    assert_ne!(again["id"], json!(id));
}

#[tokio::test]
async fn erasure_history_and_tombstones_hold_on_postgres_too() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!("skipped: CENTRALINO_TEST_POSTGRES is not set");
        return;
    };
    let platforms = Platforms::start().await;
    platforms
        .x
        .add_user(X_ID, HANDLE, "Mario Piantato", "token-mario");
    let store = crate::store::fresh_postgres_database(&base).await;
    let host = platforms.host(&store, "host-a").await;
    let (_, tweet) = host
        .mention(
            &platforms.x,
            (X_ID, HANDLE),
            &format!("@TIM_Official {PLANTED}"),
        )
        .await;
    let messenger = host.messenger(PSID, MID, PLANTED, now_ms()).await;
    let id = host.customer_of("twitter", X_ID).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    host.link(&id, "facebook", PSID).await;
    let (status, page) = host
        .api(
            "GET",
            &format!("/api/v1/customers/{id}/history?limit=1"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = host
        .api(
            "GET",
            &format!("/api/v1/customers/{id}/history?limit=5&after={next}"),
            None,
        )
        .await;
    assert_eq!(rest["messages"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], json!(null));
    let messages = host.host.store().message_count("default").await.unwrap();

    let (status, erasure) = host
        .api("DELETE", &format!("/api/v1/customers/{id}"), None)
        .await;
    assert_eq!(status, 200, "{erasure}");
    for conversation in host.host.store().conversations("default").await.unwrap() {
        assert_eq!(conversation.customer_id, "erased");
        let (_, messages) = host
            .api(
                "GET",
                &format!("/api/v1/conversations/{}/messages", conversation.id),
                None,
            )
            .await;
        let text = messages.to_string();
        for needle in [PLANTED, X_ID, HANDLE, PSID, MID] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
    }
    // Through a second host on the same database too, redeliveries bring nothing back.
    let other = platforms.host(&store, "host-b").await;
    other.redeliver_tweet(&tweet).await;
    other.redeliver_messenger(&messenger).await;
    assert_eq!(
        other.host.store().message_count("default").await.unwrap(),
        messages
    );
    let (status, _) = other
        .api(
            "GET",
            &format!("/api/v1/customers?channel=twitter&platform_id={X_ID}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}
