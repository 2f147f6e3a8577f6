//! An OAuth 2.0 authorization server, as the X and Graph emulators serve it: a consent page
//! a browser can click, authorization codes (with PKCE S256 when the client sends a
//! challenge), access tokens that expire on a clock the test controls, refresh tokens that
//! rotate and are single-use (every presentation counted, so a test can show none was
//! spent twice), and revocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// A clock in milliseconds since the epoch: the wall clock until a test sets it, then
/// only what the test says.
#[derive(Clone, Debug, Default)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    /// A clock that reads the wall clock until [`SimClock::set`] or
    /// [`SimClock::advance`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Now, in ms.
    pub fn now_ms(&self) -> u64 {
        match self.0.load(Ordering::SeqCst) {
            0 => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            fixed => fixed,
        }
    }

    /// Fixes the clock at `ms`.
    pub fn set(&self, ms: u64) {
        self.0.store(ms.max(1), Ordering::SeqCst);
    }

    /// Moves the clock on by `by` (fixing it first at the wall clock's now if it was not).
    pub fn advance(&self, by: Duration) {
        let now = self.now_ms();
        self.set(now + u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
    }
}

#[derive(Clone, Debug)]
struct Code {
    client_id: String,
    user_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
}

#[derive(Clone, Debug)]
struct Access {
    user_id: String,
    expires_at: u64,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct Refresh {
    user_id: String,
    client_id: String,
    scope: String,
    used: bool,
    revoked: bool,
}

/// Why a token is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// Unknown to the server.
    Unknown,
    /// Past its expiry on the server's clock.
    Expired,
    /// Revoked.
    Revoked,
}

/// The authorization server's state.
#[derive(Debug)]
pub struct AuthServer {
    /// Client id → client secret.
    clients: HashMap<String, String>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    /// How many times each refresh token was presented.
    presented: HashMap<String, u32>,
    refreshes: u32,
    issued: u64,
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// Prefix of issued tokens (recognisable in scans).
    pub prefix: String,
    /// The clock tokens expire on.
    pub clock: SimClock,
}

impl AuthServer {
    /// A server issuing `prefix`-named tokens that live `token_ttl`.
    pub fn new(prefix: &str, token_ttl: Duration) -> Self {
        AuthServer {
            clients: HashMap::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            presented: HashMap::new(),
            refreshes: 0,
            issued: 0,
            token_ttl,
            prefix: prefix.to_string(),
            clock: SimClock::new(),
        }
    }

    /// Registers an app.
    pub fn add_client(&mut self, id: &str, secret: &str) {
        self.clients.insert(id.to_string(), secret.to_string());
    }

    fn mint(&mut self, kind: &str) -> String {
        self.issued += 1;
        let mut bytes = [0u8; 12];
        let seed = Sha256::digest(format!("{}{}{kind}", self.issued, self.clock.now_ms()));
        bytes.copy_from_slice(&seed[..12]);
        format!(
            "{}-{kind}-{}-{}",
            self.prefix,
            self.issued,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Issues a code after the user consented; `None` for an unknown client.
    pub fn consent(
        &mut self,
        client_id: &str,
        user_id: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        scope: &str,
    ) -> Option<String> {
        if !self.clients.contains_key(client_id) {
            return None;
        }
        let code = self.mint("code");
        self.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_string(),
                user_id: user_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                challenge: challenge.map(str::to_string),
                scope: scope.to_string(),
            },
        );
        Some(code)
    }

    /// Who `token` acts as, or why not.
    pub fn check(&self, token: &str) -> Result<String, TokenProblem> {
        let access = self.access.get(token).ok_or(TokenProblem::Unknown)?;
        if access.revoked {
            return Err(TokenProblem::Revoked);
        }
        if self.clock.now_ms() >= access.expires_at {
            return Err(TokenProblem::Expired);
        }
        Ok(access.user_id.clone())
    }

    /// Issues a token pair for `user_id`.
    fn issue(
        &mut self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        with_refresh: bool,
    ) -> serde_json::Value {
        let access = self.mint("access");
        let ttl = u64::try_from(self.token_ttl.as_millis()).unwrap_or(u64::MAX);
        self.access.insert(
            access.clone(),
            Access {
                user_id: user_id.to_string(),
                expires_at: self.clock.now_ms().saturating_add(ttl),
                revoked: false,
            },
        );
        let mut answer = serde_json::json!({
            "token_type": "bearer",
            "expires_in": self.token_ttl.as_secs(),
            "access_token": access,
            "scope": scope,
        });
        if with_refresh {
            let refresh = self.mint("refresh");
            self.refresh.insert(
                refresh.clone(),
                Refresh {
                    user_id: user_id.to_string(),
                    client_id: client_id.to_string(),
                    scope: scope.to_string(),
                    used: false,
                    revoked: false,
                },
            );
            answer["refresh_token"] = refresh.into();
        }
        answer
    }

