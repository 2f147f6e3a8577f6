//! The `mastodon-py` connector, written in Python and built with componentize-py
//! (`plugins/mastodon-py`): polling mentions from a scripted Mastodon API (recorded-shape
//! notifications in `tests/fixtures/mastodon/`), replies with the customer's visibility,
//! Mastodon's 429 with its RFC 3339 `X-RateLimit-Reset`, and a host answering a customer
//! through it end to end.

use crate::support::eventually;
use std::time::Duration;

use centralino::PluginFailure;
use centralino::config::Config;
use centralino::crm::CrmEvent;
use centralino::runtime::PluginLimits;
use centralino::types::{Capability, MessageKind, OutboundMessage, Presence};
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::runtime::calendar::civil_from_days;
use centralino_testkit::{ConnectorTest, failure};
use serde_json::{Value, json};

/// The brand's Mastodon account id, and the name of its credential.
const ACCOUNT: &str = "100001";
const CREDENTIAL: &str = "acme-mastodon";
const TOKEN: &str = "mstdn-acme-token-5f2c";
const NOTIFICATIONS: &str = "/api/v1/notifications";
const STATUSES: &str = "/api/v1/statuses";

fn notifications() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/mastodon/notifications.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The connector against `api`, with the brand's account and its bearer token granted.
/// The 19 MB component is compiled once for all these tests (the kit's artifact cache).
fn mastodon(api: &ScriptedServer) -> ConnectorTest {
    ConnectorTest::new("mastodon-py")
        .cache_dir(cache_dir())
        // CPython in a debug build of the host, on two cores shared with the rest of the
        // suite (a cargo build among it), once ran past the default 1 s on a call; these
        // tests are about what the plugin does, not how fast.
        .limits(PluginLimits {
            call_deadline: Duration::from_secs(10),
            ..PluginLimits::default()
        })
        .setting("api_base", api.base_url())
        .allow(api.authority())
        .bearer(CREDENTIAL, TOKEN)
        .account(ACCOUNT, Some(CREDENTIAL))
}

fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mastodon-py-cache")
}

fn reply(conversation_key: &str, kind: MessageKind, in_reply_to: &str) -> OutboundMessage {
    OutboundMessage {
        account: ACCOUNT.to_string(),
        conversation_key: conversation_key.to_string(),
        kind,
        recipient: None,
        in_reply_to: Some(in_reply_to.to_string()),
        text: "Ciao Mario, controlliamo subito l'ordine".to_string(),
        attachments: Vec::new(),
        idempotency_key: "reply-7f3a".to_string(),
    }
}

fn extra<'m>(extra: &'m [(String, String)], key: &str) -> Option<&'m str> {
    extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `now + seconds` as Mastodon writes `X-RateLimit-Reset`.
