//! `centralino:plugin/http`: outgoing HTTP on the plugin's behalf.
//!
//! Before anything leaves the host a request must pass these checks: its host is on the
//! plugin's allow-list, it sets none of the headers the host owns (`authorization`,
//! `proxy-authorization`, `host`), and any credential it names is granted to it and goes
//! over `https://` (plain `http://` only to loopback or to a host the admin allow-listed
//! as `http://host:port`, a local emulator). The host then attaches the credential (a
//! bearer header, a query parameter for Graph, a path segment for bot APIs), so tokens
//! never enter the sandbox; and since a server may echo a request (an error page quoting
//! it), every copy of the credential in the response is replaced by `[credential]` before
//! the plugin, the store or a log line sees it.
//!
//! The host also keeps the connector polite with the platform:
//! - it reads X's `x-rate-limit-remaining`/`x-rate-limit-reset` and Graph's `x-app-usage`
//!   and `x-business-use-case-usage`, and holds back requests while a window is spent
//!   (briefly, by waiting; longer, by answering `rate-limited` at once);
//! - it retries idempotent requests (GET, HEAD, PUT, DELETE) after a 5xx, a timeout or a
//!   failed connection, with jittered exponential backoff; a POST is never retried, since
//!   the platform may have acted on it.
//!
//! Responses larger than the cap are refused rather than truncated. Waits read from headers
//! are bounded ([`MAX_RATE_LIMIT_WAIT`]) and every sum with them saturates: a platform (or
//! anyone in its place) answering `x-rate-limit-reset: 18446744073709551615` costs a
//! connector at most a day's pause on one endpoint, never a panic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capabilities::{CREDENTIAL_PLACEHOLDER, Credential};
use crate::runtime::bindings::v0_1::http::{Host, HttpError, Method, Request, Response};
use crate::runtime::state::PluginState;

/// Whether `url`'s host (with its port, when one is given) is on `allowed`.
///
/// Entries are `host` (any port) or `host:port`, optionally written `http://host[:port]` to
/// mark a local emulator that may receive credentials over plain HTTP; matching is exact
/// and case-insensitive, so `api.x.com` does not admit `evil-api.x.com`.
pub fn host_allowed(url: &str, allowed: &[String]) -> Result<bool, String> {
    Ok(matching_entry(url, allowed)?.is_some())
}

/// The allow-list entry admitting `url`'s host, if any.
fn matching_entry<'a>(url: &str, allowed: &'a [String]) -> Result<Option<&'a str>, String> {
    let (_, authority) = split_url(url)?;
    let authority = authority.to_ascii_lowercase();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    Ok(allowed
        .iter()
        .find(|entry| {
            let entry = entry.to_ascii_lowercase();
            let entry = entry.strip_prefix("http://").unwrap_or(&entry);
            entry == authority || entry == host
        })
        .map(String::as_str))
}

/// Whether a credential may travel to `url`: over TLS always; over plain HTTP only to this
/// machine (loopback) or to a host the admin marked as a local emulator (`http://…` entry).
fn credential_transport_allowed(url: &str, entry: &str) -> bool {
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return true;
    }
    if entry
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return true;
    }
    let Ok((_, authority)) = split_url(url) else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Request headers the host sets itself: a plugin naming one is refused.
const RESERVED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "host"];

/// Splits an http(s) URL into (scheme-less rest, authority), refusing user-info.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}` has no plain host"));
    }
    Ok((rest, authority))
}

/// The HTTP client shared by every plugin of a runtime (one connection pool).
#[derive(Clone, Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("centralino/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("creating the HTTP client: {e}"))?;
        Ok(HttpTransport { client })
    }
}

/// Rate-limit windows a connector has seen, keyed by credential and endpoint. Shared by all
/// instances of one connector, so a replaced instance does not forget them.
#[derive(Debug, Default)]
pub struct RateLimitBook {
    blocked_until: Mutex<HashMap<String, Instant>>,
}

