//! Who is logged in: sessions (in memory for now), their cookies and CSRF tokens.
//!
//! - The session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` when the request came
//!   over TLS (directly or, as `X-Forwarded-Proto: https`, through a proxy), and has no
//!   `Path`: browsers then scope it to the folder the console is served from
//!   (`/console`, or wherever an embedder nests the admin API).
//! - Each session has its own CSRF token; every state-changing request must carry it
//!   (the `csrf` form field, or an `X-CSRF-Token` header) or is refused with `403`.
//! - The login form has its own token too (double-submit: a short-lived cookie and the
//!   same value in the form), so another site cannot log a browser into a session.
//! - Sessions live in memory: a restart logs everyone out. They end after
//!   [`IDLE`] without a request, or [`LIFETIME`] after login.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "centralino_console";
/// The login form's double-submit cookie.
pub(crate) const LOGIN_COOKIE: &str = "centralino_login";
/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// And this long after login, whatever happens.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; past it the least recently used one ends.
const MAX_SESSIONS: usize = 1000;

/// How a session was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// With the admin token.
    AdminToken,
    /// From loopback, on a host that has no admin token.
    Loopback,
}

/// A logged-in browser, as the pages see it.
#[derive(Clone, Debug)]
pub(crate) struct SessionView {
    pub(crate) who: Who,
    /// A short name for the session in the audit log (not the secret).
    pub(crate) label: String,
    pub(crate) csrf: String,
    /// A message to show once (the outcome of the last action).
    pub(crate) flash: Option<Flash>,
}

/// The outcome of an action, shown once on the next page.
#[derive(Clone, Debug)]
pub(crate) struct Flash {
    pub(crate) ok: bool,
    pub(crate) text: String,
}

struct Session {
    who: Who,
    label: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    flash: Option<Flash>,
}

/// Every open session, by the SHA-256 of its cookie.
#[derive(Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session; answers its cookie's value.
    pub(crate) fn open(&self, who: Who) -> String {
        let secret = random_token();
        let key = key(&secret);
        let now = Instant::now();
        let session = Session {
            who,
            label: hex::encode(&key[..4]),
            csrf: random_token(),
            created: now,
            last_seen: now,
            flash: None,
        };
        let mut open = self.lock();
        open.retain(|_, s| alive(s, now));
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(key, session);
        secret
    }

    /// The session of a request's cookie, if it is open; takes its flash message when
    /// `take_flash` (for a page that shows it).
    pub(crate) fn get(&self, headers: &HeaderMap, take_flash: bool) -> Option<SessionView> {
        let secret = cookie(headers, SESSION_COOKIE)?;
        let key = key(secret);
        let now = Instant::now();
        let mut open = self.lock();
        let session = open.get_mut(&key)?;
        if !alive(session, now) {
            open.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(SessionView {
            who: session.who,
            label: session.label.clone(),
            csrf: session.csrf.clone(),
            flash: if take_flash {
                session.flash.take()
            } else {
                None
            },
        })
    }

    /// Leaves a message for the session's next page.
    pub(crate) fn flash(&self, headers: &HeaderMap, flash: Flash) {
        if let Some(secret) = cookie(headers, SESSION_COOKIE)
            && let Some(session) = self.lock().get_mut(&key(secret))
        {
            session.flash = Some(flash);
        }
    }

    /// Ends the session of a request's cookie.
    pub(crate) fn close(&self, headers: &HeaderMap) {
        if let Some(secret) = cookie(headers, SESSION_COOKIE) {
            self.lock().remove(&key(secret));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE && now.duration_since(session.created) < LIFETIME
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// 244 random bits from the operating system (two v4 UUIDs), as 64 hex digits.
pub(crate) fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether two secrets are equal, in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (key(a), key(b));
    let difference = a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the request reached us over TLS (directly, or through a proxy that says so).
pub(crate) fn over_tls(headers: &HeaderMap, scheme: Option<&str>) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    scheme == Some("https") || forwarded_https || forwarded
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS; no `Path`, so
/// the browser scopes it to the console's folder. `max_age` zero deletes it.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<Duration>,
    secure: bool,
) -> Option<HeaderValue> {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).ok()
}

/// An `application/x-www-form-urlencoded` body as name/value pairs.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode(parts.next().unwrap_or_default());
            let value = decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

/// The first value of a form field.
pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        let form = parse_form(b"token=a%2Bb+c%3D%26&csrf=x&empty=&bad=%zz");
        assert_eq!(field(&form, "token"), Some("a+b c=&"));
        assert_eq!(field(&form, "csrf"), Some("x"));
        assert_eq!(field(&form, "empty"), Some(""));
        assert_eq!(field(&form, "bad"), Some("%zz"));
        assert_eq!(field(&form, "missing"), None);
    }

    #[test]
    fn a_session_is_found_by_its_cookie_only() {
        let sessions = Sessions::default();
        let secret = sessions.open(Who::AdminToken);
        let mut headers = HeaderMap::new();
        assert!(sessions.get(&headers, true).is_none());
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {SESSION_COOKIE}={secret}")).unwrap(),
        );
        let view = sessions.get(&headers, true).unwrap();
        assert_eq!(view.who, Who::AdminToken);
        assert_eq!(view.csrf.len(), 64);
        assert_ne!(view.csrf, secret);
        sessions.close(&headers);
        assert!(sessions.get(&headers, true).is_none());
    }

    #[test]
    fn cookies_are_strict_and_secure_over_tls() {
        let plain = set_cookie("a", "b", None, false).unwrap();
        assert_eq!(plain, "a=b; HttpOnly; SameSite=Strict");
        let mut headers = HeaderMap::new();
        assert!(!over_tls(&headers, None));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_tls(&headers, None));
        let secure = set_cookie("a", "b", Some(Duration::ZERO), true).unwrap();
        assert_eq!(secure, "a=b; HttpOnly; SameSite=Strict; Max-Age=0; Secure");
    }
}
