//! Answers in the customer's language and the brand's voice, business hours with Italian
//! holidays, and live service levels: customers write through the real ingress (signed
//! X webhooks, the X emulator), time is a manual clock.

use centralino::answers::Brand;

/// The Italian and English templates of a brand, automatic answers on, always open.
pub fn brand(id: &str) -> Brand {
    let text = format!(
        r#"
        id = "{id}"
        language = "it"
        auto_reply = true
        [templates.it]
        wait_estimate = "Ti risponderà un operatore tra {{wait}}. Persone prima di te: {{ahead}}."
        wait_unknown = "Ti risponderà il primo operatore libero. Persone prima di te: {{ahead}}."
        nobody_at_work = "Nessun operatore è in servizio ora. Persone prima di te: {{ahead}}."
        closed = "Siamo chiusi: riapriamo {{resumes}}."
        [templates.en]
        wait_estimate = "An operator will answer in {{wait}}. People ahead of you: {{ahead}}."
        wait_unknown = "The first free operator will answer. People ahead of you: {{ahead}}."
        nobody_at_work = "Nobody is at work right now. People ahead of you: {{ahead}}."
        closed = "We are closed: we are back {{resumes}}."
        "#
    );
    toml::from_str(&text).unwrap()
}

use std::collections::BTreeMap;
use std::sync::Arc;

use centralino::Host;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::{CrmDelivery, CrmEvent, WebhookCrm};
use centralino::routing::{ManualClock, Operator, RoutingEngine};
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;

use crate::component;
use crate::routing::chain;
use crate::support::{CrmRecorder, eventually};

const SECRET: &str = "consumer-secret";

fn at(text: &str) -> u64 {
    let (date, time) = text.split_once('T').unwrap();
    let mut d = date.split('-').map(|p| p.parse::<i64>().unwrap());
    let (y, m, dd) = (d.next().unwrap(), d.next().unwrap(), d.next().unwrap());
    let mut t = time
        .trim_end_matches('Z')
        .split(':')
        .map(|p| p.parse::<i64>().unwrap());
    let (h, min) = (t.next().unwrap(), t.next().unwrap());
    // Days from civil (Howard Hinnant's algorithm), enough for test timestamps.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400_000 + h * 3_600_000 + min * 60_000).unwrap()
}

/// TIM's X account and its operators' on a host on `clock` and `store`, with its ingress
/// on loopback and events going to `crm` as signed webhooks; returns the host, the
/// ingress URL and the serving task.
async fn telco_on(
    x: &XApi,
    clock: &ManualClock,
    brand: Brand,
    engine: RoutingEngine,
    store: &str,
    crm: &CrmRecorder,
    host_id: &str,
) -> (Host, String, tokio::task::JoinHandle<()>) {
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
    x.add_user("2002", "TIM_Giulia", "Giulia di TIM", "token-giulia");
    let mut credentials = BTreeMap::new();
    for (name, token) in [
        ("tim", "token-tim"),
        ("marco", "token-marco"),
        ("giulia", "token-giulia"),
    ] {
        credentials.insert(name.to_string(), Credential::Bearer(Secret::new(token)));
    }
    let mut secrets = BTreeMap::new();
    secrets.insert("consumer_secret".to_string(), Secret::new(SECRET));
    let account = |id: &str, handle: &str, credential: &str| AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        credential: Some(credential.to_string()),
        settings: Vec::new(),
    };
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts: vec![
                account("1001", "TIM_Official", "tim"),
                account("2001", "TIM_Marco", "marco"),
                account("2002", "TIM_Giulia", "giulia"),
            ],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec.brands.insert("1001".to_string(), "tim".to_string());
    let webhook = WebhookCrm::new(crm.url.clone(), Secret::new("crm-secret")).unwrap();
    let host = Host::builder()
        .store(store)
        .host_id(host_id)
        .clock(clock.clone())
        .connector(spec)
        .routing(engine)
        .brand(brand)
        .crm(Arc::new(webhook))
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    let server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
    (host, ingress, server)
}

