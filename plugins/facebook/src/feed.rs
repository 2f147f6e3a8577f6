//! Page changes (`entry[].changes`) as comment messages: field `feed` (comments under the
//! page's posts) and field `mention` (a customer names the page in a post or comment of
//! their own).
//!
//! In the feed, a comment being added (`item: comment`, `verb: add`) is a customer
//! speaking; one being edited (`verb: edited`) is an edit of the stored comment (its text
//! now, edited at the entry's time; the host stores it as a message when it never had the
//! original), and one being removed (`verb: remove`) a deletion of it. Posts, reactions,
//! and a comment hidden or unhidden by the page are ignored, said so by their verb. A
//! comment may have no text (a photo or a sticker alone): it is still a message, with
//! empty text and the photo as attachment. Comments written by a configured page (the
//! company's own replies) are dropped. The author is `from` (`id`, `name`), or, in the
//! older shape Graph still sends, `sender_id` / `sender_name`.
//!
//! A mention being added (`verb: add`) is a comment message too, marked `mention = true`
//! in `extra`, threaded under the mentioning comment, or the post when the mention is in a
//! post. A mention that names no author, or no post, cannot be answered: it is logged at
//! warn with its ids, never dropped silently.

use centralino_sdk::conventions;
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
    /// The author in the older shape (no `from`).
    sender_id: Option<GraphId>,
    sender_name: Option<String>,
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
    let mention = match change.field.as_str() {
        "feed" => false,
        "mention" => true,
        other => {
            conventions::ignored(
                other,
                page_id,
                "a page change this connector does not handle",
            );
            return Ok(());
        }
    };
    let value: FeedValue = serde_json::from_value(change.value)
        .map_err(|e| format!("a {} change: {e}", change.field))?;
    let event = value
        .comment_id
        .as_ref()
        .or(value.post_id.as_ref())
        .map_or_else(|| "-".to_string(), |id| id.0.clone());
    let action = match value.verb.as_deref() {
        Some("add") => Action::Add,
        Some("edited" | "edit") if !mention => Action::Edited,
        Some("remove") if !mention => Action::Removed,
        verb => {
            conventions::ignored(
                verb.map_or("other-verb", |v| conventions::reason_or(v, "other-verb")),
                &event,
                "a change that adds, edits or removes no customer comment",
            );
            return Ok(());
        }
    };
    let Some(page) = settings.page(page_id) else {
        conventions::ignored("other-page", &event, "a change of a page not served");
        return Ok(());
    };
    let post_id = value.post_id.clone().map(|id| id.0);
    let parent_id = value.parent_id.clone().map(|id| id.0);
    let comment_id = value.comment_id.clone().map(|id| id.0);
    // What is being said and where it threads: the comment (a reply's thread is the
    // comment it answers, a top-level comment's its own), or the post a mention is in.
    let (external_id, root) = if mention {
        match (value.item.as_deref(), comment_id, post_id.clone()) {
            (Some("comment"), Some(comment), _) => {
                let root = match &parent_id {
                    Some(parent) if Some(parent) != post_id.as_ref() => parent.clone(),
                    _ => comment.clone(),
                };
                (comment, root)
            }
            (_, None, Some(post)) => (post.clone(), post),
            (item, comment, post) => {
                warn!(
                    "page {page_id}: mention in {} (comment {}, post {}) names nothing to answer; skipped",
                    item.unwrap_or("an unnamed item"),
                    comment.as_deref().unwrap_or("none"),
                    post.as_deref().unwrap_or("none"),
                );
                return Ok(());
            }
        }
    } else {
        if value.item.as_deref() != Some("comment") {
            conventions::ignored(
                "not-a-comment",
                &event,
                "a feed change that is no comment (a post, a like, a share)",
            );
            return Ok(());
        }
        let comment = comment_id.ok_or("a comment without comment_id")?;
        let root = match &parent_id {
            Some(parent) if Some(parent) != post_id.as_ref() => parent.clone(),
            _ => comment.clone(),
        };
        (comment, root)
    };
    // Graph leaves the author out when the app may not see them; such a comment cannot be
    // attributed to a customer.
    let from = value.from.and_then(|from| Some((from.id?.0, from.name)));
    let sender = value.sender_id.map(|id| (id.0, value.sender_name));
    let author = from.or(sender);
    if action == Action::Removed {
        // Removed by its author or by the page: gone from Facebook either way, so gone from
        // the store (a comment of the page's own is no stored customer message: the host
        // finds nothing to empty). The entry's time: Graph gives the comment's creation
        // time, not its removal's.
        let author_id = author.map(|(id, _)| id).unwrap_or_default();
        out.message(conventions::deletion(
            &page.id,
            &external_id,
            &author_id,
            batch_time,
        ));
        return Ok(());
    }
    let Some((author_id, author_name)) = author else {
        warn!("page {page_id}: {external_id} names no author; skipped");
        return Ok(());
    };
    if settings.page(&author_id).is_some() {
        conventions::ignored("own-comment", &external_id, "written by a page served");
        return Ok(());
    }
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
    if mention {
        extra.push(("mention".to_string(), "true".to_string()));
    }
    // A mention in a post answers nothing; a comment answers its parent or the post.
    let in_reply_to = if external_id == root && post_id.as_ref() == Some(&external_id) {
        None
    } else {
        parent_id.or(post_id)
    };
    let message = Message {
        conversation_key: Thread::Comments {
            page: &page.id,
            root: &root,
        }
        .key(),
        external_id,
        account: page.id.clone(),
        author: Person {
            id: author_id,
            handle: None,
            display_name: author_name,
        },
        text: value.message.unwrap_or_default(),
        kind: MessageKind::Comment,
        in_reply_to,
        attachments,
        created_at,
        language: None,
        extra,
    };
    out.message(match action {
        // The entry's time: when Graph told of the edit.
        Action::Edited => conventions::edit(message, batch_time),
        _ => message,
    });
    Ok(())
}

/// What a feed change does to a comment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Add,
    Edited,
    Removed,
}
