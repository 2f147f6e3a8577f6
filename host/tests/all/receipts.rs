//! Receipts, deletions and edits reach the store and the CRM: Messenger's delivery and read
//! reports move a sent reply's state forward (once per change), a customer's unsent
//! message or deleted post empties the stored copy and tells the CRM, and an edited
//! message replaces the stored text and tells the CRM. Everything goes
//! through the host's HTTP ingress on loopback, signed as the platforms sign.

use std::collections::BTreeMap;

use centralino::Host;
use centralino::api::ApiTokens;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::store::{OutboxStatus, SearchQuery};
use centralino::types::{AccountConfig, ConnectorConfig, DeliveryState};
use centralino_emulators::GraphApi;
use centralino_emulators::webhooks::{
    facebook_delivery_headers, messenger_text, tweet_create, twitter_delivery_headers,
};
use serde_json::{Value, json};

use crate::component;
use crate::support::eventually;

const APP_SECRET: &str = "fb-app-secret";
const CONSUMER_SECRET: &str = "x-consumer-secret";
const PAGE: &str = "5001";
const PSID: &str = "7001";

/// A host serving one page through the Graph emulator, on loopback; its webhook URL.
async fn facebook_host(graph: &GraphApi) -> (Host, tokio::task::JoinHandle<()>, String) {
    serve(built(facebook_spec(graph)).await, "facebook").await
}

/// The facebook connector serving one page through the Graph emulator.
fn facebook_spec(graph: &GraphApi) -> ConnectorSpec {
    graph.add_page(PAGE, "page-token-tim");
    let credentials = BTreeMap::from([(
        "tim-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token-tim"),
        },
    )]);
    let secrets = BTreeMap::from([
        ("app_secret".to_string(), Secret::new(APP_SECRET)),
        ("verify_token".to_string(), Secret::new("verify-me")),
    ]);
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
        .secrets(secrets);
    spec
}

/// A host serving X account 1001 (webhooks only), on loopback; its webhook URL.
async fn twitter_host() -> (Host, tokio::task::JoinHandle<()>, String) {
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: "1001".to_string(),
                handle: Some("TIM_Official".to_string()),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants =
        Grants::default().secret("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
    serve(built(spec).await, "twitter").await
}

/// A host of `spec`, on PostgreSQL when the suite has one (receipts and deletions are SQL
/// that must hold on both backends), else on SQLite.
async fn built(spec: ConnectorSpec) -> Host {
    let mut builder = Host::builder().connector(spec);
    if let Some(base) = crate::store::postgres_url() {
        builder = builder.store(crate::store::fresh_postgres_database(&base).await);
    }
    builder.build().await.unwrap()
}

async fn serve(host: Host, connector: &str) -> (Host, tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/{connector}",
        listener.local_addr().unwrap()
    );
    let serving = host.clone();
    let task = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
    (host, task, url)
}

