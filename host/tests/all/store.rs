//! The durable store on SQLite: deduplication, threading, tenants, cursors.

use centralino::store::{ConversationStatus, Store};
use centralino::types::{Message, MessageKind, Person};

fn message(id: &str, account: &str, thread: &str, author: &str, text: &str) -> Message {
    Message {
        external_id: id.to_string(),
        account: account.to_string(),
        conversation_key: thread.to_string(),
        author: Person {
            id: author.to_string(),
            handle: Some(format!("user{author}")),
            display_name: None,
        },
        text: text.to_string(),
        kind: MessageKind::PublicPost,
        in_reply_to: None,
        attachments: Vec::new(),
        created_at: 1_795_856_400_000,
        extra: vec![("lang".to_string(), "it".to_string())],
    }
}

/// A store for one test: SQLite in a temporary folder, or a fresh PostgreSQL database.
pub struct TestStore {
    pub store: Store,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server the suite may use (`cargo xtask test` starts one and sets it).
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("CENTRALINO_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() && std::env::var_os("CI").is_some() {
        panic!(
            "CENTRALINO_TEST_POSTGRES is not set: in CI the store tests must also run on PostgreSQL"
        );
    }
    url
}

/// A fresh, empty PostgreSQL database on the test server; its URL.
pub async fn fresh_postgres_database(base: &str) -> String {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    let name = format!("centralino_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// The store on every backend available: SQLite always, PostgreSQL when configured.
pub async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let mut stores = vec![TestStore {
        store: Store::open(&url).await.unwrap(),
        backend: "sqlite",
        _dir: Some(dir),
    }];
    if let Some(base) = postgres_url() {
        let url = fresh_postgres_database(&base).await;
        stores.push(TestStore {
            store: Store::open(&url).await.unwrap(),
            backend: "postgres",
            _dir: None,
        });
    }
    stores
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing() {
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        let m = message(
            "1860000000000000001",
            "1001",
            "t:1",
            "42",
            "il mio modem non va",
        );
        let first = store
            .ingest("default", "twitter", std::slice::from_ref(&m))
            .await
            .unwrap();
        let second = store.ingest("default", "twitter", &[m]).await.unwrap();
        assert!(!first[0].duplicate && first[0].new_conversation);
        assert!(second[0].duplicate);
        assert_eq!(second[0].message_id, first[0].message_id);
        assert_eq!(second[0].conversation_id, first[0].conversation_id);
        assert_eq!(store.message_count("default").await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_customer_message_in_an_open_thread_joins_its_conversation() {
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        let a = message("1", "1001", "t:1", "42", "il mio modem non va");
        let b = message("2", "1001", "t:1", "42", "ancora niente");
        // The same thread reaching another account (a reply to an operator) still joins it.
        let c = message("3", "2002", "t:1", "42", "grazie @TIM_Marco");
        let other = message("4", "1001", "t:9", "77", "fattura doppia");
        let out = store
            .ingest("default", "twitter", &[a, b, c, other])
            .await
            .unwrap();
        assert_eq!(out[0].conversation_id, out[1].conversation_id);
        assert_eq!(out[0].conversation_id, out[2].conversation_id);
        assert_ne!(out[0].conversation_id, out[3].conversation_id);
        assert_eq!(out.iter().filter(|o| o.new_conversation).count(), 2);

        let conversation = store
            .conversation("default", &out[0].conversation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conversation.status, ConversationStatus::Open);
        assert_eq!(conversation.account, "1001");
        assert_eq!(conversation.customer_id, "42");
        let messages = store
            .messages("default", &out[0].conversation_id)
            .await
            .unwrap();
        let texts: Vec<_> = messages.iter().map(|m| m.message.text.as_str()).collect();
        assert_eq!(
            texts,
            ["il mio modem non va", "ancora niente", "grazie @TIM_Marco"]
        );
        assert_eq!(
            messages[0].message.extra,
            vec![("lang".to_string(), "it".to_string())]
        );
        assert_eq!(messages[0].direction, "inbound");
    }
}

#[tokio::test]
async fn tenants_never_see_each_others_data() {
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        // Same channel, same account id, same thread and message id in two tenants.
        let m = message("1", "1001", "t:1", "42", "ciao");
        let a = store
            .ingest("acme", "twitter", std::slice::from_ref(&m))
            .await
            .unwrap();
        let b = store.ingest("globex", "twitter", &[m]).await.unwrap();
        assert!(!a[0].duplicate && !b[0].duplicate);
        assert_ne!(a[0].conversation_id, b[0].conversation_id);
        assert!(
            store
                .conversation("globex", &a[0].conversation_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .messages("globex", &a[0].conversation_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.conversations("acme").await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_poll_cursor_advances_with_the_messages_it_covers() {
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        assert_eq!(
            store.cursor("default", "twitter", "1001").await.unwrap(),
            None
        );
        let m = message("10", "1001", "t:10", "42", "ciao");
        store
            .ingest_polled("default", "twitter", "1001", &[m], Some("10"))
            .await
            .unwrap();
        assert_eq!(
            store
                .cursor("default", "twitter", "1001")
                .await
                .unwrap()
                .as_deref(),
            Some("10")
        );
        store
            .ingest_polled("default", "twitter", "1001", &[], Some("12"))
            .await
            .unwrap();
        assert_eq!(
            store
                .cursor("default", "twitter", "1001")
                .await
                .unwrap()
                .as_deref(),
            Some("12")
        );
        assert_eq!(
            store.cursor("other", "twitter", "1001").await.unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn the_store_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let id = {
        let store = Store::open(&url).await.unwrap();
        store
            .ingest(
                "default",
                "twitter",
                &[message("1", "1001", "t:1", "42", "ciao")],
            )
            .await
            .unwrap()[0]
            .conversation_id
            .clone()
    };
    let store = Store::open(&url).await.unwrap();
    assert!(store.conversation("default", &id).await.unwrap().is_some());
    let again = store
        .ingest(
            "default",
            "twitter",
            &[message("1", "1001", "t:1", "42", "ciao")],
        )
        .await
        .unwrap();
    assert!(again[0].duplicate);
}

#[tokio::test]
async fn an_unknown_store_url_is_refused_with_the_expected_forms() {
    let err = Store::open("mysql://localhost/db").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "store URL `mysql://localhost/db`: expected `sqlite://…`, `sqlite::memory:` or `postgres://…`"
    );
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_is_named_without_its_credentials() {
    // A URL that does not parse, with a password in both places a URL can hold one.
    let err =
        Store::open("postgres://care:hunter2@db.example:notaport/centralino?password=hunter3")
            .await
            .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("opening the store at postgres://***@db.example:notaport/centralino?***"),
        "{text}"
    );
    assert!(!text.contains("hunter"), "{text}");
    let err = Store::open("mysql://root:hunter2@db/x?password=hunter3")
        .await
        .unwrap_err();
    assert!(!format!("{err:#}").contains("hunter"), "{err:#}");
    // A real server refusing the password.
    if let Some(base) = postgres_url() {
        let (_, rest) = base.split_once('@').unwrap();
        let url = format!("postgres://centralino@{rest}?password=hunter4");
        let err = Store::open(&url).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("opening the store at postgres://***@"),
            "{text}"
        );
        assert!(!text.contains("hunter"), "{text}");
    }
}

fn reply(key: &str, text: &str) -> centralino::types::OutboundMessage {
    centralino::types::OutboundMessage {
        account: "2001".to_string(),
        conversation_key: "t:1".to_string(),
        kind: MessageKind::PublicPost,
        recipient: None,
        in_reply_to: Some("1".to_string()),
        text: text.to_string(),
        attachments: Vec::new(),
        idempotency_key: key.to_string(),
    }
}

#[tokio::test]
async fn a_reply_is_stored_once_per_idempotency_key_and_sent_once() {
    use centralino::store::OutboxStatus;
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        let conversation = store
            .ingest(
                "default",
                "twitter",
                &[message("1", "1001", "t:1", "42", "ciao")],
            )
            .await
            .unwrap()[0]
            .conversation_id
            .clone();
        let (entry, new) = store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k1", "eccomi"),
            )
            .await
            .unwrap();
        let (again, new_again) = store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k1", "eccomi"),
            )
            .await
            .unwrap();
        assert!(new && !new_again);
        assert_eq!(entry.id, again.id);

        let claimed = store.claim_outbox("host-a", 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].status, OutboxStatus::Sending);
        assert!(
            store.claim_outbox("host-b", 10).await.unwrap().is_empty(),
            "a claimed reply is not claimed twice"
        );

        store
            .outbox_sent(&claimed[0], "1860000000000000099", 1_795_856_460_000)
            .await
            .unwrap();
        let sent = store
            .outbox_entry("default", &entry.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.status, OutboxStatus::Sent);
        assert_eq!(sent.external_id.as_deref(), Some("1860000000000000099"));
        let messages = store.messages("default", &conversation).await.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].direction, "outbound");
        assert_eq!(messages[1].message.author.id, "marco");
        let record = store
            .conversation("default", &conversation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.first_response_at, Some(1_795_856_460_000));
        assert!(store.claim_outbox("host-a", 10).await.unwrap().is_empty());

        // Pruning takes the sent reply, and neither a reply still to send nor events not
        // yet delivered (no CRM has taken them here), nor any message.
        let (waiting, _) = store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k2", "ancora io"),
            )
            .await
            .unwrap();
        let pruned = store
            .prune(centralino::clock::now_ms() + 1_000)
            .await
            .unwrap();
        assert_eq!((pruned.events, pruned.replies), (0, 1), "{backend}");
        assert!(
            store
                .outbox_entry("default", &entry.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .outbox_entry("default", &waiting.id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .messages("default", &conversation)
                .await
                .unwrap()
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn a_failed_send_keeps_its_reason_and_is_retried_only_when_temporary() {
    use centralino::store::OutboxStatus;
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        let conversation = store
            .ingest(
                "default",
                "twitter",
                &[message("1", "1001", "t:1", "42", "ciao")],
            )
            .await
            .unwrap()[0]
            .conversation_id
            .clone();
        store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k1", "uno"),
            )
            .await
            .unwrap();
        store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k2", "due"),
            )
            .await
            .unwrap();
        let claimed = store.claim_outbox("host-a", 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        // k1: temporary, due again now; k2: refused for good.
        let (k1, k2) = if claimed[0].message.idempotency_key == "k1" {
            (&claimed[0], &claimed[1])
        } else {
            (&claimed[1], &claimed[0])
        };
        store
            .outbox_failed(k1, "transient failure: 503", Some(0))
            .await
            .unwrap();
        store
            .outbox_failed(k2, "rejected: duplicate content", None)
            .await
            .unwrap();
        let retried = store.claim_outbox("host-a", 10).await.unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].message.idempotency_key, "k1");
        assert_eq!(retried[0].attempts, 2);
        let failed = store
            .outbox_entry("default", &k2.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.status, OutboxStatus::Failed);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("rejected: duplicate content")
        );
    }
}

