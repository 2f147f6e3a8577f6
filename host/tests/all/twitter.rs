//! The `twitter` connector, loaded as a real component, fed Account Activity deliveries
//! from `tests/fixtures/twitter/` (each signed here the way X signs them) and asked to send
//! what it can refuse without reaching X.

use std::path::PathBuf;

use centralino::PluginFailure;
use centralino::runtime::ChannelInstance;
use centralino::types::{
    AccountConfig, Attachment, Capability, ConnectorConfig, DeliveryState, Message, MessageKind,
    OutboundMessage, Person, WebhookOutcome, WebhookRequest,
};
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::{ConnectorTest, Outcome, failure, webhook};
use serde_json::{Value, json};

/// The consumer secret of the CRC vector in `courier_twitter_handler_dm_and_crc_vector.json`.
const CONSUMER_SECRET: &str = "apiSecret";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/twitter")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn activity(name: &str) -> Value {
    fixture(&format!("account_activity/{name}"))
}

fn account(id: &str, handle: &str) -> AccountConfig {
    AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        credential: Some(format!("token-{handle}")),
        ..AccountConfig::default()
    }
}

/// A connector serving `accounts`, granted the consumer secret under its default name.
fn connector(accounts: Vec<AccountConfig>) -> ChannelInstance {
    connector_with(ConnectorConfig {
        settings: Vec::new(),
        accounts,
    })
}

fn twitter() -> ConnectorTest {
    ConnectorTest::new("twitter").secret("consumer_secret", CONSUMER_SECRET)
}

fn connector_with(config: ConnectorConfig) -> ChannelInstance {
    twitter().config(config).instance().unwrap()
}

/// `sha256=` + base64 of the HMAC-SHA256 of `body`, as X computes it.
fn signature(secret: &str, body: &[u8]) -> String {
    webhook::sha256_base64(secret, body)
}

fn post(body: &[u8], signature: Option<String>) -> WebhookRequest {
    let header = signature
        .as_deref()
        .map(|s| ("x-twitter-webhooks-signature", s));
    webhook::post(body, header.as_slice())
}

/// A correctly signed delivery of `payload`.
fn signed(payload: &Value) -> WebhookRequest {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = signature(CONSUMER_SECRET, &body);
    post(&body, Some(signature))
}

async fn deliver(connector: &mut ChannelInstance, payload: &Value) -> WebhookOutcome {
    connector.handle_webhook(signed(payload)).await.unwrap()
}

/// The truncated long-form post of X's docs, with the author the docs elide (`user: null`)
/// filled in: Mario (`42`) writing for the subscribed account `1603419180975409153`.
fn long_post() -> Value {
    let mut payload = activity("xdocs_tweet_create_events_longform_truncated.json");
    payload["tweet_create_events"][0]["user"] = json!({
        "id": 42, "id_str": "42", "screen_name": "mario_rossi", "name": "Mario Rossi"
    });
    payload
}

const LONG_POST_ACCOUNT: &str = "1603419180975409153";

/// A short post by Mario (`42`), delivered for `delivered_for`.
fn short_post(delivered_for: &str, text: &str) -> Value {
    json!({
        "for_user_id": delivered_for,
        "tweet_create_events": [{
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "id": 1050118621198921700u64,
            "id_str": "1050118621198921728",
            "text": text,
            "truncated": false,
            "user": { "id": 42, "id_str": "42", "screen_name": "mario_rossi", "name": "Mario Rossi" },
            "entities": { "user_mentions": [] }
        }]
    })
}

fn mention(id: &str, handle: &str) -> Value {
    json!({ "screen_name": handle, "id_str": id, "indices": [0, 1] })
}

fn reply(account: &str, kind: MessageKind, text: &str) -> OutboundMessage {
    OutboundMessage {
        account: account.to_string(),
        conversation_key: "tweet:1050118621198921728".to_string(),
        kind,
        recipient: Some("42".to_string()),
        in_reply_to: Some("1050118621198921728".to_string()),
        text: text.to_string(),
        attachments: Vec::new(),
        idempotency_key: "reply-1".to_string(),
    }
}

// ---- describe and configure ----

#[tokio::test]
async fn describes_itself_as_an_x_connector_that_polls_takes_webhooks_and_replies_in_280_characters()
 {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    connector.ready().await.unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "twitter");
    assert_eq!(description.max_text_length, 280);
    for capability in [
        Capability::PublicReply,
        Capability::PrivateMessage,
        Capability::Webhook,
        Capability::Polling,
        Capability::Attachments,
    ] {
        assert!(
            description.capabilities.contains(&capability),
            "{capability:?}"
        );
    }
    assert!(!description.capabilities.contains(&Capability::CommentReply));
}

#[tokio::test]
async fn an_unknown_setting_is_refused_naming_the_key() {
    let mut connector = connector_with(ConnectorConfig {
        settings: vec![("api_bse".to_string(), "https://api.x.com".to_string())],
        accounts: vec![account("1001", "TIM_Official")],
    });
    let err = connector.ready().await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("`api_bse`")),
        "{err}"
    );
}

#[tokio::test]
async fn an_account_id_that_is_not_a_numeric_x_user_id_is_refused() {
    let mut connector = connector(vec![account("TIM_Official", "TIM_Official")]);
    let err = connector.ready().await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("TIM_Official")),
        "{err}"
    );
}

// ---- the CRC challenge ----

