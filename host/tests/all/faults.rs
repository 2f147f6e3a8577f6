use std::time::{Duration, Instant};

use centralino::Fault;
use centralino::runtime::Error;
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::RoutingAction;

use crate::{agent, component, context};

fn hostile() -> centralino::runtime::RouterInstance {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("hostile-router"))
        .unwrap();
    policy.instance(Vec::new(), PluginLimits::default())
}

#[tokio::test]
async fn a_panicking_guest_is_reported_by_name_and_replaced_by_a_fresh_instance() {
    let mut router = hostile();
    let err = router
        .route(&context("panic", vec![agent("a", 1)], 1))
        .await
        .unwrap_err();
    let Error::Fault {
        plugin,
        function,
        fault,
        detail,
    } = &err
    else {
        panic!("expected a fault, got {err:?}")
    };
    assert_eq!(plugin.to_string(), "hostile-router@0.1.0");
    assert_eq!(*function, "route");
    assert_eq!(*fault, Fault::Trap);
    assert!(
        detail.contains("hostile-router was asked to panic"),
        "the guest's panic message is kept: {detail}"
    );
    assert!(
        err.to_string()
            .starts_with("plugin hostile-router@0.1.0 trapped in `route`"),
        "{err}"
    );

    // The next call runs on a fresh instance and succeeds.
    let decision = router
        .route(&context("ciao", vec![agent("a", 1)], 2))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
    assert_eq!(router.instances_started(), 2);
}

#[tokio::test]
async fn an_endless_loop_is_cut_off_at_the_call_deadline() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("hostile-router"))
        .unwrap();
    let limits = PluginLimits {
        call_deadline: Duration::from_millis(100),
        ..PluginLimits::default()
    };
    let mut router = policy.instance(Vec::new(), limits);
    router.ready().await.unwrap();
    let started = Instant::now();
    let err = router
        .route(&context("loop", vec![agent("a", 1)], 1))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            Error::Fault {
                fault: Fault::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("ran past its deadline"), "{err}");
    // Generous bound: the point is that it ends at all, not how precisely.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let decision = router
        .route(&context("ciao", vec![agent("a", 1)], 2))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
}

#[tokio::test]
async fn a_memory_bomb_stops_at_the_memory_cap() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("hostile-router"))
        .unwrap();
    let limits = PluginLimits {
        memory_bytes: 16 << 20,
        ..PluginLimits::default()
    };
    let mut router = policy.instance(Vec::new(), limits);
    let err = router
        .route(&context("bomb", vec![agent("a", 1)], 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Fault {
                fault: Fault::MemoryLimit,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("hostile-router@0.1.0 exceeded its memory limit"),
        "{err}"
    );
    let decision = router
        .route(&context("ciao", vec![agent("a", 1)], 2))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
}

#[tokio::test]
async fn guest_output_counts_against_its_log_budget() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("hostile-router"))
        .unwrap();
    let limits = PluginLimits {
        log_lines: 1,
        ..PluginLimits::default()
    };
    let mut router = policy.instance(Vec::new(), limits);
    // Two lines (stdout and stderr) against a budget of one: one is dropped and counted.
    router
        .route(&context("stdout", vec![agent("a", 1)], 1))
        .await
        .unwrap();
    assert_eq!(router.log_lines_dropped(), 1);
}