#[tokio::test]
async fn replies_caught_mid_send_by_a_crash_are_reported_not_resent() {
    use centralino::store::OutboxStatus;
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        let conversation = store
            .ingest(
                "default",
                "twitter",
                &[message("1", "1001", "t:1", "42", "ciao")],
            )
            .await
            .unwrap()[0]
            .conversation_id
            .clone();
        store
            .enqueue_reply(
                "default",
                "twitter",
                &conversation,
                "marco",
                &reply("k1", "uno"),
            )
            .await
            .unwrap();
        let claimed = store.claim_outbox("host-a", 10).await.unwrap();
        // host-a dies here; on restart it reconciles.
        let uncertain = store.reconcile_outbox(Some("host-a")).await.unwrap();
        assert_eq!(uncertain.len(), 1);
        assert_eq!(uncertain[0].id, claimed[0].id);
        assert_eq!(uncertain[0].status, OutboxStatus::Uncertain);
        assert!(store.claim_outbox("host-a", 10).await.unwrap().is_empty());
    }
}

// ---- text PostgreSQL cannot hold (issue 13, item 9) ----

/// A store URL on every backend available, each with what keeps it alive.
async fn store_urls() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let mut urls = vec![("sqlite", url, Some(dir))];
    if let Some(base) = postgres_url() {
        urls.push(("postgres", fresh_postgres_database(&base).await, None));
    }
    urls
}

