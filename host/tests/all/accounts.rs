//! Accounts that stay connected (issue 15): operators' X accounts connected through the
//! host's OAuth flow against the X emulator's authorization server, on loopback, with the
//! token clock under the test's control.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use centralino::Host;
use centralino::accounts::{AccountState, ConnectedCredential, Endpoints, OAuthApp};
use centralino::api::AdminApi;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::CrmEvent;
use centralino::types::{AccountConfig, ConnectorConfig};
use centralino_emulators::XApi;
use centralino_emulators::oauth::SimClock;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;

use crate::component;
use crate::support::eventually;

const CONSUMER_SECRET: &str = "x-consumer-secret";
const CLIENT_ID: &str = "centralino-client-id";
const CLIENT_SECRET: &str = "planted-client-secret-5f1e";
const TOKEN_KEY: &str = "planted-token-key-0123456789abcdef0123456789";
const ADMIN_TOKEN: &str = "planted-admin-token-77aa";
const APP_TOKEN: &str = "planted-x-app-bearer-3c9d";

/// The nine operators' X accounts (ids 2001…2009).
fn operators(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| (format!("{}", 2000 + i), format!("TIM_Op{i}")))
        .collect()
}

/// A host serving the brand account (static token) and `operators` (connected through
/// the host), its admin API and its webhook ingress on loopback.
struct Rig {
    x: XApi,
    clock: SimClock,
    host: Host,
    admin: String,
    ingress: String,
    http: reqwest::Client,
}

impl Rig {
    async fn start(ops: &[(String, String)]) -> Rig {
        Self::start_with(ops, "sqlite::memory:", "centralino").await
    }

    async fn start_with(ops: &[(String, String)], store: &str, host_id: &str) -> Rig {
        let x = XApi::start().await.unwrap();
        Self::start_on(x, ops, store, host_id).await
    }

    async fn start_on(x: XApi, ops: &[(String, String)], store: &str, host_id: &str) -> Rig {
        x.add_user("1001", "TIM_Official", "TIM", "static-token-tim");
        x.add_user("42", "mario_rossi", "Mario Rossi", "static-token-mario");
        for (id, handle) in ops {
            // Their static tokens are never configured: the host connects them.
            x.add_user(id, handle, handle, &format!("never-used-{id}"));
        }
        x.add_oauth_client(CLIENT_ID, CLIENT_SECRET);
        x.set_webhook_app(APP_TOKEN, CONSUMER_SECRET);
        let clock = x.clock();
        let mut credentials = BTreeMap::new();
        credentials.insert(
            "tim".to_string(),
            Credential::Bearer(Secret::new("static-token-tim")),
        );
        let mut accounts = vec![AccountConfig {
            id: "1001".to_string(),
            handle: Some("TIM_Official".to_string()),
            credential: Some("tim".to_string()),
            settings: Vec::new(),
        }];
        for (id, handle) in ops {
            credentials.insert(
                format!("op-{id}"),
                Credential::Connected(ConnectedCredential::new()),
            );
            accounts.push(AccountConfig {
                id: id.clone(),
                handle: Some(handle.clone()),
                credential: Some(format!("op-{id}")),
                settings: Vec::new(),
            });
        }
        let mut secrets = BTreeMap::new();
        secrets.insert("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
        let mut spec = ConnectorSpec::new(
            "twitter",
            component("twitter"),
            ConnectorConfig {
                settings: vec![("api_base".to_string(), x.base_url())],
                accounts,
            },
        );
        spec.grants = Grants::default()
            .allow_hosts(vec![x.authority()])
            .credentials(credentials)
            .secrets(secrets);
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = format!("http://{}", admin_listener.local_addr().unwrap());
        // The ingress is bound first: its URL is the webhook X is asked to call.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ingress = format!("http://{}", listener.local_addr().unwrap());
        let base = x.base_url();
        let app = OAuthApp {
            client_id: Secret::new(CLIENT_ID),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            redirect_url: format!("{admin}/oauth/callback"),
            endpoints: Endpoints {
                authorize_url: Some(format!("{base}/i/oauth2/authorize")),
                token_url: Some(format!("{base}/2/oauth2/token")),
                revoke_url: Some(format!("{base}/2/oauth2/revoke")),
                identity_url: Some(format!("{base}/2/users/me")),
                accounts_url: None,
                subscribe_url: Some(format!(
                    "{base}/2/account_activity/webhooks/{{webhook}}/subscriptions/all"
                )),
                webhooks_url: Some(format!("{base}/2/webhooks")),
            },
            webhook_url: Some(format!("{ingress}/webhooks/twitter")),
            app_token: Some(Secret::new(APP_TOKEN)),
        };
        let account_clock = clock.clone();
        let host = Host::builder()
            .store(store)
            .host_id(host_id)
            .connector(spec)
            .token_key(Secret::new(TOKEN_KEY))
            .oauth_app("default", "twitter", app)
            .account_clock(
                Arc::new(move || account_clock.now_ms()),
                Duration::from_millis(20),
            )
            .build()
            .await
            .unwrap();
        let api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN_TOKEN)));
        tokio::spawn(async move { api.serve(admin_listener).await.unwrap() });
        let serving = host.clone();
        tokio::spawn(async move { serving.serve(listener).await.unwrap() });
        Rig {
            x,
            clock,
            host,
            admin,
            ingress,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// An admin API call; the status and the body.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Starts a connect flow through the admin API; the authorize URL.
    async fn start_connect(&self, account: &str) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/accounts/default/twitter/connect",
                Some(&format!("{{\"account\": \"{account}\"}}")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        answer["authorize_url"].as_str().unwrap().to_string()
    }

    /// Opens the consent page as a browser would, and submits its form as `user_id`;
    /// answers the redirect back to the host (the platform's `Location`).
    async fn consent(&self, authorize_url: &str, user_id: &str) -> String {
        let page = self.http.get(authorize_url).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\""), "{html}");
        let mut form = hidden_inputs(&html);
        form.push(("user_id".to_string(), user_id.to_string()));
        form.push(("decision".to_string(), "allow".to_string()));
        let action = format!("{}/i/oauth2/authorize", self.x.base_url());
        let answer = self.http.post(action).form(&form).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 302);
        answer.headers()["location"].to_str().unwrap().to_string()
    }

    /// Follows the platform's redirect to the host's callback; status and page.
    async fn callback(&self, location: &str) -> (u16, String) {
        let response = self.http.get(location).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The whole connect flow for one operator's account.
    async fn connect(&self, account: &str) {
        let url = self.start_connect(account).await;
        let location = self.consent(&url, account).await;
        let (status, page) = self.callback(&location).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("connected"), "{page}");
    }

    /// A customer's mention of the brand, delivered signed; the conversation's id.
    async fn mention(&self, text: &str) -> String {
        let tweet = self.x.post_tweet(NewTweet::new("42", text));
        let body = serde_json::to_vec(&tweet_create(
            "1001",
            &tweet.id,
            ("42", "mario_rossi", "Mario Rossi"),
            text,
            None,
        ))
        .unwrap();
        let mut request = self
            .http
            .post(format!("{}/webhooks/twitter", self.ingress))
            .body(body.clone());
        for (name, value) in twitter_delivery_headers(CONSUMER_SECRET, &body) {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
        let conversations = self.host.store().conversations("default").await.unwrap();
        conversations
            .iter()
            .find(|c| c.customer_id == "42")
            .unwrap()
            .id
            .clone()
    }

    fn state_of(
        &self,
        statuses: &[centralino::accounts::AccountStatus],
        account: &str,
    ) -> AccountState {
        statuses
            .iter()
            .find(|s| s.account == account)
            .unwrap()
            .state
    }

    /// The texts X holds from `author`, in order.
    fn posted_by(&self, author: &str) -> Vec<String> {
        self.x
            .tweets()
            .into_iter()
            .filter(|t| t.author_id == author)
            .map(|t| t.text)
            .collect()
    }

    fn crm_events(&self) -> Vec<CrmEvent> {
        self.host
            .local_inbox()
            .unwrap()
            .events()
            .into_iter()
            .map(|d| d.event)
            .collect()
    }
}