/// [`telco_on`] on an in-memory store, with a CRM of its own.
async fn telco(
    x: &XApi,
    clock: &ManualClock,
    brand: Brand,
    engine: RoutingEngine,
) -> (Host, String, CrmRecorder) {
    let crm = CrmRecorder::start().await;
    let (host, ingress, _) = telco_on(
        x,
        clock,
        brand,
        engine,
        "sqlite::memory:",
        &crm,
        "centralino",
    )
    .await;
    (host, ingress, crm)
}

/// A customer mentions TIM through X's signed Account Activity webhook, posted to the
/// host's ingress; `lang` is what X detected (none: X could not tell).
async fn mention(
    x: &XApi,
    ingress: &str,
    customer: (&str, &str),
    lang: Option<&str>,
    text: &str,
) -> String {
    let tweet = x.post_tweet(NewTweet::new(customer.0, text));
    let mut body = tweet_create(
        "1001",
        &tweet.id,
        (customer.0, customer.1, customer.1),
        text,
        None,
    );
    if let Some(lang) = lang {
        body["tweet_create_events"][0]["lang"] = serde_json::json!(lang);
    }
    let body = serde_json::to_vec(&body).unwrap();
    let mut request = reqwest::Client::new().post(format!("{ingress}/webhooks/twitter"));
    for (name, value) in twitter_delivery_headers(SECRET, &body) {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    tweet.id
}

/// The text TIM's account posted in reply to `tweet`, once it was sent.
async fn answer_to(x: &XApi, tweet: &str) -> String {
    eventually("the automatic answer", async || {
        x.tweets()
            .iter()
            .any(|t| t.author_id == "1001" && t.in_reply_to.as_deref() == Some(tweet))
    })
    .await;
    x.tweets()
        .into_iter()
        .find(|t| t.author_id == "1001" && t.in_reply_to.as_deref() == Some(tweet))
        .unwrap()
        .text
}

/// TIM's brand as `init`'s example has it: Rome time, Italian holidays, 08:00–22:00 on
/// weekdays, 09:00–13:00 on Saturdays.
fn tim_with_hours() -> Brand {
    let mut tim = brand("tim");
    tim.time_zone = "Europe/Rome".parse().unwrap();
    tim.holidays = vec!["italy".to_string().try_into().unwrap()];
    tim.hours = Some(
        toml::from_str(
            r#"
            mon = ["08:00-22:00"]
            tue = ["08:00-22:00"]
            wed = ["08:00-22:00"]
            thu = ["08:00-22:00"]
            fri = ["08:00-22:00"]
            sat = ["09:00-13:00"]
            "#,
        )
        .unwrap(),
    );
    tim
}

#[tokio::test]
async fn at_23_00_on_a_weekday_and_on_easter_monday_each_customer_hears_in_their_language_when_service_resumes()
 {
    let x = XApi::start().await.unwrap();
    // Thursday 3 December 2026, 23:00 in Rome (UTC+1).
    let clock = ManualClock::new(at("2026-12-03T22:00Z"));
    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await).build();
    let marco = Operator::new("marco", 3)
        .skills(["tim"])
        .languages(["it", "en"])
        .account("twitter", "2001");
    engine.add_operator(marco, Presence::Offline).await;
    let (_host, ingress, _crm) = telco(&x, &clock, tim_with_hours(), engine).await;
    for (id, name) in [
        ("42", "mario"),
        ("43", "john"),
        ("44", "lucia"),
        ("45", "kate"),
    ] {
        x.add_user(id, name, name, &format!("token-{name}"));
    }
    x.add_user("46", "hans", "hans", "token-hans");

    let mario = mention(
        &x,
        &ingress,
        ("42", "mario"),
        Some("it"),
        "@TIM_Official modem giù",
    )
    .await;
    let john = mention(
        &x,
        &ingress,
        ("43", "john"),
        Some("en"),
        "@TIM_Official no signal",
    )
    .await;
    assert_eq!(
        answer_to(&x, &mario).await,
        "@mario Siamo chiusi: riapriamo venerdì 4 dicembre alle 08:00."
    );
    assert_eq!(
        answer_to(&x, &john).await,
        "@john We are closed: we are back Friday 4 December at 08:00."
    );

    // Easter Monday 2027 (29 March, computed), 23:00 in Rome, on summer time (UTC+2):
    // Tuesday 30 March at 08:00.
    clock.set(at("2027-03-29T21:00Z"));
    let lucia = mention(
        &x,
        &ingress,
        ("44", "lucia"),
        Some("it"),
        "@TIM_Official fattura",
    )
    .await;
    let kate = mention(
        &x,
        &ingress,
        ("45", "kate"),
        Some("en-GB"),
        "@TIM_Official bill",
    )
    .await;
    // German has no templates: the brand's language.
    let hans = mention(
        &x,
        &ingress,
        ("46", "hans"),
        Some("de"),
        "@TIM_Official Rechnung",
    )
    .await;
    assert_eq!(
        answer_to(&x, &lucia).await,
        "@lucia Siamo chiusi: riapriamo martedì 30 marzo alle 08:00."
    );
    assert_eq!(
        answer_to(&x, &kate).await,
        "@kate We are closed: we are back Tuesday 30 March at 08:00."
    );
    assert_eq!(
        answer_to(&x, &hans).await,
        "@hans Siamo chiusi: riapriamo martedì 30 marzo alle 08:00."
    );
}

