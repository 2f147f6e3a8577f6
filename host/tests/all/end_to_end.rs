//! End to end on loopback: platform emulator → HTTP ingress → plugin → store, and a reply
//! from an operator's account → plugin → emulator, with the credential attached by the host.

use std::collections::BTreeMap;

use centralino::Host;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::clock::{Clock as _, ManualClock};
use centralino::connectors::ConnectorSpec;
use centralino::types::{AccountConfig, ConnectorConfig, MessageKind, OutboundMessage};
use centralino_emulators::webhooks::{
    facebook_delivery_headers, messenger_text, tweet_create, twitter_delivery_headers,
};
use centralino_emulators::x::NewTweet;
use centralino_emulators::{Fault, GraphApi, XApi};

use crate::component;

const CONSUMER_SECRET: &str = "x-consumer-secret";
const APP_SECRET: &str = "fb-app-secret";

fn account(id: &str, handle: &str, credential: &str) -> AccountConfig {
    AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        credential: Some(credential.to_string()),
        settings: Vec::new(),
    }
}

/// A telco's X setup: the brand account and one operator's own account.
async fn twitter_host(x: &XApi) -> (Host, tokio::task::JoinHandle<()>, String) {
    twitter_host_on(x, None).await
}

/// The twitter host, on `clock` when given (else the system clock).
async fn twitter_host_on(
    x: &XApi,
    clock: Option<ManualClock>,
) -> (Host, tokio::task::JoinHandle<()>, String) {
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
    x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("token-tim")),
    );
    credentials.insert(
        "marco".to_string(),
        Credential::Bearer(Secret::new("token-marco")),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts: vec![
                account("1001", "TIM_Official", "tim"),
                account("2001", "TIM_Marco", "marco"),
            ],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    let mut builder = Host::builder().connector(spec);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let host = builder.build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    let task = tokio::spawn(async move {
        serving.serve(listener).await.unwrap();
    });
    (host, task, url)
}

async fn post(url: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_signed_mention_is_stored_and_the_operator_replies_from_their_own_account() {
    let x = XApi::start().await.unwrap();
    let (host, _server, url) = twitter_host(&x).await;
    let mention = x.post_tweet(NewTweet::new(
        "42",
        "@TIM_Official il mio modem non va &amp; la fibra",
    ));
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        &mention.id,
        ("42", "mario_rossi", "Mario Rossi"),
        "@TIM_Official il mio modem non va &amp; la fibra",
        None,
    ))
    .unwrap();
    let (status, _) = post(
        &format!("{url}/webhooks/twitter"),
        &twitter_delivery_headers(CONSUMER_SECRET, &body),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);

    // Redelivery (webhooks are at-least-once) changes nothing.
    let (status, _) = post(
        &format!("{url}/webhooks/twitter"),
        &twitter_delivery_headers(CONSUMER_SECRET, &body),
        body,
    )
    .await;
    assert_eq!(status, 200);
    let store = host.store();
    assert_eq!(store.message_count("default").await.unwrap(), 1);
    let conversations = store.conversations("default").await.unwrap();
    assert_eq!(conversations.len(), 1);
    let messages = store
        .messages("default", &conversations[0].id)
        .await
        .unwrap();
    let stored = &messages[0].message;
    assert_eq!(stored.external_id, mention.id);
    assert_eq!(stored.account, "1001");
    assert_eq!(stored.author.id, "42");
    assert_eq!(stored.text, "@TIM_Official il mio modem non va & la fibra");
    assert_eq!(stored.kind, MessageKind::PublicPost);

    // Marco answers from his own account, threaded under the customer's tweet.
    let sent = host
        .send(
            "default",
            "twitter",
            OutboundMessage {
                account: "2001".to_string(),
                conversation_key: stored.conversation_key.clone(),
                kind: MessageKind::PublicPost,
                recipient: None,
                in_reply_to: Some(mention.id.clone()),
                text: "@mario_rossi ciao Mario, sono Marco di TIM: ti scrivo in DM".to_string(),
                attachments: Vec::new(),
                idempotency_key: "reply-1".to_string(),
            },
        )
        .await
        .unwrap();
    let posts: Vec<_> = x
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("authorization"), Some("Bearer token-marco"));
    assert_eq!(
        posts[0].json()["reply"]["in_reply_to_tweet_id"],
        mention.id.as_str()
    );
    let reply = x
        .tweets()
        .into_iter()
        .find(|t| t.id == sent.external_id)
        .unwrap();
    assert_eq!(reply.author_id, "2001");
    assert_eq!(reply.conversation_id, mention.conversation_id);
}

