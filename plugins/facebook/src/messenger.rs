//! Messenger events (`entry[].messaging` and `entry[].standby`) as messages and receipts.
//!
//! An event is from a customer (`sender`, a page-scoped id) to a page (`recipient`). It
//! carries one of:
//! - a `message` (text, attachments, a quick reply's payload; one with neither text nor
//!   attachments, such as a kind Messenger calls unsupported, is still a message, with
//!   empty text);
//! - a `postback` (a button press: its title is what the customer "said", or its payload
//!   when it has no title, or `(postback)` when it has neither; the payload also goes to
//!   `extra`);
//! - a `referral` (the customer came through an ad or an `m.me` link);
//! - a `delivery` / `read` report about the page's own messages (receipts);
//! - an unsent message (a `message` with `is_deleted`): a deletion of the stored copy;
//! - an edit (`message_edit`: the message `mid` names now reads `text`): an edit of the
//!   stored copy, which the host stores as a message when it never had the original.
//!
//! Echoes (`is_echo`) are copies of what the page sent, by us or another app, and are
//! never customer messages. Anything else (opt-ins, reactions, new kinds) is ignored, so
//! Meta adding an event kind cannot break a delivery.

use centralino_sdk::conventions;
use centralino_sdk::prelude::*;
use centralino_sdk::warn;
use serde::Deserialize;
use serde_json::Value;

use crate::config::Settings;
use crate::thread::{Thread, is_psid};
use crate::webhook::{Collected, GraphId, epoch_ms};

/// One messaging event, with only the fields the connector uses.
#[derive(Deserialize)]
pub struct Event {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<u64>,
    message: Option<EventMessage>,
    postback: Option<Postback>,
    referral: Option<Referral>,
    delivery: Option<DeliveryReport>,
    read: Option<ReadReport>,
    message_edit: Option<MessageEdit>,
}

/// The customer edited the message `mid` names (the `message_edits` webhook field).
#[derive(Deserialize)]
struct MessageEdit {
    mid: Option<String>,
    /// The message's text after the edit.
    text: Option<String>,
    /// How many times it was edited; an integer, though Meta's reference shows a string.
    num_edit: Option<Value>,
}

#[derive(Deserialize)]
struct Party {
    id: Option<GraphId>,
    /// A Checkbox or Chat Plugin guest, who has no page-scoped id.
    user_ref: Option<String>,
}

