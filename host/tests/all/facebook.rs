//! The `facebook` connector, loaded as a real component, fed Messenger and page-feed
//! deliveries from `tests/fixtures/facebook/` (each signed here the way Meta signs them) and
//! asked to send what it can refuse without reaching Graph.

use std::path::PathBuf;

use centralino::PluginFailure;
use centralino::capabilities::{Credential, Secret};
use centralino::runtime::ChannelInstance;
use centralino::types::{
    AccountConfig, Attachment, Capability, ConnectorConfig, DeliveryState, Message, MessageKind,
    OutboundMessage, Person, WebhookOutcome, WebhookRequest,
};
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::{ConnectorTest, Outcome, failure, webhook};
use serde_json::json;

const APP_SECRET: &str = "test-app-secret";
const VERIFY_TOKEN: &str = "centralino-verify-me";

/// The page of the courier fixtures.
const PAGE: &str = "1234567890";

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/facebook")
        .join(name);
    std::fs::read(&path).unwrap()
}

fn courier(name: &str) -> Vec<u8> {
    fixture_bytes(&format!("webhooks/courier_handwritten/{name}"))
}

fn handwritten(name: &str) -> Vec<u8> {
    fixture_bytes(&format!("centralino_handwritten/{name}"))
}

fn page(id: &str) -> AccountConfig {
    AccountConfig {
        id: id.to_string(),
        credential: Some(format!("page-token-{id}")),
        ..AccountConfig::default()
    }
}

/// The connector, granted both secrets under their default names.
fn facebook() -> ConnectorTest {
    ConnectorTest::new("facebook")
        .secret("app_secret", APP_SECRET)
        .secret("verify_token", VERIFY_TOKEN)
}

/// A connector serving `pages`.
fn connector(pages: &[&str]) -> ChannelInstance {
    let accounts = pages.iter().map(|id| page(id)).collect();
    facebook()
        .config(ConnectorConfig {
            settings: Vec::new(),
            accounts,
        })
        .instance()
        .unwrap()
}

/// `sha256=` + hex of the HMAC-SHA256 of `body`, as Meta computes `X-Hub-Signature-256`.
fn signature(secret: &str, body: &[u8]) -> String {
    webhook::sha256_hex(secret, body)
}

fn post(body: &[u8], signature: Option<String>) -> WebhookRequest {
    let header = signature.as_deref().map(|s| ("x-hub-signature-256", s));
    webhook::post(body, header.as_slice())
}

/// Delivers `body` exactly as stored, correctly signed.
async fn deliver(connector: &mut ChannelInstance, body: &[u8]) -> WebhookOutcome {
    let signature = signature(APP_SECRET, body);
    connector
        .handle_webhook(post(body, Some(signature)))
        .await
        .unwrap()
}

fn extra<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .extra
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A page access token, attached by the host as Graph's `access_token` parameter.
fn page_token(token: &str) -> Credential {
    Credential::QueryParameter {
        name: "access_token".to_string(),
        token: Secret::new(token),
    }
}

fn handshake(query: &str) -> WebhookRequest {
    webhook::get(query)
}

fn reply(account: &str, key: &str, kind: MessageKind, text: &str) -> OutboundMessage {
    OutboundMessage {
        account: account.to_string(),
        conversation_key: key.to_string(),
        kind,
        recipient: None,
        in_reply_to: None,
        text: text.to_string(),
        attachments: Vec::new(),
        idempotency_key: "reply-1".to_string(),
    }
}

// ---- describe and configure ----