#[tokio::test]
async fn the_crc_answer_reproduces_the_published_vector_over_the_url_decoded_token() {
    let vector =
        activity("courier_twitter_handler_dm_and_crc_vector.json")["crc_test_vector"].clone();
    let mut connector = connector(vec![account("835740314006511618", "resistbot")]);
    let outcome = connector
        .handle_webhook(WebhookRequest {
            method: "GET".to_string(),
            path: "/".to_string(),
            query: "crc_token=test+token".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(outcome.response.status, 200);
    assert!(
        outcome
            .response
            .headers
            .contains(&("content-type".to_string(), "application/json".to_string()))
    );
    let body: Value = serde_json::from_slice(&outcome.response.body).unwrap();
    assert_eq!(body["response_token"], vector["expected_response_token"]);
    assert_ne!(body["response_token"], vector["wrong_if_not_url_decoded"]);
    assert!(outcome.messages.is_empty());
}

#[tokio::test]
async fn a_crc_request_without_a_token_is_refused() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let outcome = connector
        .handle_webhook(WebhookRequest {
            method: "GET".to_string(),
            path: "/".to_string(),
            query: "nonce=1".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await
        .unwrap();
    outcome.assert_refused(400);
}

// ---- direct messages ----

#[tokio::test]
async fn a_customer_dm_becomes_a_private_message_threaded_by_account_and_customer() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let outcome = deliver(
        &mut connector,
        &activity("xdocs_direct_message_events.json"),
    )
    .await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "954491830116155396");
    assert_eq!(message.account, "4337869213");
    assert_eq!(message.author.id, "3001969357");
    assert_eq!(message.author.handle.as_deref(), Some("furiouscamper"));
    assert_eq!(
        message.author.display_name.as_deref(),
        Some("Jordan Brinks")
    );
    assert_eq!(message.text, "Hello World!");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.conversation_key, "dm:4337869213:3001969357");
    assert_eq!(message.in_reply_to, None);
    assert_eq!(message.created_at, 1_516_403_560_557);
    assert!(message.attachments.is_empty());
}

#[tokio::test]
async fn dm_text_is_unescaped_and_a_delivery_without_for_user_id_goes_to_the_recipient() {
    let payload =
        activity("courier_twitter_handler_dm_and_crc_vector.json")["dm_event_html_escaped_text"]
            .clone();
    let mut connector = connector(vec![account("835740314006511618", "resistbot")]);
    let outcome = deliver(&mut connector, &payload).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "958501034212564996");
    assert_eq!(message.account, "835740314006511618");
    assert_eq!(message.author.id, "272953809");
    assert_eq!(message.author.handle.as_deref(), Some("nicpottier"));
    assert_eq!(
        message.author.display_name.as_deref(),
        Some("Nicolas Pottier")
    );
    assert_eq!(message.text, "Hello World & good wishes.");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.conversation_key, "dm:835740314006511618:272953809");
    assert_eq!(message.in_reply_to, None);
    assert_eq!(message.created_at, 1_517_359_429_301);
}

#[tokio::test]
async fn a_dm_media_attachment_keeps_its_address() {
    let payload = activity("courier_twitter_handler_dm_and_crc_vector.json")
        ["dm_event_with_media_attachment_trimmed"]
        .clone();
    let mut connector = connector(vec![account("835740314006511618", "resistbot")]);
    let outcome = deliver(&mut connector, &payload).await;
    let message = outcome.only_message();
    assert_eq!(message.text, "Hello");
    assert_eq!(
        message.attachments,
        vec![Attachment {
            // The trimmed media object has no type: the connector does not guess one.
            kind: "media".to_string(),
            url: Some("https://image.foo.com/image.jpg".to_string()),
            mime_type: None,
            description: None,
        }]
    );
}

#[tokio::test]
async fn a_dm_sent_by_a_configured_account_is_an_echo_not_a_customer_message() {
    // The sender of the docs' DM, 3001969357, is one of ours here: X reports our own DM.
    let mut connector = connector(vec![
        account("4337869213", "Harris_0ff"),
        account("3001969357", "furiouscamper"),
    ]);
    let outcome = deliver(
        &mut connector,
        &activity("xdocs_direct_message_events.json"),
    )
    .await;
    outcome.assert_acknowledged_with_nothing();
}

#[tokio::test]
async fn a_dm_for_an_account_the_connector_does_not_serve_produces_nothing() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let outcome = deliver(
        &mut connector,
        &activity("xdocs_direct_message_events.json"),
    )
    .await;
    outcome.assert_acknowledged_with_nothing();
}

#[tokio::test]
async fn a_customer_reading_the_companys_dms_is_a_read_receipt_not_a_message() {
    let payload = activity("xdocs_direct_message_mark_read_events.json");
    // 199566737 read the conversation with 3001969357 up to event 963085315333238788.
    let mut ours = connector(vec![account("3001969357", "furiouscamper")]);
    let outcome = deliver(&mut ours, &payload).await;
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.messages.is_empty());
    assert_eq!(outcome.receipts.len(), 1);
    let receipt = &outcome.receipts[0];
    assert_eq!(receipt.account, "3001969357");
    assert_eq!(receipt.external_id, "963085315333238788");
    assert_eq!(receipt.state, DeliveryState::Read);
    assert_eq!(receipt.at, 1_518_452_444_662);

    let mut not_ours = connector(vec![account("4337869213", "Harris_0ff")]);
    deliver(&mut not_ours, &payload)
        .await
        .assert_acknowledged_with_nothing();
}

// ---- posts ----

