//! Brands: what a customer is told while they wait, in their language and the brand's
//! voice, and the service levels the brand promises.
//!
//! A [`Brand`] (`[[brands]]` in `centralino.toml`, or [`HostBuilder::brand`](crate::HostBuilder::brand))
//! holds:
//!
//! - **templates** per language ([`Templates`]): the wait estimate, "no estimate yet",
//!   "nobody is at work now" and "closed, we resume at …", with placeholders the host
//!   fills in ([`PLACEHOLDERS`]);
//! - **business hours**: a [`TimeZone`], [`WeeklyHours`] and [`Holiday`]s (`italy`: Italy's
//!   public holidays, Easter Monday computed), so a customer writing at 23:00 or on a
//!   holiday is told when service resumes, in the brand's time zone;
//! - whether customers get these texts as **automatic replies** (`auto_reply`, off by
//!   default: a host never answers publicly on a brand's behalf unless told to), and how
//!   often a wait estimate that turned out wrong is corrected;
//! - **service levels** ([`ServiceLevels`]): a first-response target (per priority too),
//!   an at-risk threshold, and what the routing chain does at each step.
//!
//! The customer's language is the one the platform detected (the message's `extra` key
//! `lang`, which contract 0.1 connectors fill in where the platform says, as X does) when
//! the brand has templates in it; otherwise the brand's `language`.

mod hours;
mod templates;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use hours::{Holiday, TimeZone, WeeklyHours};
pub use templates::{PLACEHOLDERS, Templates};

pub(crate) use hours::BusinessHours;

use crate::routing::WaitEstimate;

/// One brand's answers, hours and service levels. Build with [`Brand::new`] and set the
/// fields, or read it from `[[brands]]`. Every default is off: no automatic replies, no
/// hours (always open), no service levels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Brand {
    /// The brand, as accounts name it (`brand = "tim"`). Required.
    pub id: String,
    /// The language customers are answered in when theirs is unknown or has no
    /// templates (`it`). Default: `en`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Whether waiting customers get the templates as automatic replies (from the account
    /// they wrote to; publicly, for a public post). Default: `false`.
    #[serde(default)]
    pub auto_reply: bool,
    /// Time zone of the business hours and of `{resumes}`. Default: `UTC`.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Weekly business hours (`mon = ["08:00-22:00"]`). Default: none, always open.
    #[serde(default)]
    pub hours: Option<WeeklyHours>,
    /// Days closed all day: `"italy"` and/or dates (`"2026-12-24"`). Default: none.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// A waiting customer whose estimate turned out wrong by more than
    /// `estimate_margin_percent` is told the new one, at most once per this many minutes
    /// per customer. Default: none (the estimate is sent once).
    #[serde(default)]
    pub estimate_update_minutes: Option<u64>,
    /// How far (in percent of the wait first told) the new estimate must be from the old
    /// before it is sent. Default: 50.
    #[serde(default = "default_margin")]
    pub estimate_margin_percent: u32,
    /// `[brands.templates.<language>]`. Default: none.
    #[serde(default)]
    pub templates: BTreeMap<String, Templates>,
    /// `[brands.service_levels]`. Default: none.
    #[serde(default)]
    pub service_levels: Option<ServiceLevels>,
}

fn default_language() -> String {
    "en".to_string()
}

fn default_margin() -> u32 {
    50
}

fn default_at_risk() -> u32 {
    80
}

/// What the routing chain does when a conversation reaches a service-level step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ServiceLevelAction {
    /// Only the CRM event and the metric.
    #[default]
    None,
    /// The conversation's priority is raised to `raise_priority_to` and, while it waits,
    /// it goes through the chain again.
    RaisePriority,
    /// An assignee who has not answered loses it (as at an offer timeout) and the chain
    /// places it again without them; a waiting one goes through the chain again.
    Reroute,
}

