//! Test guest: a channel connector that misbehaves on request, for the host's
//! hostile-guest tests (`host/tests/all/hostile.rs`).
//!
//! Every call runs a *script*, one command per line: a webhook's body, or for `poll` the
//! connector setting `poll` (an empty or missing script polls nothing).
//!
//! | line | what the call does |
//! | --- | --- |
//! | `author: text` | adds a message from `author` to the batch |
//! | `!panic` | panics, in the middle of the batch built so far |
//! | `!loop` | never returns |
//! | `!bomb` | allocates until memory runs out |
//! | `!leak N` | keeps `N` MiB more for as long as the instance lives (a slow leak) |
//! | `!flood N` | adds `N` messages |
//! | `!long N` | adds one message of `N` characters |
//! | `!log N` | writes `N` lines through the `log` import |
//! | `!print N` | writes `N` lines to stdout |
//! | `!fetch URL [CREDENTIAL]` | GETs `URL` through the host; a refusal fails the call |
//! | `!secret NAME` | signs with secret `NAME`; a refusal fails the call |
//! | `!panic-if-down URL` | POSTs `URL`; if that fails or answers 5xx, panics mid-batch |
//!
//! A poll's cursor is a page number: page `n` gives its messages ids ending in `-p<n>` and
//! returns cursor `n + 1`, so every successful poll brings new messages and a failed one
//! (cursor kept) brings the same ones again.

wit_bindgen::generate!({ path: "../../../wit", world: "channel" });
centralino_sdk::plugin_metadata!();

use std::sync::Mutex;

use centralino::plugin::http::{self, Method, Request};
use centralino::plugin::types::{MessageKind, Person, PluginError};
use centralino::plugin::{clock, log, signing};
use exports::centralino::plugin::connector::{
    Capability, Config, Description, Guest, Message, OutboundMessage, PollResult, Sent,
    WebhookOutcome, WebhookRequest, WebhookResponse,
};

/// What `!leak` keeps, for the instance's lifetime.
static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The first configured account and the `poll` script.
static STATE: Mutex<Option<(String, String)>> = Mutex::new(None);

struct Hostile;

/// FNV-1a, for stable message ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn message(account: &str, author: &str, text: String, id: String) -> Message {
    Message {
        external_id: id,
        account: account.to_string(),
        conversation_key: format!("dm:{author}"),
        author: Person {
            id: author.to_string(),
            handle: Some(author.to_string()),
            display_name: None,
        },
        text,
        kind: MessageKind::PrivateMessage,
        in_reply_to: None,
        attachments: Vec::new(),
        created_at: clock::now_ms(),
        language: None,
        extra: Vec::new(),
    }
}

fn count(word: Option<&str>) -> usize {
    word.and_then(|w| w.parse().ok()).unwrap_or(0)
}

