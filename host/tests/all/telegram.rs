//! The `telegram` connector, written with the guest SDK only: its webhook and polling
//! paths through the test kit (signed deliveries, a scripted Bot API), and a host that knew
//! nothing of Telegram taking it on through its config file alone.

use std::time::Duration;

use crate::support::free_ports;
use crate::support::{eventually, inbox_events};
use centralino::PluginFailure;
use centralino::config::Config;
use centralino::crm::CrmEvent;
use centralino::types::{Capability, MessageKind, OutboundMessage, Presence, WebhookRequest};
use centralino_emulators::telegram::{TelegramApi, TelegramUser, webhook_headers};
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::{ConnectorTest, Outcome, failure, webhook};
use serde_json::{Value, json};

const BOT: &str = "7001";
const TOKEN: &str = "7001:AAH-tim-help-bot";
const SECRET: &str = "tg-webhook-secret";

/// The connector with one bot, granted the webhook secret under its default name.
fn telegram() -> ConnectorTest {
    ConnectorTest::new("telegram")
        .account(BOT, Some("tim-bot"))
        .secret("webhook_secret", SECRET)
}

/// [`telegram`] calling the Bot API at `base_url` (granted `authority`), its bot's token
/// attached by the host under the name `tim-bot`.
fn telegram_at(base_url: String, authority: String) -> ConnectorTest {
    telegram()
        .setting("api_base", base_url)
        .allow(authority)
        .path_token("tim-bot", TOKEN)
}

/// A Bot API update: `text` from Mario (4242) in his private chat, message 55.
fn update(text: &str) -> Value {
    json!({
        "update_id": 900_001,
        "message": {
            "message_id": 55,
            "from": { "id": 4242, "is_bot": false, "first_name": "Mario", "last_name": "Rossi", "username": "mario_rossi" },
            "chat": { "id": 4242, "type": "private", "first_name": "Mario" },
            "date": 1_795_856_400,
            "text": text,
        }
    })
}

fn delivery(body: &Value, secret: Option<&str>, path: &str) -> WebhookRequest {
    let body = serde_json::to_vec(body).unwrap();
    let header = secret.map(|s| ("x-telegram-bot-api-secret-token", s));
    WebhookRequest {
        path: path.to_string(),
        ..webhook::post(&body, header.as_slice())
    }
}

/// The token a request carried in its path (`/bot<token>/method`), put there by the host.
fn token_of(path: &str) -> String {
    let segment = path.trim_start_matches("/bot");
    segment.split('/').next().unwrap_or_default().to_string()
}

fn reply_to(text: &str, in_reply_to: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        account: BOT.to_string(),
        conversation_key: "tg:7001:4242".to_string(),
        kind: MessageKind::PrivateMessage,
        recipient: None,
        in_reply_to: in_reply_to.map(str::to_string),
        text: text.to_string(),
        attachments: Vec::new(),
        idempotency_key: "reply-1".to_string(),
    }
}

// ---- describe and configure ----

#[tokio::test]
async fn describes_itself_as_a_polling_and_webhook_channel_and_refuses_unknown_settings() {
    let mut connector = telegram().instance().unwrap();
    connector.ready().await.unwrap();
    let description = connector.description().unwrap();
    assert_eq!(description.channel, "telegram");
    assert_eq!(description.max_text_length, 4096);
    for capability in [
        Capability::PrivateMessage,
        Capability::Webhook,
        Capability::Polling,
    ] {
        assert!(description.capabilities.contains(&capability));
    }

    let mut typo = telegram()
        .setting("api_bsae", "https://api.telegram.org")
        .instance()
        .unwrap();
    let err = typo.ready().await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::InvalidInput { detail } if detail.contains("`api_bsae`")),
        "{err}"
    );
}

// ---- webhooks ----

