//! Reading how long a platform asks a connector to stay away, from the headers of its
//! answers. The host reads every common family by itself, so a new channel is polite
//! without saying anything:
//!
//! | family | headers | reset written as |
//! |---|---|---|
//! | HTTP (RFC 9110 §10.2.3) | `Retry-After` on a 429 or 503 | seconds, or an HTTP date |
//! | IETF (draft-ietf-httpapi-ratelimit-headers, -08 and later) | `RateLimit: "policy";r=0;t=30`, `RateLimit-Policy: "policy";q=100;w=60` | seconds (`t`), else the policy's window (`w`) |
//! | IETF (drafts up to -07) | `RateLimit: limit=100, remaining=0, reset=30`, or `RateLimit-Remaining` + `RateLimit-Reset` | seconds |
//! | X | `x-rate-limit-remaining` + `x-rate-limit-reset` | epoch seconds |
//! | common | `X-RateLimit-Remaining` + `X-RateLimit-Reset` | seconds, epoch seconds or an RFC 3339 time (Mastodon), told apart by their shape |
//! | Graph | `x-business-use-case-usage`, `x-app-usage` | an estimate in minutes, or none |
//!
//! A connector whose platform uses other header names, or a reset whose shape is
//! ambiguous, declares them in the `centralino-rate-limits` custom section
//! (`centralino_sdk::rate_limits!`), read at inspection:
//!
//! ```json
//! {"remaining": "x-quota-left", "reset": "x-quota-reset", "reset_format": "delta-seconds"}
//! ```
//!
//! The declaration adds to the families above; it never turns one off. Every wait is
//! bounded by [`MAX_RATE_LIMIT_WAIT`] and no header value, however hostile, panics.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Name of the custom section that carries a connector's rate-limit declaration.
pub const RATE_LIMITS_SECTION: &str = "centralino-rate-limits";

/// The longest a connector stays away from one endpoint because of what a response said:
/// X's windows are 15 minutes (24 hours for a few daily caps) and Graph estimates in
/// minutes, so anything past a day is a broken or hostile header, not a window.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The pause after a 429 that says nothing about when to come back.
const BARE_429_WAIT: Duration = Duration::from_secs(15);

/// Values at or above this are read as epoch seconds rather than a count of seconds in
/// `auto` mode: 10⁹ seconds is 31 years, never a window, and 2001-09-09 as a time.
const EPOCH_THRESHOLD: f64 = 1_000_000_000.0;

/// How a reset header writes its time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ResetFormat {
    /// Told apart by shape: an RFC 3339 or HTTP date, a number of seconds from now, or
    /// (from 10⁹ on) seconds since the epoch.
    #[default]
    Auto,
    /// Seconds from now (`RateLimit-Reset`, Discord's `X-RateLimit-Reset-After`).
    DeltaSeconds,
    /// Seconds since 1970 (X, GitHub), fractions allowed.
    EpochSeconds,
    /// Milliseconds since 1970.
    EpochMillis,
    /// An RFC 3339 time (Mastodon: `2026-12-03T16:30:00.000Z`).
    Rfc3339,
    /// An HTTP date (`Thu, 03 Dec 2026 16:30:00 GMT`).
    HttpDate,
}

/// A connector's own rate-limit headers, when its platform's are not among those the
/// host reads by itself (see the [module](self) documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitDeclaration {
    /// The header that counts the calls left in the window; `0` means spent.
    #[serde(default)]
    pub remaining: Option<String>,
    /// The header that says when the window resets.
    #[serde(default)]
    pub reset: Option<String>,
    /// How [`reset`](Self::reset) is written.
    #[serde(default)]
    pub reset_format: ResetFormat,
}

impl RateLimitDeclaration {
    /// Parses the section's bytes; the error names the section and what was wrong.
    pub fn parse(bytes: &[u8]) -> Result<RateLimitDeclaration, String> {
        let declaration: RateLimitDeclaration = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "the `{RATE_LIMITS_SECTION}` section is not a valid rate-limit declaration: {e}"
            )
        })?;
        for name in [&declaration.remaining, &declaration.reset]
            .into_iter()
            .flatten()
        {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
            if !valid {
                return Err(format!(
                    "the `{RATE_LIMITS_SECTION}` section names `{name}`, which is not an HTTP \
                     header name"
                ));
            }
        }
        if declaration.reset.is_none() {
            return Err(format!(
                "the `{RATE_LIMITS_SECTION}` section names no `reset` header: without it the \
                 host cannot tell how long to wait"
            ));
        }
        Ok(declaration)
    }
}

