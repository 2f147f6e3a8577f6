//! Account Activity payloads (the v1.1 object shapes X delivers), only the fields the
//! connector reads.

use std::collections::HashMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
pub(super) struct Delivery {
    /// The subscribed account the delivery is for (absent in some event kinds).
    pub(super) for_user_id: Option<String>,
    pub(super) tweet_create_events: Option<Vec<Post>>,
    pub(super) direct_message_events: Option<Vec<DmEvent>>,
    pub(super) direct_message_mark_read_events: Option<Vec<MarkRead>>,
    pub(super) tweet_delete_events: Option<Vec<PostDeletion>>,
    /// Users named by the DM events, keyed by id.
    pub(super) users: Option<HashMap<String, DmUser>>,
    /// The delivery's top-level keys, read in a second pass (flattening would buffer the
    /// whole body recursively): event kinds this connector does not handle are counted as
    /// ignored.
    #[serde(skip)]
    pub(super) kinds: Vec<String>,
}

/// Top-level keys of a delivery that this connector reads.
pub(super) const HANDLED: &[&str] = &[
    "tweet_create_events",
    "direct_message_events",
    "direct_message_mark_read_events",
    "tweet_delete_events",
];

#[derive(Deserialize)]
pub(super) struct Post {
    /// Never the numeric `id`: it has lost precision by the time some payloads are written.
    pub(super) id_str: String,
    pub(super) text: Option<String>,
    pub(super) full_text: Option<String>,
    pub(super) extended_tweet: Option<ExtendedPost>,
    pub(super) user: Option<PostUser>,
    pub(super) created_at: Option<String>,
    pub(super) timestamp_ms: Option<String>,
    pub(super) in_reply_to_status_id_str: Option<String>,
    pub(super) in_reply_to_user_id_str: Option<String>,
    pub(super) conversation_id_str: Option<String>,
    /// Newer payloads may carry the thread root; only its string form is trusted.
    #[serde(default, deserialize_with = "string_only")]
    pub(super) conversation_id: Option<String>,
    pub(super) quoted_status_id_str: Option<String>,
    pub(super) retweeted_status: Option<IgnoredAny>,
    pub(super) entities: Option<Entities>,
    pub(super) extended_entities: Option<Entities>,
    /// The language X detected (BCP 47; `und` when it could not tell).
    pub(super) lang: Option<String>,
    /// The post's versions when it was edited (see [`original_of`]).
    pub(super) edit_history: Option<EditHistory>,
}

/// Account Activity's edit metadata of a post.
#[derive(Deserialize)]
pub(super) struct EditHistory {
    #[serde(default, deserialize_with = "string_only")]
    pub(super) initial_tweet_id: Option<String>,
    #[serde(default, deserialize_with = "strings_only")]
    pub(super) edit_tweet_ids: Option<Vec<String>>,
}

/// A post its author deleted (`tweet_delete_events`).
#[derive(Deserialize)]
pub(super) struct PostDeletion {
    pub(super) status: DeletedStatus,
    pub(super) timestamp_ms: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DeletedStatus {
    pub(super) id: String,
    pub(super) user_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ExtendedPost {
    pub(super) full_text: Option<String>,
    pub(super) entities: Option<Entities>,
    pub(super) extended_entities: Option<Entities>,
}

#[derive(Deserialize)]
pub(super) struct PostUser {
    pub(super) id_str: String,
    pub(super) screen_name: Option<String>,
    pub(super) name: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct Entities {
    #[serde(default)]
    pub(super) user_mentions: Vec<UserMention>,
    #[serde(default)]
    pub(super) media: Vec<Media>,
}

#[derive(Deserialize)]
pub(super) struct UserMention {
    pub(super) id_str: Option<String>,
    pub(super) screen_name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Media {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) media_url_https: Option<String>,
    pub(super) ext_alt_text: Option<String>,
    pub(super) video_info: Option<VideoInfo>,
}

#[derive(Deserialize)]
pub(super) struct VideoInfo {
    #[serde(default)]
    pub(super) variants: Vec<VideoVariant>,
}

#[derive(Deserialize)]
pub(super) struct VideoVariant {
    pub(super) content_type: Option<String>,
    pub(super) url: Option<String>,
    pub(super) bitrate: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct DmEvent {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) id: String,
    pub(super) created_timestamp: Option<String>,
    pub(super) message_create: Option<MessageCreate>,
}

#[derive(Deserialize)]
pub(super) struct MessageCreate {
    pub(super) target: Target,
    pub(super) sender_id: String,
    pub(super) message_data: MessageData,
}

#[derive(Deserialize)]
pub(super) struct Target {
    pub(super) recipient_id: String,
}

#[derive(Deserialize)]
pub(super) struct MessageData {
    #[serde(default)]
    pub(super) text: String,
    pub(super) attachment: Option<DmAttachment>,
    /// The option a customer picked from the company's quick replies; its label is `text`.
    pub(super) quick_reply_response: Option<QuickReplyResponse>,
}

#[derive(Deserialize)]
pub(super) struct QuickReplyResponse {
    pub(super) metadata: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DmAttachment {
    pub(super) media: Option<Media>,
}

#[derive(Deserialize)]
pub(super) struct DmUser {
    pub(super) screen_name: Option<String>,
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MarkRead {
    pub(super) created_timestamp: Option<String>,
    pub(super) sender_id: String,
    pub(super) target: Target,
    pub(super) last_read_event_id: String,
}

/// A string id; any other JSON value (a number that may have lost precision) is ignored.
pub(super) fn string_only<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(id) => Some(id),
        _ => None,
    })
}

/// A list of string ids; other values in it (numbers that may have lost precision) are
/// left out, and anything but a list is no list.
pub(super) fn strings_only<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(|item| match item {
                    serde_json::Value::String(id) => Some(id),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    })
}
