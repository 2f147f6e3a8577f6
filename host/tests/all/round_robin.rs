use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{Presence, RoutingAction};

use crate::{agent, component, context};

fn assigned(action: &RoutingAction) -> &str {
    match action {
        RoutingAction::Assign(id) => id,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[tokio::test]
async fn round_robin_rotates_fairly_over_a_long_sequence() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("round-robin"))
        .unwrap();
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    let mut agents: Vec<_> = [
        "marco",
        "giulia",
        "luca",
        "sara",
        "paolo",
        "chiara",
        "andrea",
        "francesca",
        "roberto",
    ]
    .iter()
    .map(|id| agent(id, 1000))
    .collect();
    let mut counts = vec![0u32; agents.len()];
    let mut order = Vec::new();
    for step in 0..900u64 {
        let now = 1_700_000_000_000 + step * 1000;
        let decision = router
            .route(&context("il mio modem non va", agents.clone(), now))
            .await
            .unwrap();
        let id = assigned(&decision.action).to_string();
        let index = agents.iter().position(|a| a.id == id).unwrap();
        agents[index].last_assigned_at = Some(now);
        agents[index].load += 1;
        counts[index] += 1;
        if step < 9 {
            order.push(id);
        }
    }
    // Each of the nine gets exactly 100, and the first round visits everyone in order.
    assert_eq!(counts, vec![100; 9]);
    assert_eq!(
        order,
        agents.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn round_robin_skips_operators_who_are_away_or_full() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("round-robin"))
        .unwrap();
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    let mut away = agent("away", 3);
    away.presence = Presence::Away;
    let mut full = agent("full", 2);
    full.load = 2;
    let mut offline = agent("offline", 3);
    offline.presence = Presence::Offline;
    let free = agent("free", 3);
    let decision = router
        .route(&context("ciao", vec![away, full, offline, free], 1))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("free".to_string()));
}

#[tokio::test]
async fn round_robin_queues_when_nobody_has_capacity() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("round-robin"))
        .unwrap();
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    let mut full = agent("full", 1);
    full.load = 1;
    let decision = router.route(&context("ciao", vec![full], 1)).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Narrow(Vec::new()));
    assert!(
        decision.reason.contains("nobody online with free capacity"),
        "{}",
        decision.reason
    );
}

#[tokio::test]
async fn round_robin_rejects_unknown_settings_naming_the_plugin() {
    let policy = Runtime::new()
        .unwrap()
        .load_router(component("round-robin"))
        .unwrap();
    let mut router = policy.instance(
        vec![("weights".to_string(), "1,2".to_string())],
        PluginLimits::default(),
    );
    let err = router
        .route(&context("ciao", vec![agent("a", 1)], 1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin round-robin@0.1.0 failed in `configure`: invalid input: round-robin takes no settings, got `weights`"
    );
}
