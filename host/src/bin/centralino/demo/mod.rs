//! `centralino demo`: the telecom scenario, end to end, on embedded defaults.
//!
//! One telco, three brands (TIM, Telecom Italia, Impresa Semplice), nine operators, each
//! with their own X account, the brands' X accounts and one Facebook page. Everything is
//! real except the platforms, which are the loopback emulators from `tests/emulators`:
//!
//! - customers mention the brands (signed Account Activity webhooks to the HTTP ingress),
//!   write DMs (picked up by polling), message the page and comment under its posts
//!   (signed Messenger/feed webhooks), with an outage burst in the middle;
//! - the connectors are the `twitter` and `facebook` WebAssembly plugins, the routing chain
//!   is `priority > sticky > skills > least-loaded`, the store is SQLite, the CRM is the
//!   local inbox;
//! - simulated operators answer what they are assigned (through the outbox, from their own
//!   account on X) and resolve it; customers who must wait get an honest estimate.
//!
//! It runs for a bounded time and prints per-operator load, first-response times, the
//! queue peak and what was sent. With `--console` the admin console is served too (its URL
//! and a fresh admin token are printed before the customers write), and the host keeps
//! running after the report, operators still at work, until Ctrl-C: a newcomer can watch
//! the overview fill up and then look around on the demo's data.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::{CrmEvent, LocalInbox};
use centralino::routing::{ChainSpec, Operator, PolicyChain, RoutingEngine};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::store::ConversationStatus;
use centralino::types::{AccountConfig, ConnectorConfig, Presence};
use centralino::{Error, Host};
use centralino_emulators::webhooks::{
    facebook_delivery_headers, messenger_text, page_comment, tweet_create, twitter_delivery_headers,
};
use centralino_emulators::x::NewTweet;
use centralino_emulators::{GraphApi, XApi};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Customers who write in.
    #[arg(long, default_value_t = 120)]
    customers: u32,
    /// Give up waiting for the last conversations after this many seconds.
    #[arg(long, default_value_t = 90)]
    max_seconds: u64,
    /// Folder with the built plugin components.
    #[arg(long, env = "CENTRALINO_PLUGIN_DIR", default_value = "target/plugins")]
    plugins: PathBuf,
    /// Serve the admin console and keep the host running after the report (Ctrl-C stops).
    #[arg(long)]
    console: bool,
    /// Where the console listens (loopback), with `--console`.
    #[arg(long, default_value = "127.0.0.1:8081")]
    console_listen: std::net::SocketAddr,
}

mod report;

use report::report;

const CONSUMER_SECRET: &str = "demo-x-consumer-secret";
const APP_SECRET: &str = "demo-facebook-app-secret";
const PAGE_ID: &str = "5001";
const CHAIN: &str = "priority > sticky > skills > least-loaded";

struct Brand {
    key: &'static str,
    account: &'static str,
    handle: &'static str,
    operators: [(&'static str, &'static str); 3],
}

const BRANDS: [Brand; 3] = [
    Brand {
        key: "tim",
        account: "1001",
        handle: "TIM_Official",
        operators: [
            ("marco", "TIM_Marco"),
            ("giulia", "TIM_Giulia"),
            ("luca", "TIM_Luca"),
        ],
    },
    Brand {
        key: "telecom-italia",
        account: "1002",
        handle: "TelecomItalia",
        operators: [
            ("sara", "TI_Sara"),
            ("paolo", "TI_Paolo"),
            ("chiara", "TI_Chiara"),
        ],
    },
    Brand {
        key: "impresa-semplice",
        account: "1003",
        handle: "ImpresaSemplice",
        operators: [
            ("andrea", "IS_Andrea"),
            ("francesca", "IS_Francesca"),
            ("roberto", "IS_Roberto"),
        ],
    },
];

const COMPLAINTS: [&str; 5] = [
    "il mio modem non va",
    "la fibra è lenta da stamattina",
    "mi avete addebitato due volte la fattura",
    "come attivo l'offerta per la partita IVA?",
    "il router lampeggia rosso",
];

/// A deterministic pseudo-random sequence, so every run tells the same story.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(scenario(args))
}

fn operator_account(index: usize) -> String {
    format!("{}", 2001 + index)
}