    /// The client a token request authenticates as: HTTP Basic, or `client_id` (and
    /// `client_secret`) in the form.
    pub fn client(
        &self,
        authorization: Option<&str>,
        form: &HashMap<String, String>,
    ) -> Option<String> {
        if let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic ")) {
            let decoded = STANDARD.decode(basic).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            return (self.clients.get(id)? == secret).then(|| id.to_string());
        }
        let id = form.get("client_id")?;
        let known = self.clients.get(id)?;
        match form.get("client_secret") {
            Some(secret) if secret != known => None,
            _ => Some(id.clone()),
        }
    }

    /// The token endpoint: `(status, body)` in RFC 6749's shapes.
    pub fn token(
        &mut self,
        authorization: Option<&str>,
        form: &HashMap<String, String>,
    ) -> (u16, serde_json::Value) {
        let invalid = |description: &str| {
            (
                400,
                serde_json::json!({ "error": "invalid_request", "error_description": description }),
            )
        };
        let Some(client_id) = self.client(authorization, form) else {
            return (
                401,
                serde_json::json!({ "error": "unauthorized_client", "error_description": "Missing valid authorization header" }),
            );
        };
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let Some(code) = form.get("code").and_then(|c| self.codes.remove(c)) else {
                    return invalid("Value passed for the authorization code was invalid.");
                };
                if code.client_id != client_id
                    || form.get("redirect_uri") != Some(&code.redirect_uri)
                {
                    return invalid("Value passed for the authorization code was invalid.");
                }
                if let Some(challenge) = &code.challenge {
                    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                    if &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                        return invalid("Value passed for the code verifier was invalid.");
                    }
                }
                let with_refresh = code.scope.split(' ').any(|s| s == "offline.access");
                (
                    200,
                    self.issue(&code.user_id, &client_id, &code.scope, with_refresh),
                )
            }
            Some("refresh_token") => {
                let token = form.get("refresh_token").cloned().unwrap_or_default();
                *self.presented.entry(token.clone()).or_default() += 1;
                let Some(refresh) = self.refresh.get_mut(&token) else {
                    return invalid("Value passed for the token was invalid.");
                };
                if refresh.used || refresh.revoked || refresh.client_id != client_id {
                    return invalid("Value passed for the token was invalid.");
                }
                refresh.used = true;
                let (user, scope) = (refresh.user_id.clone(), refresh.scope.clone());
                self.refreshes += 1;
                (200, self.issue(&user, &client_id, &scope, true))
            }
            _ => invalid("Missing required parameter [grant_type]."),
        }
    }

    /// Exchanges a live access token for a longer-lived one of the same user (Facebook's
    /// `fb_exchange_token`); `None` when the token is not live.
    pub fn exchange(&mut self, token: &str, ttl: Duration) -> Option<serde_json::Value> {
        let user = self.check(token).ok()?;
        let kept = self.token_ttl;
        self.token_ttl = ttl;
        let answer = self.issue(&user, "", "", false);
        self.token_ttl = kept;
        Some(answer)
    }

    /// Mints a token for `user_id` that lives `ttl` (a page token).
    pub fn mint_for(&mut self, user_id: &str, ttl: Duration) -> String {
        let kept = self.token_ttl;
        self.token_ttl = ttl;
        let answer = self.issue(user_id, "", "", false);
        self.token_ttl = kept;
        answer["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Revokes `token` and every token of the same user and client (the grant).
    pub fn revoke(&mut self, token: &str) -> bool {
        let user = self
            .access
            .get(token)
            .map(|a| a.user_id.clone())
            .or_else(|| self.refresh.get(token).map(|r| r.user_id.clone()));
        let Some(user) = user else { return false };
        self.revoke_user(&user);
        true
    }

    /// Revokes every token of `user_id` (the user removed the app).
    pub fn revoke_user(&mut self, user_id: &str) {
        for access in self.access.values_mut().filter(|a| a.user_id == user_id) {
            access.revoked = true;
        }
        for refresh in self.refresh.values_mut().filter(|r| r.user_id == user_id) {
            refresh.revoked = true;
        }
    }

    /// Successful refreshes so far.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// The most times any one refresh token was presented (1 when none was spent twice).
    pub fn most_presentations(&self) -> u32 {
        self.presented.values().copied().max().unwrap_or(0)
    }

    /// Every access and refresh token issued (for scans that must not find them).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.access
            .keys()
            .chain(self.refresh.keys())
            .cloned()
            .collect()
    }
}

/// The consent page: what the user sees after following the authorize URL, a form a
/// browser submits to `action` with the request's parameters and the chosen account.
pub fn consent_page(
    app_name: &str,
    action: &str,
    params: &[(String, String)],
    users: &[(String, String)],
) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let hidden: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let options: String = users
        .iter()
        .map(|(id, name)| format!("<option value=\"{}\">{}</option>", escape(id), escape(name)))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorize {app}</title></head>\
         <body><h1>Authorize {app} to use your account?</h1>\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <label>Sign in as <select name=\"user_id\" id=\"user_id\">{options}</select></label>\
         <button type=\"submit\" id=\"authorize\" name=\"decision\" value=\"allow\">Authorize app</button>\
         <button type=\"submit\" id=\"cancel\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>",
        app = escape(app_name),
        action = escape(action),
    )
}
