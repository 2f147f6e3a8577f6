//! The per-plugin limits of `PluginLimits`, enforced by the host on real components:
//! instance, table and memory caps when an instance starts, output caps on what a call
//! returns, the per-call log budget, and instances abandoned midway.

use std::time::Duration;

use centralino::Fault;
use centralino::capabilities::Grants;
use centralino::runtime::Error;
use centralino::runtime::{ChannelInstance, PluginLimits, Runtime};
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};

use crate::component;

fn channel(name: &str, limits: PluginLimits) -> ChannelInstance {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component(name))
        .unwrap();
    let config = ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: "TIM_Official".to_string(),
            ..AccountConfig::default()
        }],
    };
    plugin.instance(config, Grants::default(), limits)
}

fn delivery(body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn assert_fault(error: &Error, expected: Fault, detail: &str) {
    let Error::Fault { fault, .. } = error else {
        panic!("expected a fault, got {error:?}")
    };
    assert_eq!(*fault, expected, "{error}");
    let text = error.to_string();
    assert!(text.starts_with("plugin "), "{text}");
    assert!(text.contains("@0.1.0 "), "plugin and version named: {text}");
    assert!(text.contains(detail), "{text}");
}

#[tokio::test]
async fn instance_table_and_memory_caps_are_enforced_when_an_instance_starts() {
    // The limiter works without the pooling allocator: each cap below is under what the
    // echo-channel component needs, so it cannot start.
    let cases = [
        (
            PluginLimits {
                instances: 1,
                ..PluginLimits::default()
            },
            "instance count too high",
        ),
        (
            PluginLimits {
                tables: 0,
                ..PluginLimits::default()
            },
            "table count too high",
        ),
        (
            PluginLimits {
                memories: 0,
                ..PluginLimits::default()
            },
            "memory count too high",
        ),
        (
            PluginLimits {
                table_elements: 1,
                ..PluginLimits::default()
            },
            "exceeds table limits",
        ),
        (
            PluginLimits {
                memory_bytes: 64 << 10,
                ..PluginLimits::default()
            },
            "memory cap of 65536 bytes reached",
        ),
    ];
    for (limits, detail) in cases {
        let mut echo = channel("echo-channel", limits);
        let error = echo.ready().await.unwrap_err();
        assert_fault(&error, Fault::Instantiate, detail);
        assert!(
            error
                .to_string()
                .starts_with("plugin echo-channel@0.1.0 could not be instantiated"),
            "{error}"
        );
    }
    // With the defaults it starts.
    channel("echo-channel", PluginLimits::default())
        .ready()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_result_over_the_byte_cap_is_refused_and_the_instance_replaced() {
    let limits = PluginLimits {
        max_output_bytes: 64,
        ..PluginLimits::default()
    };
    let mut echo = channel("echo-channel", limits);
    let error = echo
        .handle_webhook(delivery(&format!("mario: {}", "a".repeat(100))))
        .await
        .unwrap_err();
    assert_fault(&error, Fault::OutputLimit, "max_output_bytes");
    assert!(
        error
            .to_string()
            .contains("echo-channel@0.1.0 exceeded an output limit in `handle-webhook`"),
        "{error}"
    );
    // A result within the cap goes through, on a fresh instance.
    let outcome = echo.handle_webhook(delivery("mario: ok")).await.unwrap();
    assert_eq!(outcome.messages.len(), 1);
    assert_eq!(echo.instances_started(), 2);
}

#[tokio::test]
async fn the_message_cap_counts_every_message_of_a_call() {
    let limits = PluginLimits {
        max_messages_per_call: 2,
        ..PluginLimits::default()
    };
    let mut hostile = channel("hostile-channel", limits);
    let two = hostile.handle_webhook(delivery("!flood 2")).await.unwrap();
    assert_eq!(two.messages.len(), 2);
    let error = hostile
        .handle_webhook(delivery("!flood 3"))
        .await
        .unwrap_err();
    assert_fault(
        &error,
        Fault::OutputLimit,
        "returned 3 messages in one call; the cap is 2 (max_messages_per_call)",
    );
}

#[tokio::test]
async fn the_log_budget_counts_bytes_too_and_is_renewed_every_call() {
    let limits = PluginLimits {
        log_bytes: 100,
        ..PluginLimits::default()
    };
    let mut hostile = channel("hostile-channel", limits);
    // Each line is ~27 bytes: three fit in 100 bytes, seven are dropped.
    hostile.handle_webhook(delivery("!log 10")).await.unwrap();
    assert_eq!(hostile.log_lines_dropped(), 7);
    let overflow = hostile.notes().last_log_overflow.clone().unwrap();
    assert!(overflow.contains("hostile-channel@0.1.0"), "{overflow}");
    assert!(overflow.contains("log_bytes"), "{overflow}");
    // A new call has a new budget.
    hostile.handle_webhook(delivery("!log 3")).await.unwrap();
    assert_eq!(hostile.log_lines_dropped(), 7);
}

#[tokio::test]
async fn a_call_abandoned_midway_gets_a_fresh_instance_next_time() {
    // A caller may drop a call's future (a client hung up, a task was aborted): the
    // instance may be mid-export, so the next call replaces it, and no fault is counted.
    let mut hostile = channel("hostile-channel", PluginLimits::default());
    hostile.ready().await.unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        hostile.handle_webhook(delivery("!loop")),
    )
    .await;
    assert!(abandoned.is_err(), "the loop was still running");
    let outcome = hostile
        .handle_webhook(delivery("mario: ciao"))
        .await
        .unwrap();
    assert_eq!(outcome.messages.len(), 1);
    assert_eq!(hostile.instances_started(), 2);
}