#[tokio::test]
async fn an_account_is_not_polled_again_before_the_platform_says_its_window_resets() {
    let x = XApi::start().await.unwrap();
    let clock = ManualClock::at_system_time();
    let (host, _server, _url) = twitter_host_on(&x, Some(clock.clone())).await;
    let mentions = || {
        x.requests()
            .iter()
            .filter(|r| r.path == "/2/users/1001/mentions")
            .count()
    };
    // The mentions answer spends the window until ten minutes from now.
    x.inject(
        "/2/users/1001/mentions",
        Fault::LastInWindow {
            reset_after_secs: 600,
        },
        1,
    );
    let first = host.poll("default", "twitter").await.unwrap();
    let brand = first.iter().find(|r| r.account == "1001").unwrap();
    assert_eq!(
        (brand.error.as_deref(), brand.paused_until_ms),
        (None, None)
    );
    assert_eq!(mentions(), 1);
    // The next poll is skipped, saying until when, and asks the platform nothing.
    let second = host.poll("default", "twitter").await.unwrap();
    let brand = second.iter().find(|r| r.account == "1001").unwrap();
    let until = brand.paused_until_ms.expect("the poll was paused");
    let now = clock.now_ms();
    assert!(
        (now + 590_000..=now + 605_000).contains(&until),
        "{until} vs {now}"
    );
    assert_eq!(brand.error, None, "a pause is not a failure");
    assert_eq!(mentions(), 1);
    // The other account was not paused.
    let marco = second.iter().find(|r| r.account == "2001").unwrap();
    assert_eq!(marco.paused_until_ms, None);
    // Once the window has reset on the host's clock, the account is polled again.
    clock.advance(std::time::Duration::from_secs(610));
    let third = host.poll("default", "twitter").await.unwrap();
    let brand = third.iter().find(|r| r.account == "1001").unwrap();
    assert_eq!(brand.paused_until_ms, None);
}

#[tokio::test]
async fn polled_mentions_are_stored_once_and_the_cursor_advances() {
    let x = XApi::start().await.unwrap();
    let (host, _server, _url) = twitter_host(&x).await;
    let first = x.post_tweet(NewTweet::new("42", "@TIM_Official la linea è giù"));
    let reports = host.poll("default", "twitter").await.unwrap();
    let brand = reports.iter().find(|r| r.account == "1001").unwrap();
    assert_eq!((brand.stored, brand.error.as_deref()), (1, None));
    // Nothing new: nothing stored, and the cursor (since_id) went out with the request.
    let again = host.poll("default", "twitter").await.unwrap();
    assert_eq!(again.iter().map(|r| r.stored).sum::<usize>(), 0);
    let last_mentions = x
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/2/users/1001/mentions")
        .unwrap();
    assert_eq!(
        last_mentions.query_param("since_id").as_deref(),
        Some(first.id.as_str())
    );
    // The cursor is the plugin's own (opaque to the host); it covers the mention stored.
    let cursor = host
        .store()
        .cursor("default", "twitter", "1001")
        .await
        .unwrap()
        .unwrap();
    assert!(cursor.contains(&first.id), "{cursor}");
}

