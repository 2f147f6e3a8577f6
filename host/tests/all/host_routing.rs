//! The whole path with routing: mentions arrive through the ingress, the routing chain
//! assigns them by brand and capacity, a customer who must wait gets an honest estimate,
//! only the assignee may answer (from their own account), and resolving drains the queue.

use std::collections::BTreeMap;

use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::ConversationStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use centralino::{Error, Host};
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;

use crate::component;
use crate::routing::chain;
use crate::support::{eventually, x_delivery};

pub(crate) const SECRET: &str = "consumer-secret";

pub(crate) async fn telco(x: &XApi) -> Host {
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
    x.add_user("2002", "TIM_Giulia", "Giulia di TIM", "token-giulia");
    for (id, name) in [("42", "mario"), ("43", "lucia"), ("44", "piero")] {
        x.add_user(id, name, name, &format!("token-{name}"));
    }
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

    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await).build();
    for (id, account) in [("marco", "2001"), ("giulia", "2002")] {
        let operator = Operator::new(id, 1)
            .skills(["tim"])
            .languages(["it"])
            .account("twitter", account);
        engine.add_operator(operator, Presence::Online).await;
    }
    Host::builder()
        .connector(spec)
        .routing(engine)
        .brand(crate::answers::brand("tim"))
        .build()
        .await
        .unwrap()
}

async fn mention(host: &Host, x: &XApi, author: (&str, &str), text: &str) -> String {
    let tweet = x.post_tweet(NewTweet::new(author.0, text));
    let delivery = tweet_create(
        "1001",
        &tweet.id,
        (author.0, author.1, author.1),
        text,
        None,
    );
    let request = x_delivery(SECRET, &delivery);
    let (response, stored) = host
        .deliver_webhook_stored("default", "twitter", request)
        .await;
    assert_eq!(response.status, 200);
    stored[0].conversation_id.to_string()
}

#[tokio::test]
async fn mentions_are_routed_waiters_are_told_the_truth_and_only_the_assignee_answers() {
    let x = XApi::start().await.unwrap();
    let host = telco(&x).await;
    let first = mention(
        &host,
        &x,
        ("42", "mario"),
        "@TIM_Official il mio modem non va",
    )
    .await;
    let second = mention(&host, &x, ("43", "lucia"), "@TIM_Official fibra lenta").await;
    let third = mention(
        &host,
        &x,
        ("44", "piero"),
        "@TIM_Official fattura sbagliata",
    )
    .await;

    let store = host.store();
    let a = store
        .conversation("default", &first)
        .await
        .unwrap()
        .unwrap();
    let b = store
        .conversation("default", &second)
        .await
        .unwrap()
        .unwrap();
    let c = store
        .conversation("default", &third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, ConversationStatus::Assigned);
    assert_eq!(b.status, ConversationStatus::Assigned);
    assert_ne!(a.assignee, b.assignee, "least-loaded spreads the two seats");
    assert_eq!(
        c.status,
        ConversationStatus::Waiting,
        "both operators are at capacity"
    );

    // Piero is told where he stands, publicly, in his thread, from the brand account.
    eventually("the auto-reply", async || {
        x.tweets().iter().any(|t| t.author_id == "1001")
    })
    .await;
    let auto = x
        .tweets()
        .into_iter()
        .find(|t| t.author_id == "1001")
        .unwrap();
    assert!(auto.text.starts_with("@piero "), "{}", auto.text);
    assert!(
        auto.text.contains("Persone prima di te: 0."),
        "{}",
        auto.text
    );

    // Only the assignee may answer the first conversation.
    let assignee = a.assignee.clone().unwrap();
    let other = if assignee == "marco" {
        "giulia"
    } else {
        "marco"
    };
    let refused = host
        .reply("default", &first, other, None, "ci penso io", "r0")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Routing { source, .. }
            if matches!(**source, centralino::routing::RoutingError::NotAssignee { .. })),
        "{refused:?}"
    );
    // The refusal names the conversation by the id the CRM knows, not routing's own number.
    assert_eq!(
        refused.to_string(),
        format!("refused: {other} may not reply to {first}: it is assigned to {assignee}")
    );
    host.reply(
        "default",
        &first,
        &assignee,
        None,
        "@mario ciao, ti aiuto io",
        "r1",
    )
    .await
    .unwrap();
    let token = format!("Bearer token-{assignee}");
    eventually("the operator's reply", async || {
        x.requests()
            .iter()
            .any(|r| r.path == "/2/tweets" && r.header("authorization") == Some(token.as_str()))
    })
    .await;

    // Resolving frees the seat and the waiting customer gets it.
    host.resolve("default", &first).await.unwrap();
    let c = store
        .conversation("default", &third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConversationStatus::Assigned);
    assert_eq!(c.assignee.as_deref(), Some(assignee.as_str()));
    let inbox = host.local_inbox().unwrap().clone();
    eventually("the CRM to hear about all of it", async || {
        let events = inbox.events();
        events.iter().any(|e| matches!(&e.event, CrmEvent::ConversationQueued { conversation_id, .. } if *conversation_id == third))
            && events.iter().any(|e| matches!(&e.event, CrmEvent::ConversationResolved { conversation_id } if *conversation_id == first))
            && events.iter().filter(|e| matches!(e.event, CrmEvent::ConversationAssigned { .. })).count() == 3
    })
    .await;
}

