//! The routing engine with real policy components, on simulated time: fairness,
//! capacity, skills, stickiness, priority, offer timeouts, queue draining, faults,
//! threading, ownership, shadow routing and wait estimates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use centralino::routing::{
    ChainSpec, ConversationNumber, CustomerMessage, ManualClock, Notice, Operator, PolicyChain,
    RoutingEngine, RoutingError, Status, WaitEstimate,
};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{MessageKind, Presence};

use crate::component;

/// Monday 2026-03-02, 09:00 UTC.
pub const T0: u64 = 1_772_442_000_000;
const MINUTE: u64 = 60_000;

pub fn plugin_dir() -> PathBuf {
    component("round-robin").parent().unwrap().to_path_buf()
}

/// Loads a chain of real components, e.g. `"priority > skills > least-loaded"`.
pub async fn chain(spec: &str) -> PolicyChain {
    let spec: ChainSpec = spec.parse().unwrap();
    PolicyChain::load(
        &Runtime::new().unwrap(),
        &spec,
        &plugin_dir(),
        &PluginLimits::default(),
    )
    .await
    .unwrap()
}

pub fn engine(chain: PolicyChain, clock: &ManualClock) -> RoutingEngine {
    RoutingEngine::builder(chain).clock(clock.clone()).build()
}

pub const BRANDS: [(&str, &str, [&str; 3]); 3] = [
    ("tim", "TIM_Official", ["marco", "giulia", "luca"]),
    (
        "telecom-italia",
        "TelecomItalia",
        ["sara", "paolo", "chiara"],
    ),
    (
        "impresa-semplice",
        "ImpresaSemplice",
        ["andrea", "francesca", "roberto"],
    ),
];

/// The nine operators of the telecom scenario; the second of each brand also speaks English.
pub fn telecom_operators(capacity: u32) -> Vec<Operator> {
    BRANDS
        .iter()
        .flat_map(|(brand, _, names)| {
            names.iter().enumerate().map(move |(index, name)| {
                let languages: &[&str] = if index == 1 { &["it", "en"] } else { &["it"] };
                Operator::new(*name, capacity)
                    .skills([*brand])
                    .languages(languages.iter().copied())
                    .account("twitter", format!("TIM_{name}"))
            })
        })
        .collect()
}

pub fn brand_of(operator: &str) -> &'static str {
    BRANDS
        .iter()
        .find(|(_, _, names)| names.contains(&operator))
        .map(|(brand, _, _)| *brand)
        .unwrap()
}

pub fn tweet(key: &str, brand: usize, customer: &str, text: &str) -> CustomerMessage {
    let (brand, account, _) = BRANDS[brand];
    CustomerMessage {
        channel: "twitter".to_string(),
        account: account.to_string(),
        conversation_key: key.to_string(),
        customer: customer.to_string(),
        brand: Some(brand.to_string()),
        language: Some("it".to_string()),
        kind: MessageKind::PublicPost,
        text: format!("@{account} {text}"),
    }
}

async fn add_all(engine: &mut RoutingEngine, operators: Vec<Operator>, presence: Presence) {
    for operator in operators {
        engine.add_operator(operator, presence).await;
    }
}

fn assigned_to(notices: &[Notice]) -> Vec<(ConversationNumber, String)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Assigned {
                conversation,
                operator,
                ..
            } => Some((*conversation, operator.clone())),
            _ => None,
        })
        .collect()
}

/// Capacity holds, and each operator's load is exactly the conversations they hold.
fn assert_loads_consistent(engine: &RoutingEngine) {
    for (operator, state) in engine.roster().iter() {
        let held = engine
            .conversations()
            .iter()
            .filter(|c| {
                c.status == Status::Assigned && c.assignee.as_deref() == Some(operator.id.as_str())
            })
            .count();
        assert!(
            state.load <= operator.capacity,
            "{} holds {} of {}",
            operator.id,
            state.load,
            operator.capacity
        );
        assert_eq!(state.load as usize, held, "{}'s load", operator.id);
    }
}