async fn scenario(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("centralino demo: one telco, three brands, nine operators, X and a Facebook page");
    for plugin in [
        "twitter",
        "facebook",
        "priority",
        "sticky",
        "skills",
        "least-loaded",
    ] {
        let path = args.plugins.join(format!("{plugin}.wasm"));
        anyhow::ensure!(
            path.exists(),
            "{} is missing: build the plugins with `cargo xtask plugins`",
            path.display()
        );
    }

    // The platforms.
    let x = XApi::start().await?;
    let graph = GraphApi::start().await?;
    graph.add_page(PAGE_ID, "demo-page-token");
    let mut twitter_accounts = Vec::new();
    let mut credentials = BTreeMap::new();
    let mut brands = BTreeMap::new();
    let mut operators = Vec::new();
    for (b, brand) in BRANDS.iter().enumerate() {
        x.add_user(
            brand.account,
            brand.handle,
            brand.handle,
            &format!("token-{}", brand.account),
        );
        twitter_accounts.push(account(brand.account, brand.handle));
        credentials.insert(
            format!("x-{}", brand.account),
            Credential::Bearer(Secret::new(format!("token-{}", brand.account))),
        );
        brands.insert(brand.account.to_string(), brand.key.to_string());
        for (o, (id, handle)) in brand.operators.iter().enumerate() {
            let account_id = operator_account(b * 3 + o);
            x.add_user(&account_id, handle, handle, &format!("token-{account_id}"));
            twitter_accounts.push(account(&account_id, handle));
            credentials.insert(
                format!("x-{account_id}"),
                Credential::Bearer(Secret::new(format!("token-{account_id}"))),
            );
            operators.push(
                Operator::new(*id, 2)
                    .named(*handle)
                    .skills([brand.key])
                    .languages(["it"])
                    .account("twitter", account_id),
            );
        }
    }

    // The host, on embedded defaults: SQLite, the local inbox.
    let dir = std::env::temp_dir().join(format!("centralino-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store_url = format!("sqlite://{}", dir.join("centralino.db").display());
    let runtime = Runtime::builder()
        .cache_dir(args.plugins.join(".cache"))
        .build()?;
    let twitter = twitter_spec(&args.plugins, &x, twitter_accounts, credentials, brands);
    let facebook = facebook_spec(&args.plugins, &graph);
    let spec: ChainSpec = CHAIN.parse()?;
    let chain = PolicyChain::load(&runtime, &spec, &args.plugins, &PluginLimits::default()).await?;
    let engine = operators
        .into_iter()
        .fold(RoutingEngine::builder(chain), |builder, operator| {
            builder.operator(operator, Presence::Online)
        })
        .offer_timeout(Duration::from_secs(8))
        .build();
    let host = demo_brands()?
        .into_iter()
        .fold(Host::builder(), |builder, brand| builder.brand(brand))
        .store(store_url)
        .runtime(runtime)
        .connector(twitter)
        .connector(facebook)
        .routing(engine)
        .build()
        .await?;
    let inbox = host
        .local_inbox()
        .cloned()
        .context("the demo needs the local inbox")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ingress = format!("http://{}", listener.local_addr()?);
    let serving = host.clone();
    let server = tokio::spawn(async move { serving.serve(listener).await });
    println!(
        "ingress on {ingress}; store {}; chain `{CHAIN}`",
        dir.join("centralino.db").display()
    );
    let console = match args.console {
        true => Some(serve_console(&host, &args).await?),
        false => None,
    };
    println!(
        "host ready in {} ms; {} customers are about to write in…",
        started.elapsed().as_millis(),
        args.customers
    );

    let operators_task = tokio::spawn(operators_at_work(host.clone(), inbox.clone()));
    let customers = customers_write_in(&x, &graph, &ingress, args.customers).await?;

    // Wait until every conversation is resolved (or the time runs out).
    let started = Instant::now();
    let deadline = started
        .checked_add(Duration::from_secs(args.max_seconds))
        .unwrap_or(started);
    loop {
        let conversations = host.store().conversations("default").await?;
        let open = conversations
            .iter()
            .filter(|c| c.status != ConversationStatus::Resolved)
            .count();
        if (conversations.len() >= customers && open == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if console.is_none() {
        operators_task.abort();
        server.abort();
    }
    report(&host, &x, &graph, &inbox, started).await?;
    if let Some((url, token, console_server)) = console {
        println!();
        println!("the host keeps running with the demo's data: open {url}");
        println!("and log in with the admin token {token}  (Ctrl-C stops)");
        tokio::signal::ctrl_c().await?;
        operators_task.abort();
        server.abort();
        console_server.abort();
        println!("centralino demo: stopped");
    }
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Serves the admin API with its console on `--console-listen`, with a fresh admin token;
/// answers the console's URL, the token and the server's task.
async fn serve_console(
    host: &Host,
    args: &DemoArgs,
) -> anyhow::Result<(String, String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(args.console_listen)
        .await
        .with_context(|| {
            format!(
                "the console's address {} (choose another with --console-listen)",
                args.console_listen
            )
        })?;
    let url = format!("http://{}/console", listener.local_addr()?);
    let token = uuid::Uuid::new_v4().simple().to_string();
    let api = centralino::api::AdminApi::new(host.clone(), Some(&Secret::new(token.clone())))
        .with_plugin_dir(args.plugins.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = api.serve(listener).await {
            eprintln!("centralino demo: the console stopped: {e}");
        }
    });
    println!("console on {url} (admin token {token})");
    Ok((url, token, server))
}

fn account(id: &str, handle: &str) -> AccountConfig {
    AccountConfig {
        id: id.to_string(),
        handle: Some(handle.to_string()),
        credential: Some(format!("x-{id}")),
        settings: Vec::new(),
    }
}

fn twitter_spec(
    plugins: &Path,
    x: &XApi,
    accounts: Vec<AccountConfig>,
    credentials: BTreeMap<String, Credential>,
    brands: BTreeMap<String, String>,
) -> ConnectorSpec {
    let mut secrets = BTreeMap::new();
    secrets.insert("consumer_secret".to_string(), Secret::new(CONSUMER_SECRET));
    let mut spec = ConnectorSpec::new(
        "twitter",
        plugins.join("twitter.wasm"),
        ConnectorConfig {
            settings: vec![("api_base".to_string(), x.base_url())],
            accounts,
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![x.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec.poll_interval = Some(Duration::from_millis(500));
    spec.brands = brands;
    spec
}

fn facebook_spec(plugins: &Path, graph: &GraphApi) -> ConnectorSpec {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "fb-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("demo-page-token"),
        },
    );
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new(APP_SECRET));
    secrets.insert("verify_token".to_string(), Secret::new("demo-verify-token"));
    let mut spec = ConnectorSpec::new(
        "facebook",
        plugins.join("facebook.wasm"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: PAGE_ID.to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("fb-page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec.brands.insert(PAGE_ID.to_string(), "tim".to_string());
    spec
}

/// Sends the customers in: a steady stream with an outage burst in the middle third.
/// Returns how many conversations to expect.
async fn customers_write_in(
    x: &XApi,
    graph: &GraphApi,
    ingress: &str,
    customers: u32,
) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let mut dice = Dice(0x7e1e_c0de);
    let third = customers / 3;
    for i in 0..customers {
        let burst = (third..2 * third).contains(&i);
        let brand = &BRANDS[usize::try_from(dice.next(3)).unwrap_or(0)];
        let customer_id = format!("{}", 50_000 + i);
        let handle = format!("cliente{i}");
        x.add_user(
            &customer_id,
            &handle,
            &format!("Cliente {i}"),
            &format!("token-{customer_id}"),
        );
        let complaint = COMPLAINTS[usize::try_from(dice.next(5)).unwrap_or(0)];
        let text = if burst {
            format!("{complaint}: disservizio in tutta la zona, è tutto down!")
        } else {
            complaint.to_string()
        };
        match i % 10 {
            // Most customers mention the brand on X.
            0..=5 => {
                let text = format!("@{} {text}", brand.handle);
                let tweet = x.post_tweet(NewTweet::new(&customer_id, &text));
                let body = tweet_create(
                    brand.account,
                    &tweet.id,
                    (&customer_id, &handle, &handle),
                    &text,
                    None,
                );
                let body = serde_json::to_vec(&body)?;
                post(
                    &client,
                    &format!("{ingress}/webhooks/twitter"),
                    twitter_delivery_headers(CONSUMER_SECRET, &body),
                    body,
                )
                .await?;
            }
            // Some write a DM, which the connector picks up by polling.
            6 | 7 => {
                x.send_dm(&customer_id, brand.account, &text);
            }
            // Some message the Facebook page…
            8 => {
                graph.customer_wrote(PAGE_ID, &customer_id);
                let body = messenger_text(
                    PAGE_ID,
                    &customer_id,
                    &format!("m_demo{i}"),
                    &text,
                    now_ms(),
                );
                let body = serde_json::to_vec(&body)?;
                post(
                    &client,
                    &format!("{ingress}/webhooks/facebook"),
                    facebook_delivery_headers(APP_SECRET, &body),
                    body,
                )
                .await?;
            }
            // …or comment under its latest post.
            _ => {
                let post_id = format!("{PAGE_ID}_777");
                let comment = format!("777_{}", 9000 + i);
                let body = page_comment(
                    PAGE_ID,
                    &post_id,
                    &comment,
                    (&customer_id, &handle),
                    &text,
                    now_ms(),
                );
                let body = serde_json::to_vec(&body)?;
                post(
                    &client,
                    &format!("{ingress}/webhooks/facebook"),
                    facebook_delivery_headers(APP_SECRET, &body),
                    body,
                )
                .await?;
            }
        }
        let pause = if burst { 30 } else { 150 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    // Let the last DMs be polled.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Ok(usize::try_from(customers).unwrap_or(usize::MAX))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "the ingress answered {} to a valid delivery",
        response.status()
    );
    Ok(())
}

/// The nine operators: each answers what they are given after a moment's thought and
/// resolves it after handling it. A conversation they lost meanwhile (offer timeout) is
/// refused by the host and left alone.
async fn operators_at_work(host: Host, inbox: Arc<LocalInbox>) {
    let mut seen = 0;
    let mut dice = Dice(0x0bb1_7a70);
    loop {
        let events = inbox.events();
        for delivery in events.iter().skip(seen) {
            if let CrmEvent::ConversationAssigned {
                conversation_id,
                operator,
                ..
            } = &delivery.event
            {
                let think = Duration::from_millis(200 + dice.next(900));
                let handle = Duration::from_millis(800 + dice.next(2200));
                let (host, conversation, operator) =
                    (host.clone(), conversation_id.clone(), operator.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(think).await;
                    let key = format!("{conversation}:{operator}");
                    // Each answer names the case, as a real operator's would (X also refuses
                    // the same text twice from one account).
                    // Ids are time-ordered (UUIDv7): their tail is what tells two apart.
                    let case = conversation
                        .get(conversation.len().saturating_sub(6)..)
                        .unwrap_or(&conversation);
                    let text = format!(
                        "Ciao, sono {operator}: ho aperto la pratica {case}, ti aggiorno a breve."
                    );
                    match host
                        .reply("default", &conversation, &operator, None, &text, &key)
                        .await
                    {
                        Ok(_) => {
                            tokio::time::sleep(handle).await;
                            if let Err(e) = host.resolve("default", &conversation).await {
                                tracing::warn!("resolving {conversation}: {e}");
                            }
                        }
                        Err(Error::Refused(_)) => {}
                        Err(e) => tracing::warn!("{operator} could not reply: {e}"),
                    }
                });
            }
        }
        seen = events.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Milliseconds since the Unix epoch (0 before 1970), for the emulators' timestamps.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The brands of `examples/centralino.toml` (automatic answers in Italian and English),
/// always open: the demo's day runs at whatever hour it is started.
fn demo_brands() -> anyhow::Result<Vec<centralino::answers::Brand>> {
    #[derive(serde::Deserialize)]
    struct Example {
        brands: Vec<centralino::answers::Brand>,
    }
    let example: Example = toml::from_str(centralino::config::EXAMPLE)
        .context("reading the brands of the example config")?;
    Ok(example
        .brands
        .into_iter()
        .map(|mut brand| {
            brand.hours = None;
            brand.holidays.clear();
            brand.service_levels = None;
            brand
        })
        .collect())
}