/// `name="…" value="…"` of every hidden input of a page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.strip_prefix("name=\"")?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

#[tokio::test]
async fn a_simulated_day_of_two_hour_tokens_sends_every_reply_from_the_operators_own_accounts() {
    let ops = operators(9);
    let rig = Rig::start(&ops).await;
    rig.clock.set(1_780_000_000_000);
    for (id, _) in &ops {
        rig.connect(id).await;
    }
    let statuses = rig.host.accounts().await.unwrap();
    for (id, _) in &ops {
        assert_eq!(rig.state_of(&statuses, id), AccountState::Connected);
    }
    let conversation = rig.mention("@TIM_Official la fibra non va").await;

    // A day in ten-minute steps; every operator replies once an hour from their account.
    let mut queued = 0;
    for step in 0..(24 * 6) {
        rig.clock.advance(Duration::from_secs(600));
        rig.host.check_accounts().await.unwrap();
        if step % 6 == 5 {
            let hour = step / 6;
            for (id, handle) in &ops {
                rig.host
                    .reply(
                        "default",
                        &conversation,
                        handle,
                        Some(id),
                        &format!("{handle}: aggiornamento ora {hour}"),
                        &format!("{id}-{hour}"),
                    )
                    .await
                    .unwrap();
                queued += 1;
            }
            eventually("the hour's replies are sent", async || {
                ops.iter()
                    .map(|(id, _)| rig.posted_by(id).len())
                    .sum::<usize>()
                    == queued
            })
            .await;
        }
    }
    assert_eq!(queued, 9 * 24);
    // Each reply took one call: none was refused for an expired token and sent again.
    let tweet_calls = rig
        .x
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .count();
    assert_eq!(tweet_calls, queued);
    for (id, handle) in &ops {
        let posted = rig.posted_by(id);
        assert_eq!(posted.len(), 24, "{handle}");
        for (hour, text) in posted.iter().enumerate() {
            assert_eq!(text, &format!("{handle}: aggiornamento ora {hour}"));
        }
    }
    let failed = rig
        .crm_events()
        .iter()
        .filter(|e| matches!(e, CrmEvent::ReplyFailed { .. }))
        .count();
    assert_eq!(failed, 0);
    // Each token was renewed ahead of its expiry: no request met a 401, every refresh
    // token was presented once, and each operator's token was refreshed about every two
    // hours (11 or 12 times in a day).
    let (refreshed, refresh_failed) = rig.host.token_refreshes();
    assert_eq!(refresh_failed, 0);
    assert!(
        (9 * 11..=9 * 13).contains(&refreshed),
        "{refreshed} refreshes"
    );
    assert_eq!(rig.x.refreshes() as u64, refreshed);
    assert_eq!(rig.x.most_refresh_presentations(), 1);
    let reauth = rig
        .crm_events()
        .iter()
        .filter(
            |e| matches!(e, CrmEvent::AccountStateChanged { state, .. } if state != "connected"),
        )
        .count();
    assert_eq!(reauth, 0);
}