/// Deterministic handling times, 2 to 8 minutes.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        low + (self.0 >> 33) % (high - low)
    }
}

/// Drives a stream of arrivals through the engine: each assigned conversation gets a
/// reply at once and is resolved after its handling time. Returns assignments per operator.
async fn simulate(
    engine: &mut RoutingEngine,
    clock: &ManualClock,
    arrivals: &[(u64, CustomerMessage)],
    handling: (u64, u64),
    mut check: impl FnMut(&RoutingEngine, &[Notice]),
) -> BTreeMap<String, u32> {
    let mut rng = Lcg(0x5eed);
    let mut counts = BTreeMap::new();
    let mut due: Vec<(u64, ConversationNumber)> = Vec::new();
    let mut next = 0;
    loop {
        let next_arrival = arrivals.get(next).map(|(at, _)| *at);
        let next_due = due.iter().map(|(at, _)| *at).min();
        let Some(now) = [next_arrival, next_due].into_iter().flatten().min() else {
            break;
        };
        clock.set(now);
        let notices = if next_due == Some(now) {
            let index = due.iter().position(|(at, _)| *at == now).unwrap();
            let (_, id) = due.swap_remove(index);
            engine.resolve(id).await.unwrap()
        } else {
            let message = arrivals[next].1.clone();
            next += 1;
            engine.receive(message).await.notices
        };
        check(engine, &notices);
        for (id, operator) in assigned_to(&notices) {
            *counts.entry(operator.clone()).or_insert(0) += 1;
            engine.record_reply(id, &operator).unwrap();
            due.push((now + rng.next(handling.0, handling.1), id));
        }
    }
    counts
}

#[tokio::test]
async fn round_robin_through_the_engine_stays_within_one_of_equal_over_900_conversations() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("round-robin").await, &clock);
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    // A customer every 20 s for five hours, across all brands; handling 2 to 8 minutes
    // keeps about 15 of the 27 seats busy, so operators are sometimes full and skipped.
    let arrivals: Vec<(u64, CustomerMessage)> = (0..900u64)
        .map(|i| {
            let message = tweet(&format!("t{i}"), (i % 3) as usize, &format!("c{i}"), "ciao");
            (T0 + i * 20_000, message)
        })
        .collect();
    let counts = simulate(
        &mut engine,
        &clock,
        &arrivals,
        (2 * MINUTE, 8 * MINUTE),
        |engine, _| assert_loads_consistent(engine),
    )
    .await;
    assert_eq!(counts.len(), 9);
    assert_eq!(counts.values().sum::<u32>(), 900);
    for (operator, count) in &counts {
        assert!(
            (99..=101).contains(count),
            "{operator}: {count} of 900 ({counts:?})"
        );
    }
    assert_eq!(engine.stats().queued, 0, "nobody waited at this volume");
}

#[tokio::test]
async fn capacity_is_never_exceeded_during_an_outage_burst() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("priority > skills > least-loaded").await, &clock);
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    // 300 conversations in 10 minutes (an outage), handled in 4 to 10 minutes each:
    // far more than 27 seats, so most wait.
    let texts = [
        "fibra down in zona Prati",
        "il modem non va",
        "GUASTO linea fissa",
    ];
    let arrivals: Vec<(u64, CustomerMessage)> = (0..300u64)
        .map(|i| {
            let text = texts[((i / 3) % 3) as usize];
            let message = tweet(&format!("t{i}"), (i % 3) as usize, &format!("c{i}"), text);
            (T0 + i * 2_000, message)
        })
        .collect();
    let counts = simulate(
        &mut engine,
        &clock,
        &arrivals,
        (4 * MINUTE, 10 * MINUTE),
        |engine, notices| {
            assert_loads_consistent(engine);
            for (id, operator) in assigned_to(notices) {
                let brand = engine.conversation(id).unwrap().brand.clone().unwrap();
                assert_eq!(brand_of(&operator), brand, "{id} went to {operator}");
            }
        },
    )
    .await;
    // Nothing is lost: every conversation was assigned once and resolved.
    assert_eq!(counts.values().sum::<u32>(), 300);
    assert!(engine.queue().is_empty());
    assert!(
        engine
            .conversations()
            .iter()
            .all(|c| c.status == Status::Resolved && c.offers == 1)
    );
    let stats = engine.stats();
    assert!(
        stats.queue_peak > 100,
        "the burst overran the seats: {stats:?}"
    );
    assert_eq!(stats.stage_failures, 0);
}

