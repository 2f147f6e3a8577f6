//! X API v2 through the host's `http` import: polling mentions and DMs (here), sending
//! replies ([`send`]), and turning X's answers into the contract's `plugin-error`
//! (`client`).
//!
//! Every request names the account's credential; the host attaches the bearer token. The
//! host also reads X's rate-limit headers and holds requests back while a window is spent;
//! the plugin still reports what X said (`429`, `x-rate-limit-reset`) so the host can tell
//! the CRM when the account can speak again.

use std::collections::HashMap;

use centralino_sdk::conventions;
use centralino_sdk::prelude::*;
use centralino_sdk::text::unescape_html;
use centralino_sdk::{cursor, time, warn};
use serde::{Deserialize, Serialize};

use crate::config::{Mention, Settings};
use crate::normalise::{
    as_edit, dm_thread_key, is_newer_id, media_attachment, original_of, parse_time,
    post_thread_key, snowflake_ms,
};

mod client;
mod send;

use client::XApi;
pub use send::send;

/// Longest post X accepts from a standard account (X weighs some characters double; the
/// platform has the last word and answers 400, which becomes `rejected`).
pub const POST_MAX_CHARS: u32 = 280;

/// Longest DM X accepts.
const DM_MAX_CHARS: u32 = 10_000;

/// Pages fetched per stream and poll. A backlog beyond this (500 items since the last poll)
/// is logged and skipped rather than holding the poll for minutes.
const MAX_PAGES: usize = 5;

const POST_FIELDS: &str = "author_id,conversation_id,created_at,in_reply_to_user_id,\
                           referenced_tweets,note_tweet,attachments,entities,lang";
const DM_FIELDS: &str = "id,text,event_type,created_at,sender_id,dm_conversation_id,attachments";
const USER_FIELDS: &str = "username,name";
const MEDIA_FIELDS: &str = "type,url,preview_image_url,alt_text,variants";

// ---- polling ----

/// Where polling stopped, per stream. Opaque to the host, which hands it back.
#[derive(Serialize, Deserialize, Default)]
struct Cursor {
    /// Newest mention seen (`since_id` of the next poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mentions: Option<String>,
    /// Newest DM event seen (the DM endpoint has no `since_id`; paging stops there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dms: Option<String>,
}

/// Fetches the mentions and DMs of `account` since `cursor`, oldest first.
///
/// The first poll (no cursor) fetches one page of each, the most recent, rather than
/// walking back through the account's history. If either stream fails, the poll fails and
/// the host keeps the old cursor, so nothing is skipped: the next poll fetches it again.
pub fn poll(settings: &Settings, account: &str, cursor: Option<&str>) -> Result<PollResult> {
    let account = settings.accounts.require(account)?;
    let mut cursor: Cursor = cursor::read(cursor)?;
    let mut api = XApi::new(settings, account.credential()?);

    let (mut messages, newest_mention) = poll_mentions(&mut api, settings, account, &cursor)?;
    let (dms, newest_dm) = poll_dms(&mut api, settings, account, &cursor)?;
    messages.extend(dms);
    messages.sort_by_key(|message| message.created_at);

    cursor.mentions = newest_mention.or(cursor.mentions);
    cursor.dms = newest_dm.or(cursor.dms);
    Ok(PollResult {
        messages,
        cursor: Some(cursor::write(&cursor)?),
        next_poll_after_ms: api.resume_at,
    })
}

/// One page of a v2 list endpoint.
#[derive(Deserialize)]
struct Page<T> {
    data: Option<Vec<T>>,
    includes: Option<Includes>,
    meta: Option<PageMeta>,
}

#[derive(Deserialize, Default)]
struct Includes {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    media: Vec<Media>,
}

#[derive(Deserialize)]
struct PageMeta {
    newest_id: Option<String>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    username: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    media_key: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    preview_image_url: Option<String>,
    alt_text: Option<String>,
    #[serde(default)]
    variants: Vec<MediaVariant>,
}

#[derive(Deserialize)]
struct MediaVariant {
    content_type: Option<String>,
    url: Option<String>,
    bit_rate: Option<u64>,
}