/// `[brands.service_levels]`: the first-response target and what happens on the way to
/// missing it. Time counts only within business hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceLevels {
    /// Minutes from the customer's first message to an operator's first reply. Required.
    pub first_response_minutes: u64,
    /// Targets for urgent conversations: `{ "7" = 10 }` gives priority 7 and above 10
    /// minutes (the highest threshold met applies). Default: none.
    #[serde(default)]
    pub by_priority: BTreeMap<String, u64>,
    /// Percent of the target after which a conversation is at risk. Default: 80.
    #[serde(default = "default_at_risk")]
    pub at_risk_percent: u32,
    /// What the chain does at risk. Default: `none`.
    #[serde(default)]
    pub on_at_risk: ServiceLevelAction,
    /// What the chain does on a breach. Default: `none`.
    #[serde(default)]
    pub on_breach: ServiceLevelAction,
    /// The priority `raise-priority` gives. Default: 8.
    #[serde(default = "default_raise")]
    pub raise_priority_to: u8,
}

fn default_raise() -> u8 {
    8
}

impl ServiceLevels {
    /// A target of `first_response_minutes`, at risk at 80%, no action.
    pub fn new(first_response_minutes: u64) -> Self {
        ServiceLevels {
            first_response_minutes,
            by_priority: BTreeMap::new(),
            at_risk_percent: default_at_risk(),
            on_at_risk: ServiceLevelAction::None,
            on_breach: ServiceLevelAction::None,
            raise_priority_to: default_raise(),
        }
    }

    /// The target for a conversation of `priority`, in milliseconds.
    pub(crate) fn target_ms(&self, priority: u8) -> u64 {
        let minutes = self
            .by_priority
            .iter()
            .filter_map(|(level, minutes)| Some((level.parse::<u8>().ok()?, *minutes)))
            .filter(|(level, _)| priority >= *level)
            .max_by_key(|(level, _)| *level)
            .map_or(self.first_response_minutes, |(_, minutes)| minutes);
        minutes.saturating_mul(60_000)
    }
}

/// Which template an answer used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    WaitEstimate,
    WaitUnknown,
    NobodyAtWork,
    Closed,
}

/// An automatic answer, composed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) kind: AnswerKind,
    /// The wait told, in minutes, for a wait estimate.
    pub(crate) minutes: Option<u64>,
}

impl Brand {
    /// A brand with every default (no automatic replies, always open, answers in `en`).
    pub fn new(id: impl Into<String>) -> Self {
        Brand {
            id: id.into(),
            language: default_language(),
            auto_reply: false,
            time_zone: TimeZone::utc(),
            hours: None,
            holidays: Vec::new(),
            estimate_update_minutes: None,
            estimate_margin_percent: default_margin(),
            templates: BTreeMap::new(),
            service_levels: None,
        }
    }

