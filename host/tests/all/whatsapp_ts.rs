//! The `whatsapp-ts` connector: WhatsApp Business Cloud API, written in TypeScript and built
//! with componentize-js (plugins/whatsapp-ts), loaded as a real component like the Rust
//! connectors. Fed the Cloud API's webhook payloads from `tests/fixtures/whatsapp/`, signed
//! here the way Meta signs them; replies go to a scripted Graph endpoint on loopback. The
//! last test drives a whole host: signed webhook into the ingress, the CRM's event, the
//! operator's reply out through the outbox.

use std::path::PathBuf;

use centralino::PluginFailure;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::runtime::{ChannelInstance, Runtime};
use centralino::types::{
    AccountConfig, Capability, ConnectorConfig, DeliveryState, MessageKind, OutboundMessage,
    WebhookOutcome, WebhookRequest,
};
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::{ConnectorTest, Outcome, failure, webhook};
use serde_json::json;

use crate::support::eventually;

const APP_SECRET: &str = "wa-app-secret";
const VERIFY_TOKEN: &str = "wa-verify-me";
/// The business phone number id of the fixtures.
const PHONE: &str = "106540352242922";
/// Mario's WhatsApp id.
const MARIO: &str = "393471234567";
const TOKEN: &str = "EAAG-system-user-token";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/whatsapp")
        .join(name);
    std::fs::read(&path).unwrap()
}

/// Where the tests keep the compiled component: compiling its 12 MB (the JavaScript engine
/// included) takes a debug build of the host a minute, so each test process loads it from
/// the host's artifact cache instead, filled by whichever test compiles it first.
fn cache_dir() -> PathBuf {
    centralino_testkit::component("whatsapp-ts").with_file_name(".cache")
}

fn whatsapp() -> ConnectorTest {
    ConnectorTest::new("whatsapp-ts")
        .cache_dir(cache_dir())
        .secret("app_secret", APP_SECRET)
        .secret("verify_token", VERIFY_TOKEN)
        .account(PHONE, Some("wa-token"))
}

fn connector() -> ChannelInstance {
    whatsapp().instance().unwrap()
}

fn signed(body: &[u8]) -> WebhookRequest {
    let signature = webhook::sha256_hex(APP_SECRET, body);
    webhook::post(body, &[("x-hub-signature-256", signature.as_str())])
}

async fn deliver(connector: &mut ChannelInstance, body: &[u8]) -> WebhookOutcome {
    connector.handle_webhook(signed(body)).await.unwrap()
}

fn extra<'m>(pairs: &'m [(String, String)], name: &str) -> Option<&'m str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn reply(text: &str, in_reply_to: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        account: PHONE.to_string(),
        conversation_key: format!("wa:{PHONE}:{MARIO}"),
        kind: MessageKind::PrivateMessage,
        recipient: None,
        in_reply_to: in_reply_to.map(str::to_string),
        text: text.to_string(),
        attachments: Vec::new(),
        idempotency_key: "reply-1".to_string(),
    }
}

#[tokio::test]
async fn describes_itself_as_a_webhook_private_message_channel_with_a_24_hour_window() {
    let mut connector = connector();
    connector.ready().await.unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "whatsapp");
    assert_eq!(description.max_text_length, 4096);
    assert_eq!(
        description.capabilities,
        [Capability::PrivateMessage, Capability::Webhook]
    );
    // The reply window is a custom section the build script appends: the host reads it.
    let inspection =
        centralino::runtime::inspect_file(&centralino_testkit::component("whatsapp-ts")).unwrap();
    let window = inspection.reply_window.unwrap();
    assert_eq!(window.hours, 24);
    assert_eq!(window.kinds, [MessageKind::PrivateMessage]);
    assert_eq!(
        (
            inspection.plugin.name.as_str(),
            inspection.plugin.version.as_str()
        ),
        ("whatsapp-ts", "0.1.0")
    );

    // A bad setting is refused naming it.
    let err = whatsapp()
        .setting("api_version", "25")
        .instance()
        .unwrap()
        .ready()
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("api_version")),
        "{err}"
    );
}

