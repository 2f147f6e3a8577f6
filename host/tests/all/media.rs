//! Media end to end on the emulators: a customer's file reaches the CRM as a file the
//! store keeps (fetched in the background with the account's credential where the
//! platform wants one), whatever happens to the platform's address afterwards; the
//! message never waits for it; limits, failures, retention and erasure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use centralino::api::{ApiTokens, public_router};
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::clock::ManualClock;
use centralino::connectors::ConnectorSpec;
use centralino::types::{AccountConfig, ConnectorConfig};
use centralino::{Host, HostBuilder, MediaLimits};
use centralino_emulators::webhooks::{facebook_delivery_headers, twitter_delivery_headers};
use centralino_emulators::{Fault, GraphApi, XApi};
use serde_json::Value;

use crate::component;
use crate::support::eventually;

const CONSUMER_SECRET: &str = "x-consumer-secret";
const APP_SECRET: &str = "fb-app-secret";
const TOKEN: &str = "crm-token";

/// The brand account of the X fixture (`resistbot`) and the customer who writes to it.
const X_ACCOUNT: &str = "835740314006511618";
const X_CUSTOMER: &str = "272953809";
/// The page and the customer of the Messenger fixture.
const PAGE: &str = "1234567890";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(path),
    )
    .unwrap()
}

