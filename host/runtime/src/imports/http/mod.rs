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
//! - it reads the platforms' rate-limit headers (`Retry-After`, the IETF `RateLimit`
//!   fields, X's and the common `X-RateLimit-*` family, Graph's usage headers, and what
//!   the connector declares: see [`crate::rate_limits`]), and holds back requests while a
//!   window is spent (briefly, by waiting; longer, by answering `rate-limited` at once);
//! - it retries idempotent requests (GET, HEAD, PUT, DELETE) after a 5xx, a timeout or a
//!   failed connection, with jittered exponential backoff; a POST is never retried, since
//!   the platform may have acted on it.
//!
//! Responses larger than the cap are refused rather than truncated. Waits read from headers
//! are bounded ([`crate::rate_limits::MAX_RATE_LIMIT_WAIT`]) and every sum with them saturates: a platform (or
//! anyone in its place) answering `x-rate-limit-reset: 18446744073709551615` costs a
//! connector at most a day's pause on one endpoint, never a panic.

mod credentials;
mod for_host;
mod rate_limit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::latest::http::{Host, HttpError, Method, Request, Response};
use crate::capabilities::Credential;
use crate::state::PluginState;
use credentials::{credential_transport_allowed, scrub, scrub_text, with_path_credential};
pub use for_host::{FetchedMedia, MediaFetchError, MediaFetcher};
pub(crate) use rate_limit::RateLimitBook;
use rate_limit::window_key;

/// Whether `url`'s host (with its port, when one is given) is on `allowed`.
///
/// Entries are `host` (any port) or `host:port`, optionally written `http://host[:port]` to
/// mark a local emulator that may receive credentials over plain HTTP; matching is exact
/// and case-insensitive, so `api.x.com` does not admit `evil-api.x.com`.
#[cfg(test)]
fn host_allowed(url: &str, allowed: &[String]) -> Result<bool, String> {
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
        let url = request.url.clone();
        let result = self.fetch_checked(request).await;
        if let Ok(response) = &result
            && let Some(notice) =
                crate::platform_versions::served_differently(&url, &response.headers)
        {
            tracing::debug!(plugin = %self.plugin, "{notice}");
            self.api_version_served = Some(format!("plugin {}: {notice}", self.plugin));
        }
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
        let granted = match &request.credential {
            Some(name) => Some(self.grants.credentials.get(name).ok_or_else(|| {
                HttpError::Denied(format!(
                    "credential `{name}` is not granted to plugin {}",
                    self.plugin
                ))
            })?),
            None => None,
        };
        // A host-held token is attached as it is now; which one was used is remembered so
        // a refusal can be reported against it.
        let (current, connected) = match granted {
            Some(Credential::Connected(connected)) => {
                let (credential, generation) = connected.current().map_err(HttpError::Denied)?;
                (Some(credential), Some((connected, generation)))
            }
            other => (other.cloned(), None),
        };
        let credential = current.as_ref();
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
            Some(Credential::PathSegment(_) | Credential::Connected(_)) | None => {}
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
            let asked = http.book.wait_from(status, &headers);
            if let Some(wait) = asked {
                http.book.block(key.clone(), wait);
            }
            if response.status().is_server_error() && attempt + 1 < attempts {
                // A 503 that says when to come back is obeyed: a retry sooner would only
                // be refused again. A short wait is waited out; a long one ends the
                // retries and the plugin gets the answer (its next call is held).
                let retry = match asked {
                    Some(wait) if wait > http.hold => false,
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        true
                    }
                    None => true,
                };
                if retry {
                    last_error = HttpError::Connection(format!("status {status}"));
                    continue;
                }
            }
            let mut body = read_capped(response, http.max_response_bytes).await?;
            if let Some((connected, generation)) = connected
                && token_refused(status, &body)
            {
                connected.refused(generation);
            }
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

/// Whether an answer says the attached token is refused: HTTP 401 (X and most APIs), or
/// Graph's error code 190 (an invalid or expired access token, sent with status 400).
fn token_refused(status: u16, body: &[u8]) -> bool {
    if status == 401 {
        return true;
    }
    if status != 400 && status != 403 {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_i64())
        == Some(190)
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

/// The wait before retry `attempt` (1 for the first): [`crate::retry::HTTP_REQUEST`].
fn backoff(attempt: u32) -> Duration {
    crate::retry::HTTP_REQUEST.delay(u64::from(attempt.saturating_sub(1)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
