//! Outgoing HTTP through the host's `http` import, with JSON and named credentials.
//!
//! A plugin never holds a token: a request *names* a credential granted to the plugin and
//! the host attaches it after the request leaves the sandbox (a bearer header, a query
//! parameter, or, where a platform wants the token in the path, in place of
//! [`CREDENTIAL_PLACEHOLDER`]). The host also enforces the allow-list, watches rate-limit
//! headers and retries idempotent requests; see `wit/http.wit`.
//!
//! ```no_run
//! # use centralino_sdk::http::Api;
//! # use serde_json::json;
//! # #[derive(serde::Deserialize)]
//! # struct User { id: String }
//! # fn main() -> centralino_sdk::Result<()> {
//! let api = Api::new("X", "https://api.x.com").credential("token-tim");
//! let me: User = api.get("/2/users/me").query("user.fields", "username").json()?;
//! let created = api.post("/2/tweets").json_body(&json!({ "text": "ciao" })).send()?;
//! # let _ = (me.id, created);
//! # Ok(())
//! # }
//! ```
//!
//! [`Api::send`](RequestBuilder::send) turns anything but a 2xx into the [`PluginError`]
//! the platform's answer means; the default reading ([`default_error`]) suits most REST
//! APIs and a plugin replaces it with [`Api::errors`] where the platform says more
//! (Graph's error codes, X's duplicate-post 403).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::channel::centralino::plugin::http::fetch;
pub use crate::bindings::channel::centralino::plugin::http::{
    HttpError, Method, Request, Response,
};
use crate::{PluginError, Result};

/// Where a path-placed credential goes (`/bot{credential}/getMe`), for platforms that carry
/// the token in the URL path (the Telegram Bot API); the plugin names the credential as
/// usual and never sees the token.
///
/// The host substitutes the token for it when the admin declares the credential as a path
/// credential (`credential = { path = "env:TOKEN" }`): after the allow-list check, in the
/// URL's path only and exactly once, percent-encoded as a path segment, with errors and
/// logs never showing the token; a placeholder with a bearer or query credential, or a
/// path credential without a placeholder, is refused as an invalid request.
pub const CREDENTIAL_PLACEHOLDER: &str = "{credential}";

/// Timeout asked of the host for one exchange unless [`Api::timeout_ms`] says otherwise.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// Wait suggested after a 429 that says nothing about when to come back.
pub const DEFAULT_RETRY_AFTER_MS: u64 = 60_000;

/// How a platform's non-2xx answer becomes a [`PluginError`].
pub type ErrorReader = fn(platform: &str, response: &Response) -> PluginError;

/// One platform API: its base URL, its name (for messages), the credential to name, and
/// how to read its errors.
#[derive(Clone, Debug)]
pub struct Api {
    platform: String,
    base: String,
    credential: Option<String>,
    timeout_ms: u32,
    errors: ErrorReader,
}

impl Api {
    /// An API at `base` (no trailing `/`); `platform` names it in errors (`"X"`).
    pub fn new(platform: impl Into<String>, base: impl Into<String>) -> Self {
        Api {
            platform: platform.into(),
            base: base.into(),
            credential: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            errors: default_error,
        }
    }

    /// Names the credential the host attaches to every request.
    pub fn credential(mut self, name: impl Into<String>) -> Self {
        self.credential = Some(name.into());
        self
    }

    /// Asks the host for this timeout (the host caps it).
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Reads the platform's error answers with `reader` instead of [`default_error`].
    pub fn errors(mut self, reader: ErrorReader) -> Self {
        self.errors = reader;
        self
    }

    /// The platform's name, as given to [`Api::new`].
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// A request to `path` (appended to the base URL).
    ///
    /// The request keeps what it needs of the API (its name and error reader), not a
    /// borrow of it, so it can be built up conditionally and outlive the `Api` value.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder {
            platform: self.platform.clone(),
            errors: self.errors,
            request: Request {
                method,
                url: format!("{}{path}", self.base),
                headers: vec![("accept".to_string(), "application/json".to_string())],
                body: None,
                credential: self.credential.clone(),
                timeout_ms: Some(self.timeout_ms),
            },
            query: Vec::new(),
            invalid: None,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::Get, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::Post, path)
    }
}

