//! The routing policy plugins one decision at a time, through real components.

use centralino::runtime::{PluginLimits, RouterInstance, Runtime};
use centralino::types::{Agent, Presence, RoutingAction, RoutingDecision};

use crate::{agent, component, context};

fn policy(name: &str, settings: &[(&str, &str)]) -> RouterInstance {
    let plugin = Runtime::new()
        .unwrap()
        .load_router(component(name))
        .unwrap();
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plugin.instance(settings, PluginLimits::default())
}

fn loaded(id: &str, load: u32, capacity: u32, last: Option<u64>) -> Agent {
    Agent {
        load,
        last_assigned_at: last,
        ..agent(id, capacity)
    }
}

fn narrowed(decision: &RoutingDecision) -> Vec<&str> {
    match &decision.action {
        RoutingAction::Narrow(ids) => ids.iter().map(String::as_str).collect(),
        other => panic!("expected narrow, got {other:?}"),
    }
}

#[tokio::test]
async fn least_loaded_prefers_the_lowest_load_ratio_not_the_lowest_load() {
    let mut router = policy("least-loaded", &[]);
    // Two of four seats (50%) beats one of one (100%) and one of two (50%, but assigned later).
    let agents = vec![
        loaded("full", 1, 1, Some(1)),
        loaded("half-recent", 1, 2, Some(50)),
        loaded("half", 2, 4, Some(10)),
        loaded("two-thirds", 2, 3, None),
    ];
    let decision = router.route(&context("ciao", agents, 100)).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("half".to_string()));
    assert_eq!(decision.reason, "least-loaded: half holds 2 of 4");
}

#[tokio::test]
async fn least_loaded_breaks_ties_by_least_recent_assignment_then_candidate_order() {
    let mut router = policy("least-loaded", &[]);
    let agents = vec![
        loaded("a", 1, 3, Some(30)),
        loaded("b", 1, 3, Some(20)),
        loaded("c", 1, 3, Some(20)),
    ];
    let decision = router.route(&context("x", agents, 100)).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("b".to_string()));
    let never = vec![loaded("a", 0, 3, Some(5)), loaded("n", 0, 3, None)];
    let decision = router.route(&context("x", never, 100)).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("n".to_string()));
}

#[tokio::test]
async fn least_loaded_queues_when_everyone_is_full_or_away() {
    let mut router = policy("least-loaded", &[]);
    let mut away = agent("away", 3);
    away.presence = Presence::Away;
    let agents = vec![away, loaded("full", 3, 3, None)];
    let decision = router.route(&context("x", agents, 1)).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Narrow(Vec::new()));
}

fn team() -> Vec<Agent> {
    let mut tim_en = agent("tim-en", 3);
    tim_en.languages.push("en".to_string());
    let mut other_brand = agent("ti", 3);
    other_brand.skills = vec!["telecom-italia".to_string()];
    let mut upper = agent("tim-upper", 3);
    upper.skills = vec!["TIM".to_string(), "fibra".to_string()];
    vec![agent("tim-it", 3), tim_en, other_brand, upper]
}

#[tokio::test]
async fn skills_keeps_only_the_brand_and_the_known_language() {
    let mut router = policy("skills", &[]);
    let decision = router.route(&context("x", team(), 1)).await.unwrap();
    assert_eq!(narrowed(&decision), ["tim-it", "tim-en", "tim-upper"]);
    let mut english = context("x", team(), 1);
    english.conversation.language = Some("en".to_string());
    let decision = router.route(&english).await.unwrap();
    assert_eq!(narrowed(&decision), ["tim-en"]);
    // Unknown brand and language: nobody is dropped.
    let mut unknown = context("x", team(), 1);
    unknown.conversation.brand = None;
    unknown.conversation.language = None;
    let decision = router.route(&unknown).await.unwrap();
    assert_eq!(narrowed(&decision).len(), 4);
}

#[tokio::test]
async fn skills_without_required_language_ranks_speakers_first() {
    let mut router = policy("skills", &[("require_language", "false")]);
    let mut english = context("x", team(), 1);
    english.conversation.language = Some("en".to_string());
    let decision = router.route(&english).await.unwrap();
    assert_eq!(narrowed(&decision), ["tim-en", "tim-it", "tim-upper"]);
}

