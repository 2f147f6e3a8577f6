//! Search and paging through the REST API, over real HTTP on loopback: conversations and
//! messages found by text, brand, channel, operator, status and time; cursors that walk
//! every row once while new messages arrive; lists that never answer more than a page; and
//! a full-text index that follows every change of a message's text. Customers write through
//! the echo connector's webhooks (two connectors, two brands); the bulk tests store through
//! the store's ingest path. Each test runs on SQLite, and on PostgreSQL when the suite has
//! one (`CENTRALINO_TEST_POSTGRES`). Every answer is checked against the OpenAPI document.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;

use centralino::Host;
use centralino::api::ApiTokens;
use centralino::capabilities::Secret;
use centralino::clock::ManualClock;
use centralino::connectors::ConnectorSpec;
use centralino::routing::{Operator, RoutingEngine};
use centralino::store::{MAX_PAGE, SearchQuery};
use centralino::types::{AccountConfig, ConnectorConfig, Message, MessageKind, Person, Presence};
use serde_json::{Value, json};

use crate::api::OpenApi;
use crate::component;
use crate::routing::chain;
use crate::support::{eventually, serve_rest};

const TOKEN: &str = "token-search";
const T0: u64 = 1_796_000_000_000;

/// A host with two echo connectors, `echo` (account `tim-care`, brand `tim`) and `chat`
/// (account `biz-care`, brand `impresa`), one operator `marco` (capacity 3, online), on a
/// manual clock; its REST API and webhooks on loopback.
struct Crm {
    host: Host,
    public: SocketAddr,
    clock: ManualClock,
    spec: OpenApi,
    client: reqwest::Client,
    store_url: String,
    _server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Crm {
    fn drop(&mut self) {
        self._server.abort();
    }
}

/// The backends the suite has: SQLite always, PostgreSQL when configured.
fn backends() -> Vec<&'static str> {
    let mut backends = vec!["sqlite"];
    if crate::store::postgres_url().is_some() {
        backends.push("postgres");
    }
    backends
}

impl Crm {
    async fn start(backend: &str) -> Crm {
        let dir = tempfile::tempdir().unwrap();
        let store_url = match backend {
            "postgres" => {
                let base = crate::store::postgres_url().unwrap();
                crate::store::fresh_postgres_database(&base).await
            }
            _ => format!("sqlite://{}", dir.path().join("centralino.db").display()),
        };
        let clock = ManualClock::new(T0);
        let mut engine = RoutingEngine::builder(chain("least-loaded").await).build();
        engine
            .add_operator(Operator::new("marco", 3), Presence::Online)
            .await;
        let connector = |name: &str, account: &str, brand: &str| {
            let config = ConnectorConfig {
                settings: Vec::new(),
                accounts: vec![AccountConfig {
                    id: account.to_string(),
                    handle: Some(account.to_string()),
                    credential: None,
                    settings: Vec::new(),
                }],
            };
            ConnectorSpec::new(name, component("echo-channel"), config).brand(account, brand)
        };
        let host = Host::builder()
            .store(store_url.clone())
            .clock(clock.clone())
            .connector(connector("echo", "tim-care", "tim"))
            .connector(connector("chat", "biz-care", "impresa"))
            .tenant_routing("default", engine)
            .build()
            .await
            .unwrap();
        let tokens = ApiTokens::new()
            .with("default", &Secret::new(TOKEN))
            .unwrap();
        let (public, server) = serve_rest(&host, tokens).await;
        Crm {
            host,
            public,
            clock,
            spec: OpenApi::load(),
            client: reqwest::Client::new(),
            store_url,
            _server: server,
            _dir: dir,
        }
    }

    /// A customer writes `author: text` through connector `name`'s webhook, at `at`.
    async fn write(&self, name: &str, at: u64, body: &str) {
        self.clock.set(at);
        let status = self
            .client
            .post(format!("http://{}/webhooks/{name}", self.public))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{body}");
    }