#[derive(Deserialize)]
struct Post {
    id: String,
    #[serde(default)]
    text: String,
    author_id: Option<String>,
    conversation_id: Option<String>,
    created_at: Option<String>,
    in_reply_to_user_id: Option<String>,
    #[serde(default)]
    referenced_tweets: Vec<Reference>,
    note_tweet: Option<NoteTweet>,
    attachments: Option<MediaKeys>,
    entities: Option<PostEntities>,
    /// The language X detected (BCP 47; `und` when it could not tell).
    lang: Option<String>,
    /// The post's versions, the original first (a default field: X always sends it).
    edit_history_tweet_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// The full text of a post longer than 280 characters.
#[derive(Deserialize)]
struct NoteTweet {
    text: String,
}

#[derive(Deserialize)]
struct MediaKeys {
    #[serde(default)]
    media_keys: Vec<String>,
}

#[derive(Deserialize)]
struct PostEntities {
    #[serde(default)]
    mentions: Vec<PostMention>,
}

#[derive(Deserialize)]
struct PostMention {
    id: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct DmEvent {
    id: String,
    event_type: Option<String>,
    text: Option<String>,
    sender_id: Option<String>,
    created_at: Option<String>,
    dm_conversation_id: Option<String>,
    attachments: Option<MediaKeys>,
}

/// Users and media of every page fetched, by id and media key.
#[derive(Default)]
struct Expansions {
    users: HashMap<String, User>,
    media: HashMap<String, Media>,
}

impl Expansions {
    fn add(&mut self, includes: Option<Includes>) {
        let includes = includes.unwrap_or_default();
        for user in includes.users {
            self.users.insert(user.id.clone(), user);
        }
        for media in includes.media {
            self.media.insert(media.media_key.clone(), media);
        }
    }

    fn person(&self, id: String) -> Person {
        let user = self.users.get(&id);
        Person {
            handle: user.and_then(|u| u.username.clone()),
            display_name: user.and_then(|u| u.name.clone()),
            id,
        }
    }

