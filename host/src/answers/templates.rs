//! The texts of automatic answers: one set per brand and language, with placeholders the
//! host fills in, and the words for waits and dates in Italian and English.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The automatic answers of one language (`[brands.templates.<language>]`). Every key is
/// required; each may use the placeholders listed for it (see [`PLACEHOLDERS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Templates {
    /// Operators are at work and recent conversations give a number: `{wait}`,
    /// `{minutes}`, `{position}`, `{ahead}`, `{brand}`.
    pub wait_estimate: String,
    /// Operators are at work but nothing was resolved recently, so there is no number:
    /// `{position}`, `{ahead}`, `{brand}`.
    pub wait_unknown: String,
    /// Within business hours, but nobody is at work now: `{position}`, `{ahead}`,
    /// `{brand}`.
    pub nobody_at_work: String,
    /// Outside business hours (a night, a holiday) with nobody at work: `{resumes}` (day
    /// and time in the brand's time zone), `{position}`, `{ahead}`, `{brand}`.
    pub closed: String,
}

/// Which placeholders each template may use.
pub const PLACEHOLDERS: &[(&str, &[&str])] = &[
    (
        "wait_estimate",
        &["wait", "minutes", "position", "ahead", "brand"],
    ),
    ("wait_unknown", &["position", "ahead", "brand"]),
    ("nobody_at_work", &["position", "ahead", "brand"]),
    ("closed", &["resumes", "position", "ahead", "brand"]),
];

impl Templates {
    /// The four answers of one language (check them with
    /// [`Brand::problems`](super::Brand::problems)).
    pub fn new(
        wait_estimate: impl Into<String>,
        wait_unknown: impl Into<String>,
        nobody_at_work: impl Into<String>,
        closed: impl Into<String>,
    ) -> Self {
        Templates {
            wait_estimate: wait_estimate.into(),
            wait_unknown: wait_unknown.into(),
            nobody_at_work: nobody_at_work.into(),
            closed: closed.into(),
        }
    }

    /// The answers used for the CRM's `conversation-queued` event when a brand has none
    /// of its own (nothing is sent to the customer then).
    pub(crate) fn fallback() -> Self {
        Templates {
            wait_estimate: "Estimated wait {wait}; {ahead} ahead in the queue.".to_string(),
            wait_unknown: "No estimate yet; {ahead} ahead in the queue.".to_string(),
            nobody_at_work: "Nobody is at work now; {ahead} ahead in the queue.".to_string(),
            closed: "Closed; service resumes {resumes}.".to_string(),
        }
    }

