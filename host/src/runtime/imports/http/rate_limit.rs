//! Keeping a connector polite with its platform: the rate-limit windows it has seen, read
//! from X's `x-rate-limit-*` and Graph's usage headers, per credential and endpoint. Every
//! wait read from a header is bounded by [`MAX_RATE_LIMIT_WAIT`] and every sum saturates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::split_url;
use crate::runtime::bindings::v0_1::http::Request;

/// Rate-limit windows a connector has seen, keyed by credential and endpoint. Shared by all
/// instances of one connector, so a replaced instance does not forget them.
#[derive(Debug, Default)]
pub struct RateLimitBook {
    blocked_until: Mutex<HashMap<String, Instant>>,
}

impl RateLimitBook {
    pub(super) fn blocked(&self, key: &str) -> Option<Duration> {
        let map = self.blocked_until.lock().ok()?;
        let until = *map.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    pub(super) fn block(&self, key: String, wait: Duration) {
        let now = Instant::now();
        // `wait` is bounded already; if a clock near its end still cannot hold it, the
        // furthest representable wait is close enough.
        let until = now
            .checked_add(wait.min(MAX_RATE_LIMIT_WAIT))
            .unwrap_or(now);
        if let Ok(mut map) = self.blocked_until.lock() {
            let entry = map.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

/// The rate-limit window a request falls in: its credential (or none) plus its method and
/// path with numeric ids folded, so `/2/users/123/mentions` and `/2/users/456/mentions`
/// share X's per-endpoint window for one credential.
pub(super) fn window_key(request: &Request) -> String {
    let path = split_url(&request.url)
        .map(|(rest, authority)| {
            rest[authority.len()..]
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let folded: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                ":id"
            } else {
                segment
            }
        })
        .collect();
    format!(
        "{}|{:?}|{}",
        request.credential.as_deref().unwrap_or("-"),
        request.method,
        folded.join("/")
    )
}

/// The longest a connector stays away from one endpoint because of what a response said:
/// X's windows are 15 minutes (24 hours for a few daily caps) and Graph estimates in
/// minutes, so anything past a day is a broken or hostile header, not a window.
pub(crate) const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How long the platform asks us to stay away, from its rate-limit headers; never longer
/// than [`MAX_RATE_LIMIT_WAIT`], whatever the numbers say.
pub(crate) fn rate_limit_wait(status: u16, headers: &[(String, String)]) -> Option<Duration> {
    raw_rate_limit_wait(status, headers).map(|wait| wait.min(MAX_RATE_LIMIT_WAIT))
}

pub(super) fn raw_rate_limit_wait(status: u16, headers: &[(String, String)]) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // X: remaining calls in the window and the window's reset time (epoch seconds).
    let remaining = header("x-rate-limit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
    let reset = header("x-rate-limit-reset").and_then(|v| v.trim().parse::<u64>().ok());
    if (status == 429 || remaining == Some(0))
        && let Some(reset) = reset
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    // Graph: business use case usage carries its own estimate (minutes).
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
    // Graph app-level usage gives no estimate; the window is an hour, so back off a minute.
    if let Some(value) = header("x-app-usage")
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(value)
        && usage_spent(&json)
    {
        return Some(Duration::from_secs(60));
    }
    if status == 429 {
        // No reset given: a short pause rather than none.
        return Some(Duration::from_secs(15));
    }
    None
}

pub(super) fn usage_spent(usage: &serde_json::Value) -> bool {
    ["call_count", "total_cputime", "total_time"]
        .iter()
        .any(|k| usage[*k].as_u64().is_some_and(|v| v >= 100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::v0_1::http::Method;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn x_rate_limit_headers_block_until_the_reset() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = (now + 90).to_string();
        let spent = headers(&[
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", &reset),
        ]);
        let wait = rate_limit_wait(200, &spent).unwrap();
        assert!(
            wait >= Duration::from_secs(88) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        let left = headers(&[
            ("x-rate-limit-remaining", "3"),
            ("x-rate-limit-reset", &reset),
        ]);
        assert_eq!(rate_limit_wait(200, &left), None);
        assert!(rate_limit_wait(429, &left).is_some());
    }

    #[test]
    fn graph_usage_headers_block_when_a_share_reaches_100() {
        let buc = headers(&[(
            "x-business-use-case-usage",
            r#"{"1234":[{"type":"messenger","call_count":100,"total_cputime":12,"total_time":40,"estimated_time_to_regain_access":7}]}"#,
        )]);
        assert_eq!(
            rate_limit_wait(200, &buc),
            Some(Duration::from_secs(7 * 60))
        );
        let app = headers(&[(
            "x-app-usage",
            r#"{"call_count":12,"total_cputime":100,"total_time":30}"#,
        )]);
        assert_eq!(rate_limit_wait(200, &app), Some(Duration::from_secs(60)));
        let fine = headers(&[(
            "x-app-usage",
            r#"{"call_count":12,"total_cputime":20,"total_time":30}"#,
        )]);
        assert_eq!(rate_limit_wait(200, &fine), None);
    }

    /// A small deterministic generator, so a failure names the seed that found it.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn number(&mut self) -> String {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            match self.next() % 12 {
                0 => u64::MAX.to_string(),
                1 => "0".to_string(),
                2 => (now + self.next() % 100_000).to_string(),
                3 => now.saturating_sub(self.next() % 100_000).to_string(),
                4 => i64::MAX.to_string(),
                5 => format!("-{}", self.next() % 1000),
                6 => format!("{}.{}", self.next() % 1000, self.next() % 1000),
                7 => "1e300".to_string(),
                8 => "99999999999999999999999999999999".to_string(),
                9 => format!(" {} ", self.next()),
                10 => String::new(),
                _ => self.next().to_string(),
            }
        }
    }

    #[test]
    fn no_rate_limit_header_value_panics_or_holds_a_connector_past_a_day() {
        let book = RateLimitBook::default();
        for seed in 1..=20_000u64 {
            let mut g = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let status = if g.next().is_multiple_of(2) { 429 } else { 200 };
            let usage = format!(
                r#"{{"{}":[{{"type":"messenger","call_count":{},"total_cputime":{},"total_time":{},"estimated_time_to_regain_access":{}}}]}}"#,
                g.next() % 10_000,
                g.number(),
                g.number(),
                g.number(),
                g.number()
            );
            let app = format!(
                r#"{{"call_count":{},"total_cputime":{},"total_time":{}}}"#,
                g.number(),
                g.number(),
                g.number()
            );
            let all = [
                ("x-rate-limit-remaining", g.number()),
                ("x-rate-limit-reset", g.number()),
                ("x-business-use-case-usage", usage),
                ("x-app-usage", app),
            ];
            let picked: Vec<(&str, &str)> = all
                .iter()
                .filter(|_| !g.next().is_multiple_of(3))
                .map(|(n, v)| (*n, v.as_str()))
                .collect();
            let wait = rate_limit_wait(status, &headers(&picked));
            if let Some(wait) = wait {
                assert!(wait <= MAX_RATE_LIMIT_WAIT, "seed {seed}: {wait:?}");
                book.block(format!("key-{}", seed % 7), wait);
            }
            assert!(
                book.blocked("key-0")
                    .is_none_or(|w| w <= MAX_RATE_LIMIT_WAIT)
            );
        }
    }

    #[test]
    fn the_attack_values_give_a_bounded_wait() {
        let x = headers(&[
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "18446744073709551615"),
        ]);
        assert_eq!(rate_limit_wait(200, &x), Some(MAX_RATE_LIMIT_WAIT));
        let graph = headers(&[(
            "x-business-use-case-usage",
            r#"{"1":[{"call_count":100,"estimated_time_to_regain_access":18446744073709551615}]}"#,
        )]);
        assert_eq!(rate_limit_wait(200, &graph), Some(MAX_RATE_LIMIT_WAIT));
        RateLimitBook::default().block("k".to_string(), Duration::MAX);
    }

    #[test]
    fn window_keys_fold_numeric_ids() {
        let request = |url: &str| Request {
            method: Method::Get,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            credential: Some("tim".to_string()),
            timeout_ms: None,
        };
        assert_eq!(
            window_key(&request(
                "https://api.x.com/2/users/123/mentions?since_id=9"
            )),
            window_key(&request("https://api.x.com/2/users/456/mentions"))
        );
        assert_ne!(
            window_key(&request("https://api.x.com/2/users/123/mentions")),
            window_key(&request("https://api.x.com/2/dm_events"))
        );
    }
}