#[tokio::test]
async fn a_signed_text_message_becomes_a_private_message_in_the_customers_thread() {
    let mut connector = connector();
    let outcome = deliver(&mut connector, &fixture("text.json")).await;
    let message = outcome.only_message();
    assert_eq!(
        message.external_id,
        "wamid.HBgMMzkzNDcxMjM0NTY3FQIAEhggQjg2MzA3RTc4NjVFOTg5QUQ2AA=="
    );
    assert_eq!(message.account, PHONE);
    assert_eq!(message.conversation_key, format!("wa:{PHONE}:{MARIO}"));
    assert_eq!(message.author.id, MARIO);
    assert_eq!(message.author.display_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(
        message.text,
        "Buongiorno, il mio modem non si connette più da ieri sera"
    );
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.created_at, 1_764_790_000_000);
    assert_eq!(message.in_reply_to, None);
    assert!(message.attachments.is_empty());
    assert_eq!(outcome.response.body, b"EVENT_RECEIVED");
}

#[tokio::test]
async fn a_missing_signature_is_401_and_a_wrong_one_403_with_nothing_delivered() {
    let mut connector = connector();
    let body = fixture("text.json");
    let unsigned = connector
        .handle_webhook(webhook::post(&body, &[]))
        .await
        .unwrap();
    unsigned.assert_refused(401);
    let forged = webhook::sha256_hex("someone-elses-secret", &body);
    let outcome = connector
        .handle_webhook(webhook::post(
            &body,
            &[("x-hub-signature-256", forged.as_str())],
        ))
        .await
        .unwrap();
    outcome.assert_refused(403);
    // Signed over other bytes (one changed character) is refused as well.
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'B').unwrap();
    tampered[at] = b'b';
    let signature = webhook::sha256_hex(APP_SECRET, &body);
    connector
        .handle_webhook(webhook::post(
            &tampered,
            &[("x-hub-signature-256", signature.as_str())],
        ))
        .await
        .unwrap()
        .assert_refused(403);
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let mut connector = connector();
    let ok = connector
        .handle_webhook(webhook::get(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .await
        .unwrap();
    assert_eq!(ok.response.status, 200);
    assert_eq!(ok.response.body, b"1158201444");
    let wrong = connector
        .handle_webhook(webhook::get(
            "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444",
        ))
        .await
        .unwrap();
    wrong.assert_refused(403);
    assert_ne!(wrong.response.body, b"1158201444");
    let reflected = connector
        .handle_webhook(webhook::get(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%3Cscript%3E"
        )))
        .await
        .unwrap();
    reflected.assert_refused(400);
}

#[tokio::test]
async fn an_image_keeps_its_media_id_caption_and_the_message_it_answers() {
    let mut connector = connector();
    let outcome = deliver(&mut connector, &fixture("image.json")).await;
    let message = outcome.only_message();
    assert_eq!(message.text, "la spia rossa del modem");
    assert_eq!(
        message.in_reply_to.as_deref(),
        Some("wamid.HBgMMzkzNDcxMjM0NTY3FQIAERgSQjVFNzA2RjFCMzI3MEFGQ0IxAA==")
    );
    let [image] = message.attachments.as_slice() else {
        panic!("{:?}", message.attachments)
    };
    assert_eq!(image.kind, "image");
    assert_eq!(image.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        image.url.as_deref(),
        Some("https://graph.facebook.com/v25.0/1479537139650973")
    );
    assert_eq!(
        extra(&message.extra, "whatsapp_media_id"),
        Some("1479537139650973")
    );
}

