//! One customer across channels, and what the law gives them over their data.
//!
//! A telco host serves X (the X emulator) and a Facebook page (the Graph emulator) on
//! loopback, with the `sticky > least-loaded` chain and two operators; everything arrives
//! as signed webhooks at the real ingress, and the CRM works through the REST API.
//!
//! - Mario writes on X and Giulia helps him; the CRM links his Messenger identity to his
//!   customer record; when he writes on Messenger, the conversation goes to Giulia (the
//!   `sticky` stage's decision), where a stranger goes to Marco. The same holds after a
//!   restart (the engine's memory is empty: the store's customer record decides) and
//!   through a second host sharing a PostgreSQL database.
//! - An erasure plants a recognisable string, erases the customer through the REST API,
//!   and scans the SQLite file (and its WAL) and the captured logs for the string and the
//!   customer's ids; redelivered webhooks of the erased messages are refused.
//! - Retention per tenant empties old messages and deletes old resolved conversations on
//!   the host's clock.

use std::collections::BTreeMap;

use centralino::Host;
use centralino::api::ApiTokens;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::ConversationStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use centralino_emulators::webhooks::{
    facebook_delivery_headers, messenger_text, tweet_create, twitter_delivery_headers,
};
use centralino_emulators::x::NewTweet;
use centralino_emulators::{GraphApi, XApi};
use serde_json::{Value, json};

use crate::component;
use crate::routing::chain;
use crate::support::eventually;

const CONSUMER_SECRET: &str = "x-consumer-secret";
const APP_SECRET: &str = "fb-app-secret";
const PAGE: &str = "5001";
const TOKEN: &str = "crm-token";

/// The platforms, shared by every host of a test.
struct Platforms {
    x: XApi,
    graph: GraphApi,
}

impl Platforms {
    async fn start() -> Platforms {
        let x = XApi::start().await.unwrap();
        x.add_user("1001", "TIM_Official", "TIM", "token-tim");
        x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
        x.add_user("2002", "TIM_Giulia", "Giulia di TIM", "token-giulia");
        x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");
        let graph = GraphApi::start().await.unwrap();
        graph.add_page(PAGE, "page-token-tim");
        Platforms { x, graph }
    }

    fn twitter(&self) -> ConnectorSpec {
        let account = |id: &str, handle: &str, credential: &str| AccountConfig {
            id: id.to_string(),
            handle: Some(handle.to_string()),
            credential: Some(credential.to_string()),
            settings: Vec::new(),
        };
        let credentials = ["tim", "marco", "giulia"]
            .into_iter()
            .map(|name| {
                (
                    name.to_string(),
                    Credential::Bearer(Secret::new(format!("token-{name}"))),
                )
            })
            .collect::<BTreeMap<_, _>>();
        let mut spec = ConnectorSpec::new(
            "twitter",
            component("twitter"),
            ConnectorConfig {
                settings: vec![("api_base".to_string(), self.x.base_url())],
                accounts: vec![
                    account("1001", "TIM_Official", "tim"),
                    account("2001", "TIM_Marco", "marco"),
                    account("2002", "TIM_Giulia", "giulia"),
                ],
            },
        );
        spec.grants = Grants::default()
            .allow_hosts(vec![self.x.authority()])
            .credentials(credentials)
            .secret("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
        spec.brands.insert("1001".to_string(), "tim".to_string());
        spec
    }

    fn facebook(&self) -> ConnectorSpec {
        let credentials = BTreeMap::from([(
            "tim-page".to_string(),
            Credential::QueryParameter {
                name: "access_token".to_string(),
                token: Secret::new("page-token-tim"),
            },
        )]);
        let mut spec = ConnectorSpec::new(
            "facebook",
            component("facebook"),
            ConnectorConfig {
                settings: vec![("graph_base".to_string(), self.graph.base_url())],
                accounts: vec![AccountConfig {
                    id: PAGE.to_string(),
                    handle: Some("TIM".to_string()),
                    credential: Some("tim-page".to_string()),
                    settings: Vec::new(),
                }],
            },
        );
        spec.grants = Grants::default()
            .allow_hosts(vec![self.graph.authority()])
            .credentials(credentials)
            .secret("app_secret".to_string(), Secret::new(APP_SECRET))
            .secret("verify_token".to_string(), Secret::new("verify-me"));
        spec.brands.insert(PAGE.to_string(), "tim".to_string());
        spec
    }

    /// A host on `store` named `id`, with both connectors and the telco's routing: Marco
    /// and Giulia (capacity 2, both online), `sticky > least-loaded`.
    async fn host(&self, store: &str, id: &str) -> Served {
        let mut engine = RoutingEngine::builder(chain("sticky > least-loaded").await).build();
        for (operator, account) in [("marco", "2001"), ("giulia", "2002")] {
            let operator = Operator::new(operator, 2)
                .skills(["tim"])
                .account("twitter", account);
            engine.add_operator(operator, Presence::Online).await;
        }
        let host = Host::builder()
            .store(store)
            .host_id(id)
            .connector(self.twitter())
            .connector(self.facebook())
            .routing(engine)
            .build()
            .await
            .unwrap();
        Served::start(host).await
    }
}

/// A host serving its ingress and REST API on one loopback listener.
struct Served {
    host: Host,
    url: String,
    server: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
}

impl Served {
    async fn start(host: Host) -> Served {
        let tokens = ApiTokens::new()
            .with("default", &Secret::new(TOKEN))
            .unwrap();
        let (address, server) = crate::support::serve_rest(&host, tokens).await;
        Served {
            host,
            url: format!("http://{address}"),
            server,
            client: reqwest::Client::new(),
        }
    }

