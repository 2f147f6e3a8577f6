//! The attacks of the security review (issue 13), each reproduced against a real host on
//! loopback and shown to fail: hostile rate-limit headers, a reused idempotency key,
//! credentials echoed back or sent in the clear, and background tasks that panic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::clock::ManualClock;
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::runtime::{ChannelInstance, PluginLimits};
use centralino::store::OutboxStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence, WebhookRequest};
use centralino::{Error, Host};
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;

use crate::component;
use crate::http::fetch;
use crate::support::{comes_true, eventually, eventually_within};

const SECRET: &str = "x-consumer-secret";

/// Serves `app` on a loopback port; returns its authority (`127.0.0.1:port`).
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    authority
}

/// An X API that accepts every post and answers with rate-limit headers no real window
/// has: a reset at the end of `u64`, a Graph estimate of `u64::MAX` minutes.
async fn x_with_hostile_headers() -> String {
    let posts = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new()
        .route(
            "/2/tweets",
            axum::routing::post(|State(posts): State<Arc<AtomicU32>>| async move {
                let n = posts.fetch_add(1, Ordering::SeqCst);
                let mut headers = HeaderMap::new();
                headers.insert("x-rate-limit-remaining", "0".parse().unwrap());
                headers.insert("x-rate-limit-reset", u64::MAX.to_string().parse().unwrap());
                headers.insert(
                    "x-business-use-case-usage",
                    format!(
                        r#"{{"1":[{{"call_count":100,"estimated_time_to_regain_access":{}}}]}}"#,
                        u64::MAX
                    )
                    .parse()
                    .unwrap(),
                );
                let body = serde_json::json!({ "data": { "id": format!("99{n}"), "text": "ok" } });
                (axum::http::StatusCode::CREATED, headers, axum::Json(body)).into_response()
            }),
        )
        .with_state(posts);
    serve(app).await
}

fn twitter(tenant: &str, api: &str) -> ConnectorSpec {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("token-tim")),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert("consumer_secret".to_string(), Secret::new(SECRET));
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), format!("http://{api}"))],
            accounts: vec![AccountConfig {
                id: "1001".to_string(),
                handle: Some("TIM_Official".to_string()),
                credential: Some("tim".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.tenant = tenant.into();
    spec.grants = Grants::default()
        .allow_hosts(vec![api.to_string()])
        .credentials(credentials)
        .secrets(secrets);
    spec
}

/// A signed mention for `tenant`; returns its conversation.
async fn mention(host: &Host, tenant: &str, id: &str) -> String {
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        id,
        ("42", "mario_rossi", "Mario"),
        "@TIM_Official la fibra non va",
        None,
    ))
    .unwrap();
    let request = WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: twitter_delivery_headers(SECRET, &body),
        body,
    };
    let (response, stored) = host
        .deliver_webhook_stored(tenant, "twitter", request)
        .await;
    assert_eq!(response.status, 200);
    stored[0].conversation_id.to_string()
}