#[tokio::test]
async fn skills_and_brand_are_respected_including_language() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("skills > least-loaded").await, &clock);
    add_all(&mut engine, telecom_operators(4), Presence::Online).await;
    let arrivals: Vec<(u64, CustomerMessage)> = (0..270u64)
        .map(|i| {
            let mut message = tweet(&format!("t{i}"), (i % 3) as usize, &format!("c{i}"), "help");
            if i % 7 == 0 {
                message.language = Some("en".to_string());
            }
            (T0 + i * 30_000, message)
        })
        .collect();
    let mut english = 0;
    simulate(
        &mut engine,
        &clock,
        &arrivals,
        (2 * MINUTE, 6 * MINUTE),
        |engine, notices| {
            for (id, operator) in assigned_to(notices) {
                let conversation = engine.conversation(id).unwrap();
                let op = engine.roster().operator(&operator).unwrap();
                assert!(op.skills.contains(conversation.brand.as_ref().unwrap()));
                let language = conversation.language.clone().unwrap();
                assert!(
                    op.languages.contains(&language),
                    "{id} ({language}) to {operator}"
                );
                if language == "en" {
                    english += 1;
                    assert!(["giulia", "paolo", "francesca"].contains(&operator.as_str()));
                }
            }
        },
    )
    .await;
    assert_eq!(english, 39);

    // A brand nobody serves waits rather than going to the wrong team.
    let mut stray = tweet("stray", 0, "c-stray", "ciao");
    stray.brand = Some("kena-mobile".to_string());
    let arrival = engine.receive(stray).await;
    assert!(
        matches!(&arrival.notices[..], [Notice::Queued { reason, .. }] if reason.contains("0 of 9")),
        "{:?}",
        arrival.notices
    );
}

/// One customer, helped by someone, writes again on a new thread.
async fn first_contact(engine: &mut RoutingEngine, customer: &str) -> String {
    let arrival = engine
        .receive(tweet(
            &format!("{customer}-1"),
            0,
            customer,
            "il modem non va",
        ))
        .await;
    let (id, operator) = assigned_to(&arrival.notices).pop().unwrap();
    engine.record_reply(id, &operator).unwrap();
    engine.resolve(id).await.unwrap();
    operator
}

#[tokio::test]
async fn stickiness_holds_inside_its_window_for_every_returning_customer() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(
        chain("sticky(window_minutes=60) > skills > round-robin").await,
        &clock,
    );
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    let mut first = Vec::new();
    for i in 0..90 {
        clock.advance(Duration::from_secs(20));
        first.push(first_contact(&mut engine, &format!("cust{i}")).await);
    }
    // Round-robin spread them over the three TIM operators.
    assert_eq!(first.iter().filter(|o| *o == "marco").count(), 30);
    clock.advance(Duration::from_secs(30 * 60));
    for (i, operator) in first.iter().enumerate() {
        let customer = format!("cust{i}");
        let arrival = engine
            .receive(tweet(&format!("{customer}-2"), 0, &customer, "di nuovo io"))
            .await;
        let (id, again) = assigned_to(&arrival.notices).pop().unwrap();
        assert_eq!(&again, operator, "{customer} went back to {again}");
        engine.resolve(id).await.unwrap();
    }
}