#[tokio::test]
async fn a_brand_without_answers_configured_answers_nobody() {
    let x = XApi::start().await.unwrap();
    let clock = ManualClock::new(at("2026-12-03T22:00Z"));
    let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
    engine
        .add_operator(Operator::new("marco", 1), Presence::Offline)
        .await;
    // The brand exists (hours, templates) but does not turn automatic answers on.
    let mut quiet = tim_with_hours();
    quiet.auto_reply = false;
    let (host, ingress, crm) = telco(&x, &clock, quiet, engine).await;
    x.add_user("42", "mario", "mario", "token-mario");
    for i in 0..3 {
        mention(
            &x,
            &ingress,
            ("42", "mario"),
            Some("it"),
            &format!("@TIM_Official {i}"),
        )
        .await;
    }
    // The CRM hears of the three queue places, with the words the customer would get.
    eventually("three queue events", async || {
        crm.deliveries()
            .iter()
            .filter(|d| matches!(d.event, CrmEvent::ConversationQueued { .. }))
            .count()
            == 3
    })
    .await;
    let queued: Vec<(String, String)> = crm
        .deliveries()
        .into_iter()
        .filter_map(|d| match d.event {
            CrmEvent::ConversationQueued {
                conversation_id,
                estimate,
                ..
            } => Some((conversation_id.into_string(), estimate)),
            _ => None,
        })
        .collect();
    for (id, estimate) in &queued {
        assert_eq!(
            estimate,
            "Siamo chiusi: riapriamo venerdì 4 dicembre alle 08:00."
        );
        // …and nothing was queued to go out in public.
        let auto = host
            .store()
            .outbox_by_key("default", &format!("auto-wait:{id}"))
            .await
            .unwrap();
        assert!(auto.is_none(), "{auto:?}");
    }
    assert!(x.tweets().iter().all(|t| t.author_id != "1001"));
}

/// The service-level events the CRM received, in order (a redelivery once).
fn levels(crm: &CrmRecorder) -> Vec<(String, String, u64, Option<String>, String, i64)> {
    let mut seen = std::collections::BTreeSet::new();
    crm.deliveries()
        .into_iter()
        .filter(|d| seen.insert(d.id.clone()))
        .filter_map(
            |CrmDelivery {
                 event, created_at, ..
             }| match event {
                CrmEvent::ServiceLevelAtRisk {
                    conversation_id,
                    waited_ms,
                    assignee,
                    action,
                    ..
                } => Some((
                    "at-risk".to_string(),
                    conversation_id.into_string(),
                    waited_ms,
                    assignee,
                    action,
                    created_at,
                )),
                CrmEvent::ServiceLevelBreached {
                    conversation_id,
                    waited_ms,
                    assignee,
                    action,
                    ..
                } => Some((
                    "breached".to_string(),
                    conversation_id.into_string(),
                    waited_ms,
                    assignee,
                    action,
                    created_at,
                )),
                _ => None,
            },
        )
        .collect()
}

/// The stored conversation of the tweet `tweet`, once the CRM heard of it.
async fn conversation_of(crm: &CrmRecorder, tweet: &str) -> String {
    let find = || {
        crm.deliveries().into_iter().find_map(|d| match d.event {
            CrmEvent::MessageReceived {
                conversation_id,
                message,
                ..
            } if message.external_id == tweet => Some(conversation_id.into_string()),
            _ => None,
        })
    };
    eventually("the message at the CRM", async || find().is_some()).await;
    find().unwrap()
}