impl RateLimitBook {
    fn blocked(&self, key: &str) -> Option<Duration> {
        let map = self.blocked_until.lock().ok()?;
        let until = *map.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    fn block(&self, key: String, wait: Duration) {
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

/// What one plugin instance uses for HTTP: the shared transport, its connector's
/// rate-limit book, and the limits from its config.
#[derive(Clone, Debug)]
pub(crate) struct HttpContext {
    pub(crate) transport: HttpTransport,
    pub(crate) book: Arc<RateLimitBook>,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) retries: u32,
    pub(crate) hold: Duration,
}

impl Host for PluginState {
    async fn fetch(&mut self, request: Request) -> Result<Response, HttpError> {
        let started = Instant::now();
        let result = self.fetch_checked(request).await;
        // Waiting on the network does not count against the plugin's call deadline.
        self.call_clock.waited += started.elapsed();
        if let Err(HttpError::Denied(reason)) = &result {
            self.denied(reason);
        }
        result
    }
}

impl PluginState {
    async fn fetch_checked(&mut self, request: Request) -> Result<Response, HttpError> {
        let entry = matching_entry(&request.url, &self.grants.allowed_hosts)
            .map_err(HttpError::InvalidRequest)?;
        let Some(entry) = entry else {
            return Err(HttpError::Denied(format!(
                "plugin {} may not reach `{}`: not on its allow-list",
                self.plugin,
                redact_query(&request.url)
            )));
        };
        if let Some((name, _)) = request.headers.iter().find(|(name, _)| {
            RESERVED_HEADERS
                .iter()
                .any(|reserved| name.trim().eq_ignore_ascii_case(reserved))
        }) {
            return Err(HttpError::InvalidRequest(format!(
                "header `{name}` is set by the host: name a granted credential for \
                 authorization, and the URL for the host"
            )));
        }
        let credential = match &request.credential {
            Some(name) => Some(self.grants.credentials.get(name).ok_or_else(|| {
                HttpError::Denied(format!(
                    "credential `{name}` is not granted to plugin {}",
                    self.plugin
                ))
            })?),
            None => None,
        };
        if credential.is_some() && !credential_transport_allowed(&request.url, entry) {
            return Err(HttpError::Denied(format!(
                "plugin {} asked for credential `{}` over plain HTTP to `{}`: credentials \
                 go only over https:// (or to loopback, or to a local emulator the admin \
                 allow-listed as `http://host:port`)",
                self.plugin,
                request.credential.as_deref().unwrap_or_default(),
                redact_query(&request.url)
            )));
        }

        let http = &self.http;
        let key = window_key(&request);
        if let Some(wait) = http.book.blocked(&key) {
            if wait > http.hold {
                return Err(HttpError::RateLimited(millis(wait)));
            }
            tracing::info!(plugin = %self.plugin, wait_ms = millis(wait), "holding a request until the rate-limit window resets");
            tokio::time::sleep(wait).await;
        }

        let mut url = reqwest::Url::parse(&with_path_credential(&request.url, credential)?)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        let mut bearer = None;
        match credential {
            Some(Credential::Bearer(token)) => bearer = Some(token),
            Some(Credential::QueryParameter { name, token }) => {
                let token = String::from_utf8_lossy(token.expose()).into_owned();
                url.query_pairs_mut().append_pair(name, &token);
            }
            Some(Credential::PathSegment(_)) | None => {}
        }
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        };
        let idempotent = matches!(
            request.method,
            Method::Get | Method::Head | Method::Put | Method::Delete
        );
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(http.timeout)
            .min(http.timeout);
        let attempts = if idempotent { http.retries + 1 } else { 1 };

        let mut last_error = HttpError::Connection("no attempt made".to_string());
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut builder = http
                .transport
                .client
                .request(method.clone(), url.clone())
                .timeout(timeout);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if let Some(token) = bearer {
                let mut value = b"Bearer ".to_vec();
                value.extend_from_slice(token.expose());
                let value = reqwest::header::HeaderValue::from_bytes(&value).map_err(|_| {
                    HttpError::InvalidRequest("credential is not a valid header value".to_string())
                })?;
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(e) => {
                    last_error = if e.is_timeout() {
                        HttpError::Timeout
                    } else if e.is_builder() || e.is_request() && !e.is_connect() {
                        return Err(HttpError::InvalidRequest(scrub_text(
                            redact_error(&e),
                            credential,
                        )));
                    } else {
                        HttpError::Connection(scrub_text(redact_error(&e), credential))
                    };
                    continue;
                }
            };
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_string(), scrub_text(value, credential))
                })
                .collect();
            if let Some(wait) = rate_limit_wait(status, &headers) {
                http.book.block(key.clone(), wait);
            }
            if response.status().is_server_error() && attempt + 1 < attempts {
                last_error = HttpError::Connection(format!("status {status}"));
                continue;
            }
            let mut body = read_capped(response, http.max_response_bytes).await?;
            scrub(&mut body, credential);
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        Err(last_error)
    }
}