#[derive(Deserialize)]
struct EventMessage {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    /// The customer unsent the message `mid` names (Meta's `message` event with
    /// `is_deleted: true`).
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    attachments: Vec<RawAttachment>,
    quick_reply: Option<QuickReply>,
    reply_to: Option<ReplyTo>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: String,
    /// Its shape depends on the kind (`url`, `coordinates`, `sticker_id`, `title`...);
    /// `null` for a `fallback`.
    #[serde(default)]
    payload: Value,
    /// A `fallback` attachment (a shared link) carries its title and address here rather
    /// than under `payload`.
    title: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct ReplyTo {
    mid: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    title: Option<String>,
    payload: Option<String>,
    mid: Option<String>,
    referral: Option<Referral>,
}

#[derive(Deserialize)]
struct Referral {
    #[serde(rename = "ref")]
    reference: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    ad_id: Option<GraphId>,
}

#[derive(Deserialize)]
struct DeliveryReport {
    #[serde(default)]
    mids: Vec<String>,
    watermark: Option<u64>,
}

#[derive(Deserialize)]
struct ReadReport {
    watermark: Option<u64>,
}

/// Adds what one event means to `out`; `Err` when the event is malformed.
///
/// `entry_page` is the entry's page id, used when the event names no recipient.
pub fn collect(
    settings: &Settings,
    entry_page: Option<&str>,
    event: Event,
    standby: bool,
    batch_time: u64,
    out: &mut Collected,
) -> Result<(), String> {
    if event
        .message
        .as_ref()
        .is_some_and(|message| message.is_echo)
    {
        let mid = event.message.and_then(|m| m.mid).unwrap_or_default();
        conventions::ignored("echo", &mid, "a copy of what the page sent");
        return Ok(());
    }
    let page_id = event
        .recipient
        .and_then(|party| party.id)
        .map(|id| id.0)
        .or(entry_page.map(str::to_string));
    // Another page of the same app: not ours to answer.
    let Some(page) = page_id.as_deref().and_then(|id| settings.page(id)) else {
        conventions::ignored(
            "other-page",
            page_id.as_deref().unwrap_or("-"),
            "a messaging event for a page this connector does not serve",
        );
        return Ok(());
    };
    let says_something = event.message.is_some()
        || event.postback.is_some()
        || event.referral.is_some()
        || event.message_edit.is_some();
    let Some(psid) = event.sender.as_ref().and_then(|party| party.id.clone()) else {
        if !says_something {
            conventions::ignored(
                "unsupported-messaging-event",
                &page.id,
                "a messaging event naming no sender and saying nothing",
            );
            return Ok(());
        }
        // A plugin guest without a page-scoped id (`user_ref` only) cannot be answered
        // through the page; anything else naming no sender is malformed.
        return match event.sender.and_then(|party| party.user_ref) {
            Some(user_ref) => {
                warn!(
                    "page {}: an event from plugin guest {user_ref}, who has no page-scoped id, cannot be answered; skipped",
                    page.id
                );
                Ok(())
            }
            None => Err("an event from a customer names no sender id".to_string()),
        };
    };
    let psid = psid.0;
    if settings.page(&psid).is_some() {
        conventions::ignored("own-message", &psid, "sent by one of the pages served");
        return Ok(());
    }
    if !is_psid(&psid) {
        return Err(format!("sender id `{psid}` is not a Facebook id"));
    }
    let at = event.timestamp.map_or(batch_time, epoch_ms);
    let thread = Thread::Messenger {
        page: &page.id,
        psid: &psid,
    }
    .key();

    if let Some(report) = event.delivery {
        let at = report.watermark.map_or(at, epoch_ms);
        // Messenger may name the messages delivered; otherwise the watermark covers every
        // message of the thread sent before it, and the receipt names the thread.
        let covered = if report.mids.is_empty() {
            vec![thread]
        } else {
            report.mids
        };
        for external_id in covered {
            out.receipt(receipt(&page.id, external_id, DeliveryState::Delivered, at));
        }
        return Ok(());
    }
    if let Some(report) = event.read {
        let at = report.watermark.map_or(at, epoch_ms);
        out.receipt(receipt(&page.id, thread, DeliveryState::Read, at));
        return Ok(());
    }

    if let Some(message) = event.message.as_ref().filter(|m| m.is_deleted) {
        let mid = message.mid.clone().ok_or("an unsent message without mid")?;
        out.message(conventions::deletion(&page.id, &mid, &psid, at));
        return Ok(());
    }

    let mut extra = Vec::new();
    if standby {
        // Another app (a bot, the Page Inbox) holds the thread; the host may want to know.
        extra.push(("standby".to_string(), "true".to_string()));
    }
    // When the event is the customer editing a message: the edit's time.
    let mut edited_at = None;
    let (external_id, text, attachments, in_reply_to) = if let Some(edit) = event.message_edit {
        let mid = edit.mid.ok_or("a message edit without mid")?;
        extra.extend(
            edit.num_edit
                .as_ref()
                .and_then(edit_count)
                .map(|count| ("num_edit".to_string(), count.to_string())),
        );
        // Meta gives only the edit's time; it stands for the message's as well when the
        // host never stored the original.
        edited_at = Some(at);
        (mid, edit.text.unwrap_or_default(), Vec::new(), None)
    } else if let Some(message) = event.message {
        let mid = message.mid.ok_or("a message without mid")?;
        extra.extend(
            message
                .quick_reply
                .and_then(|reply| reply.payload)
                .map(|payload| ("quick_reply_payload".to_string(), payload)),
        );
        let attachments: Vec<Attachment> =
            message.attachments.into_iter().map(attachment).collect();
        let text = message.text.unwrap_or_default();
        (mid, text, attachments, message.reply_to.and_then(|r| r.mid))
    } else if let Some(postback) = event.postback {
        // The button's title is what the customer saw and pressed; without it, the payload
        // is the only word of it there is.
        let text = postback
            .title
            .filter(|title| !title.trim().is_empty())
            .or_else(|| postback.payload.clone().filter(|p| !p.trim().is_empty()))
            .unwrap_or_else(|| "(postback)".to_string());
        extra.extend(
            postback
                .payload
                .map(|payload| ("postback_payload".to_string(), payload)),
        );
        extra.extend(postback.referral.map(referral_extra).unwrap_or_default());
        // Older postbacks carry no mid; sender and time identify a button press.
        let id = postback
            .mid
            .unwrap_or_else(|| format!("postback:{psid}:{at}"));
        (id, text, Vec::new(), None)
    } else if let Some(referral) = event.referral {
        extra.extend(referral_extra(referral));
        (
            format!("referral:{psid}:{at}"),
            String::new(),
            Vec::new(),
            None,
        )
    } else {
        // Opt-ins, reactions, handovers, kinds Meta adds later.
        conventions::ignored(
            "unsupported-messaging-event",
            &format!("{psid}:{at}"),
            "a messaging event that is no message, postback, referral or receipt",
        );
        return Ok(());
    };

    let message = Message {
        external_id,
        account: page.id.clone(),
        conversation_key: thread,
        author: Person {
            id: psid,
            handle: None,
            display_name: None,
        },
        text,
        kind: MessageKind::PrivateMessage,
        in_reply_to,
        attachments,
        created_at: at,
        language: None,
        extra,
    };
    out.message(match edited_at {
        Some(at) => conventions::edit(message, at),
        None => message,
    });
    Ok(())
}

/// `num_edit` as a number, whether Meta wrote it as one or as a string of digits.
fn edit_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn receipt(page: &str, external_id: String, state: DeliveryState, at: u64) -> Receipt {
    Receipt {
        account: page.to_string(),
        external_id,
        state,
        at,
    }
}

/// Where the customer came from (`referral_ref`, `referral_source`, ...).
fn referral_extra(referral: Referral) -> Vec<(String, String)> {
    [
        ("referral_ref", referral.reference),
        ("referral_source", referral.source),
        ("referral_type", referral.kind),
        ("referral_ad_id", referral.ad_id.map(|id| id.0)),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name.to_string(), value?)))
    .collect()
}

