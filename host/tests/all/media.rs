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
        served.attachments().await[0]["file"]["error"].is_string()
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

// ---- outbound: an operator's reply with images ----

/// A served twitter host with one stored DM conversation (the fixture's, without media);
/// its conversation id.
async fn x_conversation(builder: HostBuilder, x: &XApi) -> (Served, String) {
    let served = Served::start(builder.connector(twitter_spec(x))).await;
    let mut delivery = json_fixture(
        "twitter/account_activity/courier_twitter_handler_dm_and_crc_vector.json",
    )["dm_event_html_escaped_text"]
        .clone();
    delivery["direct_message_events"][0]["message_create"]["target"]["recipient_id"] =
        Value::String(X_ACCOUNT.to_string());
    let body = serde_json::to_vec(&delivery).unwrap();
    served
        .deliver(
            "twitter",
            twitter_delivery_headers(CONSUMER_SECRET, &body),
            body,
        )
        .await;
    let conversations = served.host.store().conversations("default").await.unwrap();
    let id = conversations[0].id.clone();
    (served, id)
}

fn image_json(mime: &str, name: &str, bytes: &[u8]) -> Value {
    use base64::Engine as _;
    serde_json::json!({
        "mime_type": mime,
        "file_name": name,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

impl Served {
    async fn reply(&self, conversation: &str, key: &str, images: Vec<Value>) -> (u16, Value) {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/conversations/{conversation}/replies",
                self.base
            ))
            .bearer_auth(TOKEN)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&serde_json::json!({
                    "operator": "marco",
                    "text": "Ecco lo schema dei collegamenti",
                    "images": images,
                }))
                .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, json(response).await)
    }
}

#[tokio::test]
async fn an_operators_dm_reply_with_an_image_reaches_x_through_its_media_upload() {
    let x = XApi::start().await.unwrap();
    let (served, conversation) = x_conversation(Host::builder(), &x).await;
    let image = fixture("media/router_back.png");
    let (status, reply) = served
        .reply(
            &conversation,
            "reply-with-image",
            vec![image_json("image/png", "schema.png", &image)],
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["id"].as_str().unwrap().to_string();
    // Kept with the reply in the outbox, as sent.
    let kept = served
        .host
        .media_of("default", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].size, image.len() as u64);
    assert_eq!(kept[0].mime_type.as_deref(), Some("image/png"));

    eventually("the reply is settled", async || {
        let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
        view["status"] != "pending" && view["status"] != "sending"
    })
    .await;
    let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
    assert_eq!(view["status"], "sent", "{view}");
    // X's flow: the image uploaded by the account for a DM, then the DM naming it.
    let [upload] = x.uploads().try_into().unwrap();
    assert_eq!(upload.bytes, image);
    assert_eq!(upload.category, "dm_image");
    assert_eq!(upload.owner, X_ACCOUNT);
    let dm = x
        .dms()
        .into_iter()
        .find(|d| d.sender_id == X_ACCOUNT)
        .unwrap();
    assert_eq!(dm.recipient_id, X_CUSTOMER);
    assert_eq!(dm.text, "Ecco lo schema dei collegamenti");
    assert_eq!(dm.media_ids, vec![upload.id.clone()]);
    assert_eq!(view["external_id"], dm.id.as_str());
    let request = x
        .requests()
        .into_iter()
        .find(|r| r.path == "/2/media/upload")
        .unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Bearer token-resistbot")
    );
}