#[tokio::test]
async fn statuses_become_receipts_and_an_unhandled_message_type_is_acknowledged_not_stored() {
    let mut connector = connector();
    let outcome = deliver(&mut connector, &fixture("statuses.json")).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.messages.is_empty());
    let states: Vec<(&str, DeliveryState, u64)> = outcome
        .receipts
        .iter()
        .map(|r| (r.external_id.as_str(), r.state, r.at))
        .collect();
    let id = "wamid.HBgMMzkzNDcxMjM0NTY3FQIAERgSQjVFNzA2RjFCMzI3MEFGQ0IxAA==";
    // `sent` is not a receipt of the contract: it is logged as ignored.
    assert_eq!(
        states,
        [
            (id, DeliveryState::Delivered, 1_764_790_101_000),
            (id, DeliveryState::Read, 1_764_790_130_000)
        ]
    );
    assert!(outcome.receipts.iter().all(|r| r.account == PHONE));
    let ignored = |pairs: &[(&str, u64)]| -> std::collections::BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    assert_eq!(
        connector.take_notes().ignored,
        ignored(&[("status_sent", 1)])
    );

    // A location is not handled: acknowledged (Meta must not redeliver), and counted by the
    // host as ignored, by reason, from the plugin's `centralino:ignored` log line.
    deliver(&mut connector, &fixture("location.json"))
        .await
        .assert_acknowledged_with_nothing();
    assert_eq!(
        connector.take_notes().ignored,
        ignored(&[("unsupported_type", 1)])
    );

    // A delivery that is not a WhatsApp one is a malformed 400.
    let other = serde_json::to_vec(&json!({"object": "page", "entry": []})).unwrap();
    deliver(&mut connector, &other).await.assert_refused(400);
    deliver(&mut connector, b"not json")
        .await
        .assert_refused(400);
}

#[tokio::test]
async fn a_reply_is_a_threaded_text_message_with_the_bearer_attached_by_the_host() {
    let graph = ScriptedServer::start(vec![
        Exchange::post(&format!("/v25.0/{PHONE}/messages")).reply_json(
            200,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": MARIO, "wa_id": MARIO}],
                "messages": [{"id": "wamid.sent-1"}]
            }),
        ),
        Exchange::post(&format!("/v25.0/{PHONE}/messages")).reply_json(
            400,
            json!({"error": {"message": "Re-engagement message", "type": "OAuthException",
                             "code": 131047, "fbtrace_id": "A1"}}),
        ),
    ])
    .await
    .unwrap();
    let mut connector = whatsapp()
        .setting("graph_base", graph.base_url())
        .allow(graph.authority())
        .bearer("wa-token", TOKEN)
        .instance()
        .unwrap();
    let sent = connector
        .send(reply("Ciao Mario, riavvia il modem", Some("wamid.in-1")))
        .await
        .unwrap();
    assert_eq!(sent.external_id, "wamid.sent-1");
    let requests = graph.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        requests[0].json(),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": MARIO,
            "type": "text",
            "text": {"body": "Ciao Mario, riavvia il modem", "preview_url": false},
            "context": {"message_id": "wamid.in-1"}
        })
    );

    // Past the 24 h window WhatsApp refuses with 131047: rejected, not retried.
    let err = connector.send(reply("ancora lì?", None)).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { reason } if reason.contains("outside_messaging_window")),
        "{err}"
    );
    // Too long and comment replies are refused before any request.
    for message in [
        reply(&"a".repeat(4097), None),
        OutboundMessage {
            kind: MessageKind::Comment,
            ..reply("ciao", None)
        },
    ] {
        let err = connector.send(message).await.unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::Rejected { .. }),
            "{err}"
        );
    }
    assert_eq!(graph.requests().len(), 2);
}