fn returning(
    previous: &str,
    at: u64,
    now: u64,
    agents: Vec<Agent>,
) -> centralino::types::RoutingContext {
    let mut context = context("di nuovo io", agents, now);
    context.conversation.previous_agent = Some(previous.to_string());
    context.conversation.previous_agent_at = Some(at);
    context
}

#[tokio::test]
async fn sticky_assigns_the_previous_operator_only_when_recent_online_and_not_full() {
    let minute = 60_000;
    let now = 1_000 * minute;
    let mut router = policy("sticky", &[("window_minutes", "60")]);
    let agents = || vec![agent("a", 2), agent("b", 2)];
    let decision = router
        .route(&returning("b", now - 59 * minute, now, agents()))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("b".to_string()));

    let mut away = agents();
    away[1].presence = Presence::Away;
    let mut full = agents();
    full[1].load = 2;
    for (case, context, why) in [
        (
            "outside window",
            returning("b", now - 61 * minute, now, agents()),
            "outside the window",
        ),
        (
            "away",
            returning("b", now - minute, now, away),
            "not online",
        ),
        (
            "full",
            returning("b", now - minute, now, full),
            "at capacity",
        ),
        (
            "narrowed out",
            returning("z", now - minute, now, agents()),
            "not among the candidates",
        ),
    ] {
        let decision = router.route(&context).await.unwrap();
        assert_eq!(decision.action, RoutingAction::Pass, "{case}");
        assert!(decision.reason.contains(why), "{case}: {}", decision.reason);
    }
    let first_time = context("ciao", agents(), now);
    let decision = router.route(&first_time).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Pass);
}

#[tokio::test]
async fn sticky_defaults_to_a_one_day_window() {
    let hour = 3_600_000;
    let mut router = policy("sticky", &[]);
    let now = 100 * hour;
    let decision = router
        .route(&returning("a", now - 23 * hour, now, vec![agent("a", 1)]))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
    let decision = router
        .route(&returning("a", now - 25 * hour, now, vec![agent("a", 1)]))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Pass);
}

#[tokio::test]
async fn priority_matches_whole_words_ignoring_case_and_passes() {
    let mut router = policy("priority", &[]);
    for (text, urgent) in [
        ("la rete è DOWN!", true),
        ("#disservizio in zona Prati", true),
        ("Guasto alla linea", true),
        ("URGENTE", true),
        ("il download è lento", false),
        ("guastoni", false),
        ("fattura doppia", false),
    ] {
        let decision = router
            .route(&context(text, vec![agent("a", 1)], 1))
            .await
            .unwrap();
        assert_eq!(decision.action, RoutingAction::Pass, "{text}");
        assert_eq!(
            decision.priority,
            urgent.then_some(5),
            "{text}: {}",
            decision.reason
        );
    }
}

#[tokio::test]
async fn priority_compares_words_beyond_ascii_as_their_unicode_lower_case() {
    // Words are compared as their Unicode lower case, accents included: an accented
    // capital matches, an unaccented or differently accented letter does not.
    let mut router = policy(
        "priority",
        &[("keywords", "perché, città, Ü-Bahn"), ("level", "7")],
    );
    for (text, urgent) in [
        ("PERCHÉ non va?", true),
        ("in CITTÀ manca la rete", true),
        ("la ü bahn", true),
        ("Perché", true),
        ("perche non va", false),
        ("perchè non va", false),
        ("citta senza rete", false),
        ("ubahn", false),
    ] {
        let decision = router
            .route(&context(text, vec![agent("a", 1)], 1))
            .await
            .unwrap();
        assert_eq!(
            decision.priority,
            urgent.then_some(7),
            "{text}: {}",
            decision.reason
        );
    }
}

