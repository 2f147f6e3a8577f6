//! Hostile guests, each a named test. Every test runs the hostile plugin on the same
//! [`Host`] as a good connector (Twitter, polling the X emulator in the background every
//! 50 ms) and asserts two things: the fault is reported, naming the plugin and its
//! version; and the good connector keeps storing customer messages meanwhile.
//!
//! The hostile plugin is `plugins/test-guests/hostile-channel` (a script per call: see its
//! docs) and, for routing, `hostile-router`. Time bounds are generous and only guard
//! against hangs: the tests assert behaviour, not speed.

use std::collections::BTreeMap;
use std::time::Duration;

use centralino::capabilities::{Credential, Grants, Secret};
use centralino::clock::ManualClock;
use centralino::connectors::{Circuit, ConnectorHealth, ConnectorSpec};
use centralino::routing::{Operator, RoutingEngine};
use centralino::runtime::PluginLimits;
use centralino::store::OutboxStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence, RoutingAction, WebhookRequest};
use centralino::{Error, Fault, Host};
use centralino_emulators::x::NewTweet;
use centralino_emulators::{Fault as PlatformFault, XApi};

use crate::support::eventually;
use crate::{agent, component, context};

/// The hostile plugin as hosts name it.
const HOSTILE: &str = "hostile-channel@0.1.0";

/// A host with a good connector (`twitter`) and a hostile one (`hostile`), serving its
/// ingress on loopback.
pub struct Bench {
    pub host: Host,
    pub x: XApi,
    pub url: String,
    _server: tokio::task::JoinHandle<()>,
}

/// Limits of a connector in these tests: the defaults, with a compute deadline long
/// enough that a loaded machine never turns a test about another limit into a deadline
/// test. (Deadlines count wall time less host waits, so a busy machine eats into them.)
pub fn connector_limits() -> PluginLimits {
    PluginLimits {
        call_deadline: Duration::from_secs(30),
        ..PluginLimits::default()
    }
}