/// Runs `script` for `account`; `page` tags the message ids.
#[allow(clippy::panic)]
fn run(script: &str, account: &str, page: &str) -> Result<Vec<Message>, PluginError> {
    let mut batch = Vec::new();
    for (line_no, line) in script.lines().enumerate() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            None => {}
            Some("!panic") => panic!(
                "hostile-channel panicked after {} messages of its batch",
                batch.len()
            ),
            Some("!loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("!bomb") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("!leak") => {
                let mut kept = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
                kept.push(vec![1u8; count(words.next()) << 20]);
            }
            Some("!flood") => {
                for i in 0..count(words.next()) {
                    let id = format!("flood-{i}-{page}");
                    batch.push(message(account, "flooder", format!("flood {i}"), id));
                }
            }
            Some("!long") => {
                let text = "x".repeat(count(words.next()));
                batch.push(message(
                    account,
                    "longwinded",
                    text,
                    format!("long-{line_no}-{page}"),
                ));
            }
            Some("!log") => {
                for i in 0..count(words.next()) {
                    log::write(log::Level::Info, &format!("hostile-channel log line {i}"));
                }
            }
            Some("!print") => {
                for i in 0..count(words.next()) {
                    println!("hostile-channel stdout line {i}");
                }
            }
            Some("!fetch") => {
                let url = words.next().unwrap_or_default().to_string();
                let credential = words.next().map(str::to_string);
                let request = Request {
                    method: Method::Get,
                    url,
                    headers: Vec::new(),
                    body: None,
                    credential,
                    timeout_ms: None,
                };
                if let Err(e) = http::fetch(&request) {
                    return Err(PluginError::Transient(format!("fetch refused: {e:?}")));
                }
            }
            Some("!secret") => {
                // `!secret NAME [DATA…]`: sign DATA (default `hostile`) with secret NAME.
                let name = words.next().unwrap_or_default();
                let data = words.collect::<Vec<_>>().join(" ");
                let data = if data.is_empty() { "hostile" } else { &data };
                if let Err(e) = signing::hmac_sha256(name, data.as_bytes()) {
                    return Err(PluginError::Transient(format!("signing refused: {e:?}")));
                }
            }
            Some("!panic-if-down") => {
                let url = words.next().unwrap_or_default().to_string();
                let request = Request {
                    method: Method::Post,
                    url,
                    headers: Vec::new(),
                    body: Some(b"{}".to_vec()),
                    credential: None,
                    timeout_ms: None,
                };
                let down = http::fetch(&request).map_or(true, |r| r.status >= 500);
                if down {
                    panic!(
                        "hostile-channel: the platform is down; panicking after {} messages of its batch",
                        batch.len()
                    );
                }
            }
            Some(_) => {
                let Some((author, text)) = line.split_once(": ") else {
                    return Err(PluginError::InvalidInput(format!(
                        "line {line_no}: not a command"
                    )));
                };
                let id = format!("h-{:016x}-{page}", fnv1a(line.as_bytes()));
                batch.push(message(account, author, text.to_string(), id));
            }
        }
    }
    Ok(batch)
}

fn state() -> Result<(String, String), PluginError> {
    STATE
        .lock()
        .map_err(|_| PluginError::Transient("poisoned".into()))?
        .clone()
        .ok_or_else(|| PluginError::InvalidInput("not configured".into()))
}

impl Guest for Hostile {
    fn describe() -> Description {
        Description {
            channel: "hostile".to_string(),
            summary: "test channel: misbehaves on request".to_string(),
            capabilities: vec![
                Capability::Webhook,
                Capability::Polling,
                Capability::PrivateMessage,
            ],
            max_text_length: 0,
        }
    }

    fn configure(config: Config) -> Result<(), PluginError> {
        let account = config
            .accounts
            .first()
            .map(|a| a.id.clone())
            .ok_or_else(|| PluginError::InvalidInput("hostile-channel needs an account".into()))?;
        let script = config
            .settings
            .iter()
            .find(|(name, _)| name == "poll")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        *STATE
            .lock()
            .map_err(|_| PluginError::Transient("poisoned".into()))? = Some((account, script));
        Ok(())
    }

    fn poll(account: String, cursor: Option<String>) -> Result<PollResult, PluginError> {
        let (_, script) = state()?;
        let page: u64 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let messages = run(&script, &account, &format!("p{page}"))?;
        let cursor = if messages.is_empty() {
            cursor
        } else {
            Some((page + 1).to_string())
        };
        Ok(PollResult {
            messages,
            cursor,
            next_poll_after_ms: None,
        })
    }

    fn handle_webhook(request: WebhookRequest) -> Result<WebhookOutcome, PluginError> {
        let (account, _) = state()?;
        let script = String::from_utf8(request.body)
            .map_err(|_| PluginError::InvalidInput("body is not UTF-8".into()))?;
        let messages = run(&script, &account, "w")?;
        Ok(WebhookOutcome {
            response: WebhookResponse {
                status: 200,
                headers: Vec::new(),
                body: b"ok".to_vec(),
            },
            messages,
            receipts: Vec::new(),
        })
    }

    fn send(_message: OutboundMessage) -> Result<Sent, PluginError> {
        Ok(Sent {
            external_id: format!("hostile-out-{}", clock::now_ms()),
            sent_at: clock::now_ms(),
        })
    }
}

export!(Hostile);
