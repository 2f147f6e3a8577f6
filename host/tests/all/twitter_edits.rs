//! A customer editing a post on X. X gives every edit a new id and lists the chain of
//! versions, original first; the `twitter` connector makes the latest version an edit of
//! the original, so the host keeps one message, known by the id it stored and replies
//! thread under, reading as the customer left it.

use std::path::PathBuf;

use centralino::crm::CrmEvent;
use centralino::runtime::ChannelInstance;
use centralino::types::{AccountConfig, Message, WebhookRequest};
use centralino_emulators::XApi;
use centralino_emulators::x::NewTweet;
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::{ConnectorTest, webhook};
use serde_json::{Value, json};

use crate::host_routing::{SECRET, telco};
use crate::support::{eventually, inbox_events, x_delivery};

const CONSUMER_SECRET: &str = "apiSecret";
const EDITED: &str = "centralino:edited";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/twitter")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn twitter() -> ConnectorTest {
    ConnectorTest::new("twitter")
        .secret("consumer_secret", CONSUMER_SECRET)
        .account_config(AccountConfig {
            id: "1001".to_string(),
            handle: Some("TIM_Official".to_string()),
            credential: Some("token-TIM_Official".to_string()),
            ..AccountConfig::default()
        })
}

fn extra<'m>(message: &'m Message, key: &str) -> Option<&'m str> {
    message
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// When X made the post `id` (its snowflake's time), in ms.
fn snowflake_ms(id: &str) -> u64 {
    (id.parse::<u64>().unwrap() >> 22) + 1_288_834_974_657
}

#[tokio::test]
async fn a_recorded_edited_post_is_one_message_known_by_its_original_id_reading_as_its_latest_version()
 {
    // A recorded v2 timeline page (98 posts, the default fields only), served as the
    // account's mentions; its one edited post lists three versions.
    let mut page = fixture("api_v2/tweepy_home_timeline.json");
    // One page is enough here: the next page is not part of the recording.
    page["meta"].as_object_mut().unwrap().remove("next_token");
    let x = ScriptedServer::start(vec![
        Exchange::get("/2/users/1001/mentions").reply_json(200, page.clone()),
        Exchange::get("/2/dm_events").reply_json(200, json!({ "meta": { "result_count": 0 } })),
    ])
    .await
    .unwrap();
    let mut connector: ChannelInstance = twitter()
        .setting("api_base", x.base_url())
        .allow(x.authority())
        .bearer("token-TIM_Official", "t0ken")
        .instance()
        .unwrap();

    let polled = connector.poll("1001", None).await.unwrap();
    assert_eq!(polled.messages.len(), 98, "every post is a message");
    let edited: Vec<&Message> = polled
        .messages
        .iter()
        .filter(|m| extra(m, EDITED).is_some())
        .collect();
    assert_eq!(edited.len(), 1, "only the edited post is an edit");
    let edit = edited[0];
    assert_eq!(edit.external_id, "1577158996984987648", "the original's id");
    assert_eq!(edit.conversation_key, "tweet:1577158996984987648");
    assert_eq!(
        edit.text,
        "I hope I’m not mistaken. Fixed it. https://t.co/6o0rdokH3t"
    );
    assert_eq!(
        extra(edit, "centralino:version"),
        Some("1577162244978139137")
    );
    let edited_at = snowflake_ms("1577162244978139137");
    assert_eq!(extra(edit, EDITED), Some(edited_at.to_string().as_str()));
    assert_eq!(edit.created_at, snowflake_ms("1577158996984987648"));
    assert!(edit.created_at < edited_at);
    // The page's other posts keep their own ids.
    let unedited = polled
        .messages
        .iter()
        .filter(|m| extra(m, EDITED).is_none())
        .count();
    assert_eq!(unedited, 97);
}

/// A signed Account Activity delivery of `payload`.
fn signed(payload: &Value) -> WebhookRequest {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = webhook::sha256_base64(CONSUMER_SECRET, &body);
    webhook::post(&body, &[("x-twitter-webhooks-signature", &signature)])
}

fn post(id: &str, text: &str, edit_history: Value) -> Value {
    json!({
        "created_at": "Thu Dec 03 10:15:00 +0000 2026",
        "id_str": id,
        "text": text,
        "user": { "id_str": "42", "screen_name": "mario_rossi", "name": "Mario Rossi" },
        "entities": { "user_mentions": [{ "id_str": "1001", "screen_name": "TIM_Official" }] },
        "edit_history": edit_history,
    })
}

