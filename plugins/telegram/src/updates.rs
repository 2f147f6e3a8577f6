//! Telegram updates as the contract's messages, the same for polling and webhooks.
//!
//! A `message` is a customer's message; an `edited_message` is the same message as it
//! reads after the customer edited it (`edit_date`), which the host applies to its stored
//! copy (an edit, see the SDK's conventions). Every other kind of update (channel posts,
//! callback queries, reactions, kinds Telegram adds later) is ignored on purpose and said
//! so, as are messages from bots and service messages with nothing to read.

use std::collections::BTreeMap;

use centralino_sdk::conventions;
use centralino_sdk::prelude::*;
use centralino_sdk::time::seconds_to_ms;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// One update, with only the fields the connector reads.
#[derive(Deserialize)]
pub struct Update {
    /// Increasing id; the next poll's offset is the last one plus one.
    pub update_id: i64,
    /// A new message.
    message: Option<TgMessage>,
    /// A message the customer edited, as it reads now.
    edited_message: Option<TgMessage>,
    /// The kind of an update the connector does not handle (its other field), read in a
    /// pass of its own, and only for an update that carries no message ([`Update::read`]):
    /// `serde(flatten)` would buffer every field of every update, the message included,
    /// to find it.
    #[serde(skip)]
    other: Option<String>,
}

impl Update {
    /// Reads an update from its JSON (a webhook's body); `Err` says why it is none.
    pub fn read(json: &[u8]) -> serde_json::Result<Update> {
        let mut update: Update = serde_json::from_slice(json)?;
        if update.carries_nothing() {
            let fields: BTreeMap<String, IgnoredAny> = serde_json::from_slice(json)?;
            update.other = other_kind(fields.keys());
        }
        Ok(update)
    }

    /// Reads an update from a parsed value (one of a poll's page).
    pub fn from_value(value: &serde_json::Value) -> serde_json::Result<Update> {
        let mut update = Update::deserialize(value)?;
        if update.carries_nothing() {
            update.other = value
                .as_object()
                .and_then(|fields| other_kind(fields.keys()));
        }
        Ok(update)
    }

    /// Neither a message nor an edit: the only update whose other kind is reported.
    fn carries_nothing(&self) -> bool {
        self.message.is_none() && self.edited_message.is_none()
    }
}

/// The first field (by name) that is none of those the connector reads.
fn other_kind<'a>(mut fields: impl Iterator<Item = &'a String>) -> Option<String> {
    fields
        .find(|field| !matches!(field.as_str(), "update_id" | "message" | "edited_message"))
        .cloned()
}

#[derive(Deserialize)]
struct TgMessage {
    message_id: i64,
    from: Option<User>,
    chat: Chat,
    /// Seconds since the epoch.
    date: u64,
    /// When it was last edited (seconds since the epoch), on an `edited_message`.
    edit_date: Option<u64>,
    text: Option<String>,
    caption: Option<String>,
    reply_to_message: Option<Box<TgMessage>>,
    #[serde(default)]
    photo: Vec<FileRef>,
    document: Option<Document>,
    video: Option<FileRef>,
    voice: Option<FileRef>,
    audio: Option<Document>,
    sticker: Option<Sticker>,
    location: Option<Location>,
    contact: Option<Contact>,
}

/// A shared contact; `user_id` is the Telegram user it belongs to, when they have one.
#[derive(Deserialize)]
struct Contact {
    phone_number: String,
    user_id: Option<i64>,
}