    /// Every problem, as (key under the brand's table, what is wrong and expected).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.id.is_empty() {
            problems.push((
                "id".to_string(),
                "is empty: name the brand as accounts do".to_string(),
            ));
        }
        if !is_language(&self.language) {
            problems.push((
                "language".to_string(),
                format!(
                    "`{}` is not a language: write its code in lower case (`it`, `en`)",
                    self.language
                ),
            ));
        }
        let needs_default = self.auto_reply || !self.templates.is_empty();
        if needs_default && !self.templates.contains_key(&self.language) {
            let have: Vec<&str> = self.templates.keys().map(String::as_str).collect();
            let have = if have.is_empty() {
                "there are none".to_string()
            } else {
                format!("languages with templates: {}", have.join(", "))
            };
            problems.push((
                "templates".to_string(),
                format!(
                    "no templates in `{}`, the brand's language ({have}): add \
                     `[brands.templates.{}]` with `wait_estimate`, `wait_unknown`, \
                     `nobody_at_work` and `closed`",
                    self.language, self.language
                ),
            ));
        }
        for (language, templates) in &self.templates {
            if !is_language(language) {
                problems.push((
                    format!("templates.{language}"),
                    format!(
                        "`{language}` is not a language: write its code in lower case (`it`, `en`)"
                    ),
                ));
            }
            for (key, text) in templates.by_key() {
                if let Err(message) = templates::check(key, text) {
                    problems.push((format!("templates.{language}.{key}"), message));
                }
            }
        }
        if self.estimate_update_minutes == Some(0) {
            problems.push((
                "estimate_update_minutes".to_string(),
                "must be at least 1 (leave it out to send the estimate once)".to_string(),
            ));
        }
        if self.estimate_margin_percent == 0 {
            problems.push((
                "estimate_margin_percent".to_string(),
                "must be at least 1".to_string(),
            ));
        }
        if let Some(levels) = &self.service_levels {
            if levels.first_response_minutes == 0 {
                problems.push((
                    "service_levels.first_response_minutes".to_string(),
                    "must be at least 1".to_string(),
                ));
            }
            if !(1..=99).contains(&levels.at_risk_percent) {
                problems.push((
                    "service_levels.at_risk_percent".to_string(),
                    "must be between 1 and 99 (percent of the target)".to_string(),
                ));
            }
            for (level, minutes) in &levels.by_priority {
                if level.parse::<u8>().is_err() {
                    problems.push((
                        format!("service_levels.by_priority.{level}"),
                        format!("`{level}` is not a priority: write a whole number from 0 to 255"),
                    ));
                }
                if *minutes == 0 {
                    problems.push((
                        format!("service_levels.by_priority.{level}"),
                        "must be at least 1 minute".to_string(),
                    ));
                }
            }
        }
        problems
    }

    /// The brand's business hours.
    pub(crate) fn business_hours(&self) -> BusinessHours {
        BusinessHours {
            zone: self.time_zone.clone(),
            weekly: self.hours.clone(),
            holidays: self.holidays.clone(),
        }
    }

    /// The language a customer is answered in: theirs when the brand has templates in
    /// it, the brand's otherwise.
    pub(crate) fn language_for<'a>(&'a self, customer: Option<&'a str>) -> &'a str {
        customer
            .filter(|language| self.templates.contains_key(*language))
            .unwrap_or(&self.language)
    }

    /// What a waiting customer is told now.
    pub(crate) fn answer(
        &self,
        customer: Option<&str>,
        estimate: &WaitEstimate,
        now: u64,
    ) -> Answer {
        let language = self.language_for(customer);
        let fallback = Templates::fallback();
        let templates = self.templates.get(language).unwrap_or(&fallback);
        compose(
            templates,
            language,
            &self.id,
            &self.business_hours(),
            estimate,
            now,
        )
    }
}

/// The text of the CRM's queue event for a conversation whose brand has no answers.
pub(crate) fn fallback_answer(estimate: &WaitEstimate, now: u64) -> Answer {
    compose(
        &Templates::fallback(),
        "en",
        "",
        &BusinessHours::default(),
        estimate,
        now,
    )
}

fn compose(
    templates: &Templates,
    language: &str,
    brand: &str,
    hours: &BusinessHours,
    estimate: &WaitEstimate,
    now: u64,
) -> Answer {
    let position = estimate.position();
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("position", position.to_string());
    values.insert("ahead", position.saturating_sub(1).to_string());
    values.insert("brand", brand.to_string());
    // Outside business hours with nobody at work the customer hears when service
    // resumes; anyone at work (a late shift) answers, so the estimate stands.
    let closed = match estimate {
        WaitEstimate::NobodyAtWork { .. } => hours.resumes_at(now),
        _ => None,
    };
    let (template, kind, minutes) = match (closed, estimate) {
        (Some(resumes), _) => {
            let when = if resumes == u64::MAX {
                "?".to_string()
            } else {
                templates::when_in_words(language, hours.local_time(resumes))
            };
            values.insert("resumes", when);
            (&templates.closed, AnswerKind::Closed, None)
        }
        (None, WaitEstimate::About { minutes, .. }) => {
            values.insert("wait", templates::wait_in_words(language, *minutes));
            values.insert("minutes", minutes.to_string());
            (
                &templates.wait_estimate,
                AnswerKind::WaitEstimate,
                Some(*minutes),
            )
        }
        (None, WaitEstimate::NoHistory { .. }) => {
            (&templates.wait_unknown, AnswerKind::WaitUnknown, None)
        }
        (None, WaitEstimate::NobodyAtWork { .. }) => {
            (&templates.nobody_at_work, AnswerKind::NobodyAtWork, None)
        }
    };
    Answer {
        text: templates::render(template, &values),
        kind,
        minutes,
    }
}

