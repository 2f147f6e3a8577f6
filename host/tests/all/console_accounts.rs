//! The console's accounts (issues 15 and 16): in headless Chromium, with real clicks, an
//! admin connects an operator's X account through the X emulator's OAuth consent page and
//! comes back to the console, where the account shows `connected`; a re-authorisation as
//! the wrong user is refused with the way back; a Connect without the CSRF token is
//! refused. Connecting also registers the host's webhook with X (its CRC answered by the
//! ingress) and subscribes the account, which the page shows as a live subscription. Screenshots go to `target/console/`.

use std::collections::BTreeMap;

use centralino::Host;
use centralino::accounts::{AccountState, ConnectedCredential, Endpoints, OAuthApp};
use centralino::api::AdminApi;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::types::{AccountConfig, ConnectorConfig};
use centralino_emulators::XApi;

use crate::component;
use crate::console::{
    Browser, TOKEN, browser_available, browser_login, csrf_field, fits_width, log_in, page, plain,
};

const CLIENT_ID: &str = "console-client-id";
const CLIENT_SECRET: &str = "console-client-secret";
const TOKEN_KEY: &str = "console-token-key-0123456789abcdef0123456789";

/// A host whose X connector serves the brand (static token) and two operators whose
/// accounts the host connects, with its admin API (and console) on loopback.
async fn host_with_operators(x: &XApi) -> (Host, String) {
    x.add_user("1001", "TIM_Official", "TIM", "static-token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "never-used-2001");
    x.add_user("2002", "TIM_Giulia", "Giulia di TIM", "never-used-2002");
    x.add_oauth_client(CLIENT_ID, CLIENT_SECRET);
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("static-token-tim")),
    );
    let account = |id: &str, handle: &str, credential: &str| AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        credential: Some(credential.to_string()),
        settings: Vec::new(),
    };
    let mut accounts = vec![account("1001", "TIM_Official", "tim")];
    for (id, handle) in [("2001", "TIM_Marco"), ("2002", "TIM_Giulia")] {
        credentials.insert(
            format!("op-{id}"),
            Credential::Connected(ConnectedCredential::new()),
        );
        accounts.push(account(id, handle, &format!("op-{id}")));
    }
    let mut spec = ConnectorSpec::new(
        "twitter",
        component("twitter"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts,
        },
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "consumer_secret".to_string(),
        Secret::new("consumer-secret"),
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", listener.local_addr().unwrap());
    // The webhook X is asked to call: the ingress, answering its CRC.
    let ingress_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = format!("http://{}", ingress_listener.local_addr().unwrap());
    x.set_webhook_app("console-app-token", "consumer-secret");
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
            subscribe_url: Some(format!(
                "{base}/2/account_activity/webhooks/{{webhook}}/subscriptions/all"
            )),
            webhooks_url: Some(format!("{base}/2/webhooks")),
            ..Endpoints::default()
        },
        webhook_url: Some(format!("{ingress}/webhooks/twitter")),
        app_token: Some(Secret::new("console-app-token")),
    };
    let host = Host::builder()
        .connector(spec)
        .token_key(Secret::new(TOKEN_KEY))
        .oauth_app("default", "twitter", app)
        .build()
        .await
        .unwrap();
    let api = AdminApi::new(host.clone(), Some(&Secret::new(TOKEN)));
    tokio::spawn(async move { api.serve(listener).await.unwrap() });
    let serving = host.clone();
    tokio::spawn(async move { serving.serve(ingress_listener).await.unwrap() });
    (host, admin)
}

