//! Telegram updates as the contract's messages, the same for polling and webhooks.

use centralino_sdk::prelude::*;
use centralino_sdk::time::seconds_to_ms;
use serde::Deserialize;

/// One update, with only the fields the connector reads.
#[derive(Deserialize)]
pub struct Update {
    /// Increasing id; the next poll's offset is the last one plus one.
    pub update_id: i64,
    /// A new message (edits, channel posts and callbacks are other fields, ignored).
    message: Option<TgMessage>,
}

#[derive(Deserialize)]
struct TgMessage {
    message_id: i64,
    from: Option<User>,
    chat: Chat,
    /// Seconds since the epoch.
    date: u64,
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

/// The customer message an update carries for `bot`, if it carries one.
pub fn message(bot: &Account, update: Update) -> Option<Message> {
    let message = update.message?;
    let author = message.from.as_ref()?;
    // Bots (the company's own among them) never write customer messages.
    if author.is_bot {
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
        return None;
    }
    Some(Message {
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
