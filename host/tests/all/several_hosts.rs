//! Operator load is counted once across hosts: two embedded hosts share one PostgreSQL
//! database and the same roster (one operator, capacity 2). New conversations delivered to
//! both at once never give the operator more than 2 (asserted through the store, and
//! through the CRM's events); the rest wait. A conversation resolved on host A frees the
//! seat for host B's next routing, and host B refuses a reply to it (embedding API and
//! REST, with the documented status). Presence is shared: an operator set online through
//! host A takes a conversation delivered to host B, set offline through B gets none on A,
//! and a host started later finds them as they were last set.
//!
//! Needs PostgreSQL (`CENTRALINO_TEST_POSTGRES`, set by `cargo xtask test`); skipped with a
//! message otherwise.

use std::sync::Arc;
use std::time::Duration;

use centralino::api::ApiTokens;
use centralino::capabilities::Secret;
use centralino::connectors::ConnectorSpec;
use centralino::crm::{CrmEvent, LocalInbox};
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::{ConversationStatus, Store};
use centralino::types::{AccountConfig, ConnectorConfig, Presence, WebhookRequest};
use centralino::{Error, Host};
use serde_json::json;

use crate::component;
use crate::routing::chain;
use crate::store::{fresh_postgres_database, postgres_url};
use crate::support::{eventually_within, serve_rest};

const CAPACITY: u32 = 2;

async fn host(store: &str, id: &str, inbox: Arc<LocalInbox>) -> Host {
    host_with(store, id, inbox, Presence::Online).await
}

/// A host whose one operator (marco) starts as `presence`.
async fn host_with(store: &str, id: &str, inbox: Arc<LocalInbox>, presence: Presence) -> Host {
    let config = ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: "support".to_string(),
            handle: Some("support".to_string()),
            credential: None,
            settings: Vec::new(),
        }],
    };
    let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
    engine
        .add_operator(Operator::new("marco", CAPACITY), presence)
        .await;
    Host::builder()
        .store(store)
        .host_id(id)
        .connector(ConnectorSpec::new(
            "echo",
            component("echo-channel"),
            config,
        ))
        .routing(engine)
        .crm(inbox)
        .build()
        .await
        .unwrap()
}

async fn deliver(host: Host, body: String) -> String {
    let request = WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: body.into_bytes(),
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "echo", request)
        .await;
    assert_eq!(response.status, 200);
    stored[0].conversation_id.to_string()
}

/// (id, status, assignee) of every conversation, oldest first.
async fn conversations(store: &Store) -> Vec<(String, ConversationStatus, Option<String>)> {
    let mut all = store.conversations("default").await.unwrap();
    all.reverse();
    all.into_iter()
        .map(|c| (c.id, c.status, c.assignee))
        .collect()
}

async fn held_by_marco(store: &Store) -> Vec<String> {
    conversations(store)
        .await
        .into_iter()
        .filter(|(_, status, assignee)| {
            *status == ConversationStatus::Assigned && assignee.as_deref() == Some("marco")
        })
        .map(|(id, ..)| id)
        .collect()
}

async fn count(store: &Store, wanted: ConversationStatus) -> usize {
    conversations(store)
        .await
        .iter()
        .filter(|(_, status, _)| *status == wanted)
        .count()
}