#[tokio::test]
async fn a_truncated_post_gives_its_full_text_and_its_string_id() {
    let mut connector = connector(vec![account(LONG_POST_ACCOUNT, "TIM_Official")]);
    let payload = long_post();
    let outcome = deliver(&mut connector, &payload).await;
    let message = outcome.only_message();
    // `id_str`, not the numeric `id` (1924465506158879000), which lost precision.
    assert_eq!(message.external_id, "1924465506158878979");
    assert_eq!(message.account, LONG_POST_ACCOUNT);
    assert_eq!(message.author.id, "42");
    assert_eq!(message.author.handle.as_deref(), Some("mario_rossi"));
    assert_eq!(message.author.display_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(
        message.text,
        payload["tweet_create_events"][0]["extended_tweet"]["full_text"]
            .as_str()
            .unwrap()
    );
    assert!(!message.text.contains("https://t.co/bzbEKj8cd8"));
    assert_eq!(message.kind, MessageKind::PublicPost);
    // A post that answers nothing starts its own thread.
    assert_eq!(message.conversation_key, "tweet:1924465506158878979");
    assert_eq!(message.in_reply_to, None);
    // Mon May 19 14:01:46 +0000 2025
    assert_eq!(message.created_at, 1_747_663_306_000);
}

#[tokio::test]
async fn a_post_without_its_author_is_refused_as_malformed() {
    // The docs' example as published elides the author (`user: null`).
    let mut connector = connector(vec![account(LONG_POST_ACCOUNT, "TIM_Official")]);
    let payload = activity("xdocs_tweet_create_events_longform_truncated.json");
    deliver(&mut connector, &payload).await.assert_refused(400);
}

#[tokio::test]
async fn a_reply_is_threaded_under_the_post_it_answers_with_entities_unescaped() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let mut payload = short_post(
        "1001",
        "@TIM_Official &lt;3 modem &amp; router &quot;KO&quot; &#39;oggi&#39; &amp;lt;",
    );
    let post = &mut payload["tweet_create_events"][0];
    post["in_reply_to_status_id_str"] = json!("1050118000000000000");
    post["in_reply_to_user_id_str"] = json!("1001");
    post["entities"]["user_mentions"] = json!([mention("1001", "TIM_Official")]);
    let outcome = deliver(&mut connector, &payload).await;
    let message = outcome.only_message();
    assert_eq!(message.external_id, "1050118621198921728");
    assert_eq!(message.account, "1001");
    assert_eq!(
        message.text,
        "@TIM_Official <3 modem & router \"KO\" 'oggi' &lt;"
    );
    assert_eq!(message.in_reply_to.as_deref(), Some("1050118000000000000"));
    assert_eq!(message.conversation_key, "tweet:1050118000000000000");
    assert_eq!(message.kind, MessageKind::PublicPost);
    assert_eq!(message.created_at, 1_539_202_764_000);
}

#[tokio::test]
async fn a_post_carrying_its_conversation_id_is_threaded_under_the_root() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let mut payload = short_post("1001", "@TIM_Official ancora niente");
    let post = &mut payload["tweet_create_events"][0];
    post["in_reply_to_status_id_str"] = json!("1050118000000000000");
    post["conversation_id_str"] = json!("1050117000000000000");
    let outcome = deliver(&mut connector, &payload).await;
    let message = outcome.only_message();
    assert_eq!(message.conversation_key, "tweet:1050117000000000000");
    assert_eq!(message.in_reply_to.as_deref(), Some("1050118000000000000"));
}

#[tokio::test]
async fn a_post_by_a_configured_account_is_not_a_customer_message() {
    let mut connector = connector(vec![account(LONG_POST_ACCOUNT, "TIM_Official")]);
    let mut payload = long_post();
    payload["tweet_create_events"][0]["user"]["id_str"] = json!(LONG_POST_ACCOUNT);
    deliver(&mut connector, &payload)
        .await
        .assert_acknowledged_with_nothing();
}

#[tokio::test]
async fn a_retweet_is_not_a_customer_message() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let mut payload = short_post("1001", "RT @TIM_Official: nuove offerte fibra");
    payload["tweet_create_events"][0]["retweeted_status"] =
        json!({ "id_str": "1049000000000000000" });
    deliver(&mut connector, &payload)
        .await
        .assert_acknowledged_with_nothing();
}

#[tokio::test]
async fn a_post_addressed_to_two_accounts_is_attributed_to_the_same_account_in_every_copy() {
    // X delivers the post once per subscribed account it addresses.
    let accounts = vec![
        account("1001", "TIM_Official"),
        account("2002", "TIM_Marco"),
    ];
    let mut connector = connector(accounts);
    let mut keys = Vec::new();
    for delivered_for in ["2002", "1001"] {
        let mut payload = short_post(delivered_for, "@TIM_Marco @TIM_Official il modem non va");
        payload["tweet_create_events"][0]["entities"]["user_mentions"] = json!([
            mention("2002", "TIM_Marco"),
            mention("1001", "TIM_Official")
        ]);
        let outcome = deliver(&mut connector, &payload).await;
        let message = outcome.only_message();
        keys.push((message.account.clone(), message.external_id.clone()));
    }
    // The first configured account mentioned, whichever copy it is.
    assert_eq!(
        keys[0],
        ("1001".to_string(), "1050118621198921728".to_string())
    );
    assert_eq!(keys[0], keys[1]);

    // A reply to an operator's post stays with that operator in every copy.
    let mut owners = Vec::new();
    for delivered_for in ["1001", "2002"] {
        let mut payload = short_post(delivered_for, "@TIM_Marco @TIM_Official grazie");
        let post = &mut payload["tweet_create_events"][0];
        post["in_reply_to_status_id_str"] = json!("1050118000000000000");
        post["in_reply_to_user_id_str"] = json!("2002");
        post["entities"]["user_mentions"] = json!([
            mention("2002", "TIM_Marco"),
            mention("1001", "TIM_Official")
        ]);
        owners.push(
            deliver(&mut connector, &payload)
                .await
                .only_message()
                .account
                .clone(),
        );
    }
    assert_eq!(owners, ["2002", "2002"]);
}