async fn post(url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> u16 {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn messenger(url: &str, delivery: &Value) -> u16 {
    let body = serde_json::to_vec(delivery).unwrap();
    post(url, facebook_delivery_headers(APP_SECRET, &body), body).await
}

async fn twitter(url: &str, delivery: &Value) -> u16 {
    let body = serde_json::to_vec(delivery).unwrap();
    post(url, twitter_delivery_headers(CONSUMER_SECRET, &body), body).await
}

/// One Messenger event from the customer to the page, in Meta's envelope.
fn messenger_event(event: Value) -> Value {
    json!({
        "object": "page",
        "entry": [{ "id": PAGE, "time": 1_795_856_400_000u64, "messaging": [event] }]
    })
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn crm_events(host: &Host) -> Vec<CrmEvent> {
    host.local_inbox()
        .unwrap()
        .events()
        .into_iter()
        .map(|delivery| delivery.event)
        .collect()
}

/// What `pick` finds in each event the CRM was sent so far, in order.
fn told<T>(host: &Host, pick: impl Fn(CrmEvent) -> Option<T>) -> Vec<T> {
    crm_events(host).into_iter().filter_map(pick).collect()
}

fn receipts_told(host: &Host) -> Vec<(String, DeliveryState)> {
    told(host, |event| match event {
        CrmEvent::ReplyReceipt {
            external_id, state, ..
        } => Some((external_id, state)),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messenger_receipts_move_a_sent_reply_to_delivered_then_read_and_tell_the_crm_once_each() {
    let graph = GraphApi::start().await.unwrap();
    let (host, _server, url) = facebook_host(&graph).await;
    let wrote = messenger_text(PAGE, PSID, "m_abc", "il router lampeggia", now_ms());
    assert_eq!(messenger(&url, &wrote).await, 200);
    graph.customer_wrote(PAGE, PSID);
    let conversation = host.store().conversations("default").await.unwrap()[0].clone();
    let queued = host
        .reply(
            "default",
            &conversation.id,
            "anna",
            None,
            "Proviamo a riavviarlo insieme.",
            "reply-1",
        )
        .await
        .unwrap();
    let mut sent = None;
    eventually("the reply is sent", async || {
        sent = host
            .store()
            .outbox_entry("default", &queued.id)
            .await
            .unwrap()
            .filter(|entry| entry.status == OutboxStatus::Sent);
        sent.is_some()
    })
    .await;
    let sent = sent.unwrap();
    let mid = sent.external_id.clone().unwrap();
    assert_eq!(sent.delivery, None, "nothing is known before a receipt");

    // Meta's delivery report naming the reply (Messenger Platform, message_deliveries).
    let delivered = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "delivery": { "mids": [mid], "watermark": now_ms() + 1_000 }
    }));
    assert_eq!(messenger(&url, &delivered).await, 200);
    let delivery = |host: Host, id: String| async move {
        host.store()
            .outbox_entry("default", &id)
            .await
            .unwrap()
            .unwrap()
            .delivery
    };
    assert_eq!(
        delivery(host.clone(), queued.id.clone()).await,
        Some(DeliveryState::Delivered)
    );
    eventually("the CRM hears of the delivery", async || {
        receipts_told(&host) == [(mid.clone(), DeliveryState::Delivered)]
    })
    .await;
    // The same report again (platforms redeliver) changes nothing and tells nothing.
    assert_eq!(messenger(&url, &delivered).await, 200);

    // A read report: a watermark naming the thread, covering every reply sent before it.
    let read = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "read": { "watermark": now_ms() + 2_000 }
    }));
    assert_eq!(messenger(&url, &read).await, 200);
    assert_eq!(
        delivery(host.clone(), queued.id.clone()).await,
        Some(DeliveryState::Read)
    );
    // A late delivery report never moves a read reply back.
    assert_eq!(messenger(&url, &delivered).await, 200);
    assert_eq!(
        delivery(host.clone(), queued.id.clone()).await,
        Some(DeliveryState::Read)
    );
    eventually("the CRM hears of the read", async || {
        receipts_told(&host).len() >= 2
    })
    .await;
    // Every event those reports stored (before their 200) has reached the CRM.
    all_told(&host).await;
    assert_eq!(
        receipts_told(&host),
        [
            (mid.clone(), DeliveryState::Delivered),
            (mid.clone(), DeliveryState::Read)
        ]
    );

    // A read watermark from before the reply was sent covers nothing.
    let (host, _server, url) = facebook_host(&GraphApi::start().await.unwrap()).await;
    assert_eq!(messenger(&url, &wrote).await, 200);
    let early = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "read": { "watermark": 1_000_000_000_000u64 }
    }));
    assert_eq!(messenger(&url, &early).await, 200);
    assert!(receipts_told(&host).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_unsending_a_messenger_message_empties_the_stored_copy_and_tells_the_crm() {
    let graph = GraphApi::start().await.unwrap();
    let (host, _server, url) = facebook_host(&graph).await;
    let wrote = messenger_text(
        PAGE,
        PSID,
        "m_abc",
        "il mio codice cliente è 12345",
        now_ms(),
    );
    assert_eq!(messenger(&url, &wrote).await, 200);
    let conversation = host.store().conversations("default").await.unwrap()[0].clone();
    let found = async |host: &Host| {
        let query = SearchQuery::new().text("codice cliente 12345");
        let page = host.search_messages("default", &query).await.unwrap();
        page.items.len()
    };
    assert_eq!(found(&host).await, 1);

    // Meta's `message` event for an unsent message: the mid and `is_deleted`.
    let unsent = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "timestamp": 1_795_856_460_000u64,
        "message": { "mid": "m_abc", "is_deleted": true }
    }));
    assert_eq!(messenger(&url, &unsent).await, 200);
    let messages = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!(
        messages.len(),
        1,
        "a deletion is not a message: {messages:?}"
    );
    assert_eq!(messages[0].message.text, "");
    assert_eq!(messages[0].deleted_at, Some(1_795_856_460_000));
    assert_eq!(found(&host).await, 0, "the search index still has the text");
    let deleted = |host: &Host| {
        crm_events(host)
            .into_iter()
            .filter(|event| matches!(event, CrmEvent::MessageDeleted { .. }))
            .collect::<Vec<_>>()
    };
    eventually("the CRM hears of the deletion", async || {
        !deleted(&host).is_empty()
    })
    .await;
    assert_eq!(
        deleted(&host),
        [CrmEvent::MessageDeleted {
            conversation_id: conversation.id.clone().into(),
            connector: "facebook".into(),
            message_id: messages[0].id.clone(),
            external_id: "m_abc".to_string(),
            at: 1_795_856_460_000,
        }]
    );
    // Redelivered: nothing more. The message itself redelivered: still deleted, no text.
    assert_eq!(messenger(&url, &unsent).await, 200);
    assert_eq!(messenger(&url, &wrote).await, 200);
    all_told(&host).await;
    assert_eq!(deleted(&host).len(), 1);
    let messages = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!((messages.len(), messages[0].message.text.as_str()), (1, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_deleting_a_mention_empties_it_and_the_accounts_own_deletions_change_nothing() {
    let (host, _server, url) = twitter_host().await;
    let id = "1045405559317569537";
    let mention = tweet_create(
        "1001",
        id,
        ("42", "mario_rossi", "Mario Rossi"),
        "@TIM_Official il mio numero è 333 1234567",
        None,
    );
    assert_eq!(twitter(&url, &mention).await, 200);

    // X's documented tweet_delete_events (tests/fixtures/twitter/account_activity): as
    // recorded, it is the subscribed account deleting its own post, which is no customer's.
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/twitter/account_activity/xdocs_tweet_delete_events.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut own = fixture.clone();
    own["for_user_id"] = json!("1001");
    own["tweet_delete_events"][0]["status"]["user_id"] = json!("1001");
    assert_eq!(twitter(&url, &own).await, 200);
    let conversation = host.store().conversations("default").await.unwrap()[0].clone();
    let stored = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!(stored[0].deleted_at, None);

    // The same event from Mario, the customer: his mention is emptied.
    let mut customer = fixture;
    customer["for_user_id"] = json!("1001");
    customer["tweet_delete_events"][0]["status"]["user_id"] = json!("42");
    assert_eq!(twitter(&url, &customer).await, 200);
    let stored = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!(stored[0].message.text, "");
    assert_eq!(stored[0].deleted_at, Some(1_432_228_155_593));
    eventually("the CRM hears of the deletion", async || {
        crm_events(&host).iter().any(|event| {
            matches!(event, CrmEvent::MessageDeleted { external_id, connector, .. }
                if external_id == id && connector == "twitter")
        })
    })
    .await;
}

/// Meta's `message_edits` event: the customer's message `mid` now reads `text`.
fn messenger_edit(mid: &str, text: &str, num_edit: u64, at: u64) -> Value {
    messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "timestamp": at,
        "message_edit": { "mid": mid, "text": text, "num_edit": num_edit }
    }))
}