/// A post by `author` mentioning `@TIM_Official` (`1001`).
fn mention_of_tim(id: &str, author: (&str, &str, &str), text: &str) -> serde_json::Value {
    let (author_id, handle, name) = author;
    serde_json::json!({
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "id_str": id,
        "text": text,
        "user": { "id_str": author_id, "screen_name": handle, "name": name },
        "entities": { "user_mentions": [{ "id_str": "1001", "screen_name": "TIM_Official" }] }
    })
}

#[tokio::test]
async fn a_signed_delivery_with_nul_in_a_message_is_stored_byte_exact_with_its_whole_batch() {
    use centralino::capabilities::{Grants, Secret};
    use centralino::connectors::ConnectorSpec;
    use centralino::types::{AccountConfig, ConnectorConfig};

    const SECRET: &str = "x-consumer-secret";
    // U+0000 where PostgreSQL refuses it, next to the store's own escape character.
    let poisoned = "il modem\u{0}non va \u{FDD0}0 \u{FDD0}\u{FDD0} \\u0000 \u{0}";
    let body = serde_json::to_vec(&serde_json::json!({
        "for_user_id": "1001",
        "tweet_create_events": [
            mention_of_tim("1860000000000000001", ("42", "mario_rossi", "Mario"), "@TIM_Official prima"),
            mention_of_tim("1860000000000000002", ("43", "anna\u{0}b", "Anna\u{0}Bianchi"), poisoned),
            mention_of_tim("1860000000000000003", ("44", "luca_v", "Luca"), "@TIM_Official terza"),
        ]
    }))
    .unwrap();
    assert!(
        std::str::from_utf8(&body).unwrap().contains("\\u0000"),
        "the delivery carries NUL as JSON's \\u0000"
    );
    for (backend, url, _dir) in store_urls().await {
        eprintln!("backend: {backend}");
        let mut spec = ConnectorSpec::new(
            "twitter",
            crate::component("twitter"),
            ConnectorConfig {
                settings: Vec::new(),
                accounts: vec![AccountConfig {
                    id: "1001".to_string(),
                    handle: Some("TIM_Official".to_string()),
                    ..AccountConfig::default()
                }],
            },
        );
        spec.grants = Grants::default().secret("consumer_secret".to_string(), Secret::new(SECRET));
        let host = centralino::Host::builder()
            .store(url)
            .connector(spec)
            .build()
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/webhooks/twitter", listener.local_addr().unwrap());
        let serving = host.clone();
        let server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
        let client = reqwest::Client::new();
        // Delivered twice, as platforms do: stored once, acknowledged both times.
        for _ in 0..2 {
            let mut request = client.post(&hook).body(body.clone());
            for (name, value) in
                centralino_emulators::webhooks::twitter_delivery_headers(SECRET, &body)
            {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{backend}");
        }
        let store = host.store();
        assert_eq!(
            store.message_count("default").await.unwrap(),
            3,
            "{backend}"
        );
        let mut stored = Vec::new();
        for conversation in store.conversations("default").await.unwrap() {
            for message in store.messages("default", &conversation.id).await.unwrap() {
                stored.push((conversation.clone(), message.message));
            }
        }
        stored.sort_by(|(_, a), (_, b)| a.external_id.cmp(&b.external_id));
        let texts: Vec<&str> = stored.iter().map(|(_, m)| m.text.as_str()).collect();
        assert_eq!(
            texts,
            ["@TIM_Official prima", poisoned, "@TIM_Official terza"],
            "{backend}"
        );
        let (conversation, anna) = &stored[1];
        assert_eq!(
            anna.author.handle.as_deref(),
            Some("anna\u{0}b"),
            "{backend}"
        );
        assert_eq!(
            anna.author.display_name.as_deref(),
            Some("Anna\u{0}Bianchi"),
            "{backend}"
        );
        assert_eq!(
            conversation.customer_handle.as_deref(),
            Some("anna\u{0}b"),
            "{backend}"
        );
        server.abort();
    }
}

/// Two hosts sharing PostgreSQL store messages of the same new thread at the same moment
/// (a customer's DM and its retry reaching both, say): whichever opens the conversation
/// first, the other joins it, and a message both carry is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_storing_the_same_new_thread_at_once_share_one_conversation() {
    let Some(base) = postgres_url() else {
        return;
    };
    let url = fresh_postgres_database(&base).await;
    let (one, two) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
    for round in 0..25 {
        let thread = format!("t:race:{round}");
        let shared = message(&format!("s{round}"), "1001", &thread, "42", "aiuto");
        let ours = [
            message(&format!("a{round}"), "1001", &thread, "42", "il modem"),
            shared.clone(),
        ];
        let theirs = [
            message(&format!("b{round}"), "1001", &thread, "42", "non va"),
            shared,
        ];
        let (ours, theirs) = tokio::join!(
            one.ingest("default", "twitter", &ours),
            two.ingest("default", "twitter", &theirs)
        );
        let outcomes: Vec<_> = ours.unwrap().into_iter().chain(theirs.unwrap()).collect();
        let conversation = &outcomes[0].conversation_id;
        assert!(
            outcomes.iter().all(|o| &o.conversation_id == conversation),
            "round {round}: two conversations for one thread: {outcomes:?}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| o.new_conversation).count(),
            1,
            "round {round}: exactly one message opens the conversation"
        );
        assert_eq!(
            (
                outcomes[1].message_id.as_str(),
                outcomes[1].duplicate as u8 + outcomes[3].duplicate as u8
            ),
            (outcomes[3].message_id.as_str(), 1),
            "round {round}: the message both carried is stored once"
        );
        let stored = one.messages("default", conversation).await.unwrap();
        assert_eq!(stored.len(), 3, "round {round}");
    }
    let open = one.conversations("default").await.unwrap();
    assert_eq!(open.len(), 25);
}