#[tokio::test]
async fn stickiness_yields_when_the_operator_is_away_or_the_window_has_passed() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(
        chain("sticky(window_minutes=60) > skills > round-robin").await,
        &clock,
    );
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    let helper = first_contact(&mut engine, "rossi").await;

    // Away: the customer is not kept waiting for them.
    clock.advance(Duration::from_secs(10 * 60));
    engine.set_presence(&helper, Presence::Away).await.unwrap();
    let arrival = engine
        .receive(tweet("rossi-2", 0, "rossi", "ancora io"))
        .await;
    let (id, other) = assigned_to(&arrival.notices).pop().unwrap();
    assert_ne!(other, helper);
    assert_eq!(brand_of(&other), "tim");
    engine.record_reply(id, &other).unwrap();
    engine.resolve(id).await.unwrap();

    // Now `other` helped last. Back online, but past the window: rotation decides, and it
    // picks whoever was assigned longest ago rather than either previous helper.
    engine
        .set_presence(&helper, Presence::Online)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61 * 60));
    let arrival = engine
        .receive(tweet("rossi-3", 0, "rossi", "e ancora"))
        .await;
    let (_, third) = assigned_to(&arrival.notices).pop().unwrap();
    assert_ne!(
        third, other,
        "outside the window stickiness no longer applies"
    );
    assert_ne!(third, helper);
}

#[tokio::test]
async fn priority_conversations_jump_the_queue() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("priority > round-robin").await, &clock);
    add_all(
        &mut engine,
        vec![Operator::new("marco", 1)],
        Presence::Online,
    )
    .await;
    let busy = engine.receive(tweet("t0", 0, "c0", "fattura")).await;
    let (busy, _) = assigned_to(&busy.notices).pop().unwrap();
    let mut waiting = Vec::new();
    for i in 1..=5 {
        clock.advance(Duration::from_secs(60));
        let arrival = engine
            .receive(tweet(
                &format!("t{i}"),
                0,
                &format!("c{i}"),
                "domanda sulla fattura",
            ))
            .await;
        waiting.push(arrival.conversation);
    }
    clock.advance(Duration::from_secs(60));
    let urgent = engine
        .receive(tweet("t9", 0, "c9", "Rete DOWN in tutto il quartiere!"))
        .await;
    match &urgent.notices[..] {
        [Notice::Queued { estimate, .. }] => assert_eq!(estimate.position(), 1),
        other => panic!("expected the urgent one at the head of the queue: {other:?}"),
    }
    assert_eq!(
        engine.conversation(urgent.conversation).unwrap().priority,
        5
    );

    // The first free seat goes to the urgent one, then the others in arrival order.
    let mut served = Vec::new();
    let mut holding = busy;
    for _ in 0..6 {
        clock.advance(Duration::from_secs(120));
        let notices = engine.resolve(holding).await.unwrap();
        let (next, _) = assigned_to(&notices).pop().unwrap();
        served.push(next);
        holding = next;
    }
    let mut expected = vec![urgent.conversation];
    expected.extend(waiting);
    assert_eq!(served, expected);
}