#[tokio::test]
async fn in_an_outage_at_risk_and_breach_events_reach_the_crm_on_time_and_the_chain_acts_on_them() {
    let x = XApi::start().await.unwrap();
    let t0 = at("2026-12-03T10:00Z");
    let minutes = |m: u64| t0 + m * 60_000;
    let clock = ManualClock::new(t0);
    let mut engine = RoutingEngine::builder(
        chain("priority(keywords=guasto; level=7) > skills > least-loaded").await,
    )
    .build();
    for (id, account) in [("marco", "2001"), ("giulia", "2002")] {
        let operator = Operator::new(id, 1)
            .skills(["tim"])
            .languages(["it"])
            .account("twitter", account);
        engine.add_operator(operator, Presence::Online).await;
    }
    let mut tim = brand("tim");
    tim.auto_reply = false;
    tim.service_levels = Some(
        toml::from_str(
            r#"
            first_response_minutes = 30
            by_priority = { "7" = 10 }
            at_risk_percent = 80
            on_at_risk = "raise-priority"
            raise_priority_to = 9
            on_breach = "reroute"
            "#,
        )
        .unwrap(),
    );
    let (host, ingress, crm) = telco(&x, &clock, tim, engine).await;
    for (id, name) in [
        ("42", "mario"),
        ("43", "lucia"),
        ("44", "anna"),
        ("45", "piero"),
    ] {
        x.add_user(id, name, name, &format!("token-{name}"));
    }

    // The outage: four customers at once. Two seats; the outage report ("guasto") is
    // urgent (priority 7: a 10-minute target), the others have 30 minutes.
    let mut ids = Vec::new();
    for (customer, text) in [
        (("42", "mario"), "@TIM_Official il modem non va"),
        (("43", "lucia"), "@TIM_Official fattura sbagliata"),
        (("44", "anna"), "@TIM_Official guasto in tutta la via"),
        (("45", "piero"), "@TIM_Official fibra lenta"),
    ] {
        let tweet = mention(&x, &ingress, customer, Some("it"), text).await;
        ids.push(conversation_of(&crm, &tweet).await);
    }
    let [a, b, d, c] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let store = host.store();
    let assignee = async |id: &str| {
        store
            .conversation("default", id)
            .await
            .unwrap()
            .unwrap()
            .assignee
    };
    let (first, second) = (assignee(a).await.unwrap(), assignee(b).await.unwrap());
    assert_eq!(assignee(d).await, None);
    assert_eq!(assignee(c).await, None);

    // A's operator answers at minute 5: A is safe.
    clock.set(minutes(5));
    host.reply("default", a, &first, None, "@mario ci guardo", "r-a")
        .await
        .unwrap();

    // Minute 8: the urgent report is at 80% of its 10 minutes. Only it: the others are at
    // 8 of 30.
    clock.set(minutes(8));
    eventually("D at risk", async || levels(&crm).len() == 1).await;
    assert_eq!(
        levels(&crm),
        [(
            "at-risk".to_string(),
            d.clone(),
            8 * 60_000,
            None,
            "raise-priority".to_string(),
            minutes(8) as i64
        )]
    );
    // Minute 10: missed. Re-routed: still nobody free, so it waits, first in line.
    clock.set(minutes(10));
    eventually("D breached", async || levels(&crm).len() == 2).await;
    assert_eq!(
        levels(&crm)[1],
        (
            "breached".to_string(),
            d.clone(),
            10 * 60_000,
            None,
            "reroute".to_string(),
            minutes(10) as i64
        )
    );

    // Minute 24: B (held by an operator who has not answered) and C (waiting) are at 80%
    // of 30 minutes; both are raised to priority 9, and keep their 30-minute target.
    clock.set(minutes(24));
    eventually("B and C at risk", async || levels(&crm).len() == 4).await;
    let mut at_24: Vec<_> = levels(&crm)[2..].to_vec();
    at_24.sort();
    let mut expected = vec![
        (
            "at-risk".to_string(),
            b.clone(),
            24 * 60_000,
            Some(second.clone()),
            "raise-priority".to_string(),
            minutes(24) as i64,
        ),
        (
            "at-risk".to_string(),
            c.clone(),
            24 * 60_000,
            None,
            "raise-priority".to_string(),
            minutes(24) as i64,
        ),
    ];
    expected.sort();
    assert_eq!(at_24, expected);

    // Minute 25: A is resolved; the freed seat goes to the urgent report (priority 9,
    // ahead of C by arrival).
    clock.set(minutes(25));
    host.resolve("default", a).await.unwrap();
    assert_eq!(assignee(d).await.as_deref(), Some(first.as_str()));

    // Minute 30: B and C miss their target. B is taken from the operator who never
    // answered (who may not have it back), and that seat goes to C.
    clock.set(minutes(30));
    eventually("B and C breached", async || levels(&crm).len() == 6).await;
    let mut at_30: Vec<_> = levels(&crm)[4..].to_vec();
    at_30.sort();
    let mut expected = vec![
        (
            "breached".to_string(),
            b.clone(),
            30 * 60_000,
            Some(second.clone()),
            "reroute".to_string(),
            minutes(30) as i64,
        ),
        (
            "breached".to_string(),
            c.clone(),
            30 * 60_000,
            None,
            "reroute".to_string(),
            minutes(30) as i64,
        ),
    ];
    expected.sort();
    assert_eq!(at_30, expected);
    eventually("C given to the freed seat", async || {
        assignee(c).await.as_deref() == Some(second.as_str())
    })
    .await;
    assert_eq!(assignee(b).await, None, "B waits for someone else");
    // The CRM dispatcher delivers on its own pace: wait for it, not for the routing.
    eventually("the CRM hears of the new assignment", async || {
        crm.deliveries().into_iter().any(|d| {
            matches!(&d.event, CrmEvent::ConversationAssigned { conversation_id, operator, .. }
                if conversation_id == c && operator == &second)
                && d.created_at == minutes(30) as i64
        })
    })
    .await;
    // D was answered by nobody, but its steps were told once each.
    assert_eq!(levels(&crm).len(), 6);

    // The metrics: steps per brand, first response and handling per brand and operator.
    let metrics = host.metrics_text().await;
    for line in [
        "centralino_service_level_total{tenant=\"default\",brand=\"tim\",step=\"at-risk\"} 3"
            .to_string(),
        "centralino_service_level_total{tenant=\"default\",brand=\"tim\",step=\"breached\"} 3"
            .to_string(),
        format!(
            "centralino_brand_first_response_seconds_sum{{tenant=\"default\",brand=\"tim\",operator=\"{first}\"}} 300"
        ),
        format!(
            "centralino_handling_seconds_sum{{tenant=\"default\",brand=\"tim\",operator=\"{first}\"}} 1500"
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[test]
fn check_names_the_file_line_key_and_expectation_of_a_brands_mistakes() {
    let plugin_dir = component("twitter").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    let text = format!(
        r#"[host]
plugin_dir = {plugin_dir:?}

[[connectors]]
name = "twitter"
plugin = "twitter"

[[connectors.accounts]]
id = "1001"
brand = "tim"

[routing]
auto_reply = true

[[operators]]
id = "marco"
capacity = 1

[[brands]]
id = "tim"
language = "it"
auto_reply = true
[brands.templates.en]
wait_estimate = "About {{wait}}"
wait_unknown = "Soon"
nobody_at_work = "Nobody now, back {{resumes}}"
closed = "Closed until {{resumes}}"

[[brands]]
id = "tmi"
"#
    );
    std::fs::write(&file, text).unwrap();
    let (code, _, stderr) =
        crate::support::centralino(&["check", "--config", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    for expected in [
        "centralino.toml:13: routing.auto_reply: automatic answers are configured per brand now",
        "brands[0].templates: no templates in `it`, the brand's language (languages with \
         templates: en): add `[brands.templates.it]`",
        "centralino.toml:26: brands[0].templates.en.nobody_at_work: unknown placeholder \
         `{resumes}`: `nobody_at_work` may use {position}, {ahead}, {brand}",
        "centralino.toml:30: brands[1].id: no account of this tenant has `brand = \"tmi\"` \
         (accounts name: tim)",
    ] {
        assert!(stderr.contains(expected), "{expected}\nnot in:\n{stderr}");
    }
    // A time zone the host does not know is named with what it would take.
    let zone = std::fs::read_to_string(&file).unwrap().replace(
        "language = \"it\"",
        "language = \"it\"\ntime_zone = \"Europe/Roma\"",
    );
    std::fs::write(&file, zone).unwrap();
    let (_, _, stderr) = crate::support::centralino(&["check", "--config", file.to_str().unwrap()]);
    assert!(
        stderr.contains(
            "brands[0].time_zone: `Europe/Roma` is not a time zone this host knows: \
                         write a European zone such as `Europe/Rome`"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn each_service_level_step_is_told_once_across_a_restart() {
    let x = XApi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let t0 = at("2026-12-03T10:00Z");
    let clock = ManualClock::new(t0);
    let crm = CrmRecorder::start().await;
    let tim = || {
        let mut tim = brand("tim");
        tim.auto_reply = false;
        tim.service_levels = Some(centralino::answers::ServiceLevels::new(30));
        tim
    };
    let engine = async || {
        let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
        engine
            .add_operator(Operator::new("marco", 1), Presence::Offline)
            .await;
        engine
    };
    let (host, ingress, server) = telco_on(
        &x,
        &clock,
        tim(),
        engine().await,
        &store,
        &crm,
        "centralino",
    )
    .await;
    x.add_user("42", "mario", "mario", "token-mario");
    mention(
        &x,
        &ingress,
        ("42", "mario"),
        Some("it"),
        "@TIM_Official aiuto",
    )
    .await;
    clock.set(t0 + 24 * 60_000);
    eventually("at risk", async || levels(&crm).len() == 1).await;

    // The host stops and another starts on the same database, at the same minute and
    // then past the target: the CRM hears of the breach, and of the risk only once.
    server.abort();
    drop(host);
    let (_host, _, _) = telco_on(
        &x,
        &clock,
        tim(),
        engine().await,
        &store,
        &crm,
        "centralino",
    )
    .await;
    clock.set(t0 + 30 * 60_000);
    eventually("breached", async || {
        levels(&crm).iter().any(|(step, ..)| step == "breached")
    })
    .await;
    let steps: Vec<String> = levels(&crm).into_iter().map(|(step, ..)| step).collect();
    assert_eq!(steps, ["at-risk", "breached"]);
}

#[tokio::test]
async fn two_hosts_sharing_postgresql_tell_each_service_level_step_once() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!("SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL");
        return;
    };
    let store = crate::store::fresh_postgres_database(&base).await;
    let x = XApi::start().await.unwrap();
    let t0 = at("2026-12-03T10:00Z");
    let clock = ManualClock::new(t0);
    let crm = CrmRecorder::start().await;
    let tim = || {
        let mut tim = brand("tim");
        tim.auto_reply = false;
        tim.service_levels = Some(centralino::answers::ServiceLevels::new(30));
        tim
    };
    let engine = async || {
        let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
        engine
            .add_operator(Operator::new("marco", 1), Presence::Offline)
            .await;
        engine
    };
    let (_one, ingress, _) =
        telco_on(&x, &clock, tim(), engine().await, &store, &crm, "host-1").await;
    let (_two, _, _) = telco_on(&x, &clock, tim(), engine().await, &store, &crm, "host-2").await;
    x.add_user("42", "mario", "mario", "token-mario");
    x.add_user("43", "lucia", "lucia", "token-lucia");
    mention(
        &x,
        &ingress,
        ("42", "mario"),
        Some("it"),
        "@TIM_Official aiuto",
    )
    .await;
    mention(
        &x,
        &ingress,
        ("43", "lucia"),
        Some("it"),
        "@TIM_Official fattura",
    )
    .await;
    // Both hosts measure both conversations on every tick, each under the tenant's lock.
    clock.set(t0 + 24 * 60_000);
    eventually("at risk", async || levels(&crm).len() == 2).await;
    clock.set(t0 + 30 * 60_000);
    eventually("breached", async || levels(&crm).len() == 4).await;
    let mut steps: Vec<(String, String)> = levels(&crm)
        .into_iter()
        .map(|(step, id, ..)| (id, step))
        .collect();
    steps.sort();
    steps.dedup();
    assert_eq!(
        steps.len(),
        4,
        "each step of each conversation once: {steps:?}"
    );
    assert_eq!(levels(&crm).len(), 4);
}

#[tokio::test]
async fn a_wait_estimate_that_turns_out_wrong_is_corrected_at_most_once_per_customer_per_period() {
    let x = XApi::start().await.unwrap();
    let t0 = at("2026-12-03T10:00Z");
    let minutes = |m: u64| t0 + m * 60_000;
    let clock = ManualClock::new(t0);
    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await).build();
    for (id, account) in [("marco", "2001"), ("giulia", "2002")] {
        let operator = Operator::new(id, 1)
            .skills(["tim"])
            .languages(["it"])
            .account("twitter", account);
        engine.add_operator(operator, Presence::Online).await;
    }
    let mut tim = brand("tim");
    tim.estimate_update_minutes = Some(10);
    let (host, ingress, crm) = telco(&x, &clock, tim, engine).await;
    for (id, name) in [
        ("42", "mario"),
        ("43", "lucia"),
        ("44", "anna"),
        ("45", "piero"),
    ] {
        x.add_user(id, name, name, &format!("token-{name}"));
    }
    let store = host.store();
    let assignee = async |tweet: &str| {
        let id = conversation_of(&crm, tweet).await;
        let stored = store.conversation("default", &id).await.unwrap().unwrap();
        (id, stored.assignee)
    };
    // Two customers take both seats; both are answered. One is resolved after ten
    // minutes, so handling takes ten minutes on average, and a third takes the seat.
    let mario = mention(
        &x,
        &ingress,
        ("42", "mario"),
        Some("it"),
        "@TIM_Official uno",
    )
    .await;
    let lucia = mention(
        &x,
        &ingress,
        ("43", "lucia"),
        Some("it"),
        "@TIM_Official due",
    )
    .await;
    for tweet in [&mario, &lucia] {
        let (id, operator) = assignee(tweet).await;
        let key = format!("r-{id}");
        host.reply("default", &id, &operator.unwrap(), None, "ciao", &key)
            .await
            .unwrap();
    }
    clock.set(minutes(10));
    let (mario_id, _) = assignee(&mario).await;
    host.resolve("default", &mario_id).await.unwrap();
    let anna = mention(
        &x,
        &ingress,
        ("44", "anna"),
        Some("it"),
        "@TIM_Official tre",
    )
    .await;
    let (anna_id, anna_operator) = assignee(&anna).await;
    host.reply(
        "default",
        &anna_id,
        &anna_operator.unwrap(),
        None,
        "ciao",
        "r-anna",
    )
    .await
    .unwrap();

    // Piero waits: first in line, two seats at work, ten minutes each: five minutes.
    let piero = mention(
        &x,
        &ingress,
        ("45", "piero"),
        Some("it"),
        "@TIM_Official quattro",
    )
    .await;
    let (piero_id, _) = assignee(&piero).await;
    assert_eq!(
        answer_to(&x, &piero).await,
        "@piero Ti risponderà un operatore tra circa 5 minuti. Persone prima di te: 0."
    );
    // Giulia leaves (her answered customer stays hers): one seat, ten minutes. Wrong by
    // more than half, but Piero heard from the host just now: not yet.
    host.set_presence("default", "giulia", Presence::Offline)
        .await
        .unwrap();
    clock.set(minutes(15));
    // A change at minute 15 (another customer writing) looks at the estimates too.
    x.add_user("46", "sara", "sara", "token-sara");
    mention(
        &x,
        &ingress,
        ("46", "sara"),
        Some("it"),
        "@TIM_Official cinque",
    )
    .await;
    let first = format!("auto-wait:{piero_id}:1");
    assert!(
        store
            .outbox_by_key("default", &first)
            .await
            .unwrap()
            .is_none()
    );
    // Ten minutes after the first answer, the correction goes out, once.
    clock.set(minutes(20));
    eventually("the correction", async || {
        store
            .outbox_by_key("default", &first)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let correction = store
        .outbox_by_key("default", &first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        correction.message.text,
        "@piero Ti risponderà un operatore tra circa 10 minuti. Persone prima di te: 0."
    );
    let second = format!("auto-wait:{piero_id}:2");
    assert!(
        store
            .outbox_by_key("default", &second)
            .await
            .unwrap()
            .is_none()
    );
}