#[tokio::test]
async fn bad_deliveries_are_refused_nothing_is_stored_and_the_host_keeps_serving() {
    let x = XApi::start().await.unwrap();
    let (host, _server, url) = twitter_host(&x).await;
    let hook = format!("{url}/webhooks/twitter");
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        "1860000000000000777",
        ("42", "mario_rossi", "Mario"),
        "@TIM_Official ciao",
        None,
    ))
    .unwrap();

    // Missing signature, wrong signature, truncated JSON, a 10 MiB body, an unknown connector.
    let (missing, _) = post(&hook, &[], body.clone()).await;
    let (wrong, _) = post(
        &hook,
        &twitter_delivery_headers("not-the-secret", &body),
        body.clone(),
    )
    .await;
    let truncated = body[..body.len() / 2].to_vec();
    let (broken, _) = post(
        &hook,
        &twitter_delivery_headers(CONSUMER_SECRET, &truncated),
        truncated,
    )
    .await;
    let huge = vec![b' '; 10 << 20];
    let (too_big, _) = post(
        &hook,
        &twitter_delivery_headers(CONSUMER_SECRET, &huge),
        huge,
    )
    .await;
    let (unknown, text) = post(&format!("{url}/webhooks/telegram"), &[], b"{}".to_vec()).await;
    assert_eq!(missing, 401);
    assert_eq!(wrong, 403);
    assert_eq!(broken, 400);
    assert_eq!(too_big, 413);
    assert_eq!(unknown, 404);
    assert!(
        text.contains("no connector `telegram` for tenant `default`"),
        "{text}"
    );
    assert_eq!(host.store().message_count("default").await.unwrap(), 0);

    // Still serving: the good delivery goes through.
    let (ok, _) = post(
        &hook,
        &twitter_delivery_headers(CONSUMER_SECRET, &body),
        body,
    )
    .await;
    assert_eq!(ok, 200);
    assert_eq!(host.store().message_count("default").await.unwrap(), 1);
}

#[tokio::test]
async fn a_messenger_message_is_stored_and_answered_with_the_page_token() {
    let graph = GraphApi::start().await.unwrap();
    graph.add_page("5001", "page-token-tim");
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token-tim"),
        },
    );
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new(APP_SECRET));
    secrets.insert("verify_token".to_string(), Secret::new("verify-me"));
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: "5001".to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("tim-page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    let host = Host::builder().connector(spec).build().await.unwrap();

    let body = serde_json::to_vec(&messenger_text(
        "5001",
        "7001",
        "m_abc",
        "buongiorno, il router lampeggia",
        1_795_856_400_000,
    ))
    .unwrap();
    let request = centralino::types::WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: facebook_delivery_headers(APP_SECRET, &body),
        body,
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "facebook", request)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(stored.len(), 1);
    graph.customer_wrote("5001", "7001");
    let conversation = host
        .store()
        .conversation("default", &stored[0].conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conversation.customer_id, "7001");
    assert_eq!(conversation.kind, MessageKind::PrivateMessage);

    host.send(
        "default",
        "facebook",
        OutboundMessage {
            account: "5001".to_string(),
            conversation_key: conversation.thread_key.clone(),
            kind: MessageKind::PrivateMessage,
            recipient: Some("7001".to_string()),
            in_reply_to: None,
            text: "Ciao! Proviamo a riavviarlo insieme.".to_string(),
            attachments: Vec::new(),
            idempotency_key: "reply-fb-1".to_string(),
        },
    )
    .await
    .unwrap();
    let delivered = graph.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        (
            delivered[0].page_id.as_str(),
            delivered[0].recipient.as_str()
        ),
        ("5001", "7001")
    );
    let request = graph.requests().into_iter().last().unwrap();
    assert_eq!(
        request.query_param("access_token").as_deref(),
        Some("page-token-tim")
    );
    assert_eq!(request.json()["messaging_type"], "RESPONSE");
}