#[tokio::test]
async fn an_unanswered_offer_is_rerouted_to_the_next_best_operator_after_the_timeout() {
    let clock = ManualClock::new(T0);
    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await)
        .clock(clock.clone())
        .offer_timeout(Duration::from_secs(5 * 60))
        .build();
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    let lost = engine.receive(tweet("t1", 0, "c1", "modem")).await;
    let (lost, first) = assigned_to(&lost.notices).pop().unwrap();
    let kept = engine.receive(tweet("t2", 0, "c2", "fibra")).await;
    let (kept, keeper) = assigned_to(&kept.notices).pop().unwrap();
    assert_ne!(first, keeper);
    clock.advance(Duration::from_secs(60));
    engine.record_reply(kept, &keeper).unwrap();
    assert_eq!(engine.next_deadline(), Some(T0 + 5 * MINUTE));

    clock.advance(Duration::from_secs(3 * 60));
    assert!(engine.tick().await.is_empty(), "not yet");
    clock.set(T0 + 5 * MINUTE);
    let notices = engine.tick().await;
    let [
        Notice::OfferExpired {
            conversation,
            operator,
        },
        Notice::Assigned {
            operator: next,
            rerouted_from,
            ..
        },
    ] = &notices[..]
    else {
        panic!("expected expiry then re-route: {notices:?}");
    };
    assert_eq!((*conversation, operator.as_str()), (lost, first.as_str()));
    assert_eq!(rerouted_from.as_deref(), Some(first.as_str()));
    // The next best TIM operator: not the one who let it lapse, and the least loaded.
    assert_ne!(next, &first);
    assert_ne!(next, &keeper);
    assert_eq!(brand_of(next), "tim");
    assert_eq!(engine.roster().state(&first).unwrap().load, 0);
    let err = engine.record_reply(lost, &first).unwrap_err();
    assert!(matches!(err, RoutingError::NotAssignee { .. }), "{err}");
    // The answered conversation stayed; the customer's wait is counted from the start.
    assert_eq!(
        engine.conversation(kept).unwrap().assignee.as_deref(),
        Some(keeper.as_str())
    );
    assert_eq!(engine.stats().offer_timeouts, 1);
    assert_eq!(engine.conversation(lost).unwrap().offers, 2);
    assert_loads_consistent(&engine);
}

#[tokio::test]
async fn a_team_of_one_gets_a_timed_out_conversation_back_once_the_exclusion_lapses() {
    let clock = ManualClock::new(T0);
    let mut engine = RoutingEngine::builder(chain("least-loaded").await)
        .clock(clock.clone())
        .offer_timeout(Duration::from_secs(5 * 60))
        .build();
    add_all(
        &mut engine,
        vec![Operator::new("solo", 2)],
        Presence::Online,
    )
    .await;
    let arrival = engine.receive(tweet("t1", 0, "c1", "modem")).await;
    clock.set(T0 + 5 * MINUTE);
    let notices = engine.tick().await;
    assert!(
        matches!(
            &notices[..],
            [Notice::OfferExpired { .. }, Notice::Queued { .. }]
        ),
        "{notices:?}"
    );
    assert_eq!(engine.next_deadline(), Some(T0 + 10 * MINUTE));
    clock.set(T0 + 10 * MINUTE);
    let notices = engine.tick().await;
    assert_eq!(
        assigned_to(&notices),
        vec![(arrival.conversation, "solo".to_string())]
    );
}

#[tokio::test]
async fn an_operator_coming_online_drains_the_queue() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("least-loaded").await, &clock);
    add_all(&mut engine, telecom_operators(3), Presence::Offline).await;
    let mut waiting = Vec::new();
    for i in 0..20 {
        clock.advance(Duration::from_secs(15));
        let arrival = engine
            .receive(tweet(&format!("t{i}"), i % 3, &format!("c{i}"), "ciao"))
            .await;
        let [Notice::Queued { estimate, .. }] = &arrival.notices[..] else {
            panic!("{:?}", arrival.notices);
        };
        // The place counts the brand's waiting customers (three brands, in turn).
        assert_eq!(
            estimate,
            &WaitEstimate::NobodyAtWork {
                position: i / 3 + 1
            }
        );
        waiting.push(arrival.conversation);
    }
    // Marco arrives: he takes three, the three who waited longest.
    let notices = engine
        .set_presence("marco", Presence::Online)
        .await
        .unwrap();
    let taken: Vec<ConversationNumber> = assigned_to(&notices)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(taken, waiting[..3]);
    assert_eq!(engine.queue().len(), 17);
    // Five more arrive: fifteen more seats.
    for name in ["giulia", "luca", "sara", "paolo", "chiara"] {
        engine.set_presence(name, Presence::Online).await.unwrap();
    }
    assert_eq!(engine.queue().len(), 2);
    let notices = engine
        .set_presence("andrea", Presence::Online)
        .await
        .unwrap();
    assert_eq!(assigned_to(&notices).len(), 2);
    assert!(engine.queue().is_empty());
    assert_loads_consistent(&engine);
}

