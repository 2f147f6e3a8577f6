//! Pieces shared by the webhook and the polling paths, so that a post or a DM becomes the
//! same message whichever way it arrived: thread keys, attachments, text and timestamps.

use centralino_sdk::conventions;
use centralino_sdk::text::is_digits;
use centralino_sdk::time::{civil_to_ms, rfc3339_ms, utc_offset};
use centralino_sdk::{Attachment, Message};

/// Thread key of a post: `tweet:<root>`, where the root is the thread's first post.
///
/// `conversation_id` is that root when X sends it (API v2 always does). Without it, a post
/// answering nothing is its own root, and a reply falls back to the post it answers (see the
/// crate documentation for why the webhook path does not look the root up).
pub fn post_thread_key(
    conversation_id: Option<&str>,
    replied_to: Option<&str>,
    id: &str,
) -> String {
    let root = conversation_id.or(replied_to).unwrap_or(id);
    format!("tweet:{root}")
}

/// The root post id of a `tweet:<root>` thread key.
pub fn post_thread_root(key: &str) -> Option<&str> {
    key.strip_prefix("tweet:").filter(|root| is_digits(root))
}

/// Thread key of a DM conversation between a company account and a customer.
pub fn dm_thread_key(account: &str, customer: &str) -> String {
    format!("dm:{account}:{customer}")
}

/// The customer of a `dm:<account>:<customer>` thread key, if it belongs to `account`.
pub fn dm_thread_customer<'k>(key: &'k str, account: &str) -> Option<&'k str> {
    key.strip_prefix("dm:")?
        .strip_prefix(account)?
        .strip_prefix(':')
        .filter(|customer| is_digits(customer))
}

/// Whether id `a` is newer than id `b`. X ids are snowflakes: later ids are larger numbers,
/// and comparing the decimal strings by length, then by digits, compares the numbers
/// without parsing them.
pub fn is_newer_id(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// X's epoch, 2010-11-04T01:42:54.657Z, in milliseconds since 1970.
const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;

/// When the post or DM event with this id was created, read from the id itself: an X id
/// is a snowflake whose bits above the lowest 22 count milliseconds since X's epoch. Used
/// when X leaves the time out, so an item keeps its own time rather than the poll's.
pub fn snowflake_ms(id: &str) -> Option<u64> {
    let id: u64 = id.parse().ok()?;
    let since_epoch = id >> 22;
    // A tiny id is no snowflake (X's ids from before 2010 are plain counters).
    if since_epoch == 0 {
        return None;
    }
    since_epoch.checked_add(SNOWFLAKE_EPOCH_MS)
}

/// The original of the post `id` when X says `id` is a later version of it. X gives every
/// edit of a post a new id and lists the chain, the original first: `edit_history_tweet_ids`
/// in API v2, `edit_history` (`initial_tweet_id`, `edit_tweet_ids`) in Account Activity
/// deliveries. A post never edited lists only itself.
pub fn original_of(id: &str, initial: Option<&str>, chain: Option<&[String]>) -> Option<String> {
    let original = initial.or_else(|| chain?.first().map(String::as_str))?;
    (original != id && is_digits(original)).then(|| original.to_string())
}

/// `message`, built from a later version of the post `original`, as the customer's edit of
/// it: one message per post, known by the original's id (the one the host stored, and the
/// one replies thread under), reading as the latest version. Edited at the version's
/// creation; first written when the original was. The version's own id travels as the
/// SDK's [`conventions::VERSION`]: the host knows the message by it too, so X's deletion of
/// the chain, whichever version it names, empties the message.
pub fn as_edit(mut message: Message, original: String) -> Message {
    let version = std::mem::replace(&mut message.external_id, original);
    let edited_at = message.created_at;
    if let Some(first_written) = snowflake_ms(&message.external_id) {
        message.created_at = first_written.min(edited_at);
    }
    // A post answering nothing is its own thread's root: the original, not the version.
    if post_thread_root(&message.conversation_key) == Some(version.as_str()) {
        message.conversation_key = format!("tweet:{}", message.external_id);
    }
    conventions::edit_version(message, edited_at, &version)
}

/// An attachment from X's media type word (`photo`, `video`, `animated_gif`).
pub fn media_attachment(
    media_type: Option<&str>,
    url: Option<String>,
    mime_type: Option<String>,
    alt_text: Option<String>,
) -> Attachment {
    let kind = match media_type {
        Some("photo") => "image",
        Some("video" | "animated_gif") => "video",
        // A DM media object often carries no type; say what X said, not a guess.
        _ => "media",
    };
    Attachment {
        kind: kind.to_string(),
        url,
        mime_type,
        description: alt_text.filter(|text| !text.is_empty()),
    }
}

/// Milliseconds since the epoch of an X timestamp: RFC 3339 as API v2 writes it
/// (`2019-06-04T23:12:08.000Z`) or the v1.1 form of webhooks (`Mon May 19 14:01:46 +0000
/// 2025`). `None` when it is neither.
pub fn parse_time(text: &str) -> Option<u64> {
    rfc3339_ms(text).or_else(|| parse_v1_time(text))
}

fn parse_v1_time(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)?;
    let day = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    let offset = utc_offset(parts.next()?)?;
    let year = parts.next()?.parse().ok()?;
    let month = i64::try_from(month).ok()? + 1;
    civil_to_ms(year, month, day, clock, offset, 0)
}