// ---- events that are not customer messages ----

#[tokio::test]
async fn typing_delete_and_user_events_are_acknowledged_with_nothing_and_counted_as_ignored() {
    let mut connector = connector(vec![
        account("4337869213", "Harris_0ff"),
        account("930524282358325248", "deleter"),
        account("3001969357", "furiouscamper"),
    ]);
    for (name, reason) in [
        (
            "xdocs_direct_message_indicate_typing_events.json",
            "direct_message_indicate_typing_events",
        ),
        // The documented deletion is the subscribed account's own post.
        ("xdocs_tweet_delete_events.json", "own-deletion"),
        ("xdocs_user_event.json", "user_event"),
    ] {
        let outcome = deliver(&mut connector, &activity(name)).await;
        outcome.assert_acknowledged_with_nothing();
        let ignored = connector.take_notes().ignored;
        assert_eq!(
            ignored,
            [(reason.to_string(), 1)].into(),
            "{name}: {ignored:?}"
        );
    }
}

// ---- verification ----

#[tokio::test]
async fn a_delivery_without_a_signature_is_refused_with_401() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let body = serde_json::to_vec(&activity("xdocs_direct_message_events.json")).unwrap();
    let outcome = connector.handle_webhook(post(&body, None)).await.unwrap();
    outcome.assert_refused(401);
}

#[tokio::test]
async fn a_delivery_signed_with_another_secret_is_refused_with_403() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let body = serde_json::to_vec(&activity("xdocs_direct_message_events.json")).unwrap();
    let forged = signature("not-the-consumer-secret", &body);
    let outcome = connector
        .handle_webhook(post(&body, Some(forged)))
        .await
        .unwrap();
    outcome.assert_refused(403);
}

#[tokio::test]
async fn a_delivery_with_one_tampered_byte_is_refused_with_403() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let body = serde_json::to_vec(&activity("xdocs_direct_message_events.json")).unwrap();
    let good = signature(CONSUMER_SECRET, &body);
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
async fn a_signature_header_that_is_not_sha256_base64_is_refused_with_403() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let body = serde_json::to_vec(&activity("xdocs_direct_message_events.json")).unwrap();
    for header in ["sha1=abc", "sha256=***not base64***", ""] {
        let outcome = connector
            .handle_webhook(post(&body, Some(header.to_string())))
            .await
            .unwrap();
        outcome.assert_refused(403);
    }
}

#[tokio::test]
async fn a_signed_but_truncated_json_body_is_refused_with_400() {
    let mut connector = connector(vec![account("4337869213", "Harris_0ff")]);
    let body = serde_json::to_vec(&activity("xdocs_direct_message_events.json")).unwrap();
    let truncated = &body[..body.len() / 2];
    let outcome = connector
        .handle_webhook(post(truncated, Some(signature(CONSUMER_SECRET, truncated))))
        .await
        .unwrap();
    outcome.assert_refused(400);
}

#[tokio::test]
async fn a_delivery_cannot_be_verified_when_the_named_secret_is_not_granted() {
    let mut connector = ConnectorTest::new("twitter")
        .setting("consumer_secret", "x_app_secret")
        .account_config(account("4337869213", "Harris_0ff"))
        .instance()
        .unwrap();
    let err = connector
        .handle_webhook(signed(&activity("xdocs_direct_message_events.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("x_app_secret")),
        "{err}"
    );
}

#[tokio::test]
async fn methods_other_than_get_and_post_are_refused_with_405() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let outcome = connector
        .handle_webhook(WebhookRequest {
            method: "DELETE".to_string(),
            ..post(b"{}", None)
        })
        .await
        .unwrap();
    outcome.assert_refused(405);
}

// ---- send and poll refusals that need no request to X ----

#[tokio::test]
async fn sending_from_an_account_that_is_not_configured_is_invalid_input() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let err = connector
        .send(reply("9999", MessageKind::PublicPost, "ciao"))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("9999")),
        "{err}"
    );
}

#[tokio::test]
async fn a_public_reply_longer_than_280_characters_is_rejected_before_any_request() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let err = connector
        .send(reply("1001", MessageKind::PublicPost, &"è".repeat(281)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_comment_reply_is_invalid_input_on_x() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let err = connector
        .send(reply("1001", MessageKind::Comment, "ciao"))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_dm_without_a_recipient_outside_a_dm_thread_is_invalid_input() {
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let message = OutboundMessage {
        recipient: None,
        ..reply("1001", MessageKind::PrivateMessage, "ciao")
    };
    let err = connector.send(message).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_reply_to_a_host_off_the_allow_list_is_refused_by_the_host_as_invalid_input() {
    // The credential is granted but api.x.com is not on the (empty) allow-list.
    let mut connector = ConnectorTest::new("twitter")
        .bearer("token-TIM_Official", "t0ken")
        .account_config(account("1001", "TIM_Official"))
        .instance()
        .unwrap();
    let err = connector
        .send(reply("1001", MessageKind::PublicPost, "ciao"))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
    let err = connector.poll("1001", None).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn polling_an_account_that_is_not_configured_or_has_no_credential_is_invalid_input() {
    let mut connector = connector(vec![
        account("1001", "TIM_Official"),
        AccountConfig {
            credential: None,
            ..account("2002", "TIM_Marco")
        },
    ]);
    for (account, named) in [("9999", "9999"), ("2002", "2002")] {
        let err = connector.poll(account, None).await.unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains(named)),
            "{err}"
        );
    }
    let err = connector
        .poll("1001", Some("not a cursor"))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { .. }),
        "{err}"
    );
}

// ---- polling against a scripted X API ----

