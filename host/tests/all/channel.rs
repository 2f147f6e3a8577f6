use centralino::PluginFailure;
use centralino::capabilities::Grants;
use centralino::runtime::Error;
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{
    AccountConfig, Capability, ConnectorConfig, MessageKind, OutboundMessage, WebhookRequest,
};

use crate::component;

fn config() -> ConnectorConfig {
    ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: "TIM_Official".to_string(),
            ..AccountConfig::default()
        }],
    }
}

fn delivery(body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: vec![("content-type".to_string(), "text/plain".to_string())],
        body: body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn a_channel_plugin_describes_itself_and_normalises_a_webhook() {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component("echo-channel"))
        .unwrap();
    let mut connector = plugin.instance(config(), Grants::default(), PluginLimits::default());
    let outcome = connector
        .handle_webhook(delivery("mario: il mio modem non va"))
        .await
        .unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "echo");
    assert!(description.capabilities.contains(&Capability::Webhook));
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.messages.len(), 1);
    let message = &outcome.messages[0];
    assert_eq!(message.account, "TIM_Official");
    assert_eq!(message.author.id, "mario");
    assert_eq!(message.text, "il mio modem non va");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.conversation_key, "dm:mario");
    // The clock import is the host's clock.
    let now = centralino::clock::now_ms();
    assert!(
        message.created_at <= now && now - message.created_at < 60_000,
        "{}",
        message.created_at
    );
}

#[tokio::test]
async fn a_malformed_delivery_gets_a_4xx_and_no_messages() {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component("echo-channel"))
        .unwrap();
    let mut connector = plugin.instance(config(), Grants::default(), PluginLimits::default());
    let outcome = connector
        .handle_webhook(delivery("no separator here"))
        .await
        .unwrap();
    assert_eq!(outcome.response.status, 400);
    assert!(outcome.messages.is_empty());
}

#[tokio::test]
async fn a_plugin_refusal_names_the_plugin_and_the_reason() {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component("echo-channel"))
        .unwrap();
    let mut connector = plugin.instance(config(), Grants::default(), PluginLimits::default());
    let reply = OutboundMessage {
        account: "TIM_Official".to_string(),
        conversation_key: "dm:mario".to_string(),
        kind: MessageKind::PrivateMessage,
        recipient: Some("mario".to_string()),
        in_reply_to: None,
        text: "x".repeat(281),
        attachments: Vec::new(),
        idempotency_key: "reply-1".to_string(),
    };
    let err = connector.send(reply.clone()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Plugin {
                function: "send",
                failure: PluginFailure::Rejected { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin echo-channel@0.1.0 failed in `send`: rejected: text longer than 280 characters"
    );
    let sent = connector
        .send(OutboundMessage {
            text: "ciao!".to_string(),
            ..reply
        })
        .await
        .unwrap();
    assert_eq!(sent.external_id, "echo-out-1");
}

#[tokio::test]
async fn configure_errors_surface_with_the_plugin_name() {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component("echo-channel"))
        .unwrap();
    let mut connector = plugin.instance(
        ConnectorConfig::default(),
        Grants::default(),
        PluginLimits::default(),
    );
    let err = connector.ready().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin echo-channel@0.1.0 failed in `configure`: invalid input: echo needs at least one account"
    );
}