#[tokio::test]
async fn an_operators_messenger_reply_with_an_image_goes_as_an_uploaded_attachment_then_the_text() {
    let graph = GraphApi::start().await.unwrap();
    let served = Served::start(Host::builder().connector(facebook_spec(&graph))).await;
    let body = serde_json::to_vec(&centralino_emulators::webhooks::messenger_text(
        PAGE,
        "5678",
        "m_text_1",
        "il router lampeggia",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    ))
    .unwrap();
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    graph.customer_wrote(PAGE, "5678");
    let conversation = served.host.store().conversations("default").await.unwrap()[0]
        .id
        .clone();
    let image = fixture("media/modem_lights.png");
    let (status, reply) = served
        .reply(
            &conversation,
            "messenger-image",
            vec![image_json("image/png", "modem.png", &image)],
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["id"].as_str().unwrap().to_string();
    eventually("the reply is settled", async || {
        let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
        view["status"] != "pending" && view["status"] != "sending"
    })
    .await;
    let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
    assert_eq!(view["status"], "sent", "{view}");
    // The Attachment Upload API got the image, with the page's token...
    let [upload] = graph.uploads().try_into().unwrap();
    assert_eq!(upload.bytes, image);
    assert_eq!(upload.category, "image");
    assert_eq!(upload.owner, PAGE);
    // ...and the customer got it by its id, then the text (whose id is the reply's).
    let delivered = graph.delivered();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(
        delivered[0].attachment_id.as_deref(),
        Some(upload.id.as_str())
    );
    assert_eq!(delivered[0].recipient, "5678");
    assert_eq!(delivered[1].text, "Ecco lo schema dei collegamenti");
    assert_eq!(delivered[1].attachment_id, None);
    assert_eq!(view["external_id"], delivered[1].id.as_str());
}

#[tokio::test]
async fn a_reply_with_an_image_to_a_connector_that_sends_no_files_fails_saying_so() {
    let spec = ConnectorSpec::new(
        "echo",
        component("echo-channel"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: "support".to_string(),
                handle: Some("support".to_string()),
                credential: None,
                settings: Vec::new(),
            }],
        },
    );
    let served = Served::start(Host::builder().connector(spec)).await;
    served
        .deliver("echo", Vec::new(), b"mario: il modem non va".to_vec())
        .await;
    let conversation = served.host.store().conversations("default").await.unwrap()[0]
        .id
        .clone();
    let (status, reply) = served
        .reply(
            &conversation,
            "echo-image",
            vec![image_json(
                "image/png",
                "schema.png",
                &fixture("media/router_back.png"),
            )],
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["id"].as_str().unwrap().to_string();
    eventually("the reply is settled", async || {
        let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
        view["status"] != "pending" && view["status"] != "sending"
    })
    .await;
    let view = json(served.get(&format!("/api/v1/replies/{id}")).await).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains("does not send attachments"),
        "{view}"
    );
}