fn rfc3339_in(seconds: u64) -> String {
    let at = centralino_testkit::runtime::calendar::now_ms() / 1000 + seconds;
    let (year, month, day) = civil_from_days((at / 86_400) as i64);
    let of_day = at % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[test]
fn the_python_component_carries_the_sections_the_build_appended() {
    let inspection =
        centralino::runtime::inspect_file(&centralino_testkit::component("mastodon-py")).unwrap();
    assert_eq!(inspection.plugin.name, "mastodon-py");
    assert_eq!(inspection.plugin.version, "0.1.0");
    assert_eq!(inspection.world, centralino::runtime::World::Channel);
    assert_eq!(inspection.contract, semver::Version::new(0, 1, 0));
    assert!(inspection.supported);
    // Mastodon's reset is an RFC 3339 time, declared rather than guessed from its shape.
    assert_eq!(
        serde_json::to_value(&inspection).unwrap()["rate_limits"],
        json!({ "remaining": "x-ratelimit-remaining", "reset": "x-ratelimit-reset", "reset_format": "rfc3339" })
    );
}

#[tokio::test]
async fn describes_itself_and_refuses_bad_settings() {
    let api = ScriptedServer::start(Vec::new()).await.unwrap();
    let mut connector = mastodon(&api).instance().unwrap();
    connector.ready().await.unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "mastodon");
    assert_eq!(description.max_text_length, 500);
    for capability in [
        Capability::Polling,
        Capability::PublicReply,
        Capability::PrivateMessage,
    ] {
        assert!(description.capabilities.contains(&capability));
    }
    assert_eq!(connector.id().name, "mastodon-py");

    for (setting, value, named) in [
        ("api_bsae", "https://mastodon.social", "`api_bsae`"),
        ("backfill", "yes", "`backfill`"),
    ] {
        let mut wrong = mastodon(&api).setting(setting, value).instance().unwrap();
        let err = wrong.ready().await.unwrap_err();
        assert!(
            matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains(named)),
            "{err}"
        );
    }
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn a_poll_turns_mentions_into_messages_and_advances_the_cursor() {
    let api = ScriptedServer::start(vec![
        Exchange::get(NOTIFICATIONS).reply_json(200, notifications()),
        Exchange::get(NOTIFICATIONS).reply_json(200, json!([])),
    ])
    .await
    .unwrap();
    let mut connector = mastodon(&api).instance().unwrap();

    let first = connector.poll(ACCOUNT, Some("34975800")).await.unwrap();
    // Oldest first; the follow is not a message (and is said to be ignored, below).
    assert_eq!(first.messages.len(), 2);
    let (jane, mario) = (&first.messages[0], &first.messages[1]);

    assert_eq!(mario.external_id, "113590184311441207");
    assert_eq!(mario.account, ACCOUNT);
    assert_eq!(
        mario.text,
        "@acme_help il mio ordine 4471 non è arrivato & nessuno risponde\n\npotete controllare?\ngrazie"
    );
    assert_eq!(mario.author.handle.as_deref(), Some("mario"));
    assert_eq!(mario.author.id, "108811");
    assert_eq!(mario.author.display_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(mario.kind, MessageKind::PrivateMessage);
    assert_eq!(mario.conversation_key, "mastodon:100001:direct:mario");
    assert_eq!(mario.in_reply_to, None);
    assert_eq!(mario.created_at, 1_796_313_901_512);
    assert_eq!(extra(&mario.extra, "lang"), Some("it"));
    assert_eq!(
        centralino_testkit::runtime::conventions::language(mario).as_deref(),
        Some("it")
    );

    assert_eq!(
        jane.text,
        "@acme_help the app crashes when I open https://acme.example/orders \"again\""
    );
    assert_eq!(jane.author.handle.as_deref(), Some("jane@hachyderm.io"));
    assert_eq!(jane.kind, MessageKind::PublicPost);
    assert_eq!(
        jane.conversation_key,
        "mastodon:100001:public:jane@hachyderm.io"
    );
    assert_eq!(jane.in_reply_to.as_deref(), Some("113590100000000001"));
    assert_eq!(extra(&jane.extra, "lang"), Some("en"));
    assert_eq!(jane.attachments.len(), 1);
    assert_eq!(jane.attachments[0].kind, "image");
    assert_eq!(
        jane.attachments[0].description.as_deref(),
        Some("Screenshot of the crash dialog")
    );

    // The cursor is the newest notification id, the follow's included.
    assert_eq!(first.cursor.as_deref(), Some("34975861"));
    assert_eq!(
        connector.take_notes().ignored,
        [("unsupported-notification".to_string(), 1)].into()
    );

    // Nothing new: the cursor stays where it was.
    let second = connector.poll(ACCOUNT, Some("34975861")).await.unwrap();
    assert!(second.messages.is_empty());
    assert_eq!(second.cursor, None);

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    for (request, after) in requests.iter().zip(["34975800", "34975861"]) {
        assert_eq!(request.query_param("types[]").as_deref(), Some("mention"));
        assert_eq!(request.query_param("min_id").as_deref(), Some(after));
        // The plugin named the credential; the host attached the token.
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn the_first_poll_starts_from_now_unless_backfill_is_on() {
    let api = ScriptedServer::start(vec![
        Exchange::get(NOTIFICATIONS).reply_json(200, notifications()),
        Exchange::get(NOTIFICATIONS).reply_json(200, notifications()),
        Exchange::get(NOTIFICATIONS).reply_json(200, json!([])),
    ])
    .await
    .unwrap();
    let mut from_now = mastodon(&api).instance().unwrap();
    let first = from_now.poll(ACCOUNT, None).await.unwrap();
    assert!(first.messages.is_empty());
    assert_eq!(first.cursor.as_deref(), Some("34975861"));

    let mut backfill = mastodon(&api)
        .setting("backfill", "true")
        .instance()
        .unwrap();
    let first = backfill.poll(ACCOUNT, None).await.unwrap();
    assert_eq!(first.messages.len(), 2);

    // An account with no mentions yet starts from `0`: whatever comes next is new.
    let empty = from_now.poll(ACCOUNT, None).await.unwrap();
    assert_eq!(empty.cursor.as_deref(), Some("0"));
    let requests = api.requests();
    assert!(requests.iter().all(|r| r.query_param("min_id").is_none()));
}

#[tokio::test]
async fn a_direct_mention_gets_a_direct_reply_mentioning_the_customer() {
    let api = ScriptedServer::start(vec![
        Exchange::post(STATUSES).reply_json(
            200,
            json!({ "id": "113590200000000001", "created_at": "2026-12-03T16:10:00.250Z", "visibility": "direct" }),
        ),
        Exchange::post(STATUSES).reply_json(
            200,
            json!({ "id": "113590200000000002", "created_at": "2026-12-03T16:11:00.000Z", "visibility": "public" }),
        ),
    ])
    .await
    .unwrap();
    let mut connector = mastodon(&api).instance().unwrap();

    let sent = connector
        .send(reply(
            "mastodon:100001:direct:mario",
            MessageKind::PrivateMessage,
            "113590184311441207",
        ))
        .await
        .unwrap();
    assert_eq!(sent.external_id, "113590200000000001");
    assert_eq!(sent.sent_at, 1_796_314_200_250);

    let public = OutboundMessage {
        text: "@jane@hachyderm.io we are on it".to_string(),
        idempotency_key: "reply-7f3b".to_string(),
        ..reply(
            "mastodon:100001:public:jane@hachyderm.io",
            MessageKind::PublicPost,
            "113590160029871650",
        )
    };
    connector.send(public).await.unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    let direct = &requests[0];
    assert_eq!(
        direct.json(),
        json!({
            "status": "@mario Ciao Mario, controlliamo subito l'ordine",
            "visibility": "direct",
            "in_reply_to_id": "113590184311441207",
        })
    );
    assert_eq!(direct.header("idempotency-key"), Some("reply-7f3a"));
    assert_eq!(direct.header("content-type"), Some("application/json"));
    assert_eq!(
        direct.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    // A text that already mentions the customer is not prefixed twice.
    assert_eq!(
        requests[1].json()["status"],
        "@jane@hachyderm.io we are on it"
    );
    assert_eq!(requests[1].json()["visibility"], "public");
    assert_eq!(requests[1].header("idempotency-key"), Some("reply-7f3b"));

    // A reply that does not fit, or to a key that is not this connector's, never leaves.
    let long = OutboundMessage {
        text: "a".repeat(495),
        ..reply(
            "mastodon:100001:direct:mario",
            MessageKind::PrivateMessage,
            "1",
        )
    };
    let err = connector.send(long).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { reason } if reason.contains("500")),
        "{err}"
    );
    let err = connector
        .send(reply("tg:7001:4242", MessageKind::PrivateMessage, "1"))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("tg:7001:4242")),
        "{err}"
    );
    assert_eq!(api.requests().len(), 2);
}