#[tokio::test]
async fn a_poll_asks_since_its_cursor_and_a_429_is_rate_limited_until_xs_reset() {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let x = ScriptedServer::start(vec![
        Exchange::get("/2/users/1001/mentions").reply_json(
            200,
            json!({
                "data": [{ "id": "1900", "text": "@TIM_Official aiuto &amp; grazie", "author_id": "42",
                           "conversation_id": "1900", "created_at": "2025-05-19T14:01:46.000Z" }],
                "includes": { "users": [{ "id": "42", "username": "mario_rossi", "name": "Mario Rossi" }] },
                "meta": { "newest_id": "1900", "result_count": 1 }
            }),
        ),
        Exchange::get("/2/dm_events").reply_json(200, json!({ "meta": { "result_count": 0 } })),
        Exchange::get("/2/users/1001/mentions")
            .reply_json(429, json!({ "title": "Too Many Requests", "status": 429 }))
            .header("x-rate-limit-reset", &reset.to_string()),
    ])
    .await
    .unwrap();
    let mut connector = twitter()
        .setting("api_base", x.base_url())
        .allow(x.authority())
        .bearer("token-TIM_Official", "t0ken")
        .account_config(account("1001", "TIM_Official"))
        .instance()
        .unwrap();

    let polled = connector
        .poll("1001", Some(r#"{"mentions":"1800"}"#))
        .await
        .unwrap();
    assert_eq!(polled.messages.len(), 1);
    let message = &polled.messages[0];
    assert_eq!(message.external_id, "1900");
    assert_eq!(message.author.handle.as_deref(), Some("mario_rossi"));
    assert_eq!(message.text, "@TIM_Official aiuto & grazie");
    assert_eq!(message.conversation_key, "tweet:1900");
    assert_eq!(message.created_at, 1_747_663_306_000);
    let cursor = polled.cursor.unwrap();
    assert!(cursor.contains("1900"), "{cursor}");
    let first = &x.requests()[0];
    assert_eq!(first.query_param("since_id").as_deref(), Some("1800"));
    assert_eq!(first.header("authorization"), Some("Bearer t0ken"));

    let err = connector.poll("1001", Some(&cursor)).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::RateLimited { retry_after_ms, .. } if (100_000..=120_000).contains(retry_after_ms)),
        "{err}"
    );
    assert_eq!(
        x.requests()[2].query_param("since_id").as_deref(),
        Some("1900")
    );
    assert!(x.unused().is_empty());
}

// ---- tolerant parsing: nothing a customer wrote vanishes (issue 17) ----

/// A connector for account `1001` polling the scripted X API at `x`.
fn polling(x: &ScriptedServer) -> ChannelInstance {
    twitter()
        .setting("api_base", x.base_url())
        .allow(x.authority())
        .bearer("token-TIM_Official", "t0ken")
        .account_config(account("1001", "TIM_Official"))
        .instance()
        .unwrap()
}

#[tokio::test]
async fn polled_posts_without_author_or_time_are_delivered_with_the_author_unknown_and_the_time_of_their_id()
 {
    // A recorded v2 page whose posts carry neither author_id nor created_at nor includes,
    // and a recorded DM page whose events carry no sender_id.
    let posts = fixture("api_v2/tweepy_search_recent_tweets.json");
    let dms = fixture("api_v2/tweepy_dm_events_lookup.json");
    let x = ScriptedServer::start(vec![
        Exchange::get("/2/users/1001/mentions").reply_json(200, posts.clone()),
        Exchange::get("/2/dm_events").reply_json(200, dms.clone()),
    ])
    .await
    .unwrap();
    let mut connector = polling(&x);

    let polled = connector.poll("1001", None).await.unwrap();
    // Every post is a message, oldest first; none is dropped for lack of an author.
    let ids: Vec<&str> = polled
        .messages
        .iter()
        .map(|m| m.external_id.as_str())
        .collect();
    let mut expected: Vec<&str> = posts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["id"].as_str().unwrap())
        .collect();
    expected.reverse();
    assert_eq!(ids, expected);
    // The oldest, exactly: author unknown (empty id, said in extra), the time its id
    // encodes ((id >> 22) + 1288834974657 = 2022-10-07T22:24:12.742Z; its text, written
    // by the test that posted it, says 22:24:12.640), never the host's clock.
    assert_eq!(
        polled.messages[0],
        Message {
            external_id: "1578511538419212288".to_string(),
            account: "1001".to_string(),
            conversation_key: "tweet:1578511538419212288".to_string(),
            author: Person {
                id: String::new(),
                handle: None,
                display_name: None,
            },
            text: "2022-10-07 22:24:12.640234 tweepy".to_string(),
            kind: MessageKind::PublicPost,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 1_665_181_452_742,
            extra: vec![("author_unknown".to_string(), "true".to_string())],
        }
    );
    assert_eq!(polled.messages[9].created_at, 1_665_182_532_752);
    // The mentions cursor passes every post (all became messages); DM events without a
    // sender cannot become messages, so the DM cursor does not pass them.
    assert_eq!(
        polled.cursor.as_deref(),
        Some(r#"{"mentions":"1578516068309794817"}"#)
    );
}

