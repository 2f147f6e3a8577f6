//! A webhook delivery on SQLite is one transaction: its messages, their events and the
//! routing outcome commit together. When that commit fails, nothing is stored, the
//! platform is told to retry, and the routing engine forgets what it decided, so an
//! operator's seat taken by the lost delivery is free again. Deliveries that wait while
//! another is written share one commit, and one of them that fails is rolled back alone.

use std::collections::BTreeMap;

use centralino::Host;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::{ConversationStatus, Ingested};
use centralino::types::{
    AccountConfig, ConnectorConfig, Presence, WebhookRequest, WebhookResponse,
};
use centralino_emulators::GraphApi;
use centralino_emulators::webhooks::{facebook_delivery_headers, messenger_text};
use sqlx::Connection as _;

use crate::component;
use crate::routing::chain;

const APP_SECRET: &str = "fb-app-secret";
const PAGE: &str = "5001";

fn facebook(graph: &GraphApi) -> ConnectorSpec {
    let credentials = BTreeMap::from([(
        "tim-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token-tim"),
        },
    )]);
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: PAGE.to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("tim-page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secret("app_secret".to_string(), Secret::new(APP_SECRET))
        .secret("verify_token".to_string(), Secret::new("verify-me"));
    spec.brands.insert(PAGE.to_string(), "tim".to_string());
    spec
}

fn delivery(psid: &str, mid: &str, text: &str) -> WebhookRequest {
    signed(&messenger_text(PAGE, psid, mid, text, 1_795_856_400_000))
}

/// `envelope` as Meta posts it, signed with the app secret.
fn signed(envelope: &serde_json::Value) -> WebhookRequest {
    let body = serde_json::to_vec(envelope).unwrap();
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: facebook_delivery_headers(APP_SECRET, &body),
        body,
    }
}

/// A host on a fresh SQLite file with the `facebook` connector and one operator, `anna`,
/// with `seats` seats for TIM's Italian customers; and a second connection to the same
/// file, as another process would have.
struct Setup {
    _dir: tempfile::TempDir,
    _graph: GraphApi,
    host: Host,
    db: sqlx::SqliteConnection,
}

async fn setup(seats: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let graph = GraphApi::start().await.unwrap();
    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await).build();
    engine
        .add_operator(
            Operator::new("anna", seats)
                .skills(["tim"])
                .languages(["it"]),
            Presence::Online,
        )
        .await;
    let host = Host::builder()
        .store(url.clone())
        .connector(facebook(&graph))
        .routing(engine)
        .build()
        .await
        .unwrap();
    let db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    Setup {
        _dir: dir,
        _graph: graph,
        host,
        db,
    }
}

/// Delivers customer `psid`'s message `text` in a task of its own.
fn send(
    host: &Host,
    psid: &str,
    text: &str,
) -> tokio::task::JoinHandle<(WebhookResponse, Vec<Ingested>)> {
    send_message(host, psid, &format!("m_{psid}"), text)
}

/// Delivers customer `psid`'s message `mid` in a task of its own.
fn send_message(
    host: &Host,
    psid: &str,
    mid: &str,
    text: &str,
) -> tokio::task::JoinHandle<(WebhookResponse, Vec<Ingested>)> {
    let host = host.clone();
    let request = delivery(psid, mid, text);
    tokio::spawn(async move {
        host.deliver_webhook_stored("default", "facebook", request)
            .await
    })
}

/// `anna`'s load as the routing engine counts it.
async fn anna_load(host: &Host) -> Option<u32> {
    host.with_routing("default", |engine| {
        engine.roster().state("anna").map(|s| s.load)
    })
    .await
    .unwrap()
}