#[tokio::test]
async fn mastodons_429_is_rate_limited_until_its_rfc3339_reset() {
    let reset = rfc3339_in(2 * 3600);
    let api = ScriptedServer::start(vec![
        Exchange::get(NOTIFICATIONS)
            .reply_json(429, json!({ "error": "Too many requests" }))
            .header("x-ratelimit-limit", "300")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset),
    ])
    .await
    .unwrap();
    let mut connector = mastodon(&api).instance().unwrap();
    let err = connector.poll(ACCOUNT, Some("1")).await.unwrap_err();
    let PluginFailure::RateLimited { retry_after_ms, .. } = failure(&err) else {
        panic!("expected rate limited, got {err}");
    };
    // About two hours, read from the RFC 3339 reset (not the 60 s fallback).
    assert!(
        (3_600_000..=7_200_000).contains(retry_after_ms),
        "{retry_after_ms} ms for a reset at {reset}"
    );

    // The host read the same header (declared in the plugin's rate-limits section): the
    // next poll is held back without reaching Mastodon.
    let err = connector.poll(ACCOUNT, Some("1")).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::RateLimited { .. }),
        "{err}"
    );
    assert_eq!(api.requests().len(), 1);
}

// ---- end to end: a host answers a Mastodon customer through the Python connector ----