#[tokio::test]
async fn a_shift_starting_drains_the_queue_on_tick() {
    let clock = ManualClock::new(T0 - 30 * MINUTE); // 08:30 UTC, 09:30 in Rome
    let mut engine = engine(chain("least-loaded").await, &clock);
    let hours = serde_json::from_str(r#"{"utc_offset_minutes":60,"mon":["10:00-18:00"]}"#).unwrap();
    let operator = Operator::new("marco", 3).hours(hours);
    // Online but before the shift: counts as away.
    engine.add_operator(operator, Presence::Online).await;
    let arrival = engine.receive(tweet("t1", 0, "c1", "ciao")).await;
    assert!(matches!(arrival.notices[..], [Notice::Queued { .. }]));
    assert_eq!(engine.next_deadline(), Some(T0), "10:00 in Rome");
    clock.set(T0);
    let notices = engine.tick().await;
    assert_eq!(
        assigned_to(&notices),
        vec![(arrival.conversation, "marco".to_string())]
    );
}

#[tokio::test]
async fn a_faulting_stage_does_not_lose_the_conversation() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("hostile-router > round-robin").await, &clock);
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    let arrival = engine.receive(tweet("t1", 0, "c1", "x")).await;
    // The hostile stage answers normally for ordinary text (first candidate).
    assert_eq!(assigned_to(&arrival.notices)[0].1, "marco");
    // It traps on "panic": logged, counted, treated as pass; round-robin places it.
    let mut panic = tweet("t2", 0, "c2", "");
    panic.text = "panic".to_string();
    let arrival = engine.receive(panic).await;
    let [
        Notice::Assigned {
            operator, reason, ..
        },
    ] = &arrival.notices[..]
    else {
        panic!("{:?}", arrival.notices);
    };
    assert_eq!(operator, "giulia");
    assert!(reason.starts_with("round-robin"), "{reason}");
    assert_eq!(engine.stats().stage_failures, 1);
    assert_eq!(
        engine.chain().failures()[0],
        ("hostile-router@0.1.0".to_string(), 1)
    );

    // A chain of only the faulting stage still places it, at the chain's end.
    let mut alone = engine_with("hostile-router", &clock).await;
    let mut panic = tweet("t3", 0, "c3", "");
    panic.text = "panic".to_string();
    let arrival = alone.receive(panic).await;
    let [Notice::Assigned { reason, .. }] = &arrival.notices[..] else {
        panic!("{:?}", arrival.notices);
    };
    assert!(reason.starts_with("chain end"), "{reason}");
}

#[tokio::test]
async fn a_stage_that_keeps_failing_rests_then_gets_a_trial() {
    let clock = ManualClock::new(T0);
    let mut engine = engine_with("hostile-router > round-robin", &clock).await;
    let message = |id: &str, customer: &str, text: &str| {
        let mut m = tweet(id, 0, customer, "");
        m.text = text.to_string();
        m
    };
    let reason = |notices: &[Notice]| match notices {
        [Notice::Assigned { reason, .. }] => reason.clone(),
        other => panic!("{other:?}"),
    };
    // Three traps in a row: each placed by round-robin, then the stage rests.
    for n in 0..3 {
        let arrival = engine
            .receive(message(&format!("p{n}"), &format!("c{n}"), "panic"))
            .await;
        assert!(reason(&arrival.notices).starts_with("round-robin"));
    }
    assert_eq!(engine.chain().failures()[0].1, 3);

    // Resting: not called at all (it would have assigned its first candidate itself).
    let arrival = engine.receive(message("n1", "c10", "ciao")).await;
    assert!(reason(&arrival.notices).starts_with("round-robin"));
    assert_eq!(engine.chain().failures()[0].1, 3);

    // After its first rest (1 s on the decisions' clock) it gets a trial, answers, and
    // takes part again.
    clock.set(T0 + 1_000);
    let arrival = engine.receive(message("n2", "c11", "ciao")).await;
    assert!(
        reason(&arrival.notices).starts_with("hostile-router"),
        "{:?}",
        arrival.notices
    );
    // A single failure after that does not make it rest.
    engine.receive(message("p3", "c12", "panic")).await;
    let arrival = engine.receive(message("n3", "c13", "ciao")).await;
    assert!(reason(&arrival.notices).starts_with("hostile-router"));
}