#[tokio::test]
async fn a_revoked_token_holds_replies_and_pauses_polls_until_reauth_then_sends_each_once_in_order()
{
    let ops = operators(1);
    let rig = Rig::start(&ops).await;
    let (op, handle) = ops[0].clone();
    rig.connect(&op).await;
    let conversation = rig.mention("@TIM_Official il modem lampeggia").await;
    rig.host
        .reply(
            "default",
            &conversation,
            &handle,
            Some(&op),
            "prima risposta",
            "r1",
        )
        .await
        .unwrap();
    eventually("the first reply is sent", async || {
        rig.posted_by(&op).len() == 1
    })
    .await;

    // The operator removes the app on X: access and refresh tokens are revoked.
    rig.x.revoke_user(&op);
    let tweets_before = rig
        .x
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .count();
    for (n, key) in [(2, "r2"), (3, "r3"), (4, "r4")] {
        rig.host
            .reply(
                "default",
                &conversation,
                &handle,
                Some(&op),
                &format!("risposta {n}"),
                key,
            )
            .await
            .unwrap();
    }
    eventually("the account needs re-authorisation", async || {
        let statuses = rig.host.accounts().await.unwrap();
        rig.state_of(&statuses, &op) == AccountState::NeedsReauth && statuses[0].held_replies == 3
    })
    .await;
    // One failed call found it out; the held replies make no further calls (a whole pass
    // of the outbox sender after they were held leaves them alone).
    let passes = rig.host.outbox_passes();
    eventually("an outbox pass after the replies were held", async || {
        rig.host.outbox_passes() >= passes + 2
    })
    .await;
    let tweet_calls = rig
        .x
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .count();
    assert_eq!(tweet_calls, tweets_before + 1);
    assert_eq!(rig.posted_by(&op).len(), 1);
    // Polls of the account pause; the brand account's go on.
    let reports = rig.host.poll("default", "twitter").await.unwrap();
    let paused = reports.iter().find(|r| r.account == op).unwrap();
    assert!(
        paused.error.as_deref().unwrap().contains("polls paused"),
        "{paused:?}"
    );
    let brand = reports.iter().find(|r| r.account == "1001").unwrap();
    assert!(brand.error.is_none(), "{brand:?}");
    eventually("the CRM hears of it", async || {
        rig.crm_events().iter().any(|e| {
            matches!(e, CrmEvent::AccountStateChanged { account, state, .. }
                if account == &op && state == "needs-reauth")
        })
    })
    .await;
    assert!(
        !rig.crm_events()
            .iter()
            .any(|e| matches!(e, CrmEvent::ReplyFailed { .. }))
    );
    let (status, metrics) = rig.admin(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "centralino_account_state{{tenant=\"default\",connector=\"twitter\",account=\"{op}\",state=\"needs-reauth\"}} 1"
        )),
        "{metrics}"
    );

    // The admin re-authorises through the connect flow: the held replies go out, in order,
    // once each.
    rig.connect(&op).await;
    eventually("the held replies are sent", async || {
        rig.posted_by(&op).len() == 4
    })
    .await;
    // A whole pass of the outbox sender after the fourth: any second send has happened.
    let passes = rig.host.outbox_passes();
    eventually(
        "an outbox pass after the held replies went out",
        async || rig.host.outbox_passes() >= passes + 2,
    )
    .await;
    assert_eq!(
        rig.posted_by(&op),
        ["prima risposta", "risposta 2", "risposta 3", "risposta 4"]
    );
    let statuses = rig.host.accounts().await.unwrap();
    assert_eq!(rig.state_of(&statuses, &op), AccountState::Connected);
    assert_eq!(statuses[0].held_replies, 0);
    eventually("the CRM hears it is connected again", async || {
        rig.crm_events()
            .iter()
            .filter(|e| matches!(e, CrmEvent::AccountStateChanged { state, .. } if state == "connected"))
            .count()
            == 2
    })
    .await;
}

#[tokio::test]
async fn forged_replayed_expired_and_other_tenant_oauth_callbacks_are_refused() {
    let ops = operators(2);
    let rig = Rig::start(&ops).await;
    let (op, _) = ops[0].clone();

    // A state the host never issued.
    let forged = format!(
        "{}/oauth/callback?state=forged-state&code=anything",
        rig.admin
    );
    let (status, page) = rig.callback(&forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("unknown or already used"), "{page}");

    // A real flow, completed, then its callback replayed.
    let url = rig.start_connect(&op).await;
    let location = rig.consent(&url, &op).await;
    let (status, _) = rig.callback(&location).await;
    assert_eq!(status, 200);
    let (status, page) = rig.callback(&location).await;
    assert_eq!(status, 400);
    assert!(page.contains("unknown or already used"), "{page}");

    // A state issued for the default tenant, presented at another tenant's callback.
    let url = rig.start_connect(&op).await;
    let location = rig.consent(&url, &op).await;
    let other = location.replace("/oauth/callback", "/tenants/other/oauth/callback");
    let (status, page) = rig.callback(&other).await;
    assert_eq!(status, 400);
    assert!(page.contains("another tenant"), "{page}");
    // ... which burnt it: the right tenant's callback cannot use it afterwards either.
    let (status, _) = rig.callback(&location).await;
    assert_eq!(status, 400);

    // A state past its ten minutes.
    let url = rig.start_connect(&op).await;
    let location = rig.consent(&url, &op).await;
    rig.clock.advance(Duration::from_secs(11 * 60));
    let (status, page) = rig.callback(&location).await;
    assert_eq!(status, 400);
    assert!(page.contains("expired"), "{page}");

    // A login as another operator than the account being connected.
    let (other_op, _) = ops[1].clone();
    let url = rig.start_connect(&op).await;
    let location = rig.consent(&url, &other_op).await;
    let (status, page) = rig.callback(&location).await;
    assert_eq!(status, 400);
    assert!(page.contains(&format!("not `{op}`")), "{page}");
}