/// Assignments the CRM was told about, once every stored event went out.
async fn assignments_told(store: &Store, inbox: &LocalInbox) -> Vec<(String, String)> {
    eventually_within(
        Duration::from_secs(20),
        "every CRM event to be delivered",
        async || store.undelivered_events("default").await.unwrap() == 0,
    )
    .await;
    inbox
        .events()
        .into_iter()
        .filter_map(|delivery| match delivery.event {
            CrmEvent::ConversationAssigned {
                conversation_id,
                operator,
                ..
            } => Some((conversation_id.into_string(), operator)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_count_an_operators_load_once() {
    let Some(base) = postgres_url() else {
        eprintln!(
            "SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL \
             (`cargo xtask test` starts one)"
        );
        return;
    };
    let url = fresh_postgres_database(&base).await;
    let inbox = Arc::new(LocalInbox::new());
    let a = host(&url, "host-a", inbox.clone()).await;
    let b = host(&url, "host-b", inbox.clone()).await;
    let store = a.store().clone();

    // 1. Twelve customers write at once, half through each host.
    let deliveries: Vec<_> = (0..12)
        .map(|i| {
            let host = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(deliver(host, format!("cliente{i}: il modem non va")))
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    let held = held_by_marco(&store).await;
    assert_eq!(
        held.len(),
        CAPACITY as usize,
        "marco holds his capacity across both hosts, no more: {:?}",
        conversations(&store).await
    );
    assert_eq!(count(&store, ConversationStatus::Waiting).await, 10);
    let told = assignments_told(&store, &inbox).await;
    assert_eq!(
        told.len(),
        CAPACITY as usize,
        "the CRM heard of each assignment once: {told:?}"
    );

    // Host B answers one of marco's conversations (whichever host routed it), then host A
    // resolves it.
    let (first, second) = (held[0].clone(), held[1].clone());
    b.reply("default", &first, "marco", None, "Ciao!", "r-1")
        .await
        .unwrap();
    // Every waiting customer gives up (through either host), then A resolves `first`.
    for (n, (id, status, _)) in conversations(&store).await.into_iter().enumerate() {
        if status == ConversationStatus::Waiting {
            let host = if n % 2 == 0 { &a } else { &b };
            host.resolve("default", &id).await.unwrap();
        }
    }
    a.resolve("default", &first).await.unwrap();
    assert_eq!(held_by_marco(&store).await, vec![second.clone()]);

    // 2. The seat freed on A goes to the next conversation routed on B; the one after
    // that waits, whichever host routes it.
    let third = deliver(b.clone(), "nuovo: niente linea".to_string()).await;
    let mut held = held_by_marco(&store).await;
    held.sort();
    let mut expected = vec![second.clone(), third.clone()];
    expected.sort();
    assert_eq!(
        held, expected,
        "B gave the freed seat to the new conversation"
    );
    let fourth = deliver(a.clone(), "ultimo: fattura doppia".to_string()).await;
    let fourth_status = store
        .conversation("default", &fourth)
        .await
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(fourth_status, ConversationStatus::Waiting);
    assert_eq!(held_by_marco(&store).await.len(), CAPACITY as usize);

    // 3. B refuses a reply to the conversation A resolved: embedding API…
    let refused = b
        .reply("default", &first, "marco", None, "Ci sei?", "r-2")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::ConversationResolved { conversation } if conversation == &first),
        "{refused}"
    );
    // … and REST, as the API documents for a resolved conversation.
    let tokens = ApiTokens::new()
        .with("default", &Secret::new("token"))
        .unwrap();
    let (address, server) = serve_rest(&b, tokens).await;
    let client = reqwest::Client::new();
    let answer = client
        .post(format!(
            "http://{address}/api/v1/conversations/{first}/replies"
        ))
        .bearer_auth("token")
        .header("idempotency-key", "r-3")
        .header("content-type", "application/json")
        .body(json!({ "operator": "marco", "text": "Ci sei?" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 409);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "conversation_resolved", "{body}");
    // The conversation B now routed is marco's, through the API of either host.
    let answer = client
        .post(format!(
            "http://{address}/api/v1/conversations/{third}/replies"
        ))
        .bearer_auth("token")
        .header("idempotency-key", "r-4")
        .header("content-type", "application/json")
        .body(json!({ "operator": "marco", "text": "Eccomi" }).to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    server.abort();
    a.reply("default", &third, "marco", None, "Eccomi", "r-5")
        .await
        .unwrap();

    // Each host's engine counts marco's load as the store does after its next change.
    for host in [&a, &b] {
        host.set_presence("default", "marco", Presence::Online)
            .await
            .unwrap();
        let load = host
            .with_routing("default", |engine| {
                engine.roster().state("marco").map(|state| state.load)
            })
            .await
            .unwrap();
        assert_eq!(load, Some(CAPACITY));
    }
    let told = assignments_told(&store, &inbox).await;
    assert_eq!(told.len(), 3, "one more assignment, told once: {told:?}");
}

/// marco's presence as a host's engine has it now.
async fn presence(host: &Host) -> Option<Presence> {
    host.with_routing("default", |engine| {
        engine.roster().state("marco").map(|state| state.presence)
    })
    .await
    .unwrap()
}

async fn status(store: &Store, id: &str) -> (ConversationStatus, Option<String>) {
    let record = store.conversation("default", id).await.unwrap().unwrap();
    (record.status, record.assignee)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_set_through_one_host_holds_on_every_host() {
    let Some(base) = postgres_url() else {
        eprintln!(
            "SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL \
             (`cargo xtask test` starts one)"
        );
        return;
    };
    let url = fresh_postgres_database(&base).await;
    let inbox = Arc::new(LocalInbox::new());
    let a = host_with(&url, "host-a", inbox.clone(), Presence::Offline).await;
    let b = host_with(&url, "host-b", inbox.clone(), Presence::Offline).await;
    let store = a.store().clone();

    // Nobody works yet: a customer writing through B waits.
    let first = deliver(b.clone(), "cliente0: il modem non va".to_string()).await;
    assert_eq!(
        status(&store, &first).await,
        (ConversationStatus::Waiting, None)
    );

    // marco comes online through A: the waiting customer is his, and B, at its next
    // change, has him online and gives him the next conversation delivered to it.
    a.set_presence("default", "marco", Presence::Online)
        .await
        .unwrap();
    let marco = Some("marco".to_string());
    assert_eq!(
        status(&store, &first).await,
        (ConversationStatus::Assigned, marco.clone())
    );
    let second = deliver(b.clone(), "cliente1: fattura doppia".to_string()).await;
    assert_eq!(
        status(&store, &second).await,
        (ConversationStatus::Assigned, marco.clone()),
        "B assigns marco, set online through A"
    );
    assert_eq!(presence(&b).await, Some(Presence::Online));

    // marco goes offline through B: a conversation delivered to A waits, and his
    // unanswered ones are back in the queue on every host.
    b.resolve("default", &first).await.unwrap();
    b.set_presence("default", "marco", Presence::Offline)
        .await
        .unwrap();
    assert_eq!(
        status(&store, &second).await,
        (ConversationStatus::Waiting, None)
    );
    let third = deliver(a.clone(), "cliente2: niente linea".to_string()).await;
    assert_eq!(
        status(&store, &third).await,
        (ConversationStatus::Waiting, None),
        "A knows marco went offline through B"
    );
    assert_eq!(presence(&a).await, Some(Presence::Offline));

    // Online again through B; a host started now (its config says offline) has him online
    // and, with a seat free, routes a new customer to him.
    b.set_presence("default", "marco", Presence::Online)
        .await
        .unwrap();
    assert_eq!(held_by_marco(&store).await.len(), CAPACITY as usize);
    b.resolve("default", &second).await.unwrap();
    let c = host_with(&url, "host-c", inbox.clone(), Presence::Offline).await;
    assert_eq!(presence(&c).await, Some(Presence::Online));
    let fourth = deliver(c.clone(), "cliente3: voglio disdire".to_string()).await;
    assert_eq!(
        status(&store, &fourth).await,
        (ConversationStatus::Assigned, marco),
        "a host started later routes to marco without anyone setting his presence"
    );
}