#[tokio::test]
async fn end_to_end_a_signed_webhook_reaches_the_crm_and_the_operators_reply_reaches_graph() {
    let graph = ScriptedServer::start(vec![
        Exchange::post(&format!("/v25.0/{PHONE}/messages")).reply_json(
            200,
            json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.reply-1"}]}),
        ),
    ])
    .await
    .unwrap();
    let mut spec = ConnectorSpec::new(
        "whatsapp-ts",
        centralino_testkit::component("whatsapp-ts"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: PHONE.to_string(),
                credential: Some("wa-token".to_string()),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_host(graph.authority())
        .credential("wa-token", Credential::Bearer(Secret::new(TOKEN)))
        .secret("app_secret", Secret::new(APP_SECRET))
        .secret("verify_token", Secret::new(VERIFY_TOKEN));
    let runtime = Runtime::builder().cache_dir(cache_dir()).build().unwrap();
    let host = centralino::Host::builder()
        .runtime(runtime)
        .connector(spec)
        .build()
        .await
        .unwrap();
    let inbox = host.local_inbox().unwrap().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    let _server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });

    // Meta verifies the endpoint, then delivers Mario's message, signed.
    let client = reqwest::Client::new();
    let url = format!("{base}/webhooks/whatsapp-ts");
    let handshake = client
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=424242"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status().as_u16(), 200);
    assert_eq!(handshake.text().await.unwrap(), "424242");
    let body = fixture("text.json");
    let post = |signature: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body.clone())
            .send()
    };
    let forged = post(webhook::sha256_hex("not-the-app-secret", &body))
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);
    let delivered = post(webhook::sha256_hex(APP_SECRET, &body)).await.unwrap();
    assert_eq!(delivered.status().as_u16(), 200);

    // The CRM hears of it.
    eventually("the CRM's message event", async || {
        inbox
            .events()
            .iter()
            .any(|d| matches!(&d.event, CrmEvent::MessageReceived { .. }))
    })
    .await;
    let events = inbox.events();
    let Some((conversation, message)) = events.iter().find_map(|d| match &d.event {
        CrmEvent::MessageReceived {
            conversation_id,
            message,
            connector,
            ..
        } if connector == "whatsapp-ts" => Some((conversation_id.clone(), message.clone())),
        _ => None,
    }) else {
        panic!("{events:?}")
    };
    assert_eq!(message.author.id, MARIO);
    assert_eq!(
        message.text,
        "Buongiorno, il mio modem non si connette più da ieri sera"
    );

    // The fixture's message was written in December 2025, long past WhatsApp's 24 h
    // window that the TypeScript connector declares: the host refuses Marco's reply before
    // any call, with a reason the CRM can show.
    let stale = host
        .reply(
            "default",
            &conversation,
            "marco",
            None,
            "Ci scusi",
            "wa-stale-1",
        )
        .await
        .unwrap();
    eventually("the CRM hears why it was not sent", async || {
        inbox.events().iter().any(|d| {
            matches!(&d.event, CrmEvent::ReplyFailed { outbox_id, reason, .. }
                if *outbox_id == stale.id && reason.contains("outside_messaging_window"))
        })
    })
    .await;
    assert!(graph.requests().is_empty(), "no call was made");

    // Mario writes again now; Marco answers, and the outbox sends it through the plugin
    // to Graph, threaded on Mario's new message, with the token the plugin only named.
    let mut fresh: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let written = &mut fresh["entry"][0]["changes"][0]["value"]["messages"][0];
    written["id"] = json!("wamid.fresh-1");
    written["timestamp"] = json!(now.to_string());
    written["text"]["body"] = json!("ci siete?");
    let fresh = serde_json::to_vec(&fresh).unwrap();
    let delivered = client
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            webhook::sha256_hex(APP_SECRET, &fresh),
        )
        .body(fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status().as_u16(), 200);
    host.reply(
        "default",
        &conversation,
        "marco",
        None,
        "Ciao Mario, sono Marco: proviamo a riavviarlo insieme",
        "wa-reply-1",
    )
    .await
    .unwrap();
    eventually("the reply at Graph", async || !graph.requests().is_empty()).await;
    let requests = graph.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let sent = requests[0].json();
    assert_eq!(sent["to"], MARIO);
    assert_eq!(
        sent["text"]["body"],
        "Ciao Mario, sono Marco: proviamo a riavviarlo insieme"
    );
    assert_eq!(sent["context"]["message_id"], "wamid.fresh-1");
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    let inbound: Vec<&str> = messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .map(|m| m.message.external_id.as_str())
        .collect();
    assert_eq!(inbound, [message.external_id.as_str(), "wamid.fresh-1"]);
}