#[derive(Deserialize)]
struct User {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct FileRef {
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    file_name: Option<String>,
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct Sticker {
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

/// The customer message (or edit) an update carries for `bot`, if it carries one; says
/// why when it carries none.
pub fn message(bot: &Account, update: Update) -> Option<Message> {
    let event = update.update_id.to_string();
    let (message, edited) = match (update.message, update.edited_message) {
        (Some(message), _) => (message, false),
        (None, Some(message)) => (message, true),
        (None, None) => {
            let kind = update.other.as_deref().unwrap_or("empty");
            conventions::ignored(
                conventions::reason_or(kind, "unsupported-update"),
                &event,
                "an update that is no message nor an edit of one",
            );
            return None;
        }
    };
    let Some(author) = message.from.as_ref() else {
        conventions::ignored("no-author", &event, "a message naming no sender");
        return None;
    };
    // Bots (the company's own among them) never write customer messages.
    if author.is_bot {
        conventions::ignored("bot-message", &event, "written by a bot");
        return None;
    }
    let chat = message.chat.id;
    let kind = if message.chat.kind == "private" {
        MessageKind::PrivateMessage
    } else {
        MessageKind::PublicPost
    };
    let display_name = match (&author.first_name, &author.last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (first, last) => first.clone().or(last.clone()),
    };
    let attachments = attachments(&message);
    let text = message
        .text
        .clone()
        .or(message.caption.clone())
        .unwrap_or_default();
    if text.is_empty() && attachments.is_empty() {
        conventions::ignored(
            "service-message",
            &event,
            "a message with no text nor attachment (a member joined, a title changed...)",
        );
        return None;
    }
    let edited_at = edited.then(|| seconds_to_ms(message.edit_date.unwrap_or(message.date)));
    let message = Message {
        external_id: format!("{chat}:{}", message.message_id),
        account: bot.id.clone(),
        conversation_key: format!("tg:{}:{chat}", bot.id),
        author: Person {
            id: author.id.to_string(),
            handle: author.username.clone(),
            display_name,
        },
        text,
        kind,
        in_reply_to: message
            .reply_to_message
            .as_ref()
            .map(|answered| format!("{chat}:{}", answered.message_id)),
        attachments,
        created_at: seconds_to_ms(message.date),
        language: None,
        extra: {
            let mut extra = vec![("update_id".to_string(), update.update_id.to_string())];
            // The customer shared their own contact: the phone number Telegram holds for
            // them, which the host may match (`centralino:phone`, see the host's
            // conventions). Someone else's contact is only an attachment.
            if let Some(contact) = &message.contact
                && contact.user_id == Some(author.id)
            {
                extra.push(("centralino:phone".to_string(), contact.phone_number.clone()));
            }
            extra
        },
    };
    Some(match edited_at {
        Some(at) => conventions::edit(message, at),
        None => message,
    })
}

fn attachments(message: &TgMessage) -> Vec<Attachment> {
    let attachment =
        |kind: &str, mime_type: Option<&String>, description: Option<String>| Attachment {
            kind: kind.to_string(),
            url: None,
            mime_type: mime_type.cloned(),
            description,
        };
    let mut out = Vec::new();
    // Telegram sends each photo in several sizes: one picture.
    if let Some(photo) = message.photo.last() {
        out.push(attachment("image", photo.mime_type.as_ref(), None));
    }
    if let Some(video) = &message.video {
        out.push(attachment("video", video.mime_type.as_ref(), None));
    }
    if let Some(voice) = &message.voice {
        out.push(attachment("audio", voice.mime_type.as_ref(), None));
    }
    if let Some(audio) = &message.audio {
        out.push(attachment(
            "audio",
            audio.mime_type.as_ref(),
            audio.file_name.clone(),
        ));
    }
    if let Some(document) = &message.document {
        out.push(attachment(
            "file",
            document.mime_type.as_ref(),
            document.file_name.clone(),
        ));
    }
    if let Some(sticker) = &message.sticker {
        out.push(attachment("sticker", None, sticker.emoji.clone()));
    }
    if message.contact.is_some() {
        out.push(attachment("contact", None, None));
    }
    if let Some(location) = &message.location {
        let at = format!("{},{}", location.latitude, location.longitude);
        out.push(attachment("location", None, Some(at)));
    }
    out
}