#[tokio::test]
async fn a_webhook_update_with_the_secret_token_becomes_a_private_message() {
    let mut connector = telegram().instance().unwrap();
    let outcome = connector
        .handle_webhook(delivery(&update("il modem non va"), Some(SECRET), "/"))
        .await
        .unwrap();
    let message = outcome.only_message();
    assert_eq!(message.external_id, "4242:55");
    assert_eq!(message.account, BOT);
    assert_eq!(message.conversation_key, "tg:7001:4242");
    assert_eq!(message.author.id, "4242");
    assert_eq!(message.author.handle.as_deref(), Some("mario_rossi"));
    assert_eq!(message.author.display_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(message.text, "il modem non va");
    assert_eq!(message.kind, MessageKind::PrivateMessage);
    assert_eq!(message.in_reply_to, None);
    assert_eq!(message.created_at, 1_795_856_400_000);
}

#[tokio::test]
async fn an_edited_message_is_an_edit_of_the_stored_one_and_other_updates_are_ignored_by_kind() {
    let mut connector = telegram().instance().unwrap();
    let mut edited = update("il modem non va più");
    let mut message = edited["message"].take();
    message["edit_date"] = json!(1_795_856_460);
    edited = json!({ "update_id": 900_002, "edited_message": message });
    let outcome = connector
        .handle_webhook(delivery(&edited, Some(SECRET), "/"))
        .await
        .unwrap();
    let message = outcome.only_message();
    // The same message (its id, its first date), as it reads now, marked as an edit.
    assert_eq!(message.external_id, "4242:55");
    assert_eq!(message.text, "il modem non va più");
    assert_eq!(message.created_at, 1_795_856_400_000);
    assert!(
        message
            .extra
            .contains(&("centralino:edited".to_string(), "1795856460000".to_string())),
        "{:?}",
        message.extra
    );

    // A channel post and a button press: nothing to store, each said so by its kind.
    for (kind, body) in [
        (
            "channel_post",
            json!({ "message_id": 1, "chat": { "id": -100, "type": "channel" }, "date": 1, "text": "news" }),
        ),
        (
            "callback_query",
            json!({ "id": "77", "from": { "id": 4242, "is_bot": false, "first_name": "Mario" } }),
        ),
    ] {
        let other = json!({ "update_id": 900_003, kind: body });
        connector
            .handle_webhook(delivery(&other, Some(SECRET), "/"))
            .await
            .unwrap()
            .assert_acknowledged_with_nothing();
        assert_eq!(
            connector.take_notes().ignored,
            [(kind.to_string(), 1)].into()
        );
    }
}

#[tokio::test]
async fn a_webhook_without_the_secret_token_is_401_and_with_a_wrong_one_403() {
    let mut connector = telegram().instance().unwrap();
    let body = update("ciao");
    let missing = connector
        .handle_webhook(delivery(&body, None, "/"))
        .await
        .unwrap();
    missing.assert_refused(401);
    let wrong = connector
        .handle_webhook(delivery(&body, Some("guess"), "/"))
        .await
        .unwrap();
    wrong.assert_refused(403);
}

#[tokio::test]
async fn the_route_names_the_bot_and_replies_group_chats_and_bots_are_told_apart() {
    let mut connector = telegram()
        .account("7002", Some("tim-business-bot"))
        .instance()
        .unwrap();
    // Two bots: the bare route cannot say which one an update is for.
    let bare = connector
        .handle_webhook(delivery(&update("ciao"), Some(SECRET), "/"))
        .await
        .unwrap();
    bare.assert_refused(404);

    // A group message answering the bot's message 54 is a public post in reply to it.
    let mut group = update("@tim_business_bot grazie");
    group["message"]["chat"] = json!({ "id": -100_123, "type": "supergroup", "title": "Clienti" });
    group["message"]["reply_to_message"] = json!({
        "message_id": 54, "from": { "id": 7002, "is_bot": true, "first_name": "TIM" },
        "chat": { "id": -100_123, "type": "supergroup" }, "date": 1_795_856_300, "text": "Come possiamo aiutarti?"
    });
    let outcome = connector
        .handle_webhook(delivery(&group, Some(SECRET), "/7002"))
        .await
        .unwrap();
    let message = outcome.only_message();
    assert_eq!(message.account, "7002");
    assert_eq!(message.kind, MessageKind::PublicPost);
    assert_eq!(message.conversation_key, "tg:7002:-100123");
    assert_eq!(message.in_reply_to.as_deref(), Some("-100123:54"));

    // A bot's own message is no customer message, and said so.
    let mut from_bot = update("echo");
    from_bot["message"]["from"]["is_bot"] = json!(true);
    connector
        .handle_webhook(delivery(&from_bot, Some(SECRET), "/7001"))
        .await
        .unwrap()
        .assert_acknowledged_with_nothing();
    assert_eq!(
        connector.take_notes().ignored,
        [("bot-message".to_string(), 1)].into()
    );
}

// ---- one URL per bot, through the host's HTTP ingress (issue 17) ----

/// A host serving the telegram connector with bots `7001` and `7002` on loopback; the
/// base URL of its ingress.
async fn serving_two_bots() -> (centralino::Host, tokio::task::JoinHandle<()>, String) {
    use centralino::capabilities::{Grants, Secret};
    use centralino::connectors::ConnectorSpec;
    use centralino::types::{AccountConfig, ConnectorConfig};
    let bot = |id: &str, handle: &str| AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        ..AccountConfig::default()
    };
    let mut spec = ConnectorSpec::new(
        "telegram",
        centralino_testkit::component("telegram"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![bot(BOT, "tim_help_bot"), bot("7002", "tim_business_bot")],
        },
    );
    spec.grants = Grants::default().secret("webhook_secret".to_string(), Secret::new(SECRET));
    let host = centralino::Host::builder()
        .connector(spec)
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    let server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
    (host, server, base)
}