/// Holds the tenant's routing lock for 3 s (a routing change, on a thread of its own), so
/// the deliveries that arrive meanwhile wait for it together; returns once it is held.
async fn hold_routing(host: &Host) -> tokio::task::JoinHandle<Result<(), centralino::Error>> {
    let holder = {
        let host = host.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(host.with_routing("default", |_| {
                std::thread::sleep(std::time::Duration::from_secs(3));
            }))
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    holder
}

/// Sends `sends` (psid, mid, text) one after another while the routing lock is held, so
/// they are written in one or two groups in this order; returns each one's stored message
/// with its psid, once every one was answered 200.
async fn send_in_groups<'s>(
    host: &Host,
    sends: &[(&'s str, &'s str, &'s str)],
) -> Vec<(&'s str, Ingested)> {
    let holder = hold_routing(host).await;
    let mut waiting = Vec::new();
    for (psid, mid, text) in sends {
        waiting.push(send_message(host, psid, mid, text));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    holder.await.unwrap().unwrap();
    let mut outcomes = Vec::new();
    for ((psid, mid, _), handle) in sends.iter().zip(waiting) {
        let (response, stored) = handle.await.unwrap();
        assert_eq!(response.status, 200, "{mid} is answered");
        assert_eq!(stored.len(), 1);
        outcomes.push((*psid, stored.into_iter().next().unwrap()));
    }
    let metrics = crate::metrics::parse(&host.metrics_text().await).unwrap();
    let tenant = [("tenant", "default")];
    assert_eq!(
        metrics.value("centralino_webhook_commit_deliveries_sum", &tenant),
        sends.len() as f64
    );
    assert!(
        metrics.value("centralino_webhook_commit_deliveries_count", &tenant) <= 2.0,
        "the deliveries waited together"
    );
    outcomes
}

/// The CRM events held in the store, by type, oldest first: (type, conversation).
async fn events(db: &mut sqlx::SqliteConnection) -> Vec<(String, String)> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT payload FROM crm_events ORDER BY seq")
        .fetch_all(db)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(payload,)| {
            let event: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (
                event["type"].as_str().unwrap_or_default().to_string(),
                event["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_delivery_whose_commit_fails_stores_nothing_and_its_routing_is_undone() {
    // One seat: whoever holds it decides where the next customer goes.
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(1).await;

    // The second connection makes the delivery's commit fail after routing decided: a
    // deferred foreign key, broken by a trigger on the assignment's CRM event, is only
    // checked when the transaction commits.
    for statement in [
        "CREATE TABLE poison (conversation TEXT
            REFERENCES conversations (id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER poison AFTER INSERT ON crm_events
            WHEN new.payload LIKE '%conversation-assigned%'
            BEGIN INSERT INTO poison VALUES ('no such conversation'); END",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }

    let (response, stored) = host
        .deliver_webhook_stored("default", "facebook", delivery("701", "m_mario_1", "ciao"))
        .await;
    assert_eq!(response.status, 503, "the platform is told to retry");
    assert!(stored.is_empty());
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);
    assert!(
        host.store()
            .conversations("default")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(events(&mut db).await.is_empty(), "no event for the CRM");
    let (load, open) = host
        .with_routing("default", |engine| {
            let load = engine.roster().state("anna").map(|s| s.load);
            (
                load,
                engine
                    .conversations()
                    .iter()
                    .filter(|c| c.is_open())
                    .count(),
            )
        })
        .await
        .unwrap();
    assert_eq!(
        load,
        Some(0),
        "the seat the lost delivery took is free again"
    );
    assert_eq!(open, 0, "the engine forgot the conversation it opened");

    sqlx::query("DROP TRIGGER poison")
        .execute(&mut db)
        .await
        .unwrap();

    // Another customer writes meanwhile and gets the free seat.
    let (response, lucia) = host
        .deliver_webhook_stored("default", "facebook", delivery("702", "m_lucia_1", "salve"))
        .await;
    assert_eq!(response.status, 200);
    let lucia = &lucia[0].conversation_id;
    // The platform retries the first delivery: stored once now, and it waits.
    let (response, mario) = host
        .deliver_webhook_stored("default", "facebook", delivery("701", "m_mario_1", "ciao"))
        .await;
    assert_eq!(response.status, 200);
    assert!(!mario[0].duplicate, "the failed attempt stored nothing");
    let mario = &mario[0].conversation_id;

    let store = host.store();
    assert_eq!(store.message_count("default").await.unwrap(), 2);
    let lucia_record = store.conversation("default", lucia).await.unwrap().unwrap();
    assert_eq!(lucia_record.status, ConversationStatus::Assigned);
    assert_eq!(lucia_record.assignee.as_deref(), Some("anna"));
    let mario_record = store.conversation("default", mario).await.unwrap().unwrap();
    assert_eq!(mario_record.status, ConversationStatus::Waiting);
    assert_eq!(mario_record.assignee, None);
    assert_eq!(
        events(&mut db).await,
        vec![
            ("message-received".to_string(), lucia.to_string()),
            ("conversation-assigned".to_string(), lucia.to_string()),
            ("message-received".to_string(), mario.to_string()),
            ("conversation-queued".to_string(), mario.to_string()),
        ],
        "the CRM hears of each message and each decision once"
    );
    let load = anna_load(&host).await;
    assert_eq!(load, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_wait_share_one_commit_and_one_that_fails_is_rolled_back_alone() {
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(10).await;

    // A message saying `veleno` cannot be stored.
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN new.text = 'veleno'
         BEGIN SELECT RAISE(ABORT, 'poisoned message'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let holder = hold_routing(&host).await;
    let texts = ["ciao", "salve", "veleno", "buongiorno", "ehi", "aiuto"];
    let waiting: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| send(&host, &format!("70{i}"), text))
        .collect();
    holder.await.unwrap().unwrap();

    let mut conversations = Vec::new();
    for (text, handle) in texts.iter().zip(waiting) {
        let (response, stored) = handle.await.unwrap();
        if *text == "veleno" {
            assert_eq!(
                response.status, 503,
                "the poisoned delivery is told to retry"
            );
            assert!(stored.is_empty());
        } else {
            assert_eq!(response.status, 200, "`{text}` is stored");
            assert_eq!(stored.len(), 1);
            conversations.push(stored[0].conversation_id.clone());
        }
    }
    // Five deliveries made durable by one commit (two, should the plugin have been
    // slower than the routing change with some of them).
    let metrics = crate::metrics::parse(&host.metrics_text().await).unwrap();
    let tenant = [("tenant", "default")];
    let commits = metrics.value("centralino_webhook_commit_deliveries_count", &tenant);
    assert!((1.0..=2.0).contains(&commits), "{commits} commits");
    assert_eq!(
        metrics.value("centralino_webhook_commit_deliveries_sum", &tenant),
        5.0
    );

    let store = host.store();
    assert_eq!(store.message_count("default").await.unwrap(), 5);
    for id in &conversations {
        let record = store.conversation("default", id).await.unwrap().unwrap();
        assert_eq!(record.status, ConversationStatus::Assigned);
        assert_eq!(record.assignee.as_deref(), Some("anna"));
    }
    let mut expected: Vec<(String, String)> = Vec::new();
    let events = events(&mut db).await;
    for id in &conversations {
        expected.push(("message-received".to_string(), id.to_string()));
        expected.push(("conversation-assigned".to_string(), id.to_string()));
    }
    let mut sorted = events.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "each stored message and decision once, nothing of the poisoned one"
    );
    let (load, open) = host
        .with_routing("default", |engine| {
            let load = engine.roster().state("anna").map(|s| s.load);
            let open = engine
                .conversations()
                .iter()
                .filter(|c| c.is_open())
                .count();
            (load, open)
        })
        .await
        .unwrap();
    assert_eq!(load, Some(5), "the poisoned delivery holds no seat");
    assert_eq!(open, 5);

    // Once the store takes it, the platform's retry is stored and routed.
    sqlx::query("DROP TRIGGER poison")
        .execute(&mut db)
        .await
        .unwrap();
    let (response, stored) = send(&host, "702", "veleno").await.unwrap();
    assert_eq!(response.status, 200);
    assert!(!stored[0].duplicate, "the failed attempt stored nothing");
    assert_eq!(store.message_count("default").await.unwrap(), 6);
    let load = anna_load(&host).await;
    assert_eq!(load, Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_waits_for_another_process_writing_to_the_database_instead_of_failing() {
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(1).await;

    // The other connection (an admin's shell, a command of the CLI) holds the write lock.
    crate::support::hold_write_lock(&mut db).await;
    let delivering = send(&host, "701", "ciao");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!delivering.is_finished(), "the delivery waits for the lock");
    sqlx::query("COMMIT").execute(&mut db).await.unwrap();

    let (response, stored) = delivering.await.unwrap();
    assert_eq!(response.status, 200, "stored once the other writer is done");
    assert_eq!(stored.len(), 1);
    let record = host
        .store()
        .conversation("default", &stored[0].conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.assignee.as_deref(), Some("anna"));
}

/// A delivery that carries a customer's message and, after it, the customer unsending it:
/// on SQLite such a delivery is written at once (its deletion names a message of its
/// own), not after routing as a delivery of messages alone is; both ways end the same.
#[tokio::test]
async fn a_message_unsent_in_its_own_delivery_is_stored_deleted_and_its_conversation_still_routed()
{
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(1).await;
    let mut envelope = messenger_text(
        PAGE,
        "703",
        "m_gino_1",
        "il mio IBAN è IT60X",
        1_795_856_400_000,
    );
    let unsent = serde_json::json!({
        "sender": { "id": "703" }, "recipient": { "id": PAGE },
        "timestamp": 1_795_856_460_000u64,
        "message": { "mid": "m_gino_1", "is_deleted": true }
    });
    envelope["entry"][0]["messaging"]
        .as_array_mut()
        .unwrap()
        .push(unsent);

    let (response, stored) = host
        .deliver_webhook_stored("default", "facebook", signed(&envelope))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(stored.len(), 1, "a deletion is not a message: {stored:?}");
    let conversation = stored[0].conversation_id.to_string();
    let store = host.store();
    let messages = store.messages("default", &conversation).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.text, "", "the unsent text is not kept");
    assert_eq!(messages[0].deleted_at, Some(1_795_856_460_000));
    let record = store
        .conversation("default", &conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConversationStatus::Assigned);
    assert_eq!(record.assignee.as_deref(), Some("anna"));
    assert_eq!(
        events(&mut db).await,
        vec![
            ("message-received".to_string(), conversation.clone()),
            ("message-deleted".to_string(), conversation.clone()),
            ("conversation-assigned".to_string(), conversation),
        ]
    );
}

/// In a group the store reads a delivery while the one before it is routed, ahead of that
/// one's writes, but only when the two share nothing: a second message on a thread still
/// joins the conversation the first opened, and a redelivery is still a duplicate, in
/// whatever order the plugin queued them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_one_thread_in_one_group_join_one_conversation_and_a_redelivery_is_a_duplicate()
 {
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(10).await;

    // Gino writes twice (his thread), Meta delivers his first message again, and two
    // other customers write once, queued in this order (each delivery leaves the plugin
    // well before the next arrives), so each of Gino's deliveries follows another of his.
    // The assertions hold in any order.
    let outcomes = send_in_groups(
        &host,
        &[
            ("710", "m_gino_1", "buongiorno"),
            ("710", "m_gino_2", "la fibra non va"),
            ("710", "m_gino_1", "buongiorno"),
            ("711", "m_lia_1", "ciao"),
            ("712", "m_ugo_1", "salve"),
        ],
    )
    .await;

    let gino: Vec<&Ingested> = outcomes
        .iter()
        .filter(|(psid, _)| *psid == "710")
        .map(|(_, i)| i)
        .collect();
    assert!(
        gino.iter()
            .all(|i| i.conversation_id == gino[0].conversation_id),
        "Gino's messages are one conversation: {gino:?}"
    );
    assert_eq!(
        gino.iter().filter(|i| i.new_conversation).count(),
        1,
        "one of Gino's messages opened it"
    );
    let first: Vec<&&Ingested> = gino
        .iter()
        .filter(|i| i.external_id == "m_gino_1")
        .collect();
    assert_eq!(
        first.iter().filter(|i| i.duplicate).count(),
        1,
        "one of the two deliveries of m_gino_1 is the duplicate"
    );
    assert_eq!(first[0].message_id, first[1].message_id);

    let store = host.store();
    assert_eq!(store.message_count("default").await.unwrap(), 4);
    let conversations: std::collections::BTreeSet<String> = outcomes
        .iter()
        .map(|(.., i)| i.conversation_id.to_string())
        .collect();
    assert_eq!(conversations.len(), 3);
    for id in &conversations {
        let record = store.conversation("default", id).await.unwrap().unwrap();
        assert_eq!(record.assignee.as_deref(), Some("anna"));
    }
    let events = events(&mut db).await;
    let count = |kind: &str| events.iter().filter(|(t, _)| t == kind).count();
    assert_eq!(count("message-received"), 4);
    assert_eq!(count("conversation-assigned"), 3);
    let load = anna_load(&host).await;
    assert_eq!(load, Some(3));
}

/// A delivery that shares nothing with the one before it but a thread or a message with
/// an earlier one of its group is read after that one's writes, not beside the writer on
/// what is committed: Bea's second message joins the conversation her first opened two
/// deliveries before, and Dan's redelivered message is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_meeting_an_earlier_one_of_its_group_is_read_after_its_writes() {
    let Setup {
        _dir,
        _graph,
        host,
        db: _db,
    } = setup(10).await;

    let outcomes = send_in_groups(
        &host,
        &[
            ("730", "m_bea_1", "buongiorno"),
            ("731", "m_dan_1", "salve"),
            ("730", "m_bea_2", "la linea cade"),
            ("732", "m_eva_1", "ciao"),
            ("731", "m_dan_1", "salve"),
        ],
    )
    .await;
    let of = |who: &str| -> Vec<&Ingested> {
        outcomes
            .iter()
            .filter(|(psid, _)| *psid == who)
            .map(|(_, i)| i)
            .collect()
    };
    let bea = of("730");
    assert_eq!(bea[0].conversation_id, bea[1].conversation_id, "{bea:?}");
    assert!(bea[0].new_conversation && !bea[1].new_conversation);
    let dan = of("731");
    assert!(!dan[0].duplicate && dan[1].duplicate, "{dan:?}");
    assert_eq!(dan[0].message_id, dan[1].message_id);
    assert_eq!(host.store().message_count("default").await.unwrap(), 4);
    assert_eq!(anna_load(&host).await, Some(3));
}

/// Routing in a group that reads ahead still takes up a conversation the store has open and
/// the engine has not seen (here one another process wrote: an import from the CRM's
/// previous system): the stored state is read when routing needs it, and the message joins
/// it as the assigned conversation it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_another_process_wrote_is_taken_up_by_a_group_that_reads_ahead() {
    let Setup {
        _dir,
        _graph,
        host,
        mut db,
    } = setup(10).await;
    let (response, first) = send_message(&host, "799", "m_ada_1", "ciao").await.unwrap();
    assert_eq!(response.status, 200);
    // Rita's thread, assigned to anna, written beside the host: its row shaped like Ada's.
    sqlx::query(
        "INSERT INTO conversations (id, tenant, channel, account, thread_key, customer_id,
             customer_handle, kind, status, assignee, priority, created_at, updated_at,
             assigned_at)
         SELECT 'imported-rita', tenant, channel, account, replace(thread_key, '799', '720'),
             customer_id, NULL, kind, 'assigned', 'anna', 0, created_at, updated_at, created_at
         FROM conversations WHERE id = ?",
    )
    .bind(first[0].conversation_id.to_string())
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(
        anna_load(&host).await,
        Some(1),
        "the engine has not seen it"
    );

    let holder = hold_routing(&host).await;
    let rita = send_message(&host, "720", "m_rita_1", "di nuovo io");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let leo = send_message(&host, "721", "m_leo_1", "salve");
    holder.await.unwrap().unwrap();
    let (response, rita) = rita.await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        rita[0].conversation_id, "imported-rita",
        "Rita's message joins it"
    );
    assert!(!rita[0].new_conversation);
    let (response, leo) = leo.await.unwrap();
    assert_eq!(response.status, 200);
    assert!(leo[0].new_conversation);

    // Taken up with its assignee: Rita's message joined an assigned conversation (no
    // decision, no assignment for the CRM), and anna holds it beside Ada's and Leo's.
    let events = events(&mut db).await;
    let assigned = |id: &str| {
        events
            .iter()
            .filter(|(t, c)| t == "conversation-assigned" && c == id)
            .count()
    };
    assert_eq!(assigned("imported-rita"), 0, "{events:?}");
    assert_eq!(assigned(&leo[0].conversation_id), 1);
    assert_eq!(anna_load(&host).await, Some(3));
    let record = host
        .store()
        .conversation("default", "imported-rita")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConversationStatus::Assigned);
    assert_eq!(record.assignee.as_deref(), Some("anna"));
}
