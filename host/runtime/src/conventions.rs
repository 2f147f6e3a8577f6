//! What connectors and the host agree on beyond the types of contract 0.1.
//!
//! Contract 0.1 is frozen: a new field or case would change types that 0.1 plugins were
//! compiled against. Some things platforms send have no place in its types, so they travel
//! in places 0.1 already has, by a documented convention that a host which does not know it
//! handles harmlessly (see docs/contract-versioning.md, "Conventions within 0.1"). Each is
//! a candidate for a real type in a later contract line (0.2 and 0.3 kept them as they
//! are).
//!
//! | what | carried as | a host without the convention |
//! | --- | --- | --- |
//! | a customer deleted a message | a `message` with `extra` `centralino:deleted = true`, the deleted message's `external-id` and `account` | sees a duplicate of the stored message: nothing changes |
//! | a customer edited a message | the whole `message` as it reads now (same `external-id` and `account`, its new `text`), with `extra` `centralino:edited = <when, ms>`, and `centralino:version = <id>` where the platform gives the edited version an id of its own | sees a duplicate of the stored message: its first text stays; a message it never stored is stored as it reads now |
//! | the language of a message | `extra` `lang = <BCP 47 tag>` (X's word; `und` is unknown) | keeps it as an extra |
//! | the e-mail address or phone number the platform holds for the author (a contact the customer shared with the account) | `extra` `centralino:email = <address>`, `centralino:phone = <number>` | keeps them as extras |
//! | an event ignored on purpose | a `log` line `centralino:ignored reason=<reason> event=<id>: <why>` | logs the line |

use std::collections::BTreeMap;

use crate::types::Message;

/// Start of a log line by which a connector says it ignored a platform event on purpose.
pub const IGNORED: &str = "centralino:ignored ";

/// Most distinct reasons counted per connector (and per call); others count as `other`,
/// so a plugin cannot grow the metrics' label space without bound.
pub const MAX_REASONS: usize = 32;

/// The reason of an `ignored` log line: `reason=` followed by 1 to 48 characters of
/// `a-z`, `0-9`, `_` and `-`; `other` for any other reason; `None` for any other line.
pub fn ignored_reason(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(IGNORED)?;
    let reason = rest
        .strip_prefix("reason=")
        .map(|r| r.split([' ', ':']).next().unwrap_or_default())
        .unwrap_or_default();
    let valid = (1..=48).contains(&reason.len())
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    Some(if valid { reason } else { "other" })
}

/// Adds `count` ignored events for `reason` to `counts`, keeping at most [`MAX_REASONS`].
pub fn count_ignored(counts: &mut BTreeMap<String, u64>, reason: &str, count: u64) {
    let reason = if counts.contains_key(reason) || counts.len() < MAX_REASONS {
        reason
    } else {
        "other"
    };
    let n = counts.entry(reason.to_string()).or_default();
    *n = n.saturating_add(count);
}

/// `extra` key marking a message as the deletion of the stored message with the same
/// `external-id` and `account`.
pub const DELETED: &str = "centralino:deleted";

/// `extra` key marking a message as the edit of the stored message with the same
/// `external-id` and `account`; its value is when the customer edited it (ms since the
/// epoch), and the message's `text` is the text it has now.
pub const EDITED: &str = "centralino:edited";

/// `extra` key of an edit naming the platform's own id for the edited version (platforms
/// that give each version an id, X): the host also knows the message by that id, so a
/// deletion naming it empties the message.
pub const VERSION: &str = "centralino:version";

/// `extra` key holding the language the platform detected, as a BCP 47 tag.
pub const LANGUAGE: &str = "lang";

/// `extra` key holding the author's e-mail address, as the platform gave it.
pub const EMAIL: &str = "centralino:email";

/// `extra` key holding the author's phone number, as the platform gave it.
pub const PHONE: &str = "centralino:phone";

/// The author's e-mail address and phone number when the platform gave them, normalised
/// for an exact match: the address trimmed and in lower case (`None` without an `@`), the
/// number as its digits with a leading `+` when it had one (`None` under 6 digits).
pub fn contact(message: &Message) -> (Option<String>, Option<String>) {
    let value = |name: &str| {
        message
            .extra
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    };
    let email = value(EMAIL)
        .map(str::to_lowercase)
        .filter(|e| e.len() >= 3 && e.contains('@') && !e.chars().any(char::is_whitespace));
    let phone = value(PHONE).and_then(|p| {
        let digits: String = p.chars().filter(char::is_ascii_digit).collect();
        (digits.len() >= 6).then(|| {
            if p.starts_with('+') {
                format!("+{digits}")
            } else {
                digits
            }
        })
    });
    (email, phone)
}

/// Whether `message` is a deletion rather than something a customer wrote.
pub fn is_deletion(message: &Message) -> bool {
    message
        .extra
        .iter()
        .any(|(key, value)| key == DELETED && value == "true")
}

/// When `message` reports an edit of a message the host may have stored: the time the
/// marker holds, or the message's own `created_at` when the marker holds no number (a
/// connector that could not tell). `None` when it is no edit.
pub fn edited_at(message: &Message) -> Option<u64> {
    let value = message
        .extra
        .iter()
        .find(|(key, _)| key == EDITED)
        .map(|(_, value)| value.trim())?;
    Some(value.parse().unwrap_or(message.created_at))
}