#[tokio::test]
async fn two_bots_of_one_connector_each_deliver_to_their_own_webhook_url_through_the_ingress() {
    let (host, _server, base) = serving_two_bots().await;
    let client = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let request = client
            .post(url)
            .header("x-telegram-bot-api-secret-token", SECRET)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap());
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // Mario writes to the help bot, Lucia (4343) to the business bot: each update comes to
    // the URL its bot was registered with.
    let to_help = update("il mio modem non va");
    let mut to_business = update("fattura sbagliata");
    to_business["update_id"] = json!(900_002);
    to_business["message"]["from"] = json!({ "id": 4343, "is_bot": false, "first_name": "Lucia" });
    to_business["message"]["chat"] =
        json!({ "id": 4343, "type": "private", "first_name": "Lucia" });
    assert_eq!(
        post(format!("{base}/webhooks/telegram/7001"), to_help).await,
        200
    );
    assert_eq!(
        post(
            format!("{base}/webhooks/telegram/7002"),
            to_business.clone()
        )
        .await,
        200
    );
    // The tenant form of the route takes the bot's id the same way.
    let mut again = to_business.clone();
    again["update_id"] = json!(900_003);
    again["message"]["message_id"] = json!(56);
    again["message"]["text"] = json!("grazie");
    assert_eq!(
        post(
            format!("{base}/tenants/default/webhooks/telegram/7002"),
            again
        )
        .await,
        200
    );

    let mut conversations = host.store().conversations("default").await.unwrap();
    conversations.sort_by(|a, b| a.account.cmp(&b.account));
    let seen: Vec<(&str, &str, &str)> = conversations
        .iter()
        .map(|c| {
            (
                c.account.as_str(),
                c.thread_key.as_str(),
                c.customer_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("7001", "tg:7001:4242", "4242"),
            ("7002", "tg:7002:4343", "4343")
        ]
    );
    assert_eq!(host.store().message_count("default").await.unwrap(), 3);

    // With two bots the bare route cannot say which bot an update is for, and a bot the
    // connector does not serve is refused; neither stores anything.
    assert_eq!(
        post(format!("{base}/webhooks/telegram"), update("?")).await,
        404
    );
    assert_eq!(
        post(format!("{base}/webhooks/telegram/7999"), update("?")).await,
        404
    );
    assert_eq!(host.store().message_count("default").await.unwrap(), 3);
}

// ---- polling and sending against a scripted Bot API ----

#[tokio::test]
async fn polling_asks_from_the_cursor_and_returns_the_next_offset_as_cursor() {
    let api = ScriptedServer::start(vec![
        Exchange::get(&format!("/bot{TOKEN}/getUpdates"))
            .reply_json(200, json!({ "ok": true, "result": [update("linea giù")] })),
        Exchange::get(&format!("/bot{TOKEN}/getUpdates"))
            .reply_json(200, json!({ "ok": true, "result": [] })),
    ])
    .await
    .unwrap();
    let mut connector = telegram_at(api.base_url(), api.authority())
        .instance()
        .unwrap();

    let first = connector.poll(BOT, Some("900000")).await.unwrap();
    assert_eq!(first.messages.len(), 1);
    assert_eq!(first.messages[0].text, "linea giù");
    assert_eq!(first.cursor.as_deref(), Some("900002"));
    // Nothing new: no messages, and the old cursor stays.
    let second = connector.poll(BOT, Some("900002")).await.unwrap();
    assert!(second.messages.is_empty());
    assert_eq!(second.cursor, None);

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].query_param("offset").as_deref(), Some("900000"));
    assert_eq!(requests[1].query_param("offset").as_deref(), Some("900002"));
    // The plugin named the credential; the host attached the token.
    for request in &requests {
        assert_eq!(token_of(&request.path), TOKEN);
    }
}