#[tokio::test]
async fn an_account_activity_post_naming_its_edit_history_is_an_edit_of_the_original() {
    let mut connector = twitter().instance().unwrap();
    let payload = json!({
        "for_user_id": "1001",
        "tweet_create_events": [
            // Never edited: its history is itself.
            post("1863000000000000000", "@TIM_Official ciao", json!({
                "initial_tweet_id": "1863000000000000000",
                "edit_tweet_ids": ["1863000000000000000"],
            })),
            // The second version of a post; X's numbers beside the strings are left out.
            post("1863000000400000000", "@TIM_Official il modem è rosso, non blu", json!({
                "initial_tweet_id": "1862999999900000000",
                "edit_tweet_ids": ["1862999999900000000", 1863000000400000000u64, "1863000000400000000"],
            })),
        ]
    });
    let outcome = connector.handle_webhook(signed(&payload)).await.unwrap();
    assert_eq!(outcome.response.status, 200);
    let [plain, edit] = outcome.messages.as_slice() else {
        panic!("two messages: {:?}", outcome.messages);
    };
    assert_eq!(plain.external_id, "1863000000000000000");
    assert_eq!(extra(plain, EDITED), None);
    assert_eq!(edit.external_id, "1862999999900000000");
    assert_eq!(edit.conversation_key, "tweet:1862999999900000000");
    assert_eq!(edit.text, "@TIM_Official il modem è rosso, non blu");
    assert_eq!(
        extra(edit, "centralino:version"),
        Some("1863000000400000000")
    );
    // Edited when the version was written (its created_at); first written with the original.
    assert_eq!(extra(edit, EDITED), Some("1796292900000"));
    assert_eq!(edit.created_at, snowflake_ms("1862999999900000000"));
}

#[tokio::test]
async fn a_customers_edited_mention_is_one_message_the_reply_threads_under_and_deleting_the_latest_version_empties()
 {
    let x = XApi::start().await.unwrap();
    let host = telco(&x).await;
    let written = x.post_tweet(NewTweet::new("42", "@TIM_Official il modem non va"));
    let stored: usize = host
        .poll("default", "twitter")
        .await
        .unwrap()
        .iter()
        .map(|r| r.stored)
        .sum();
    assert_eq!(stored, 1);
    let conversation = host.store().conversations("default").await.unwrap()[0]
        .id
        .clone();

    // Mario edits his post: X publishes a new version, and searches find only that one.
    let version = x
        .edit_tweet(
            &written.id,
            "@TIM_Official il modem non va: la luce DSL lampeggia",
        )
        .unwrap();
    let reports = host.poll("default", "twitter").await.unwrap();
    let (stored, errors): (usize, Vec<_>) = (
        reports.iter().map(|r| r.stored).sum(),
        reports.iter().filter_map(|r| r.error.clone()).collect(),
    );
    assert_eq!(
        (stored, errors),
        (0, Vec::<String>::new()),
        "an edit is no new message"
    );
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.external_id, written.id);
    assert_eq!(
        messages[0].message.text,
        "@TIM_Official il modem non va: la luce DSL lampeggia"
    );
    assert!(messages[0].edited_at.is_some());
    let inbox = host.local_inbox().unwrap().clone();
    let edited = |e: &CrmEvent| matches!(e, CrmEvent::MessageEdited { .. });
    eventually("the CRM hears of the edit", async || {
        !inbox_events(&inbox, edited).is_empty()
    })
    .await;
    let edits = inbox_events(&inbox, edited);
    assert!(
        matches!(edits.as_slice(), [CrmEvent::MessageEdited { external_id, text, .. }]
            if *external_id == written.id && text.ends_with("lampeggia")),
        "{edits:?}"
    );
    // Polled again: nothing new, still one message.
    host.poll("default", "twitter").await.unwrap();
    assert_eq!(
        host.store()
            .messages("default", &conversation)
            .await
            .unwrap()
            .len(),
        1
    );

    // The assignee answers in Mario's thread, under the post the host stored.
    let record = host
        .store()
        .conversation("default", &conversation)
        .await
        .unwrap()
        .unwrap();
    let assignee = record.assignee.unwrap();
    host.reply(
        "default",
        &conversation,
        &assignee,
        None,
        "@mario ciao, controllo la linea",
        "r1",
    )
    .await
    .unwrap();
    eventually("the operator's reply", async || {
        x.tweets().iter().any(|t| t.text.starts_with("@mario ciao"))
    })
    .await;
    let reply = x
        .tweets()
        .into_iter()
        .find(|t| t.text.starts_with("@mario ciao"))
        .unwrap();
    assert_eq!(reply.in_reply_to.as_deref(), Some(written.id.as_str()));
    assert_ne!(reply.in_reply_to.as_deref(), Some(version.id.as_str()));
    assert_eq!(inbox_events(&inbox, edited).len(), 1);

    // Mario deletes his post. X deletes every version, and its Account Activity delivery
    // names the one he deleted: the version the host never stored under its own id.
    let payload = json!({
        "for_user_id": "1001",
        "tweet_delete_events": [{
            "status": { "id": version.id, "user_id": "42" },
            "timestamp_ms": "1796292960000"
        }]
    });
    let (response, _) = host
        .deliver_webhook_stored("default", "twitter", x_delivery(SECRET, &payload))
        .await;
    assert_eq!(response.status, 200);
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    assert_eq!(messages[0].message.text, "", "the message is emptied");
    assert_eq!(messages[0].deleted_at, Some(1_796_292_960_000));
    let deleted = |e: &CrmEvent| matches!(e, CrmEvent::MessageDeleted { .. });
    eventually("the CRM hears of the deletion", async || {
        !inbox_events(&inbox, deleted).is_empty()
    })
    .await;
    let deletions = inbox_events(&inbox, deleted);
    assert!(
        matches!(deletions.as_slice(), [CrmEvent::MessageDeleted { external_id, message_id, .. }]
            if *external_id == written.id && *message_id == messages[0].id),
        "{deletions:?}"
    );
}
