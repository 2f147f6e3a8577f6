//! Replies through the Graph API, and Graph's errors in the contract's words.
//!
//! | outbound kind | thread | request |
//! | --- | --- | --- |
//! | private message | Messenger | `POST /me/messages`, `recipient.id` = PSID, `messaging_type: RESPONSE` |
//! | private message | comments | `POST /me/messages`, `recipient.comment_id`: a private reply, which opens a Messenger thread with the commenter |
//! | comment (or public reply) | comments | `POST /{comment id}/comments` with `message` |
//!
//! Every request names the page's credential; the host attaches it as `access_token`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::centralino::plugin::clock;
use crate::centralino::plugin::http::{self, HttpError, Method, Request, Response};
use crate::centralino::plugin::types::{MessageKind, OutboundMessage, PluginError, RateLimit};
use crate::config::Settings;
use crate::exports::centralino::plugin::connector::Sent;
use crate::thread::{Thread, is_graph_id, is_psid};

/// Longest Messenger text message.
pub const MESSENGER_MAX_CHARS: u32 = 2000;

/// Longest comment Facebook accepts.
const COMMENT_MAX_CHARS: u32 = 8000;

/// Timeout asked of the host for one exchange.
const TIMEOUT_MS: u32 = 10_000;

/// Wait suggested after a rate-limit error that says nothing about when it ends.
const DEFAULT_RETRY_AFTER_MS: u64 = 60_000;

/// Sends a reply from the page `message.account`.
pub fn send(settings: &Settings, message: &OutboundMessage) -> Result<Sent, PluginError> {
    let page = settings.require_page(&message.account)?;
    if !message.attachments.is_empty() {
        return Err(PluginError::Rejected(
            "the facebook connector does not send attachments".into(),
        ));
    }
    if message.text.trim().is_empty() {
        return Err(PluginError::InvalidInput("a reply needs text".into()));
    }
    let thread = Thread::parse(&message.conversation_key);
    let (path, body, limit) = match (message.kind, thread) {
        (MessageKind::PrivateMessage, Some(Thread::Comments { root, .. })) => {
            let comment = comment_to_answer(message, root)?;
            let body = json!({
                "recipient": { "comment_id": comment },
                "messaging_type": "RESPONSE",
                "message": { "text": message.text },
            });
            ("me/messages".to_string(), body, MESSENGER_MAX_CHARS)
        }
        (MessageKind::PrivateMessage, thread) => {
            let from_thread = match thread {
                Some(Thread::Messenger { psid, .. }) => Some(psid),
                _ => None,
            };
            let psid = message
                .recipient
                .as_deref()
                .or(from_thread)
                .filter(|psid| is_psid(psid))
                .ok_or_else(|| {
                    PluginError::InvalidInput(
                        "a Messenger reply needs the customer's page-scoped id (recipient)".into(),
                    )
                })?;
            let body = json!({
                "recipient": { "id": psid },
                "messaging_type": "RESPONSE",
                "message": { "text": message.text },
            });
            ("me/messages".to_string(), body, MESSENGER_MAX_CHARS)
        }
        // A comment reply is Facebook's public answer.
        (MessageKind::Comment | MessageKind::PublicPost, thread) => {
            let root = match thread {
                Some(Thread::Comments { root, .. }) => Some(root),
                _ => None,
            };
            let comment = match root {
                Some(root) => comment_to_answer(message, root)?,
                None => message
                    .in_reply_to
                    .as_deref()
                    .filter(|id| is_graph_id(id))
                    .ok_or_else(|| {
                        PluginError::InvalidInput(
                            "a comment reply needs the comment it answers (in-reply-to)".into(),
                        )
                    })?,
            };
            let body = json!({ "message": message.text });
            (format!("{comment}/comments"), body, COMMENT_MAX_CHARS)
        }
    };
    let length = message.text.chars().count();
    if length > limit as usize {
        return Err(PluginError::Rejected(format!(
            "text is {length} characters; Facebook accepts {limit} here"
        )));
    }
    let url = format!("{}/{}/{path}", settings.graph_base, settings.api_version);
    let response = post(&url, page.credential()?, &body)?;
    // Facebook acted on the request: a missing id must not make the host send it again.
    let external_id = sent_id(&response.body).ok_or_else(|| {
        PluginError::Rejected(format!(
            "Facebook accepted the reply but its answer names no id: {}",
            String::from_utf8_lossy(&response.body)
        ))
    })?;
    Ok(Sent {
        external_id,
        sent_at: clock::now_ms(),
    })
}