    fn attachments(&self, keys: Option<MediaKeys>) -> Vec<Attachment> {
        keys.map(|keys| keys.media_keys)
            .unwrap_or_default()
            .iter()
            .filter_map(|key| self.media.get(key))
            .map(|media| {
                let best_video = media
                    .variants
                    .iter()
                    .filter(|v| v.content_type.as_deref() == Some("video/mp4"))
                    .max_by_key(|v| v.bit_rate.unwrap_or(0));
                let (url, mime_type) = match best_video {
                    Some(v) => (v.url.clone(), v.content_type.clone()),
                    None => (media.url.clone().or(media.preview_image_url.clone()), None),
                };
                media_attachment(
                    media.kind.as_deref(),
                    url,
                    mime_type,
                    media.alt_text.clone(),
                )
            })
            .collect()
    }
}

/// Mentions of `account` since the cursor, oldest first, and the newest id seen.
fn poll_mentions(
    api: &mut XApi,
    settings: &Settings,
    account: &Account,
    cursor: &Cursor,
) -> Result<(Vec<Message>, Option<String>)> {
    let path = format!("/2/users/{}/mentions", account.id);
    let since = cursor.mentions.as_deref();
    let mut posts = Vec::new();
    let mut expansions = Expansions::default();
    let mut newest = None;
    let mut token: Option<String> = None;
    for page_number in 0..MAX_PAGES {
        let mut query = vec![
            ("max_results", "100"),
            ("expansions", "author_id,attachments.media_keys"),
            ("tweet.fields", POST_FIELDS),
            ("user.fields", USER_FIELDS),
            ("media.fields", MEDIA_FIELDS),
        ];
        query.extend(since.map(|since| ("since_id", since)));
        query.extend(token.as_deref().map(|token| ("pagination_token", token)));
        let page: Page<Post> = api.get(&path, &query)?;
        let meta = page.meta;
        let data = page.data.unwrap_or_default();
        if page_number == 0 {
            // X lists newest first and names the newest in `meta`; without `meta`, the
            // page's own largest id says the same.
            newest = meta.as_ref().and_then(|m| m.newest_id.clone()).or_else(|| {
                data.iter()
                    .map(|post| post.id.as_str())
                    .reduce(|a, b| if is_newer_id(b, a) { b } else { a })
                    .map(str::to_string)
            });
        }
        posts.extend(data);
        expansions.add(page.includes);
        token = meta.and_then(|m| m.next_token);
        if token.is_none() || since.is_none() {
            break;
        }
    }
    if token.is_some() && since.is_some() {
        warn!(
            "account {}: more than {MAX_PAGES} pages of mentions since the last poll; older ones skipped",
            account.id
        );
    }
    let now = time::now_ms();
    // X lists newest first. Every post becomes a message except those ignored on purpose
    // (the company's own, retweets), so the cursor may pass all of them.
    let messages = posts
        .into_iter()
        .rev()
        .filter_map(|post| mention_message(settings, account, &expansions, post, now))
        .collect();
    Ok((messages, newest))
}

fn mention_message(
    settings: &Settings,
    polled: &Account,
    expansions: &Expansions,
    post: Post,
    now: u64,
) -> Option<Message> {
    // X may leave `author_id` out even though the poll asks for it; the customer still
    // wrote, so the message goes on with the author unknown (see the crate docs).
    if post
        .author_id
        .as_deref()
        .is_some_and(|author| settings.is_own(author))
    {
        conventions::ignored("own-post", &post.id, "written by an account served");
        return None;
    }
    let reference = |kind: &str| {
        post.referenced_tweets
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.id.clone())
    };
    // A retweet repeats someone else's post; the customer wrote nothing new.
    if reference("retweeted").is_some() {
        conventions::ignored("retweet", &post.id, "repeats another post");
        return None;
    }
    let replied_to = reference("replied_to");
    let quoted = reference("quoted");
    let mentioned: Vec<Mention<'_>> = post
        .entities
        .iter()
        .flat_map(|entities| &entities.mentions)
        .map(|mention| Mention {
            id: mention.id.as_deref(),
            handle: mention.username.as_deref(),
        })
        .collect();
    let account = settings.addressee(
        post.in_reply_to_user_id.as_deref(),
        &mentioned,
        Some(&polled.id),
    )?;
    let text = post.note_tweet.map_or(post.text, |note| note.text);
    let mut extra = Vec::new();
    extra.extend(quoted.map(|id| ("quoted_post_id".to_string(), id)));
    // Contract 0.2's field; the `lang` extra stays for what reads extras.
    let language = post.lang.clone();
    extra.extend(
        post.lang
            .map(|lang| (centralino_sdk::conventions::LANGUAGE.to_string(), lang)),
    );
    let author = match post.author_id {
        Some(author) => expansions.person(author),
        None => {
            warn!(
                "post {}: X named no author; delivered with the author unknown",
                post.id
            );
            extra.push(("author_unknown".to_string(), "true".to_string()));
            Person {
                id: String::new(),
                handle: None,
                display_name: None,
            }
        }
    };
    let created_at = post
        .created_at
        .as_deref()
        .and_then(parse_time)
        .or_else(|| snowflake_ms(&post.id))
        .unwrap_or(now);
    let original = original_of(&post.id, None, post.edit_history_tweet_ids.as_deref());
    let message = Message {
        conversation_key: post_thread_key(
            post.conversation_id.as_deref(),
            replied_to.as_deref(),
            &post.id,
        ),
        external_id: post.id,
        account: account.id.clone(),
        author,
        text: unescape_html(&text),
        kind: MessageKind::PublicPost,
        in_reply_to: replied_to,
        attachments: expansions.attachments(post.attachments),
        created_at,
        language,
        extra,
    };
    Some(match original {
        Some(original) => as_edit(message, original),
        None => message,
    })
}

/// DMs to `account` newer than the cursor, oldest first, and the newest id seen.
fn poll_dms(
    api: &mut XApi,
    settings: &Settings,
    account: &Account,
    cursor: &Cursor,
) -> Result<(Vec<Message>, Option<String>)> {
    let after = cursor.dms.as_deref();
    let mut events = Vec::new();
    let mut expansions = Expansions::default();
    let mut token: Option<String> = None;
    let mut caught_up = after.is_none();
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            ("max_results", "100"),
            ("event_types", "MessageCreate"),
            ("dm_event.fields", DM_FIELDS),
            ("expansions", "sender_id,attachments.media_keys"),
            ("user.fields", USER_FIELDS),
            ("media.fields", MEDIA_FIELDS),
        ];
        query.extend(token.as_deref().map(|token| ("pagination_token", token)));
        let page: Page<DmEvent> = api.get("/2/dm_events", &query)?;
        expansions.add(page.includes);
        // Newest first: stop at the first event the previous poll already returned.
        for event in page.data.unwrap_or_default() {
            if after.is_some_and(|after| !is_newer_id(&event.id, after)) {
                caught_up = true;
                break;
            }
            events.push(event);
        }
        token = page.meta.and_then(|m| m.next_token);
        if caught_up || token.is_none() {
            caught_up = true;
            break;
        }
    }
    if !caught_up {
        warn!(
            "account {}: more than {MAX_PAGES} pages of DMs since the last poll; older ones skipped",
            account.id
        );
    }
    // Newest first. The cursor may pass every event that became a message or was ignored
    // on purpose, but never one that could not be read: it stays just before the oldest
    // such event, so the next poll fetches it again (and logs it again).
    let ids: Vec<String> = events.iter().map(|event| event.id.clone()).collect();
    let mut unread_at = None;
    let now = time::now_ms();
    let mut messages = Vec::new();
    for (index, event) in events.into_iter().enumerate().rev() {
        let id = event.id.clone();
        match dm_message(settings, account, &expansions, event, now) {
            Ok(message) => messages.extend(message),
            Err(reason) => {
                warn!(
                    "account {}: DM event {id} is not a message ({reason}); the cursor stays before it",
                    account.id
                );
                unread_at.get_or_insert(index);
            }
        }
    }
    let newest = match unread_at {
        Some(index) => ids.get(index + 1).cloned(),
        None => ids.first().cloned(),
    };
    Ok((messages, newest))
}