/// The good connector: the Twitter plugin polling the X emulator every 50 ms.
pub fn twitter(x: &XApi) -> ConnectorSpec {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("token-tim")),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "consumer_secret".to_string(),
        Secret::new("x-consumer-secret"),
    );
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts: vec![AccountConfig {
                id: "1001".to_string(),
                handle: Some("TIM_Official".to_string()),
                credential: Some("tim".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec.poll_interval = Some(Duration::from_millis(50));
    spec
}

/// The hostile connector: polls run `poll`, webhooks run their body. It may reach the X
/// emulator (`allowed_hosts`), but holds no credential and no secret.
pub fn hostile(poll: &str, allowed_hosts: Vec<String>, limits: PluginLimits) -> ConnectorSpec {
    let mut spec = ConnectorSpec::new(
        "hostile",
        component("hostile-channel"),
        ConnectorConfig {
            settings: vec![("poll".to_string(), poll.to_string())],
            accounts: vec![AccountConfig {
                id: "H1".to_string(),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants.allowed_hosts = allowed_hosts;
    spec.limits = limits;
    spec
}

/// Starts the X emulator and a host with the good connector and `hostile(x)`.
pub async fn bench(hostile: impl FnOnce(&XApi) -> ConnectorSpec) -> Bench {
    bench_routed(hostile, None).await
}

/// Like [`bench`], with a routing engine for the default tenant.
pub async fn bench_routed(
    hostile: impl FnOnce(&XApi) -> ConnectorSpec,
    routing: Option<RoutingEngine>,
) -> Bench {
    bench_with(hostile, routing, None).await
}

/// Like [`bench_routed`], the host on `clock` when given one.
pub async fn bench_with(
    hostile: impl FnOnce(&XApi) -> ConnectorSpec,
    routing: Option<RoutingEngine>,
    clock: Option<&ManualClock>,
) -> Bench {
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");
    let mut builder = Host::builder()
        .connector(twitter(&x))
        .connector(hostile(&x));
    if let Some(engine) = routing {
        builder = builder.routing(engine);
    }
    if let Some(clock) = clock {
        builder = builder.clock(clock.clone());
    }
    let host = builder.build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    let server = tokio::spawn(async move {
        serving.serve(listener).await.unwrap();
    });
    Bench {
        host,
        x,
        url,
        _server: server,
    }
}

/// External ids of the inbound messages stored for connector `channel`.
pub async fn stored_ids(host: &Host, channel: &str) -> Vec<String> {
    let store = host.store();
    let mut ids = Vec::new();
    for conversation in store.conversations("default").await.unwrap() {
        if conversation.channel != channel {
            continue;
        }
        for m in store.messages("default", &conversation.id).await.unwrap() {
            if m.direction == "inbound" {
                ids.push(m.message.external_id);
            }
        }
    }
    ids.sort();
    ids
}

/// A customer mentions the brand on X; returns once the good connector stored it.
pub async fn twitter_delivers(bench: &Bench, text: &str) {
    let tweet = bench
        .x
        .post_tweet(NewTweet::new("42", &format!("@TIM_Official {text}")));
    eventually(
        &format!("the twitter connector to store `{text}`"),
        async || stored_ids(&bench.host, "twitter").await.contains(&tweet.id),
    )
    .await;
}

/// The health of connector `name`.
pub fn health(host: &Host, name: &str) -> ConnectorHealth {
    host.connector_health()
        .into_iter()
        .find(|h| h.connector == name)
        .unwrap()
}

fn webhook(body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: vec![("content-type".to_string(), "text/plain".to_string())],
        body: body.as_bytes().to_vec(),
    }
}

/// The error of the single account's poll of the hostile connector.
async fn poll_error(host: &Host) -> Option<String> {
    let reports = host.poll("default", "hostile").await.unwrap();
    assert_eq!(reports.len(), 1);
    reports[0].error.clone()
}

fn assert_names_plugin(text: &str) {
    assert!(text.contains(HOSTILE), "plugin and version named: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_in_poll_is_cut_off_while_twitter_keeps_delivering() {
    let limits = PluginLimits {
        call_deadline: Duration::from_secs(8),
        ..PluginLimits::default()
    };
    let bench = bench(|_| hostile("!loop", Vec::new(), limits)).await;
    let host = bench.host.clone();
    let looping = tokio::spawn(async move { poll_error(&host).await });
    // While the hostile poll spins, the good connector stores what customers write.
    twitter_delivers(&bench, "durante il loop").await;
    assert!(
        !looping.is_finished(),
        "the good connector delivered while the loop was still running"
    );
    let error = looping.await.unwrap().unwrap();
    assert!(error.contains("ran past its deadline in `poll`"), "{error}");
    assert_names_plugin(&error);
    let h = health(&bench.host, "hostile");
    assert_eq!((h.faults, h.circuit), (1, Circuit::Closed));
    assert_names_plugin(&h.last_fault.unwrap().message);
    // Nothing of the poll was taken: the cursor did not move.
    let cursor = bench.host.store().cursor("default", "hostile", "H1").await;
    assert_eq!(cursor.unwrap(), None);
    twitter_delivers(&bench, "dopo il loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_in_route_is_cut_off_while_twitter_keeps_delivering() {
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    // The routing policy runs on the host's own runtime: same engine, same epoch ticker.
    let policy = bench
        .host
        .runtime()
        .load_router(component("hostile-router"))
        .unwrap();
    let limits = PluginLimits {
        call_deadline: Duration::from_secs(8),
        ..PluginLimits::default()
    };
    let mut router = policy.instance(Vec::new(), limits);
    router.ready().await.unwrap();
    let looping = tokio::spawn(async move {
        let error = router
            .route(&context("loop", vec![agent("a", 1)], 1))
            .await
            .unwrap_err();
        // The next decision runs on a fresh instance.
        let decision = router
            .route(&context("ciao", vec![agent("a", 1)], 2))
            .await
            .unwrap();
        (error, decision)
    });
    twitter_delivers(&bench, "mentre il router gira a vuoto").await;
    assert!(
        !looping.is_finished(),
        "the good connector delivered while the loop was still running"
    );
    let (error, decision) = looping.await.unwrap();
    assert!(
        matches!(
            error,
            centralino::runtime::Error::Fault {
                fault: Fault::Deadline,
                function: "route",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("plugin hostile-router@0.1.0 ran past its deadline in `route`"),
        "{error}"
    );
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
    twitter_delivers(&bench, "dopo il router").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_stage_that_loops_is_skipped_and_the_conversation_still_assigned() {
    // The tenant's chain starts with the hostile policy (1 s deadline, the routing default);
    // a customer's text `loop` makes it spin.
    let chain = crate::routing::chain("hostile-router > round-robin").await;
    let mut engine = RoutingEngine::builder(chain).build();
    engine
        .add_operator(Operator::new("marco", 5), Presence::Online)
        .await;
    let bench = bench_routed(
        |_| hostile("", Vec::new(), connector_limits()),
        Some(engine),
    )
    .await;
    let host = bench.host.clone();
    let delivering = tokio::spawn(async move {
        host.deliver_webhook_stored("default", "hostile", webhook("mario: loop"))
            .await
    });
    twitter_delivers(&bench, "mentre la catena di routing gira").await;
    let (response, stored) = delivering.await.unwrap();
    assert_eq!(response.status, 200);
    // The stage that looped was cut off and skipped; the next one assigned.
    let conversation = bench
        .host
        .store()
        .conversation("default", &stored[0].conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conversation.assignee.as_deref(), Some("marco"));
    let failures = bench
        .host
        .with_routing("default", |engine| engine.chain().failures())
        .await
        .unwrap();
    // Stage failures are reported by plugin and version.
    assert_eq!(
        failures,
        vec![
            ("hostile-router@0.1.0".to_string(), 1),
            ("round-robin@0.1.0".to_string(), 0)
        ]
    );
    twitter_delivers(&bench, "dopo la catena").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_leaks_call_after_call_gets_a_fresh_instance_before_the_memory_cap() {
    // Default limits: 64 MiB. Each delivery keeps 10 MiB more, so without a fresh
    // instance the seventh would fault at the cap and its messages would wait for a retry.
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    for n in 0..14 {
        let body = format!("mario: consegna {n}\n!leak 10");
        let response = bench
            .host
            .deliver_webhook("default", "hostile", webhook(&body))
            .await;
        assert_eq!(response.status, 200, "delivery {n}");
    }
    let h = health(&bench.host, "hostile");
    assert_eq!(h.faults, 0, "{:?}", h.last_fault);
    // Replaced after the call that passed 48 MiB (three quarters of the cap), every few
    // deliveries.
    assert!(
        (3..=5).contains(&h.instances_started),
        "instances started: {}",
        h.instances_started
    );
    let stored = stored_ids(&bench.host, "hostile").await;
    assert_eq!(stored.len(), 14, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_in_poll_stops_at_the_memory_cap_while_twitter_keeps_delivering() {
    // Default limits: the 64 MiB cap is what stops it.
    let bench = bench(|_| hostile("!bomb", Vec::new(), connector_limits())).await;
    let host = bench.host.clone();
    let bombing = tokio::spawn(async move { poll_error(&host).await });
    twitter_delivers(&bench, "durante la bomba").await;
    let error = bombing.await.unwrap().unwrap();
    assert!(
        error.contains("hostile-channel@0.1.0 exceeded its memory limit in `poll`"),
        "{error}"
    );
    let h = health(&bench.host, "hostile");
    assert_eq!(h.faults, 1);
    assert!(
        h.last_fault
            .unwrap()
            .message
            .contains("memory cap of 67108864 bytes")
    );
    // A fresh instance answers the next call.
    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook("mario: dopo la bomba"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(health(&bench.host, "hostile").instances_started, 2);
    twitter_delivers(&bench, "dopo la bomba").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_middle_of_a_poll_batch_keeps_the_cursor_and_the_batch_is_retried() {
    // The hostile plugin builds a batch of four and panics halfway while the platform is
    // down (the emulator answers 503 three times), like a parser meeting an error page.
    // The backoff must outlast the moment between two polls in a row, however busy the
    // machine: 1 s, then 2 s.
    let limits = PluginLimits {
        fault_backoff: Duration::from_secs(1),
        circuit_open_after: 10,
        ..connector_limits()
    };
    let bench = bench(|x| {
        let script = format!(
            "anna: uno\nbruno: due\n!panic-if-down {}/hostile/health\ncarla: tre\ndario: quattro",
            x.base_url()
        );
        hostile(&script, vec![x.authority()], limits)
    })
    .await;
    bench
        .x
        .inject("/hostile/health", PlatformFault::ServerError(503), 3);
    let asked = || {
        bench
            .x
            .requests()
            .iter()
            .filter(|r| r.path == "/hostile/health")
            .count()
    };

    // First fault: reported, retried at once on a fresh instance.
    let error = poll_error(&bench.host).await.unwrap();
    assert!(error.contains("trapped in `poll`"), "{error}");
    assert!(error.contains("panicking after 2 messages"), "{error}");
    assert_names_plugin(&error);
    twitter_delivers(&bench, "durante i panic").await;
    // Second fault in a row: the connector backs off, and the next poll is refused
    // without reaching the plugin (or the platform).
    let error = poll_error(&bench.host).await.unwrap();
    assert!(error.contains("trapped in `poll`"), "{error}");
    let before = asked();
    let refused = poll_error(&bench.host).await.unwrap();
    assert!(
        refused.contains("backing off after 2 consecutive faults"),
        "{refused}"
    );
    assert_names_plugin(&refused);
    assert_eq!(asked(), before, "a refused poll never reaches the plugin");
    assert_eq!(health(&bench.host, "hostile").circuit, Circuit::BackingOff);

    // Nothing of the batch was stored, and the cursor still points before it.
    assert!(stored_ids(&bench.host, "hostile").await.is_empty());
    let store = bench.host.store();
    assert_eq!(
        store.cursor("default", "hostile", "H1").await.unwrap(),
        None
    );

    // Keep polling as the poller would: one more fault, then the platform is back and the
    // very batch that was in flight is stored, once.
    eventually("the hostile connector to recover", async || {
        poll_error(&bench.host).await.is_none()
    })
    .await;
    let ids = stored_ids(&bench.host, "hostile").await;
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.iter().all(|id| id.ends_with("-p0")), "{ids:?}");
    assert_eq!(
        store.cursor("default", "hostile", "H1").await.unwrap(),
        Some("1".to_string())
    );
    let h = health(&bench.host, "hostile");
    assert_eq!(
        (h.faults, h.consecutive_faults, h.circuit),
        (3, 0, Circuit::Closed)
    );
    assert_eq!(asked(), 4, "three faults, one success");
    twitter_delivers(&bench, "dopo i panic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_middle_of_a_webhook_batch_is_not_acknowledged_and_stores_nothing() {
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/webhooks/hostile", bench.url);
    let batch = "anna: uno\nbruno: due\n!panic\ncarla: tre";
    let response = client.post(&hook).body(batch).send().await.unwrap();
    // 503: the platform keeps the delivery and sends it again later.
    assert_eq!(response.status().as_u16(), 503);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("anna"),
        "no detail leaks to the caller: {body}"
    );
    assert!(stored_ids(&bench.host, "hostile").await.is_empty());
    let h = health(&bench.host, "hostile");
    assert_eq!(h.faults, 1);
    let fault = h.last_fault.unwrap().message;
    assert!(fault.contains("trapped in `handle-webhook`"), "{fault}");
    assert!(fault.contains("panicked after 2 messages"), "{fault}");
    assert_names_plugin(&fault);
    twitter_delivers(&bench, "dopo il panic nel webhook").await;

    // The redelivery of a good batch is stored whole.
    let response = client
        .post(&hook)
        .body("anna: uno\nbruno: due\ncarla: tre")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(stored_ids(&bench.host, "hostile").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_from_one_poll_are_refused_whole_and_the_cursor_is_kept() {
    let bench = bench(|_| hostile("!flood 100000", Vec::new(), connector_limits())).await;
    let host = bench.host.clone();
    let flooding = tokio::spawn(async move { poll_error(&host).await });
    twitter_delivers(&bench, "durante l'alluvione").await;
    let error = flooding.await.unwrap().unwrap();
    assert!(
        error.contains("hostile-channel@0.1.0 exceeded an output limit in `poll`"),
        "{error}"
    );
    assert!(
        error.contains(
            "returned 100000 messages in one call; the cap is 1000 (max_messages_per_call)"
        ),
        "{error}"
    );
    assert!(stored_ids(&bench.host, "hostile").await.is_empty());
    let cursor = bench.host.store().cursor("default", "hostile", "H1").await;
    assert_eq!(cursor.unwrap(), None);
    assert_eq!(health(&bench.host, "hostile").faults, 1);
    twitter_delivers(&bench, "dopo l'alluvione").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_longer_than_the_text_cap_is_refused_not_truncated() {
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook("anna: prima\n!long 70000"))
        .await;
    assert_eq!(response.status, 503);
    assert!(stored_ids(&bench.host, "hostile").await.is_empty());
    let fault = health(&bench.host, "hostile").last_fault.unwrap().message;
    assert!(fault.contains("70000 characters"), "{fault}");
    assert!(fault.contains("max_text_chars"), "{fault}");
    assert_names_plugin(&fault);
    twitter_delivers(&bench, "dopo il messaggio lungo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_to_a_host_off_the_allow_list_is_denied_and_never_sent() {
    let elsewhere = XApi::start().await.unwrap();
    let steal = format!("{}/steal", elsewhere.base_url());
    let bench = bench(|x| {
        hostile(
            &format!("!fetch {steal}"),
            vec![x.authority()],
            connector_limits(),
        )
    })
    .await;
    let error = poll_error(&bench.host).await.unwrap();
    assert!(error.contains("fetch refused"), "{error}");
    assert!(
        elsewhere.requests().is_empty(),
        "the request never left the host"
    );
    let h = health(&bench.host, "hostile");
    assert_eq!(h.denials, 1);
    let denial = h.last_denial.unwrap().message;
    assert!(
        denial.starts_with("plugin hostile-channel@0.1.0 may not reach"),
        "{denial}"
    );
    assert!(denial.contains("not on its allow-list"), "{denial}");
    // A refusal is the plugin's answer, not a fault: nothing counts toward the circuit.
    assert_eq!((h.faults, h.circuit), (0, Circuit::Closed));
    twitter_delivers(&bench, "dopo la richiesta vietata").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_or_secret_not_granted_is_denied() {
    // The hostile plugin may reach the X emulator, but the credential `tim` and the secret
    // `consumer_secret` belong to the Twitter connector.
    let bench = bench(|x| hostile("", vec![x.authority()], connector_limits())).await;
    let steal = format!("!fetch {}/hostile/steal tim", bench.x.base_url());
    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook(&steal))
        .await;
    assert_eq!(response.status, 503, "the delivery is not acknowledged");
    assert!(
        !bench
            .x
            .requests()
            .iter()
            .any(|r| r.path == "/hostile/steal"),
        "nothing was sent"
    );
    let h = health(&bench.host, "hostile");
    let denial = h.last_denial.unwrap().message;
    assert_eq!(
        denial,
        "credential `tim` is not granted to plugin hostile-channel@0.1.0"
    );

    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook("!secret consumer_secret"))
        .await;
    assert_eq!(response.status, 503);
    let h = health(&bench.host, "hostile");
    assert_eq!(h.denials, 2);
    assert_eq!(
        h.last_denial.unwrap().message,
        "secret `consumer_secret` is not granted to plugin hostile-channel@0.1.0"
    );
    assert_eq!(h.faults, 0);
    twitter_delivers(&bench, "dopo il furto mancato").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_log_lines_is_capped_per_call_and_the_message_still_arrives() {
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    let host = bench.host.clone();
    let flooding = tokio::spawn(async move {
        host.deliver_webhook(
            "default",
            "hostile",
            webhook("!log 100000\n!print 2000\nanna: dopo il diluvio di log"),
        )
        .await
    });
    twitter_delivers(&bench, "durante il diluvio di log").await;
    let response = flooding.await.unwrap();
    // Log lines over the budget are dropped, not the call's result.
    assert_eq!(response.status, 200);
    assert_eq!(stored_ids(&bench.host, "hostile").await.len(), 1);
    let h = health(&bench.host, "hostile");
    assert!(
        h.log_lines_dropped >= 100_000 + 2_000 - 10_000,
        "{}",
        h.log_lines_dropped
    );
    let overflow = h.last_log_overflow.unwrap().message;
    assert!(
        overflow.starts_with(
            "plugin hostile-channel@0.1.0 wrote more log than its budget of 10000 lines per call"
        ),
        "{overflow}"
    );
    assert!(overflow.contains("`handle-webhook`"), "{overflow}");
    assert_eq!(h.faults, 0);
    // The budget is per call: the next call logs again.
    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook("!log 10\nbruno: ciao"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        health(&bench.host, "hostile").log_lines_dropped,
        h.log_lines_dropped
    );
    twitter_delivers(&bench, "dopo il diluvio di log").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_keeps_faulting_opens_its_circuit_until_an_admin_resets_it() {
    // Polled in the background every 20 ms; the platform is down for three polls, and
    // the plugin panics mid-batch each time.
    let limits = PluginLimits {
        circuit_open_after: 3,
        fault_backoff: Duration::from_millis(50),
        ..connector_limits()
    };
    // The host's clock moves when the test says: a refused reply's next look comes due then.
    let clock = ManualClock::at_system_time();
    let bench = bench_with(
        |x| {
            let script = format!(
                "anna: uno\n!panic-if-down {}/hostile/health\nbruno: due",
                x.base_url()
            );
            let mut spec = hostile(&script, vec![x.authority()], limits);
            spec.poll_interval = Some(Duration::from_millis(20));
            spec
        },
        None,
        Some(&clock),
    )
    .await;
    bench
        .x
        .inject("/hostile/health", PlatformFault::ServerError(503), 3);
    let asked = || {
        bench
            .x
            .requests()
            .iter()
            .filter(|r| r.path == "/hostile/health")
            .count()
    };
    eventually("the circuit to open", async || {
        health(&bench.host, "hostile").circuit == Circuit::Open
    })
    .await;
    let h = health(&bench.host, "hostile");
    assert_eq!((h.faults, h.consecutive_faults), (3, 3));
    assert!(h.opened_at_ms.is_some());
    let fault = h.last_fault.unwrap().message;
    assert!(fault.contains("trapped in `poll`"), "{fault}");
    assert_names_plugin(&fault);

    // Polling pauses: the poller keeps ticking, but nothing reaches the plugin. A call
    // admitted just before the third fault opened the circuit may still finish (in-flight
    // calls are not cut short), so the count is taken once the poller is being refused,
    // and must then stay put while the refusals go on.
    eventually("the poller to be refused", async || {
        health(&bench.host, "hostile").refused_calls >= 5
    })
    .await;
    let seen = asked();
    assert!(
        (3..=4).contains(&seen),
        "{seen} platform requests: three faulted calls, at most one more admitted before the circuit opened"
    );
    let instances = health(&bench.host, "hostile").instances_started;
    eventually("more refusals", async || {
        health(&bench.host, "hostile").refused_calls >= 10
    })
    .await;
    assert_eq!(
        asked(),
        seen,
        "a call reached the plugin while the circuit was open"
    );
    assert_eq!(health(&bench.host, "hostile").instances_started, instances);

    // Webhooks get 503 with a hint, so the platform delivers them again later.
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/hostile", bench.url))
        .body("carla: ci sei?")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "60"
    );
    // Replies are refused fast, naming the connector and the plugin.
    let error = bench
        .host
        .send(
            "default",
            "hostile",
            centralino::types::OutboundMessage {
                account: "H1".to_string(),
                conversation_key: "dm:anna".to_string(),
                kind: centralino::types::MessageKind::PrivateMessage,
                recipient: Some("anna".to_string()),
                in_reply_to: None,
                text: "ciao".to_string(),
                attachments: Vec::new(),
                idempotency_key: "r1".to_string(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("connector `hostile`"), "{text}");
    assert!(text.contains("an admin must reset it"), "{text}");
    assert_names_plugin(&text);
    twitter_delivers(&bench, "mentre il circuito è aperto").await;

    // A reply queued meanwhile waits in the outbox: the sender's refusals (it runs every
    // 20 ms) neither fail it nor use up its attempts.
    // (Hung on the conversation just stored: the outbox needs one, the plugin ignores it.)
    let conversations = bench.host.store().conversations("default").await.unwrap();
    let (queued, _) = bench
        .host
        .store()
        .enqueue_reply(
            "default",
            "hostile",
            &conversations[0].id,
            "operatore",
            &centralino::types::OutboundMessage {
                account: "H1".to_string(),
                conversation_key: "dm:anna".to_string(),
                kind: centralino::types::MessageKind::PrivateMessage,
                recipient: Some("anna".to_string()),
                in_reply_to: None,
                text: "ci pensiamo noi".to_string(),
                attachments: Vec::new(),
                idempotency_key: "queued-while-open".to_string(),
            },
        )
        .await
        .unwrap();
    // One whole pass of the sender has found it due and been refused.
    let passes = bench.host.outbox_passes();
    eventually("an outbox pass after the reply was queued", async || {
        bench.host.outbox_passes() >= passes + 2
    })
    .await;
    // (Polled: for a moment after each claim the row is `sending`.)
    eventually("the queued reply to be waiting, untouched", async || {
        let waiting = outbox(&bench.host, &queued.id).await;
        (
            waiting.status,
            waiting.attempts,
            waiting.last_error.as_deref(),
        ) == (OutboxStatus::Pending, 0, None)
    })
    .await;

    // The platform is back; the admin resets the connector and the poller delivers the
    // batch that was in flight when it first failed.
    let h = bench.host.reset_connector("default", "hostile").unwrap();
    assert_eq!((h.circuit, h.consecutive_faults), (Circuit::Closed, 0));
    eventually("the in-flight batch to be stored", async || {
        stored_ids(&bench.host, "hostile")
            .await
            .iter()
            .filter(|id| id.ends_with("-p0"))
            .count()
            == 2
    })
    .await;
    let h = health(&bench.host, "hostile");
    assert_eq!(h.faults, 3);
    assert_eq!(h.circuit, Circuit::Closed);
    twitter_delivers(&bench, "dopo il reset").await;
    // The queued reply goes out at its first real attempt, at its next look (2 s after the
    // last refusal, on the host's clock).
    clock.advance(Duration::from_secs(2));
    eventually("the queued reply to be sent", async || {
        outbox(&bench.host, &queued.id).await.status == OutboxStatus::Sent
    })
    .await;
    assert_eq!(outbox(&bench.host, &queued.id).await.attempts, 1);
}

async fn outbox(host: &Host, id: &str) -> centralino::store::OutboxEntry {
    host.store()
        .outbox_entry("default", id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_unknown_connector_cannot_be_reset() {
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    let error = bench
        .host
        .reset_connector("default", "telegram")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no connector `telegram` for tenant `default`"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_batch_redelivered_again_and_again_never_opens_the_circuit() {
    // The attack: a delivery over the events cap, which the platform redelivers after
    // every 503. Refused on purpose each time, it must not count as the plugin failing.
    let bench = bench(|_| hostile("", Vec::new(), connector_limits())).await;
    let open_after = connector_limits().circuit_open_after;
    for _ in 0..open_after + 3 {
        let response = bench
            .host
            .deliver_webhook("default", "hostile", webhook("!flood 1500"))
            .await;
        assert_eq!(response.status, 503);
    }
    let h = health(&bench.host, "hostile");
    assert_eq!(h.circuit, Circuit::Closed, "{h:?}");
    assert_eq!(h.consecutive_faults, 0);
    let last = h.last_fault.unwrap().message;
    assert!(last.contains("max_messages_per_call"), "{last}");
    // Every legitimate delivery after it is taken.
    let response = bench
        .host
        .deliver_webhook("default", "hostile", webhook("anna: ciao"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(stored_ids(&bench.host, "hostile").await.len(), 1);
}

#[tokio::test]
async fn a_start_up_error_says_why_in_its_display() {
    // An unknown setting: `to_string()` names the connector and the cause, not only the
    // context (`{:#}` was needed before).
    let x = XApi::start().await.unwrap();
    let mut spec = twitter(&x);
    spec.config
        .settings
        .push(("no_such_setting".to_string(), "1".to_string()));
    let error = Host::builder().connector(spec).build().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("starting connector `twitter`"), "{text}");
    assert!(text.contains("no_such_setting"), "{text}");
}
