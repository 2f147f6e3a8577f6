//! What a search or a paged list asks for ([`SearchQuery`]), what it answers ([`Page`]),
//! and the cursors between pages: opaque to callers (base64url of a versioned key naming
//! the last row of a page), checked before any SQL runs. See `search.rs` for the SQL.

use base64::Engine as _;

use super::ConversationStatus;

/// Most rows one page holds.
pub const MAX_PAGE: usize = 200;
/// Rows a page holds when the caller does not say.
pub const DEFAULT_PAGE: usize = 50;
/// Longest search text accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Longest cursor a caller can hand back (the longest this store writes is far shorter).
pub const MAX_CURSOR_CHARS: usize = 200;

/// What to look for, and which page. Every filter is optional; all given must hold.
///
/// ```
/// use centralino::store::{ConversationStatus, SearchQuery};
///
/// let query = SearchQuery::new()
///     .text("modem non va")
///     .brand("tim")
///     .status(ConversationStatus::Waiting)
///     .limit(20);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchQuery {
    /// Words every matching message holds (case-insensitive, whole words).
    pub text: Option<String>,
    /// The channel (connector name).
    pub channel: Option<String>,
    /// The brand: conversations with an account configured with this brand.
    pub brand: Option<String>,
    /// The operator holding the conversation.
    pub assignee: Option<String>,
    /// The conversation's status.
    pub status: Option<ConversationStatus>,
    /// Messages inbound (the customer's) or outbound (the company's); messages only.
    pub direction: Option<Direction>,
    /// From this time on (ms, inclusive): a conversation's creation, a message's storing.
    pub since_ms: Option<u64>,
    /// Before this time (ms, exclusive).
    pub until_ms: Option<u64>,
    /// Rows per page: 1 to [`MAX_PAGE`]; [`DEFAULT_PAGE`] when `None`.
    pub limit: Option<usize>,
    /// The `next_cursor` of the page before; `None` for the first page.
    pub cursor: Option<String>,
}

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// From the company (an operator's reply, or the host's own).
    Outbound,
}

impl Direction {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl SearchQuery {
    /// Everything, first page.
    pub fn new() -> Self {
        SearchQuery::default()
    }
    /// Only what holds every word of `text`.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
    /// Only this channel (connector).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
    /// Only this brand.
    pub fn brand(mut self, brand: impl Into<String>) -> Self {
        self.brand = Some(brand.into());
        self
    }
    /// Only conversations this operator holds.
    pub fn assignee(mut self, operator: impl Into<String>) -> Self {
        self.assignee = Some(operator.into());
        self
    }
    /// Only conversations with this status.
    pub fn status(mut self, status: ConversationStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Only messages that went this way.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = Some(direction);
        self
    }
    /// From `ms` on (inclusive).
    pub fn since_ms(mut self, ms: u64) -> Self {
        self.since_ms = Some(ms);
        self
    }
    /// Before `ms` (exclusive).
    pub fn until_ms(mut self, ms: u64) -> Self {
        self.until_ms = Some(ms);
        self
    }
    /// At most `limit` rows per page (1 to [`MAX_PAGE`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// The page after the one that gave `cursor`.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// One page of a list, and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// At most the page's limit of rows.
    pub items: Vec<T>,
    /// Hand it back for the next page; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

/// Why a query was refused: it names the field and what it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidQuery(pub(crate) String);

/// A query checked and ready for SQL.
pub(crate) struct Checked<'q> {
    pub(super) query: &'q SearchQuery,
    pub(super) limit: usize,
    pub(super) words: Option<Vec<String>>,
    pub(super) cursor: Option<Key>,
    /// The brand's `(channel, account)` pairs, when a brand is asked for.
    pub(super) accounts: Option<Vec<(String, String)>>,
}

/// The position a cursor names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Key {
    /// A conversation: `(created_at, id)`.
    Conversation(i64, String),
    /// A message found by time: `(received_at, id)`.
    Stored(i64, String),
    /// A message found through SQLite's index: its document number.
    Doc(i64),
    /// A message of one conversation: `(created_at, received_at, batch_index, id)`.
    Thread(i64, i64, i64, String),
}