/// Log lines written while it is the thread's default subscriber.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_appears_in_logs_metrics_admin_answers_or_errors() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let ops = operators(2);
    let rig = Rig::start(&ops).await;
    rig.clock.set(1_780_000_000_000);
    let mut seen = String::new();
    for (op, _) in &ops {
        rig.connect(op).await;
    }
    let conversation = rig.mention("@TIM_Official aiuto").await;
    // Refreshes, a revocation, a refused refresh and a re-authorisation.
    rig.clock.advance(Duration::from_secs(7200));
    rig.host.check_accounts().await.unwrap();
    rig.x.revoke_user(&ops[0].0);
    rig.host
        .reply(
            "default",
            &conversation,
            &ops[0].1,
            Some(&ops[0].0),
            "ciao",
            "k1",
        )
        .await
        .unwrap();
    eventually("the account needs re-authorisation", async || {
        let statuses = rig.host.accounts().await.unwrap();
        rig.state_of(&statuses, &ops[0].0) == AccountState::NeedsReauth
    })
    .await;
    let (_, page) = rig
        .callback(&format!("{}/oauth/callback?state=x&code=y", rig.admin))
        .await;
    seen.push_str(&page);
    rig.connect(&ops[0].0).await;
    eventually("the held reply is sent", async || {
        rig.posted_by(&ops[0].0).len() == 1
    })
    .await;
    for path in ["/accounts", "/status", "/metrics", "/connectors"] {
        let (status, body) = rig.admin(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}");
        seen.push_str(&body);
    }
    let (_, refused) = rig
        .admin(
            reqwest::Method::POST,
            "/accounts/default/twitter/connect",
            Some("{\"account\": \"9\"}"),
        )
        .await;
    seen.push_str(&refused);
    for event in rig.crm_events() {
        seen.push_str(&serde_json::to_string(&event).unwrap());
    }
    seen.push_str(&format!("{:?}", rig.host.accounts().await.unwrap()));
    seen.push_str(
        &log.0
            .lock()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap(),
    );
    assert!(
        seen.contains("account state changed"),
        "the log was captured"
    );
    let planted: Vec<String> = rig
        .x
        .issued_tokens()
        .into_iter()
        .chain([
            CLIENT_SECRET.to_string(),
            TOKEN_KEY.to_string(),
            APP_TOKEN.to_string(),
        ])
        .collect();
    assert!(planted.len() > 6);
    for token in planted {
        assert!(!seen.contains(&token), "`{token}` leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_refresh_each_expiring_token_exactly_once() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!(
            "SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL \
             (`cargo xtask test` starts one)"
        );
        return;
    };
    let url = crate::store::fresh_postgres_database(&base).await;
    let ops = operators(1);
    let (op, handle) = ops[0].clone();
    let a = Rig::start_with(&ops, &url, "host-a").await;
    let b = Rig::start_on(a.x.clone(), &ops, &url, "host-b").await;
    a.clock.set(1_780_000_000_000);
    a.connect(&op).await;
    let conversation = a.mention("@TIM_Official due host").await;
    eventually("host B sees the account connected", async || {
        let statuses = b.host.accounts().await.unwrap();
        b.state_of(&statuses, &op) == AccountState::Connected
    })
    .await;

    // Twelve hours in ten-minute steps, both hosts checking at once at every step (and
    // their background tasks every 20 ms): six expiries, six refreshes.
    for step in 0..72 {
        a.clock.advance(Duration::from_secs(600));
        let (ra, rb) = tokio::join!(a.host.check_accounts(), b.host.check_accounts());
        ra.unwrap();
        rb.unwrap();
        if step % 12 == 11 {
            // Each host replies from the operator's account with the token it has now.
            for (n, rig) in [(1, &a), (2, &b)] {
                rig.host
                    .reply(
                        "default",
                        &conversation,
                        &handle,
                        Some(&op),
                        &format!("passo {step} dall'host {n}"),
                        &format!("{step}-{n}"),
                    )
                    .await
                    .unwrap();
            }
        }
    }
    eventually("every reply is sent", async || a.posted_by(&op).len() == 12).await;
    assert_eq!(a.x.refreshes(), 6);
    assert_eq!(a.x.most_refresh_presentations(), 1);
    let (ok_a, failed_a) = a.host.token_refreshes();
    let (ok_b, failed_b) = b.host.token_refreshes();
    assert_eq!(ok_a + ok_b, 6, "host A {ok_a}, host B {ok_b}");
    assert_eq!(failed_a + failed_b, 0);
    for rig in [&a, &b] {
        assert!(
            !rig.crm_events()
                .iter()
                .any(|e| matches!(e, CrmEvent::ReplyFailed { .. }))
        );
    }
}

