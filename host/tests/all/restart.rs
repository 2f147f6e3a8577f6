//! Routing state survives a restart: an embedded host on a SQLite file routes three
//! conversations (two operators of capacity 1: two assigned, one waiting), is dropped and
//! built again on the same file. The assignees keep their conversations (and may answer,
//! through the embedding API and the REST API), others are refused with the right 4xx,
//! operators' loads are right, and the waiting conversation is back in the queue and
//! goes to the first seat that frees. Operators' presence survives too: one set online
//! before the restart is online after it, while one never set keeps the configured default.

use centralino::api::ApiTokens;
use centralino::capabilities::Secret;
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::ConversationStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence, WebhookRequest};
use centralino::{Error, Host};
use serde_json::json;

use crate::component;
use crate::routing::chain;
use crate::support::serve_rest;

async fn host(store: &str) -> Host {
    host_with(store, Presence::Online).await
}

/// A host whose operators (marco, giulia; capacity 1) start as `presence`.
async fn host_with(store: &str, presence: Presence) -> Host {
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
    for id in ["marco", "giulia"] {
        engine.add_operator(Operator::new(id, 1), presence).await;
    }
    Host::builder()
        .store(store)
        .connector(ConnectorSpec::new(
            "echo",
            component("echo-channel"),
            config,
        ))
        .routing(engine)
        .build()
        .await
        .unwrap()
}

async fn deliver(host: &Host, body: &str) -> String {
    let request = WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "echo", request)
        .await;
    assert_eq!(response.status, 200);
    stored[0].conversation_id.to_string()
}

fn other(operator: &str) -> &'static str {
    if operator == "marco" {
        "giulia"
    } else {
        "marco"
    }
}

#[tokio::test]
async fn after_a_restart_assignees_keep_their_conversations_and_the_queue_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());

    let first = host(&store).await;
    let mario = deliver(&first, "mario: il modem non va").await;
    let lucia = deliver(&first, "lucia: fattura doppia").await;
    let piero = deliver(&first, "piero: niente linea").await;
    let assignee = |record: Option<centralino::store::ConversationRecord>| {
        let record = record.unwrap();
        (record.status, record.assignee)
    };
    let (status, Some(mario_op)) =
        assignee(first.store().conversation("default", &mario).await.unwrap())
    else {
        panic!("mario's conversation is assigned");
    };
    assert_eq!(status, ConversationStatus::Assigned);
    let (_, Some(lucia_op)) =
        assignee(first.store().conversation("default", &lucia).await.unwrap())
    else {
        panic!("lucia's conversation is assigned");
    };
    assert_ne!(mario_op, lucia_op);
    assert_eq!(
        assignee(first.store().conversation("default", &piero).await.unwrap()),
        (ConversationStatus::Waiting, None)
    );
    drop(first);

    // The same store, a fresh process's worth of memory.
    let second = host(&store).await;
    let (loads, waiting) = second
        .with_routing("default", |engine| {
            let loads: Vec<(String, u32)> = engine
                .roster()
                .iter()
                .map(|(operator, state)| (operator.id.clone(), state.load))
                .collect();
            (loads, engine.queue().len())
        })
        .await
        .unwrap();
    assert_eq!(
        loads,
        vec![("marco".to_string(), 1), ("giulia".to_string(), 1)],
        "each operator's load counts the conversation they kept"
    );
    assert_eq!(waiting, 1, "piero waits in the queue again");

    // Embedding API: the assignee answers; a colleague is refused.
    let refused = second
        .reply("default", &mario, other(&mario_op), None, "ciao", "r-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Routing { source, .. }
            if matches!(**source, centralino::routing::RoutingError::NotAssignee { .. })),
        "{refused}"
    );
    let queued = second
        .reply("default", &mario, &mario_op, None, "Ciao Mario!", "r-2")
        .await
        .unwrap();
    assert_eq!(queued.author, mario_op);

    // REST API: the same for lucia's conversation, with the documented statuses.
    let tokens = ApiTokens::new()
        .with("default", &Secret::new("token"))
        .unwrap();
    let (address, server) = serve_rest(&second, tokens).await;
    let client = reqwest::Client::new();
    let reply = |operator: &str, key: &str| {
        client
            .post(format!(
                "http://{address}/api/v1/conversations/{lucia}/replies"
            ))
            .bearer_auth("token")
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(json!({ "operator": operator, "text": "Buongiorno Lucia" }).to_string())
            .send()
    };
    let answer = reply(other(&lucia_op), "r-3").await.unwrap();
    assert_eq!(answer.status().as_u16(), 409);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "not_assignee", "{body}");
    let answer = reply(&lucia_op, "r-4").await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    server.abort();

    // A seat frees: the restored queue moves.
    second.resolve("default", &mario).await.unwrap();
    assert_eq!(
        assignee(
            second
                .store()
                .conversation("default", &piero)
                .await
                .unwrap()
        ),
        (ConversationStatus::Assigned, Some(mario_op.clone()))
    );
    second
        .reply("default", &piero, &mario_op, None, "Ciao Piero", "r-5")
        .await
        .unwrap();
}

#[tokio::test]
async fn after_a_restart_an_operator_set_online_is_online_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let presence_of = |host: Host| async move {
        host.with_routing("default", |engine| {
            ["marco", "giulia"].map(|id| engine.roster().state(id).map(|s| s.presence))
        })
        .await
        .unwrap()
    };

    // Everyone starts offline; marco says he is online, giulia never says anything.
    let first = host_with(&store, Presence::Offline).await;
    first
        .set_presence("default", "marco", Presence::Online)
        .await
        .unwrap();
    let mario = deliver(&first, "mario: il modem non va").await;
    let piero = deliver(&first, "piero: niente linea").await;
    let state = |record: Option<centralino::store::ConversationRecord>| {
        let record = record.unwrap();
        (record.status, record.assignee)
    };
    assert_eq!(
        state(first.store().conversation("default", &mario).await.unwrap()),
        (ConversationStatus::Assigned, Some("marco".to_string()))
    );
    assert_eq!(
        state(first.store().conversation("default", &piero).await.unwrap()),
        (ConversationStatus::Waiting, None)
    );
    drop(first);

    // Nobody sets presence after the restart: marco is online as he left, giulia keeps
    // the configured default.
    let second = host_with(&store, Presence::Offline).await;
    assert_eq!(
        presence_of(second.clone()).await,
        [Some(Presence::Online), Some(Presence::Offline)]
    );
    // marco's seat frees: the waiting customer is his.
    second.resolve("default", &mario).await.unwrap();
    assert_eq!(
        state(
            second
                .store()
                .conversation("default", &piero)
                .await
                .unwrap()
        ),
        (ConversationStatus::Assigned, Some("marco".to_string()))
    );

    // Going offline is kept as well, over a configured default of online.
    second
        .set_presence("default", "marco", Presence::Offline)
        .await
        .unwrap();
    drop(second);
    let third = host_with(&store, Presence::Online).await;
    assert_eq!(
        presence_of(third).await,
        [Some(Presence::Offline), Some(Presence::Online)]
    );
}
