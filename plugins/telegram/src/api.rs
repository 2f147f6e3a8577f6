//! The Bot API through the host's `http` import: `getUpdates` and `sendMessage`, and
//! Telegram's errors in the contract's words.

use centralino_sdk::http::{Api, CREDENTIAL_PLACEHOLDER, DEFAULT_RETRY_AFTER_MS, Response};
use centralino_sdk::prelude::*;
use centralino_sdk::text::{ensure_fits, is_digits};
use centralino_sdk::warn;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Telegram;
use crate::updates::{self, Update};

/// Longest text `sendMessage` accepts.
pub const MAX_TEXT: u32 = 4096;

/// Updates asked for per poll (the Bot API's maximum).
const BATCH: u32 = 100;

/// The Bot API's envelope: `{"ok": true, "result": …}`.
#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

/// The Bot API for `bot`: `{api_base}/bot{credential}`, the host putting the token in.
fn bot_api(telegram: &Telegram, bot: &Account, long_poll_seconds: u32) -> Result<Api> {
    let base = format!("{}/bot{CREDENTIAL_PLACEHOLDER}", telegram.api_base);
    Ok(Api::new("Telegram", base)
        .credential(bot.credential()?)
        .timeout_ms((long_poll_seconds + 10) * 1000)
        .errors(telegram_error))
}

/// Fetches the updates after `cursor` (the next offset) and returns their messages.
pub fn poll(telegram: &Telegram, bot: &Account, cursor: Option<&str>) -> Result<PollResult> {
    let offset = match cursor {
        Some(offset) if offset.parse::<i64>().is_ok() => Some(offset),
        Some(other) => {
            return Err(PluginError::invalid_input(format!(
                "cursor `{other}` is not a Telegram update offset"
            )));
        }
        None => None,
    };
    let api = bot_api(telegram, bot, telegram.long_poll_seconds)?;
    let mut request = api
        .get("/getUpdates")
        .query("limit", BATCH.to_string())
        .query("timeout", telegram.long_poll_seconds.to_string());
    if let Some(offset) = offset {
        request = request.query("offset", offset);
    }
    let page: Envelope<Vec<Value>> = request.json()?;
    let mut last = None;
    let mut messages = Vec::new();
    for raw in page.result {
        // One unreadable update must not block the others behind it forever.
        match Update::from_value(&raw) {
            Ok(update) => {
                last = last.max(Some(update.update_id));
                messages.extend(updates::message(bot, update));
            }
            Err(e) => warn!("bot {}: skipped an unreadable update: {e}", bot.id),
        }
    }
    Ok(PollResult {
        messages,
        cursor: last.map(|id| (id + 1).to_string()),
        next_poll_after_ms: None,
    })
}

/// Sends a reply from `bot` into the chat of `message.conversation_key`.
pub fn send(telegram: &Telegram, bot: &Account, message: &OutboundMessage) -> Result<Sent> {
    let text = message.plain_text("telegram")?;
    let chat = message
        .recipient
        .as_deref()
        .or_else(|| chat_of(&message.conversation_key, &bot.id))
        .filter(|chat| is_chat_id(chat))
        .ok_or_else(|| {
            PluginError::invalid_input("a Telegram reply needs the chat (a `tg:` thread key)")
        })?;
    ensure_fits(text, MAX_TEXT, "Telegram")?;
    let mut body = json!({ "chat_id": chat, "text": text });
    // `in-reply-to` is `<chat id>:<message id>`, as the connector wrote it.
    let answered = message
        .in_reply_to
        .as_deref()
        .and_then(|id| id.strip_prefix(chat)?.strip_prefix(':'))
        .and_then(|id| id.parse::<i64>().ok());
    if let Some(answered) = answered {
        body["reply_to_message_id"] = json!(answered);
    }
    let api = bot_api(telegram, bot, 0)?;
    let sent: Envelope<SentMessage> = api.post("/sendMessage").json_body(&body).json()?;
    Ok(Sent::now(format!("{chat}:{}", sent.result.message_id)))
}

#[derive(Deserialize)]
struct SentMessage {
    message_id: i64,
}

/// The chat of a `tg:<bot>:<chat>` thread key, if it belongs to `bot`.
fn chat_of<'k>(key: &'k str, bot: &str) -> Option<&'k str> {
    key.strip_prefix("tg:")?
        .strip_prefix(bot)?
        .strip_prefix(':')
}

/// A chat id: digits, negative for groups.
fn is_chat_id(value: &str) -> bool {
    is_digits(value.strip_prefix('-').unwrap_or(value))
}

/// `{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": s}}`.
fn telegram_error(platform: &str, response: &Response) -> PluginError {
    #[derive(Deserialize)]
    struct Failure {
        description: Option<String>,
        parameters: Option<Parameters>,
    }
    #[derive(Deserialize)]
    struct Parameters {
        retry_after: Option<u64>,
    }
    let failure = response.json::<Failure>().ok();
    let detail = failure
        .as_ref()
        .and_then(|f| f.description.clone())
        .unwrap_or_else(|| response.summary());
    match response.status {
        // A wrong or revoked token is 401; a malformed one 404.
        401 | 404 => PluginError::invalid_credentials(detail),
        429 => {
            let retry_after = failure
                .and_then(|f| f.parameters?.retry_after)
                .map_or(DEFAULT_RETRY_AFTER_MS, |s| s.saturating_mul(1000));
            PluginError::rate_limited(retry_after, detail)
        }
        status @ 500..=599 => {
            PluginError::transient(format!("{platform} answered {status}: {detail}"))
        }
        // 400 (chat not found, too long), 403 (the customer blocked the bot), 409 (a
        // webhook is set, so getUpdates is refused): no retry helps.
        status => PluginError::rejected(format!("{platform} answered {status}: {detail}")),
    }
}