/// `centralino run` on a config with a connected operator account, and what an admin
/// types: `accounts connect`, `status`, then (hosts stopped) `keys rotate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_connects_an_operators_account_from_the_command_line_and_rotates_the_key() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "static-token-tim");
    x.add_user("2001", "TIM_Marco", "Marco", "never-used-2001");
    x.add_oauth_client(CLIENT_ID, CLIENT_SECRET);
    x.set_webhook_app(APP_TOKEN, CONSUMER_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (public, admin) = (free(), free());
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let base = x.base_url();
    let config = format!(
        r#"[host]
store = "sqlite://centralino.db"
listen = "{public}"
admin_listen = "{admin}"
admin_token = "env:TEST_ADMIN_TOKEN"
token_key = "env:TEST_TOKEN_KEY"
plugin_dir = "{plugins}"

[[connectors]]
name = "twitter"
plugin = "twitter"
allowed_hosts = ["http://{authority}"]
settings = {{ api_base = "{base}" }}
secrets = {{ consumer_secret = "env:TEST_X_CONSUMER_SECRET" }}

[connectors.oauth]
client_id = "env:TEST_X_CLIENT_ID"
client_secret = "env:TEST_X_CLIENT_SECRET"
authorize_url = "{base}/i/oauth2/authorize"
token_url = "{base}/2/oauth2/token"
revoke_url = "{base}/2/oauth2/revoke"
identity_url = "{base}/2/users/me"
webhook_url = "http://{public}/webhooks/twitter"
app_token = "env:TEST_X_APP_TOKEN"
webhooks_url = "{base}/2/webhooks"
subscribe_url = "{base}/2/account_activity/webhooks/{{webhook}}/subscriptions/all"

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
credential = "env:TEST_X_TOKEN_TIM"

[[connectors.accounts]]
id = "2001"
handle = "TIM_Marco"
credential = "connected"
"#,
        plugins = plugins.display(),
        authority = x.authority(),
    );
    let path = dir.path().join("centralino.toml");
    std::fs::write(&path, config).unwrap();
    let new_key = "planted-new-token-key-fedcba9876543210fedcba98";
    let run = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["run", "--config"])
            .arg(&path)
            .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TEST_TOKEN_KEY", key)
            .env("TEST_X_CONSUMER_SECRET", CONSUMER_SECRET)
            .env("TEST_X_CLIENT_ID", CLIENT_ID)
            .env("TEST_X_CLIENT_SECRET", CLIENT_SECRET)
            .env("TEST_X_TOKEN_TIM", "static-token-tim")
            .env("TEST_X_APP_TOKEN", APP_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ready = async || {
        eventually("the host is ready", async || {
            http.get(format!("http://{admin}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    };
    let mut host = run(TOKEN_KEY);
    ready().await;

    // `centralino accounts connect twitter --account 2001` prints the URL and waits.
    let mut connect = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args([
            "accounts",
            "connect",
            "twitter",
            "--account",
            "2001",
            "--admin",
        ])
        .arg(format!("http://{admin}"))
        .env("CENTRALINO_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = connect.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        if let Some(url) = line
            .trim()
            .strip_prefix(&format!("{base}/i/oauth2/authorize"))
        {
            break format!("{base}/i/oauth2/authorize{url}");
        }
    };
    // The admin's browser: the consent page, its form, the redirect to the host.
    let html = http.get(&url).send().await.unwrap().text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("user_id".to_string(), "2001".to_string()));
    form.push(("decision".to_string(), "allow".to_string()));
    let answer = http
        .post(format!("{base}/i/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("http://{admin}/oauth/callback?")),
        "{location}"
    );
    let page = http.get(&location).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let printed = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if line.starts_with("connected:") {
            break line;
        }
    };
    assert!(printed.contains("account 2001 (TIM_Marco)"), "{printed}");
    assert!(printed.contains("offline.access"), "{printed}");
    let status = tokio::task::spawn_blocking(move || connect.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());

    let cli = |args: &'static [&'static str]| {
        let admin = format!("http://{admin}");
        let path = path.clone();
        let new_key = new_key.to_string();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_centralino"))
                .args(args)
                .args(if args[0] == "keys" {
                    vec!["--config".to_string(), path.display().to_string()]
                } else {
                    vec!["--admin".to_string(), admin]
                })
                .env("CENTRALINO_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("TEST_TOKEN_KEY", TOKEN_KEY)
                .env("TEST_NEW_TOKEN_KEY", new_key)
                .env("TEST_X_CONSUMER_SECRET", CONSUMER_SECRET)
                .env("TEST_X_CLIENT_ID", CLIENT_ID)
                .env("TEST_X_CLIENT_SECRET", CLIENT_SECRET)
                .env("TEST_X_TOKEN_TIM", "static-token-tim")
                .env("TEST_X_APP_TOKEN", APP_TOKEN)
                .output()
                .unwrap()
        })
    };
    let status = cli(&["status"]).await.unwrap();
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("2001"))
        .unwrap_or_default();
    assert!(
        line.contains("TIM_Marco") && line.contains("connected"),
        "{text}"
    );
    // The config's webhook URL was registered with X (its CRC answered) and the account
    // subscribed; `accounts list` says so.
    assert_eq!(x.webhook_registrations(), 1);
    assert_eq!(x.crc_checks(), (1, 1));
    assert_eq!(
        x.webhooks()[0].url,
        format!("http://{public}/webhooks/twitter")
    );
    let listed = cli(&["accounts", "list"]).await.unwrap();
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("2001"))
        .unwrap_or_default();
    assert!(
        line.contains("subscribed") && !line.contains("NOT SUBSCRIBED"),
        "{text}"
    );

    // Rotation: the host stopped, every token re-sealed, the host back with the new key.
    host.kill().unwrap();
    host.wait().unwrap();
    let rotated = cli(&["keys", "rotate", "--new", "env:TEST_NEW_TOKEN_KEY"])
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(said.contains("1 token(s) re-sealed"), "{said}");
    let mut host = run(new_key);
    ready().await;
    let (code, body) = {
        let response = http
            .get(format!("http://{admin}/accounts"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(code, 200);
    let accounts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accounts[0]["state"], "connected", "{body}");
    // The restarted host subscribes again without registering the webhook twice: it finds
    // it by listing the app's webhooks.
    let subscribed = cli(&["accounts", "subscribe", "twitter"]).await.unwrap();
    assert!(
        subscribed.status.success(),
        "{}",
        String::from_utf8_lossy(&subscribed.stderr)
    );
    assert_eq!(x.webhook_registrations(), 1);
    assert_eq!(x.subscribe_calls(), 2);
    assert_eq!(x.subscriptions().len(), 1);
    // The token opens with the new key: disconnecting revokes it at X, which needs it.
    let sent = http
        .post(format!(
            "http://{admin}/accounts/default/twitter/2001/disconnect"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 200);
    eventually("the disconnect revoked the token at X", async || {
        x.requests().iter().any(|r| r.path == "/2/oauth2/revoke")
    })
    .await;
    host.kill().unwrap();
    host.wait().unwrap();
}

/// A Facebook connector with two connected pages (5001, 5002) on the Graph emulator; the
/// admin (Facebook user 9001) manages those two and a third the connector does not serve.
async fn facebook_host(graph: &centralino_emulators::GraphApi) -> (Host, String, reqwest::Client) {
    graph.add_oauth_client("fb-app", CLIENT_SECRET);
    graph.add_user(
        "9001",
        "Giulia Admin",
        &[
            ("5001", "TIM"),
            ("5002", "Impresa Semplice"),
            ("5003", "Altro"),
        ],
    );
    let mut credentials = BTreeMap::new();
    let mut accounts = Vec::new();
    for page in ["5001", "5002"] {
        credentials.insert(
            format!("page-{page}"),
            Credential::Connected(ConnectedCredential::new()),
        );
        accounts.push(AccountConfig {
            id: page.to_string(),
            handle: None,
            credential: Some(format!("page-{page}")),
            settings: Vec::new(),
        });
    }
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new("fb-app-secret"));
    secrets.insert("verify_token".to_string(), Secret::new("verify-me"));
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts,
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", admin_listener.local_addr().unwrap());
    let base = graph.base_url();
    let host = Host::builder()
        .connector(spec)
        .token_key(Secret::new(TOKEN_KEY))
        .oauth_app(
            "default",
            "facebook",
            OAuthApp {
                client_id: Secret::new("fb-app"),
                client_secret: Some(Secret::new(CLIENT_SECRET)),
                redirect_url: format!("{admin}/oauth/callback"),
                endpoints: Endpoints {
                    authorize_url: Some(format!("{base}/v19.0/dialog/oauth")),
                    token_url: Some(format!("{base}/v19.0/oauth/access_token")),
                    accounts_url: Some(format!("{base}/v19.0/me/accounts")),
                    subscribe_url: Some(format!("{base}/v19.0/{{account}}/subscribed_apps")),
                    ..Endpoints::default()
                },
                webhook_url: None,
                app_token: None,
            },
        )
        .build()
        .await
        .unwrap();
    let api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN_TOKEN)));
    tokio::spawn(async move { api.serve(admin_listener).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (host, admin, http)
}

/// The Facebook login as user 9001, from `connect`'s authorize URL to the callback page.
async fn facebook_login(
    graph: &centralino_emulators::GraphApi,
    http: &reqwest::Client,
    authorize_url: &str,
) -> (u16, String) {
    let html = http
        .get(authorize_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = hidden_inputs(&html);
    assert!(
        form.iter()
            .any(|(k, v)| k == "scope" && v.contains("pages_messaging"))
    );
    form.push(("user_id".to_string(), "9001".to_string()));
    form.push(("decision".to_string(), "allow".to_string()));
    let answer = http
        .post(format!("{}/v19.0/dialog/oauth", graph.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let page = http.get(location).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

#[tokio::test]
async fn one_facebook_login_connects_the_page_tokens_of_the_pages_the_connector_serves() {
    let graph = centralino_emulators::GraphApi::start().await.unwrap();
    let (host, _admin, http) = facebook_host(&graph).await;
    let statuses = host.accounts().await.unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| s.state == AccountState::Disconnected)
    );

    // One login: both served pages get their page tokens; the third page is not kept.
    let start = host
        .connect_account("default", "facebook", None)
        .await
        .unwrap();
    let (status, page) = facebook_login(&graph, &http, &start.authorize_url).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("5001 (TIM)") && page.contains("5002 (Impresa Semplice)"),
        "{page}"
    );
    let statuses = host.accounts().await.unwrap();
    assert_eq!(statuses.len(), 2);
    for s in &statuses {
        assert_eq!(s.state, AccountState::Connected, "{s:?}");
        assert_eq!(s.expires_at, None, "page tokens do not expire");
        assert_eq!(s.subscribed, Some(true), "{s:?}");
    }
    // Each page subscribed the app to its webhooks, with its own page token.
    let subscribed = graph.subscriptions();
    assert_eq!(
        subscribed.keys().cloned().collect::<Vec<_>>(),
        ["5001", "5002"]
    );
    assert_eq!(
        subscribed["5001"],
        "messages,messaging_postbacks,messaging_referrals,message_deliveries,message_reads,message_edits,standby,feed"
    );
    // Subscribing again is harmless: the same pages, the same fields.
    let again = host
        .subscribe_accounts("default", "facebook")
        .await
        .unwrap();
    assert!(again.iter().all(|s| s.subscribed == Some(true)));
    assert_eq!(graph.subscriptions(), subscribed);

    // A Messenger reply from page 5002 goes out with that page's own token.
    graph.customer_wrote("5002", "7001");
    host.send(
        "default",
        "facebook",
        centralino::types::OutboundMessage {
            account: "5002".to_string(),
            conversation_key: "dm:5002:7001".to_string(),
            kind: centralino::types::MessageKind::PrivateMessage,
            recipient: Some("7001".to_string()),
            in_reply_to: None,
            text: "Ciao dal team Impresa Semplice".to_string(),
            attachments: Vec::new(),
            idempotency_key: "fb-1".to_string(),
        },
    )
    .await
    .unwrap();
    let delivered = graph.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].page_id, "5002");
    let sent_with = graph
        .requests()
        .into_iter()
        .last()
        .unwrap()
        .query_param("access_token")
        .unwrap();
    assert!(graph.issued_tokens().contains(&sent_with));

    // Re-authorising one page with `--account 5001` renews only that page's token.
    let before = host.accounts().await.unwrap();
    let start = host
        .connect_account("default", "facebook", Some("5001"))
        .await
        .unwrap();
    let (status, page) = facebook_login(&graph, &http, &start.authorize_url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("5001") && !page.contains("5002"), "{page}");
    let after = host.accounts().await.unwrap();
    let changed = |id: &str| {
        let b = before.iter().find(|s| s.account == id).unwrap();
        let a = after.iter().find(|s| s.account == id).unwrap();
        a.updated_at != b.updated_at
    };
    assert!(changed("5001"));
    assert!(!changed("5002"));
}

