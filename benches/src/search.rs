//! Search and paging over a large store: how long one page of a search takes through
//! [`Host::search_messages`] and [`Host::search_conversations`] (the calls behind
//! `GET /api/v1/messages` and `GET /api/v1/conversations`), on SQLite (FTS5) and on
//! PostgreSQL (tsvector + GIN) when a server is given.
//!
//! The store is filled through the store's ingest path (the one webhooks use, minus the
//! plugin): `messages` customer messages in conversations of `per_conversation`, over three
//! channels and three brands, Italian telecom phrases drawn from a fixed vocabulary by a
//! seeded generator (so both backends hold the same texts), with a customer code in each
//! message that occurs once. Routing's record then assigns half the conversations to nine
//! operators and resolves a third. Every query runs `rounds` times after one warm-up run;
//! the report gives the median and the slowest.

use std::time::{Duration, Instant};

use centralino::Host;
use centralino::connectors::ConnectorSpec;
use centralino::store::{ConversationStatus, SearchQuery};
use centralino::types::{AccountConfig, ConnectorConfig, Message, MessageKind, Person};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Messages stored before measuring.
    pub messages: usize,
    /// Messages per conversation.
    pub per_conversation: usize,
    /// Runs per query (after one warm-up run).
    pub rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            messages: 100_000,
            per_conversation: 5,
            rounds: 25,
        }
    }
}

/// One query's timings.
#[derive(Clone, Debug)]
pub struct Figure {
    /// What was asked, as a person reads it.
    pub query: String,
    /// Rows on the page.
    pub rows: usize,
    /// Median time of one page.
    pub median: Duration,
    /// Slowest run.
    pub max: Duration,
}

/// One backend's run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// How long storing the messages took.
    pub fill: Duration,
    /// How long the CRM dispatcher took to deliver their events after that.
    pub drain: Duration,
    /// Messages stored.
    pub messages: usize,
    /// One row per query.
    pub figures: Vec<Figure>,
}

const CHANNELS: [(&str, &str, &str); 3] = [
    ("twitter", "1001", "tim"),
    ("facebook", "5001", "telecom"),
    ("telegram", "7001", "impresa"),
];
const SUBJECTS: [&str; 8] = [
    "il modem",
    "la fibra",
    "la linea",
    "il router",
    "la sim",
    "l'offerta",
    "la bolletta",
    "il decoder",
];
const PROBLEMS: [&str; 8] = [
    "non funziona",
    "è lenta da ieri",
    "si blocca ogni sera",
    "non si accende",
    "costa troppo",
    "è stata addebitata due volte",
    "non è ancora attiva",
    "perde la connessione",
];
const CITIES: [&str; 50] = [
    "Roma", "Milano", "Napoli", "Torino", "Palermo", "Genova", "Bologna", "Firenze", "Bari",
    "Catania", "Venezia", "Verona", "Messina", "Padova", "Trieste", "Brescia", "Parma", "Taranto",
    "Prato", "Modena", "Reggio", "Perugia", "Livorno", "Ravenna", "Cagliari", "Foggia", "Rimini",
    "Salerno", "Ferrara", "Sassari", "Latina", "Monza", "Siracusa", "Pescara", "Bergamo", "Forlì",
    "Trento", "Vicenza", "Terni", "Bolzano", "Novara", "Piacenza", "Ancona", "Andria", "Arezzo",
    "Udine", "Cesena", "Lecce", "Pesaro", "Como",
];
const CLOSINGS: [&str; 6] = [
    "potete aiutarmi?",
    "grazie",
    "è urgente",
    "aspetto da una settimana",
    "vorrei parlare con un operatore",
    "help please, I do not speak Italian well",
];