/// A fresh PostgreSQL store (its URL) holding two open conversations (their ids); `None`
/// without a test server.
async fn two_conversations_on_postgres() -> Option<(String, Store, [String; 2])> {
    let base = postgres_url()?;
    let url = fresh_postgres_database(&base).await;
    let store = Store::open(&url).await.unwrap();
    let stored = store
        .ingest(
            "default",
            "twitter",
            &[
                message("1", "1001", "t:1", "42", "il modem non va"),
                message("2", "1001", "t:2", "43", "fattura sbagliata"),
            ],
        )
        .await
        .unwrap();
    let ids = [
        stored[0].conversation_id.to_string(),
        stored[1].conversation_id.to_string(),
    ];
    Some((url, store, ids))
}

/// On PostgreSQL a routing change reads only the conversations changed since the horizon
/// of the one before, and misses none: a write still in progress when that horizon was
/// taken (a reply stamping its first response takes no routing lock) and committed after
/// the change is read by the next change, and once every writer before a horizon has
/// ended, a change from it reads nothing unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_change_reads_what_changed_since_the_last_horizon_and_misses_no_late_commit() {
    use sqlx::Connection as _;
    let Some((url, store, [first, second])) = two_conversations_on_postgres().await else {
        return;
    };
    let (first, second) = (first.as_str(), second.as_str());

    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let read = change.assignments(&[first, second], None).await.unwrap();
    assert_eq!(read.len(), 2, "asked for by id: {read:?}");
    let before = change.horizon();
    change.commit().await.unwrap();

    // Another writer changes the first conversation and has not committed yet.
    let mut writer = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("UPDATE conversations SET first_response_at = 1795856500000 WHERE id = $1")
        .bind(first)
        .execute(&mut writer)
        .await
        .unwrap();
    // A later writer commits before the next horizon is taken (one that began after the
    // first, yet ended first).
    let third = store
        .ingest(
            "default",
            "twitter",
            &[message("3", "1001", "t:3", "44", "nessuna linea")],
        )
        .await
        .unwrap();
    let third = third[0].conversation_id.as_str();

    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let during = change.horizon();
    let read = change.assignments(&[], Some(&before)).await.unwrap();
    assert!(
        read.values().all(|a| a.first_response_at.is_none()),
        "an uncommitted write is not read: {read:?}"
    );
    assert!(read.contains_key(third), "committed since: {read:?}");
    change.commit().await.unwrap();
    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();

    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let last = change.horizon();
    let read = change.assignments(&[], Some(&during)).await.unwrap();
    assert_eq!(
        read.get(first).map(|a| a.first_response_at),
        Some(Some(1_795_856_500_000)),
        "the write running at the horizon and committed after it is read: {read:?}"
    );
    // While the oldest transaction running is near, the horizon reads from its id on:
    // what ended before the horizon but after that began may be read once more.
    change.commit().await.unwrap();

    // Once those that began before the writers ended have ended too (other tests'
    // transactions run on the same server), a change reads nothing from the last
    // horizon on but what it asks for by id.
    let mut last = last;
    let mut quiet = false;
    for _ in 0..100 {
        let mut change = store.begin_routing("default").await.unwrap().unwrap();
        let read = change.assignments(&[], Some(&last)).await.unwrap();
        let asked = change.assignments(&[second], Some(&last)).await.unwrap();
        let next = change.horizon();
        change.commit().await.unwrap();
        assert!(asked.contains_key(second), "asked for by id: {asked:?}");
        if read.is_empty() {
            quiet = true;
            break;
        }
        last = next;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(quiet, "every change read conversations nobody changed");
}