    /// `GET path` with the tenant's token, checked against the document (`template`).
    async fn get(&self, template: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.public))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.spec.check(template, "get", status, &body);
        (status, body)
    }

    /// The ids of one page of `/api/v1/conversations?{query}` (a 200 is required).
    async fn conversations(&self, query: &str) -> Vec<String> {
        let (status, body) = self
            .get(
                "/api/v1/conversations",
                &format!("/api/v1/conversations?{query}"),
            )
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        ids(&body["conversations"], "id")
    }

    /// The texts of one page of `/api/v1/messages?{query}`.
    async fn messages(&self, query: &str) -> Vec<String> {
        let (status, body) = self
            .get("/api/v1/messages", &format!("/api/v1/messages?{query}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        ids(&body["messages"], "text")
    }

    /// The error code of a refused `GET`.
    async fn refused(&self, template: &str, path: &str) -> (u16, String) {
        let (status, body) = self.get(template, path).await;
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    }

    /// Every page of a list, `limit` at a time, calling `between` after each page; the
    /// rows' `field`, in order, and the largest page seen.
    async fn walk(
        &self,
        template: &str,
        path: &str,
        rows: &str,
        field: &str,
        mut between: impl AsyncFnMut(usize),
    ) -> (Vec<String>, usize) {
        let mut seen = Vec::new();
        let mut largest = 0;
        let mut cursor: Option<String> = None;
        for page in 0.. {
            let separator = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(cursor) => format!("{path}{separator}cursor={cursor}"),
                None => path.to_string(),
            };
            let (status, body) = self.get(template, &url).await;
            assert_eq!(status, 200, "{url}: {body}");
            let found = ids(&body[rows], field);
            largest = largest.max(found.len());
            seen.extend(found);
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(page < 1_000, "{path} never ends");
            between(page).await;
        }
        (seen, largest)
    }
}