async fn engine_with(spec: &str, clock: &ManualClock) -> RoutingEngine {
    let mut engine = engine(chain(spec).await, clock);
    add_all(&mut engine, telecom_operators(3), Presence::Online).await;
    engine
}

#[tokio::test]
async fn a_customer_message_on_an_open_thread_joins_its_conversation() {
    let clock = ManualClock::new(T0);
    let mut engine = engine_with("round-robin", &clock).await;
    let first = engine
        .receive(tweet("t1", 0, "c1", "il modem non va"))
        .await;
    assert!(!first.joined);
    for text in ["ci siete?", "ancora niente"] {
        clock.advance(Duration::from_secs(60));
        let again = engine.receive(tweet("t1", 0, "c1", text)).await;
        assert!(again.joined);
        assert_eq!(again.conversation, first.conversation);
        assert!(again.notices.is_empty(), "it stays with its operator");
    }
    let conversation = engine.conversation(first.conversation).unwrap();
    assert_eq!(conversation.messages, 3);
    assert!(conversation.last_text.ends_with("ancora niente"));
    assert_eq!(engine.conversations().len(), 1);
    assert_eq!(engine.stats().assignments, 1);

    // After resolution the thread opens a new conversation.
    engine.resolve(first.conversation).await.unwrap();
    let later = engine.receive(tweet("t1", 0, "c1", "di nuovo")).await;
    assert!(!later.joined);
    assert_ne!(later.conversation, first.conversation);
}

#[tokio::test]
async fn only_the_assignee_may_reply_unless_the_conversation_was_transferred() {
    let clock = ManualClock::new(T0);
    let mut engine = engine_with("skills > round-robin", &clock).await;
    let arrival = engine.receive(tweet("t1", 0, "c1", "modem")).await;
    let (id, owner) = assigned_to(&arrival.notices).pop().unwrap();
    let err = engine.record_reply(id, "giulia").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("giulia may not reply to {id}: it is assigned to {owner}")
    );
    assert!(engine.conversation(id).unwrap().first_response_at.is_none());

    engine.transfer(id, "giulia").await.unwrap();
    assert_eq!(engine.roster().state(&owner).unwrap().load, 0);
    assert_eq!(engine.roster().state("giulia").unwrap().load, 1);
    // Transferred: shared work, others may reply too.
    engine.record_reply(id, &owner).unwrap();
    engine.record_reply(id, "giulia").unwrap();
    let err = engine.record_reply(id, "nobody").unwrap_err();
    assert!(matches!(err, RoutingError::UnknownOperator(_)), "{err}");
    engine.resolve(id).await.unwrap();
    let err = engine.record_reply(id, "giulia").unwrap_err();
    assert!(matches!(err, RoutingError::Resolved(_)), "{err}");
}