/// A language code as routing uses it: two or three lower-case letters.
fn is_language(text: &str) -> bool {
    (2..=3).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tim() -> Brand {
        let text = r#"
            id = "tim"
            language = "it"
            auto_reply = true
            time_zone = "Europe/Rome"
            holidays = ["italy"]
            [hours]
            mon = ["08:00-22:00"]
            tue = ["08:00-22:00"]
            wed = ["08:00-22:00"]
            thu = ["08:00-22:00"]
            fri = ["08:00-22:00"]
            [templates.it]
            wait_estimate = "Ti risponderemo tra {wait}: {ahead} prima di te."
            wait_unknown = "Ti risponderà il primo operatore libero."
            nobody_at_work = "Nessun operatore è in servizio ora."
            closed = "Siamo chiusi: riapriamo {resumes}."
            [templates.en]
            wait_estimate = "We will answer in {wait}: {ahead} ahead of you."
            wait_unknown = "The first free operator will answer."
            nobody_at_work = "Nobody is at work right now."
            closed = "We are closed: we are back {resumes}."
        "#;
        toml::from_str(text).unwrap()
    }

    #[test]
    fn customers_are_answered_in_their_language_or_the_brands() {
        let brand = tim();
        assert!(brand.problems().is_empty(), "{:?}", brand.problems());
        // Thursday 3 December 2026, 23:00 in Rome.
        let night = crate::calendar::parse_timestamp("2026-12-03T22:00:00Z").unwrap();
        let estimate = WaitEstimate::NobodyAtWork { position: 1 };
        assert_eq!(
            brand.answer(Some("it"), &estimate, night).text,
            "Siamo chiusi: riapriamo venerdì 4 dicembre alle 08:00."
        );
        assert_eq!(
            brand.answer(Some("en"), &estimate, night).text,
            "We are closed: we are back Friday 4 December at 08:00."
        );
        // Someone on a late shift: the estimate stands, the customer will be answered.
        let late = WaitEstimate::About {
            position: 1,
            minutes: 5,
        };
        assert_eq!(
            brand.answer(Some("en"), &late, night).text,
            "We will answer in about 5 minutes: 0 ahead of you."
        );
        // German has no templates: Italian, the brand's language.
        assert_eq!(brand.language_for(Some("de")), "it");
        let noon = crate::calendar::parse_timestamp("2026-12-03T11:00:00Z").unwrap();
        let about = WaitEstimate::About {
            position: 4,
            minutes: 12,
        };
        assert_eq!(
            brand.answer(None, &about, noon).text,
            "Ti risponderemo tra circa 12 minuti: 3 prima di te."
        );
    }

    #[test]
    fn a_missing_language_and_an_unknown_placeholder_are_named() {
        let mut brand = tim();
        brand.language = "fr".to_string();
        if let Some(it) = brand.templates.get_mut("it") {
            it.closed = "Chiusi fino a {domani}".to_string();
        }
        let problems = brand.problems();
        assert!(
            problems
                .iter()
                .any(|(key, m)| key == "templates" && m.contains("`fr`") && m.contains("en, it")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|(key, m)| key == "templates.it.closed" && m.contains("`{domani}`")),
            "{problems:?}"
        );
    }

    #[test]
    fn urgent_conversations_have_their_own_target() {
        let mut levels = ServiceLevels::new(30);
        levels.by_priority.insert("5".to_string(), 15);
        levels.by_priority.insert("8".to_string(), 5);
        assert_eq!(levels.target_ms(0), 30 * 60_000);
        assert_eq!(levels.target_ms(6), 15 * 60_000);
        assert_eq!(levels.target_ms(9), 5 * 60_000);
    }
}
