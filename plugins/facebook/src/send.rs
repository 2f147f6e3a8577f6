//! Replies through the Graph API, and Graph's errors in the contract's words.
//!
//! | outbound kind | thread | request |
//! | --- | --- | --- |
//! | private message | Messenger | `POST /me/messages`, `recipient.id` = PSID, `messaging_type: RESPONSE`; refused for the 24-hour window and `human_agent = true`: again as `MESSAGE_TAG` with `tag: HUMAN_AGENT` |
//! | private message | comments | `POST /me/messages`, `recipient.comment_id`: a private reply, which opens a Messenger thread with the commenter |
//! | comment (or public reply) | comments | `POST /{comment id}/comments` with `message` |
//!
//! A reply's images (Messenger only) go first, one message each: uploaded through the
//! Attachment Upload API (`POST /me/message_attachments`, multipart `message` with the
//! attachment's `type` and `filedata`), then sent by the Send API as
//! `message.attachment.payload.attachment_id` (a Send API message carries text or an
//! attachment, never both); the text follows, and its id is the reply's.
//!
//! Every request names the page's credential; the host attaches it as `access_token`.

use centralino_sdk::http::{Api, DEFAULT_RETRY_AFTER_MS, FormPart, Response};
use centralino_sdk::prelude::*;
use centralino_sdk::text::ensure_fits;
use centralino_sdk::{MediaKind, OutboundAttachment};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::thread::{Thread, is_graph_id, is_psid};

/// Longest Messenger text message.
pub const MESSENGER_MAX_CHARS: u32 = 2000;

/// How a reply refused for Messenger's 24-hour window begins.
const OUTSIDE_WINDOW: &str = "outside the 24-hour messaging window";

/// Longest comment Facebook accepts.
const COMMENT_MAX_CHARS: u32 = 8000;

/// Sends a reply from the page `message.account`.
pub fn send(settings: &Settings, message: &OutboundMessage) -> Result<Sent> {
    let page = settings.pages.require(&message.account)?;
    let text = message.text_beside_files()?;
    let thread = Thread::parse(&message.conversation_key);
    let (path, body, limit) = match (message.kind, thread) {
        (MessageKind::PrivateMessage, Some(Thread::Comments { root, .. })) => {
            let comment = comment_to_answer(message, root)?;
            let body = json!({
                "recipient": { "comment_id": comment },
                "messaging_type": "RESPONSE",
                "message": { "text": text },
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
                    PluginError::invalid_input(
                        "a Messenger reply needs the customer's page-scoped id (recipient)",
                    )
                })?;
            let body = json!({
                "recipient": { "id": psid },
                "messaging_type": "RESPONSE",
                "message": { "text": text },
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
                        PluginError::invalid_input(
                            "a comment reply needs the comment it answers (in-reply-to)",
                        )
                    })?,
            };
            let body = json!({ "message": text });
            (format!("{comment}/comments"), body, COMMENT_MAX_CHARS)
        }
    };
    ensure_fits(text, limit, "Facebook")?;
    let graph = Api::new(
        "Facebook",
        format!("{}/{}", settings.graph_base, settings.api_version),
    )
    .credential(page.credential()?)
    .errors(graph_error);
    if !message.attachments.is_empty() {
        if !body["recipient"]["id"].is_string() {
            return Err(PluginError::rejected(
                "the facebook connector sends images in Messenger threads only, not under comments",
            ));
        }
        for attachment in &message.attachments {
            let id = upload(&graph, attachment)?;
            let mut image = body.clone();
            image["message"] = json!({
                "attachment": { "type": "image", "payload": { "attachment_id": id } }
            });
            send_message(&graph, settings, &path, &image)?;
        }
    }
    let response = send_message(&graph, settings, &path, &body)?;
    // Facebook acted on the request: a missing id must not make the host send it again.
    let external_id = sent_id(&response.body).ok_or_else(|| {
        PluginError::rejected(format!(
            "Facebook accepted the reply but its answer names no id: {}",
            response.summary()
        ))
    })?;
    Ok(Sent::now(external_id))
}