/// Puts a path-segment credential where the URL's path has the placeholder (exactly once,
/// percent-encoded as a segment). The placeholder anywhere else, or with another kind of
/// credential, or missing for a path credential, is refused: a token never lands in a
/// query string or a host name by accident.
fn with_path_credential(url: &str, credential: Option<&Credential>) -> Result<String, HttpError> {
    let encoded = "%7Bcredential%7D";
    let (path_part, rest) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let raw =
        path_part.matches(CREDENTIAL_PLACEHOLDER).count() + path_part.matches(encoded).count();
    let elsewhere = rest.contains(CREDENTIAL_PLACEHOLDER) || rest.contains(encoded);
    match credential {
        Some(Credential::PathSegment(token)) => {
            if raw != 1 || elsewhere {
                return Err(HttpError::InvalidRequest(format!(
                    "a path credential needs `{CREDENTIAL_PLACEHOLDER}` exactly once in the URL path"
                )));
            }
            let token: String = token
                .expose()
                .iter()
                .map(|&b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            let path = path_part
                .replacen(CREDENTIAL_PLACEHOLDER, &token, 1)
                .replacen(encoded, &token, 1);
            Ok(format!("{path}{rest}"))
        }
        _ if raw > 0 || elsewhere => Err(HttpError::InvalidRequest(format!(
            "`{CREDENTIAL_PLACEHOLDER}` in a URL needs a path credential"
        ))),
        _ => Ok(url.to_string()),
    }
}

/// Reads a body, refusing it once it passes `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, HttpError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(HttpError::TooLarge(cap as u64));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(HttpError::TooLarge(cap as u64));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(HttpError::Timeout),
            Err(e) => return Err(HttpError::Connection(redact_error(&e))),
        }
    }
}