async fn outbox_status(host: &Host, tenant: &str, id: &str) -> (OutboxStatus, Option<String>) {
    let entry = host
        .store()
        .outbox_entry(tenant, id)
        .await
        .unwrap()
        .unwrap();
    (entry.status, entry.last_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_rate_limit_header_leaves_every_tenants_replies_flowing_and_the_host_ready() {
    let hostile = x_with_hostile_headers().await;
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("42", "mario_rossi", "Mario", "token-mario");
    let host = Host::builder()
        .connector(twitter("acme", &hostile))
        .connector(twitter("globex", &x.authority()))
        .build()
        .await
        .unwrap();
    let acme = mention(&host, "acme", "1860000000000000001").await;
    let tweet = x.post_tweet(NewTweet::new("42", "@TIM_Official la fibra non va"));
    let globex = mention(&host, "globex", &tweet.id).await;

    // acme's platform answers its first reply with the hostile headers.
    let first = host
        .reply("acme", &acme, "marco", None, "ti aiuto io", "a-1")
        .await
        .unwrap();
    eventually("acme's first reply to be sent", async || {
        outbox_status(&host, "acme", &first.id).await.0 == OutboxStatus::Sent
    })
    .await;

    // Every tenant's replies still go out: globex's at once, acme's second waits out a
    // bounded window instead of killing the sender.
    let second = host
        .reply("acme", &acme, "marco", None, "ci sei?", "a-2")
        .await
        .unwrap();
    let other = host
        .reply("globex", &globex, "giulia", None, "eccomi", "g-1")
        .await
        .unwrap();
    eventually("globex's reply to be sent", async || {
        outbox_status(&host, "globex", &other.id).await.0 == OutboxStatus::Sent
    })
    .await;
    eventually("acme's second reply to be held by the window", async || {
        let (status, error) = outbox_status(&host, "acme", &second.id).await;
        status == OutboxStatus::Pending && error.is_some_and(|e| e.contains("rate limited"))
    })
    .await;
    let (_, error) = outbox_status(&host, "acme", &second.id).await;
    let error = error.unwrap();
    let wait_ms: u64 = error
        .split("retry after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {error}"));
    assert!(wait_ms <= 24 * 3600 * 1000, "bounded wait: {wait_ms} ms");

    assert_eq!(host.readiness().await, Ok(()));
    for task in host.background_tasks() {
        assert!(task.running, "{task:?}");
        assert_eq!(task.restarts, 0, "{task:?}");
    }
    let metrics = host.metrics_text().await;
    assert!(
        metrics.contains("centralino_outbox_replies{tenant=\"acme\",state=\"pending\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("centralino_outbox_replies{tenant=\"globex\",state=\"pending\"} 0"),
        "{metrics}"
    );
}

/// A telco with two operators and a one-second offer timeout.
async fn routed_host(x: &XApi, clock: &ManualClock) -> Host {
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco", "token-marco");
    x.add_user("2002", "TIM_Giulia", "Giulia", "token-giulia");
    x.add_user("42", "mario_rossi", "Mario", "token-mario");
    x.add_user("43", "lucia", "Lucia", "token-lucia");
    let mut spec = twitter("default", &x.authority());
    for (id, handle, credential) in [
        ("2001", "TIM_Marco", "marco"),
        ("2002", "TIM_Giulia", "giulia"),
    ] {
        spec.config.accounts.push(AccountConfig {
            id: id.to_string(),
            handle: Some(handle.to_string()),
            credential: Some(credential.to_string()),
            settings: Vec::new(),
        });
        spec.grants.credentials.insert(
            credential.to_string(),
            Credential::Bearer(Secret::new(format!("token-{credential}"))),
        );
    }
    let mut engine = RoutingEngine::builder(crate::routing::chain("least-loaded").await)
        .offer_timeout(Duration::from_secs(1))
        .build();
    for (id, account) in [("marco", "2001"), ("giulia", "2002")] {
        let operator = Operator::new(id, 2).account("twitter", account);
        engine.add_operator(operator, Presence::Online).await;
    }
    Host::builder()
        .connector(spec)
        .routing(engine)
        .clock(clock.clone())
        .build()
        .await
        .unwrap()
}

async fn assignee(host: &Host, conversation: &str) -> Option<String> {
    host.store()
        .conversation("default", conversation)
        .await
        .unwrap()
        .unwrap()
        .assignee
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_refused_for_a_reused_idempotency_key_does_not_count_as_an_answer() {
    let x = XApi::start().await.unwrap();
    let clock = ManualClock::at_system_time();
    let host = routed_host(&x, &clock).await;
    let tweet = x.post_tweet(NewTweet::new("42", "@TIM_Official la fibra non va"));
    let first = mention(&host, "default", &tweet.id).await;
    let holder = assignee(&host, &first).await.unwrap();
    host.reply("default", &first, &holder, None, "ciao", "key-1")
        .await
        .unwrap();
    let tweet = x.post_tweet(NewTweet::new("43", "@TIM_Official anche da me"));
    let second = mention(&host, "default", &tweet.id).await;
    let offered = assignee(&host, &second).await.unwrap();

    // The same key for another reply: refused, and routing never hears of it.
    let refused = host
        .reply(
            "default",
            &second,
            &offered,
            None,
            "un'altra risposta",
            "key-1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::IdempotencyKeyReused { .. }),
        "{refused:?}"
    );
    // The same request again is the reply it queued, not a second one.
    let again = host
        .reply("default", &first, &holder, None, "ciao", "key-1")
        .await
        .unwrap();
    assert_eq!(again.conversation_id, first);

    // The offer was never answered, so its timeout (1 s on the host's clock) takes it back
    // from the operator at the routing ticker's next look.
    clock.advance(Duration::from_secs(1));
    eventually("the unanswered offer to time out", async || {
        assignee(&host, &second).await.as_deref() != Some(offered.as_str())
    })
    .await;
    // The answered conversation stays with its operator.
    assert_eq!(assignee(&host, &first).await, Some(holder));
}

/// A server that answers every request with what it was sent, headers included, as a
/// careless error page would.
async fn echo() -> String {
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let mut text = String::from("you sent:\n");
        for (name, value) in &headers {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
        }
        let echoed = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        ([("x-echo", echoed)], text).into_response()
    });
    serve(app).await
}

/// The `http-probe` guest (tests/all/http.rs) with one bearer credential, `tim`.
fn probe(allowed: Vec<String>) -> ChannelInstance {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("token-tim-very-secret")),
    );
    let grants = Grants::default()
        .allow_hosts(allowed)
        .credentials(credentials);
    crate::http::probe(grants, PluginLimits::default())
}