impl Key {
    pub(super) fn encode(&self) -> String {
        let raw = match self {
            Key::Conversation(at, id) => format!("1:c:{at}:{id}"),
            Key::Stored(at, id) => format!("1:m:{at}:{id}"),
            Key::Doc(doc) => format!("1:d:{doc}"),
            Key::Thread(created, received, batch, id) => {
                format!("1:t:{created}:{received}:{batch}:{id}")
            }
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub(super) fn decode(cursor: &str) -> Option<Key> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let parts: Vec<&str> = raw.split(':').collect();
        let int = |s: &str| s.parse::<i64>().ok();
        let id = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                .then(|| s.to_string())
        };
        match parts.as_slice() {
            ["1", "c", at, key] => Some(Key::Conversation(int(at)?, id(key)?)),
            ["1", "m", at, key] => Some(Key::Stored(int(at)?, id(key)?)),
            ["1", "d", doc] => Some(Key::Doc(int(doc)?)),
            ["1", "t", created, received, batch, key] => Some(Key::Thread(
                int(created)?,
                int(received)?,
                int(batch)?,
                id(key)?,
            )),
            _ => None,
        }
    }
}

/// The words a search text looks for: runs of letters and digits, lowercased.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The page size asked for, checked.
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, InvalidQuery> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(InvalidQuery(format!(
            "`limit` must be between 1 and {MAX_PAGE}, not {limit}"
        )))
    }
}

fn bad_cursor() -> InvalidQuery {
    InvalidQuery(
        "`cursor` is not one this list gave: pass the `next_cursor` of the page before, \
         unchanged"
            .to_string(),
    )
}

impl SearchQuery {
    /// Checks the query; `accounts` are the brand's `(channel, account)` pairs.
    pub(crate) fn check(
        &self,
        accounts: Option<Vec<(String, String)>>,
    ) -> Result<Checked<'_>, InvalidQuery> {
        let limit = page_limit(self.limit)?;
        let words = match &self.text {
            None => None,
            Some(text) => {
                if text.chars().count() > MAX_SEARCH_CHARS {
                    return Err(InvalidQuery(format!(
                        "the search text is longer than {MAX_SEARCH_CHARS} characters"
                    )));
                }
                let words = words(text);
                if words.is_empty() {
                    return Err(InvalidQuery(
                        "the search text has no word to look for (letters or digits)".into(),
                    ));
                }
                Some(words)
            }
        };
        let cursor = match &self.cursor {
            None => None,
            Some(cursor) => Some(Key::decode(cursor).ok_or_else(bad_cursor)?),
        };
        Ok(Checked {
            query: self,
            limit,
            words,
            cursor,
            accounts,
        })
    }
}

/// A cursor of another list (or a forged one): the caller's mistake, answered as such.
#[derive(Debug)]
pub(crate) struct InvalidCursor;

impl std::fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&bad_cursor().0)
    }
}

impl std::error::Error for InvalidCursor {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forged_ones_are_refused() {
        for key in [
            Key::Conversation(1_700_000_000_000, "0190abcd".into()),
            Key::Stored(-1, "x".into()),
            Key::Doc(42),
            Key::Thread(1, 2, 3, "id-1".into()),
        ] {
            assert_eq!(Key::decode(&key.encode()), Some(key));
        }
        for forged in [
            "",
            "!!",
            "MTpjOjE",
            "MTp4OjE6YQ",
            &"A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            assert_eq!(Key::decode(forged), None, "{forged}");
        }
        // An id with SQL in it never becomes a key.
        let sneaky = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("1:c:1:a' OR 1=1");
        assert_eq!(Key::decode(&sneaky), None);
    }

    #[test]
    fn words_are_runs_of_letters_and_digits_lowercased() {
        assert_eq!(
            words("Il MODEM non va! e-mail: l'assistenza 3.5 città"),
            [
                "il",
                "modem",
                "non",
                "va",
                "e",
                "mail",
                "l",
                "assistenza",
                "3",
                "5",
                "città"
            ]
        );
        assert!(words("\"*:() -").is_empty());
    }

    #[test]
    fn queries_are_checked_with_the_field_named() {
        let refused = |q: SearchQuery| q.check(None).err().map(|e| e.0).unwrap_or_default();
        assert!(refused(SearchQuery::new().limit(0)).contains("`limit`"));
        assert!(refused(SearchQuery::new().limit(MAX_PAGE + 1)).contains("`limit`"));
        assert!(refused(SearchQuery::new().text("?!")).contains("no word"));
        assert!(refused(SearchQuery::new().text("a".repeat(201))).contains("longer"));
        assert!(refused(SearchQuery::new().after("nope")).contains("`cursor`"));
        assert!(SearchQuery::new().limit(MAX_PAGE).check(None).is_ok());
    }
}