    /// Stops serving and drops the host (a process ending).
    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        drop(self.host);
    }

    async fn post_webhook(&self, connector: &str, headers: Vec<(String, String)>, body: Vec<u8>) {
        let mut request = self
            .client
            .post(format!("{}/webhooks/{connector}", self.url))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{connector} webhook");
    }

    /// `author` tweets a mention of @TIM_Official (on the X emulator, so replies can
    /// thread under it), which X delivers as a signed Account Activity webhook. Returns
    /// the tweet's id and the delivery.
    async fn mention(&self, x: &XApi, author: (&str, &str), text: &str) -> (String, Vec<u8>) {
        let tweet = x.post_tweet(NewTweet::new(author.0, text));
        let body = serde_json::to_vec(&tweet_create(
            "1001",
            &tweet.id,
            (author.0, author.1, author.1),
            text,
            None,
        ))
        .unwrap();
        self.redeliver_tweet(&body).await;
        (tweet.id, body)
    }

    async fn redeliver_tweet(&self, body: &[u8]) {
        self.post_webhook(
            "twitter",
            twitter_delivery_headers(CONSUMER_SECRET, body),
            body.to_vec(),
        )
        .await;
    }

    /// A signed Messenger delivery to the page.
    async fn messenger(&self, psid: &str, mid: &str, text: &str, at_ms: u64) -> Vec<u8> {
        let body = serde_json::to_vec(&messenger_text(PAGE, psid, mid, text, at_ms)).unwrap();
        self.redeliver_messenger(&body).await;
        body
    }

    async fn redeliver_messenger(&self, body: &[u8]) {
        self.post_webhook(
            "facebook",
            facebook_delivery_headers(APP_SECRET, body),
            body.to_vec(),
        )
        .await;
    }