#[tokio::test]
async fn a_dm_that_cannot_be_read_holds_the_dm_cursor_before_it_while_newer_dms_are_delivered() {
    let mut page = fixture("api_v2/tweepy_dm_events_lookup.json");
    // A customer's DM newer than the two recorded events that name no sender.
    page["data"].as_array_mut().unwrap().insert(
        0,
        json!({ "event_type": "MessageCreate", "id": "1585800614000000000", "text": "ciao",
                "sender_id": "42", "dm_conversation_id": "42-1001" }),
    );
    let x = ScriptedServer::start(vec![
        Exchange::get("/2/users/1001/mentions")
            .reply_json(200, json!({ "meta": { "result_count": 0 } })),
        Exchange::get("/2/dm_events").reply_json(200, page),
        // The next page reaches the DM the previous poll returned: paging stops there.
        Exchange::get("/2/dm_events").reply_json(
            200,
            json!({ "data": [{ "event_type": "MessageCreate", "id": "1585800600000000000",
                               "text": "vecchio", "sender_id": "42", "dm_conversation_id": "42-1001" }],
                    "meta": { "result_count": 1 } }),
        ),
    ])
    .await
    .unwrap();
    let mut connector = polling(&x);
    let cursor = r#"{"mentions":"1900","dms":"1585800600000000000"}"#;
    let polled = connector.poll("1001", Some(cursor)).await.unwrap();
    let message = polled.messages.iter().map(|m| {
        (
            m.external_id.as_str(),
            m.author.id.as_str(),
            m.text.as_str(),
        )
    });
    assert_eq!(
        message.collect::<Vec<_>>(),
        [("1585800614000000000", "42", "ciao")]
    );
    // Its time is the one its id encodes (2022-10-28T01:08:23.785Z).
    assert_eq!(polled.messages[0].created_at, 1_666_919_303_785);
    assert_eq!(polled.cursor.as_deref(), Some(cursor));
}

#[tokio::test]
async fn a_dm_answering_a_quick_reply_keeps_the_options_metadata() {
    let payload = fixture("centralino_handwritten/dm_quick_reply_response.json");
    let mut connector = connector(vec![account("1234858592", "TIM_Official")]);
    let outcome = deliver(&mut connector, &payload).await;
    assert_eq!(
        outcome.only_message(),
        &Message {
            external_id: "1234858592".to_string(),
            account: "1234858592".to_string(),
            conversation_key: "dm:1234858592:3805104374".to_string(),
            author: Person {
                id: "3805104374".to_string(),
                handle: None,
                display_name: None,
            },
            text: "Blue Bird".to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 1_392_078_023_603,
            extra: vec![(
                "quick_reply_metadata".to_string(),
                "external_id_2".to_string()
            )],
        }
    );
}

#[tokio::test]
async fn a_delivered_post_without_a_time_gets_the_time_of_its_id() {
    let mut payload = short_post("1001", "@TIM_Official aiuto");
    payload["tweet_create_events"][0]
        .as_object_mut()
        .unwrap()
        .remove("created_at");
    let mut connector = connector(vec![account("1001", "TIM_Official")]);
    let outcome = deliver(&mut connector, &payload).await;
    // (1050118621198921728 >> 22) + 1288834974657 = 2018-10-10T20:19:24.211Z; the
    // created_at X wrote was Wed Oct 10 20:19:24 +0000 2018.
    assert_eq!(outcome.only_message().created_at, 1_539_202_764_211);
}

#[tokio::test]
async fn removing_any_optional_field_from_a_delivery_never_loses_a_customer_message_silently() {
    let quick_reply = fixture("centralino_handwritten/dm_quick_reply_response.json");
    let courier = activity("courier_twitter_handler_dm_and_crc_vector.json");
    let mut addressed = short_post("1001", "@TIM_Official il modem non va");
    addressed["tweet_create_events"][0]["entities"]["user_mentions"] =
        json!([mention("1001", "TIM_Official")]);
    addressed["tweet_create_events"][0]["in_reply_to_status_id_str"] = json!("1050118621198921000");
    let cases = [
        (LONG_POST_ACCOUNT, long_post()),
        ("1001", addressed),
        ("4337869213", activity("xdocs_direct_message_events.json")),
        (
            "835740314006511618",
            courier["dm_event_html_escaped_text"].clone(),
        ),
        (
            "835740314006511618",
            courier["dm_event_with_media_attachment_trimmed"].clone(),
        ),
        ("1234858592", quick_reply),
    ];
    let events =
        |pointer: &str| pointer == "/tweet_create_events" || pointer == "/direct_message_events";
    let mut tried = 0;
    for (account_id, valid) in cases {
        let mut connector = connector(vec![account(account_id, "TIM_Official")]);
        let whole = deliver(&mut connector, &valid).await;
        assert_eq!(whole.messages.len(), 1, "{valid}");
        for (removed, mutated) in crate::support::without_each_field(&valid, events) {
            let outcome = deliver(&mut connector, &mutated).await;
            let status = outcome.response.status;
            assert!(
                (status == 200 && outcome.messages.len() == 1)
                    || ((400..500).contains(&status) && outcome.messages.is_empty()),
                "without {removed}: {status} with {:?}",
                outcome.messages
            );
            tried += 1;
        }
    }
    assert!(tried > 100, "{tried}");
}

// ---- the CRC challenge is not a signing oracle (issue 13, item 1) ----

/// A host serving the twitter connector's webhook on loopback (accounts `1001`
/// `TIM_Official`, consumer secret [`CONSUMER_SECRET`]); its base URL.
async fn serving_host() -> (centralino::Host, tokio::task::JoinHandle<()>, String) {
    serving_host_granted(true).await
}