/// A request being built; nothing is sent until [`send`](Self::send),
/// [`json`](Self::json) or [`fetch`](Self::fetch).
///
/// It owns everything it needs, so it can be built up step by step:
///
/// ```
/// use centralino_sdk::http::Api;
///
/// let api = Api::new("Acme", "https://api.example.com").credential("acme-token");
/// let since: Option<&str> = Some("m-41");
/// let mut request = api.get("/messages").query("limit", "50");
/// if let Some(since) = since {
///     request = request.query("since", since);
/// }
/// let request = request.build();
/// assert_eq!(request.url, "https://api.example.com/messages?limit=50&since=m-41");
/// assert_eq!(request.credential.as_deref(), Some("acme-token"));
/// ```
#[derive(Debug)]
pub struct RequestBuilder {
    /// The platform's name, for errors.
    platform: String,
    /// How the platform's non-2xx answers are read.
    errors: ErrorReader,
    request: Request,
    query: Vec<(String, String)>,
    /// Why the request cannot be sent, found while building it.
    invalid: Option<String>,
}

impl RequestBuilder {
    /// Adds a query parameter (URL-encoded when sent).
    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    /// Adds query parameters.
    pub fn query_pairs<'p>(mut self, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> Self {
        self.query.extend(
            pairs
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        self
    }

    /// Adds a header (`authorization` is reserved for the host).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sends `body` as JSON. A body that does not serialise fails the request when it is
    /// sent, before anything leaves the plugin.
    pub fn json_body(mut self, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.request
                    .headers
                    .push(("content-type".to_string(), "application/json".to_string()));
                self.request.body = Some(bytes);
            }
            Err(e) => self.invalid = Some(format!("the request body is not JSON: {e}")),
        }
        self
    }

    /// Sends `parts` as `multipart/form-data` (RFC 7578): what upload APIs take (X's media
    /// upload, Messenger's attachment upload). The boundary is chosen so that it occurs
    /// in no part.
    ///
    /// ```
    /// use centralino_sdk::http::{Api, FormPart};
    /// let request = Api::new("Acme", "https://upload.example.com")
    ///     .post("/media")
    ///     .multipart_body(&[
    ///         FormPart::text("category", "dm_image"),
    ///         FormPart::file("media", "photo.png", "image/png", b"\x89PNG..."),
    ///     ])
    ///     .build();
    /// let content_type = request.headers.iter().find(|(name, _)| name == "content-type");
    /// assert!(content_type.is_some_and(|(_, v)| v.starts_with("multipart/form-data; boundary=")));
    /// let body = String::from_utf8_lossy(request.body.as_deref().unwrap_or_default());
    /// assert!(body.contains("name=\"media\"; filename=\"photo.png\"\r\nContent-Type: image/png"));
    /// ```
    pub fn multipart_body(mut self, parts: &[FormPart<'_>]) -> Self {
        let mut boundary = String::from("centralino-form-boundary");
        let mut n = 0u32;
        while parts.iter().any(|p| {
            p.bytes
                .windows(boundary.len())
                .any(|w| w == boundary.as_bytes())
        }) {
            n += 1;
            boundary = format!("centralino-form-boundary-{n}");
        }
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
            if let Some(file_name) = part.file_name {
                disposition.push_str(&format!("; filename=\"{}\"", file_name.replace('"', "")));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            if let Some(content_type) = part.content_type {
                body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(part.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.request.headers.push((
            "content-type".to_string(),
            format!("multipart/form-data; boundary={boundary}"),
        ));
        self.request.body = Some(body);
        self
    }

    /// Names another credential than the API's for this request (or none).
    pub fn credential(mut self, name: Option<&str>) -> Self {
        self.request.credential = name.map(str::to_string);
        self
    }

    /// The request as it will leave the plugin.
    pub fn build(mut self) -> Request {
        if !self.query.is_empty() {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.query)
                .finish();
            self.request.url = format!("{}?{query}", self.request.url);
        }
        self.request
    }

    /// Sends it and returns the response whatever its status; only a failed exchange
    /// (denied, timeout, connection) is an error.
    pub fn fetch(self) -> Result<Response> {
        if let Some(reason) = self.invalid {
            return Err(PluginError::invalid_input(reason));
        }
        let platform = self.platform.clone();
        fetch(&self.build()).map_err(|e| transport_error(&platform, e))
    }

    /// Sends it; anything but a 2xx becomes the error the platform's answer means.
    pub fn send(self) -> Result<Response> {
        let platform = self.platform.clone();
        let errors = self.errors;
        let response = self.fetch()?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(errors(&platform, &response))
        }
    }

    /// Sends it and parses the 2xx answer as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        let platform = self.platform.clone();
        let response = self.send()?;
        response.json().map_err(|e| {
            PluginError::transient(format!("{platform} answered with an unreadable body: {e}"))
        })
    }
}