#[tokio::test]
async fn priority_keywords_and_level_are_configurable_and_never_lower_a_priority() {
    let mut router = policy(
        "priority",
        &[("keywords", "non funziona, bloccato"), ("level", "8")],
    );
    let decision = router
        .route(&context("Il modem NON funziona più", vec![], 1))
        .await
        .unwrap();
    assert_eq!(decision.priority, Some(8));
    assert!(
        decision.reason.contains("`non funziona`"),
        "{}",
        decision.reason
    );
    // The default words are replaced, not added to.
    let decision = router
        .route(&context("rete down", vec![], 1))
        .await
        .unwrap();
    assert_eq!(decision.priority, None);
    let mut already = context("conto bloccato", vec![], 1);
    already.conversation.priority = 9;
    let decision = router.route(&already).await.unwrap();
    assert_eq!(decision.priority, Some(9));
}

#[tokio::test]
async fn every_policy_rejects_unknown_and_malformed_settings_naming_the_key() {
    let cases = [
        (
            "least-loaded",
            ("weights", "1"),
            "least-loaded takes no settings, got `weights`",
        ),
        (
            "skills",
            ("brand", "tim"),
            "skills: unknown setting `brand`",
        ),
        (
            "skills",
            ("require_language", "maybe"),
            "`require_language` must be `true` or `false`, got `maybe`",
        ),
        (
            "sticky",
            ("window", "60"),
            "sticky: unknown setting `window`",
        ),
        (
            "sticky",
            ("window_minutes", "an hour"),
            "`window_minutes` must be a whole number of minutes",
        ),
        (
            "priority",
            ("words", "x"),
            "priority: unknown setting `words`",
        ),
        (
            "priority",
            ("level", "0"),
            "`level` must be a number from 1 to 255, got `0`",
        ),
        ("priority", ("keywords", " , "), "`keywords` lists no word"),
    ];
    for (name, (key, value), expected) in cases {
        let mut router = policy(name, &[(key, value)]);
        let err = router.ready().await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "plugin {name}@0.1.0 failed in `configure`: invalid input: "
            )),
            "{err}"
        );
        assert!(err.contains(expected), "{name} {key}={value}: {err}");
    }
}

/// What `hostile-router` writes for an agent in `echo` mode.
fn echoed(a: &Agent) -> String {
    let presence = match a.presence {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Offline => "offline",
    };
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{presence}|{:?}",
        a.id,
        a.name,
        a.skills.join(","),
        a.languages.join(","),
        a.accounts.join(","),
        a.capacity,
        a.load,
        a.last_assigned_at
    )
}

#[tokio::test]
async fn the_roster_reaches_a_policy_exactly_as_the_host_holds_it() {
    // The host lowers the roster into the guest by hand (one copy per list); every field
    // of every agent must arrive as it is, whatever the sizes.
    let runtime = Runtime::new().unwrap();
    let policy = runtime.load_router(component("hostile-router")).unwrap();
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    let mut odd = agent("zoë", u32::MAX);
    odd.name = "Zoë Ünal — 客服 🎧".to_string();
    odd.skills = Vec::new();
    odd.languages = vec![String::new(), "it".to_string()];
    odd.accounts = Vec::new();
    odd.load = u32::MAX - 1;
    odd.presence = Presence::Away;
    odd.last_assigned_at = Some(u64::MAX);
    let mut busy = agent("marco", 3);
    busy.skills = (0..40).map(|n| format!("skill-{n}")).collect();
    busy.presence = Presence::Offline;
    busy.last_assigned_at = Some(1_795_000_000_000);
    let rosters = [
        Vec::new(),
        vec![odd.clone()],
        vec![busy.clone(), odd.clone(), agent("giulia", 2)],
        (0..200)
            .map(|n| {
                let mut a = agent(&format!("op-{n}"), n);
                a.load = n / 2;
                a.last_assigned_at = (n % 3 == 0).then_some(u64::from(n) * 1000);
                a
            })
            .collect(),
    ];
    for agents in rosters {
        let decision = router
            .route(&context("echo", agents.clone(), 7))
            .await
            .unwrap();
        assert_eq!(decision.action, RoutingAction::Pass);
        let expected: Vec<String> = agents.iter().map(echoed).collect();
        assert_eq!(decision.reason, expected.join("\n"));
    }
}
