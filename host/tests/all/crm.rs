//! The CRM bridge: events reach the CRM in order and once, also across a CRM outage; the
//! outbox sends a reply once and reports it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use centralino::Host;
use centralino::capabilities::Secret;
use centralino::clock::ManualClock;
use centralino::connectors::ConnectorSpec;
use centralino::crm::{CrmDelivery, CrmEvent, WebhookCrm, sign_webhook};
use centralino::store::OutboxStatus;
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};

use crate::component;
use crate::support::eventually;

fn echo_spec() -> ConnectorSpec {
    ConnectorSpec::new(
        "echo",
        component("echo-channel"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: "TIM_Official".to_string(),
                ..AccountConfig::default()
            }],
        },
    )
}

fn delivery(body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn every_stored_message_reaches_the_local_inbox_once_and_a_reply_is_sent_once() {
    let host = Host::builder()
        .connector(echo_spec())
        .build()
        .await
        .unwrap();
    let inbox = host.local_inbox().unwrap().clone();
    let (response, stored) = host
        .deliver_webhook_stored("default", "echo", delivery("mario: il modem non va"))
        .await;
    assert_eq!(response.status, 200);
    let conversation = stored[0].conversation_id.clone();
    eventually("the message event", async || inbox.events().len() == 1).await;
    let CrmEvent::MessageReceived {
        new_conversation,
        message,
        ..
    } = &inbox.events()[0].event
    else {
        panic!("{:?}", inbox.events())
    };
    assert!(*new_conversation);
    assert_eq!(message.text, "il modem non va");

    // The CRM retries its request: the same idempotency key queues one reply.
    let first = host
        .reply(
            "default",
            &conversation,
            "marco",
            None,
            "Ciao Mario!",
            "crm-req-1",
        )
        .await
        .unwrap();
    let again = host
        .reply(
            "default",
            &conversation,
            "marco",
            None,
            "Ciao Mario!",
            "crm-req-1",
        )
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    eventually("the reply event", async || {
        inbox
            .events()
            .iter()
            .any(|e| matches!(e.event, CrmEvent::ReplySent { .. }))
    })
    .await;
    let entry = host
        .store()
        .outbox_entry("default", &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, OutboxStatus::Sent);
    assert_eq!(entry.external_id.as_deref(), Some("echo-out-1"));
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.direction == "outbound")
            .count(),
        1
    );
    assert_eq!(messages[1].message.text, "Ciao Mario!");
    assert_eq!(messages[1].message.author.id, "marco");
}