#[tokio::test]
async fn a_credential_echoed_by_the_server_is_scrubbed_before_the_plugin_sees_it() {
    let server = echo().await;
    let mut probe = probe(vec![server.clone()]);
    let result = fetch(&mut probe, &format!("GET http://{server}/anything tim")).await;
    assert!(result.starts_with("200\n"), "{result}");
    assert!(!result.contains("token-tim-very-secret"), "{result}");
    assert!(
        result.contains("authorization: Bearer [credential]"),
        "{result}"
    );
}

#[tokio::test]
async fn a_credential_never_goes_over_plain_http_to_a_host_not_marked_as_an_emulator() {
    // Not loopback, not marked `http://…`: refused before any connection is tried.
    let mut probe = probe(vec!["api.example.invalid".to_string()]);
    let result = fetch(&mut probe, "GET http://api.example.invalid/2/tweets tim").await;
    assert!(
        result.starts_with(
            "ERROR denied: plugin http-probe@0.1.0 asked for credential `tim` over plain HTTP"
        ),
        "{result}"
    );
    // Without a credential the same request is only a network error (nothing listens).
    let result = fetch(&mut probe, "GET http://api.example.invalid/2/tweets").await;
    assert!(!result.starts_with("ERROR denied"), "{result}");
}

#[tokio::test]
async fn a_plugin_cannot_set_the_host_header() {
    let server = echo().await;
    let mut probe = probe(vec![server.clone()]);
    for header in ["Host: evil.example", "proxy-authorization: Basic eA=="] {
        let result = fetch(&mut probe, &format!("GET http://{server}/x\n{header}")).await;
        assert!(
            result.starts_with("ERROR invalid-request: header `"),
            "{header}: {result}"
        );
        assert!(result.contains("is set by the host"), "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_background_task_that_panics_is_restarted_and_readiness_shows_it_down() {
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");
    let engine = RoutingEngine::builder(crate::routing::chain("least-loaded").await).build();
    let host = Host::builder()
        .connector(crate::hostile::twitter(&x))
        .routing(engine)
        .build()
        .await
        .unwrap();
    host.watch_plugins(Duration::from_millis(200));
    let mut names: Vec<String> = host
        .background_tasks()
        .into_iter()
        .map(|t| t.task)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "crm-dispatcher",
            "media-fetcher",
            "outbox-sender",
            "plugin-watcher",
            "poller:default/twitter",
            "pruner",
            "routing-ticker"
        ]
    );
    for task in &names {
        host.inject_task_panic(task);
        let mut down = None;
        eventually_within(
            Duration::from_secs(10),
            &format!("{task} to go down"),
            async || {
                down = host.readiness().await.err();
                down.is_some()
            },
        )
        .await;
        let reason = down.unwrap();
        assert!(reason.contains(task.as_str()), "{reason}");
        assert!(reason.contains("injected"), "{reason}");
        let mut last = None;
        let restarted = comes_true(async || {
            last = host.readiness().await.err();
            last.is_none()
        })
        .await;
        assert!(
            restarted,
            "{task} was not restarted: readiness still says {last:?}; tasks: {:?}",
            host.background_tasks()
        );
        let health = host
            .background_tasks()
            .into_iter()
            .find(|t| &t.task == task)
            .unwrap();
        assert!(health.running);
        assert_eq!(health.restarts, 1, "{health:?}");
        let metrics = host.metrics_text().await;
        assert!(
            metrics.contains(&format!(
                "centralino_task_restarts_total{{task=\"{task}\"}} 1"
            )),
            "{metrics}"
        );
    }
    // The restarted poller still does its work.
    let tweet = x.post_tweet(NewTweet::new("42", "@TIM_Official dopo i riavvii"));
    eventually("the restarted poller to store a mention", async || {
        crate::hostile::stored_ids(&host, "twitter")
            .await
            .contains(&tweet.id)
    })
    .await;
}