#[tokio::test]
async fn replies_go_out_from_the_operators_own_account_on_twitter_else_from_the_brand_account() {
    let clock = ManualClock::new(T0);
    let mut engine = engine_with("skills > round-robin", &clock).await;
    let arrival = engine.receive(tweet("t1", 0, "c1", "modem")).await;
    let (id, owner) = assigned_to(&arrival.notices).pop().unwrap();
    let route = engine.record_reply(id, &owner).unwrap();
    assert_eq!(route.account, format!("TIM_{owner}"));
    assert!(route.personal);

    let mut page = tweet("fb-1", 0, "c2", "la fattura");
    page.channel = "facebook".to_string();
    page.account = "TIMItaliaPage".to_string();
    page.kind = MessageKind::PrivateMessage;
    let arrival = engine.receive(page).await;
    let (id, owner) = assigned_to(&arrival.notices).pop().unwrap();
    let route = engine.record_reply(id, &owner).unwrap();
    assert_eq!(route.account, "TIMItaliaPage");
    assert!(!route.personal);
}

#[tokio::test]
async fn a_shadow_chain_counts_disagreements_and_is_never_acted_upon() {
    let clock = ManualClock::new(T0);
    let mut engine = RoutingEngine::builder(chain("round-robin").await)
        .clock(clock.clone())
        .shadow(chain("skills > round-robin").await)
        .build();
    add_all(&mut engine, telecom_operators(30), Presence::Online).await;
    let mut wrong_brand = 0;
    for i in 0..90u64 {
        clock.advance(Duration::from_secs(10));
        let arrival = engine
            .receive(tweet(&format!("t{i}"), 0, &format!("c{i}"), "modem"))
            .await;
        let (_, operator) = assigned_to(&arrival.notices).pop().unwrap();
        wrong_brand += usize::from(brand_of(&operator) != "tim");
    }
    // The active chain ignores brands: 60 of 90 TIM conversations went to other teams,
    // which is exactly what the shadow chain disagrees with.
    assert_eq!(wrong_brand, 60);
    let shadow = engine.stats().shadow.unwrap();
    assert_eq!(shadow.compared, 90);
    assert!(shadow.disagreed >= 60, "{shadow:?}");
    let recent: Vec<_> = engine.shadow().unwrap().recent().collect();
    assert_eq!(recent.len(), 20);
    assert!(recent[0].shadow_reason.starts_with("round-robin"));
}

#[tokio::test]
async fn the_wait_estimate_comes_from_recent_handling_times_and_queue_position() {
    let clock = ManualClock::new(T0);
    let mut engine = engine(chain("least-loaded").await, &clock);
    add_all(
        &mut engine,
        vec![Operator::new("marco", 2)],
        Presence::Online,
    )
    .await;
    // Four conversations handled in 8 and 12 minutes: an average of 10.
    for (i, minutes) in [8u64, 12, 8, 12].iter().enumerate() {
        let arrival = engine
            .receive(tweet(&format!("h{i}"), 0, &format!("h{i}"), "ciao"))
            .await;
        clock.advance(Duration::from_secs(minutes * 60));
        engine.resolve(arrival.conversation).await.unwrap();
    }
    for i in 0..2 {
        engine
            .receive(tweet(&format!("busy{i}"), 0, &format!("b{i}"), "ciao"))
            .await;
    }
    let mut last = None;
    for i in 0..3 {
        let arrival = engine
            .receive(tweet(&format!("w{i}"), 0, &format!("w{i}"), "ciao"))
            .await;
        last = Some(arrival);
    }
    // Third in line, two seats, ten minutes each: 3 · 10 / 2 = 15 minutes.
    let [Notice::Queued { estimate, .. }] = &last.unwrap().notices[..] else {
        panic!("expected a queue place");
    };
    assert_eq!(
        estimate,
        &WaitEstimate::About {
            position: 3,
            minutes: 15
        }
    );
}

#[tokio::test]
async fn a_chain_with_a_bad_setting_fails_to_load_naming_the_plugin_and_key() {
    let spec: ChainSpec = "skills > sticky(window=60)".parse().unwrap();
    let err = PolicyChain::load(
        &Runtime::new().unwrap(),
        &spec,
        &plugin_dir(),
        &PluginLimits::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin sticky@0.1.0 failed in `configure`: invalid input: sticky: unknown setting `window` (known: `window_minutes`)"
    );
}