fn dm_message(
    settings: &Settings,
    account: &Account,
    expansions: &Expansions,
    event: DmEvent,
    now: u64,
) -> Result<Option<Message>, &'static str> {
    if event
        .event_type
        .as_deref()
        .is_some_and(|kind| kind != "MessageCreate")
    {
        conventions::ignored(
            "dm-event-type",
            &event.id,
            "a DM event that is no message (a participant joining or leaving)",
        );
        return Ok(None);
    }
    // Without its sender a DM can be neither answered nor told apart from the account's
    // own (X lists both).
    let sender = event.sender_id.ok_or("no sender_id")?;
    // The account's own DMs are listed too: an echo, not a customer message.
    if settings.is_own(&sender) {
        conventions::ignored("own-message", &event.id, "sent by an account served");
        return Ok(None);
    }
    // One-to-one conversations are `<id>-<id>`; group DMs cannot be answered per customer.
    if event
        .dm_conversation_id
        .as_deref()
        .is_some_and(|id| !id.contains('-'))
    {
        conventions::ignored(
            "group-dm",
            &event.id,
            "a group DM, which cannot be answered per customer",
        );
        return Ok(None);
    }
    let mut extra = Vec::new();
    extra.extend(
        event
            .dm_conversation_id
            .map(|id| ("dm_conversation_id".to_string(), id)),
    );
    let created_at = event
        .created_at
        .as_deref()
        .and_then(parse_time)
        .or_else(|| snowflake_ms(&event.id))
        .unwrap_or(now);
    Ok(Some(Message {
        external_id: event.id,
        account: account.id.clone(),
        conversation_key: dm_thread_key(&account.id, &sender),
        author: expansions.person(sender),
        text: unescape_html(event.text.as_deref().unwrap_or_default()),
        kind: MessageKind::PrivateMessage,
        in_reply_to: None,
        attachments: expansions.attachments(event.attachments),
        created_at,
        language: None,
        extra,
    }))
}