#[tokio::test]
async fn describes_itself_as_a_webhook_only_page_connector_with_2000_character_messages() {
    let mut connector = connector(&[PAGE]);
    connector.ready().await.unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "facebook");
    assert_eq!(description.max_text_length, 2000);
    for capability in [
        Capability::PrivateMessage,
        Capability::CommentReply,
        Capability::Webhook,
        Capability::Attachments,
    ] {
        assert!(
            description.capabilities.contains(&capability),
            "{capability:?}"
        );
    }
    assert!(!description.capabilities.contains(&Capability::Polling));
    let err = connector.poll(PAGE, None).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_settings_and_malformed_api_versions_are_refused_naming_the_key() {
    for (key, value) in [
        ("graph_bsae", "https://graph.facebook.com"),
        ("api_version", "19"),
    ] {
        let mut connector = facebook()
            .setting(key, value)
            .account_config(page(PAGE))
            .instance()
            .unwrap();
        let err = connector.ready().await.unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains(&format!("`{key}`"))),
            "{err}"
        );
    }
}

// ---- the subscription handshake ----

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_our_verify_token() {
    let mut connector = connector(&[PAGE]);
    let ok = connector
        .handle_webhook(handshake(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .await
        .unwrap();
    assert_eq!(ok.response.status, 200);
    assert_eq!(ok.response.body, b"1158201444");
    assert!(ok.messages.is_empty());

    for query in [
        "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444",
        "hub.mode=subscribe&hub.challenge=1158201444",
        &format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
    ] {
        let refused = connector.handle_webhook(handshake(query)).await.unwrap();
        refused.assert_refused(403);
    }
}

#[tokio::test]
async fn the_handshake_echoes_only_a_challenge_shaped_like_metas_even_with_our_verify_token() {
    let mut connector = connector(&[PAGE]);
    let body = "%7B%22object%22%3A%22page%22%7D"; // {"object":"page"}
    for challenge in [
        body,
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &"1".repeat(257),
    ] {
        let refused = connector
            .handle_webhook(handshake(&format!(
                "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge={challenge}"
            )))
            .await
            .unwrap();
        refused.assert_refused(400);
        assert!(!refused.response.body.starts_with(b"{\"object"));
    }
}

// ---- Messenger messages ----

#[tokio::test]
async fn a_text_message_becomes_a_private_message_threaded_by_page_and_psid() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &courier("hello_msg.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "external_id");
    assert_eq!(message.account, PAGE);
    assert_eq!(message.author.id, "5678");
    assert_eq!(message.text, "Hello World");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.conversation_key, "fb:1234567890:5678");
    assert_eq!(message.in_reply_to, None);
    assert_eq!(message.created_at, 1_459_991_487_970);
    assert!(message.attachments.is_empty());
    assert_eq!(outcome.response.body, b"EVENT_RECEIVED");
}

#[tokio::test]
async fn a_recorded_production_delivery_is_verified_over_its_raw_bytes() {
    let recorded: serde_json::Value = serde_json::from_slice(&fixture_bytes(
        "webhooks/rapidpro_recorded_message_webhook_delivery.json",
    ))
    .unwrap();
    let raw = recorded["raw_body"].as_str().unwrap().as_bytes();
    let mut connector = connector(&["311494332880244"]);
    let outcome = deliver(&mut connector, raw).await;
    let message = outcome.only_message();
    assert_eq!(
        message.external_id,
        "ld5jgfQP8TLBX9FFc3AETshZgE6Zn5UjpY3vY00t3A_YYC2AYDM3quxaodTiHj7nK6lI_ds4WFUJlTmM2l5xoA"
    );
    assert_eq!(message.account, "311494332880244");
    assert_eq!(message.author.id, "2150393045080607");
    assert_eq!(message.text, "hi");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(
        message.conversation_key,
        "fb:311494332880244:2150393045080607"
    );
    assert_eq!(message.created_at, 1_559_102_363_925);
}

#[tokio::test]
async fn attachments_keep_their_kind_address_and_description() {
    let mut connector = connector(&[PAGE]);
    let cases = [
        (
            "attachment.json",
            "image",
            Some("https://image-url/foo.png"),
            None,
        ),
        (
            "location_attachment.json",
            "location",
            None,
            Some("1.2,-1.3"),
        ),
        (
            "fallback.json",
            "fallback",
            Some("My Documents/foo.doc"),
            Some("Foo"),
        ),
        (
            "thumbs_up.json",
            "sticker",
            Some("https://scontent.xx.fbcdn.net/v/arst"),
            Some("sticker 369239263222822"),
        ),
        ("reel.json", "ig_reel", Some("/reel/123451234512345/"), None),
    ];
    for (name, kind, url, description) in cases {
        let outcome = deliver(&mut connector, &courier(name)).await;
        let message = outcome.only_message();
        assert_eq!(message.external_id, "external_id", "{name}");
        assert_eq!(message.text, "", "{name}");
        assert_eq!(message.kind, MessageKind::PrivateMessage, "{name}");
        assert_eq!(message.conversation_key, "fb:1234567890:5678", "{name}");
        assert_eq!(
            message.attachments,
            vec![Attachment {
                kind: kind.to_string(),
                url: url.map(str::to_string),
                mime_type: None,
                description: description.map(str::to_string),
            }],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_postback_says_its_title_and_keeps_its_payload_and_referral_in_extra() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &courier("postback.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.text, "postback title");
    assert_eq!(message.author.id, "5678");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.conversation_key, "fb:1234567890:5678");
    // No mid on this postback: sender and time identify it, stable across redeliveries.
    assert_eq!(message.external_id, "postback:5678:1459991487970");
    assert_eq!(extra(message, "postback_payload"), Some("postback payload"));
    assert_eq!(extra(message, "referral_ref"), Some("postback ref"));
    assert_eq!(extra(message, "referral_source"), Some("postback source"));
    assert_eq!(extra(message, "referral_type"), Some("postback type"));

    let outcome = deliver(&mut connector, &courier("postback_get_started.json")).await;
    assert_eq!(
        extra(outcome.only_message(), "postback_payload"),
        Some("get_started")
    );

    let outcome = deliver(&mut connector, &courier("postback_referral.json")).await;
    assert_eq!(
        extra(outcome.only_message(), "referral_ad_id"),
        Some("ad id")
    );
}

#[tokio::test]
async fn a_referral_is_a_message_with_its_origin_and_a_seconds_timestamp_is_read_as_seconds() {
    let mut connector = connector(&[PAGE]);
    for (name, created_at) in [
        ("referral.json", 1_459_991_487_970),
        ("referral_seconds.json", 1_701_599_111_000),
    ] {
        let outcome = deliver(&mut connector, &courier(name)).await;
        let message = outcome.only_message();
        assert_eq!(message.text, "", "{name}");
        assert_eq!(message.author.id, "5678", "{name}");
        assert_eq!(message.conversation_key, "fb:1234567890:5678", "{name}");
        assert_eq!(message.created_at, created_at, "{name}");
        assert_eq!(message.external_id, format!("referral:5678:{created_at}"));
        assert_eq!(
            extra(message, "referral_ref"),
            Some("referral id"),
            "{name}"
        );
        assert_eq!(extra(message, "referral_source"), Some("referral source"));
        assert_eq!(extra(message, "referral_type"), Some("referral type"));
        assert_eq!(extra(message, "referral_ad_id"), Some("ad id"));
    }
}

#[tokio::test]
async fn a_quick_reply_in_a_standby_thread_keeps_its_payload_and_a_read_report_is_a_receipt() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(
        &mut connector,
        &handwritten("standby_quick_reply_and_read.json"),
    )
    .await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "m_quick_reply_1");
    assert_eq!(message.text, "Fibra");
    assert_eq!(extra(message, "quick_reply_payload"), Some("TOPIC_FIBRA"));
    assert_eq!(extra(message, "standby"), Some("true"));
    assert_eq!(outcome.receipts.len(), 1);
    let receipt = &outcome.receipts[0];
    assert_eq!(receipt.account, PAGE);
    assert_eq!(receipt.state, DeliveryState::Read);
    assert_eq!(receipt.at, 1_459_991_487_999);
    // Messenger reports reads as a watermark over the thread, not per message.
    assert_eq!(receipt.external_id, "fb:1234567890:5678");
}

#[tokio::test]
async fn an_echo_of_the_pages_own_message_is_not_a_customer_message() {
    let mut connector = connector(&[PAGE]);
    deliver(&mut connector, &courier("echo.json"))
        .await
        .assert_acknowledged_with_nothing();
    // Ignored on purpose, and said so: the host counts it by reason.
    assert_eq!(
        connector.take_notes().ignored,
        [("echo".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn a_delivery_report_is_a_receipt_for_each_message_it_names() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &courier("dlr.json")).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.messages.is_empty());
    assert_eq!(outcome.receipts.len(), 1);
    let receipt = &outcome.receipts[0];
    assert_eq!(receipt.account, PAGE);
    assert_eq!(receipt.external_id, "mid.1458668856218:ed81099e15d3f4f233");
    assert_eq!(receipt.state, DeliveryState::Delivered);
    assert_eq!(receipt.at, 1_458_668_856_253);
}

#[tokio::test]
async fn an_event_repeated_within_one_delivery_is_delivered_once() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &courier("duplicate_msg.json")).await;
    assert_eq!(outcome.only_message().external_id, "external_id");
}