#[tokio::test]
async fn a_token_that_cannot_be_refreshed_in_time_is_expiring_until_a_refresh_succeeds() {
    let ops = operators(1);
    let rig = Rig::start(&ops).await;
    let op = ops[0].0.clone();
    rig.clock.set(1_780_000_000_000);
    rig.connect(&op).await;
    // Five minutes before expiry X's token endpoint answers 503.
    rig.x.inject(
        "/2/oauth2/token",
        centralino_emulators::Fault::ServerError(503),
        1_000,
    );
    rig.clock.advance(Duration::from_secs(7200 - 300));
    rig.host.check_accounts().await.unwrap();
    let statuses = rig.host.accounts().await.unwrap();
    assert_eq!(rig.state_of(&statuses, &op), AccountState::Expiring);
    eventually("the CRM hears it is expiring", async || {
        rig.crm_events().iter().any(
            |e| matches!(e, CrmEvent::AccountStateChanged { state, .. } if state == "expiring"),
        )
    })
    .await;
    // X answers again: the next check refreshes it and it is connected.
    rig.x.clear_faults();
    rig.clock.advance(Duration::from_secs(61));
    rig.host.check_accounts().await.unwrap();
    let statuses = rig.host.accounts().await.unwrap();
    assert_eq!(rig.state_of(&statuses, &op), AccountState::Connected);
    assert_eq!(rig.x.refreshes(), 1);
    let (refreshed, failed) = rig.host.token_refreshes();
    assert_eq!(refreshed, 1);
    assert!(failed >= 1);
}