/// [`serving_host`], granted the consumer secret or not (the admin forgot it).
async fn serving_host_granted(
    granted: bool,
) -> (centralino::Host, tokio::task::JoinHandle<()>, String) {
    use centralino::capabilities::{Grants, Secret};
    use centralino::connectors::ConnectorSpec;
    let mut spec = ConnectorSpec::new(
        "twitter",
        crate::component("twitter"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![account("1001", "TIM_Official")],
        },
    );
    if granted {
        spec.grants =
            Grants::default().secret("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
    }
    let host = centralino::Host::builder()
        .connector(spec)
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/twitter", listener.local_addr().unwrap());
    let serving = host.clone();
    let server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
    (host, server, url)
}

async fn crc(client: &reqwest::Client, url: &str, token: &str) -> (u16, String) {
    let url = reqwest::Url::parse_with_params(url, &[("crc_token", token)]).unwrap();
    let response = client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_delivery(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> u16 {
    let mut request = client.post(url).body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-twitter-webhooks-signature", signature);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_crc_challenge_signs_no_delivery_body_so_a_forged_mention_is_refused_and_nothing_is_stored()
 {
    let (host, _server, url) = serving_host().await;
    let client = reqwest::Client::new();
    let mut forged = short_post("1001", "@TIM_Official forged: call +39 000 000 000 now");
    forged["tweet_create_events"][0]["entities"]["user_mentions"] =
        json!([mention("1001", "TIM_Official")]);
    let body = serde_json::to_vec(&forged).unwrap();

    // The attack: have the CRC endpoint sign the delivery body, URL-encoded as crc_token.
    let (status, answer) = crc(&client, &url, std::str::from_utf8(&body).unwrap()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        !answer.contains("sha256="),
        "something was signed: {answer}"
    );
    // A token-shaped value over the length X uses is refused the same way.
    let (status, answer) = crc(&client, &url, &"A".repeat(257)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(!answer.contains("sha256="), "{answer}");

    // Every signature an outsider can come by: a real CRC answer (for a token), one under
    // a guessed secret, a malformed one, none at all. None gets the forged body in.
    let (status, answer) = crc(&client, &url, "test token").await;
    assert_eq!(status, 200);
    let crc_answer: Value = serde_json::from_str(&answer).unwrap();
    let crc_signature = crc_answer["response_token"].as_str().unwrap().to_string();
    let guessed = signature("consumer-secret", &body);
    for (signature, expected) in [
        (Some(crc_signature.as_str()), 403),
        (Some(guessed.as_str()), 403),
        (Some("sha256="), 403),
        (None, 401),
    ] {
        assert_eq!(
            post_delivery(&client, &url, &body, signature).await,
            expected,
            "{signature:?}"
        );
    }
    let store = host.store();
    assert_eq!(store.message_count("default").await.unwrap(), 0);
    assert!(store.conversations("default").await.unwrap().is_empty());

    // X's own challenge still gets the published answer, and X's signed delivery gets in.
    let vector =
        activity("courier_twitter_handler_dm_and_crc_vector.json")["crc_test_vector"].clone();
    assert_eq!(
        crc_answer["response_token"],
        vector["expected_response_token"]
    );
    let genuine = signature(CONSUMER_SECRET, &body);
    assert_eq!(
        post_delivery(&client, &url, &body, Some(&genuine)).await,
        200
    );
    assert_eq!(store.message_count("default").await.unwrap(), 1);
}

/// Log lines written while it is the thread's default subscriber (tests run the host on
/// one thread, so its tasks log here too).
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_flood_of_unsigned_deliveries_writes_one_warn_line_not_one_per_request() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let (host, _server, url) = serving_host().await;
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&short_post("1001", "@TIM_Official ciao")).unwrap();
    for _ in 0..300 {
        assert_eq!(post_delivery(&client, &url, &body, None).await, 401);
    }
    let text = log.text();
    let refusals = text
        .lines()
        .filter(|line| line.contains("refused a webhook delivery"))
        .count();
    assert_eq!(refusals, 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);

    // The same when every delivery is refused for the admin's mistake (no secret granted).
    let (host, _server, url) = serving_host_granted(false).await;
    for _ in 0..300 {
        let signature = signature(CONSUMER_SECRET, &body);
        assert_eq!(
            post_delivery(&client, &url, &body, Some(&signature)).await,
            400
        );
    }
    let text = log.text();
    let rejected = text
        .lines()
        .filter(|line| line.contains("rejected webhook"))
        .count();
    assert_eq!(rejected, 1, "{text}");
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);
}

/// A delivery the plugin rejects as invalid input because the admin forgot to grant the
/// consumer secret: the caller, anyone on the internet, learns nothing of the
/// configuration (no secret name, no grant); the admin finds the plugin's reason in the
/// log and in the connector's health.
#[tokio::test]
async fn a_rejected_delivery_tells_the_caller_nothing_of_the_config_and_the_admin_everything() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let (host, _server, url) = serving_host_granted(false).await;
    let body = serde_json::to_vec(&short_post("1001", "@TIM_Official ciao")).unwrap();
    let answer = reqwest::Client::new()
        .post(&url)
        .header(
            "x-twitter-webhooks-signature",
            signature(CONSUMER_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let answer = answer.text().await.unwrap();
    assert_eq!(answer, r#"{"error":"invalid request"}"#);

    let text = log.text();
    let line = text
        .lines()
        .find(|line| line.contains("rejected webhook"))
        .unwrap_or_else(|| panic!("no line for the rejection in {text}"));
    assert!(line.contains("consumer_secret"), "{line}");
    assert!(line.contains("WARN"), "{line}");
    let health = host
        .connector_health()
        .into_iter()
        .find(|h| h.connector == "twitter")
        .unwrap();
    assert_eq!(health.rejections, 1);
    let rejection = health.last_rejection.unwrap().message;
    assert!(
        rejection.starts_with("plugin twitter@") && rejection.contains("consumer_secret"),
        "{rejection}"
    );
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);
}

/// Any plugin, not only this connector: the host's `hmac-sha256` signs challenge tokens and
/// nothing else, so a plugin that naively signs what a request brings (as X's CRC once
/// did) still cannot hand out a signature for a forged delivery.
#[tokio::test]
async fn the_host_signs_only_challenge_tokens_so_no_plugin_can_sign_a_delivery_body() {
    use centralino::capabilities::{Grants, Secret};
    use centralino::connectors::ConnectorSpec;
    let mut spec = ConnectorSpec::new(
        "hostile",
        crate::component("hostile-channel"),
        ConnectorConfig {
            settings: vec![("poll".to_string(), String::new())],
            accounts: vec![AccountConfig {
                id: "H1".to_string(),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants =
        Grants::default().secret("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
    let host = centralino::Host::builder()
        .connector(spec)
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/hostile", listener.local_addr().unwrap());
    let serving = host.clone();
    let _server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
    let client = reqwest::Client::new();
    let sign = |data: &str| {
        client
            .post(&url)
            .header("content-type", "text/plain")
            .body(format!("!secret consumer_secret {data}"))
            .send()
    };

    // A challenge token is signed: the plugin goes on and answers 200.
    assert_eq!(sign("test token").await.unwrap().status().as_u16(), 200);
    // A delivery body is refused, and the refusal is reported against the plugin.
    let forged = serde_json::to_string(&short_post("1001", "@TIM_Official forged")).unwrap();
    assert_ne!(sign(&forged).await.unwrap().status().as_u16(), 200);
    let health = host
        .connector_health()
        .into_iter()
        .find(|h| h.connector == "hostile")
        .unwrap();
    let denial = health.last_denial.unwrap().message;
    assert!(denial.contains("not a challenge token"), "{denial}");
    assert!(!denial.contains("forged"), "{denial}");
    // Nor is a token-shaped value longer than a challenge.
    assert_ne!(sign(&"A".repeat(300)).await.unwrap().status().as_u16(), 200);
}

/// Every event accounted for: what a connector ignores on purpose is counted by connector
/// and reason in /metrics (and in health), so "nothing new" and "events skipped" differ.
#[tokio::test]
async fn events_ignored_on_purpose_are_counted_by_connector_and_reason_in_metrics() {
    let (host, _server, url) = serving_host().await;
    let client = reqwest::Client::new();
    let post = async |payload: &Value| {
        let body = serde_json::to_vec(payload).unwrap();
        let signature = signature(CONSUMER_SECRET, &body);
        post_delivery(&client, &url, &body, Some(&signature)).await
    };
    // X's documented typing indicator, delivered for the account served.
    let mut typing = activity("xdocs_direct_message_indicate_typing_events.json");
    typing["for_user_id"] = json!("1001");
    assert_eq!(post(&typing).await, 200);
    assert_eq!(post(&typing).await, 200);
    // The account's own post, and a customer's retweet.
    let mut own = short_post("1001", "@TIM_Official test");
    own["tweet_create_events"][0]["user"] =
        json!({ "id": 1001, "id_str": "1001", "screen_name": "TIM_Official", "name": "TIM" });
    assert_eq!(post(&own).await, 200);
    let mut retweet = short_post("1001", "RT @TIM_Official: offerta");
    retweet["tweet_create_events"][0]["retweeted_status"] = json!({ "id_str": "1" });
    assert_eq!(post(&retweet).await, 200);
    // A mention is a message, not an ignored event.
    assert_eq!(post(&short_post("1001", "@TIM_Official ciao")).await, 200);
    assert_eq!(host.store().message_count("default").await.unwrap(), 1);

    let metrics = host.metrics_text().await;
    let ignored: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("centralino_events_ignored_total{"))
        .collect();
    assert_eq!(
        ignored,
        [
            "centralino_events_ignored_total{tenant=\"default\",connector=\"twitter\",reason=\"direct_message_indicate_typing_events\"} 2",
            "centralino_events_ignored_total{tenant=\"default\",connector=\"twitter\",reason=\"own-post\"} 1",
            "centralino_events_ignored_total{tenant=\"default\",connector=\"twitter\",reason=\"retweet\"} 1",
        ],
        "{metrics}"
    );
    let health = host.connector_health();
    assert_eq!(health[0].ignored.values().sum::<u64>(), 4);
}

/// X's documented example page (GET /2/tweets/search/recent with author_id, lang and
/// includes.users), served as the mentions of @snowman: the two customers' replies become
/// messages carrying X's language (`und` kept as X said it; routing reads it as none), and
/// @snowman's own two posts are counted as ignored, not dropped silently.
#[tokio::test]
async fn a_documented_v2_page_gives_each_customer_post_its_language_and_counts_the_accounts_own() {
    let page = fixture("api_v2/sns_sdks_searches_search_tweets_query.json");
    let x = ScriptedServer::start(vec![
        Exchange::get("/2/users/17200003/mentions").reply_json(200, page),
        Exchange::get("/2/dm_events").reply_json(200, json!({ "meta": { "result_count": 0 } })),
    ])
    .await
    .unwrap();
    let mut connector = twitter()
        .setting("api_base", x.base_url())
        .allow(x.authority())
        .bearer("token-snowman", "t0ken")
        .account_config(account("17200003", "snowman"))
        .instance()
        .unwrap();
    let polled = connector.poll("17200003", None).await.unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = polled
        .messages
        .iter()
        .map(|m| {
            let lang = m
                .extra
                .iter()
                .find(|(key, _)| key == "lang")
                .map(|(_, value)| value.as_str());
            (
                m.external_id.as_str(),
                m.author.handle.as_deref().unwrap_or(""),
                lang,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1275763727908798470", "jellybeanjones", Some("und")),
            ("1276035977375477760", "happycamper", Some("en")),
        ]
    );
    assert_eq!(
        connector.take_notes().ignored,
        [("own-post".to_string(), 2)].into()
    );
}