/// How long the platform asks us to stay away, read at `now_ms` from the answer's status
/// and headers (and the connector's declaration, if any); never longer than
/// [`MAX_RATE_LIMIT_WAIT`], whatever the numbers say.
#[doc(hidden)]
pub fn wait_from_headers(
    status: u16,
    headers: &[(String, String)],
    declaration: Option<&RateLimitDeclaration>,
    now_ms: u64,
) -> Option<Duration> {
    raw_wait(status, headers, declaration, now_ms).map(|wait| wait.min(MAX_RATE_LIMIT_WAIT))
}

/// The unbounded wait. Of every family that says the window is spent, the longest wait
/// wins: the platform is obeyed by the strictest thing it said.
fn raw_wait(
    status: u16,
    headers: &[(String, String)],
    declaration: Option<&RateLimitDeclaration>,
    now_ms: u64,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let refused = status == 429;
    let mut waits: Vec<Duration> = Vec::new();

    if let Some(declared) = declaration
        && let Some(reset_name) = &declared.reset
    {
        let remaining = declared.remaining.as_deref().and_then(header);
        if (refused || remaining.is_some_and(is_zero))
            && let Some(wait) =
                header(reset_name).and_then(|v| reset_wait(v, declared.reset_format, now_ms))
        {
            waits.push(wait);
        }
    }
    if refused || status == 503 {
        waits.extend(header("retry-after").and_then(|v| {
            reset_wait(v, ResetFormat::DeltaSeconds, now_ms)
                .or_else(|| reset_wait(v, ResetFormat::HttpDate, now_ms))
        }));
    }
    waits.extend(ietf_wait(&header, refused));
    // X (epoch seconds), and the common family whose reset comes in every shape.
    for (remaining, reset) in [
        ("x-rate-limit-remaining", "x-rate-limit-reset"),
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
    ] {
        if (refused || header(remaining).is_some_and(is_zero))
            && let Some(wait) = header(reset).and_then(|v| reset_wait(v, ResetFormat::Auto, now_ms))
        {
            waits.push(wait);
        }
    }
    waits.extend(graph_wait(&header));
    match waits.into_iter().max() {
        Some(wait) => Some(wait),
        // No reset given: a short pause rather than none.
        None if refused => Some(BARE_429_WAIT),
        None => None,
    }
}

fn is_zero(value: &str) -> bool {
    value.parse::<f64>().is_ok_and(|n| n <= 0.0)
}

/// How long until the time `value` names, written as `format`; `None` if it is not one.
/// A time already past is a wait of one second (the platform said no just now).
fn reset_wait(value: &str, format: ResetFormat, now_ms: u64) -> Option<Duration> {
    let seconds = |v: &str| v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    let from_epoch_ms = |at_ms: f64| {
        let left = at_ms - now_ms as f64;
        Some(duration_from_secs(left / 1000.0))
    };
    match format {
        ResetFormat::DeltaSeconds => seconds(value).map(duration_from_secs),
        ResetFormat::EpochSeconds => seconds(value).and_then(|s| from_epoch_ms(s * 1000.0)),
        ResetFormat::EpochMillis => seconds(value).and_then(from_epoch_ms),
        ResetFormat::Rfc3339 => crate::calendar::parse_timestamp(value)
            .ok()
            .and_then(|ms| from_epoch_ms(ms as f64)),
        ResetFormat::HttpDate => httpdate::parse_http_date(value)
            .ok()
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|at| from_epoch_ms(at.as_millis() as f64)),
        ResetFormat::Auto => match seconds(value) {
            Some(n) if n >= EPOCH_THRESHOLD => from_epoch_ms(n * 1000.0),
            Some(n) => Some(duration_from_secs(n)),
            None => reset_wait(value, ResetFormat::Rfc3339, now_ms)
                .or_else(|| reset_wait(value, ResetFormat::HttpDate, now_ms)),
        },
    }
}

/// Seconds (possibly fractional, possibly already past) as a wait of at least a second,
/// saturating instead of overflowing.
fn duration_from_secs(seconds: f64) -> Duration {
    let bounded = seconds.clamp(1.0, MAX_RATE_LIMIT_WAIT.as_secs_f64());
    Duration::try_from_secs_f64(bounded).unwrap_or(MAX_RATE_LIMIT_WAIT)
}

