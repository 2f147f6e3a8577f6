//! The Telegram Bot API emulator: updates by `getUpdates` or webhook, and `sendMessage`.
//!
//! Served endpoints (as used by the Telegram connector), under `/bot<token>/`:
//! - `getUpdates` (GET query or POST JSON): `offset`, `limit`, `timeout`. As on the real
//!   platform, asking with `offset` confirms every update below it: they are never
//!   returned again.
//! - `sendMessage` (POST JSON): `chat_id`, `text`, `reply_to_message_id`; the answer is the
//!   sent `Message`. A text over 4096 characters is `400 Bad Request: message is too long`,
//!   an unknown chat `400 Bad Request: chat not found`.
//!
//! Errors use the Bot API's shape, `{"ok": false, "error_code": …, "description": …}`, and
//! a 429 carries `parameters.retry_after`.
//!
//! # Where the token goes
//!
//! The Bot API carries the token in the path (`/bot123:ABC/getUpdates`). Plugins never hold
//! it: they write [`CREDENTIAL_PLACEHOLDER`] (`/bot{credential}/getUpdates`) and name a
//! path credential (`credential = { path = "env:…" }`), and the host puts the token there
//! after the request leaves the plugin. Like the real API, the emulator only accepts the
//! token in the path.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use centralino_emulators::telegram::{TelegramApi, TelegramUser};
//! let telegram = TelegramApi::start().await?;
//! telegram.add_bot("7001", "TIM_help_bot", "7001:AAH-secret");
//! let mario = TelegramUser::new("4242", "Mario", Some("mario_rossi"));
//! telegram.customer_writes("7001", &mario, "il mio modem non va");
//! // point a connector at telegram.base_url() ...
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::server::{
    Fault, Journal, Recorded, Server, Shared, json as reply, lock, percent_decode,
};

/// What a plugin writes in place of the token (`/bot{credential}/sendMessage`).
pub const CREDENTIAL_PLACEHOLDER: &str = "{credential}";

/// Header Telegram puts on webhook deliveries when `setWebhook` was given a `secret_token`.
pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Longest text `sendMessage` accepts.
pub const MAX_TEXT: usize = 4096;

/// A Telegram user (a customer writing to a bot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramUser {
    /// Numeric id as a string; in a private chat it is also the chat id.
    pub id: String,
    /// First name.
    pub first_name: String,
    /// `@username` without `@`, if the user has one.
    pub username: Option<String>,
}

impl TelegramUser {
    /// A user.
    pub fn new(id: &str, first_name: &str, username: Option<&str>) -> Self {
        TelegramUser {
            id: id.to_string(),
            first_name: first_name.to_string(),
            username: username.map(str::to_string),
        }
    }

    fn json(&self) -> Value {
        let mut user =
            json!({ "id": number(&self.id), "is_bot": false, "first_name": self.first_name });
        if let Some(username) = &self.username {
            user["username"] = json!(username);
        }
        user
    }
}

/// A message a bot sent through `sendMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// The bot that sent it.
    pub bot_id: String,
    /// The chat it went to.
    pub chat_id: String,
    /// Its id in that chat.
    pub message_id: i64,
    /// Text.
    pub text: String,
    /// The message it answers, if any.
    pub reply_to_message_id: Option<i64>,
}

#[derive(Clone, Debug)]
struct Bot {
    id: String,
    username: String,
    token: String,
}

#[derive(Debug, Default)]
struct TelegramState {
    bots: Vec<Bot>,
    /// Pending updates per bot: (bot id, update).
    updates: Vec<(String, Value)>,
    /// Chats each bot may write to: (bot id, chat id).
    chats: Vec<(String, String)>,
    sent: Vec<SentMessage>,
    next_update_id: i64,
    next_message_id: i64,
}

/// The Telegram Bot API emulator. Stops when dropped.
#[derive(Clone, Debug)]
pub struct TelegramApi {
    shared: Shared<TelegramState>,
    server: Arc<Server>,
}