fn json_fixture(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// The real X DM-with-media delivery, its media address pointed at `url`.
fn x_dm_with_media(url: &str) -> Vec<u8> {
    let mut delivery = json_fixture(
        "twitter/account_activity/courier_twitter_handler_dm_and_crc_vector.json",
    )["dm_event_with_media_attachment_trimmed"]
        .clone();
    delivery["direct_message_events"][0]["message_create"]["message_data"]["attachment"]["media"]
        ["media_url_https"] = Value::String(url.to_string());
    serde_json::to_vec(&delivery).unwrap()
}

/// The real Messenger attachment delivery, its `payload.url` pointed at `url`.
fn messenger_image(url: &str, mid: &str) -> Vec<u8> {
    let mut delivery = json_fixture("facebook/webhooks/courier_handwritten/attachment.json");
    let message = &mut delivery["entry"][0]["messaging"][0]["message"];
    message["attachments"][0]["payload"]["url"] = Value::String(url.to_string());
    message["mid"] = Value::String(mid.to_string());
    serde_json::to_vec(&delivery).unwrap()
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// A host serving webhooks and the REST API on one loopback listener; its base URL.
struct Served {
    host: Host,
    base: String,
    client: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start(builder: HostBuilder) -> Served {
        let host = builder.build().await.unwrap();
        let tokens = ApiTokens::new()
            .with("default", &Secret::new(TOKEN))
            .unwrap();
        let router = public_router(host.clone(), tokens);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Served {
            host,
            base,
            client: reqwest::Client::new(),
            _server: server,
        }
    }

    async fn deliver(&self, channel: &str, headers: Vec<(String, String)>, body: Vec<u8>) {
        let mut request = self
            .client
            .post(format!("{}/webhooks/{channel}", self.base))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// The only message's attachments as the CRM reads them.
    async fn attachments(&self) -> Vec<Value> {
        let list: Value = json(self.get("/api/v1/messages").await).await;
        let [message] = list["messages"].as_array().unwrap().as_slice() else {
            panic!("{list}")
        };
        message["attachments"].as_array().unwrap().clone()
    }

    /// Waits until the only message's first file is no longer `fetching`; returns it.
    async fn settled_file(&self) -> Value {
        eventually("the file is settled", async || {
            self.attachments().await[0]["file"]["state"] != "fetching"
        })
        .await;
        self.attachments().await[0]["file"].clone()
    }
}

fn twitter_spec(x: &XApi) -> ConnectorSpec {
    x.add_user(X_ACCOUNT, "resistbot", "Resistbot", "token-resistbot");
    x.add_user(X_CUSTOMER, "nicpottier", "Nicolas Pottier", "token-nic");
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts: vec![AccountConfig {
                id: X_ACCOUNT.to_string(),
                handle: Some("resistbot".to_string()),
                credential: Some("resistbot".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_host(x.authority())
        .credential(
            "resistbot",
            Credential::Bearer(Secret::new("token-resistbot")),
        )
        .secret("consumer_secret", Secret::new(CONSUMER_SECRET));
    spec
}

fn facebook_spec(graph: &GraphApi) -> ConnectorSpec {
    graph.add_page(PAGE, "page-token");
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token"),
        },
    );
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: PAGE.to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_host(graph.authority())
        .credentials(credentials)
        .secret("app_secret", Secret::new(APP_SECRET))
        .secret("verify_token", Secret::new("verify-me"));
    spec
}

#[tokio::test]
async fn a_customers_dm_image_on_x_reaches_the_crm_as_a_stored_file_fetched_with_the_accounts_token()
 {
    let x = XApi::start().await.unwrap();
    let served = Served::start(Host::builder().connector(twitter_spec(&x))).await;
    let image = fixture("media/modem_lights.png");
    let url = x.add_dm_media(
        "958501034212564996",
        [X_ACCOUNT, X_CUSTOMER],
        "modem.png",
        &image,
        "image/png",
    );
    let body = x_dm_with_media(&url);
    served
        .deliver(
            "twitter",
            twitter_delivery_headers(CONSUMER_SECRET, &body),
            body,
        )
        .await;

    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored", "{file}");
    assert_eq!(file["mime_type"], "image/png");
    assert_eq!(file["size"], image.len());
    // The platform's address stays beside the file, as the platform gave it.
    assert_eq!(served.attachments().await[0]["url"], url.as_str());
    // X served it once, to the account's own token (attached by the host).
    assert_eq!(x.media_served(&url), 1);
    let fetch = x
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/1.1/ton/"))
        .unwrap();
    assert_eq!(
        fetch.header("authorization"),
        Some("Bearer token-resistbot")
    );

    // The DM is deleted on X: the CRM's address still serves the file.
    x.remove_dm_media(&url);
    let href = file["href"].as_str().unwrap();
    let response = served.get(href).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), image.as_slice());
    // Only with the tenant's token.
    let anonymous = served
        .client
        .get(format!("{}{href}", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let unknown = served.get("/api/v1/media/0190aaaa").await;
    assert_eq!(unknown.status(), 404);
    let body: Value = json(unknown).await;
    assert_eq!(body["error"]["code"], "media_not_found");
}

#[tokio::test]
async fn a_customers_messenger_image_is_kept_before_its_address_expires_and_served_after() {
    let graph = GraphApi::start().await.unwrap();
    let served = Served::start(Host::builder().connector(facebook_spec(&graph))).await;
    let image = fixture("media/router_back.png");
    let url = graph.add_attachment("router.png", &image, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&url, "m_media_1");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;

    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored", "{file}");
    assert_eq!(graph.attachment_served(&url), 1);
    // A signed address carries its own authorisation: the page token is not added to it.
    let fetch = graph
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/cdn/"))
        .unwrap();
    assert_eq!(fetch.query_param("access_token"), None);

    // The address expires: the platform refuses it, the CRM's address still serves.
    graph.expire_attachments();
    let direct = reqwest::get(&url).await.unwrap();
    assert_eq!(direct.status(), 403);
    let response = served.get(file["href"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), image.as_slice());
}

#[tokio::test]
async fn an_expired_address_fails_the_file_with_the_platforms_answer_and_the_message_stays() {
    let graph = GraphApi::start().await.unwrap();
    let served = Served::start(Host::builder().connector(facebook_spec(&graph))).await;
    let url = graph.add_attachment(
        "late.png",
        &fixture("media/router_back.png"),
        "image/png",
        Duration::from_secs(3600),
    );
    graph.expire_attachments();
    let body = messenger_image(&url, "m_media_late");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;

    let file = served.settled_file().await;
    assert_eq!(file["state"], "failed");
    assert_eq!(file["error"], "the platform answered 403", "{file}");
    let response = served.get(file["href"].as_str().unwrap()).await;
    assert_eq!(response.status(), 409);
    let body: Value = json(response).await;
    assert_eq!(body["error"]["code"], "media_not_stored");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was not stored: the platform answered 403"),
        "{body}"
    );
    assert_eq!(
        served.host.store().message_count("default").await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_platform_outage_delays_the_file_not_the_message_and_the_file_comes_after_backoff() {
    let x = XApi::start().await.unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let served = Served::start(
        Host::builder()
            .connector(twitter_spec(&x))
            .clock(clock.clone()),
    )
    .await;
    let image = fixture("media/modem_lights.png");
    let url = x.add_dm_media(
        "958501034212564996",
        [X_ACCOUNT, X_CUSTOMER],
        "modem.png",
        &image,
        "image/png",
    );
    // X's media host is down for a while (each fetch tries 3 times: the HTTP retries).
    x.inject("/1.1/ton/", Fault::ServerError(503), 3);
    let body = x_dm_with_media(&url);
    served
        .deliver(
            "twitter",
            twitter_delivery_headers(CONSUMER_SECRET, &body),
            body,
        )
        .await;
    // The message is stored and told to the CRM at once, its file still on its way.
    assert_eq!(
        served.host.store().message_count("default").await.unwrap(),
        1
    );
    eventually("the first try failed", async || {
        served.attachments().await[0]["file"]["attempts"] == 1
            || served.attachments().await[0]["file"]["error"].is_string()
    })
    .await;
    let file = &served.attachments().await[0]["file"];
    assert_eq!(file["state"], "fetching", "{file}");
    assert!(file["error"].as_str().unwrap().contains("503"), "{file}");
    // Past the backoff (2 s for the first retry), the next try stores it.
    clock.advance(Duration::from_secs(3));
    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored", "{file}");
}

#[tokio::test]
async fn files_over_the_per_file_cap_or_the_tenants_quota_are_failed_saying_which() {
    let graph = GraphApi::start().await.unwrap();
    let small = fixture("media/modem_lights.png");
    let large = fixture("media/router_back.png");
    assert!(small.len() < large.len());
    // A file may be as large as the larger fixture; the tenant holds the smaller one only.
    let limits = MediaLimits::new(large.len() as u64, small.len() as u64);
    let served = Served::start(
        Host::builder()
            .connector(facebook_spec(&graph))
            .media_limits(limits),
    )
    .await;
    let first = graph.add_attachment("a.png", &small, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&first, "m_quota_1");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    assert_eq!(served.settled_file().await["state"], "stored");

    let second = graph.add_attachment("b.png", &large, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&second, "m_quota_2");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    let files = || async {
        let list: Value = json(served.get("/api/v1/messages").await).await;
        list["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["attachments"][0]["file"].clone())
            .collect::<Vec<_>>()
    };
    eventually("the second file is settled", async || {
        files().await.iter().all(|f| f["state"] != "fetching")
    })
    .await;
    let failed: Vec<Value> = files()
        .await
        .into_iter()
        .filter(|f| f["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    let why = failed[0]["error"].as_str().unwrap();
    assert!(why.contains("media quota"), "{why}");
    assert!(why.contains("media_max_tenant_mib"), "{why}");

    // A host whose per-file cap is below the file refuses it by size.
    let graph = GraphApi::start().await.unwrap();
    let served = Served::start(
        Host::builder()
            .connector(facebook_spec(&graph))
            .media_limits(MediaLimits::new(16, 1 << 20)),
    )
    .await;
    let url = graph.add_attachment("c.png", &small, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&url, "m_cap");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    let file = served.settled_file().await;
    assert_eq!(file["state"], "failed");
    assert_eq!(
        file["error"], "the file is larger than the cap of 16 bytes",
        "{file}"
    );
}

#[tokio::test]
async fn an_erased_customers_files_leave_the_store() {
    let graph = GraphApi::start().await.unwrap();
    let served = Served::start(Host::builder().connector(facebook_spec(&graph))).await;
    let url = graph.add_attachment(
        "d.png",
        &fixture("media/modem_lights.png"),
        "image/png",
        Duration::from_secs(3600),
    );
    let body = messenger_image(&url, "m_erase");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored");
    let href = file["href"].as_str().unwrap().to_string();
    assert_eq!(served.get(&href).await.status(), 200);

    let customer = served
        .host
        .customer_by_identity("default", "facebook", "5678")
        .await
        .unwrap();
    served
        .host
        .erase_customer("default", &customer.id)
        .await
        .unwrap();
    assert_eq!(served.get(&href).await.status(), 404);
}
