//! Suggested, never merged: a customer who shares their own phone number with two brands'
//! Telegram bots (two connectors, so two identities) gets a suggestion that the two
//! customers are one person, and the CRM hears of it; nothing is linked until it says so.
//! Someone else's contact suggests nothing.

use centralino::Host;
use centralino::capabilities::{Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};
use centralino_testkit::webhook;
use serde_json::{Value, json};

use crate::component;
use crate::support::eventually;

const SECRET: &str = "tg-webhook-secret";

fn bot(connector: &str, id: &str) -> ConnectorSpec {
    let mut spec = ConnectorSpec::new(
        connector,
        component("telegram"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: id.to_string(),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants = Grants::default().secret("webhook_secret".to_string(), Secret::new(SECRET));
    spec
}

/// A Bot API update: `from` shares the contact of `owner` (with `phone`) in a private chat.
fn contact(update_id: u64, from: u64, owner: u64, phone: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": { "id": from, "is_bot": false, "first_name": "Mario" },
            "chat": { "id": from, "type": "private" },
            "date": 1_795_856_400,
            "contact": { "phone_number": phone, "first_name": "Mario", "user_id": owner }
        }
    })
}

async fn deliver(host: &Host, connector: &str, update: &Value) {
    let body = serde_json::to_vec(update).unwrap();
    let header = [("x-telegram-bot-api-secret-token", SECRET)];
    let request = WebhookRequest {
        path: "/".to_string(),
        ..webhook::post(&body, &header)
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", connector, request)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(stored.len(), 1, "the contact is a message");
}

#[tokio::test]
async fn the_same_phone_on_two_channels_is_suggested_to_the_crm_and_never_merged() {
    let host = Host::builder()
        .connector(bot("tim-bot", "7001"))
        .connector(bot("impresa-bot", "7002"))
        .build()
        .await
        .unwrap();
    // Mario shares his own number with both brands' bots (spelt differently).
    deliver(
        &host,
        "tim-bot",
        &contact(1, 4242, 4242, "+39 333 123 4567"),
    )
    .await;
    deliver(
        &host,
        "impresa-bot",
        &contact(2, 4242, 4242, "+393331234567"),
    )
    .await;
    // Lucia shares Mario's contact: not her own number.
    deliver(
        &host,
        "impresa-bot",
        &contact(3, 5353, 4242, "+393331234567"),
    )
    .await;

    let tim = host
        .customer_by_identity("default", "tim-bot", "4242")
        .await
        .unwrap();
    let impresa = host
        .customer_by_identity("default", "impresa-bot", "4242")
        .await
        .unwrap();
    let lucia = host
        .customer_by_identity("default", "impresa-bot", "5353")
        .await
        .unwrap();
    assert_ne!(tim.id, impresa.id, "suggested, not merged");
    let suggested = host
        .store()
        .customer_suggestions("default", &impresa.id)
        .await
        .unwrap();
    assert_eq!(suggested.len(), 1, "{suggested:?}");
    assert_eq!(
        (suggested[0].other_id.as_str(), suggested[0].reason.as_str()),
        (tim.id.as_str(), "same-phone")
    );
    let back = host
        .store()
        .customer_suggestions("default", &tim.id)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert!(
        host.store()
            .customer_suggestions("default", &lucia.id)
            .await
            .unwrap()
            .is_empty()
    );

    let inbox = host.local_inbox().unwrap().clone();
    eventually("the CRM hears the suggestion", async || {
        inbox.events().iter().any(|d| {
            matches!(&d.event, CrmEvent::CustomerMatchSuggested { customer_id, other_customer_id, reason }
                if *customer_id == impresa.id && *other_customer_id == tim.id && reason == "same-phone")
        })
    })
    .await;

    // The CRM agrees: one merge, and the suggestion is gone with the merged customer.
    let merged = host
        .merge_customers("default", &tim.id, &impresa.id)
        .await
        .unwrap();
    assert_eq!(merged.identities.len(), 2);
    assert!(
        host.store()
            .customer_suggestions("default", &tim.id)
            .await
            .unwrap()
            .is_empty()
    );
}