/// An attachment in the contract's words: a sticker is an image with a `sticker_id`, a
/// location's coordinates become its description, and kinds the contract has no word for
/// (`fallback`, `template`, `ig_reel`...) keep Meta's.
fn attachment(raw: RawAttachment) -> Attachment {
    let text = |key: &str| {
        raw.payload
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let url = text("url").or(raw.url.clone());
    // A number in Meta's payloads; a string would do as well.
    let sticker = raw.payload.get("sticker_id").map(|id| match id {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    });
    match (raw.kind.as_str(), sticker) {
        ("location", _) => {
            let coordinates = raw.payload.get("coordinates");
            let axis = |key: &str| coordinates.and_then(|c| c.get(key)).and_then(Value::as_f64);
            let description = match (axis("lat"), axis("long")) {
                (Some(lat), Some(long)) => Some(format!("{lat},{long}")),
                _ => text("title"),
            };
            Attachment {
                kind: "location".to_string(),
                url,
                mime_type: None,
                description,
            }
        }
        ("image", Some(sticker)) => Attachment {
            kind: "sticker".to_string(),
            url,
            mime_type: None,
            description: Some(format!("sticker {sticker}")),
        },
        (kind, _) => Attachment {
            kind: kind.to_string(),
            url,
            mime_type: None,
            description: text("title").or(raw.title.clone()),
        },
    }
}