#[tokio::test]
async fn an_operator_coming_online_drains_the_queue() {
    let x = XApi::start().await.unwrap();
    let host = telco(&x).await;
    host.set_presence("default", "marco", Presence::Away)
        .await
        .unwrap();
    host.set_presence("default", "giulia", Presence::Away)
        .await
        .unwrap();
    let waiting = mention(&host, &x, ("42", "mario"), "@TIM_Official la linea è down").await;
    let record = host
        .store()
        .conversation("default", &waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConversationStatus::Waiting);
    host.set_presence("default", "giulia", Presence::Online)
        .await
        .unwrap();
    let record = host
        .store()
        .conversation("default", &waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConversationStatus::Assigned);
    assert_eq!(record.assignee.as_deref(), Some("giulia"));
}

#[tokio::test]
async fn a_reply_from_another_account_than_routing_allows_is_refused_not_redirected() {
    let x = XApi::start().await.unwrap();
    let host = telco(&x).await;
    let conversation = mention(&host, &x, ("42", "mario"), "@TIM_Official aiuto").await;
    let assignee = host
        .store()
        .conversation("default", &conversation)
        .await
        .unwrap()
        .unwrap()
        .assignee
        .unwrap();
    let own = if assignee == "marco" { "2001" } else { "2002" };
    // The brand account was asked for; routing sends operators' replies from their own.
    let refused = host
        .reply(
            "default",
            &conversation,
            &assignee,
            Some("1001"),
            "ciao",
            "acct-1",
        )
        .await
        .unwrap_err();
    let Error::Refused(reason) = &refused else {
        panic!("{refused:?}")
    };
    assert!(
        reason.contains(&format!("from account `{own}`, not `1001`")),
        "{reason}"
    );
    // Asking for the operator's own account is honoured.
    let entry = host
        .reply(
            "default",
            &conversation,
            &assignee,
            Some(own),
            "ciao",
            "acct-2",
        )
        .await
        .unwrap();
    assert_eq!(entry.message.account, own);
}

