//! Page-feed changes (`entry[].changes`, field `feed`) as comment messages.
//!
//! Only a comment being added (`item: comment`, `verb: add`) is a customer speaking; posts,
//! reactions, edits and removals are ignored. A comment may have no text (a photo or a
//! sticker alone): it is still a message, with empty text and the photo as attachment.
//! Comments written by a configured page (the company's own replies) are dropped.

use centralino_sdk::{Attachment, Message, MessageKind, Person, warn};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Settings;
use crate::thread::Thread;
use crate::webhook::{Collected, GraphId, epoch_ms};

/// One change of an entry.
#[derive(Deserialize)]
pub struct Change {
    field: String,
    /// Its shape depends on `field`; only `feed` values are read.
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct FeedValue {
    item: Option<String>,
    verb: Option<String>,
    comment_id: Option<GraphId>,
    post_id: Option<GraphId>,
    parent_id: Option<GraphId>,
    from: Option<Author>,
    message: Option<String>,
    /// Seconds since the epoch (a number, sometimes a string of digits).
    created_time: Option<Value>,
    photo: Option<String>,
    video: Option<String>,
}

#[derive(Deserialize)]
struct Author {
    id: Option<GraphId>,
    name: Option<String>,
}

/// Adds the comment a change announces, if it is one, to `out`; `Err` when malformed.
pub fn collect(
    settings: &Settings,
    page_id: &str,
    change: Change,
    batch_time: u64,
    out: &mut Collected,
) -> Result<(), String> {
    if change.field != "feed" {
        return Ok(());
    }
    let value: FeedValue =
        serde_json::from_value(change.value).map_err(|e| format!("a feed change: {e}"))?;
    if value.item.as_deref() != Some("comment") || value.verb.as_deref() != Some("add") {
        return Ok(());
    }
    let Some(page) = settings.page(page_id) else {
        return Ok(());
    };
    let comment_id = value.comment_id.ok_or("a comment without comment_id")?.0;
    // Graph leaves `from` out when the app may not see the commenter; such a comment
    // cannot be attributed to a customer.
    let Some((author_id, author_name)) = value.from.and_then(|from| Some((from.id?.0, from.name)))
    else {
        warn!("comment {comment_id} names no author; skipped");
        return Ok(());
    };
    if settings.page(&author_id).is_some() {
        return Ok(());
    }
    let post_id = value.post_id.map(|id| id.0);
    let parent_id = value.parent_id.map(|id| id.0);
    // A top-level comment's parent is the post; a reply's parent is the comment it
    // answers, which starts the thread.
    let root = match &parent_id {
        Some(parent) if Some(parent) != post_id.as_ref() => parent.clone(),
        _ => comment_id.clone(),
    };
    let created_at = value
        .created_time
        .as_ref()
        .and_then(|time| time.as_u64().or_else(|| time.as_str()?.parse().ok()))
        .map_or(batch_time, epoch_ms);
    let attachments = [("image", value.photo), ("video", value.video)]
        .into_iter()
        .filter_map(|(kind, url)| {
            Some(Attachment {
                kind: kind.to_string(),
                url: Some(url?),
                mime_type: None,
                description: None,
            })
        })
        .collect();
    let mut extra = Vec::new();
    extra.extend(post_id.clone().map(|id| ("post_id".to_string(), id)));
    out.message(Message {
        conversation_key: Thread::Comments {
            page: &page.id,
            root: &root,
        }
        .key(),
        external_id: comment_id,
        account: page.id.clone(),
        author: Person {
            id: author_id,
            handle: None,
            display_name: author_name,
        },
        text: value.message.unwrap_or_default(),
        kind: MessageKind::Comment,
        in_reply_to: parent_id.or(post_id),
        attachments,
        created_at,
        extra,
    });
    Ok(())
}