/// The comment a reply in a comment thread answers: the one named by `in-reply-to`, or
/// the thread's top-level comment.
fn comment_to_answer<'m>(
    message: &'m OutboundMessage,
    root: &'m str,
) -> Result<&'m str, PluginError> {
    match message.in_reply_to.as_deref() {
        None => Ok(root),
        Some(id) if is_graph_id(id) => Ok(id),
        Some(id) => Err(PluginError::InvalidInput(format!(
            "`{id}` is not a Facebook comment id"
        ))),
    }
}

/// `message_id` of a Send API answer, `id` of a new comment.
fn sent_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Created {
        message_id: Option<String>,
        id: Option<String>,
    }
    let created: Created = serde_json::from_slice(body).ok()?;
    created.message_id.or(created.id)
}

/// One POST; anything but a 2xx becomes the matching `plugin-error`.
fn post(url: &str, credential: &str, body: &Value) -> Result<Response, PluginError> {
    let request = Request {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: Some(body.to_string().into_bytes()),
        credential: Some(credential.to_string()),
        timeout_ms: Some(TIMEOUT_MS),
    };
    let response = http::fetch(&request).map_err(transport_error)?;
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(graph_error(&response))
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    is_transient: Option<bool>,
}

/// What Graph's error means for the host. Graph says it in `error.code` (and sometimes
/// `error_subcode`); the HTTP status only decides when the body has no code.
fn graph_error(response: &Response) -> PluginError {
    let error = serde_json::from_slice::<GraphErrorBody>(&response.body)
        .ok()
        .map(|body| body.error);
    let status = response.status;
    let Some(error) = error else {
        let detail = format!("Graph answered {status}");
        return match status {
            401 => PluginError::InvalidCredentials(detail),
            429 => PluginError::RateLimited(RateLimit {
                retry_after_ms: DEFAULT_RETRY_AFTER_MS,
                detail,
            }),
            500..=599 => PluginError::Transient(detail),
            _ => PluginError::Rejected(detail),
        };
    };
    let message = error
        .message
        .unwrap_or_else(|| format!("Graph answered {status}"));
    // Code 10 with subcode 2018278 (2018065 before it): the customer last wrote more than
    // 24 hours ago. Some answers carry only the code and say so in the message.
    let outside_window = matches!(error.error_subcode, Some(2_018_278 | 2_018_065))
        || error.code == Some(2_018_278)
        || (error.code == Some(10) && message.contains("outside of allowed window"));
    match error.code {
        _ if outside_window => {
            PluginError::Rejected(format!("outside the 24-hour messaging window: {message}"))
        }
        Some(190 | 102) => {
            PluginError::InvalidCredentials(format!("needs re-authorisation: {message}"))
        }
        Some(4 | 17 | 32 | 613 | 80_001..=80_014) => PluginError::RateLimited(RateLimit {
            retry_after_ms: usage_wait_ms(response).unwrap_or(DEFAULT_RETRY_AFTER_MS),
            detail: message,
        }),
        Some(10) => PluginError::Rejected(format!("not permitted: {message}")),
        Some(100 | 551) => PluginError::Rejected(message),
        Some(200..=299) => PluginError::InvalidCredentials(format!(
            "the page token lacks a permission, needs re-authorisation: {message}"
        )),
        _ if error.is_transient == Some(true) || matches!(error.code, Some(1 | 2)) => {
            PluginError::Transient(message)
        }
        _ => match status {
            401 => PluginError::InvalidCredentials(message),
            500..=599 => PluginError::Transient(message),
            _ => PluginError::Rejected(message),
        },
    }
}

/// How long Graph says to wait: the largest `estimated_time_to_regain_access` (minutes) in
/// `x-business-use-case-usage`, which maps ids to lists of usage records.
fn usage_wait_ms(response: &Response) -> Option<u64> {
    let (_, header) = response
        .headers
        .iter()
        .find(|(name, _)| name == "x-business-use-case-usage")?;
    let usage: Value = serde_json::from_str(header).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|record| record.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    (minutes > 0).then(|| minutes.saturating_mul(60_000))
}

/// Why the host could not complete an exchange.
fn transport_error(error: HttpError) -> PluginError {
    match error {
        // The allow-list or the credential grant is the admin's configuration.
        HttpError::Denied(detail) | HttpError::InvalidRequest(detail) => {
            PluginError::InvalidInput(format!("the host refused the request: {detail}"))
        }
        HttpError::Timeout => PluginError::Transient("Facebook did not answer in time".into()),
        HttpError::Connection(detail) => {
            PluginError::Transient(format!("could not reach Facebook: {detail}"))
        }
        HttpError::TooLarge(limit) => PluginError::Transient(format!(
            "Facebook's answer is larger than the host's limit of {limit} bytes"
        )),
        HttpError::RateLimited(retry_after_ms) => PluginError::RateLimited(RateLimit {
            retry_after_ms,
            detail: "the host is holding requests until Graph's usage window recovers".into(),
        }),
    }
}