/// A Messenger conversation of page 5001 whose customer `psid` last wrote `ago` before
/// now, delivered signed; its id.
async fn messenger_conversation(
    host: &Host,
    graph: &centralino_emulators::GraphApi,
    psid: &str,
    ago: Duration,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let written = now - ago.as_millis() as u64;
    let body = serde_json::to_vec(&centralino_emulators::webhooks::messenger_text(
        "5001",
        psid,
        &format!("m_{psid}"),
        "buongiorno, ci siete?",
        written,
    ))
    .unwrap();
    let request = centralino::types::WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: centralino_emulators::webhooks::facebook_delivery_headers("fb-app-secret", &body),
        body,
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "facebook", request)
        .await;
    assert_eq!(response.status, 200);
    graph.customer_wrote_ago("5001", psid, ago);
    stored[0].conversation_id.to_string()
}

#[tokio::test]
async fn a_messenger_reply_after_30_hours_goes_out_as_human_agent_and_after_8_days_is_refused_before_any_call()
 {
    let graph = centralino_emulators::GraphApi::start().await.unwrap();
    graph.add_page("5001", "static-page-token-tim");
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("static-page-token-tim"),
        },
    );
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new("fb-app-secret"));
    secrets.insert("verify_token".to_string(), Secret::new("verify-me"));
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![
                ("graph_base".to_string(), graph.base_url()),
                ("human_agent".to_string(), "true".to_string()),
            ],
            accounts: vec![AccountConfig {
                id: "5001".to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("tim-page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    let host = Host::builder().connector(spec).build().await.unwrap();
    let events = || -> Vec<CrmEvent> {
        host.local_inbox()
            .unwrap()
            .events()
            .into_iter()
            .map(|d| d.event)
            .collect()
    };

    // 30 hours: past Messenger's 24-hour window, within the human agent's 7 days.
    let late = messenger_conversation(&host, &graph, "7001", Duration::from_secs(30 * 3600)).await;
    host.reply(
        "default",
        &late,
        "giulia",
        None,
        "Eccoci, scusi l'attesa",
        "late-1",
    )
    .await
    .unwrap();
    eventually("the reply is delivered", async || {
        graph.delivered().len() == 1
    })
    .await;
    let sent = graph
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/me/messages"))
        .unwrap();
    assert_eq!(sent.json()["messaging_type"], "MESSAGE_TAG");
    assert_eq!(sent.json()["tag"], "HUMAN_AGENT");
    assert_eq!(graph.delivered()[0].recipient, "7001");

    // 8 days: refused before any call, with a reason the CRM can show.
    let calls = graph.requests().len();
    let stale =
        messenger_conversation(&host, &graph, "7002", Duration::from_secs(8 * 24 * 3600)).await;
    let queued = host
        .reply("default", &stale, "giulia", None, "Ci scusi", "stale-1")
        .await
        .unwrap();
    eventually("the CRM hears why it was not sent", async || {
        events().iter().any(|e| {
            matches!(e,
            CrmEvent::ReplyFailed { outbox_id, reason, .. }
                if *outbox_id == queued.id && reason.contains("outside_messaging_window"))
        })
    })
    .await;
    assert_eq!(graph.requests().len(), calls, "no call was made");
    assert_eq!(graph.delivered().len(), 1);
}

#[tokio::test]
async fn connecting_x_accounts_registers_the_webhook_once_answers_its_crc_and_subscribes_each_account()
 {
    let ops = operators(2);
    let rig = Rig::start(&ops).await;
    let webhook_url = format!("{}/webhooks/twitter", rig.ingress);

    // The first connect registers the host's webhook URL, after X's CRC call to it was
    // answered with the right HMAC, then subscribes the account with its own token.
    rig.connect(&ops[0].0).await;
    assert_eq!(rig.x.webhook_registrations(), 1);
    let webhooks = rig.x.webhooks();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0].url, webhook_url);
    assert_eq!(rig.x.crc_checks(), (1, 1));
    let id = webhooks[0].id.clone();
    assert_eq!(rig.x.subscriptions(), vec![(id.clone(), ops[0].0.clone())]);
    let statuses = rig.host.accounts().await.unwrap();
    let first = statuses.iter().find(|s| s.account == ops[0].0).unwrap();
    assert_eq!(first.subscribed, Some(true), "{first:?}");
    let second = statuses.iter().find(|s| s.account == ops[1].0).unwrap();
    assert_eq!(second.subscribed, Some(false), "{second:?}");

    // The second account and a re-authorisation of the first: no second registration.
    rig.connect(&ops[1].0).await;
    rig.connect(&ops[0].0).await;
    assert_eq!(rig.x.webhook_registrations(), 1);
    assert_eq!(rig.x.crc_checks(), (1, 1));
    assert_eq!(
        rig.x.subscriptions(),
        vec![
            (id.clone(), ops[0].0.clone()),
            (id.clone(), ops[1].0.clone())
        ]
    );
    assert_eq!(rig.x.subscribe_calls(), 3);
    // `status` shows both live.
    let (status, body) = rig.admin(reqwest::Method::GET, "/status", None).await;
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let live: Vec<bool> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subscribed"] == true)
        .collect();
    assert_eq!(live, vec![true, true], "{body}");

    // `accounts subscribe` again: idempotent. So is another host on the same app, which
    // finds the webhook by listing.
    let (status, body) = rig
        .admin(
            reqwest::Method::POST,
            "/accounts/default/twitter/subscribe",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.x.webhook_registrations(), 1);
    assert_eq!(rig.x.subscriptions().len(), 2);
    assert_eq!(rig.x.subscribe_calls(), 5);
}

#[tokio::test]
async fn a_webhook_whose_crc_is_answered_wrongly_is_not_registered_and_the_account_is_not_live() {
    let ops = operators(1);
    let rig = Rig::start(&ops).await;
    // X checks the CRC answer against another consumer secret than the connector's.
    rig.x.set_webhook_app(APP_TOKEN, "not-the-consumer-secret");
    rig.connect(&ops[0].0).await;
    assert_eq!(rig.x.crc_checks(), (1, 0));
    assert_eq!(rig.x.webhook_registrations(), 0);
    assert!(rig.x.subscriptions().is_empty());
    let statuses = rig.host.accounts().await.unwrap();
    assert_eq!(statuses[0].state, AccountState::Connected);
    assert_eq!(statuses[0].subscribed, Some(false));
    // Once the secrets agree, `accounts subscribe` registers it and subscribes.
    rig.x.set_webhook_app(APP_TOKEN, CONSUMER_SECRET);
    let (status, body) = rig
        .admin(
            reqwest::Method::POST,
            "/accounts/default/twitter/subscribe",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.x.crc_checks(), (2, 1));
    assert_eq!(rig.x.webhook_registrations(), 1);
    assert!(body.contains("\"subscribed\":true"), "{body}");
}
