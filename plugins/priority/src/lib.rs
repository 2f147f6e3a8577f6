//! `priority`: raises the priority of a conversation whose text says it is urgent, so it
//! goes ahead of the others in the queue.
//!
//! A keyword matches as a whole word, ignoring case: `down` matches "la rete è DOWN!" and
//! "#down" but not "download". A keyword of several words (`non funziona`) matches those
//! words in a row. On a match the stage sets the conversation's priority to `level` (never
//! lowering one an earlier stage set higher) and passes, so the stages after it still pick
//! the operator; the new priority is what orders the queue if nobody is free.
//!
//! Settings:
//! - `keywords`: comma-separated (default `guasto,disservizio,urgente,down`);
//! - `level`: the priority to set, 1 to 255 (default 5).

centralino_sdk::small_object_allocator!();

use centralino_sdk::routing::{Decision, RoutingContext};
use centralino_sdk::{PluginError, Result, Router, reason};

/// Words Italian customers use when a service is broken rather than merely annoying.
const DEFAULT_KEYWORDS: &str = "guasto,disservizio,urgente,down";
const DEFAULT_LEVEL: u8 = 5;

struct Priority {
    /// Keywords, each already split into lower-case words.
    keywords: Vec<Vec<String>>,
    /// The priority a match sets.
    level: u8,
}

/// Splits text into lower-case words: letters and digits (any script) form words,
/// everything else (spaces, punctuation, `#`, `@`) separates them.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn parse_keywords(list: &str) -> Vec<Vec<String>> {
    list.split(',')
        .map(words)
        .filter(|keyword| !keyword.is_empty())
        .collect()
}

/// The first keyword found in `text`, as the words it matched. Keywords are never empty
/// (`parse_keywords` drops them), so `windows` never gets a size of zero.
fn first_match<'k>(keywords: &'k [Vec<String>], text: &[String]) -> Option<&'k [String]> {
    keywords
        .iter()
        .find(|keyword| {
            text.windows(keyword.len())
                .any(|window| window == keyword.as_slice())
        })
        .map(Vec::as_slice)
}

impl Router for Priority {
    fn configure(settings: Vec<(String, String)>) -> Result<Self> {
        let mut keywords = parse_keywords(DEFAULT_KEYWORDS);
        let mut level = DEFAULT_LEVEL;
        for (key, value) in &settings {
            match key.as_str() {
                "keywords" => {
                    keywords = parse_keywords(value);
                    if keywords.is_empty() {
                        return Err(PluginError::InvalidInput(
                            "priority: `keywords` lists no word".to_string(),
                        ));
                    }
                }
                "level" => {
                    level = value
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|level| *level > 0)
                        .ok_or_else(|| {
                            PluginError::InvalidInput(format!(
                                "priority: `level` must be a number from 1 to 255, got `{value}`"
                            ))
                        })?;
                }
                other => {
                    return Err(PluginError::InvalidInput(format!(
                        "priority: unknown setting `{other}` (known: `keywords`, `level`)"
                    )));
                }
            }
        }
        Ok(Priority { keywords, level })
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        // The text is asked of the host here (the only string this stage reads).
        let text = words(context.conversation.text());
        let current = context.conversation.priority;
        let level = self.level;
        let found = first_match(&self.keywords, &text).map(|keyword| keyword.join(" "));
        Ok(match found {
            Some(keyword) => Decision::pass(reason!(
                "priority: `",
                keyword,
                "` in the text, priority ",
                level
            ))
            .with_priority(level.max(current)),
            None => Decision::pass("priority: no urgent keyword"),
        })
    }
}

centralino_sdk::export_router!(Priority);
