//! Retention per tenant, applied by the retention task on the host's clock: a message's
//! content is emptied once it is older than `messages`, a conversation resolved longer
//! ago than `conversations` is deleted with its messages, and nothing younger is touched.

use std::time::Duration;

use centralino::Host;
use centralino::clock::ManualClock;
use centralino::connectors::ConnectorSpec;
use centralino::store::{ContentRetention, ConversationStatus};
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};

use crate::component;

const DAY: Duration = Duration::from_secs(24 * 3600);

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

#[tokio::test]
async fn old_messages_are_emptied_and_old_resolved_conversations_deleted_on_the_hosts_clock() {
    let clock = ManualClock::at_system_time();
    let config = ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: "support".to_string(),
            ..AccountConfig::default()
        }],
    };
    let host = Host::builder()
        .connector(ConnectorSpec::new(
            "echo",
            component("echo-channel"),
            config,
        ))
        .content_retention(
            "default",
            ContentRetention::forever()
                .messages(7 * DAY)
                .conversations(30 * DAY),
        )
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let store = host.store();
    let anna = deliver(&host, "anna: il mio numero è 333 1234567").await;
    host.resolve("default", &anna).await.unwrap();
    clock.advance(6 * DAY);
    let bruno = deliver(&host, "bruno: la fibra è lenta").await;

    // Day 6: nothing is old enough.
    host.run_retention().await.unwrap();
    assert_eq!(
        store.messages("default", &anna).await.unwrap()[0]
            .message
            .text,
        "il mio numero è 333 1234567"
    );

    // Day 8: Anna's message is emptied, its row (and conversation) kept; Bruno's is young.
    clock.advance(2 * DAY);
    host.run_retention().await.unwrap();
    let emptied = &store.messages("default", &anna).await.unwrap()[0];
    assert_eq!(emptied.message.text, "");
    assert_eq!(emptied.message.author.handle, None);
    assert_eq!(store.message_count("default").await.unwrap(), 2);
    assert_eq!(
        store.messages("default", &bruno).await.unwrap()[0]
            .message
            .text,
        "la fibra è lenta"
    );

    // Day 31: Anna's conversation, resolved 31 days ago, is deleted; Bruno's, open, stays.
    clock.advance(23 * DAY);
    host.run_retention().await.unwrap();
    assert!(
        store
            .conversation("default", &anna)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.message_count("default").await.unwrap(), 1);
    let kept = store
        .conversation("default", &bruno)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(kept.status, ConversationStatus::Resolved);
    assert_eq!(
        store.messages("default", &bruno).await.unwrap()[0]
            .message
            .text,
        ""
    );
}
