//! Keeping a connector polite with its platform: the rate-limit windows it has seen, per
//! credential and endpoint. What a response's headers ask for is read by
//! [`crate::rate_limits`] (every common family, plus what the connector declares); every
//! wait is bounded by [`MAX_RATE_LIMIT_WAIT`] and every sum saturates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::split_url;
use crate::bindings::latest::http::Request;
use crate::rate_limits::{MAX_RATE_LIMIT_WAIT, RateLimitDeclaration};

/// Rate-limit windows a connector has seen, keyed by credential and endpoint. Shared by all
/// instances of one connector, so a replaced instance does not forget them.
#[derive(Debug, Default)]
pub struct RateLimitBook {
    blocked_until: Mutex<HashMap<String, Instant>>,
    /// The connector's own rate-limit headers, when it declares them.
    declaration: Option<RateLimitDeclaration>,
}

impl RateLimitBook {
    /// A book for a connector that declared `declaration` (see [`crate::rate_limits`]).
    pub(crate) fn new(declaration: Option<RateLimitDeclaration>) -> RateLimitBook {
        RateLimitBook {
            blocked_until: Mutex::default(),
            declaration,
        }
    }

    /// How long the platform asks this connector to stay away, from an answer.
    pub(super) fn wait_from(&self, status: u16, headers: &[(String, String)]) -> Option<Duration> {
        crate::rate_limits::wait_from_headers(
            status,
            headers,
            self.declaration.as_ref(),
            crate::calendar::now_ms(),
        )
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::latest::http::Method;

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
