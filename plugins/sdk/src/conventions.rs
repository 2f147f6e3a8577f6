//! What connectors and the host agree on beyond the types of contract 0.1.
//!
//! Contract 0.1 is frozen, and some things platforms send have no type in it. They travel in
//! places 0.1 already has, by conventions the host recognises and that a host without them
//! handles harmlessly (docs/contract-versioning.md, "Conventions within 0.1"). Use these
//! helpers rather than writing the keys by hand.
//!
//! | what | helper | carried as |
//! | --- | --- | --- |
//! | a customer deleted a message | [`deletion`] | a message with `extra` `centralino:deleted = true` |
//! | a customer edited a message | [`edit`] | the message as it reads now, with `extra` `centralino:edited = <ms>` |
//! | the language the platform detected | [`LANGUAGE`] | `extra` `lang = <BCP 47 tag>` |
//! | an event ignored on purpose | [`ignored`] | a debug log line `centralino:ignored reason=<reason> event=<id>: <why>` |

use crate::{Message, MessageKind, Person};

/// `extra` key marking a message as a deletion.
pub const DELETED: &str = "centralino:deleted";

/// `extra` key marking a message as the edit of one written before; its value is when it
/// was edited (ms since the epoch).
pub const EDITED: &str = "centralino:edited";

/// `extra` key of an edit naming the platform's own id for the edited version, where the
/// platform gives each version an id of its own (X): a deletion naming that id then
/// deletes the message too.
pub const VERSION: &str = "centralino:version";

/// `extra` key for the language the platform detected (a BCP 47 tag such as `it` or
/// `en-GB`; `und` when the platform could not tell). The host routes on its primary
/// subtag.
pub const LANGUAGE: &str = "lang";

/// A customer deleted the message `external_id` they had written to `account` (a deleted
/// post, an unsent message), at `at` (ms). Put it among the outcome's messages: the host
/// empties its stored copy and tells the CRM, instead of storing a message.
pub fn deletion(account: &str, external_id: &str, author: &str, at: u64) -> Message {
    Message {
        external_id: external_id.to_string(),
        account: account.to_string(),
        conversation_key: String::new(),
        author: Person {
            id: author.to_string(),
            handle: None,
            display_name: None,
        },
        text: String::new(),
        kind: MessageKind::PublicPost,
        in_reply_to: None,
        attachments: Vec::new(),
        created_at: at,
        language: None,
        extra: vec![(DELETED.to_string(), "true".to_string())],
    }
}

/// A customer edited a message they had written: `message` is that message as it reads
/// now (the same `external-id` and `account`, the new `text`; `created-at` the time it was
/// first written when the platform says, else the edit's), edited at `at` (ms). Put it
/// among the outcome's messages: the host updates its stored copy and tells the CRM; when
/// it never stored the message, it stores it as it reads now, so nothing is lost.
pub fn edit(mut message: Message, at: u64) -> Message {
    message.extra.retain(|(key, _)| key != EDITED);
    message.extra.push((EDITED.to_string(), at.to_string()));
    message
}

/// [`edit`], for a platform that gives the edited version an id of its own (`version`;
/// X's edited posts): `message` keeps the id the host knows it by (the original's), and
/// the host also knows it by `version` from then on, so a deletion naming either empties
/// it.
pub fn edit_version(mut message: Message, at: u64, version: &str) -> Message {
    message.extra.retain(|(key, _)| key != VERSION);
    message
        .extra
        .push((VERSION.to_string(), version.to_string()));
    edit(message, at)
}

/// `word` when it may be the reason of an [`ignored`] line (1 to 48 of `a-z`, `0-9`, `_`,
/// `-`: a platform's own name for an event kind, such as `channel_post` or `hide`), else
/// `fallback`; the host counts any other reason as `other`.
pub fn reason_or<'a>(word: &'a str, fallback: &'a str) -> &'a str {
    let plain = (1..=48).contains(&word.len())
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if plain { word } else { fallback }
}

/// Says that the platform event `event` (its id, or what names it) was ignored on purpose
/// and why: `reason` is a short word of `a-z`, `0-9`, `_`, `-` (`echo`, `own-post`,
/// `retweet`, the platform's name for an event kind the connector does not handle), and
/// `detail` a sentence for the log. The host counts these by connector and reason
/// (`centralino_events_ignored_total`) and logs the line at debug, so "nothing new" and
/// "three events skipped" can be told apart. Never use it for an event the connector could
/// not understand: that is a `warn!` naming the event, or a malformed delivery.
pub fn ignored(reason: &str, event: &str, detail: &str) {
    crate::log::debug(&format!(
        "centralino:ignored reason={reason} event={event}: {detail}"
    ));
}

#[cfg(test)]
mod tests {
    use super::reason_or;

    #[test]
    fn a_reason_is_a_plain_word_or_the_fallback() {
        assert_eq!(reason_or("channel_post", "other"), "channel_post");
        assert_eq!(reason_or("hide", "other"), "hide");
        assert_eq!(reason_or("own-post2", "other"), "own-post2");
        assert_eq!(reason_or("", "other"), "other");
        assert_eq!(reason_or("Channel Post", "other"), "other");
        assert_eq!(reason_or(&"x".repeat(49), "other"), "other");
    }
}