/// One field of a [`RequestBuilder::multipart_body`] form.
#[derive(Clone, Copy, Debug)]
pub struct FormPart<'a> {
    name: &'a str,
    file_name: Option<&'a str>,
    content_type: Option<&'a str>,
    bytes: &'a [u8],
}

impl<'a> FormPart<'a> {
    /// A plain field.
    pub fn text(name: &'a str, value: &'a str) -> Self {
        FormPart {
            name,
            file_name: None,
            content_type: None,
            bytes: value.as_bytes(),
        }
    }

    /// A file field: its name, file name, type and bytes.
    pub fn file(name: &'a str, file_name: &'a str, content_type: &'a str, bytes: &'a [u8]) -> Self {
        FormPart {
            name,
            file_name: Some(file_name),
            content_type: Some(content_type),
            bytes,
        }
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> core::result::Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text for a message: at most 200 characters, or `HTTP <status>` when
    /// it is empty.
    pub fn summary(&self) -> String {
        let raw = String::from_utf8_lossy(&self.body);
        let raw: String = raw.chars().take(200).collect();
        if raw.trim().is_empty() {
            format!("HTTP {}", self.status)
        } else {
            raw
        }
    }

    /// `Retry-After` in milliseconds, when it is a number of seconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        let seconds: u64 = self.header("retry-after")?.parse().ok()?;
        seconds.checked_mul(1000)
    }
}

/// The usual reading of a REST API's error answer: 401/403 the credential was refused, 429
/// slow down (for `Retry-After`, or a minute), 5xx try again later, anything else refused
/// for good.
pub fn default_error(platform: &str, response: &Response) -> PluginError {
    let detail = response.summary();
    match response.status {
        401 | 403 => PluginError::invalid_credentials(detail),
        429 => PluginError::rate_limited(
            response.retry_after_ms().unwrap_or(DEFAULT_RETRY_AFTER_MS),
            detail,
        ),
        status @ 500..=599 => {
            PluginError::transient(format!("{platform} answered {status}: {detail}"))
        }
        status => PluginError::rejected(format!("{platform} answered {status}: {detail}")),
    }
}

/// Why the host could not complete an exchange, in the contract's words.
pub fn transport_error(platform: &str, error: HttpError) -> PluginError {
    match error {
        // The allow-list and the credential grants are the admin's configuration.
        HttpError::Denied(detail) | HttpError::InvalidRequest(detail) => {
            PluginError::invalid_input(format!("the host refused the request: {detail}"))
        }
        HttpError::Timeout => PluginError::transient(format!("{platform} did not answer in time")),
        HttpError::Connection(detail) => {
            PluginError::transient(format!("could not reach {platform}: {detail}"))
        }
        HttpError::TooLarge(limit) => PluginError::transient(format!(
            "{platform}'s answer is larger than the host's limit of {limit} bytes"
        )),
        HttpError::RateLimited(retry_after_ms) => PluginError::rate_limited(
            retry_after_ms,
            format!("the host is holding requests until {platform}'s rate-limit window resets"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{Api, Method, RequestBuilder};

    /// The API value is a local: the request outlives it, so it owns what it needs.
    fn messages_request(base: &str, since: Option<&str>, limit: Option<u32>) -> RequestBuilder {
        let api = Api::new("Acme", base).credential("acme-token");
        let mut request = api.get("/messages");
        if let Some(since) = since {
            request = request.query("since", since);
        }
        if let Some(limit) = limit {
            request = request.query("limit", limit.to_string());
        }
        request
    }

    #[test]
    fn a_request_is_built_up_conditionally_and_outlives_its_api() {
        let first = messages_request("https://api.example.com", None, None).build();
        assert_eq!(first.url, "https://api.example.com/messages");
        assert_eq!(first.method, Method::Get);
        assert_eq!(first.credential.as_deref(), Some("acme-token"));

        let next = messages_request("https://api.example.com", Some("m 41"), Some(50)).build();
        assert_eq!(
            next.url,
            "https://api.example.com/messages?since=m+41&limit=50"
        );
    }

    #[test]
    fn a_body_that_is_not_json_fails_the_request_before_it_leaves() {
        use std::collections::BTreeMap;
        // JSON object keys must be strings: a map keyed by pairs does not serialise.
        let mut body = BTreeMap::new();
        body.insert((1, 2), "x");
        let request = Api::new("Acme", "https://api.example.com")
            .post("/messages")
            .json_body(&body);
        assert!(request.invalid.is_some());
    }
}