#[tokio::test]
async fn a_polled_update_of_another_kind_is_reported_by_its_kind_and_passed_over() {
    let api = ScriptedServer::start(vec![
        Exchange::get(&format!("/bot{TOKEN}/getUpdates")).reply_json(
            200,
            json!({ "ok": true, "result": [
                update("linea giù"),
                { "update_id": 900_002, "my_chat_member": { "chat": { "id": 4242, "type": "private" } } },
            ] }),
        ),
    ])
    .await
    .unwrap();
    let mut connector = telegram_at(api.base_url(), api.authority())
        .instance()
        .unwrap();
    let page = connector.poll(BOT, Some("900000")).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.cursor.as_deref(), Some("900003"), "past both updates");
    assert_eq!(
        connector.take_notes().ignored,
        [("my_chat_member".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn telegrams_429_is_rate_limited_for_its_retry_after() {
    let api = ScriptedServer::start(vec![
        Exchange::get(&format!("/bot{TOKEN}/getUpdates")).reply_json(
            429,
            json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": { "retry_after": 7 } }),
        ),
    ])
    .await
    .unwrap();
    let mut connector = telegram_at(api.base_url(), api.authority())
        .instance()
        .unwrap();
    let err = connector.poll(BOT, None).await.unwrap_err();
    assert!(
        matches!(
            failure(&err),
            PluginFailure::RateLimited {
                retry_after_ms: 7000,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_reply_goes_out_with_send_message_threaded_by_reply_to_message_id() {
    let telegram_api = TelegramApi::start().await.unwrap();
    telegram_api.add_bot(BOT, "TIM_help_bot", TOKEN);
    let mario = TelegramUser::new("4242", "Mario", Some("mario_rossi"));
    let written = telegram_api.customer_writes(BOT, &mario, "il modem non va");
    let message_id = written["message"]["message_id"].as_i64().unwrap();
    let mut connector = telegram_at(telegram_api.base_url(), telegram_api.authority())
        .instance()
        .unwrap();

    let in_reply_to = format!("4242:{message_id}");
    let sent = connector
        .send(reply_to("Ciao Mario, riavvia il modem", Some(&in_reply_to)))
        .await
        .unwrap();
    let delivered = telegram_api.sent();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].chat_id, "4242");
    assert_eq!(delivered[0].text, "Ciao Mario, riavvia il modem");
    assert_eq!(delivered[0].reply_to_message_id, Some(message_id));
    assert_eq!(
        sent.external_id,
        format!("4242:{}", delivered[0].message_id)
    );

    // Too long is refused before any request; a chat Telegram does not know is rejected.
    let err = connector
        .send(reply_to(&"a".repeat(4097), None))
        .await
        .unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { .. }),
        "{err}"
    );
    let stranger = OutboundMessage {
        conversation_key: "tg:7001:999".to_string(),
        ..reply_to("ciao", None)
    };
    let err = connector.send(stranger).await.unwrap_err();
    assert!(
        matches!(failure(&err), PluginFailure::Rejected { reason } if reason.contains("chat not found")),
        "{err}"
    );
    assert_eq!(telegram_api.sent().len(), 1);
}

// ---- no rebuild: the host takes Telegram on through its config file ----

/// A `centralino.toml` adding the Telegram connector to a host built without it.
/// Brand `tim` answering waiting customers in Italian.
const BRAND_TIM: &str = r#"
[[brands]]
id = "tim"
language = "it"
auto_reply = true
[brands.templates.it]
wait_estimate = "Ti risponderà un operatore tra {wait}."
wait_unknown = "Ti risponderà il primo operatore libero."
nobody_at_work = "Nessun operatore è in servizio ora: ti risponderemo appena possibile."
closed = "Siamo chiusi: riapriamo {resumes}."
"#;

fn config_text(api: &TelegramApi) -> String {
    let plugin_dir = centralino_testkit::component("telegram")
        .parent()
        .unwrap()
        .to_path_buf();
    format!(
        r#"[host]
store = "sqlite::memory:"
plugin_dir = {plugin_dir:?}

[[connectors]]
name = "telegram"
plugin = "telegram"
allowed_hosts = ["{authority}"]
settings = {{ api_base = "{base}" }}
secrets = {{ webhook_secret = "env:TG_WEBHOOK_SECRET" }}

[[connectors.accounts]]
id = "{BOT}"
handle = "TIM_help_bot"
brand = "tim"
credential = {{ path = "env:TG_TOKEN_TIM" }}

[routing]
chain = "round-robin"

[[operators]]
id = "marco"
skills = ["tim"]
capacity = 3
accounts = ["telegram:TIM_help_bot"]
"#,
        authority = api.authority(),
        base = api.base_url(),
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "TG_TOKEN_TIM" => Some(TOKEN.to_string()),
        "TG_WEBHOOK_SECRET" => Some(SECRET.to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn a_host_built_without_telegram_takes_it_on_through_config_and_answers_customers() {
    let api = TelegramApi::start().await.unwrap();
    api.add_bot(BOT, "TIM_help_bot", TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    std::fs::write(&file, config_text(&api)).unwrap();

    // The very binary the project ships checks the config and the plugin it names.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["check", "--config"])
        .arg(&file)
        .env("TG_TOKEN_TIM", TOKEN)
        .env("TG_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("telegram"), "{said}");

    // The host library, as a CRM embeds it, started from that file.
    let config = Config::load(&file).unwrap();
    let secrets = config.resolve_secrets_with(env).unwrap();
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

    // Mario writes to the bot; a poll stores it and routing gives it to Marco.
    let mario = TelegramUser::new("4242", "Mario", Some("mario_rossi"));
    let written = api.customer_writes(BOT, &mario, "il mio modem non va");
    let reports = host.poll("default", "telegram").await.unwrap();
    assert_eq!((reports[0].stored, reports[0].error.as_deref()), (1, None));
    let conversations = host.store().conversations("default").await.unwrap();
    assert_eq!(conversations.len(), 1);
    let conversation = conversations[0].id.clone();
    let inbox = host.local_inbox().unwrap().clone();
    eventually("the assignment to marco", async || {
        inbox.events().iter().any(|d| {
            matches!(&d.event, CrmEvent::ConversationAssigned { operator, .. } if operator == "marco")
        })
    })
    .await;

    // Marco answers; the outbox sends it, threaded under Mario's message.
    host.reply(
        "default",
        &conversation,
        "marco",
        None,
        "Ciao Mario, sono Marco di TIM",
        "tg-1",
    )
    .await
    .unwrap();
    eventually("the reply on Telegram", async || !api.sent().is_empty()).await;
    let sent = api.sent();
    assert_eq!(sent[0].chat_id, "4242");
    assert_eq!(
        sent[0].reply_to_message_id,
        written["message"]["message_id"].as_i64()
    );
    // Every request carried the bot's token, which the plugin only ever named.
    assert!(api.requests().iter().all(|r| token_of(&r.path) == TOKEN));

    // The next message arrives by webhook instead, into the same conversation; the poll
    // that follows confirms both updates and stores nothing twice.
    let update = api.customer_writes(BOT, &mario, "grazie, ora va");
    let request = WebhookRequest {
        headers: webhook_headers(SECRET),
        ..delivery(&update, Some(SECRET), "/7001")
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "telegram", request)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].conversation_id, conversation);
    let again = host.poll("default", "telegram").await.unwrap();
    assert_eq!((again[0].stored, again[0].duplicates), (0, 1));
    host.poll("default", "telegram").await.unwrap();
    assert!(api.pending_updates(BOT).is_empty());
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    let inbound = messages.iter().filter(|m| m.direction == "inbound").count();
    assert_eq!(inbound, 2);
}

#[tokio::test]
async fn a_customers_edit_reaches_the_store_and_the_crm_through_a_poll_and_an_unknown_one_is_kept()
{
    let api = TelegramApi::start().await.unwrap();
    api.add_bot(BOT, "TIM_help_bot", TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    std::fs::write(&file, config_text(&api)).unwrap();
    let config = Config::load(&file).unwrap();
    let secrets = config.resolve_secrets_with(env).unwrap();
    let host = config
        .host_builder(config.runtime().unwrap(), &secrets)
        .build()
        .await
        .unwrap();
    let mario = TelegramUser::new("4242", "Mario", Some("mario_rossi"));
    let written = api.customer_writes(BOT, &mario, "il modem è rosso");
    let reports = host.poll("default", "telegram").await.unwrap();
    assert_eq!((reports[0].stored, reports[0].error.as_deref()), (1, None));
    let conversation = host.store().conversations("default").await.unwrap()[0]
        .id
        .clone();

    // Mario corrects himself: the stored message now reads as he left it.
    let message_id = written["message"]["message_id"].as_i64().unwrap();
    let edit = api.customer_edits(BOT, &mario, message_id, "il modem è spento");
    let reports = host.poll("default", "telegram").await.unwrap();
    assert_eq!(
        (
            reports[0].stored,
            reports[0].duplicates,
            reports[0].error.as_deref()
        ),
        (0, 0, None),
        "an edit is no new message"
    );
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.text, "il modem è spento");
    let edited_at = edit["edited_message"]["edit_date"].as_i64().unwrap() * 1000;
    assert_eq!(messages[0].edited_at, Some(edited_at));
    let inbox = host.local_inbox().unwrap().clone();
    let edited = |e: &CrmEvent| matches!(e, CrmEvent::MessageEdited { .. });
    eventually("the CRM hears of the edit", async || {
        !inbox_events(&inbox, edited).is_empty()
    })
    .await;
    let edits = inbox_events(&inbox, edited);
    assert_eq!(
        edits,
        [CrmEvent::MessageEdited {
            conversation_id: conversation.clone().into(),
            connector: "telegram".into(),
            message_id: messages[0].id.clone(),
            external_id: format!("4242:{message_id}"),
            text: "il modem è spento".to_string(),
            at: u64::try_from(edited_at).unwrap(),
        }]
    );

    // An edit of a message the host never saw (written before it served the bot) is the
    // customer's words all the same: stored, in Mario's conversation.
    api.customer_edits(BOT, &mario, 3, "ho già riavviato due volte");
    let reports = host.poll("default", "telegram").await.unwrap();
    assert_eq!((reports[0].stored, reports[0].error.as_deref()), (1, None));
    let messages = host
        .store()
        .messages("default", &conversation)
        .await
        .unwrap();
    let mut texts: Vec<&str> = messages.iter().map(|m| m.message.text.as_str()).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["ho già riavviato due volte", "il modem è spento"]);
}

/// Kills the `centralino run` child when the test ends, passing or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_centralino_binary_runs_telegram_from_its_config_file_and_answers_the_customer() {
    let api = TelegramApi::start().await.unwrap();
    api.add_bot(BOT, "TIM_help_bot", TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    let [listen, admin] = free_ports();
    // Polled every second; nobody is online, so a customer is queued and told the wait
    // (the brand turns automatic answers on).
    let config = config_text(&api) + BRAND_TIM;
    let config = config
        .replace(
            "store = \"sqlite::memory:\"",
            &format!(
                "store = \"sqlite::memory:\"\nlisten = \"127.0.0.1:{listen}\"\nadmin_listen = \"127.0.0.1:{admin}\"",
            ),
        )
        .replace(
            "plugin = \"telegram\"",
            "plugin = \"telegram\"\npoll_interval_secs = 1",
        );
    std::fs::write(&file, config).unwrap();
    let mario = TelegramUser::new("4242", "Mario", Some("mario_rossi"));
    let written = api.customer_writes(BOT, &mario, "il mio modem non va");

    let log = std::fs::File::create(dir.path().join("centralino.log")).unwrap();
    let _host = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["run", "--config"])
            .arg(&file)
            .env("TG_TOKEN_TIM", TOKEN)
            .env("TG_WEBHOOK_SECRET", SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.path().join("centralino.log")).unwrap_or_default();
    for _ in 0..300 {
        if !api.sent().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = api.sent();
    assert_eq!(
        sent.len(),
        1,
        "no answer on Telegram; the host said:\n{}",
        log()
    );
    assert_eq!(sent[0].chat_id, "4242");
    assert_eq!(
        sent[0].reply_to_message_id,
        written["message"]["message_id"].as_i64()
    );
    assert!(!sent[0].text.is_empty());

    // Its webhook ingress takes Telegram's deliveries too, checking the secret token.
    let update = api.customer_writes(BOT, &mario, "ci siete?");
    let url = format!("http://127.0.0.1:{listen}/webhooks/telegram");
    let client = reqwest::Client::new();
    let deliver = |secret: &'static str| {
        let mut request = client.post(&url).body(update.to_string());
        for (name, value) in webhook_headers(secret) {
            request = request.header(name, value);
        }
        request.send()
    };
    assert_eq!(deliver("guess").await.unwrap().status().as_u16(), 403);
    assert_eq!(
        deliver(SECRET).await.unwrap().status().as_u16(),
        200,
        "{}",
        log()
    );
}

#[test]
fn no_host_source_mentions_telegram() {
    fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, found);
            } else if std::fs::read_to_string(&path)
                .unwrap_or_default()
                .to_lowercase()
                .contains("telegram")
            {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    visit(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "the host knows about Telegram: {found:?}");
}
