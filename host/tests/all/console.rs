//! The admin console (issue 16, first slice), in a real browser: headless Chromium
//! (Debian's `chromium` and `chromedriver`) driven through WebDriver from this test,
//! with real clicks. An admin logs in, sees a customer's mention appear on the overview
//! within 2 s of its webhook (no reload), disables and enables a connector, reads the
//! audit log, switches to Italian and looks at the pages at phone width. Screenshots of
//! each page go to `target/console/`.
//!
//! The browser test skips, saying why, only when Chromium or ChromeDriver is missing;
//! `cargo xtask test` installs both and sets `CENTRALINO_TEST_BROWSER=required`, so in CI
//! a missing browser fails instead. The CSRF and loopback tests need no browser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use centralino::Host;
use centralino::api::AdminApi;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;
use serde_json::{Value, json};

use crate::component;
use crate::routing::chain;
use crate::support::{eventually, eventually_within, free_port};

pub(crate) const TOKEN: &str = "console-admin-token";
const SECRET: &str = "consumer-secret";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A telco's X connector (brand `tim`) with routing whose only operator is offline, so
/// every mention waits; the ingress and the admin API (with its console) on loopback.
struct Telco {
    host: Host,
    x: XApi,
    ingress: String,
    admin: String,
}

async fn telco(admin_token: Option<&str>) -> Telco {
    telco_with(admin_token, Setup::default()).await
}

/// How a test's telco differs from the plain one.
struct Setup {
    /// Its operators (all offline).
    operators: Vec<Operator>,
    /// A shadow chain.
    shadow: Option<&'static str>,
    /// The Twitter connector's plugin file.
    plugin: PathBuf,
    /// The store (default: in memory).
    store: Option<String>,
    /// A second tenant, `wind`, with a connector of its own and operator Paolo.
    wind: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            operators: vec![operator("marco", &["tim"], "2001")],
            shadow: None,
            plugin: component("twitter"),
            store: None,
            wind: false,
        }
    }
}

/// An operator of the telco, offline until someone sets them online.
fn operator(id: &str, skills: &[&str], x_account: &str) -> Operator {
    Operator::new(id, 2)
        .skills(skills.iter().copied())
        .languages(["it"])
        .account("twitter", x_account)
}