/// On PostgreSQL a transaction left open while many others come and go (a report, a
/// session idle in a transaction) does not hold routing's horizon back: a change reads
/// what changed since the one before, once, and the open transaction's own write when it
/// commits.
#[tokio::test]
async fn a_transaction_left_open_does_not_make_every_routing_change_read_again() {
    use sqlx::Connection as _;
    let Some((url, store, [first, second])) = two_conversations_on_postgres().await else {
        return;
    };
    let (first, second) = (first.as_str(), second.as_str());
    // A report (or a session idle in a transaction) that has an id and stays open.
    let mut report = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut report).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut report)
        .await
        .unwrap();

    // The server moves on while it stays open: many transactions (each of these
    // commits gives out a transaction id).
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "DO $$ BEGIN FOR i IN 1..2000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$",
    )
    .execute(&mut other)
    .await
    .unwrap();

    let change = store.begin_routing("default").await.unwrap().unwrap();
    let one = change.horizon();
    change.commit().await.unwrap();
    sqlx::query("UPDATE conversations SET first_response_at = 1795856500000 WHERE id = $1")
        .bind(first)
        .execute(&mut other)
        .await
        .unwrap();

    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let two = change.horizon();
    let read = change.assignments(&[], Some(&one)).await.unwrap();
    change.commit().await.unwrap();
    assert!(read.contains_key(first), "changed since: {read:?}");

    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let three = change.horizon();
    let read = change.assignments(&[], Some(&two)).await.unwrap();
    change.commit().await.unwrap();
    assert!(
        read.is_empty(),
        "read again while the report stays open: {read:?}"
    );

    // What the long transaction itself wrote is read once it commits.
    sqlx::query("UPDATE conversations SET first_response_at = 1795856600000 WHERE id = $1")
        .bind(second)
        .execute(&mut report)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut report).await.unwrap();
    let mut change = store.begin_routing("default").await.unwrap().unwrap();
    let read = change.assignments(&[], Some(&three)).await.unwrap();
    change.commit().await.unwrap();
    assert_eq!(
        read.get(second).map(|a| a.first_response_at),
        Some(Some(1_795_856_600_000)),
        "the long transaction's own write: {read:?}"
    );
    assert!(!read.contains_key(first), "read once only: {read:?}");
}