/// The rate-limit window a request falls in: its credential (or none) plus its method and
/// path with numeric ids folded, so `/2/users/123/mentions` and `/2/users/456/mentions`
/// share X's per-endpoint window for one credential.
fn window_key(request: &Request) -> String {
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

fn raw_rate_limit_wait(status: u16, headers: &[(String, String)]) -> Option<Duration> {
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

fn usage_spent(usage: &serde_json::Value) -> bool {
    ["call_count", "total_cputime", "total_time"]
        .iter()
        .any(|k| usage[*k].as_u64().is_some_and(|v| v >= 100))
}

/// The wait before retry `attempt` (1 for the first): [`crate::retry::HTTP_REQUEST`].
fn backoff(attempt: u32) -> Duration {
    crate::retry::HTTP_REQUEST.delay(u64::from(attempt.saturating_sub(1)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The forms in which an attached credential could come back in a response: as sent, and
/// percent-encoded as it appears in a URL echoed by an error page.
fn credential_forms(credential: Option<&Credential>) -> Vec<Vec<u8>> {
    let token = match credential {
        Some(Credential::Bearer(token) | Credential::PathSegment(token)) => token,
        Some(Credential::QueryParameter { token, .. }) => token,
        None => return Vec::new(),
    };
    let raw = token.expose().to_vec();
    // Too short to be told apart from ordinary text: leave the response alone.
    if raw.len() < 6 {
        return Vec::new();
    }
    let encoded: Vec<u8> = raw
        .iter()
        .flat_map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => vec![b],
            other => format!("%{other:02X}").into_bytes(),
        })
        .collect();
    if encoded == raw {
        vec![raw]
    } else {
        vec![raw, encoded]
    }
}

/// What replaces an echoed credential.
const SCRUBBED: &[u8] = b"[credential]";

/// Replaces every copy of the attached credential in `bytes`.
fn scrub(bytes: &mut Vec<u8>, credential: Option<&Credential>) {
    for form in credential_forms(credential) {
        if bytes.windows(form.len()).any(|w| w == form.as_slice()) {
            let mut out = Vec::with_capacity(bytes.len());
            let mut at = 0;
            while at < bytes.len() {
                if bytes[at..].starts_with(&form) {
                    out.extend_from_slice(SCRUBBED);
                    at += form.len();
                } else {
                    out.push(bytes[at]);
                    at += 1;
                }
            }
            *bytes = out;
        }
    }
}

/// [`scrub`] for text.
fn scrub_text(text: String, credential: Option<&Credential>) -> String {
    if credential.is_none() {
        return text;
    }
    let mut bytes = text.into_bytes();
    scrub(&mut bytes, credential);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A URL without its query string (which may hold a token the host attached).
fn redact_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A transport error without the URL (whose query may hold a token).
fn redact_error(e: &reqwest::Error) -> String {
    // The URL may carry a token in its query or its path: show only where it went.
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        let origin = url.origin().ascii_serialization();
        text = text.replace(url.as_str(), &format!("{origin}/…"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_exact_hosts_only() {
        let allowed = vec!["api.x.com".to_string(), "127.0.0.1:9000".to_string()];
        assert_eq!(
            host_allowed("https://api.x.com/2/tweets", &allowed),
            Ok(true)
        );
        assert_eq!(
            host_allowed("https://API.X.COM:443/2/tweets", &allowed),
            Ok(true)
        );
        assert_eq!(host_allowed("https://evil-api.x.com/", &allowed), Ok(false));
        assert_eq!(
            host_allowed("https://api.x.com.evil.net/", &allowed),
            Ok(false)
        );
        assert_eq!(host_allowed("http://127.0.0.1:9000/x", &allowed), Ok(true));
        assert_eq!(host_allowed("http://127.0.0.1:9001/x", &allowed), Ok(false));
        assert!(host_allowed("https://user@api.x.com/", &allowed).is_err());
        assert!(host_allowed("ftp://api.x.com/", &allowed).is_err());
        assert_eq!(host_allowed("https://api.x.com/", &[]), Ok(false));
    }

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
    fn an_echoed_credential_is_scrubbed_raw_and_percent_encoded() {
        let bearer = Credential::Bearer(crate::capabilities::Secret::new("tok/en+secret"));
        let mut body = b"auth: Bearer tok/en+secret; url: /x?t=tok%2Fen%2Bsecret".to_vec();
        scrub(&mut body, Some(&bearer));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "auth: Bearer [credential]; url: /x?t=[credential]"
        );
        let short = Credential::Bearer(crate::capabilities::Secret::new("ab"));
        let mut body = b"abc".to_vec();
        scrub(&mut body, Some(&short));
        assert_eq!(body, b"abc");
    }

    #[test]
    fn credentials_travel_over_tls_or_to_this_machine_or_to_a_marked_emulator() {
        assert!(credential_transport_allowed(
            "https://api.x.com/2",
            "api.x.com"
        ));
        assert!(!credential_transport_allowed(
            "http://api.x.com/2",
            "api.x.com"
        ));
        assert!(credential_transport_allowed(
            "http://127.0.0.1:9000/2",
            "127.0.0.1:9000"
        ));
        assert!(credential_transport_allowed(
            "http://[::1]:9000/2",
            "[::1]:9000"
        ));
        assert!(credential_transport_allowed(
            "http://localhost:9000/2",
            "localhost"
        ));
        assert!(credential_transport_allowed(
            "http://emulator:8080/2",
            "http://emulator:8080"
        ));
        assert!(!credential_transport_allowed(
            "http://10.0.0.8/2",
            "10.0.0.8"
        ));
    }

    #[test]
    fn a_path_credential_goes_exactly_where_the_placeholder_is() {
        let token = Credential::PathSegment(crate::capabilities::Secret::new("123:AB/c"));
        let bearer = Credential::Bearer(crate::capabilities::Secret::new("t"));
        let url = "https://bots.example.org/bot{credential}/sendMessage?x=1";
        assert_eq!(
            with_path_credential(url, Some(&token)).unwrap(),
            "https://bots.example.org/bot123:AB%2Fc/sendMessage?x=1"
        );
        let encoded = "https://bots.example.org/bot%7Bcredential%7D/getUpdates";
        assert_eq!(
            with_path_credential(encoded, Some(&token)).unwrap(),
            "https://bots.example.org/bot123:AB%2Fc/getUpdates"
        );
        // Refused: no placeholder, two of them, one in the query, or the wrong credential kind.
        assert!(with_path_credential("https://bots.example.org/bot/getMe", Some(&token)).is_err());
        assert!(with_path_credential("https://h/{credential}/{credential}", Some(&token)).is_err());
        assert!(
            with_path_credential("https://h/bot{credential}?t={credential}", Some(&token)).is_err()
        );
        assert!(with_path_credential(url, Some(&bearer)).is_err());
        assert!(with_path_credential(url, None).is_err());
        assert_eq!(
            with_path_credential("https://h/a", Some(&bearer)).unwrap(),
            "https://h/a"
        );
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

    #[test]
    fn backoff_grows_and_stays_jittered_within_bounds() {
        for attempt in 1..4 {
            let base = 200 * (1 << attempt);
            let d = backoff(attempt).as_millis() as u64;
            assert!(
                d >= base / 2 && d <= base * 3 / 2,
                "attempt {attempt}: {d} ms"
            );
        }
    }
}
