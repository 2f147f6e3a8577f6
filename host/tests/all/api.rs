//! The REST API for CRMs, over real HTTP on loopback, against two tenants on one host with
//! the same channel, the same account name and the same operators: each token sees its
//! own tenant and nothing of the other; every bad request gets the right 4xx with a JSON
//! error; every response is checked against the OpenAPI document, which is the one
//! checked in at `docs/openapi.json`.

use std::net::SocketAddr;
use std::path::PathBuf;

use centralino::Host;
use centralino::api::AdminApi;
use centralino::api::{self, ApiTokens};
use centralino::capabilities::Secret;
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::component;
use crate::routing::chain;
use crate::support::eventually;
use crate::support::serve_rest;

pub const ACME: &str = "token-acme";
pub const GLOBEX: &str = "token-globex";
pub const ADMIN: &str = "token-admin";

/// A host serving tenants `acme` and `globex`, each with an `echo` connector whose one
/// account is `support`, and operators `marco` and `giulia` (capacity 1); its public
/// listener (ingress and REST API) and its admin API, on loopback.
pub struct Sidecar {
    pub host: Host,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub spec: OpenApi,
    client: reqwest::Client,
    servers: Vec<JoinHandle<()>>,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// One answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code of a refusal.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl Sidecar {
    pub async fn start() -> Sidecar {
        let mut builder = Host::builder();
        for tenant in ["acme", "globex"] {
            let config = ConnectorConfig {
                settings: Vec::new(),
                accounts: vec![AccountConfig {
                    id: "support".to_string(),
                    handle: Some("support".to_string()),
                    credential: None,
                    settings: Vec::new(),
                }],
            };
            let mut spec =
                ConnectorSpec::new("echo", component("echo-channel"), config).tenant(tenant);
            // Waiting customers are told the estimate (the brand turns answers on).
            spec.brands
                .insert("support".to_string(), "support".to_string());
            let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
            for id in ["marco", "giulia"] {
                engine
                    .add_operator(Operator::new(id, 1), Presence::Online)
                    .await;
            }
            builder = builder
                .connector(spec)
                .tenant_routing(tenant, engine)
                .tenant_brand(tenant, crate::answers::brand("support"));
        }
        let host = builder.build().await.unwrap();
        let tokens = ApiTokens::new()
            .with("acme", &Secret::new(ACME))
            .and_then(|t| t.with("globex", &Secret::new(GLOBEX)))
            .unwrap();

        let (public, public_server) = serve_rest(&host, tokens).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = listener.local_addr().unwrap();
        let admin_api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN)));
        let admin_server = tokio::spawn(async move {
            admin_api.serve(listener).await.unwrap();
        });
        Sidecar {
            host,
            public,
            admin,
            spec: OpenApi::load(),
            client: reqwest::Client::new(),
            servers: vec![public_server, admin_server],
        }
    }

    /// Delivers an echo webhook (`author: text`) to a tenant's connector.
    pub async fn deliver(&self, tenant: &str, body: &str) -> u16 {
        self.client
            .post(format!(
                "http://{}/tenants/{tenant}/webhooks/echo",
                self.public
            ))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Sends a request to `address` and reads the answer.
    pub async fn raw(
        &self,
        address: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("http://{address}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    /// A REST API call with `token`, its answer checked against the OpenAPI document
    /// (`template` is the documented path).
    pub async fn api(
        &self,
        token: Option<&str>,
        method: &str,
        template: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        if body.is_some() && !extra.iter().any(|(n, _)| *n == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        let answer = self.raw(self.public, method, path, &headers, body).await;
        self.spec.check(
            template,
            &method.to_lowercase(),
            answer.status,
            &answer.body,
        );
        answer
    }

    pub async fn get(&self, token: &str, template: &str, path: &str) -> Answer {
        self.api(Some(token), "GET", template, path, &[], None)
            .await
    }

    pub async fn post(&self, token: &str, template: &str, path: &str, body: Value) -> Answer {
        self.api(
            Some(token),
            "POST",
            template,
            path,
            &[],
            Some(&body.to_string()),
        )
        .await
    }

    pub async fn reply(
        &self,
        token: &str,
        id: &str,
        key: &str,
        operator: &str,
        text: &str,
    ) -> Answer {
        let body = json!({ "operator": operator, "text": text }).to_string();
        self.api(
            Some(token),
            "POST",
            "/api/v1/conversations/{id}/replies",
            &format!("/api/v1/conversations/{id}/replies"),
            &[("idempotency-key", key)],
            Some(&body),
        )
        .await
    }

    /// The tenant's only conversation.
    pub async fn only_conversation(&self, token: &str) -> Value {
        let list = self
            .get(token, "/api/v1/conversations", "/api/v1/conversations")
            .await;
        assert_eq!(list.status, 200, "{}", list.text);
        let conversations = list.body["conversations"].as_array().unwrap();
        assert_eq!(conversations.len(), 1, "{}", list.text);
        conversations[0].clone()
    }
}

#[tokio::test]
async fn two_tenants_with_the_same_channel_and_account_names_see_only_their_own() {
    let sidecar = Sidecar::start().await;
    // The same customer writes the same words to the same account name of both tenants,
    // and acme's delivery comes twice (webhooks are at least once).
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    assert_eq!(
        sidecar.deliver("globex", "mario: il modem non va").await,
        200
    );

    let acme = sidecar.only_conversation(ACME).await;
    let globex = sidecar.only_conversation(GLOBEX).await;
    for conversation in [&acme, &globex] {
        assert_eq!(conversation["channel"], "echo");
        assert_eq!(conversation["account"], "support");
        assert_eq!(conversation["customer"]["id"], "mario");
        assert_eq!(conversation["status"], "assigned");
    }
    let (acme_id, globex_id) = (
        acme["id"].as_str().unwrap().to_string(),
        globex["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(acme_id, globex_id);

    // Another tenant's conversation does not exist for this token, whatever the route.
    let one = "/api/v1/conversations/{id}";
    let path = format!("/api/v1/conversations/{globex_id}");
    let answer = sidecar.get(ACME, one, &path).await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "conversation_not_found")
    );
    let messages = sidecar
        .get(
            ACME,
            "/api/v1/conversations/{id}/messages",
            &format!("{path}/messages"),
        )
        .await;
    assert_eq!(messages.status, 404);
    let operator = globex["assignee"].as_str().unwrap().to_string();
    let answer = sidecar
        .reply(ACME, &globex_id, "cross-1", &operator, "ciao da acme")
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "conversation_not_found")
    );
    let answer = sidecar
        .post(
            ACME,
            "/api/v1/conversations/{id}/resolve",
            &format!("{path}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 404);
    let answer = sidecar
        .post(
            ACME,
            "/api/v1/conversations/{id}/transfer",
            &format!("{path}/transfer"),
            json!({ "to": "giulia" }),
        )
        .await;
    assert_eq!(answer.status, 404);
    let untouched = sidecar.get(GLOBEX, one, &path).await;
    assert_eq!(untouched.body, globex, "globex's conversation is as it was");

    // Each tenant's messages are its own: one inbound message each (the duplicate changed
    // nothing), and acme's reply shows in acme's conversation only.
    let assignee = acme["assignee"].as_str().unwrap().to_string();
    let queued = sidecar
        .reply(
            ACME,
            &acme_id,
            "acme-1",
            &assignee,
            "ciao mario, ti aiuto io",
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let reply_id = queued.body["id"].as_str().unwrap().to_string();
    let reply_path = format!("/api/v1/replies/{reply_id}");
    eventually("acme's reply to be sent", async || {
        let reply = sidecar.get(ACME, "/api/v1/replies/{id}", &reply_path).await;
        reply.body["status"] == "sent"
    })
    .await;
    let answer = sidecar
        .get(GLOBEX, "/api/v1/replies/{id}", &reply_path)
        .await;
    assert_eq!((answer.status, answer.code()), (404, "reply_not_found"));
    let directions = |answer: &Answer| -> Vec<String> {
        answer.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["direction"].as_str().unwrap().to_string())
            .collect()
    };
    let template = "/api/v1/conversations/{id}/messages";
    let acme_messages = sidecar
        .get(
            ACME,
            template,
            &format!("/api/v1/conversations/{acme_id}/messages"),
        )
        .await;
    assert_eq!(directions(&acme_messages), ["inbound", "outbound"]);
    let globex_messages = sidecar
        .get(
            GLOBEX,
            template,
            &format!("/api/v1/conversations/{globex_id}/messages"),
        )
        .await;
    assert_eq!(directions(&globex_messages), ["inbound"]);

    // Both have a `marco`; acme's going away leaves globex's online.
    let away = sidecar
        .api(
            Some(ACME),
            "PUT",
            "/api/v1/operators/{id}/presence",
            "/api/v1/operators/marco/presence",
            &[],
            Some(r#"{"presence": "away"}"#),
        )
        .await;
    assert_eq!(away.status, 200, "{}", away.text);
    assert_eq!(away.body["presence"], "away");
    let presence = |answer: &Answer, id: &str| {
        answer.body["operators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()["presence"]
            .clone()
    };
    let acme_operators = sidecar
        .get(ACME, "/api/v1/operators", "/api/v1/operators")
        .await;
    let globex_operators = sidecar
        .get(GLOBEX, "/api/v1/operators", "/api/v1/operators")
        .await;
    assert_eq!(presence(&acme_operators, "marco"), "away");
    assert_eq!(presence(&globex_operators, "marco"), "online");

    // Metrics carry the tenant: one message each, a reply for acme only.
    let metrics = sidecar.host.metrics_text().await;
    for tenant in ["acme", "globex"] {
        let line = format!(
            "centralino_messages_received_total{{tenant=\"{tenant}\",connector=\"echo\",account=\"support\"}} 1\n"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains(
        "centralino_replies_sent_total{tenant=\"acme\",connector=\"echo\",account=\"support\",sender=\"operator\"} 1\n"
    ));
    assert!(!metrics.contains("centralino_replies_sent_total{tenant=\"globex\""));
}

#[tokio::test]
async fn bad_input_gets_the_right_4xx_with_a_json_error() {
    let sidecar = Sidecar::start().await;
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    assert_eq!(sidecar.deliver("acme", "lucia: fibra lenta").await, 200);
    let list = sidecar
        .get(
            ACME,
            "/api/v1/conversations",
            "/api/v1/conversations?status=assigned",
        )
        .await;
    let conversations = list.body["conversations"].as_array().unwrap().clone();
    assert_eq!(conversations.len(), 2, "{}", list.text);
    let first = &conversations[0];
    let id = first["id"].as_str().unwrap().to_string();
    let assignee = first["assignee"].as_str().unwrap().to_string();
    let other = if assignee == "marco" {
        "giulia"
    } else {
        "marco"
    };
    let replies = format!("/api/v1/conversations/{id}/replies");
    let reply = |operator: &str| json!({ "operator": operator, "text": "ciao" }).to_string();
    let key = [("idempotency-key", "k-1")];
    let big = json!({ "operator": assignee, "text": "x".repeat(100_000) }).to_string();

    struct Case<'a> {
        what: &'a str,
        token: Option<&'a str>,
        method: &'a str,
        template: &'a str,
        path: String,
        headers: Vec<(&'a str, &'a str)>,
        body: Option<String>,
        status: u16,
        code: &'a str,
    }
    let replies_template = "/api/v1/conversations/{id}/replies";
    let cases = vec![
        Case {
            what: "no token",
            token: None,
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations".into(),
            headers: vec![],
            body: None,
            status: 401,
            code: "unauthorized",
        },
        Case {
            what: "a wrong token",
            token: Some("token-acm"),
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations".into(),
            headers: vec![],
            body: None,
            status: 401,
            code: "unauthorized",
        },
        Case {
            what: "the admin token",
            token: Some(ADMIN),
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations".into(),
            headers: vec![],
            body: None,
            status: 401,
            code: "unauthorized",
        },
        Case {
            what: "no token and malformed JSON: authentication comes first",
            token: None,
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some("{\"operator\": ".into()),
            status: 401,
            code: "unauthorized",
        },
        Case {
            what: "an unknown conversation",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/conversations/{id}",
            path: "/api/v1/conversations/no-such-id".into(),
            headers: vec![],
            body: None,
            status: 404,
            code: "conversation_not_found",
        },
        Case {
            what: "a reply to an unknown conversation",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: "/api/v1/conversations/no-such-id/replies".into(),
            headers: key.to_vec(),
            body: Some(reply(&assignee)),
            status: 404,
            code: "conversation_not_found",
        },
        Case {
            what: "a reply from a non-assignee",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(reply(other)),
            status: 409,
            code: "not_assignee",
        },
        Case {
            what: "a reply from an operator the tenant does not have",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(reply("mallory")),
            status: 422,
            code: "unknown_operator",
        },
        Case {
            what: "malformed JSON",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some("{\"operator\": ".into()),
            status: 400,
            code: "malformed_json",
        },
        Case {
            what: "an empty body",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(String::new()),
            status: 400,
            code: "malformed_json",
        },
        Case {
            what: "JSON of the wrong shape",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(r#"{"operator": 7, "text": "ciao"}"#.into()),
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "an unknown field",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(format!(
                r#"{{"operator": "{assignee}", "text": "ciao", "account": "x"}}"#
            )),
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "empty text",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(format!(r#"{{"operator": "{assignee}", "text": " "}}"#)),
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "a reply without an idempotency key",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: vec![],
            body: Some(reply(&assignee)),
            status: 400,
            code: "invalid_idempotency_key",
        },
        Case {
            what: "an idempotency key with spaces",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: vec![("idempotency-key", "a b")],
            body: Some(reply(&assignee)),
            status: 400,
            code: "invalid_idempotency_key",
        },
        Case {
            what: "a body that is not JSON",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: vec![("idempotency-key", "k-1"), ("content-type", "text/plain")],
            body: Some(reply(&assignee)),
            status: 415,
            code: "unsupported_media_type",
        },
        Case {
            what: "a body over the cap",
            token: Some(ACME),
            method: "POST",
            template: replies_template,
            path: replies.clone(),
            headers: key.to_vec(),
            body: Some(big),
            status: 413,
            code: "payload_too_large",
        },
        Case {
            what: "a presence that does not exist",
            token: Some(ACME),
            method: "PUT",
            template: "/api/v1/operators/{id}/presence",
            path: "/api/v1/operators/marco/presence".into(),
            headers: vec![],
            body: Some(r#"{"presence": "busy"}"#.into()),
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "a time past the documented bound (i64::MAX)",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations?since=9223372036854775808".into(),
            headers: vec![],
            body: None,
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "a conversation id that is not UTF-8 once decoded",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/conversations/{id}",
            path: "/api/v1/conversations/%FF".into(),
            headers: vec![],
            body: None,
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "the presence of an unknown operator",
            token: Some(ACME),
            method: "PUT",
            template: "/api/v1/operators/{id}/presence",
            path: "/api/v1/operators/mallory/presence".into(),
            headers: vec![],
            body: Some(r#"{"presence": "online"}"#.into()),
            status: 404,
            code: "operator_not_found",
        },
        Case {
            what: "a transfer to an unknown operator",
            token: Some(ACME),
            method: "POST",
            template: "/api/v1/conversations/{id}/transfer",
            path: format!("/api/v1/conversations/{id}/transfer"),
            headers: vec![],
            body: Some(r#"{"to": "mallory"}"#.into()),
            status: 422,
            code: "unknown_operator",
        },
        Case {
            what: "a transfer to an operator at capacity",
            token: Some(ACME),
            method: "POST",
            template: "/api/v1/conversations/{id}/transfer",
            path: format!("/api/v1/conversations/{id}/transfer"),
            headers: vec![],
            body: Some(format!(r#"{{"to": "{other}"}}"#)),
            status: 409,
            code: "operator_at_capacity",
        },
        Case {
            what: "an unknown status filter",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations?status=lost".into(),
            headers: vec![],
            body: None,
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "a limit of zero",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/conversations",
            path: "/api/v1/conversations?limit=0".into(),
            headers: vec![],
            body: None,
            status: 400,
            code: "invalid_request",
        },
        Case {
            what: "an unknown reply",
            token: Some(ACME),
            method: "GET",
            template: "/api/v1/replies/{id}",
            path: "/api/v1/replies/no-such-id".into(),
            headers: vec![],
            body: None,
            status: 404,
            code: "reply_not_found",
        },
    ];
    for case in cases {
        let answer = sidecar
            .api(
                case.token,
                case.method,
                case.template,
                &case.path,
                &case.headers,
                case.body.as_deref(),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (case.status, case.code),
            "{}: {}",
            case.what,
            answer.text
        );
        assert!(
            !answer.body["error"]["message"].as_str().unwrap().is_empty(),
            "{}",
            case.what
        );
    }

    // The latest documented time is taken: nothing was created that late.
    let far = sidecar
        .get(
            ACME,
            "/api/v1/conversations",
            "/api/v1/conversations?since=9223372036854775807",
        )
        .await;
    assert_eq!(far.status, 200, "{}", far.text);
    assert_eq!(far.body["conversations"], json!([]), "{}", far.text);
    assert_eq!(far.body["next_cursor"], Value::Null, "{}", far.text);

    // Routes and methods that do not exist answer JSON too.
    let error = sidecar.spec.schema("Error");
    let answer = sidecar
        .raw(sidecar.public, "GET", "/api/v1/nothing", &[], None)
        .await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
    sidecar.spec.validate_against(&error, &answer.body);
    let answer = sidecar
        .raw(sidecar.public, "DELETE", "/api/v1/conversations", &[], None)
        .await;
    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
    sidecar.spec.validate_against(&error, &answer.body);

    // The same key gives the same reply; the same key for another reply is refused.
    let once = sidecar
        .reply(ACME, &id, "same-key", &assignee, "ciao")
        .await;
    let twice = sidecar
        .reply(ACME, &id, "same-key", &assignee, "ciao")
        .await;
    assert_eq!(once.status, 202, "{}", once.text);
    assert_eq!(once.body["id"], twice.body["id"]);
    let reused = sidecar
        .reply(ACME, &id, "same-key", &assignee, "altro")
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (409, "idempotency_key_reused")
    );

    // Resolving twice is fine; a resolved conversation takes no reply or transfer.
    let resolve = format!("/api/v1/conversations/{id}/resolve");
    for _ in 0..2 {
        let answer = sidecar
            .api(
                Some(ACME),
                "POST",
                "/api/v1/conversations/{id}/resolve",
                &resolve,
                &[],
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.body["status"], "resolved");
    }
    let late = sidecar.reply(ACME, &id, "late", &assignee, "ciao").await;
    assert_eq!((late.status, late.code()), (409, "conversation_resolved"));
    let answer = sidecar
        .post(
            ACME,
            "/api/v1/conversations/{id}/transfer",
            &format!("/api/v1/conversations/{id}/transfer"),
            json!({ "to": other }),
        )
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "conversation_resolved")
    );
}

#[tokio::test]
async fn a_transferred_conversation_takes_replies_from_its_new_operator() {
    let sidecar = Sidecar::start().await;
    assert_eq!(
        sidecar.deliver("globex", "mario: il modem non va").await,
        200
    );
    let conversation = sidecar.only_conversation(GLOBEX).await;
    let id = conversation["id"].as_str().unwrap();
    let assignee = conversation["assignee"].as_str().unwrap();
    let other = if assignee == "marco" {
        "giulia"
    } else {
        "marco"
    };
    let refused = sidecar.reply(GLOBEX, id, "r-1", other, "ciao").await;
    assert_eq!(refused.code(), "not_assignee");
    let moved = sidecar
        .post(
            GLOBEX,
            "/api/v1/conversations/{id}/transfer",
            &format!("/api/v1/conversations/{id}/transfer"),
            json!({ "to": other }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["assignee"], other);
    let accepted = sidecar.reply(GLOBEX, id, "r-1", other, "ciao").await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.body["operator"], other);
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let sidecar = Sidecar::start().await;
    let paths = sidecar.spec.doc["paths"].as_object().unwrap().clone();
    for (template, operations) in &paths {
        for method in operations.as_object().unwrap().keys() {
            let path = template.replace("{id}", "x");
            let answer = sidecar
                .raw(sidecar.public, &method.to_uppercase(), &path, &[], None)
                .await;
            assert!(
                !matches!(answer.code(), "not_found" | "method_not_allowed"),
                "{method} {template} is documented but not served: {}",
                answer.text
            );
            let secured = operations[method].get("security") != Some(&json!([]));
            if secured {
                assert_eq!(answer.status, 401, "{method} {template} needs a token");
            }
        }
    }
}

#[tokio::test]
async fn the_served_openapi_document_is_the_checked_in_one() {
    let sidecar = Sidecar::start().await;
    let answer = sidecar
        .raw(sidecar.public, "GET", "/openapi.json", &[], None)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text, api::openapi_text());
    assert_eq!(answer.body["openapi"], "3.1.0");
    let path = OpenApi::checked_in_path();
    if std::env::var_os("CENTRALINO_BLESS").is_some() {
        std::fs::write(&path, &answer.text).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == answer.text,
        "{} differs from the served document: run this test with CENTRALINO_BLESS=1 to \
         update it, and review the change",
        path.display()
    );
}

/// The subset of OpenAPI 3.1 / JSON Schema the document uses, enough to check real
/// answers: `$ref`, `type` (one or a list), `enum`, `properties`, `required`,
/// `additionalProperties: false`, `items`, `minLength`, `minimum`, `maximum`.
pub struct OpenApi {
    pub doc: Value,
}

impl OpenApi {
    fn checked_in_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    /// The checked-in document (what CRMs read); the code's own until one is checked in
    /// (`the_served_openapi_document_is_the_checked_in_one` keeps the two the same).
    pub fn load() -> OpenApi {
        let doc = std::fs::read_to_string(Self::checked_in_path())
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(api::openapi_document);
        OpenApi { doc }
    }

    /// A component schema.
    pub fn schema(&self, name: &str) -> Value {
        self.doc["components"]["schemas"][name].clone()
    }

    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').unwrap();
            value = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling {reference}"));
        }
        value
    }

    /// Checks an answer against the document: its status is documented for the route,
    /// and its body matches the documented schema.
    pub fn check(&self, template: &str, method: &str, status: u16, body: &Value) {
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which is not documented: {body}"
        );
        let response = self.resolve(response);
        let schema = &response["content"]["application/json"]["schema"];
        self.validate_against(schema, body);
    }

    pub fn validate_against(&self, schema: &Value, value: &Value) {
        let mut problems = Vec::new();
        self.validate(schema, value, "$", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}\nin {value:#}");
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                other => panic!("unsupported type {other}"),
            };
            if !allowed.iter().any(|t| has_type(t, value)) {
                problems.push(format!("{at}: expected {allowed:?}, found {value}"));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
        if let (Some(min), Some(text)) = (schema.get("minLength"), value.as_str())
            && (text.chars().count() as u64) < min.as_u64().unwrap()
        {
            problems.push(format!("{at}: shorter than {min}"));
        }
        if let (Some(min), Some(n)) = (schema.get("minimum"), value.as_f64())
            && n < min.as_f64().unwrap()
        {
            problems.push(format!("{at}: below {min}"));
        }
        if let (Some(max), Some(n)) = (schema.get("maximum"), value.as_f64())
            && n > max.as_f64().unwrap()
        {
            problems.push(format!("{at}: above {max}"));
        }
        if let Value::Object(fields) = value {
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(name) {
                    problems.push(format!("{at}: missing `{name}`"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, field) in fields {
                match properties.and_then(|p| p.get(name)) {
                    Some(field_schema) => {
                        self.validate(field_schema, field, &format!("{at}.{name}"), problems);
                    }
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        problems.push(format!("{at}: `{name}` is not in the schema"));
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (index, item) in items.iter().enumerate() {
                self.validate(item_schema, item, &format!("{at}[{index}]"), problems);
            }
        }
    }
}

fn has_type(name: &str, value: &Value) -> bool {
    match name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        other => panic!("unsupported type `{other}`"),
    }
}

#[test]
fn the_validator_catches_what_the_document_forbids() {
    let spec = OpenApi::load();
    let error = spec.schema("Error");
    let good = json!({ "error": { "code": "not_found", "message": "no" } });
    spec.validate_against(&error, &good);
    let cases = [
        json!({ "error": { "code": "nope", "message": "no" } }),
        json!({ "error": { "code": "not_found" } }),
        json!({ "error": { "code": "not_found", "message": "no", "extra": 1 } }),
        json!({ "error": { "code": 404, "message": "no" } }),
        json!("not_found"),
    ];
    for bad in cases {
        let mut problems = Vec::new();
        spec.validate(&error, &bad, "$", &mut problems);
        assert!(!problems.is_empty(), "{bad} passed");
    }
}

#[test]
fn api_tokens_come_from_the_config_one_per_tenant() {
    use centralino::config::Config;

    let plugins = component("echo-channel")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let text = format!(
        r#"[host]
plugin_dir = "{plugins}"

[[tenants]]
id = "acme"
api_token = "env:ACME_TOKEN"

[[tenants]]
id = "globex"
api_token = "env:GLOBEX_TOKEN"
"#
    );
    let config = Config::parse("centralino.toml", text.clone()).unwrap();
    let env = |name: &str| match name {
        "ACME_TOKEN" => Some("token-a".to_string()),
        "GLOBEX_TOKEN" => Some("token-b".to_string()),
        _ => None,
    };
    let secrets = config.resolve_secrets_with(env).unwrap();
    let tenants: Vec<&String> = secrets.api_tokens().keys().collect();
    assert_eq!(tenants, ["acme", "globex"]);
    let tokens = ApiTokens::from_tenants(secrets.api_tokens()).unwrap();
    assert_eq!(tokens.tenants().collect::<Vec<_>>(), ["acme", "globex"]);

    // One token for two tenants could not tell them apart.
    let same = |name: &str| name.ends_with("_TOKEN").then(|| "same".to_string());
    let refused = config.resolve_secrets_with(same).unwrap_err().to_string();
    assert!(
        refused.contains(
            "tenants[1].api_token: `env:GLOBEX_TOKEN` holds the same token as tenant `acme`'s"
        ),
        "{refused}"
    );
    assert!(
        !refused.contains("same\n") && !refused.contains("`same`"),
        "{refused}"
    );
    let unset = config
        .resolve_secrets_with(|_| None)
        .unwrap_err()
        .to_string();
    assert!(unset.contains("`ACME_TOKEN` is not set"), "{unset}");
    assert!(unset.contains("`GLOBEX_TOKEN` is not set"), "{unset}");

    // With [[tenants]], a top-level token would belong to nobody.
    let top = Config::parse("centralino.toml", format!("api_token = \"env:X\"\n{text}"))
        .unwrap_err()
        .to_string();
    assert!(
        top.contains("api_token: with `[[tenants]]`, each tenant has its own"),
        "{top}"
    );
    // A token written inline is refused without being repeated.
    let inline = Config::parse(
        "centralino.toml",
        text.replace("env:ACME_TOKEN", "s3cret-token-value"),
    )
    .unwrap_err()
    .to_string();
    assert!(inline.contains("tenants[0].api_token"), "{inline}");
    assert!(!inline.contains("s3cret-token-value"), "{inline}");
}

#[tokio::test]
async fn a_reply_of_only_whitespace_or_invisible_characters_is_refused_and_nothing_is_queued() {
    let sidecar = Sidecar::start().await;
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    let conversation = sidecar.only_conversation(ACME).await;
    let id = conversation["id"].as_str().unwrap().to_string();
    let operator = conversation["assignee"].as_str().unwrap().to_string();
    // Zero-width space and joiner, word joiner, byte-order mark, a Hangul filler, spaces.
    let blank = " \u{200B}\u{200D}\u{2060}\u{FEFF}\u{3164}\n";

    let answer = sidecar.reply(ACME, &id, "k-blank", &operator, blank).await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_request"));
    assert!(answer.text.contains("`text` is blank"), "{}", answer.text);
    // The crate API refuses it the same way.
    let refused = sidecar
        .host
        .reply("acme", &id, &operator, None, blank, "crate-blank")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, centralino::Error::Refused(reason) if reason.contains("blank")),
        "{refused}"
    );

    // Nothing was queued under either key: the same keys now take a real reply.
    let answer = sidecar
        .reply(ACME, &id, "k-blank", &operator, "ciao!")
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    sidecar
        .host
        .reply("acme", &id, &operator, None, "\u{200B}ciao", "crate-blank")
        .await
        .unwrap();
}