#[tokio::test]
async fn reply_images_are_checked_before_anything_is_queued_and_each_refusal_says_why() {
    let x = XApi::start().await.unwrap();
    let image = fixture("media/router_back.png");
    let (served, conversation) = x_conversation(
        Host::builder().media_limits(MediaLimits::new(image.len() as u64, 1 << 20)),
        &x,
    )
    .await;
    let png = |name: &str| image_json("image/png", name, &image);
    let mut oversized = image.clone();
    oversized.push(0);
    let cases = [
        (
            vec![
                serde_json::json!({ "mime_type": "image/png", "file_name": "a.png", "data": "not base64!" }),
            ],
            "`images[0].data` is not base64",
        ),
        (
            vec![image_json("text/html", "page.html", b"<script>")],
            "type `text/html` is not one a reply carries",
        ),
        (
            vec![image_json("image/jpeg", "photo.jpg", &image)],
            "says it is `image/jpeg`, but its bytes are not",
        ),
        (
            vec![image_json("image/png", "big.png", &oversized)],
            "more than the host's limit",
        ),
        (
            vec![image_json("image/png", "../../etc/passwd", &image)],
            "has no path",
        ),
        (
            vec![
                png("1.png"),
                png("2.png"),
                png("3.png"),
                png("4.png"),
                png("5.png"),
            ],
            "at most 4 images, not 5",
        ),
    ];
    for (index, (images, why)) in cases.into_iter().enumerate() {
        let (status, body) = served
            .reply(&conversation, &format!("bad-{index}"), images)
            .await;
        assert_eq!(status, 422, "{why}: {body}");
        assert_eq!(body["error"]["code"], "invalid_image", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {message}");
        // Nothing was queued.
        let queued = served
            .host
            .store()
            .outbox_by_key("default", &format!("api:bad-{index}"))
            .await
            .unwrap();
        assert!(queued.is_none(), "{why}");
    }
}

// ---- the emulators' upload flows, as the platforms check them ----

/// A form field: name, file name, content type, bytes.
type FormPart<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body of `(name, file name, content type, bytes)` parts; its
/// content type.
fn form(parts: &[FormPart<'_>]) -> (String, Vec<u8>) {
    let boundary = "centralino-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = file
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n").as_bytes(),
        );
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_as(
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

#[tokio::test]
async fn the_x_emulator_takes_dm_images_only_uploaded_by_the_sender_for_dms() {
    let x = XApi::start().await.unwrap();
    let _spec = twitter_spec(&x);
    let image = fixture("media/router_back.png");
    let upload = format!("{}/2/media/upload", x.base_url());
    let (content_type, body) = form(&[
        ("media", Some("schema.png"), Some("image/png"), &image),
        ("media_category", None, None, b"dm_image"),
    ]);
    // Without a user's token, nothing.
    let (status, _) = post_as(&upload, None, &content_type, body.clone()).await;
    assert_eq!(status, 401);
    let (status, uploaded) = post_as(&upload, Some("token-resistbot"), &content_type, body).await;
    assert_eq!(status, 200, "{uploaded}");
    let media_id = uploaded["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(x.uploads()[0].bytes, image);

    let dm = |sender: &'static str, media_id: String| {
        let url = format!(
            "{}/2/dm_conversations/with/{}/messages",
            x.base_url(),
            if sender == "token-resistbot" {
                X_CUSTOMER
            } else {
                X_ACCOUNT
            }
        );
        async move {
            post_as(
                &url,
                Some(sender),
                "application/json",
                serde_json::to_vec(&serde_json::json!({
                    "text": "Ecco lo schema",
                    "attachments": [{ "media_id": media_id }],
                }))
                .unwrap(),
            )
            .await
        }
    };
    // Another user cannot send it.
    let (status, refused) = dm("token-nic", media_id.clone()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("not uploaded by the authenticated user")
    );
    let (status, sent) = dm("token-resistbot", media_id.clone()).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(x.dms().last().unwrap().media_ids, vec![media_id.clone()]);
    // A DM's media is not a post's.
    let (status, refused) = post_as(
        &format!("{}/2/tweets", x.base_url()),
        Some("token-resistbot"),
        "application/json",
        serde_json::to_vec(&serde_json::json!({
            "text": "Lo schema",
            "media": { "media_ids": [media_id] },
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("dm_image"),
        "{refused}"
    );
    // What is not an image is refused at upload.
    let (content_type, body) = form(&[
        ("media", Some("notes.txt"), Some("image/png"), b"just text"),
        ("media_category", None, None, b"dm_image"),
    ]);
    let (status, refused) = post_as(&upload, Some("token-resistbot"), &content_type, body).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("media type unrecognized")
    );
}

#[tokio::test]
async fn the_graph_emulator_sends_an_uploaded_attachment_of_the_page_by_its_id_without_text() {
    let graph = GraphApi::start().await.unwrap();
    let _spec = facebook_spec(&graph);
    graph.add_page("5002", "other-page-token");
    graph.customer_wrote(PAGE, "5678");
    let image = fixture("media/router_back.png");
    let upload = |token: &str| {
        format!(
            "{}/v21.0/me/message_attachments?access_token={token}",
            graph.base_url()
        )
    };
    let message = br#"{"attachment":{"type":"image","payload":{"is_reusable":true}}}"#;
    let (content_type, body) = form(&[
        ("message", None, None, message),
        ("filedata", Some("schema.png"), Some("image/png"), &image),
    ]);
    let (status, uploaded) = post_as(&upload("page-token"), None, &content_type, body).await;
    assert_eq!(status, 200, "{uploaded}");
    let attachment_id = uploaded["attachment_id"].as_str().unwrap().to_string();
    assert_eq!(graph.uploads()[0].bytes, image);

    let send = |token: &str, message: Value| {
        let url = format!(
            "{}/v21.0/me/messages?access_token={token}",
            graph.base_url()
        );
        async move {
            post_as(
                &url,
                None,
                "application/json",
                serde_json::to_vec(&serde_json::json!({
                    "recipient": { "id": "5678" },
                    "messaging_type": "RESPONSE",
                    "message": message,
                }))
                .unwrap(),
            )
            .await
        }
    };
    let attachment =
        serde_json::json!({ "type": "image", "payload": { "attachment_id": attachment_id } });
    // Text and attachment in one message: refused, as the Send API does.
    let (status, refused) = send(
        "page-token",
        serde_json::json!({ "text": "Ecco", "attachment": attachment }),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    // Another page cannot send this page's upload.
    graph.customer_wrote("5002", "5678");
    let (status, refused) = send(
        "other-page-token",
        serde_json::json!({ "attachment": attachment }),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, sent) = send(
        "page-token",
        serde_json::json!({ "attachment": attachment }),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let delivered = graph.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].attachment_id.as_deref(),
        Some(attachment_id.as_str())
    );
    // A file that is not the image it says is refused at upload.
    let (content_type, body) = form(&[
        ("message", None, None, message),
        ("filedata", Some("x.png"), Some("image/png"), b"plain text"),
    ]);
    let (status, refused) = post_as(&upload("page-token"), None, &content_type, body).await;
    assert_eq!(status, 400, "{refused}");
}

#[tokio::test]
async fn files_are_kept_served_quota_checked_and_erased_on_postgres_too() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!("SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL");
        return;
    };
    let store = crate::store::fresh_postgres_database(&base).await;
    let graph = GraphApi::start().await.unwrap();
    let image = fixture("media/router_back.png");
    // Room for one copy of the image in the tenant's quota, not two.
    let limits = MediaLimits::new(1 << 20, image.len() as u64 + 10);
    let served = Served::start(
        Host::builder()
            .store(store)
            .connector(facebook_spec(&graph))
            .media_limits(limits),
    )
    .await;
    let url = graph.add_attachment("pg.png", &image, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&url, "m_pg_1");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored", "{file}");
    let href = file["href"].as_str().unwrap().to_string();
    let response = served.get(&href).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), image.as_slice());

    // A second copy would pass the quota.
    let again = graph.add_attachment("pg2.png", &image, "image/png", Duration::from_secs(3600));
    let body = messenger_image(&again, "m_pg_2");
    served
        .deliver(
            "facebook",
            facebook_delivery_headers(APP_SECRET, &body),
            body,
        )
        .await;
    eventually("the second file is settled", async || {
        let list = json(served.get("/api/v1/messages").await).await;
        list["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["attachments"][0]["file"]["state"] != "fetching")
    })
    .await;
    let list = json(served.get("/api/v1/messages").await).await;
    let states: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["attachments"][0]["file"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "failed").count(),
        1,
        "{list}"
    );

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

#[tokio::test]
async fn a_messages_files_go_with_its_content_when_the_tenants_retention_passes() {
    let graph = GraphApi::start().await.unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let day = Duration::from_secs(24 * 3600);
    let served = Served::start(
        Host::builder()
            .connector(facebook_spec(&graph))
            .clock(clock.clone())
            .content_retention(
                "default",
                centralino::store::ContentRetention::forever().messages(day),
            ),
    )
    .await;
    let url = graph.add_attachment(
        "kept-a-day.png",
        &fixture("media/modem_lights.png"),
        "image/png",
        Duration::from_secs(3600),
    );
    let body = messenger_image(&url, "m_retention");
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

    // Within the day, retention keeps it.
    served.host.run_retention().await.unwrap();
    assert_eq!(served.get(&href).await.status(), 200);
    // Past it, the message's content goes, and its file with it.
    clock.advance(day + Duration::from_secs(1));
    served.host.run_retention().await.unwrap();
    assert_eq!(served.get(&href).await.status(), 404);
    let message_id = json(served.get("/api/v1/messages").await).await["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        served
            .host
            .media_of("default", &[message_id])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_disabled_connectors_files_wait_untried_and_come_once_it_is_enabled() {
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
    // The first try fails (X's media host answers 503 to it and its HTTP retries).
    x.inject("/1.1/ton/", Fault::ServerError(503), 3);
    let body = x_dm_with_media(&url);
    served
        .deliver(
            "twitter",
            twitter_delivery_headers(CONSUMER_SECRET, &body),
            body,
        )
        .await;
    eventually("the first try failed", async || {
        served.attachments().await[0]["file"]["error"].is_string()
    })
    .await;
    served
        .host
        .set_connector_enabled("default", "twitter", false)
        .await
        .unwrap();
    // Due again, but the connector is disabled: the file waits, and X sees nothing.
    let before = x.requests().len();
    clock.advance(Duration::from_secs(3));
    eventually("the fetcher saw the disabled connector", async || {
        served.attachments().await[0]["file"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled"))
    })
    .await;
    assert_eq!(x.requests().len(), before);
    assert_eq!(served.attachments().await[0]["file"]["state"], "fetching");

    served
        .host
        .set_connector_enabled("default", "twitter", true)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let file = served.settled_file().await;
    assert_eq!(file["state"], "stored", "{file}");
    // The wait was not a try: one failed, one stored.
    let kept = served
        .host
        .media("default", file["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.record.attempts, 2);
}
