//! Who is logged in: sessions, kept in the store, their cookies and CSRF tokens.
//!
//! - The session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` when the request came
//!   over TLS (directly or, as `X-Forwarded-Proto: https`, through a proxy), and has no
//!   `Path`: browsers then scope it to the folder the console is served from
//!   (`/console`, or wherever an embedder nests the admin API).
//! - Each session has its own CSRF token; every state-changing request must carry it
//!   (the `csrf` form field, or an `X-CSRF-Token` header) or is refused with `403`.
//! - The login form has its own token too (double-submit: a short-lived cookie and the
//!   same value in the form), so another site cannot log a browser into a session.
//! - Sessions live in the store (by the SHA-256 of the cookie, never the cookie): a
//!   restart logs nobody out, and every host sharing a PostgreSQL database knows them.
//!   They end after [`IDLE`] without a request, or [`LIFETIME`] after login.

use axum::http::{HeaderMap, HeaderValue, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::store::{Store, StoredSession};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "centralino_console";
/// The login form's double-submit cookie.
pub(crate) const LOGIN_COOKIE: &str = "centralino_login";
/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// And this long after login, whatever happens.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// A session's last request is written to the store at most this often.
const TOUCH_EVERY_MS: u64 = 60_000;

/// How a session was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// With the admin token.
    AdminToken,
    /// From loopback, on a host that has no admin token.
    Loopback,
    /// A tenant's console user, with their password: sees only that tenant.
    User,
    /// The CRM, through the REST API or the crate's API (never a console session): an
    /// erasure it asked for is in the audit log.
    Crm,
}

impl Who {
    fn stored(self) -> &'static str {
        match self {
            Who::AdminToken => "admin",
            Who::Loopback => "loopback",
            Who::User => "user",
            Who::Crm => "crm",
        }
    }

    pub(crate) fn parse(stored: &str) -> Option<Who> {
        match stored {
            "admin" => Some(Who::AdminToken),
            "loopback" => Some(Who::Loopback),
            "user" => Some(Who::User),
            "crm" => Some(Who::Crm),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        self.stored()
    }
}

/// A tenant's console user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConsoleUser {
    pub(crate) username: String,
    pub(crate) tenant: String,
}

/// A logged-in browser, as the pages see it.
#[derive(Clone, Debug)]
pub(crate) struct SessionView {
    pub(crate) who: Who,
    /// For [`Who::User`]: who, and the one tenant they see.
    pub(crate) user: Option<ConsoleUser>,
    /// A short name for the session in the audit log (not the secret).
    pub(crate) label: String,
    pub(crate) csrf: String,
    /// A message to show once (the outcome of the last action).
    pub(crate) flash: Option<Flash>,
}

/// The outcome of an action, shown once on the next page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Flash {
    pub(crate) ok: bool,
    pub(crate) text: String,
}