/// The platform's id of the version an edit reports, when it names one other than the
/// message's own id.
pub fn version(message: &Message) -> Option<&str> {
    message
        .extra
        .iter()
        .find(|(key, _)| key == VERSION)
        .map(|(_, value)| value.trim())
        .filter(|version| !version.is_empty() && *version != message.external_id)
}

/// The language of `message` as routing matches it against operators' languages: the
/// primary subtag in lower case (`en-GB` is `en`); `None` when the platform gave none or
/// could not tell (`und`, X's `qme`/`zxx`-style codes of three letters starting with q or
/// z, which are not languages).
pub fn language(message: &Message) -> Option<String> {
    language_in(&message.extra)
}

/// [`language`] of a message's `extra`.
pub fn language_in(extra: &crate::types::Pairs) -> Option<String> {
    let tag = extra
        .iter()
        .find(|(key, _)| key == LANGUAGE)
        .map(|(_, value)| value.trim())?;
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    let is_language = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && primary != "und"
        && primary != "zxx"
        && !(primary.len() == 3 && primary.starts_with('q'));
    is_language.then_some(primary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{MessageKind, Person};

    fn with_extra(extra: &[(&str, &str)]) -> Message {
        Message {
            external_id: "1".into(),
            account: "a".into(),
            conversation_key: "k".into(),
            author: Person {
                id: "p".into(),
                handle: None,
                display_name: None,
            },
            text: String::new(),
            kind: MessageKind::PublicPost,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 0,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn languages_are_primary_subtags_and_non_languages_are_none() {
        let cases = [
            ("it", Some("it")),
            ("en-GB", Some("en")),
            ("EN", Some("en")),
            ("pt_BR", Some("pt")),
            ("und", None),
            ("qme", None),
            ("qht", None),
            ("zxx", None),
            ("", None),
            ("e", None),
            ("english", None),
            ("1t", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(
                language(&with_extra(&[("lang", tag)])).as_deref(),
                expected,
                "{tag}"
            );
        }
        assert_eq!(language(&with_extra(&[])), None);
    }

    #[test]
    fn ignored_lines_name_a_bounded_reason() {
        assert_eq!(
            ignored_reason("centralino:ignored reason=echo event=m_1: the page's own"),
            Some("echo")
        );
        assert_eq!(
            ignored_reason("centralino:ignored reason=direct_message_indicate_typing_events"),
            Some("direct_message_indicate_typing_events")
        );
        assert_eq!(
            ignored_reason("centralino:ignored reason=Échos event=1"),
            Some("other")
        );
        assert_eq!(ignored_reason("centralino:ignored event=1"), Some("other"));
        assert_eq!(ignored_reason("post 1 addresses no account"), None);
        let mut counts = BTreeMap::new();
        for n in 0..40 {
            count_ignored(&mut counts, &format!("r{n}"), 1);
        }
        count_ignored(&mut counts, "r0", 2);
        assert_eq!(counts.len(), MAX_REASONS + 1);
        assert_eq!(counts["other"], 8);
        assert_eq!(counts["r0"], 3);
    }

    #[test]
    fn contacts_are_normalised_for_an_exact_match() {
        let m = with_extra(&[
            ("centralino:email", " Mario.Rossi@Example.IT "),
            ("centralino:phone", "+39 333 123-4567"),
        ]);
        assert_eq!(
            contact(&m),
            (
                Some("mario.rossi@example.it".to_string()),
                Some("+393331234567".to_string())
            )
        );
        let m = with_extra(&[("centralino:email", "nobody"), ("centralino:phone", "12")]);
        assert_eq!(contact(&m), (None, None));
    }

    #[test]
    fn an_edit_carries_its_time_or_falls_back_to_the_message_time() {
        let mut m = with_extra(&[("centralino:edited", "1700000000123")]);
        assert_eq!(edited_at(&m), Some(1_700_000_000_123));
        m.extra = vec![("centralino:edited".into(), "yes".into())];
        m.created_at = 42;
        assert_eq!(edited_at(&m), Some(42));
        assert_eq!(edited_at(&with_extra(&[("edited", "1")])), None);
    }

    #[test]
    fn a_version_is_another_id_than_the_messages_own() {
        let mut m = with_extra(&[("centralino:version", " 1863000000400000000 ")]);
        assert_eq!(version(&m), Some("1863000000400000000"));
        m.external_id = "1863000000400000000".into();
        assert_eq!(version(&m), None, "its own id names nothing more");
        assert_eq!(version(&with_extra(&[("centralino:version", "")])), None);
        assert_eq!(version(&with_extra(&[])), None);
    }

    #[test]
    fn only_the_exact_marker_makes_a_deletion() {
        assert!(is_deletion(&with_extra(&[("centralino:deleted", "true")])));
        assert!(!is_deletion(&with_extra(&[(
            "centralino:deleted",
            "false"
        )])));
        assert!(!is_deletion(&with_extra(&[("deleted", "true")])));
    }
}