fn state_of(statuses: &[centralino::accounts::AccountStatus], account: &str) -> AccountState {
    statuses
        .iter()
        .find(|s| s.account == account)
        .unwrap()
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_an_admin_connects_an_operators_account_through_the_platforms_consent_page() {
    if !browser_available() {
        return;
    }
    let x = XApi::start().await.unwrap();
    let (host, admin) = host_with_operators(&x).await;
    let console = format!("{admin}/console");
    let browser = Browser::start().await;
    browser_login(&browser, &console).await;

    // The connectors page lists the host-held accounts, neither connected yet.
    browser.click("#nav-connectors").await;
    browser.wait_for_text("h1", "Connectors").await;
    browser
        .wait_for_text("#account-state-default-twitter-2001", "Disconnected")
        .await;
    browser
        .wait_for_text("#account-state-default-twitter-2002", "Disconnected")
        .await;
    assert_eq!(
        browser.text("#connect-default-twitter-2001").await,
        "Connect"
    );
    assert_eq!(
        browser.text("#webhooks-default-twitter-2001").await,
        "subscription not live"
    );
    assert!(fits_width(&browser).await);
    browser.screenshot("connectors-accounts").await;

    // Connect: on to X's consent page, sign in as Marco, authorise.
    browser.click("#connect-default-twitter-2001").await;
    browser.find("#authorize").await;
    assert!(
        browser.url().await.starts_with(&x.base_url()),
        "not on the platform's page: {}",
        browser.url().await
    );
    browser.click("#user_id option[value='2001']").await;
    browser.screenshot("oauth-consent").await;
    browser.click("#authorize").await;

    // Back in the console, the account is connected.
    browser
        .wait_for_text("#account-state-default-twitter-2001", "Connected")
        .await;
    assert!(
        browser.url().await.ends_with("/console/connectors"),
        "{}",
        browser.url().await
    );
    browser
        .wait_for_text("#account-default-twitter-2001", "TIM_Marco")
        .await;
    assert_eq!(
        browser.text("#connect-default-twitter-2001").await,
        "Re-authorise"
    );
    // Connecting registered the host's webhook with X and subscribed the account.
    assert_eq!(
        browser.text("#webhooks-default-twitter-2001").await,
        "subscription live"
    );
    assert_eq!(x.webhook_registrations(), 1);
    browser
        .wait_for_text("#account-state-default-twitter-2002", "Disconnected")
        .await;
    browser
        .wait_for_text("#flash", "Start connecting default/twitter/2001: done")
        .await;
    browser.screenshot("connectors-connected").await;
    let statuses = host.accounts().await.unwrap();
    assert_eq!(state_of(&statuses, "2001"), AccountState::Connected);
    assert_eq!(state_of(&statuses, "2002"), AccountState::Disconnected);
    assert_eq!(
        statuses
            .iter()
            .find(|s| s.account == "2001")
            .unwrap()
            .label
            .as_deref(),
        Some("TIM_Marco")
    );

    // Re-authorising as someone else is refused; the page leads back to the console.
    browser.click("#connect-default-twitter-2001").await;
    browser.find("#authorize").await;
    browser.click("#user_id option[value='2002']").await;
    browser.click("#authorize").await;
    browser.wait_for_text("#outcome", "not `2001`").await;
    browser.click("#back").await;
    browser
        .wait_for_text("#account-state-default-twitter-2001", "Connected")
        .await;
    browser
        .wait_for_text("#account-state-default-twitter-2002", "Disconnected")
        .await;

    // Refusing consent on X's page leads back to the console too; nothing changes.
    browser.click("#connect-default-twitter-2002").await;
    browser.click("#cancel").await;
    browser.wait_for_text("#outcome", "access_denied").await;
    browser.click("#back").await;
    browser
        .wait_for_text("#account-state-default-twitter-2002", "Disconnected")
        .await;

    // At phone width the accounts fit: no sideways scrolling.
    browser.resize(390, 844).await;
    browser.find("#account-default-twitter-2001").await;
    assert!(fits_width(&browser).await);
    browser.screenshot("connectors-accounts-phone").await;
    browser.resize(1280, 900).await;

    // In Italian too.
    browser.click("#lang").await;
    browser
        .wait_for_text("#account-state-default-twitter-2001", "Collegato")
        .await;
    assert_eq!(
        browser.text("#connect-default-twitter-2002").await,
        "Collega"
    );
    assert_eq!(
        browser.text("#connect-default-twitter-2001").await,
        "Riautorizza"
    );
    browser.screenshot("connectors-accounts-it").await;

    // The audit log has both starts.
    browser.click("#nav-audit").await;
    let entries = browser.text("table").await;
    let starts = entries
        .lines()
        .filter(|l| l.contains("default/twitter/2001"))
        .count();
    assert_eq!(starts, 2, "{entries}");
    browser.quit().await;

    // Without the CSRF token the console starts no flow.
    let http = plain();
    let cookie = log_in(&http, &console).await;
    let connectors = page(&http, &format!("{console}/connectors"), &cookie).await;
    let csrf = csrf_field(&connectors);
    let post = |body: String| {
        http.post(format!("{console}/accounts"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let refused = post("tenant=default&name=twitter&account=2002&action=connect".to_string())
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let started = post(format!(
        "tenant=default&name=twitter&account=2002&action=connect&csrf={csrf}"
    ))
    .await
    .unwrap();
    assert_eq!(started.status(), 200);
    let body = started.text().await.unwrap();
    assert!(
        body.contains(&format!("url={}/i/oauth2/authorize?", x.base_url())),
        "{body}"
    );
    let audit = page(&http, &format!("{console}/audit"), &cookie).await;
    // The refused consent's start, and this one; not the POST without the token.
    assert_eq!(
        audit
            .matches("Start connecting default/twitter/2002</td>")
            .count(),
        2,
        "{audit}"
    );
}