#[tokio::test]
async fn a_message_for_a_page_the_connector_does_not_serve_produces_nothing() {
    let mut connector = connector(&[PAGE]);
    deliver(&mut connector, &courier("different_page.json"))
        .await
        .assert_acknowledged_with_nothing();
    assert_eq!(
        connector.take_notes().ignored,
        [("other-page".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn a_sender_id_that_is_not_a_facebook_id_is_refused_as_malformed() {
    let mut connector = connector(&[PAGE]);
    deliver(&mut connector, &courier("invalid_urn.json"))
        .await
        .assert_refused(400);
}

#[tokio::test]
async fn a_delivery_about_another_object_than_page_is_refused() {
    let mut connector = connector(&[PAGE]);
    deliver(&mut connector, &courier("not_page.json"))
        .await
        .assert_refused(400);
}

#[tokio::test]
async fn empty_deliveries_opt_ins_and_unknown_events_are_acknowledged_with_nothing_and_counted() {
    let mut connector = connector(&[PAGE]);
    // Deliveries with no event count nothing; each event that is no message, postback,
    // referral or receipt counts once as ignored.
    for (name, ignored) in [
        ("no_entries.json", 0),
        ("no_messaging_entries.json", 0),
        ("unknown_messaging_entry.json", 1),
        ("notification_messages_optin.json", 1),
        ("referral_optin.json", 1),
        ("referral_optin_user_ref.json", 1),
    ] {
        let outcome = deliver(&mut connector, &courier(name)).await;
        outcome.assert_acknowledged_with_nothing();
        let expected: std::collections::BTreeMap<String, u64> = if ignored == 0 {
            Default::default()
        } else {
            [("unsupported-messaging-event".to_string(), ignored)].into()
        };
        assert_eq!(connector.take_notes().ignored, expected, "{name}");
    }
}

// ---- page-feed comments ----

#[tokio::test]
async fn a_comment_under_a_page_post_becomes_a_comment_message_threaded_by_its_comment() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &handwritten("comment_add.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "555_9001");
    assert_eq!(message.account, PAGE);
    assert_eq!(message.author.id, "7001");
    assert_eq!(message.author.display_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(
        message.text,
        "Il modem non si connette da stamattina e nessuno risponde"
    );
    assert_eq!(message.kind, MessageKind::Comment);
    assert_eq!(message.conversation_key, "fb:1234567890:comment:555_9001");
    assert_eq!(message.in_reply_to.as_deref(), Some("1234567890_555"));
    assert_eq!(message.created_at, 1_700_000_000_000);
    assert_eq!(extra(message, "post_id"), Some("1234567890_555"));
}

#[tokio::test]
async fn a_reply_under_a_comment_joins_that_comments_thread() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &handwritten("comment_reply.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "555_9003");
    assert_eq!(message.text, "Ancora niente, il modem lampeggia rosso");
    assert_eq!(message.conversation_key, "fb:1234567890:comment:555_9001");
    assert_eq!(message.in_reply_to.as_deref(), Some("555_9001"));
}

#[tokio::test]
async fn a_photo_comment_without_text_is_a_message_with_empty_text_and_the_photo() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &handwritten("comment_photo_only.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "555_9002");
    assert_eq!(message.author.id, "7002");
    assert_eq!(message.text, "");
    assert_eq!(message.kind, MessageKind::Comment);
    assert_eq!(
        message.attachments,
        vec![Attachment {
            kind: "image".to_string(),
            url: Some("https://scontent.xx.fbcdn.net/v/t39.1997-6/modem.jpg".to_string()),
            mime_type: None,
            description: None,
        }]
    );
}

#[tokio::test]
async fn the_pages_own_comments_are_not_customer_messages() {
    let mut connector = connector(&[PAGE]);
    deliver(&mut connector, &handwritten("comment_by_page.json"))
        .await
        .assert_acknowledged_with_nothing();
    assert_eq!(
        connector.take_notes().ignored,
        [("own-comment".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn a_customer_editing_or_removing_a_comment_is_an_edit_or_a_deletion_and_a_hide_is_ignored() {
    let mut connector = connector(&[PAGE]);
    let edited = handwritten("comment_edited.json");
    let outcome = deliver(&mut connector, &edited).await;
    let message = outcome.only_message();
    // The comment as it reads now, threaded as when it was added, marked edited at the
    // entry's time (Graph's `created_time` stays the comment's own).
    assert_eq!(message.external_id, "555_9001");
    assert_eq!(message.text, "Il modem non si connette da stamattina");
    assert_eq!(message.kind, MessageKind::Comment);
    assert_eq!(message.created_at, 1_700_001_200_000);
    assert_eq!(extra(message, "centralino:edited"), Some("1700001205000"));

    let with_verb = |verb: &str| {
        let mut delivery: serde_json::Value = serde_json::from_slice(&edited).unwrap();
        delivery["entry"][0]["changes"][0]["value"]["verb"] = serde_json::json!(verb);
        serde_json::to_vec(&delivery).unwrap()
    };
    let outcome = deliver(&mut connector, &with_verb("remove")).await;
    let deletion = outcome.only_message();
    assert_eq!(deletion.external_id, "555_9001");
    assert_eq!(deletion.account, PAGE);
    assert_eq!(deletion.created_at, 1_700_001_205_000);
    assert_eq!(extra(deletion, "centralino:deleted"), Some("true"));

    // The page hiding a comment changes nothing the customer wrote; said so by its verb.
    deliver(&mut connector, &with_verb("hide"))
        .await
        .assert_acknowledged_with_nothing();
    assert_eq!(
        connector.take_notes().ignored,
        [("hide".to_string(), 1)].into()
    );
}

// ---- verification ----

#[tokio::test]
async fn a_delivery_without_a_signature_is_refused_with_401() {
    let mut connector = connector(&[PAGE]);
    let outcome = connector
        .handle_webhook(post(&courier("hello_msg.json"), None))
        .await
        .unwrap();
    outcome.assert_refused(401);
}

#[tokio::test]
async fn a_delivery_signed_with_another_secret_is_refused_with_403() {
    let mut connector = connector(&[PAGE]);
    let body = courier("hello_msg.json");
    let forged = signature("not-the-app-secret", &body);
    let outcome = connector
        .handle_webhook(post(&body, Some(forged)))
        .await
        .unwrap();
    outcome.assert_refused(403);
}

#[tokio::test]
async fn a_delivery_with_one_tampered_byte_is_refused_with_403() {
    let mut connector = connector(&[PAGE]);
    let body = courier("hello_msg.json");
    let good = signature(APP_SECRET, &body);
    let mut tampered = body.clone();
    let at = tampered.windows(5).position(|w| w == b"Hello").unwrap();
    tampered[at] = b'J';
    let outcome = connector
        .handle_webhook(post(&tampered, Some(good)))
        .await
        .unwrap();
    outcome.assert_refused(403);
}

#[tokio::test]
async fn a_signature_header_that_is_not_sha256_hex_is_refused_with_403() {
    let mut connector = connector(&[PAGE]);
    let body = courier("hello_msg.json");
    for header in ["sha1=0123abcd", "sha256=zz-not-hex", ""] {
        let outcome = connector
            .handle_webhook(post(&body, Some(header.to_string())))
            .await
            .unwrap();
        outcome.assert_refused(403);
    }
}

#[tokio::test]
async fn a_signed_but_truncated_json_body_is_refused_with_400() {
    let mut connector = connector(&[PAGE]);
    let body = courier("hello_msg.json");
    let truncated = &body[..body.len() / 2];
    let outcome = connector
        .handle_webhook(post(truncated, Some(signature(APP_SECRET, truncated))))
        .await
        .unwrap();
    outcome.assert_refused(400);
}

// ---- send refusals that need no request to Graph ----

#[tokio::test]
async fn sending_from_a_page_that_is_not_configured_is_invalid_input() {
    let mut connector = connector(&[PAGE]);
    let err = connector
        .send(reply(
            "999",
            "fb:999:5678",
            MessageKind::PrivateMessage,
            "ciao",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("999")),
        "{err}"
    );
}

#[tokio::test]
async fn a_messenger_reply_longer_than_2000_characters_is_rejected_before_any_request() {
    let mut connector = connector(&[PAGE]);
    let err = connector
        .send(reply(
            PAGE,
            "fb:1234567890:5678",
            MessageKind::PrivateMessage,
            &"a".repeat(2001),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_reply_that_names_nobody_to_answer_is_invalid_input() {
    let mut connector = connector(&[PAGE]);
    for kind in [MessageKind::PrivateMessage, MessageKind::Comment] {
        let err = connector
            .send(reply(PAGE, "some-other-key", kind, "ciao"))
            .await
            .unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::InvalidInput { .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_reply_to_a_host_off_the_allow_list_is_refused_by_the_host_as_invalid_input() {
    // The page token is granted but graph.facebook.com is not on the (empty) allow-list.
    let mut connector = facebook()
        .credential(&format!("page-token-{PAGE}"), page_token("EAAB"))
        .account_config(page(PAGE))
        .instance()
        .unwrap();
    for (key, kind) in [
        ("fb:1234567890:5678", MessageKind::PrivateMessage),
        ("fb:1234567890:comment:555_9001", MessageKind::Comment),
        (
            "fb:1234567890:comment:555_9001",
            MessageKind::PrivateMessage,
        ),
    ] {
        let err = connector
            .send(reply(PAGE, key, kind, "ciao"))
            .await
            .unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::InvalidInput { .. }),
            "{err}"
        );
    }
}

// ---- sending against a scripted Graph API ----

#[tokio::test]
async fn a_reply_outside_the_messaging_window_is_rejected_and_carried_the_page_token() {
    let graph = ScriptedServer::start(vec![
        Exchange::post("/v25.0/me/messages").reply_json(
            400,
            json!({ "error": {
                "message": "(#10) This message is sent outside of allowed window.",
                "type": "OAuthException", "code": 10, "error_subcode": 2_018_278,
                "fbtrace_id": "Acentralino"
            }}),
        ),
        Exchange::post("/v25.0/555_9001/comments").reply_json(200, json!({ "id": "555_9100" })),
    ])
    .await
    .unwrap();
    let mut connector = facebook()
        .setting("graph_base", graph.base_url())
        .allow(graph.authority())
        .credential(&format!("page-token-{PAGE}"), page_token("EAAB"))
        .account_config(page(PAGE))
        .instance()
        .unwrap();

    let late = reply(
        PAGE,
        "fb:1234567890:5678",
        MessageKind::PrivateMessage,
        "ciao",
    );
    let err = connector.send(late).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { reason } if reason.contains("24-hour")),
        "{err}"
    );
    let comment = reply(
        PAGE,
        "fb:1234567890:comment:555_9001",
        MessageKind::Comment,
        "Ti scriviamo in privato",
    );
    let sent = connector.send(comment).await.unwrap();
    assert_eq!(sent.external_id, "555_9100");

    let requests = graph.requests();
    assert_eq!(
        requests[0].query_param("access_token").as_deref(),
        Some("EAAB")
    );
    assert_eq!(requests[0].json()["recipient"]["id"], "5678");
    assert_eq!(requests[0].json()["messaging_type"], "RESPONSE");
    assert_eq!(requests[1].json()["message"], "Ti scriviamo in privato");
}

// ---- tolerant parsing: nothing a customer wrote vanishes (issue 17) ----

#[tokio::test]
async fn a_fallback_attachment_keeps_the_title_and_link_it_carries_on_itself() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(
        &mut connector,
        &handwritten("fallback_link_on_attachment.json"),
    )
    .await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "m_fallback_link_1".to_string(),
            account: PAGE.to_string(),
            conversation_key: "fb:1234567890:5678".to_string(),
            author: Person {
                id: "5678".to_string(),
                handle: None,
                display_name: None,
            },
            text: "Guardate qui, la pagina dice che il servizio va https://www.tim.it/assistenza"
                .to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: vec![Attachment {
                kind: "fallback".to_string(),
                url: Some("https://www.tim.it/assistenza".to_string()),
                mime_type: None,
                description: Some("Assistenza TIM".to_string()),
            }],
            created_at: 1_700_000_100_000,
            extra: Vec::new(),
        }
    );
}

#[tokio::test]
async fn a_postback_without_a_title_says_its_payload() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &handwritten("postback_without_title.json")).await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "m_postback_no_title_1".to_string(),
            account: PAGE.to_string(),
            conversation_key: "fb:1234567890:5678".to_string(),
            author: Person {
                id: "5678".to_string(),
                handle: None,
                display_name: None,
            },
            text: "GUASTO_LINEA".to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 1_700_000_200_000,
            extra: vec![("postback_payload".to_string(), "GUASTO_LINEA".to_string())],
        }
    );
}

#[tokio::test]
async fn a_feed_comment_naming_its_author_by_sender_id_is_a_customer_comment() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(
        &mut connector,
        &handwritten("comment_add_sender_fields.json"),
    )
    .await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "555_9101".to_string(),
            account: PAGE.to_string(),
            conversation_key: "fb:1234567890:comment:555_9101".to_string(),
            author: Person {
                id: "7002".to_string(),
                handle: None,
                display_name: Some("Lucia Bianchi".to_string()),
            },
            text: "Anche da me niente linea a Torino".to_string(),
            kind: MessageKind::Comment,
            in_reply_to: Some("1234567890_555".to_string()),
            attachments: Vec::new(),
            created_at: 1_700_000_300_000,
            extra: vec![("post_id".to_string(), "1234567890_555".to_string())],
        }
    );
}

#[tokio::test]
async fn a_customer_mentioning_the_page_in_a_comment_or_a_post_is_a_comment_message() {
    let mut connector = connector(&[PAGE]);
    let outcome = deliver(&mut connector, &handwritten("mention_in_comment.json")).await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "444_9201".to_string(),
            account: PAGE.to_string(),
            conversation_key: "fb:1234567890:comment:444_9201".to_string(),
            author: Person {
                id: "7003".to_string(),
                handle: None,
                display_name: Some("Giulia Verdi".to_string()),
            },
            text: "TIM Italia mi avete lasciato senza fibra da tre giorni".to_string(),
            kind: MessageKind::Comment,
            in_reply_to: Some("7003_444".to_string()),
            attachments: Vec::new(),
            created_at: 1_700_000_400_000,
            extra: vec![
                ("post_id".to_string(), "7003_444".to_string()),
                ("mention".to_string(), "true".to_string()),
            ],
        }
    );

    // Named in a post: the post is the message and its thread; Graph sends no text.
    let outcome = deliver(&mut connector, &handwritten("mention_in_post.json")).await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "7004_333".to_string(),
            account: PAGE.to_string(),
            conversation_key: "fb:1234567890:comment:7004_333".to_string(),
            author: Person {
                id: "7004".to_string(),
                handle: None,
                display_name: Some("Paolo Neri".to_string()),
            },
            text: String::new(),
            kind: MessageKind::Comment,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 1_700_000_500_000,
            extra: vec![
                ("post_id".to_string(), "7004_333".to_string()),
                ("mention".to_string(), "true".to_string()),
            ],
        }
    );
}