/// POSTs one Send API (or comment) request; past Messenger's 24 hours a person may still
/// answer for 7 days with the HUMAN_AGENT tag, when the admin enabled it (the host refuses
/// later replies before any call).
fn send_message(graph: &Api, settings: &Settings, path: &str, body: &Value) -> Result<Response> {
    match graph.post(&format!("/{path}")).json_body(body).send() {
        Err(PluginError::Rejected(reason))
            if settings.human_agent
                && reason.starts_with(OUTSIDE_WINDOW)
                && body["recipient"]["id"].is_string() =>
        {
            let mut tagged = body.clone();
            tagged["messaging_type"] = "MESSAGE_TAG".into();
            tagged["tag"] = "HUMAN_AGENT".into();
            graph.post(&format!("/{path}")).json_body(&tagged).send()
        }
        other => other,
    }
}

/// Uploads an image through the Attachment Upload API; its `attachment_id`.
fn upload(graph: &Api, attachment: &OutboundAttachment) -> Result<String> {
    if attachment.kind != MediaKind::Image {
        return Err(PluginError::rejected(format!(
            "the facebook connector sends images only, not `{}` ({})",
            attachment.file_name, attachment.mime_type
        )));
    }
    let response = graph
        .post("/me/message_attachments")
        .multipart_body(&[
            FormPart::text(
                "message",
                r#"{"attachment":{"type":"image","payload":{"is_reusable":false}}}"#,
            ),
            FormPart::file(
                "filedata",
                &attachment.file_name,
                &attachment.mime_type,
                &attachment.data,
            ),
        ])
        .send()?;
    #[derive(Deserialize)]
    struct Uploaded {
        attachment_id: String,
    }
    let uploaded: Uploaded = response.json().map_err(|e| {
        PluginError::transient(format!(
            "Facebook answered the upload of `{}` with an unreadable body: {e}",
            attachment.file_name
        ))
    })?;
    Ok(uploaded.attachment_id)
}

/// The comment a reply in a comment thread answers: the one named by `in-reply-to`, or
/// the thread's top-level comment.
fn comment_to_answer<'m>(message: &'m OutboundMessage, root: &'m str) -> Result<&'m str> {
    match message.in_reply_to.as_deref() {
        None => Ok(root),
        Some(id) if is_graph_id(id) => Ok(id),
        Some(id) => Err(PluginError::invalid_input(format!(
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
fn graph_error(_platform: &str, response: &Response) -> PluginError {
    let error = serde_json::from_slice::<GraphErrorBody>(&response.body)
        .ok()
        .map(|body| body.error);
    let status = response.status;
    let Some(error) = error else {
        let detail = format!("Graph answered {status}");
        return match status {
            401 => PluginError::invalid_credentials(detail),
            429 => PluginError::rate_limited(DEFAULT_RETRY_AFTER_MS, detail),
            500..=599 => PluginError::transient(detail),
            _ => PluginError::rejected(detail),
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
        _ if outside_window => PluginError::rejected(format!("{OUTSIDE_WINDOW}: {message}")),
        Some(190 | 102) => {
            PluginError::invalid_credentials(format!("needs re-authorisation: {message}"))
        }
        Some(4 | 17 | 32 | 613 | 80_001..=80_014) => PluginError::rate_limited(
            usage_wait_ms(response).unwrap_or(DEFAULT_RETRY_AFTER_MS),
            message,
        ),
        Some(10) => PluginError::rejected(format!("not permitted: {message}")),
        Some(100 | 551) => PluginError::rejected(message),
        Some(200..=299) => PluginError::invalid_credentials(format!(
            "the page token lacks a permission, needs re-authorisation: {message}"
        )),
        _ if error.is_transient == Some(true) || matches!(error.code, Some(1 | 2)) => {
            PluginError::transient(message)
        }
        _ => match status {
            401 => PluginError::invalid_credentials(message),
            500..=599 => PluginError::transient(message),
            _ => PluginError::rejected(message),
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