    /// Each template by its key.
    pub(crate) fn by_key(&self) -> [(&'static str, &str); 4] {
        [
            ("wait_estimate", self.wait_estimate.as_str()),
            ("wait_unknown", self.wait_unknown.as_str()),
            ("nobody_at_work", self.nobody_at_work.as_str()),
            ("closed", self.closed.as_str()),
        ]
    }
}

/// Checks one template: braces balanced, every placeholder known for `key`. The message
/// names the placeholder and lists those allowed.
pub(crate) fn check(key: &str, text: &str) -> Result<(), String> {
    let allowed = PLACEHOLDERS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(&[][..], |(_, allowed)| *allowed);
    let listed = || {
        allowed
            .iter()
            .map(|p| format!("{{{p}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if text.trim().is_empty() {
        return Err("is empty: an automatic answer needs a text".to_string());
    }
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!(
                "has a `}}` without its `{{` (placeholders allowed here: {})",
                listed()
            ));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!(
                "has a `{{` without its `}}` (placeholders allowed here: {})",
                listed()
            ));
        };
        let name = &after[..close];
        if !allowed.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}`: `{key}` may use {}",
                listed()
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills in a checked template; unknown placeholders (impossible after [`check`]) are
/// left as written.
pub(crate) fn render(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A wait in words: `circa 12 minuti`, `about 1 hour and 10 minutes`. Long waits are
/// rounded to 10 minutes: "2 hours and 37 minutes" claims a precision the estimate does
/// not have. Languages without words here get `~12 min`.
pub(crate) fn wait_in_words(language: &str, minutes: u64) -> String {
    let rounded = if minutes < 60 {
        minutes.max(1)
    } else {
        (minutes + 5) / 10 * 10
    };
    let (hours, rest) = (rounded / 60, rounded % 60);
    match language {
        "it" => match (hours, rest) {
            (0, 1) => "circa un minuto".to_string(),
            (0, m) => format!("circa {m} minuti"),
            (1, 0) => "circa 1 ora".to_string(),
            (h, 0) => format!("circa {h} ore"),
            (1, m) => format!("circa 1 ora e {m} minuti"),
            (h, m) => format!("circa {h} ore e {m} minuti"),
        },
        "en" => match (hours, rest) {
            (0, 1) => "about a minute".to_string(),
            (0, m) => format!("about {m} minutes"),
            (1, 0) => "about 1 hour".to_string(),
            (h, 0) => format!("about {h} hours"),
            (1, m) => format!("about 1 hour and {m} minutes"),
            (h, m) => format!("about {h} hours and {m} minutes"),
        },
        _ => format!("~{rounded} min"),
    }
}

const IT_DAYS: [&str; 7] = [
    "lunedì",
    "martedì",
    "mercoledì",
    "giovedì",
    "venerdì",
    "sabato",
    "domenica",
];
const IT_MONTHS: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A local date and time in words: `venerdì 4 dicembre alle 08:00`, `Friday 4 December
/// at 08:00`; other languages `2026-12-04 08:00`.
pub(crate) fn when_in_words(
    language: &str,
    (year, month, day, weekday, minute): (i64, u32, u32, usize, u32),
) -> String {
    let time = format!("{:02}:{:02}", minute / 60, minute % 60);
    let month_index = usize::try_from(month.saturating_sub(1))
        .unwrap_or(0)
        .min(11);
    let weekday = weekday.min(6);
    match language {
        "it" => format!(
            "{} {day} {} alle {time}",
            IT_DAYS[weekday], IT_MONTHS[month_index]
        ),
        "en" => format!(
            "{} {day} {} at {time}",
            EN_DAYS[weekday], EN_MONTHS[month_index]
        ),
        _ => format!("{year:04}-{month:02}-{day:02} {time}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_placeholders_are_named_with_the_allowed_ones() {
        assert!(check("closed", "Torniamo {resumes}.").is_ok());
        let err = check("closed", "Attesa {minutes}").unwrap_err();
        assert!(
            err.contains("`{minutes}`") && err.contains("{resumes}"),
            "{err}"
        );
        let err = check("wait_estimate", "Attesa {wait").unwrap_err();
        assert!(err.contains("without its"), "{err}");
        assert!(check("wait_unknown", "  ").is_err());
    }

    #[test]
    fn templates_are_filled_in() {
        let mut values = BTreeMap::new();
        values.insert("wait", wait_in_words("it", 12));
        values.insert("ahead", "3".to_string());
        assert_eq!(
            render("Ti risponderemo tra {wait}: {ahead} prima di te.", &values),
            "Ti risponderemo tra circa 12 minuti: 3 prima di te."
        );
    }

    #[test]
    fn waits_and_dates_read_naturally_in_each_language() {
        assert_eq!(wait_in_words("it", 1), "circa un minuto");
        assert_eq!(wait_in_words("it", 157), "circa 2 ore e 40 minuti");
        assert_eq!(wait_in_words("en", 64), "about 1 hour");
        assert_eq!(wait_in_words("en", 66), "about 1 hour and 10 minutes");
        assert_eq!(wait_in_words("de", 12), "~12 min");
        let friday = (2026, 12, 4, 4, 8 * 60);
        assert_eq!(when_in_words("it", friday), "venerdì 4 dicembre alle 08:00");
        assert_eq!(when_in_words("en", friday), "Friday 4 December at 08:00");
        assert_eq!(when_in_words("fr", friday), "2026-12-04 08:00");
    }
}