fn config_text(api: &ScriptedServer) -> String {
    let plugin_dir = centralino_testkit::component("mastodon-py")
        .parent()
        .unwrap()
        .to_path_buf();
    format!(
        r#"[host]
store = "sqlite::memory:"
plugin_dir = {plugin_dir:?}
cache_dir = {cache_dir:?}

[[connectors]]
name = "mastodon"
plugin = "mastodon-py"
allowed_hosts = ["{authority}"]
settings = {{ api_base = "{base}", backfill = "true" }}

[[connectors.accounts]]
id = "{ACCOUNT}"
handle = "acme_help"
credential = "env:MASTODON_TOKEN"

[routing]
chain = "round-robin"

[[operators]]
id = "marco"
capacity = 3
accounts = ["mastodon:acme_help"]
"#,
        authority = api.authority(),
        base = api.base_url(),
        cache_dir = cache_dir(),
    )
}

#[tokio::test]
async fn a_host_polls_a_mention_and_the_operators_reply_reaches_mastodon_as_a_direct_status() {
    let api = ScriptedServer::start(vec![
        Exchange::get(NOTIFICATIONS).reply_json(200, notifications()),
        Exchange::post(STATUSES).reply_json(
            200,
            json!({ "id": "113590200000000001", "created_at": "2026-12-03T16:10:00.250Z", "visibility": "direct" }),
        ),
    ])
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    std::fs::write(&file, config_text(&api)).unwrap();

    let config = Config::load(&file).unwrap();
    let secrets = config
        .resolve_secrets_with(|name| (name == "MASTODON_TOKEN").then(|| TOKEN.to_string()))
        .unwrap();
    let runtime = config.runtime().unwrap();
    let engine = config.tenants[0].engine(&runtime).await.unwrap().unwrap();
    let host = config
        .host_builder(runtime, &secrets)
        .routing(engine)
        .build()
        .await
        .unwrap();
    host.set_presence("default", "marco", Presence::Online)
        .await
        .unwrap();

    // One poll stores both mentions (backfill is on), each in its own conversation.
    let reports = host.poll("default", "mastodon").await.unwrap();
    assert_eq!((reports[0].stored, reports[0].error.as_deref()), (2, None));
    let conversations = host.store().conversations("default").await.unwrap();
    assert_eq!(conversations.len(), 2);
    let mut mario = None;
    for conversation in &conversations {
        let messages = host
            .store()
            .messages("default", &conversation.id)
            .await
            .unwrap();
        if messages[0].message.author.handle.as_deref() == Some("mario") {
            assert_eq!(messages[0].message.kind, MessageKind::PrivateMessage);
            mario = Some(conversation.id.clone());
        }
    }
    let mario = mario.expect("Mario's direct mention is stored");

    // The CRM hears of it and Marco gets it.
    let inbox = host.local_inbox().unwrap().clone();
    eventually("the assignment to marco", async || {
        inbox.events().iter().any(|d| {
            matches!(&d.event, CrmEvent::ConversationAssigned { operator, conversation_id, .. }
                if operator == "marco" && conversation_id == &mario)
        })
    })
    .await;

    // Marco answers; the outbox sends a direct status, threaded under Mario's.
    host.reply(
        "default",
        &mario,
        "marco",
        None,
        "Ciao Mario, controlliamo subito l'ordine",
        "mastodon-reply-1",
    )
    .await
    .unwrap();
    eventually("the status on Mastodon", async || api.requests().len() == 2).await;
    let status = &api.requests()[1];
    assert_eq!(status.method, "POST");
    assert_eq!(status.path, STATUSES);
    assert_eq!(
        status.json(),
        json!({
            "status": "@mario Ciao Mario, controlliamo subito l'ordine",
            "visibility": "direct",
            "in_reply_to_id": "113590184311441207",
        })
    );
    assert_eq!(status.header("idempotency-key"), Some("mastodon-reply-1"));
    assert!(
        api.requests()
            .iter()
            .all(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
    );
}