#[tokio::test]
async fn a_refused_reply_is_reported_with_its_reason() {
    let host = Host::builder()
        .connector(echo_spec())
        .build()
        .await
        .unwrap();
    let inbox = host.local_inbox().unwrap().clone();
    let (_, stored) = host
        .deliver_webhook_stored("default", "echo", delivery("mario: ciao"))
        .await;
    let too_long = "x".repeat(300);
    let entry = host
        .reply(
            "default",
            &stored[0].conversation_id,
            "marco",
            None,
            &too_long,
            "k",
        )
        .await
        .unwrap();
    eventually("the failure event", async || {
        inbox
            .events()
            .iter()
            .any(|e| matches!(e.event, CrmEvent::ReplyFailed { .. }))
    })
    .await;
    let failed = inbox.events().into_iter().find_map(|e| match e.event {
        CrmEvent::ReplyFailed {
            reason,
            uncertain,
            outbox_id,
            ..
        } => Some((reason, uncertain, outbox_id)),
        _ => None,
    });
    let (reason, uncertain, outbox_id) = failed.unwrap();
    assert_eq!(outbox_id, entry.id);
    assert!(!uncertain);
    assert_eq!(
        reason,
        "plugin echo-channel@0.1.0 failed in `send`: rejected: text longer than 280 characters"
    );
    let row = host
        .store()
        .outbox_entry("default", &entry.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
}

/// A CRM endpoint on loopback that is down for its first `down` requests.
async fn crm_endpoint(down: usize) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/crm",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            let calls = calls.clone();
            async move {
                let mut n = calls.lock().unwrap();
                *n += 1;
                if *n <= down {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                sink.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn a_crm_endpoint_that_was_down_receives_every_event_in_order_once_it_is_back() {
    let (url, received) = crm_endpoint(3).await;
    let secret = Secret::new("crm-shared-secret");
    let crm = Arc::new(WebhookCrm::new(url, secret.clone()).unwrap());
    let clock = ManualClock::at_system_time();
    let host = Host::builder()
        .connector(echo_spec())
        .crm(crm)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    for i in 0..5 {
        let (response, _) = host
            .deliver_webhook_stored(
                "default",
                "echo",
                delivery(&format!("cliente{i}: messaggio {i}")),
            )
            .await;
        assert_eq!(response.status, 200);
    }
    // Each refusal is delivered again once its wait (400 ms, doubling) has passed on the
    // host's clock, which runs here 10 times as fast as the test looks.
    eventually("five deliveries", async || {
        clock.advance(Duration::from_millis(100));
        received.lock().unwrap().len() == 5
    })
    .await;
    // Nothing left to deliver: the batch that delivered the fifth is over, so any second
    // delivery of an event has been received already.
    eventually("every event marked delivered", async || {
        host.store().undelivered_events("default").await.unwrap() == 0
    })
    .await;
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 5, "each event once");
    let mut texts = Vec::new();
    for (headers, body) in &received {
        let timestamp: u64 = headers["x-centralino-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            headers["x-centralino-signature"].to_str().unwrap(),
            sign_webhook(&secret, timestamp, body)
        );
        let delivery: CrmDelivery = serde_json::from_slice(body).unwrap();
        assert_eq!(
            headers["x-centralino-event-id"].to_str().unwrap(),
            delivery.id
        );
        let CrmEvent::MessageReceived { message, .. } = delivery.event else {
            panic!()
        };
        texts.push(message.text);
    }
    assert_eq!(
        texts,
        (0..5).map(|i| format!("messaggio {i}")).collect::<Vec<_>>()
    );
    assert_eq!(host.store().undelivered_events("default").await.unwrap(), 0);
}

#[tokio::test]
async fn the_whole_path_runs_on_postgresql_too() {
    let Some(base) = crate::store::postgres_url() else {
        return;
    };
    let url = crate::store::fresh_postgres_database(&base).await;
    let host = Host::builder()
        .store(url)
        .connector(echo_spec())
        .build()
        .await
        .unwrap();
    let inbox = host.local_inbox().unwrap().clone();
    let (response, stored) = host
        .deliver_webhook_stored("default", "echo", delivery("mario: ciao da Postgres"))
        .await;
    assert_eq!(response.status, 200);
    let (again, _) = host
        .deliver_webhook_stored("default", "echo", delivery("mario: ciao da Postgres"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(host.store().message_count("default").await.unwrap(), 1);
    let entry = host
        .reply(
            "default",
            &stored[0].conversation_id,
            "marco",
            None,
            "Ciao!",
            "pg-1",
        )
        .await
        .unwrap();
    eventually("the reply to be sent", async || {
        inbox
            .events()
            .iter()
            .any(|e| matches!(e.event, CrmEvent::ReplySent { .. }))
    })
    .await;
    let row = host
        .store()
        .outbox_entry("default", &entry.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
}

#[tokio::test]
async fn pruning_deletes_delivered_events_and_sent_replies_and_keeps_the_conversation() {
    let host = Host::builder()
        .connector(echo_spec())
        .build()
        .await
        .unwrap();
    let inbox = host.local_inbox().unwrap().clone();
    let (_, stored) = host
        .deliver_webhook_stored("default", "echo", delivery("mario: il modem non va"))
        .await;
    let conversation = stored[0].conversation_id.clone();
    let reply = host
        .reply("default", &conversation, "marco", None, "Ciao!", "req-1")
        .await
        .unwrap();
    eventually("the reply to be sent and reported", async || {
        inbox
            .events()
            .iter()
            .any(|e| matches!(e.event, CrmEvent::ReplySent { .. }))
    })
    .await;
    let store = host.store();
    // Nothing is older than a cutoff in the past.
    assert_eq!(store.prune(0).await.unwrap(), Default::default());

    let now = centralino::clock::now_ms() + 1;
    let pruned = store.prune(now).await.unwrap();
    // Received, reply sent: two events, one reply.
    assert_eq!((pruned.events, pruned.replies), (2, 1));
    assert!(
        store
            .outbox_entry("default", &reply.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.undelivered_events("default").await.unwrap(), 0);
    // The conversation and both its messages stay: they are the CRM's record.
    assert_eq!(
        store
            .messages("default", &conversation)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.prune(now).await.unwrap(), Default::default());
}
