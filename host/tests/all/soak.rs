//! A soak: every kind of fault, round after round, on one host, while customers keep
//! writing through three paths (Twitter polling, webhooks and polling of the hostile
//! connector itself). It counts what was injected and what was reported, what was
//! acknowledged and what was stored, and requires every count to match: no fault goes
//! unreported, no message is lost or stored twice.
//!
//! `CENTRALINO_SOAK_ROUNDS` sets the rounds (default 40); `RELIABILITY.md` records a long
//! run. Run one with:
//!
//! ```sh
//! CENTRALINO_SOAK_ROUNDS=800 cargo test -p centralino --test all soak -- --nocapture
//! ```

use std::time::{Duration, Instant};

use centralino::connectors::Circuit;
use centralino::runtime::PluginLimits;
use centralino::types::{WebhookRequest, WebhookResponse};
use centralino_emulators::x::NewTweet;
use centralino_emulators::{Fault as PlatformFault, XApi};

use crate::hostile::{Bench, bench, health, hostile, stored_ids};
use crate::support::eventually;

/// The faults a round injects, in turn; the script is the hostile webhook's body.
const FAULTS: [(&str, &str); 8] = [
    (
        "panic mid-batch",
        "anna: prima\nbruno: seconda\n!panic\ncarla: mai",
    ),
    ("endless loop", "!loop"),
    ("memory bomb", "!bomb"),
    ("5,000 messages", "!flood 5000"),
    ("70,000-character text", "!long 70000"),
    ("host off the allow-list", "!fetch http://192.0.2.1/steal"),
    ("secret not granted", "!secret consumer_secret"),
    ("12,000 log lines", "!log 12000"),
];

fn webhook(body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn refused(response: &WebhookResponse) -> bool {
    response
        .headers
        .iter()
        .any(|(name, _)| name == "retry-after")
}

/// Delivers `body` as a platform does: again and again while the connector refuses it
/// (503 with `Retry-After`); returns the first answer that came from the plugin.
async fn deliver(bench: &Bench, body: &str) -> WebhookResponse {
    loop {
        let response = bench
            .host
            .deliver_webhook("default", "hostile", webhook(body))
            .await;
        if !refused(&response) {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_fault_over_and_over_loses_no_message() {
    let rounds: usize = std::env::var("CENTRALINO_SOAK_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    // Short backoff so the soak spends its time on faults; the circuit never opens here
    // (the hostile tests cover it). Only the loop comes near the deadline.
    let limits = PluginLimits {
        call_deadline: Duration::from_secs(2),
        fault_backoff: Duration::from_millis(10),
        fault_backoff_max: Duration::from_millis(50),
        circuit_open_after: u32::MAX,
        ..PluginLimits::default()
    };
    let poll_faults = rounds;
    let bench = bench(|x: &XApi| {
        let script = format!(
            "poller: una pagina\n!panic-if-down {}/hostile/health",
            x.base_url()
        );
        let mut spec = hostile(&script, vec![x.authority()], limits);
        spec.poll_interval = Some(Duration::from_millis(30));
        spec
    })
    .await;
    // The hostile connector's platform is down for its first `rounds` health checks: each
    // one is a poll that panics after building its page.
    bench.x.inject(
        "/hostile/health",
        PlatformFault::ServerError(503),
        u32::try_from(poll_faults).unwrap(),
    );

    let started = Instant::now();
    let mut injected = vec![0usize; FAULTS.len()];
    let mut acknowledged = 0usize;
    let mut tweets = Vec::new();
    for round in 0..rounds {
        let kind = round % FAULTS.len();
        let (_, script) = FAULTS[kind];
        let response = deliver(&bench, script).await;
        injected[kind] += 1;
        // Log lines over budget are dropped, the call still counts; every other fault is
        // a 503 (the platform keeps the delivery).
        let expected = if kind == 7 { 200 } else { 503 };
        assert_eq!(
            response.status, expected,
            "round {round}: {}",
            FAULTS[kind].0
        );

        // A customer writes through the hostile connector, and the platform redelivers
        // until it is acknowledged.
        let good = format!("cliente{round}: messaggio numero {round}");
        let response = deliver(&bench, &good).await;
        assert_eq!(response.status, 200, "round {round}: a good delivery");
        acknowledged += 1;
        // And one on X.
        tweets.push(
            bench
                .x
                .post_tweet(NewTweet::new("42", &format!("@TIM_Official giro {round}")))
                .id,
        );
    }

    // Let the pollers catch up: every tweet stored, the hostile platform back up.
    eventually("every tweet to be stored", async || {
        let stored = stored_ids(&bench.host, "twitter").await;
        tweets.iter().all(|id| stored.contains(id))
    })
    .await;
    let health_path = || {
        bench
            .x
            .requests()
            .iter()
            .filter(|r| r.path == "/hostile/health")
            .count()
    };
    eventually("the hostile connector's platform to recover", async || {
        health_path() > poll_faults
    })
    .await;
    let elapsed = started.elapsed();

    let h = health(&bench.host, "hostile");
    let webhook_faults: usize = injected[..5].iter().sum();
    let denials = injected[5] + injected[6];
    let cursor: usize = bench
        .host
        .store()
        .cursor("default", "hostile", "H1")
        .await
        .unwrap()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let stored = stored_ids(&bench.host, "hostile").await;
    let from_webhooks = stored.iter().filter(|id| id.ends_with("-w")).count();
    let pages = stored.iter().filter(|id| id.contains("-p")).count();
    let twitter = stored_ids(&bench.host, "twitter").await.len();
    println!(
        "soak: {rounds} rounds in {:.1} s; faults injected {} ({} through webhooks: {}; {poll_faults} \
         polls panicking mid-batch), reported {}; capability requests refused {denials}, \
         reported {}; log lines dropped {}; customer messages acknowledged through webhooks \
         {acknowledged}, stored {from_webhooks}; poll pages fetched {cursor}, stored {pages}; \
         tweets posted {}, stored {twitter}; instances started {}; calls refused while \
         backing off {}",
        elapsed.as_secs_f64(),
        webhook_faults + poll_faults,
        webhook_faults,
        FAULTS[..5]
            .iter()
            .zip(&injected)
            .map(|((name, _), n)| format!("{n} {name}"))
            .collect::<Vec<_>>()
            .join(", "),
        h.faults,
        h.denials,
        h.log_lines_dropped,
        tweets.len(),
        h.instances_started,
        h.refused_calls,
    );

    // Every fault reported, by plugin and version.
    assert_eq!(h.faults as usize, webhook_faults + poll_faults);
    assert_eq!(h.denials as usize, denials);
    assert!(
        h.last_fault
            .unwrap()
            .message
            .contains("hostile-channel@0.1.0")
    );
    assert!(h.log_lines_dropped as usize >= injected[7] * (12_000 - 10_000));
    assert_ne!(h.circuit, Circuit::Open);
    // Nothing lost, nothing doubled: every acknowledged message is stored once, and the
    // poll pages run without a gap up to the cursor.
    assert_eq!(from_webhooks, acknowledged);
    // The poller keeps going while this reads: a page may be stored before its cursor.
    assert!(
        pages == cursor || pages == cursor + 1,
        "{pages} pages, cursor {cursor}"
    );
    for page in 0..cursor {
        assert!(
            stored.iter().any(|id| id.ends_with(&format!("-p{page}"))),
            "page {page} missing"
        );
    }
    assert_eq!(twitter, tweets.len());
}