impl TelegramApi {
    /// Starts the emulator on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<TelegramApi> {
        let state = TelegramState {
            next_update_id: 500_000_000,
            next_message_id: 100,
            ..TelegramState::default()
        };
        let shared: Shared<TelegramState> = Arc::new((Journal::default(), Mutex::new(state)));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router).await?;
        Ok(TelegramApi {
            shared,
            server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// `127.0.0.1:<port>`, for allow-lists.
    pub fn authority(&self) -> String {
        self.server.addr.to_string()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TelegramState> {
        lock(&self.shared.1)
    }

    /// Registers a bot and its token (`<bot id>:<secret part>` on the real platform).
    pub fn add_bot(&self, id: &str, username: &str, token: &str) {
        self.state().bots.push(Bot {
            id: id.to_string(),
            username: username.to_string(),
            token: token.to_string(),
        });
    }

    /// `customer` writes `text` to bot `bot_id` in their private chat; returns the update
    /// (as `getUpdates` or a webhook delivers it).
    pub fn customer_writes(&self, bot_id: &str, customer: &TelegramUser, text: &str) -> Value {
        self.customer_replies(bot_id, customer, text, None)
    }

    /// Like [`customer_writes`](Self::customer_writes), answering message `reply_to` of
    /// the chat (one the bot sent, typically).
    pub fn customer_replies(
        &self,
        bot_id: &str,
        customer: &TelegramUser,
        text: &str,
        reply_to: Option<i64>,
    ) -> Value {
        let mut state = self.state();
        state.next_update_id += 1;
        state.next_message_id += 1;
        let chat = json!({
            "id": number(&customer.id), "type": "private", "first_name": customer.first_name,
        });
        let mut message = json!({
            "message_id": state.next_message_id,
            "from": customer.json(),
            "chat": chat,
            "date": now_secs(),
            "text": text,
        });
        if let Some(reply_to) = reply_to {
            let bot = state.bots.iter().find(|b| b.id == bot_id);
            message["reply_to_message"] = json!({
                "message_id": reply_to,
                "from": { "id": number(bot_id), "is_bot": true, "first_name": "bot",
                          "username": bot.map(|b| b.username.clone()) },
                "chat": message["chat"].clone(),
                "date": now_secs(),
                "text": "…",
            });
        }
        let update = json!({ "update_id": state.next_update_id, "message": message });
        state.updates.push((bot_id.to_string(), update.clone()));
        state
            .chats
            .push((bot_id.to_string(), customer.id.to_string()));
        update
    }

    /// `customer` edits their message `message_id` (of their private chat with bot
    /// `bot_id`) to read `text`: Telegram's `edited_message` update, as `getUpdates` or a
    /// webhook delivers it, with the message's first `date` and the `edit_date`.
    pub fn customer_edits(
        &self,
        bot_id: &str,
        customer: &TelegramUser,
        message_id: i64,
        text: &str,
    ) -> Value {
        let mut state = self.state();
        state.next_update_id += 1;
        let now = now_secs();
        let update = json!({
            "update_id": state.next_update_id,
            "edited_message": {
                "message_id": message_id,
                "from": customer.json(),
                "chat": { "id": number(&customer.id), "type": "private", "first_name": customer.first_name },
                "date": now.saturating_sub(60),
                "edit_date": now,
                "text": text,
            }
        });
        state.updates.push((bot_id.to_string(), update.clone()));
        update
    }

    /// Updates not yet confirmed by a `getUpdates` offset, per bot.
    pub fn pending_updates(&self, bot_id: &str) -> Vec<Value> {
        self.state()
            .updates
            .iter()
            .filter(|(bot, _)| bot == bot_id)
            .map(|(_, update)| update.clone())
            .collect()
    }

    /// Everything the bots sent.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state().sent.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.0.requests()
    }

    /// Makes the next `times` requests whose path contains `path_contains` fail with `fault`.
    pub fn inject(&self, path_contains: &str, fault: Fault, times: u32) {
        self.shared.0.inject(path_contains, fault, times);
    }
}

/// Headers of a webhook delivery, as Telegram sends them after `setWebhook` with
/// `secret_token`.
pub fn webhook_headers(secret_token: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".to_string(), "application/json".to_string()),
        (SECRET_TOKEN_HEADER.to_string(), secret_token.to_string()),
    ]
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Telegram writes ids as JSON numbers.
fn number(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn error(status: u16, description: &str) -> Response {
    reply(
        status,
        Vec::new(),
        json!({ "ok": false, "error_code": status, "description": description }),
    )
}

fn ok(result: Value) -> Response {
    reply(200, Vec::new(), json!({ "ok": true, "result": result }))
}

/// A parameter from the query string or the JSON body (the Bot API takes both).
fn param(request: &Recorded, name: &str) -> Option<Value> {
    let body = request.json();
    if let Some(value) = body.get(name).filter(|v| !v.is_null()) {
        return Some(value.clone());
    }
    request.query_param(name).map(|v| {
        v.parse::<i64>()
            .map_or_else(|_| Value::String(v.clone()), |n| json!(n))
    })
}

fn int(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

async fn handle(
    State(shared): State<Shared<TelegramState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = shared.0.record(&method, &uri, &headers, &body);
    match shared.0.take_fault(&request.path) {
        Some(Fault::RateLimited { reset_after_secs }) => {
            return reply(
                429,
                Vec::new(),
                json!({
                    "ok": false, "error_code": 429,
                    "description": format!("Too Many Requests: retry after {reset_after_secs}"),
                    "parameters": { "retry_after": reset_after_secs },
                }),
            );
        }
        Some(Fault::ServerError(status)) => return error(status, "Internal Server Error"),
        Some(Fault::ExpiredToken) => return error(401, "Unauthorized"),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::LastInWindow { .. }) => {}
        None => {}
    }
    let path = request.path.trim_start_matches('/');
    let Some((token, api_method)) = path
        .strip_prefix("bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return error(404, "Not Found");
    };
    // The bot token is the path segment, as on the real Bot API.
    let token = percent_decode(token);
    let mut state = lock(&shared.1);
    let Some(bot) = state.bots.iter().find(|b| b.token == token).cloned() else {
        return error(401, "Unauthorized");
    };
    match api_method {
        "getUpdates" => {
            let offset = param(&request, "offset").as_ref().and_then(int);
            let limit = param(&request, "limit")
                .as_ref()
                .and_then(int)
                .unwrap_or(100)
                .clamp(1, 100);
            if let Some(offset) = offset {
                state.updates.retain(|(owner, update)| {
                    owner != &bot.id || update["update_id"].as_i64().unwrap_or(0) >= offset
                });
            }
            let result: Vec<Value> = state
                .updates
                .iter()
                .filter(|(owner, _)| owner == &bot.id)
                .map(|(_, update)| update.clone())
                .take(usize::try_from(limit).unwrap_or(100))
                .collect();
            ok(json!(result))
        }
        "sendMessage" => {
            let Some(chat_id) = param(&request, "chat_id").map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            }) else {
                return error(400, "Bad Request: chat_id is empty");
            };
            let Some(text) = param(&request, "text").and_then(|v| v.as_str().map(str::to_string))
            else {
                return error(400, "Bad Request: message text is empty");
            };
            if text.chars().count() > MAX_TEXT {
                return error(400, "Bad Request: message is too long");
            }
            if !state
                .chats
                .iter()
                .any(|(owner, chat)| owner == &bot.id && chat == &chat_id)
            {
                return error(400, "Bad Request: chat not found");
            }
            let reply_to = param(&request, "reply_to_message_id")
                .as_ref()
                .and_then(int);
            state.next_message_id += 1;
            let sent = SentMessage {
                bot_id: bot.id.clone(),
                chat_id: chat_id.clone(),
                message_id: state.next_message_id,
                text: text.clone(),
                reply_to_message_id: reply_to,
            };
            state.sent.push(sent.clone());
            ok(json!({
                "message_id": sent.message_id,
                "from": { "id": number(&bot.id), "is_bot": true, "first_name": bot.username, "username": bot.username },
                "chat": { "id": number(&chat_id), "type": "private" },
                "date": now_secs(),
                "text": text,
            }))
        }
        "getMe" => ok(json!({
            "id": number(&bot.id), "is_bot": true, "first_name": bot.username, "username": bot.username,
        })),
        _ => error(404, "Not Found"),
    }
}