/// The telco with these operators (all offline) and, maybe, a shadow chain.
async fn telco_with(admin_token: Option<&str>, setup: Setup) -> Telco {
    let Setup {
        operators,
        shadow,
        plugin,
        store,
        wind,
    } = setup;
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
    let mut credentials = BTreeMap::new();
    for (name, token) in [("tim", "token-tim"), ("marco", "token-marco")] {
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
        plugin,
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts: vec![
                account("1001", "TIM_Official", "tim"),
                account("2001", "TIM_Marco", "marco"),
            ],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec.brands.insert("1001".to_string(), "tim".to_string());
    let mut builder = RoutingEngine::builder(chain("skills > least-loaded").await);
    if let Some(shadow) = shadow {
        builder = builder.shadow(chain(shadow).await);
    }
    let mut engine = builder.build();
    for operator in operators {
        engine.add_operator(operator, Presence::Offline).await;
    }
    let mut host = Host::builder()
        .connector(spec.clone())
        .routing(engine)
        .brand(crate::answers::brand("tim"));
    if let Some(store) = store {
        host = host.store(store);
    }
    if wind {
        let mut wind_spec = spec;
        wind_spec.tenant = "wind".into();
        wind_spec.brands.clear();
        let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
        engine
            .add_operator(operator("paolo", &["wind"], "3001"), Presence::Offline)
            .await;
        host = host.connector(wind_spec).tenant_routing("wind", engine);
    }
    let host = host.build().await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = format!("http://{}", listener.local_addr().unwrap());
    let serving = host.clone();
    tokio::spawn(async move { serving.serve(listener).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", listener.local_addr().unwrap());
    let plugins = component("skills").parent().unwrap().to_path_buf();
    let api =
        AdminApi::new(host.clone(), admin_token.map(Secret::new).as_ref()).with_plugin_dir(plugins);
    tokio::spawn(async move { api.serve(listener).await.unwrap() });
    Telco {
        host,
        x,
        ingress,
        admin,
    }
}

impl Telco {
    /// A customer's mention of `@TIM_Official`, delivered as X's signed webhook; answers
    /// the ingress's status.
    async fn mention(&self, author: (&str, &str), text: &str) -> u16 {
        self.x
            .add_user(author.0, author.1, author.1, "token-customer");
        let tweet = self.x.post_tweet(NewTweet::new(author.0, text));
        let body = serde_json::to_vec(&tweet_create(
            "1001",
            &tweet.id,
            (author.0, author.1, author.1),
            text,
            None,
        ))
        .unwrap();
        let mut request = reqwest::Client::new()
            .post(format!("{}/webhooks/twitter", self.ingress))
            .body(body.clone());
        for (name, value) in twitter_delivery_headers(SECRET, &body) {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    fn twitter_enabled(&self) -> bool {
        self.host
            .connector_health()
            .iter()
            .find(|c| c.connector == "twitter")
            .unwrap()
            .enabled
    }
}

/// Whether the browser test can run; says why not when it cannot.
pub(crate) fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing: install Debian's `chromium` and `chromium-driver` \
         (`cargo xtask test` does)",
        missing.join(" and ")
    );
    assert!(
        std::env::var("CENTRALINO_TEST_BROWSER").as_deref() != Ok("required"),
        "the console's browser test must run here, but {why}"
    );
    eprintln!("SKIPPED the console's browser test: {why}");
    false
}

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium behind ChromeDriver, spoken to over WebDriver's HTTP API.
pub(crate) struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that ending it ends the browser too.
                .process_group(0)
                .spawn()
                .unwrap()
        };
        // No WebDriver command may hang the test: each has 60 s.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        eventually_within(
            Duration::from_secs(20),
            "chromedriver to start",
            async || match http.get(format!("{base}/status")).send().await {
                Ok(response) => {
                    let status: Value =
                        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                    status["value"]["ready"] == true
                }
                Err(_) => false,
            },
        )
        .await;
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    // A page that never finishes loading fails its step within 20 s
                    // (WebDriver's default is 300 s per command).
                    "timeouts": { "pageLoad": 20000, "script": 10000, "implicit": 0 },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-dev-shm-usage",
                            "--lang=en-US",
                            "--window-size=1280,900",
                            format!("--user-data-dir={}", profile.path().display()),
                        ],
                        "prefs": { "intl.accept_languages": "en-US,en" }
                    }
                }
            }
        });
        let created = post(&http, &format!("{base}/session"), &capabilities).await;
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let answer = match method {
            "GET" => {
                let response = self.http.get(&url).send().await.unwrap();
                serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
            }
            "DELETE" => {
                let response = self.http.delete(&url).send().await.unwrap();
                serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
            }
            _ => post(&self.http, &url, &body.unwrap_or_else(|| json!({}))).await,
        };
        answer["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        let answer = self.call("POST", "/url", Some(json!({ "url": url }))).await;
        assert!(answer.is_null(), "navigating to {url}: {answer}");
    }

    pub(crate) async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let found = self
            .call(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT].as_str().map(str::to_string)
    }

    /// The element, waiting up to 10 s for it to appear.
    pub(crate) async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            if started.elapsed() > Duration::from_secs(10) {
                self.screenshot("failure").await;
                let source = self.call("GET", "/source", None).await;
                panic!(
                    "no `{css}` on {} (target/console/failure.png):\n{}",
                    self.url().await,
                    source.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `css`'s text. The live overview swaps its cards in as they change, so an element
    /// found may be gone when its text is asked for (WebDriver answers with a stale
    /// element error, not a text): it is then found again, for up to 10 s.
    pub(crate) async fn text(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let element = self.find(css).await;
            let text = self
                .call("GET", &format!("/element/{element}/text"), None)
                .await;
            if let Some(text) = text.as_str() {
                return text.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "`{css}`'s text could not be read: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to 10 s for `css`'s text to contain `expected`.
    pub(crate) async fn wait_for_text(&self, css: &str, expected: &str) {
        let started = Instant::now();
        loop {
            if let Some(element) = self.try_find(css).await {
                let text = self
                    .call("GET", &format!("/element/{element}/text"), None)
                    .await;
                if text.as_str().is_some_and(|t| t.contains(expected)) {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "`{css}` never said `{expected}`; it says `{}`",
                self.text(css).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        let answer = self
            .call("POST", &format!("/element/{element}/click"), None)
            .await;
        assert!(answer.is_null(), "clicking `{css}`: {answer}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call("POST", &format!("/element/{element}/clear"), None)
            .await;
        let answer = self
            .call(
                "POST",
                &format!("/element/{element}/value"),
                Some(json!({ "text": text })),
            )
            .await;
        assert!(answer.is_null(), "typing into `{css}`: {answer}");
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Saves a PNG of the window as `target/console/<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), bytes).unwrap();
    }

    pub(crate) async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the browser it started: their own process group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_an_admin_logs_in_sees_a_mention_live_and_disables_and_enables_a_connector() {
    if !browser_available() {
        return;
    }
    let telco = telco(Some(TOKEN)).await;
    let browser = Browser::start().await;
    let console = format!("{}/console", telco.admin);

    // Not logged in: the console sends the browser to its login page.
    browser.goto(&console).await;
    browser.find("#token").await;
    assert!(browser.url().await.ends_with("/console/login"));
    browser.screenshot("login").await;
    browser.type_into("#token", "not-the-token").await;
    browser.click("#login").await;
    browser
        .wait_for_text("#login-problem", "That is not the admin token.")
        .await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#login").await;
    browser.wait_for_text("h1", "Overview").await;
    browser.wait_for_text("#live-state", "Live").await;
    assert_eq!(browser.text("#waiting-total").await, "0");

    // A customer writes; the overview shows it without a reload, within 2 s.
    let text = "@TIM_Official la fibra è giù da stamattina (console 1)";
    let written = Instant::now();
    assert_eq!(telco.mention(("42", "mario_rossi"), text).await, 200);
    loop {
        let waiting = browser.text("#waiting").await;
        if waiting.contains("la fibra è giù da stamattina") {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(2),
            "the mention was not on the overview 2 s after its webhook: {waiting}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown_after = written.elapsed();
    eprintln!("the mention was on the overview {shown_after:?} after its webhook");
    assert_eq!(browser.text("#waiting-total").await, "1");
    let row = browser.text("#waiting tbody tr").await;
    assert!(row.contains("tim") && row.contains("42"), "{row}");
    assert!(row.contains("nobody at work"), "{row}");
    browser.screenshot("overview").await;

    // Connectors: disable, and the ingress refuses X's deliveries; enable again.
    browser.click("#nav-connectors").await;
    browser.wait_for_text("h1", "Connectors").await;
    let row = browser.text("#connector-default-twitter").await;
    assert!(row.contains("twitter") && row.contains("Enabled"), "{row}");
    browser.screenshot("connectors").await;
    browser.click("#disable-default-twitter").await;
    browser
        .wait_for_text("#state-default-twitter", "Disabled")
        .await;
    browser
        .wait_for_text("#flash", "Disable default/twitter: done")
        .await;
    assert!(!telco.twitter_enabled());
    assert_eq!(
        telco
            .mention(("43", "lucia"), "@TIM_Official ci sei?")
            .await,
        503
    );
    browser.screenshot("connectors-disabled").await;
    // The overview counts it among the unhealthy connectors.
    browser.click("#nav-overview").await;
    browser.wait_for_text("#unhealthy-count", "1").await;
    browser.wait_for_text("#unhealthy", "Disabled").await;
    browser.click("#nav-connectors").await;
    browser.click("#enable-default-twitter").await;
    browser
        .wait_for_text("#state-default-twitter", "Enabled")
        .await;
    assert!(telco.twitter_enabled());

    // The audit log says who did what, and when.
    browser.click("#nav-audit").await;
    browser.wait_for_text("h1", "Audit log").await;
    let entries = browser.text("table").await;
    let lines: Vec<&str> = entries
        .lines()
        .filter(|l| l.contains("default/twitter"))
        .collect();
    assert_eq!(lines.len(), 2, "{entries}");
    assert!(lines[0].contains("Enable default/twitter"), "{entries}");
    assert!(lines[1].contains("Disable default/twitter"), "{entries}");
    assert!(entries.contains("admin (token)"), "{entries}");
    browser.screenshot("audit").await;

    // Italian, chosen in the header and remembered.
    browser.click("#lang").await;
    browser.wait_for_text("h1", "Registro modifiche").await;
    browser.screenshot("audit-it").await;
    browser.click("#nav-overview").await;
    browser.wait_for_text("h1", "Panoramica").await;
    browser.wait_for_text("#live-state", "In diretta").await;
    browser
        .wait_for_text("#waiting", "nessun operatore al lavoro")
        .await;
    browser.screenshot("overview-it").await;

    // At phone width every page fits: no sideways scrolling.
    browser.resize(390, 844).await;
    for page in ["overview", "connectors", "audit"] {
        browser.goto(&format!("{console}/{page}")).await;
        browser.find("h1").await;
        let fits = browser
            .script(
                "return document.documentElement.scrollWidth <= \
                 document.documentElement.clientWidth;",
            )
            .await;
        assert_eq!(fits, true, "{page} scrolls sideways at 390 px");
        browser.screenshot(&format!("{page}-phone")).await;
    }
    browser.resize(1280, 900).await;

    // Logging out ends the session.
    browser.goto(&format!("{console}/overview")).await;
    browser.click("#logout").await;
    browser.find("#token").await;
    browser.goto(&format!("{console}/overview")).await;
    browser.find("#token").await;
    browser.quit().await;
}

/// A client that keeps no cookies and follows no redirects, so every step shows.
pub(crate) fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A cookie's `name=value` from a response's `Set-Cookie` headers, with its attributes.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            (pair.to_string(), attributes.to_string())
        })
}

/// The value of the page's first hidden `csrf` field.
pub(crate) fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Logs in with the admin token; answers the session's cookie.
pub(crate) async fn log_in(http: &reqwest::Client, console: &str) -> String {
    let page = http.get(format!("{console}/login")).send().await.unwrap();
    let (login_cookie, _) = set_cookie(&page, "centralino_login").unwrap();
    let form = csrf_field(&page.text().await.unwrap());
    let response = http
        .post(format!("{console}/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={form}&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    set_cookie(&response, "centralino_console").unwrap().0
}

async fn connector_post(
    http: &reqwest::Client,
    console: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{console}/connectors"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_console_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let telco = telco(Some(TOKEN)).await;
    let console = format!("{}/console", telco.admin);
    let http = plain();

    // Pages need a session; the login page is strict about what it loads and sets.
    let overview = http
        .get(format!("{console}/overview"))
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 303);
    assert_eq!(overview.headers()["location"], "login");
    let login = http.get(format!("{console}/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let policy = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("style-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let (_, attributes) = set_cookie(&login, "centralino_login").unwrap();
    assert!(attributes.contains("HttpOnly"), "{attributes}");
    assert!(attributes.contains("SameSite=Strict"), "{attributes}");
    assert!(!attributes.contains("Secure"), "{attributes}");
    let html = login.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    // Behind a TLS proxy the cookies are Secure.
    let over_tls = http
        .get(format!("{console}/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let (_, attributes) = set_cookie(&over_tls, "centralino_login").unwrap();
    assert!(attributes.contains("Secure"), "{attributes}");

    // A wrong token is refused; a login form without its token too.
    let refused = http
        .post(format!("{console}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(set_cookie(&refused, "centralino_console").is_none());

    let session = log_in(&http, &console).await;
    let page = http
        .get(format!("{console}/connectors"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_field(&page.text().await.unwrap());
    let disable = "tenant=default&name=twitter&action=disable";

    // Without the token, with a wrong one, without the session, or from another site:
    // 403, and the connector keeps serving.
    type Attempt<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>, String);
    let attempts: [Attempt; 4] = [
        ("no CSRF token", Some(&session), vec![], disable.to_string()),
        (
            "a wrong CSRF token",
            Some(&session),
            vec![],
            format!("{disable}&csrf=0123{}", &csrf[4..]),
        ),
        ("no session", None, vec![], format!("{disable}&csrf={csrf}")),
        (
            "another site's origin",
            Some(&session),
            vec![("origin", "https://evil.example")],
            format!("{disable}&csrf={csrf}"),
        ),
    ];
    for (why, cookie, extra, body) in &attempts {
        let answer = connector_post(&http, &console, *cookie, extra, body).await;
        assert_eq!(answer.status(), 403, "a POST with {why}");
        assert!(telco.twitter_enabled(), "a POST with {why} disabled it");
    }

    // Setting presence is a change too: refused without the token.
    let answer = http
        .post(format!("{console}/operators"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("tenant=default&operator=marco&presence=online")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let marco = telco
        .host
        .with_routing("default", |engine| {
            engine.roster().state("marco").unwrap().presence
        })
        .await
        .unwrap();
    assert_eq!(marco, Presence::Offline);

    // With it: done, and recorded.
    let answer = connector_post(
        &http,
        &console,
        Some(&session),
        &[],
        &format!("{disable}&csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert!(!telco.twitter_enabled());
    let answer = connector_post(
        &http,
        &console,
        Some(&session),
        &[("x-csrf-token", &csrf)],
        "tenant=default&name=twitter&action=enable",
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert!(telco.twitter_enabled());
    let audit = http
        .get(format!("{console}/audit"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(audit.matches("class=\"audit-entry\"").count(), 2, "{audit}");

    // The live stream needs a session too.
    let events = http.get(format!("{console}/events")).send().await.unwrap();
    assert_eq!(events.status(), 401);
}

#[tokio::test]
async fn without_an_admin_token_the_console_says_so_and_answers_loopback_clients_only() {
    let telco = telco(None).await;
    let console = format!("{}/console", telco.admin);
    let http = plain();
    let page = http.get(format!("{console}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (login_cookie, _) = set_cookie(&page, "centralino_login").unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"no-token\""), "{html}");
    assert!(
        html.contains("open only to clients on this machine"),
        "{html}"
    );
    let response = http
        .post(format!("{console}/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}", csrf_field(&html)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let session = set_cookie(&response, "centralino_console").unwrap().0;
    let overview = http
        .get(format!("{console}/overview"))
        .header("cookie", &session)
        .header("accept-language", "it-IT,it;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    let html = overview.text().await.unwrap();
    assert!(html.contains("<h1>Panoramica</h1>"), "{html}");
    assert!(html.contains("client loopback (senza token)"), "{html}");

    // A page on another site that rebinds its name to 127.0.0.1 still names itself in
    // `Host`: refused.
    let rebound = http
        .get(format!("{console}/overview"))
        .header("cookie", &session)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
}

impl Telco {
    async fn presence_of(&self, operator: &str) -> Presence {
        self.host
            .with_routing("default", |engine| {
                engine.roster().state(operator).unwrap().presence
            })
            .await
            .unwrap()
    }

    async fn live_chain(&self) -> String {
        self.host
            .with_routing("default", |engine| engine.chain().spec().to_string())
            .await
            .unwrap()
    }
}

/// Logs the browser in with the admin token.
pub(crate) async fn browser_login(browser: &Browser, console: &str) {
    browser.goto(&format!("{console}/login")).await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#login").await;
    browser.wait_for_text("h1", "Overview").await;
}

/// Whether the page fits the window's width (no sideways scrolling).
pub(crate) async fn fits_width(browser: &Browser) -> bool {
    browser
        .script(
            "return document.documentElement.scrollWidth <= \
             document.documentElement.clientWidth;",
        )
        .await
        == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_an_admin_sets_presence_replays_a_candidate_chain_over_stored_traffic_and_switches_to_it()
 {
    if !browser_available() {
        return;
    }
    // Marco serves TIM; Giulia another brand. The live chain keeps TIM's customers for
    // Marco; the shadow chain, round-robin, would hand them to whoever is free.
    let telco = telco_with(
        Some(TOKEN),
        Setup {
            operators: vec![
                operator("marco", &["tim"], "2001"),
                operator("giulia", &["impresa-semplice"], "2002"),
            ],
            shadow: Some("round-robin"),
            ..Setup::default()
        },
    )
    .await;
    let browser = Browser::start().await;
    let console = format!("{}/console", telco.admin);
    browser_login(&browser, &console).await;

    // Three customers write while nobody works: all three wait.
    for (id, handle) in [("51", "anna_b"), ("52", "bruno_c"), ("53", "carla_d")] {
        let text = format!("@TIM_Official {handle}: la linea non funziona");
        assert_eq!(telco.mention((id, handle), &text).await, 200);
    }
    browser.wait_for_text("#waiting-total", "3").await;

    // Operators: everyone offline, holding nothing.
    browser.click("#nav-operators").await;
    browser.wait_for_text("h1", "Operators").await;
    browser
        .wait_for_text("#presence-default-marco", "Offline")
        .await;
    assert_eq!(browser.text("#load-default-marco").await, "0 / 2");
    let row = browser.text("#operator-default-marco").await;
    assert!(row.contains("tim") && row.contains("twitter:2001"), "{row}");

    // Marco comes online with a click: he takes two of them (his capacity).
    browser.click("#set-online-default-marco").await;
    browser
        .wait_for_text("#presence-default-marco", "Online")
        .await;
    browser
        .wait_for_text("#flash", "Set presence default/marco: online: done")
        .await;
    assert_eq!(telco.presence_of("marco").await, Presence::Online);
    assert_eq!(browser.text("#load-default-marco").await, "2 / 2");
    let holds = browser.text("#holds-default-marco").await;
    assert_eq!(
        ["51", "52", "53"]
            .iter()
            .filter(|id| holds.contains(*id))
            .count(),
        2,
        "{holds}"
    );
    assert!(holds.contains("la linea non funziona"), "{holds}");
    browser.screenshot("operators").await;

    // Marco answers one of them: the overview charts the first response and counts the
    // messages in and out.
    let held = telco
        .host
        .store()
        .conversations("default")
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.assignee.as_deref() == Some("marco"))
        .unwrap();
    telco
        .host
        .reply(
            "default",
            &held.id,
            "marco",
            None,
            "Ci pensiamo noi",
            "console-reply-1",
        )
        .await
        .unwrap();
    eventually("the reply goes out", async || {
        telco
            .host
            .store()
            .conversation("default", &held.id)
            .await
            .unwrap()
            .unwrap()
            .first_response_at
            .is_some()
    })
    .await;
    browser.click("#nav-overview").await;
    browser.find("#first-response-chart circle.dot.p50").await;
    browser.find("#first-response-chart circle.dot.p95").await;
    // In: the three mentions. Out: Marco's reply, and the automatic replies that told
    // each waiting customer the honest estimate.
    // (The live updates replace the section twice a second: read until a read lands.)
    let mut messages = String::new();
    for _ in 0..20 {
        messages = browser.text("#messages-default-twitter").await;
        if !messages.is_empty() {
            break;
        }
    }
    let counts: Vec<u64> = messages
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{messages}");
    assert_eq!(counts[0], 3, "{messages}");
    assert!(counts[1] >= 1, "{messages}");
    browser
        .script("document.getElementById('first-response').scrollIntoView(); return null;")
        .await;
    browser.screenshot("overview-chart").await;
    browser.click("#nav-operators").await;

    // Giulia comes online: the live chain keeps the third TIM customer waiting (Giulia
    // has no TIM skill), the shadow chain would have given it to her. A disagreement.
    browser.click("#set-online-default-giulia").await;
    browser
        .wait_for_text("#presence-default-giulia", "Online")
        .await;
    assert_eq!(browser.text("#load-default-giulia").await, "0 / 2");

    // Routing: the live and the shadow chain, and what they disagreed on.
    browser.click("#nav-routing").await;
    browser.wait_for_text("h1", "Routing").await;
    assert_eq!(
        browser.text("#live-chain-default").await,
        "skills > least-loaded"
    );
    assert_eq!(browser.text("#shadow-chain-default").await, "round-robin");
    let disagreed: u64 = browser.text("#disagreed-default").await.parse().unwrap();
    assert!(disagreed >= 1, "{disagreed} disagreements");
    let disagreement = browser.text("tr.disagreement").await;
    assert!(
        disagreement.contains("to the queue") && disagreement.contains("→ giulia"),
        "{disagreement}"
    );
    assert!(disagreement.contains("twitter"), "{disagreement}");

    // A candidate that does not load is refused, saying why; nothing is replayed.
    browser
        .type_into("#candidate-default", "skills > no-such-policy")
        .await;
    browser.click("#replay-default").await;
    browser.wait_for_text("#flash", "refused").await;
    let flash = browser.text("#flash").await;
    assert!(flash.contains("no-such-policy"), "{flash}");
    assert!(browser.try_find("#replay-result").await.is_none());

    // Replay round-robin over the last 24 hours the store holds, beside the live chain,
    // on today's operators all online: the live chain leaves one TIM customer waiting
    // for Marco, round-robin gives Giulia a share.
    browser.type_into("#candidate-default", "round-robin").await;
    browser.click("#replay-default").await;
    browser.find("#replay-result").await;
    let what = browser.text("#replay-result p.note").await;
    assert!(
        what.contains("3 conversations, 3 customer messages"),
        "{what}"
    );
    assert_eq!(browser.text("#replay-candidate-conversations").await, "3");
    assert_eq!(browser.text("#replay-live-conversations").await, "3");
    assert_eq!(browser.text("#replay-live-assigned-marco").await, "2");
    assert_eq!(browser.text("#replay-live-assigned-giulia").await, "0");
    assert_eq!(browser.text("#replay-live-never").await, "1");
    assert_eq!(browser.text("#replay-candidate-never").await, "0");
    // The one nobody took under the live chain waits until the period's end (now).
    assert_ne!(browser.text("#replay-live-wait").await, "0 s / 0 s / 0 s");
    assert_eq!(
        browser.text("#replay-candidate-wait").await,
        "0 s / 0 s / 0 s"
    );
    let giulia: u32 = browser
        .text("#replay-candidate-assigned-giulia")
        .await
        .parse()
        .unwrap();
    assert!(giulia >= 1, "round-robin gave Giulia {giulia}");
    browser
        .script("document.getElementById('replay-result').scrollIntoView(); return null;")
        .await;
    browser.screenshot("routing-replay").await;

    // Switch to it: loaded and configured first, then live; the shadow chain stays.
    browser.click("#switch-default").await;
    browser
        .wait_for_text(
            "#flash",
            "Switch chain default: skills > least-loaded → round-robin: done",
        )
        .await;
    assert_eq!(browser.text("#live-chain-default").await, "round-robin");
    assert_eq!(telco.live_chain().await, "round-robin");
    assert_eq!(browser.text("#shadow-chain-default").await, "round-robin");
    let kept: u64 = browser.text("#disagreed-default").await.parse().unwrap();
    assert!(
        kept >= disagreed,
        "the shadow's count went from {disagreed} to {kept}"
    );
    browser.screenshot("routing").await;

    // The next customer goes by the new chain: Giulia is free, and round-robin takes
    // her although she has no TIM skill.
    assert_eq!(
        telco
            .mention(("54", "dario_e"), "@TIM_Official dopo il cambio")
            .await,
        200
    );
    browser.click("#nav-operators").await;
    browser
        .wait_for_text("#holds-default-giulia", "dopo il cambio")
        .await;

    // Both changes are in the audit log.
    browser.click("#nav-audit").await;
    let entries = browser.text("table").await;
    assert!(
        entries.contains("Set presence default/marco: online"),
        "{entries}"
    );
    assert!(
        entries.contains("Set presence default/giulia: online"),
        "{entries}"
    );
    assert!(
        entries.contains("Switch chain default: skills > least-loaded → round-robin"),
        "{entries}"
    );

    // Both pages fit a phone.
    browser.resize(390, 844).await;
    for page in ["operators", "routing"] {
        browser.goto(&format!("{console}/{page}")).await;
        browser.find("h1").await;
        assert!(
            fits_width(&browser).await,
            "{page} scrolls sideways at 390 px"
        );
        browser.screenshot(&format!("{page}-phone")).await;
    }
    browser.quit().await;
}

impl Telco {
    fn twitter_plugin(&self) -> String {
        self.host
            .connector_health()
            .iter()
            .find(|c| c.connector == "twitter")
            .unwrap()
            .plugin
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_broken_plugin_upload_is_refused_with_its_reason_and_a_good_one_is_swapped_in_then_rolled_back()
 {
    if !browser_available() {
        return;
    }
    // The connector runs a copy of the Twitter plugin in a folder of its own, where the
    // console writes uploaded versions.
    let dir = tempfile::tempdir().unwrap();
    let running = dir.path().join("twitter.wasm");
    std::fs::copy(component("twitter"), &running).unwrap();
    let next = dir.path().join("twitter-next.wasm");
    std::fs::write(&next, crate::hot_swap::twitter_build("0.9.0")).unwrap();
    let telco = telco_with(
        Some(TOKEN),
        Setup {
            plugin: running.clone(),
            ..Setup::default()
        },
    )
    .await;
    let before = telco.twitter_plugin();
    assert!(before.starts_with("twitter@"), "{before}");
    let browser = Browser::start().await;
    let console = format!("{}/console", telco.admin);
    browser_login(&browser, &console).await;
    browser.click("#nav-connectors").await;
    browser.wait_for_text("h1", "Connectors").await;
    let row = browser.text("#connector-default-twitter").await;
    assert!(row.contains("Contract 0."), "{row}");
    assert!(row.contains("hosts: 127.0.0.1:"), "{row}");
    assert!(row.contains("credentials: marco, tim"), "{row}");

    // A routing policy is no connector: refused at inspection, the reason shown, nothing
    // compiled and nothing swapped.
    let policy = component("least-loaded").canonicalize().unwrap();
    browser
        .type_into("#upload-file", policy.to_str().unwrap())
        .await;
    browser.click("#upload-button").await;
    browser.wait_for_text("#flash", "refused").await;
    let flash = browser.text("#flash").await;
    assert!(
        flash.contains("least-loaded.wasm") && flash.contains("routing-policy"),
        "{flash}"
    );
    assert!(browser.try_find("#upload-review").await.is_none());
    assert_eq!(telco.twitter_plugin(), before);
    browser.screenshot("upload-refused").await;

    // Nor is a file that is not WebAssembly at all.
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "plugin notes, not a plugin").unwrap();
    browser
        .type_into("#upload-file", text.to_str().unwrap())
        .await;
    browser.click("#upload-button").await;
    browser
        .wait_for_text("#flash", "not a WebAssembly file")
        .await;

    // A new build of the Twitter plugin: inspected and shown, still not serving.
    browser
        .type_into("#upload-file", next.to_str().unwrap())
        .await;
    browser.click("#upload-button").await;
    browser
        .wait_for_text("#review-plugin", "twitter@0.9.0")
        .await;
    let review = browser.text("#upload-review").await;
    assert!(
        review.contains(&format!("running now: {before}")),
        "{review}"
    );
    assert!(review.contains("served by this host"), "{review}");
    assert!(browser.text("#review-capabilities").await.contains("http"));
    assert_eq!(telco.twitter_plugin(), before);
    browser.screenshot("upload-review").await;

    // Confirmed: swapped in as a reload does, and it serves the next mention.
    browser.click("#confirm-upload").await;
    browser.wait_for_text("#flash", "done").await;
    let flash = browser.text("#flash").await;
    assert!(
        flash.contains(&format!(
            "Upload plugin default/twitter: {before} → twitter@0.9.0"
        )),
        "{flash}"
    );
    assert_eq!(telco.twitter_plugin(), "twitter@0.9.0");
    assert_eq!(
        telco
            .mention(("61", "elena_f"), "@TIM_Official con la nuova versione")
            .await,
        200
    );
    browser
        .wait_for_text("#plugin-default-twitter", "0.9.0")
        .await;
    assert_eq!(
        browser.text("#rollback-default-twitter").await,
        format!("Roll back to {before}")
    );
    assert!(dir.path().join("console-uploads").is_dir());
    browser.screenshot("connectors-uploaded").await;

    // One click rolls back to the version it replaced.
    browser.click("#rollback-default-twitter").await;
    // The upload's flash may still show until the rollback's page replaces it.
    browser
        .wait_for_text("#flash", "Roll back default/twitter")
        .await;
    let flash = browser.text("#flash").await;
    assert!(
        flash.contains(&format!(
            "Roll back default/twitter: twitter@0.9.0 → {before}"
        )),
        "{flash}"
    );
    assert_eq!(telco.twitter_plugin(), before);
    assert!(
        browser
            .try_find("#rollback-default-twitter")
            .await
            .is_none()
    );
    assert_eq!(
        telco
            .mention(("62", "fabio_g"), "@TIM_Official dopo il ripristino")
            .await,
        200
    );

    // All of it in the audit log, the refusals with their reasons.
    browser.click("#nav-audit").await;
    let entries = browser.text("table").await;
    let uploads = entries
        .lines()
        .filter(|l| l.contains("Upload plugin"))
        .count();
    assert_eq!(uploads, 3, "{entries}");
    assert!(entries.contains("routing-policy"), "{entries}");
    assert!(entries.contains("Roll back default/twitter"), "{entries}");
    browser.quit().await;
}

/// Logs in through the login page's user form; answers the session's cookie.
async fn log_in_as(
    http: &reqwest::Client,
    console: &str,
    username: &str,
    password: &str,
) -> String {
    let page = http.get(format!("{console}/login")).send().await.unwrap();
    let (login_cookie, _) = set_cookie(&page, "centralino_login").unwrap();
    let form = csrf_field(&page.text().await.unwrap());
    let response = http
        .post(format!("{console}/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={form}&kind=user&username={username}&password={password}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "logging in as {username}");
    set_cookie(&response, "centralino_console").unwrap().0
}

pub(crate) async fn page(http: &reqwest::Client, url: &str, cookie: &str) -> String {
    let response = http.get(url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_tenants_console_user_sees_and_changes_only_that_tenant() {
    if !browser_available() {
        return;
    }
    let telco = telco_with(
        Some(TOKEN),
        Setup {
            wind: true,
            ..Setup::default()
        },
    )
    .await;
    let console = format!("{}/console", telco.admin);
    centralino::api::add_console_user(
        telco.host.store(),
        "default",
        "ops.tim",
        "tim-console-password",
    )
    .await
    .unwrap();
    // The admin disables Wind's connector: an entry of Wind's in the audit log.
    let http = plain();
    let admin = log_in(&http, &console).await;
    let csrf = csrf_field(&page(&http, &format!("{console}/connectors"), &admin).await);
    let answer = connector_post(
        &http,
        &console,
        Some(&admin),
        &[],
        &format!("tenant=wind&name=twitter&action=disable&csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status(), 303);

    let browser = Browser::start().await;
    browser.goto(&format!("{console}/login")).await;
    browser.type_into("#username", "ops.tim").await;
    browser.type_into("#password", "not-the-password").await;
    browser.click("#login-user").await;
    browser
        .wait_for_text("#login-problem", "Unknown username or wrong password.")
        .await;
    browser.type_into("#username", "ops.tim").await;
    browser.type_into("#password", "tim-console-password").await;
    browser.click("#login-user").await;
    browser.wait_for_text("h1", "Overview").await;
    browser.wait_for_text("#live-state", "Live").await;
    assert!(
        browser
            .text(".logout .who")
            .await
            .contains("ops.tim (console user of default)")
    );
    // Wind's disabled connector is not this user's business: nothing unhealthy here.
    browser.wait_for_text("#unhealthy-count", "0").await;
    for page in ["overview", "connectors", "operators", "routing", "audit"] {
        browser.goto(&format!("{console}/{page}")).await;
        browser.find("h1").await;
        let source = browser.call("GET", "/source", None).await;
        let source = source.as_str().unwrap();
        assert!(!source.contains("wind"), "{page} shows Wind: {source}");
        assert!(!source.contains("paolo"), "{page} shows Paolo: {source}");
        browser.screenshot(&format!("tenant-user-{page}")).await;
    }
    browser.goto(&format!("{console}/operators")).await;
    browser.find("#operator-default-marco").await;
    browser.goto(&format!("{console}/connectors")).await;
    browser.find("#connector-default-twitter").await;

    // Its own tenant it may change: Marco online, with a click, audited under its name.
    browser.goto(&format!("{console}/operators")).await;
    browser.click("#set-online-default-marco").await;
    browser
        .wait_for_text("#presence-default-marco", "Online")
        .await;
    browser.goto(&format!("{console}/audit")).await;
    let entries = browser.text("table").await;
    assert!(
        entries.contains("ops.tim (console user of default)"),
        "{entries}"
    );
    assert!(!entries.contains("wind"), "{entries}");
    browser.quit().await;

    // A forged form naming Wind changes nothing; nor may the user swap plugins.
    let user = log_in_as(&http, &console, "ops.tim", "tim-console-password").await;
    let csrf = csrf_field(&page(&http, &format!("{console}/connectors"), &user).await);
    connector_post(
        &http,
        &console,
        Some(&user),
        &[],
        &format!("tenant=wind&name=twitter&action=enable&csrf={csrf}"),
    )
    .await;
    let wind_enabled = telco
        .host
        .connector_health()
        .iter()
        .find(|c| c.tenant == "wind")
        .unwrap()
        .enabled;
    assert!(
        !wind_enabled,
        "a console user of default enabled Wind's connector"
    );
    connector_post(
        &http,
        &console,
        Some(&user),
        &[],
        &format!("tenant=default&name=twitter&action=reload&csrf={csrf}"),
    )
    .await;
    let audit = page(&http, &format!("{console}/audit"), &user).await;
    assert!(
        audit.contains("only the admin (token) may do this"),
        "{audit}"
    );
    // The admin sees everything, Wind's entry too.
    let audit = page(&http, &format!("{console}/audit"), &admin).await;
    assert!(audit.contains("wind/twitter"), "{audit}");
}

#[tokio::test]
async fn console_sessions_and_the_audit_log_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/centralino.db", dir.path().display());
    let first = telco_with(
        Some(TOKEN),
        Setup {
            store: Some(store.clone()),
            ..Setup::default()
        },
    )
    .await;
    let console = format!("{}/console", first.admin);
    let http = plain();
    let session = log_in(&http, &console).await;
    let csrf = csrf_field(&page(&http, &format!("{console}/connectors"), &session).await);
    let answer = connector_post(
        &http,
        &console,
        Some(&session),
        &[],
        &format!("tenant=default&name=twitter&action=reset&csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status(), 303);
    first.host.shutdown().await.unwrap();
    drop(first);

    // Another host on the same store: the same cookie is still a session, with the
    // same CSRF token, and the change is in its audit log.
    let second = telco_with(
        Some(TOKEN),
        Setup {
            store: Some(store),
            ..Setup::default()
        },
    )
    .await;
    let console = format!("{}/console", second.admin);
    let audit = page(&http, &format!("{console}/audit"), &session).await;
    assert_eq!(audit.matches("class=\"audit-entry\"").count(), 1, "{audit}");
    assert!(audit.contains("Reset circuit default/twitter"), "{audit}");
    let connectors = page(&http, &format!("{console}/connectors"), &session).await;
    assert_eq!(csrf_field(&connectors), csrf);
    // Logging out ends it for every host.
    let answer = http
        .post(format!("{console}/logout"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let answer = http
        .get(format!("{console}/overview"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
}

#[tokio::test]
async fn a_console_session_opened_on_one_host_works_on_another_sharing_postgresql() {
    let Some(base) = crate::store::postgres_url() else {
        eprintln!("SKIPPED: CENTRALINO_TEST_POSTGRES is not set");
        return;
    };
    let url = crate::store::fresh_postgres_database(&base).await;
    let setup = || Setup {
        store: Some(url.clone()),
        ..Setup::default()
    };
    let (one, two) = (
        telco_with(Some(TOKEN), setup()).await,
        telco_with(Some(TOKEN), setup()).await,
    );
    let http = plain();
    let session = log_in(&http, &format!("{}/console", one.admin)).await;
    let console = format!("{}/console", two.admin);
    let csrf = csrf_field(&page(&http, &format!("{console}/connectors"), &session).await);
    centralino::api::add_console_user(
        one.host.store(),
        "default",
        "ops.tim",
        "tim-console-password",
    )
    .await
    .unwrap();
    let answer = connector_post(
        &http,
        &console,
        Some(&session),
        &[],
        &format!("tenant=default&name=twitter&action=reset&csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.status(), 303);
    // Made on the second host, shown on the first; the user added through the first
    // logs in on the second.
    let audit = page(&http, &format!("{}/console/audit", one.admin), &session).await;
    assert!(audit.contains("Reset circuit default/twitter"), "{audit}");
    let user = log_in_as(&http, &console, "ops.tim", "tim-console-password").await;
    let overview = page(&http, &format!("{}/console/overview", one.admin), &user).await;
    assert!(
        overview.contains("ops.tim (console user of default)"),
        "{overview}"
    );
}

#[tokio::test]
async fn centralino_console_add_user_writes_a_user_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("centralino.db");
    let plugins = component("echo-channel").parent().unwrap().to_path_buf();
    let config = dir.path().join("centralino.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\nstore = \"sqlite://{db}\"\nplugin_dir = \"{plugins}\"\n\n\
             [[tenants]]\nid = \"default\"\n\n[[tenants.connectors]]\nname = \"echo\"\n\
             plugin = \"echo-channel\"\n\n[[tenants.connectors.accounts]]\nid = \"support\"\n",
            db = db.display(),
            plugins = plugins.display(),
        ),
    )
    .unwrap();
    let add = |tenant: &str, password: &str| {
        Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["console", "add-user", "--config"])
            .arg(&config)
            .args(["--tenant", tenant, "--username", "ops.tim"])
            .env("CENTRALINO_CONSOLE_PASSWORD", password)
            .output()
            .unwrap()
    };
    let refused = add("nowhere", "tim-console-password");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no tenant `nowhere` (tenants: default)"),
        "{stderr}"
    );
    let refused = add("default", "short");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("shorter than 12 characters"), "{stderr}");
    let added = add("default", "tim-console-password");
    let stdout = String::from_utf8_lossy(&added.stdout);
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        stdout.contains("console user `ops.tim` of tenant `default` added"),
        "{stdout}"
    );

    // A host on that store lets the user in.
    let telco = telco_with(
        Some(TOKEN),
        Setup {
            store: Some(format!("sqlite://{}", db.display())),
            ..Setup::default()
        },
    )
    .await;
    let http = plain();
    let console = format!("{}/console", telco.admin);
    let user = log_in_as(&http, &console, "ops.tim", "tim-console-password").await;
    let overview = page(&http, &format!("{console}/overview"), &user).await;
    assert!(
        overview.contains("ops.tim (console user of default)"),
        "{overview}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_a_page_at_a_time_and_every_change_stays_reachable() {
    let mut backends = vec![None];
    if let Some(base) = crate::store::postgres_url() {
        backends.push(Some(crate::store::fresh_postgres_database(&base).await));
    }
    for store in backends {
        let telco = telco_with(
            Some(TOKEN),
            Setup {
                store: store.clone(),
                ..Setup::default()
            },
        )
        .await;
        let console = format!("{}/console", telco.admin);
        let http = plain();
        let session = log_in(&http, &console).await;
        let page = http
            .get(format!("{console}/operators"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let csrf = csrf_field(&page.text().await.unwrap());
        // More changes than one page shows.
        let changes = 105;
        for n in 0..changes {
            let presence = if n % 2 == 0 { "online" } else { "away" };
            let answer = http
                .post(format!("{console}/operators"))
                .header("cookie", &session)
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("tenant=default&operator=marco&presence={presence}"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 303);
        }
        let audit = |path: String| {
            let http = http.clone();
            let session = session.clone();
            async move {
                http.get(path)
                    .header("cookie", &session)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let first = audit(format!("{console}/audit")).await;
        assert_eq!(
            first.matches("class=\"audit-entry\"").count(),
            100,
            "{store:?}"
        );
        let older = first
            .split("id=\"audit-older\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no link to the older changes: {first}"))
            .to_string();
        let second = audit(format!("{console}/{older}")).await;
        assert_eq!(
            second.matches("class=\"audit-entry\"").count(),
            changes - 100,
            "{store:?}: {second}"
        );
        assert!(!second.contains("audit-older"), "{second}");
        // The first change (marco set online) is the last row of the last page.
        let last_row = second.rsplit("class=\"audit-entry\"").next().unwrap();
        assert!(last_row.contains("online"), "{last_row}");
    }
}