/// A small seeded generator (xorshift), so every run and both backends hold the same texts.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// The `n`th message's text: a subject, a problem, a city, a closing, a customer code.
fn text(draw: &mut Draw, n: usize) -> String {
    format!(
        "{} {} a {}, {} (codice cliente C{n:07})",
        draw.pick(&SUBJECTS),
        draw.pick(&PROBLEMS),
        draw.pick(&CITIES),
        draw.pick(&CLOSINGS)
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh, empty database on the PostgreSQL server at `base` (a URL naming any database
/// the user may connect to), named after `label` and this process; its URL.
pub async fn fresh_postgres(base: &str, label: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(base).await?;
    let name = format!("centralino_bench_{label}_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let (prefix, _) = base
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("`{base}` names no database"))?;
    Ok(format!("{prefix}/{name}"))
}

/// Drops a database made by [`fresh_postgres`] (its URL), closing what is still connected.
pub async fn drop_postgres(base: &str, url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let Some((_, name)) = url.rsplit_once('/') else {
        return Ok(());
    };
    let mut admin = sqlx::PgConnection::connect(base).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// Fills the store of a fresh host at `store_url` and measures the queries.
pub async fn run(
    plugins: &std::path::Path,
    store_url: &str,
    backend: &'static str,
    options: &Options,
) -> anyhow::Result<Figures> {
    let echo = crate::component(plugins, "echo-channel")?;
    let mut builder = Host::builder().store(store_url);
    for (channel, account, brand) in CHANNELS {
        let config = ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: account.to_string(),
                ..AccountConfig::default()
            }],
        };
        builder =
            builder.connector(ConnectorSpec::new(channel, &echo, config).brand(account, brand));
    }
    let host = builder.build().await?;
    let store = host.store().clone();

    let started = Instant::now();
    let conversations = options.messages.div_ceil(options.per_conversation.max(1));
    let mut draw = Draw(0x2545_f491_4f6c_dd1d);
    let base: u64 = 1_796_000_000_000;
    let mut stored = 0;
    let mut ids = Vec::with_capacity(conversations);
    // One round of messages at a time (every conversation gets its next message), in
    // batches of 500 per channel, as deliveries would bring them.
    for round in 0..options.per_conversation.max(1) {
        for (index, (channel, account, _)) in CHANNELS.iter().enumerate() {
            let mut batch: Vec<Message> = Vec::with_capacity(500);
            for conversation in (index..conversations).step_by(CHANNELS.len()) {
                if stored >= options.messages {
                    break;
                }
                let n = round * conversations + conversation;
                batch.push(Message {
                    external_id: format!("m{n}"),
                    account: account.to_string(),
                    conversation_key: format!("t{conversation}"),
                    author: Person {
                        id: format!("customer{conversation}"),
                        handle: None,
                        display_name: None,
                    },
                    text: text(&mut draw, n),
                    kind: MessageKind::PrivateMessage,
                    in_reply_to: None,
                    attachments: Vec::new(),
                    created_at: base + n as u64 * 1_000,
                    extra: Vec::new(),
                });
                stored += 1;
                if batch.len() == 500 {
                    let ingested = store.ingest("default", channel, &batch).await?;
                    if round == 0 {
                        ids.extend(
                            ingested
                                .into_iter()
                                .map(|i| i.conversation_id.into_string()),
                        );
                    }
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                let ingested = store.ingest("default", channel, &batch).await?;
                if round == 0 {
                    ids.extend(
                        ingested
                            .into_iter()
                            .map(|i| i.conversation_id.into_string()),
                    );
                }
            }
        }
    }
    // Half assigned to nine operators, a third resolved, the rest waiting.
    let changes: Vec<(String, ConversationStatus, Option<String>)> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| match n % 6 {
            0 | 1 => (
                id.clone(),
                ConversationStatus::Resolved,
                Some(format!("op{}", n % 9)),
            ),
            2..=4 => (
                id.clone(),
                ConversationStatus::Assigned,
                Some(format!("op{}", n % 9)),
            ),
            _ => (id.clone(), ConversationStatus::Waiting, None),
        })
        .collect();
    for chunk in changes.chunks(2_000) {
        store.record_routing("default", chunk, &[]).await?;
    }
    let fill = started.elapsed();
    let last_second = now_ms().saturating_sub(1_000);
    // The CRM dispatcher delivers every stored message's event: measure once it is done,
    // so the searches do not share the store with a backlog of 100,000 deliveries.
    let drained = Instant::now();
    while store.undelivered_events("default").await? > 0 {
        anyhow::ensure!(
            drained.elapsed() < Duration::from_secs(600),
            "the CRM events were not delivered within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = drained.elapsed();
    // PostgreSQL's autovacuum analyses a table this size soon after it changed; do it now,
    // so the planner knows how common each word is, as it would in service.
    if backend.starts_with("PostgreSQL") {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(store_url).await?;
        sqlx::query("ANALYZE").execute(&mut connection).await?;
    }

    let queries: Vec<(&str, bool, SearchQuery)> = vec![
        (
            "messages: a customer code (1 match)",
            true,
            SearchQuery::new().text("C0012345"),
        ),
        (
            "messages: a city, `Bari` (~2%)",
            true,
            SearchQuery::new().text("Bari"),
        ),
        (
            "messages: `modem` (~12%)",
            true,
            SearchQuery::new().text("modem"),
        ),
        (
            "messages: `non` (~40%)",
            true,
            SearchQuery::new().text("non"),
        ),
        (
            "messages: `modem non funziona` (all three words)",
            true,
            SearchQuery::new().text("modem non funziona"),
        ),
        (
            "messages: `modem` + brand `tim` + resolved",
            true,
            SearchQuery::new()
                .text("modem")
                .brand("tim")
                .status(ConversationStatus::Resolved),
        ),
        (
            "messages: `Bari` + operator `op4`",
            true,
            SearchQuery::new().text("Bari").assignee("op4"),
        ),
        (
            "messages: channel `telegram`, no text",
            true,
            SearchQuery::new().channel("telegram"),
        ),
        (
            "messages: stored in the fill's last second, no text",
            true,
            SearchQuery::new().since_ms(last_second),
        ),
        (
            "conversations: `modem`",
            false,
            SearchQuery::new().text("modem"),
        ),
        (
            "conversations: `Bari` + brand `impresa`",
            false,
            SearchQuery::new().text("Bari").brand("impresa"),
        ),
        (
            "conversations: waiting, no text",
            false,
            SearchQuery::new().status(ConversationStatus::Waiting),
        ),
        (
            "conversations: operator `op4`, no text",
            false,
            SearchQuery::new().assignee("op4"),
        ),
    ];
    let mut figures = Vec::new();
    for (label, on_messages, query) in queries {
        let query = query.limit(50);
        let mut times = Vec::with_capacity(options.rounds);
        let mut rows = 0;
        for round in 0..=options.rounds {
            let started = Instant::now();
            rows = if on_messages {
                host.search_messages("default", &query).await?.items.len()
            } else {
                host.search_conversations("default", &query)
                    .await?
                    .items
                    .len()
            };
            if round > 0 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        figures.push(Figure {
            query: label.to_string(),
            rows,
            median: times[times.len() / 2],
            max: times[times.len() - 1],
        });
    }

    // Deep paging: the tenth page of `modem`, walked with cursors.
    let mut query = SearchQuery::new().text("modem").limit(50);
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let page = host.search_messages("default", &query).await?;
        times.push(started.elapsed());
        rows = page.items.len();
        match page.next_cursor {
            Some(cursor) => query = query.after(cursor),
            None => break,
        }
    }
    let last = times.last().copied().unwrap_or_default();
    times.sort();
    figures.push(Figure {
        query: format!(
            "messages: `modem`, pages 1–{} walked by cursor (the last page)",
            times.len()
        ),
        rows,
        median: last,
        max: times.last().copied().unwrap_or_default(),
    });
    Ok(Figures {
        backend,
        fill,
        drain,
        messages: stored,
        figures,
    })
}