fn ids(rows: &Value, field: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| row[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_and_messages_are_found_by_text_brand_channel_operator_status_and_time() {
    for backend in backends() {
        eprintln!("backend: {backend}");
        let crm = Crm::start(backend).await;
        crm.write("echo", T0, "mario: il modem non va da ieri")
            .await;
        crm.write("echo", T0 + 60_000, "lucia: la fattura è sbagliata")
            .await;
        crm.write("chat", T0 + 120_000, "paolo: il MODEM della sede non va")
            .await;
        crm.write("chat", T0 + 180_000, "anna: la fibra è lenta")
            .await;
        crm.write("echo", T0 + 240_000, "mario: ancora nessuna linea")
            .await;

        // Newest first; marco holds three (his capacity), the fourth waits.
        let all = crm.conversations("").await;
        assert_eq!(all.len(), 4, "{all:?}");
        let [anna, paolo, lucia, mario] = [&all[0], &all[1], &all[2], &all[3]];
        let expect = async |query: &str, expected: &[&String]| {
            let found = crm.conversations(query).await;
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(found, expected, "{backend}: ?{query}");
        };
        expect("q=modem", &[paolo, mario]).await;
        expect("q=Modem%20NON%20va", &[paolo, mario]).await;
        expect("q=modem%20fibra", &[]).await;
        expect("q=linea", &[mario]).await;
        expect("q=citt%C3%A0", &[]).await;
        expect("q=fattura&brand=tim", &[lucia]).await;
        expect("q=modem&brand=tim", &[mario]).await;
        expect("q=modem&channel=chat", &[paolo]).await;
        expect("brand=impresa", &[anna, paolo]).await;
        expect("brand=nobody", &[]).await;
        expect("channel=echo", &[lucia, mario]).await;
        eventually("marco holds three, anna waits", async || {
            crm.conversations("status=waiting").await == [anna.clone()]
        })
        .await;
        expect("assignee=marco", &[paolo, lucia, mario]).await;
        expect("assignee=marco&brand=impresa", &[paolo]).await;
        expect(
            &format!("since={}&until={}", T0 + 60_000, T0 + 180_000),
            &[paolo, lucia],
        )
        .await;

        // Messages: newest stored first, each with its conversation and channel.
        let (_, found) = crm
            .get("/api/v1/messages", "/api/v1/messages?q=modem")
            .await;
        let found = found["messages"].as_array().unwrap().clone();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0]["text"], "il MODEM della sede non va");
        assert_eq!(
            (&found[0]["conversation_id"], &found[0]["channel"]),
            (&json!(paolo), &json!("chat"))
        );
        assert_eq!(found[1]["conversation_id"], json!(mario));
        assert_eq!(
            crm.messages("brand=tim").await,
            [
                "ancora nessuna linea",
                "la fattura è sbagliata",
                "il modem non va da ieri"
            ]
        );
        assert_eq!(
            crm.messages(&format!("since={}", T0 + 240_000)).await,
            ["ancora nessuna linea"]
        );
        assert!(crm.messages("q=modem&status=waiting").await.is_empty());
        assert_eq!(
            crm.messages("q=fibra&status=waiting").await,
            ["la fibra è lenta"]
        );

        // marco answers mario: the reply is found as the company's, not the customer's.
        let reply = crm
            .client
            .post(format!(
                "http://{}/api/v1/conversations/{mario}/replies",
                crm.public
            ))
            .bearer_auth(TOKEN)
            .header("idempotency-key", "search-1")
            .header("content-type", "application/json")
            .body(json!({ "operator": "marco", "text": "abbiamo riavviato il modem" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 202);
        eventually("the reply is sent and stored", async || {
            crm.messages("q=riavviato&direction=outbound").await == ["abbiamo riavviato il modem"]
        })
        .await;
        assert!(
            crm.messages("q=riavviato&direction=inbound")
                .await
                .is_empty()
        );
        expect("q=riavviato", &[mario]).await;

        // Resolving lucia's frees a seat: anna's is assigned; only lucia's is resolved.
        let resolved = crm
            .client
            .post(format!(
                "http://{}/api/v1/conversations/{lucia}/resolve",
                crm.public
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resolved.status(), 200);
        expect("status=resolved", &[lucia]).await;
        eventually("anna's conversation is assigned", async || {
            crm.conversations("status=waiting").await.is_empty()
        })
        .await;

        // The crate API answers the same.
        let page = crm
            .host
            .search_conversations(
                "default",
                &SearchQuery::new().text("modem").brand("impresa"),
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(&page.items[0].id, paolo);
        assert_eq!(page.next_cursor, None);

        // What cannot be run is refused, naming the field.
        let conversations = "/api/v1/conversations";
        for (path, expected) in [
            ("/api/v1/conversations?q=%3F%21", (422, "invalid_query")),
            ("/api/v1/conversations?cursor=abc", (422, "invalid_query")),
            (
                "/api/v1/conversations?cursor=a%20b",
                (400, "invalid_request"),
            ),
            ("/api/v1/conversations?limit=201", (400, "invalid_request")),
            ("/api/v1/conversations?limit=0", (400, "invalid_request")),
            ("/api/v1/conversations?q=", (400, "invalid_request")),
            ("/api/v1/conversations?offset=1", (400, "invalid_request")),
            (
                "/api/v1/conversations?direction=inbound",
                (400, "invalid_request"),
            ),
            (
                "/api/v1/conversations?since=9223372036854775808",
                (400, "invalid_request"),
            ),
        ] {
            let (status, code) = crm.refused(conversations, path).await;
            assert_eq!((status, code.as_str()), expected, "{path}");
        }
        let long = "a".repeat(201);
        assert_eq!(
            crm.refused(conversations, &format!("{conversations}?q={long}"))
                .await,
            (400, "invalid_request".to_string())
        );
        // A cursor of another list is not one of this list.
        let (_, page) = crm
            .get(
                "/api/v1/conversations/{id}/messages",
                &format!("/api/v1/conversations/{mario}/messages?limit=1"),
            )
            .await;
        let thread_cursor = page["next_cursor"].as_str().unwrap().to_string();
        assert_eq!(
            crm.refused(
                "/api/v1/messages",
                &format!("/api/v1/messages?cursor={thread_cursor}")
            )
            .await,
            (422, "invalid_query".to_string())
        );
        drop(crm);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_walk_every_row_once_while_new_messages_arrive() {
    for backend in backends() {
        eprintln!("backend: {backend}");
        let crm = Crm::start(backend).await;
        let mut at = T0;
        for n in 0..30 {
            at += 1_000;
            crm.write("echo", at, &format!("cliente{n}: guasto numero {n}"))
                .await;
        }
        for n in 0..20 {
            at += 1_000;
            crm.write("chat", at, &format!("zeta: guasto parte {n}"))
                .await;
        }
        let before: Vec<String> = crm.conversations("limit=200").await;
        assert_eq!(before.len(), 31);
        let zeta = before[0].clone();

        // While the CRM pages, customers keep writing: new conversations, and new messages
        // in conversations already listed.
        let arrivals = std::cell::Cell::new(0u32);
        let arrive = async |page: usize| {
            let n = arrivals.get();
            arrivals.set(n + 1);
            let at = T0 + 1_000_000 + u64::from(n) * 1_000;
            crm.write("echo", at, &format!("nuovo{n}: guasto arrivato {n} {page}"))
                .await;
            crm.write("echo", at + 1, &format!("cliente3: guasto ancora {n}"))
                .await;
            crm.write("chat", at + 2, &format!("zeta: guasto parte nuova {n}"))
                .await;
        };

        let (walked, largest) = crm
            .walk(
                "/api/v1/conversations",
                "/api/v1/conversations?limit=7",
                "conversations",
                "id",
                arrive,
            )
            .await;
        assert!(largest <= 7);
        let unique: HashSet<&String> = walked.iter().collect();
        assert_eq!(
            unique.len(),
            walked.len(),
            "{backend}: a conversation twice"
        );
        assert_eq!(
            walked, before,
            "{backend}: every conversation, in order, once"
        );

        // Messages found by text, newest stored first.
        let expected = crm.messages("q=guasto&limit=200").await;
        assert_eq!(expected.len(), 50 + 3 * arrivals.get() as usize);
        let (walked, largest) = crm
            .walk(
                "/api/v1/messages",
                "/api/v1/messages?q=guasto&limit=6",
                "messages",
                "text",
                arrive,
            )
            .await;
        assert!(largest <= 6);
        let unique: BTreeSet<&String> = walked.iter().collect();
        assert_eq!(unique.len(), walked.len(), "{backend}: a message twice");
        assert_eq!(
            walked, expected,
            "{backend}: every message found, in order, once"
        );

        // Messages by time (no text), the same.
        let expected = crm.messages("channel=chat&limit=200").await;
        let (walked, _) = crm
            .walk(
                "/api/v1/messages",
                "/api/v1/messages?channel=chat&limit=5",
                "messages",
                "text",
                arrive,
            )
            .await;
        assert_eq!(walked, expected, "{backend}: every message by time, once");

        // One conversation's messages, oldest first, while it grows: everything there
        // when the walk began, in order, once; what arrives at its end joins it.
        let template = "/api/v1/conversations/{id}/messages";
        let path = format!("/api/v1/conversations/{zeta}/messages");
        let (_, first) = crm.get(template, &format!("{path}?limit=200")).await;
        let expected = ids(&first["messages"], "text");
        let (walked, largest) = crm
            .walk(
                template,
                &format!("{path}?limit=4"),
                "messages",
                "text",
                arrive,
            )
            .await;
        assert!(largest <= 4);
        let unique: HashSet<&String> = walked.iter().collect();
        assert_eq!(unique.len(), walked.len(), "{backend}: a message twice");
        assert_eq!(walked[..expected.len()], expected[..], "{backend}");
        drop(crm);
    }
}

/// `count` messages as a connector would hand them over: one per thread, or all in one.
fn bulk(prefix: &str, count: usize, one_thread: bool) -> Vec<Message> {
    (0..count)
        .map(|n| Message {
            external_id: format!("{prefix}-{n}"),
            account: "tim-care".to_string(),
            conversation_key: if one_thread {
                prefix.to_string()
            } else {
                format!("{prefix}-{n}")
            },
            author: Person {
                id: format!("{prefix}-{n}"),
                handle: None,
                display_name: None,
            },
            text: format!("segnalazione {n} di {prefix}"),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: T0 + n as u64,
            extra: Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_list_answers_more_than_a_page_however_much_the_tenant_holds() {
    for backend in backends() {
        eprintln!("backend: {backend}");
        let crm = Crm::start(backend).await;
        let store = crm.host.store();
        let many = MAX_PAGE + 50;
        store
            .ingest("default", "echo", &bulk("one", many, false))
            .await
            .unwrap();
        let big = store
            .ingest("default", "echo", &bulk("big", many, true))
            .await
            .unwrap()[0]
            .conversation_id
            .clone();

        let lists = [
            (
                "/api/v1/conversations",
                "/api/v1/conversations".to_string(),
                "conversations",
                many + 1,
            ),
            (
                "/api/v1/messages",
                "/api/v1/messages".to_string(),
                "messages",
                2 * many,
            ),
            (
                "/api/v1/messages",
                "/api/v1/messages?q=segnalazione".to_string(),
                "messages",
                2 * many,
            ),
            (
                "/api/v1/conversations/{id}/messages",
                format!("/api/v1/conversations/{big}/messages"),
                "messages",
                many,
            ),
        ];
        for (template, path, rows, total) in lists {
            // Without a limit: the default page, and a cursor.
            let (status, body) = crm.get(template, &path).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body[rows].as_array().unwrap().len(), 50, "{backend} {path}");
            assert!(body["next_cursor"].is_string(), "{path}");
            // At the largest page, every row comes, never more than a page at once.
            let separator = if path.contains('?') { '&' } else { '?' };
            let (walked, largest) = crm
                .walk(
                    template,
                    &format!("{path}{separator}limit={MAX_PAGE}"),
                    rows,
                    "id",
                    async |_| {},
                )
                .await;
            assert_eq!(largest, MAX_PAGE, "{backend} {path}");
            assert_eq!(walked.len(), total, "{backend} {path}");
            assert_eq!(
                walked.iter().collect::<HashSet<_>>().len(),
                total,
                "{backend} {path}"
            );
            let (status, code) = crm
                .refused(
                    template,
                    &format!("{path}{separator}limit={}", MAX_PAGE + 1),
                )
                .await;
            assert_eq!((status, code.as_str()), (400, "invalid_request"), "{path}");
        }
        drop(crm);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_index_follows_every_change_of_a_message_text() {
    for backend in backends() {
        eprintln!("backend: {backend}");
        let crm = Crm::start(backend).await;
        crm.write("echo", T0, "mario: il mio codice è ZX81").await;
        crm.write("echo", T0 + 1, "lucia: il codice ZX81 anche a me")
            .await;
        let found = async |text: &str| {
            crm.host
                .search_messages("default", &SearchQuery::new().text(text))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.message.text)
                .collect::<Vec<_>>()
        };
        assert_eq!(found("zx81").await.len(), 2);

        // Rows changed behind the host's back (an erasure, an admin's fix): the index
        // follows, by the store's own triggers or index.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&crm.store_url).await.unwrap();
        sqlx::query("UPDATE messages SET text = 'testo cancellato' WHERE text LIKE 'il mio%'")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(found("zx81").await, ["il codice ZX81 anche a me"]);
        assert_eq!(found("cancellato").await, ["testo cancellato"]);
        sqlx::query("UPDATE messages SET text = '' WHERE text = 'testo cancellato'")
            .execute(&pool)
            .await
            .unwrap();
        assert!(found("cancellato").await.is_empty());
        sqlx::query("DELETE FROM messages WHERE text LIKE 'il codice%'")
            .execute(&pool)
            .await
            .unwrap();
        assert!(found("zx81").await.is_empty());
        assert!(crm.conversations("q=codice").await.is_empty());
        // New messages are indexed as before.
        crm.write("echo", T0 + 2, "paolo: ZX81 di nuovo").await;
        assert_eq!(found("zx81").await, ["ZX81 di nuovo"]);
        pool.close().await;
        drop(crm);
    }
}