/// The IETF fields, in the current draft's structured form and the older drafts' forms.
fn ietf_wait<'h>(header: &impl Fn(&str) -> Option<&'h str>, refused: bool) -> Option<Duration> {
    let mut wait: Option<Duration> = None;
    let mut longest = |candidate: Option<Duration>| {
        if let Some(candidate) = candidate {
            wait = Some(wait.map_or(candidate, |w| w.max(candidate)));
        }
    };
    let spent = |remaining: Option<f64>| refused || remaining.is_some_and(|r| r <= 0.0);
    let number = |v: &str| v.trim().parse::<f64>().ok().filter(|n| n.is_finite());
    if let Some(field) = header("ratelimit") {
        let windows = header("ratelimit-policy")
            .map(policy_windows)
            .unwrap_or_default();
        for member in split_members(field) {
            let (name, params) = member_parts(member);
            if let Some((key, value)) = name.split_once('=') {
                // Draft -07: a dictionary `limit=…, remaining=…, reset=…`, one member each.
                if key.trim().eq_ignore_ascii_case("reset") && spent(dictionary(field, "remaining"))
                {
                    longest(number(value).map(duration_from_secs));
                }
                continue;
            }
            let remaining = params.get("r").and_then(|v| number(v));
            if !spent(remaining) {
                continue;
            }
            let seconds = params
                .get("t")
                .and_then(|v| number(v))
                .or_else(|| windows.get(name.trim()).copied());
            longest(seconds.map(duration_from_secs));
        }
    }
    // Drafts up to -06: separate fields, reset in seconds.
    if spent(header("ratelimit-remaining").and_then(number)) {
        longest(
            header("ratelimit-reset")
                .and_then(number)
                .map(duration_from_secs),
        );
    }
    wait
}

/// Splits a structured-field list on the commas outside quoted strings.
fn split_members(field: &str) -> Vec<&str> {
    let mut members = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (at, c) in field.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                members.push(&field[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    members.push(&field[start..]);
    members
}

/// A member's name (quotes removed) and its `;key=value` parameters.
fn member_parts(member: &str) -> (&str, std::collections::HashMap<&str, &str>) {
    let mut parts = member.split(';');
    let name = parts.next().unwrap_or_default().trim().trim_matches('"');
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    (name, params)
}

/// The value of `key` in a draft -07 dictionary field.
fn dictionary(field: &str, key: &str) -> Option<f64> {
    split_members(field).into_iter().find_map(|member| {
        let (k, v) = member.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().parse::<f64>().ok())
            .flatten()
    })
}

/// Each policy's window (`w`, seconds) from `RateLimit-Policy`, by policy name.
fn policy_windows(field: &str) -> std::collections::HashMap<&str, f64> {
    split_members(field)
        .into_iter()
        .filter_map(|member| {
            let (name, params) = member_parts(member);
            let window = params.get("w")?.parse::<f64>().ok()?;
            window.is_finite().then_some((name, window))
        })
        .collect()
}

/// Graph's usage headers: business use case usage carries its own estimate (minutes);
/// app-level usage gives none, and its window is an hour, so a minute's pause.
fn graph_wait<'h>(header: &impl Fn(&str) -> Option<&'h str>) -> Option<Duration> {
    if let Some(value) = header("x-business-use-case-usage")
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(value)
    {
        let mut minutes: Option<u64> = None;
        for entries in json.as_object().into_iter().flat_map(|o| o.values()) {
            for entry in entries.as_array().into_iter().flatten() {
                if usage_spent(entry) {
                    let estimate = entry["estimated_time_to_regain_access"]
                        .as_u64()
                        .unwrap_or(1)
                        .max(1);
                    minutes = Some(minutes.map_or(estimate, |m| m.max(estimate)));
                }
            }
        }
        if let Some(minutes) = minutes {
            return Some(Duration::from_secs(minutes.saturating_mul(60)));
        }
    }
    if let Some(value) = header("x-app-usage")
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(value)
        && usage_spent(&json)
    {
        return Some(Duration::from_secs(60));
    }
    None
}

fn usage_spent(usage: &serde_json::Value) -> bool {
    ["call_count", "total_cputime", "total_time"]
        .iter()
        .any(|k| usage[*k].as_u64().is_some_and(|v| v >= 100))
}

#[cfg(test)]
mod tests;