#[tokio::test]
async fn removing_any_optional_field_from_a_messenger_delivery_never_loses_the_message_silently() {
    let recorded: serde_json::Value = serde_json::from_slice(&fixture_bytes(
        "webhooks/rapidpro_recorded_message_webhook_delivery.json",
    ))
    .unwrap();
    let mut valid: Vec<(String, serde_json::Value)> =
        vec![("rapidpro recorded".to_string(), recorded["body"].clone())];
    for name in [
        "hello_msg.json",
        "attachment.json",
        "fallback.json",
        "location_attachment.json",
        "thumbs_up.json",
        "reel.json",
        "postback.json",
        "postback_referral.json",
        "referral.json",
    ] {
        valid.push((
            name.to_string(),
            serde_json::from_slice(&courier(name)).unwrap(),
        ));
    }
    for name in [
        "standby_quick_reply_and_read.json",
        "fallback_link_on_attachment.json",
        "postback_without_title.json",
    ] {
        valid.push((
            name.to_string(),
            serde_json::from_slice(&handwritten(name)).unwrap(),
        ));
    }
    // The event lists and the key that says what an event is (a message, a postback, a
    // referral, a report) stay: without them it is another event, or none.
    let keep = |pointer: &str| {
        let parts: Vec<&str> = pointer.split('/').collect();
        match parts.as_slice() {
            ["", "entry"] => true,
            ["", "entry", _, "messaging" | "standby"] => true,
            ["", "entry", _, "messaging" | "standby", _, kind] => {
                ["message", "postback", "referral", "read", "delivery"].contains(kind)
            }
            _ => false,
        }
    };
    let mut connector = connector(&[PAGE, "311494332880244"]);
    let mut tried = 0;
    for (name, delivery) in valid {
        let body = serde_json::to_vec(&delivery).unwrap();
        let expected = deliver(&mut connector, &body).await.messages.len();
        assert!(expected > 0, "{name}");
        for (removed, mutated) in crate::support::without_each_field(&delivery, keep) {
            // A Chat Plugin guest (`user_ref` without an id) cannot be answered through the
            // page; the connector says so at warn instead.
            if removed.ends_with("/sender/id")
                && mutated
                    .pointer(&removed.replace("/id", "/user_ref"))
                    .is_some()
            {
                continue;
            }
            let body = serde_json::to_vec(&mutated).unwrap();
            let outcome = deliver(&mut connector, &body).await;
            let status = outcome.response.status;
            assert!(
                (status == 200 && outcome.messages.len() == expected)
                    || ((400..500).contains(&status) && outcome.messages.is_empty()),
                "{name} without {removed}: {status} with {:?}",
                outcome.messages
            );
            tried += 1;
        }
    }
    assert!(tried > 100, "{tried}");
}