/// Brand + language routing on live traffic: X detects each post's language (`lang`), the
/// connector passes it on and routing keeps only operators who speak it. Marco (Italian)
/// is listed first and Sarah (English) second, so without the language least-loaded would
/// give the English mention to Marco and the Italian one, then, to Sarah: both wrong.
#[tokio::test]
async fn an_italian_and_an_english_mention_on_one_brand_account_go_to_the_operators_who_speak_them()
{
    let host = bilingual(None, Presence::Online).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/twitter", listener.local_addr().unwrap());
    let serving = host.clone();
    let _server = tokio::spawn(async move { serving.serve(listener).await.unwrap() });

    // Account Activity deliveries as X sends them, each post with the language X detected.
    let deliver = async |id: &str, author: (&str, &str), text: &str, lang: &str| {
        let mut delivery = tweet_create("1001", id, (author.0, author.1, author.1), text, None);
        delivery["tweet_create_events"][0]["lang"] = serde_json::json!(lang);
        let body = serde_json::to_vec(&delivery).unwrap();
        let mut request = reqwest::Client::new().post(&url).body(body.clone());
        for (name, value) in twitter_delivery_headers(SECRET, &body) {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
    };
    deliver(
        "1800000000000000001",
        ("45", "jane"),
        "@TIM_Official my roaming stopped working in London",
        "en",
    )
    .await;
    deliver(
        "1800000000000000002",
        ("42", "mario"),
        "@TIM_Official il mio modem non si connette",
        "it",
    )
    .await;

    let assignee_of = async |customer: &str| {
        let conversations = host.store().conversations("default").await.unwrap();
        conversations
            .into_iter()
            .find(|c| c.customer_id == customer)
            .and_then(|c| c.assignee)
    };
    eventually("both mentions are assigned", async || {
        assignee_of("45").await.is_some() && assignee_of("42").await.is_some()
    })
    .await;
    assert_eq!(assignee_of("45").await.as_deref(), Some("sarah"));
    assert_eq!(assignee_of("42").await.as_deref(), Some("marco"));
    // The CRM hears the same, in that order.
    let assigned = || -> Vec<String> {
        host.local_inbox()
            .unwrap()
            .events()
            .into_iter()
            .filter_map(|delivery| match delivery.event {
                CrmEvent::ConversationAssigned { operator, .. } => Some(operator),
                _ => None,
            })
            .collect()
    };
    eventually("the CRM hears of both assignments", async || {
        assigned().len() == 2
    })
    .await;
    assert_eq!(assigned(), ["sarah", "marco"]);
}

/// One brand account served for webhooks, Marco (Italian) then Sarah (English) in the
/// roster with `presence`, on the SQLite file `store` (else in memory).
async fn bilingual(store: Option<&str>, presence: Presence) -> Host {
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: "1001".to_string(),
                handle: Some("TIM_Official".to_string()),
                ..AccountConfig::default()
            }],
        },
    );
    spec.grants = Grants::default().secret("consumer_secret".to_string(), Secret::new(SECRET));
    spec.brands.insert("1001".to_string(), "tim".to_string());
    let mut engine = RoutingEngine::builder(chain("skills > least-loaded").await).build();
    for (id, language) in [("marco", "it"), ("sarah", "en")] {
        let operator = Operator::new(id, 2).skills(["tim"]).languages([language]);
        engine.add_operator(operator, presence).await;
    }
    let mut builder = Host::builder().connector(spec).routing(engine);
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder.build().await.unwrap()
}

/// The language is kept with the stored messages: a conversation that waited across a
/// restart is routed on it when an operator comes online.
#[tokio::test]
async fn a_waiting_english_mention_still_goes_to_the_english_speaker_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("centralino.db").display());
    let first = bilingual(Some(&store), Presence::Offline).await;
    let mut delivery = tweet_create(
        "1001",
        "1800000000000000003",
        ("45", "jane", "jane"),
        "@TIM_Official my bill is wrong",
        None,
    );
    delivery["tweet_create_events"][0]["lang"] = serde_json::json!("en");
    let request = x_delivery(SECRET, &delivery);
    let (response, stored) = first
        .deliver_webhook_stored("default", "twitter", request)
        .await;
    assert_eq!(response.status, 200);
    let id = stored[0].conversation_id.clone();
    assert_eq!(
        first
            .store()
            .conversation("default", &id)
            .await
            .unwrap()
            .unwrap()
            .assignee,
        None,
        "nobody is online"
    );
    drop(first);

    let second = bilingual(Some(&store), Presence::Offline).await;
    for operator in ["marco", "sarah"] {
        second
            .set_presence("default", operator, Presence::Online)
            .await
            .unwrap();
    }
    let assignee = async || {
        second
            .store()
            .conversation("default", &id)
            .await
            .unwrap()
            .unwrap()
            .assignee
    };
    eventually("the waiting mention is assigned", async || {
        assignee().await.is_some()
    })
    .await;
    assert_eq!(assignee().await.as_deref(), Some("sarah"));
}