/// Every open session, in the store.
pub(crate) struct Sessions {
    store: Store,
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Sessions {
    pub(crate) fn new(store: Store) -> Sessions {
        Sessions { store }
    }

    /// Opens a session; answers its cookie's value.
    pub(crate) async fn open(&self, who: Who, user: Option<ConsoleUser>) -> anyhow::Result<String> {
        let secret = random_token();
        let id = key(&secret);
        let now = self.store.now_ms();
        let session = StoredSession {
            label: id[..8].to_string(),
            id,
            who: who.stored().to_string(),
            username: user.as_ref().map(|u| u.username.clone()),
            tenant: user.map(|u| u.tenant),
            csrf: random_token(),
            created_at: now,
            last_seen: now,
            flash: None,
        };
        self.store
            .open_console_session(&session, now.saturating_sub(ms(IDLE)))
            .await?;
        Ok(secret)
    }

    /// The session of a request's cookie, if it is open; takes its flash message when
    /// `take_flash` (for a page that shows it). A store that cannot be read counts as no
    /// session (the console then asks for a login).
    pub(crate) async fn get(&self, headers: &HeaderMap, take_flash: bool) -> Option<SessionView> {
        let secret = cookie(headers, SESSION_COOKIE)?;
        let id = key(secret);
        let stored = match self.store.console_session(&id).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!("the console could not read a session: {e:#}");
                return None;
            }
        };
        let now = self.store.now_ms();
        let alive = now.saturating_sub(stored.last_seen) < ms(IDLE)
            && now.saturating_sub(stored.created_at) < ms(LIFETIME);
        let who = Who::parse(&stored.who);
        let user = match (who, &stored.username, &stored.tenant) {
            (Some(Who::User), Some(username), Some(tenant)) => Some(ConsoleUser {
                username: username.clone(),
                tenant: tenant.clone(),
            }),
            (Some(Who::User), _, _) => return None,
            _ => None,
        };
        let (Some(who), true) = (who, alive) else {
            if let Err(e) = self.store.close_console_session(&id).await {
                tracing::warn!("the console could not end a session: {e:#}");
            }
            return None;
        };
        if now.saturating_sub(stored.last_seen) >= TOUCH_EVERY_MS
            && let Err(e) = self.store.touch_console_session(&id, now).await
        {
            tracing::warn!("the console could not record a session's request: {e:#}");
        }
        let flash = match (take_flash, &stored.flash) {
            (true, Some(text)) => {
                if let Err(e) = self.store.set_console_flash(&id, None).await {
                    tracing::warn!("the console could not clear a message: {e:#}");
                }
                serde_json::from_str(text).ok()
            }
            _ => None,
        };
        Some(SessionView {
            who,
            user,
            label: stored.label,
            csrf: stored.csrf,
            flash,
        })
    }

    /// Leaves a message for the session's next page.
    pub(crate) async fn flash(&self, headers: &HeaderMap, flash: Flash) {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return;
        };
        let Ok(json) = serde_json::to_string(&flash) else {
            return;
        };
        if let Err(e) = self
            .store
            .set_console_flash(&key(secret), Some(&json))
            .await
        {
            tracing::warn!("the console could not leave a message: {e:#}");
        }
    }

    /// Ends the session of a request's cookie.
    pub(crate) async fn close(&self, headers: &HeaderMap) {
        if let Some(secret) = cookie(headers, SESSION_COOKIE)
            && let Err(e) = self.store.close_console_session(&key(secret)).await
        {
            tracing::warn!("the console could not end a session: {e:#}");
        }
    }
}

/// The SHA-256 of a secret, hex: what the store keeps of a session cookie.
fn key(secret: &str) -> String {
    hex::encode(digest(secret))
}

fn digest(secret: &str) -> [u8; 32] {
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
    let (a, b) = (digest(a), digest(b));
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

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_only_and_keeps_its_message_once() {
        let sessions = Sessions::new(Store::open("sqlite::memory:").await.unwrap());
        let secret = sessions.open(Who::AdminToken, None).await.unwrap();
        let mut headers = HeaderMap::new();
        assert!(sessions.get(&headers, true).await.is_none());
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {SESSION_COOKIE}={secret}")).unwrap(),
        );
        let view = sessions.get(&headers, true).await.unwrap();
        assert_eq!(view.who, Who::AdminToken);
        assert_eq!(view.csrf.len(), 64);
        assert_ne!(view.csrf, secret);
        let text = "done".to_string();
        sessions.flash(&headers, Flash { ok: true, text }).await;
        assert!(sessions.get(&headers, false).await.unwrap().flash.is_none());
        assert_eq!(
            sessions
                .get(&headers, true)
                .await
                .unwrap()
                .flash
                .unwrap()
                .text,
            "done"
        );
        assert!(sessions.get(&headers, true).await.unwrap().flash.is_none());
        sessions.close(&headers).await;
        assert!(sessions.get(&headers, true).await.is_none());
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