fn edits_told(host: &Host) -> Vec<(String, String)> {
    told(host, |event| match event {
        CrmEvent::MessageEdited {
            external_id, text, ..
        } => Some((external_id, text)),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_editing_a_messenger_message_replaces_the_stored_text_and_tells_the_crm_once() {
    let graph = GraphApi::start().await.unwrap();
    let (host, _server, url) = facebook_host(&graph).await;
    let wrote = messenger_text(
        PAGE,
        PSID,
        "m_abc",
        "la fattura di ottobre è sbagliata",
        now_ms(),
    );
    assert_eq!(messenger(&url, &wrote).await, 200);
    let conversation = host.store().conversations("default").await.unwrap()[0].clone();
    let found = async |host: &Host, words: &str| {
        let query = SearchQuery::new().text(words);
        host.search_messages("default", &query)
            .await
            .unwrap()
            .items
            .len()
    };

    let first = messenger_edit(
        "m_abc",
        "la fattura di novembre è sbagliata",
        1,
        1_795_856_460_000,
    );
    assert_eq!(messenger(&url, &first).await, 200);
    let messages = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "an edit is not a message: {messages:?}");
    assert_eq!(
        messages[0].message.text,
        "la fattura di novembre è sbagliata"
    );
    assert_eq!(messages[0].edited_at, Some(1_795_856_460_000));
    assert_eq!(
        found(&host, "ottobre").await,
        0,
        "the search index kept the old text"
    );
    assert_eq!(found(&host, "novembre").await, 1);

    // A later edit wins; the earlier one redelivered after it, and the later one
    // redelivered, change nothing and tell the CRM nothing.
    let second = messenger_edit(
        "m_abc",
        "la fattura di novembre è doppia",
        2,
        1_795_856_520_000,
    );
    assert_eq!(messenger(&url, &second).await, 200);
    assert_eq!(messenger(&url, &first).await, 200);
    assert_eq!(messenger(&url, &second).await, 200);
    all_told(&host).await;
    assert_eq!(
        edits_told(&host),
        [
            (
                "m_abc".to_string(),
                "la fattura di novembre è sbagliata".to_string()
            ),
            (
                "m_abc".to_string(),
                "la fattura di novembre è doppia".to_string()
            ),
        ]
    );
    let messages = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!(messages[0].message.text, "la fattura di novembre è doppia");
    assert_eq!(messages[0].edited_at, Some(1_795_856_520_000));
    // The REST API shows when it was edited, as its OpenAPI document says.
    let tokens = ApiTokens::new()
        .with("default", &Secret::new("token-default"))
        .unwrap();
    let (api, _api_server) = crate::support::serve_rest(&host, tokens).await;
    let template = "/api/v1/conversations/{id}/messages";
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{api}/api/v1/conversations/{}/messages",
            conversation.id
        ))
        .bearer_auth("token-default")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let view: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    crate::api::OpenApi::load().check(template, "get", 200, &view);
    assert_eq!(
        view["messages"][0]["edited_at"],
        json!(1_795_856_520_000u64)
    );
    assert_eq!(view["messages"][0]["deleted_at"], Value::Null);

    // Unsent afterwards: deleted, and the edits' texts leave the events the host still
    // holds as well as the stored message.
    let unsent = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "timestamp": 1_795_856_580_000u64,
        "message": { "mid": "m_abc", "is_deleted": true }
    }));
    assert_eq!(messenger(&url, &unsent).await, 200);
    let held = serde_json::to_string(&host.store().held_events("default").await.unwrap()).unwrap();
    assert!(held.contains("message-edited"), "{held}");
    assert!(
        !held.contains("novembre") && !held.contains("ottobre"),
        "the held events keep the text: {held}"
    );
    // An edit arriving after the deletion does not bring the text back.
    let late = messenger_edit("m_abc", "la fattura di novembre", 3, 1_795_856_640_000);
    assert_eq!(messenger(&url, &late).await, 200);
    let messages = host
        .store()
        .messages("default", &conversation.id)
        .await
        .unwrap();
    assert_eq!((messages.len(), messages[0].message.text.as_str()), (1, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_away_during_an_edit_gets_the_message_as_it_arrived_then_the_edit() {
    // The event the CRM is owed was written with the message; an edit that comes before
    // the CRM does must not reach back into it.
    let graph = GraphApi::start().await.unwrap();
    let crm = crate::support::CrmRecorder::start_away(true).await;
    let mut builder = Host::builder()
        .connector(facebook_spec(&graph))
        .crm(std::sync::Arc::new(
            centralino::crm::WebhookCrm::new(crm.url.clone(), Secret::new("crm-secret")).unwrap(),
        ));
    if let Some(base) = crate::store::postgres_url() {
        builder = builder.store(crate::store::fresh_postgres_database(&base).await);
    }
    let (host, _server, url) = serve(builder.build().await.unwrap(), "facebook").await;
    let wrote = messenger_text(PAGE, PSID, "m_abc", "la fattura di ottobre", now_ms());
    assert_eq!(messenger(&url, &wrote).await, 200);
    let edited = messenger_edit("m_abc", "la fattura di novembre", 1, 1_795_856_460_000);
    assert_eq!(messenger(&url, &edited).await, 200);

    crm.back();
    let told = async || {
        crm.events()
            .into_iter()
            .filter_map(|event| match event {
                CrmEvent::MessageReceived { message, .. } => Some(("received", message.text)),
                CrmEvent::MessageEdited { text, .. } => Some(("edited", text)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually("the CRM hears of the message and the edit", async || {
        told().await.len() == 2
    })
    .await;
    assert_eq!(
        told().await,
        [
            ("received", "la fattura di ottobre".to_string()),
            ("edited", "la fattura di novembre".to_string()),
        ]
    );
    // What the store still holds says the same.
    let held = host.store().held_events("default").await.unwrap();
    assert!(held.iter().any(|event| matches!(
        event,
        CrmEvent::MessageReceived { message, .. } if message.text == "la fattura di ottobre"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_a_message_the_host_never_stored_is_stored_as_it_reads_now_and_routed() {
    let graph = GraphApi::start().await.unwrap();
    let (host, _server, url) = facebook_host(&graph).await;
    // The message and its edit in one delivery, then an edit whose message never came.
    let mut both = messenger_text(PAGE, PSID, "m_1", "vorrei disdire", now_ms());
    let edit = messenger_edit("m_1", "vorrei disdire la linea fissa", 1, now_ms() + 1);
    let edit_event = edit["entry"][0]["messaging"][0].clone();
    both["entry"][0]["messaging"]
        .as_array_mut()
        .unwrap()
        .push(edit_event);
    assert_eq!(messenger(&url, &both).await, 200);
    // Its two edits in one delivery: the later text is what is stored.
    let mut orphan = messenger_edit("m_0", "il numero è 06123", 1, now_ms());
    let later =
        messenger_edit("m_0", "il numero è 0612345678", 2, now_ms() + 2)["entry"][0]["messaging"]
            [0]
        .clone();
    orphan["entry"][0]["messaging"]
        .as_array_mut()
        .unwrap()
        .push(later);
    assert_eq!(messenger(&url, &orphan).await, 200);

    let conversations = host.store().conversations("default").await.unwrap();
    assert_eq!(conversations.len(), 1);
    let messages = host
        .store()
        .messages("default", &conversations[0].id)
        .await
        .unwrap();
    let mut texts: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.message.external_id.as_str(), m.message.text.as_str()))
        .collect();
    texts.sort_unstable();
    assert_eq!(
        texts,
        [
            ("m_0", "il numero è 0612345678"),
            ("m_1", "vorrei disdire la linea fissa")
        ]
    );
    all_told(&host).await;
    // The CRM heard of m_0 as a message (it never had it) and of m_1's edit.
    let received: Vec<String> = crm_events(&host)
        .into_iter()
        .filter_map(|event| match event {
            CrmEvent::MessageReceived { message, .. } => Some(message.text),
            _ => None,
        })
        .collect();
    assert_eq!(received, ["vorrei disdire", "il numero è 0612345678"]);
    assert_eq!(
        edits_told(&host),
        [(
            "m_1".to_string(),
            "vorrei disdire la linea fissa".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_applying_the_same_edits_and_deletion_at_once_tell_the_crm_once_each()
{
    let Some(base) = crate::store::postgres_url() else {
        eprintln!(
            "SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL \
             (`cargo xtask test` starts one)"
        );
        return;
    };
    let url = crate::store::fresh_postgres_database(&base).await;
    let graph = GraphApi::start().await.unwrap();
    let inbox = std::sync::Arc::new(centralino::crm::LocalInbox::new());
    let mut hosts = Vec::new();
    for id in ["host-a", "host-b"] {
        let host = Host::builder()
            .store(url.as_str())
            .host_id(id)
            .connector(facebook_spec(&graph))
            .crm(inbox.clone())
            .build()
            .await
            .unwrap();
        hosts.push(host);
    }
    let signed = |delivery: &Value| {
        let body = serde_json::to_vec(delivery).unwrap();
        centralino::types::WebhookRequest {
            method: "POST".to_string(),
            path: "/".to_string(),
            query: String::new(),
            headers: facebook_delivery_headers(APP_SECRET, &body),
            body,
        }
    };
    // Both hosts get every delivery at once, as a platform retrying into a load balancer
    // may cause.
    let both = async |delivery: &Value| {
        let (a, b) = tokio::join!(
            hosts[0].deliver_webhook_stored("default", "facebook", signed(delivery)),
            hosts[1].deliver_webhook_stored("default", "facebook", signed(delivery)),
        );
        assert_eq!((a.0.status, b.0.status), (200, 200));
    };
    let wrote = messenger_text(PAGE, PSID, "m_abc", "versione 0", now_ms());
    both(&wrote).await;
    const EDITS: u64 = 20;
    for n in 1..=EDITS {
        let edit = messenger_edit("m_abc", &format!("versione {n}"), n, 1_795_856_460_000 + n);
        both(&edit).await;
    }
    let store = hosts[0].store();
    let all_told = async || {
        eventually("every stored CRM event to be delivered", async || {
            store.undelivered_events("default").await.unwrap() == 0
        })
        .await;
        inbox
            .events()
            .into_iter()
            .map(|d| d.event)
            .collect::<Vec<CrmEvent>>()
    };
    // Told before the deletion: a deletion also empties the events not yet delivered.
    let events = all_told().await;
    let edited: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            CrmEvent::MessageEdited { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (1..=EDITS).map(|n| format!("versione {n}")).collect();
    assert_eq!(edited, expected, "each edit told once, in order");

    let unsent = messenger_event(json!({
        "sender": { "id": PSID }, "recipient": { "id": PAGE },
        "timestamp": 1_795_856_580_000u64,
        "message": { "mid": "m_abc", "is_deleted": true }
    }));
    both(&unsent).await;
    let events = all_told().await;
    let deleted = events
        .iter()
        .filter(|event| matches!(event, CrmEvent::MessageDeleted { .. }))
        .count();
    assert_eq!(deleted, 1, "the deletion told once");
    let conversations = store.conversations("default").await.unwrap();
    assert_eq!(conversations.len(), 1);
    let messages = store
        .messages("default", &conversations[0].id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.text, "");
}

/// Waits until every CRM event the store holds has been delivered: a webhook answered 200
/// stored its events first, so after this the CRM has heard all it ever will of them.
async fn all_told(host: &Host) {
    eventually("every stored CRM event to be delivered", async || {
        host.store().undelivered_events("default").await.unwrap() == 0
    })
    .await;
}