    /// A REST call as the CRM makes it; the status and the JSON answer.
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.url),
            )
            .bearer_auth(TOKEN)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Every answer is one the checked-in OpenAPI document declares, in its shape.
        let openapi = crate::api::OpenApi::load();
        let route = path.split('?').next().unwrap_or_default();
        let template = openapi.doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|template| {
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (template.split('/').collect(), route.split('/').collect());
                a.len() == b.len() && a.iter().zip(&b).all(|(t, p)| t.starts_with('{') || t == p)
            })
            .unwrap_or_else(|| panic!("{route} is not in the OpenAPI document"))
            .clone();
        openapi.check(&template, &method.to_lowercase(), status, &answer);
        (status, answer)
    }

    /// The open conversation of a customer's identity, as the store has it.
    async fn open_conversation(
        &self,
        channel: &str,
        customer: &str,
    ) -> centralino::store::ConversationRecord {
        self.host
            .store()
            .conversations("default")
            .await
            .unwrap()
            .into_iter()
            .find(|c| {
                c.channel == channel
                    && c.customer_id == customer
                    && c.status != ConversationStatus::Resolved
            })
            .unwrap_or_else(|| panic!("an open {channel} conversation of {customer}"))
    }

    async fn set_presence(&self, operator: &str, presence: &str) {
        let (status, _) = self
            .api(
                "PUT",
                &format!("/api/v1/operators/{operator}/presence"),
                Some(json!({ "presence": presence })),
            )
            .await;
        assert_eq!(status, 200);
    }

    /// The operator answers a conversation and resolves it, through the REST API.
    async fn answer_and_resolve(&self, conversation: &str, operator: &str, text: &str) -> String {
        let (status, reply) = self
            .api(
                "POST",
                &format!("/api/v1/conversations/{conversation}/replies"),
                Some(json!({ "operator": operator, "text": text })),
            )
            .await;
        assert_eq!(status, 202, "{reply}");
        let (status, _) = self
            .api(
                "POST",
                &format!("/api/v1/conversations/{conversation}/resolve"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let id = reply["id"].as_str().unwrap().to_string();
        // Settled (sent, or refused by the platform), so the history's order is known.
        eventually("the reply is settled", async || {
            let (_, reply) = self
                .api("GET", &format!("/api/v1/replies/{id}"), None)
                .await;
            reply["status"] == "sent" || reply["status"] == "failed"
        })
        .await;
        id
    }

    /// The CRM finds the customer of an identity.
    async fn customer_of(&self, channel: &str, platform_id: &str) -> Value {
        let (status, customer) = self
            .api(
                "GET",
                &format!("/api/v1/customers?channel={channel}&platform_id={platform_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{customer}");
        customer
    }

    /// The CRM links an identity to a customer.
    async fn link(&self, customer: &str, channel: &str, platform_id: &str) -> Value {
        let (status, linked) = self
            .api(
                "POST",
                &format!("/api/v1/customers/{customer}/identities"),
                Some(json!({ "channel": channel, "platform_id": platform_id })),
            )
            .await;
        assert_eq!(status, 200, "{linked}");
        linked
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Mario (X id 42, Messenger PSID 7001) writes on X while only Giulia is online; Giulia
/// answers and resolves; Marco comes back; the CRM links Mario's Messenger identity to his
/// customer. Returns the customer's id.
async fn mario_helped_by_giulia_on_x_then_linked(platforms: &Platforms, a: &Served) -> String {
    a.set_presence("marco", "offline").await;
    a.mention(
        &platforms.x,
        ("42", "mario_rossi"),
        "@TIM_Official il modem non va",
    )
    .await;
    let on_x = a.open_conversation("twitter", "42").await;
    assert_eq!(on_x.assignee.as_deref(), Some("giulia"));
    a.answer_and_resolve(
        &on_x.id,
        "giulia",
        "@mario_rossi ciao Mario, ci pensiamo noi",
    )
    .await;
    a.set_presence("marco", "online").await;

    let customer = a.customer_of("twitter", "42").await;
    let id = customer["id"].as_str().unwrap().to_string();
    assert_eq!(customer["last_operator"], "giulia");
    let linked = a.link(&id, "facebook", "7001").await;
    let identities: Vec<(&str, &str)> = linked["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["channel"].as_str().unwrap(),
                i["platform_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(identities, [("twitter", "42"), ("facebook", "7001")]);
    id
}

/// The reason the chain gave for assigning `conversation`, from the CRM's events.
async fn assignment_reason(served: &Served, conversation: &str) -> String {
    let inbox = served.host.local_inbox().unwrap().clone();
    let mut reason = String::new();
    eventually("the assignment reaches the CRM", async || {
        reason = inbox
            .events()
            .into_iter()
            .find_map(|d| match d.event {
                CrmEvent::ConversationAssigned {
                    conversation_id,
                    reason,
                    ..
                } if conversation_id == conversation => Some(reason),
                _ => None,
            })
            .unwrap_or_default();
        !reason.is_empty()
    })
    .await;
    reason
}

#[tokio::test]
async fn a_customer_linked_across_x_and_messenger_goes_back_to_their_operator_also_after_a_restart()
{
    let platforms = Platforms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let a = platforms.host(&store, "centralino").await;
    let mario = mario_helped_by_giulia_on_x_then_linked(&platforms, &a).await;

    // Mario on Messenger: one customer, back to Giulia, by the sticky stage.
    a.messenger("7001", "m_mario_1", "sono sempre io, il modem", now_ms())
        .await;
    let on_messenger = a.open_conversation("facebook", "7001").await;
    assert_eq!(on_messenger.assignee.as_deref(), Some("giulia"));
    let reason = assignment_reason(&a, &on_messenger.id).await;
    assert!(reason.starts_with("sticky"), "{reason}");
    // A stranger on Messenger goes to the least loaded operator: Marco.
    a.messenger("7002", "m_lucia_1", "buongiorno", now_ms())
        .await;
    let lucia = a.open_conversation("facebook", "7002").await;
    assert_eq!(lucia.assignee.as_deref(), Some("marco"));

    // His history across both channels, one page at a time, newest first.
    let mut texts = Vec::new();
    let mut channels = std::collections::BTreeSet::new();
    let mut after = String::new();
    loop {
        let (status, page) = a
            .api(
                "GET",
                &format!("/api/v1/customers/{mario}/history?limit=1{after}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        assert!(messages.len() <= 1);
        for m in messages {
            texts.push(m["text"].as_str().unwrap().to_string());
            channels.insert(m["channel"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        texts.first().map(String::as_str),
        Some("sono sempre io, il modem")
    );
    assert!(
        texts.contains(&"@TIM_Official il modem non va".to_string()),
        "{texts:?}"
    );
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(
        !texts.iter().any(|t| t == "buongiorno"),
        "never another customer's"
    );

    a.answer_and_resolve(&on_messenger.id, "giulia", "eccomi")
        .await;
    a.answer_and_resolve(&lucia.id, "marco", "buongiorno a lei")
        .await;
    a.stop().await;

    // A restart: the engine remembers nothing; the store's customer record does.
    let b = platforms.host(&store, "centralino").await;
    b.messenger("7001", "m_mario_2", "di nuovo io", now_ms())
        .await;
    let again = b.open_conversation("facebook", "7001").await;
    assert_ne!(again.id, on_messenger.id);
    assert_eq!(again.assignee.as_deref(), Some("giulia"));
    let reason = assignment_reason(&b, &again.id).await;
    assert!(reason.starts_with("sticky"), "{reason}");
    // The control: a newcomer goes to Marco, the one a fresh engine prefers.
    b.messenger("7003", "m_piero_1", "salve", now_ms()).await;
    let piero = b.open_conversation("facebook", "7003").await;
    assert_eq!(piero.assignee.as_deref(), Some("marco"));
}

#[tokio::test]
async fn a_linked_customer_goes_back_to_their_operator_through_a_second_host_on_postgres() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!("skipped: CENTRALINO_TEST_POSTGRES is not set");
        return;
    };
    let platforms = Platforms::start().await;
    let store = crate::store::fresh_postgres_database(&base).await;
    let a = platforms.host(&store, "host-a").await;
    let b = platforms.host(&store, "host-b").await;
    mario_helped_by_giulia_on_x_then_linked(&platforms, &a).await;

    // Mario writes on Messenger through the other host, which never saw him.
    b.messenger("7001", "m_mario_1", "sono sempre io", now_ms())
        .await;
    let on_messenger = b.open_conversation("facebook", "7001").await;
    assert_eq!(on_messenger.assignee.as_deref(), Some("giulia"));
    // The control, through the same host: a stranger goes to Marco.
    b.messenger("7002", "m_lucia_1", "buongiorno", now_ms())
        .await;
    let lucia = b.open_conversation("facebook", "7002").await;
    assert_eq!(lucia.assignee.as_deref(), Some("marco"));
}

/// Mario mentions the brand on X and Lucia writes to the page on Messenger: each is filed
/// under a customer of their own; their ids.
async fn mario_and_lucia(platforms: &Platforms, host: &Served) -> (String, String) {
    host.mention(&platforms.x, ("42", "mario_rossi"), "@TIM_Official ciao")
        .await;
    host.messenger("7002", "m_lucia_1", "buongiorno", now_ms())
        .await;
    let id = |customer: Value| customer["id"].as_str().unwrap().to_string();
    (
        id(host.customer_of("twitter", "42").await),
        id(host.customer_of("facebook", "7002").await),
    )
}

#[tokio::test]
async fn the_crm_links_unlinks_and_merges_customers_through_the_rest_api() {
    let platforms = Platforms::start().await;
    let host = platforms.host("sqlite::memory:", "centralino").await;
    let (mario, lucia) = mario_and_lucia(&platforms, &host).await;
    assert_ne!(
        mario, lucia,
        "each identity that writes is filed under its own customer"
    );

    // Merge: Lucia's identities become Mario's customer's, and her record is gone.
    let (status, merged) = host
        .api(
            "POST",
            &format!("/api/v1/customers/{mario}/merge"),
            Some(json!({ "from": lucia })),
        )
        .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["identities"].as_array().unwrap().len(), 2);
    let (status, gone) = host
        .api("GET", &format!("/api/v1/customers/{lucia}"), None)
        .await;
    assert_eq!(
        (status, &gone["error"]["code"]),
        (404, &json!("customer_not_found"))
    );

    // Unlink: the identity becomes a customer of its own; the last one cannot go.
    let (status, left) = host
        .api(
            "DELETE",
            &format!("/api/v1/customers/{mario}/identities/facebook/7002"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["identities"].as_array().unwrap().len(), 1);
    let own = host.customer_of("facebook", "7002").await;
    assert_ne!(own["id"], json!(mario));
    let (status, refused) = host
        .api(
            "DELETE",
            &format!("/api/v1/customers/{mario}/identities/twitter/42"),
            None,
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("refused"))
    );
    let (status, _) = host
        .api(
            "POST",
            &format!("/api/v1/customers/{mario}/merge"),
            Some(json!({ "from": mario })),
        )
        .await;
    assert_eq!(status, 409);

    // An identity that never wrote can be linked ahead; unknown customers are 404.
    let linked = host.link(&mario, "facebook", "7999").await;
    assert_eq!(linked["identities"].as_array().unwrap().len(), 2);
    let (status, _) = host
        .api(
            "POST",
            "/api/v1/customers/nobody/identities",
            Some(json!({ "channel": "facebook", "platform_id": "1" })),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = host
        .api(
            "POST",
            &format!("/api/v1/customers/{mario}/identities"),
            Some(json!({ "channel": " ", "platform_id": "1" })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, suggestions) = host
        .api(
            "GET",
            &format!("/api/v1/customers/{mario}/suggestions"),
            None,
        )
        .await;
    assert_eq!((status, suggestions), (200, json!({ "suggestions": [] })));
    let (status, _) = host
        .api(
            "GET",
            &format!("/api/v1/customers/{mario}/history?after=not-a-cursor"),
            None,
        )
        .await;
    assert_eq!(status, 400);
    // An embedding CRM asking for an impossible page gets the same kind of error as any
    // other list asked wrongly, naming the field.
    let refused = host.host.customer_history("default", &mario, 0, None).await;
    assert!(
        matches!(&refused, Err(centralino::Error::InvalidQuery(why)) if why.contains("`limit`")),
        "{refused:?}"
    );
}

mod erasure;
mod retention;
mod suggestions;

/// A CRM's merge is a transaction that reads (both customers exist) before it writes. With
/// another process holding the store's write lock (an admin's `sqlite3` shell, a CLI
/// command), it waits for that writer instead of failing: a transaction that began by
/// reading and then must write gets SQLite's `BUSY` at once, so every writer of the store
/// takes the lock as it begins.
#[tokio::test]
async fn a_merge_waits_for_another_process_writing_to_the_database_instead_of_failing() {
    use sqlx::Connection as _;
    let platforms = Platforms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("care.db").display());
    let host = platforms.host(&url, "centralino").await;
    let (mario, lucia) = mario_and_lucia(&platforms, &host).await;

    let mut shell = sqlx::SqliteConnection::connect(&url).await.unwrap();
    crate::support::hold_write_lock(&mut shell).await;
    let path = format!("/api/v1/customers/{mario}/merge");
    let mut merging = std::pin::pin!(host.api("POST", &path, Some(json!({ "from": lucia }))));
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut merging).await;
    assert!(early.is_err(), "the merge waits for the lock: {early:?}");
    sqlx::query("COMMIT").execute(&mut shell).await.unwrap();

    let (status, merged) = merging.await;
    assert_eq!(
        status, 200,
        "merged once the other writer is done: {merged}"
    );
    assert_eq!(merged["identities"].as_array().unwrap().len(), 2);
    let (status, gone) = host
        .api("GET", &format!("/api/v1/customers/{lucia}"), None)
        .await;
    assert_eq!(
        (status, &gone["error"]["code"]),
        (404, &json!("customer_not_found"))
    );
}
