//! The X API v2 emulator: mentions, DM events, posting tweets and DMs.
//!
//! Served endpoints (as used by the Twitter connector):
//! - `GET /2/users/{id}/mentions`: `since_id`, `max_results`, `tweet.fields`, `expansions`
//!   (`author_id` adds `includes.users`), newest first, with `meta`;
//! - `GET /2/dm_events`: the authenticated user's one-to-one DM events, newest first;
//! - `POST /2/tweets`: `text` and `reply.in_reply_to_tweet_id`; a repeated text from the
//!   same author is refused with X's duplicate-content 403;
//! - `POST /2/dm_conversations/with/{participant_id}/messages`, with at most one
//!   `attachments[].media_id` uploaded by the sender as `dm_image`;
//! - `POST /2/media/upload` (multipart: `media`, `media_category`): a JPEG, PNG, GIF or WEBP
//!   image up to 5 MB, answered with its `id`; a post's `media.media_ids` (up to 4, uploaded
//!   by the author as `tweet_image`) and a DM's attachment must name such uploads.
//!
//! - `GET /2/users/me`: who the token acts as.
//! - `GET /1.1/ton/data/dm/{dm id}/{media id}/{name}`: a DM's image, to its participants'
//!   tokens only ([`XApi::add_dm_media`], see [`crate::media`]).
//!
//! Webhooks and Account Activity ([`crate::account_activity`]): `GET`/`POST /2/webhooks`
//! with the app-only bearer token (a registration makes a real CRC call to the URL) and
//! `POST`/`GET /2/account_activity/webhooks/{id}/subscriptions/all` with a user's token.
//!
//! OAuth 2.0 ([`crate::oauth`]): `GET /i/oauth2/authorize` (the consent page, a form),
//! `POST /i/oauth2/authorize` (the consent: a redirect with `code` and `state`),
//! `POST /2/oauth2/token` (code with PKCE, or a single-use refresh token that rotates) and
//! `POST /2/oauth2/revoke`. Access tokens live two hours on [`XApi::clock`].
//!
//! Every other request needs `Authorization: Bearer <token>` of a known user (a static
//! token, or a live OAuth token; 401 otherwise, as X answers an expired or revoked one),
//! and every answer carries `x-rate-limit-limit/-remaining/-reset`.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::account_activity::{AccountActivity, Webhook, crc_check};
use crate::oauth::{AuthServer, SimClock, consent_page};
use crate::server::{Fault, Journal, Recorded, Server, Shared, json as reply, lock, query_pairs};

/// A user known to the emulator.
#[derive(Clone, Debug)]
pub struct XUser {
    /// Numeric id as a string.
    pub id: String,
    /// Handle without `@`.
    pub username: String,
    /// Display name.
    pub name: String,
    token: String,
}

/// A tweet to seed.
#[derive(Clone, Debug)]
pub struct NewTweet {
    /// Author id.
    pub author_id: String,
    /// Text.
    pub text: String,
    /// The tweet it replies to, if any.
    pub in_reply_to: Option<String>,
    /// `created_at`, RFC 3339 (defaults to now).
    pub created_at: Option<String>,
}

impl NewTweet {
    /// A new top-level tweet.
    pub fn new(author_id: &str, text: &str) -> Self {
        NewTweet {
            author_id: author_id.to_string(),
            text: text.to_string(),
            in_reply_to: None,
            created_at: None,
        }
    }

    /// Makes it a reply to `tweet_id`.
    pub fn replying_to(mut self, tweet_id: &str) -> Self {
        self.in_reply_to = Some(tweet_id.to_string());
        self
    }
}

/// A stored tweet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tweet {
    /// Id.
    pub id: String,
    /// Author id.
    pub author_id: String,
    /// Text.
    pub text: String,
    /// Root of its reply chain.
    pub conversation_id: String,
    /// Tweet it replies to.
    pub in_reply_to: Option<String>,
    /// Author of that tweet.
    pub in_reply_to_user_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The uploaded media it carries (`media.media_ids`).
    pub media_ids: Vec<String>,
    /// Its versions, the original first, itself last (`edit_history_tweet_ids`): only
    /// itself unless it is an edit.
    pub edit_history: Vec<String>,
}

/// A stored direct message event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmEvent {
    /// Event id.
    pub id: String,
    /// Sender id.
    pub sender_id: String,
    /// Recipient id.
    pub recipient_id: String,
    /// Text.
    pub text: String,
    /// `{smaller id}-{larger id}`.
    pub dm_conversation_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// The uploaded media it carries (`attachments[].media_id`).
    pub media_ids: Vec<String>,
}

#[derive(Debug)]
struct XState {
    users: Vec<XUser>,
    tweets: Vec<Tweet>,
    dms: Vec<DmEvent>,
    next_id: u64,
    auth: AuthServer,
    activity: AccountActivity,
    media: crate::media::Shelf,
    uploads: Vec<crate::media::Uploaded>,
}

impl Default for XState {
    fn default() -> Self {
        XState {
            users: Vec::new(),
            tweets: Vec::new(),
            dms: Vec::new(),
            next_id: 0,
            activity: AccountActivity::default(),
            media: crate::media::Shelf::default(),
            uploads: Vec::new(),
            // X: a user access token lives two hours.
            auth: AuthServer::new("x", std::time::Duration::from_secs(7200)),
        }
    }
}

impl XState {
    fn next_id(&mut self) -> String {
        self.next_id += 1;
        // Snowflake-sized ids: larger than 2^53, as on the real platform.
        (1_860_000_000_000_000_000u64 + self.next_id).to_string()
    }
}

/// The X API v2 emulator. Stops when dropped.
#[derive(Clone, Debug)]
pub struct XApi {
    shared: Shared<XState>,
    server: Arc<Server>,
}

impl XApi {
    /// Starts the emulator on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<XApi> {
        let shared: Shared<XState> = Arc::new((Journal::default(), Mutex::new(XState::default())));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router).await?;
        Ok(XApi {
            shared,
            server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// `127.0.0.1:<port>`, for allow-lists.
    pub fn authority(&self) -> String {
        self.server.addr.to_string()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, XState> {
        lock(&self.shared.1)
    }

    /// Registers a user and the bearer token that acts as them.
    pub fn add_user(&self, id: &str, username: &str, name: &str, token: &str) {
        self.state().users.push(XUser {
            id: id.to_string(),
            username: username.to_string(),
            name: name.to_string(),
            token: token.to_string(),
        });
    }

    /// Publishes a tweet as if its author had written it; returns it.
    pub fn post_tweet(&self, tweet: NewTweet) -> Tweet {
        let mut state = self.state();
        create_tweet(&mut state, tweet)
    }

    /// Edits the tweet `id` as its author would: X keeps the old version and publishes a
    /// new one with a new id, the same thread and the chain of versions; searches find only
    /// the newest. Returns the new version, or `None` if `id` is no tweet.
    pub fn edit_tweet(&self, id: &str, text: &str) -> Option<Tweet> {
        let mut state = self.state();
        let old = state.tweets.iter().find(|t| t.id == id)?.clone();
        let new_id = state.next_id();
        let mut edit_history = old.edit_history.clone();
        edit_history.push(new_id.clone());
        let version = Tweet {
            id: new_id,
            text: text.to_string(),
            created_at: now_rfc3339(),
            edit_history,
            ..old
        };
        state.tweets.push(version.clone());
        Some(version)
    }

    /// Sends a DM as if `sender_id` had written it to `recipient_id`; returns it.
    pub fn send_dm(&self, sender_id: &str, recipient_id: &str, text: &str) -> DmEvent {
        let mut state = self.state();
        create_dm(&mut state, sender_id, recipient_id, text)
    }

    /// Puts an image on a DM, served as X serves DM media: at
    /// `/1.1/ton/data/dm/{dm_event_id}/{media_id}/{name}`, only to the bearer token of one
    /// of `participants` (401 for an unknown token, 403 for another user). Returns its
    /// address (the DM event's `media_url_https`).
    pub fn add_dm_media(
        &self,
        dm_event_id: &str,
        participants: [&str; 2],
        name: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> String {
        let mut state = self.state();
        let media_id = state.next_id();
        let path = format!("/1.1/ton/data/dm/{dm_event_id}/{media_id}/{name}");
        state.media.files.push(crate::media::Shelved {
            path: path.clone(),
            bytes: bytes.to_vec(),
            content_type: content_type.to_string(),
            readers: participants.iter().map(|p| p.to_string()).collect(),
            expires_at: None,
            served: 0,
        });
        format!("{}{path}", self.base_url())
    }

    /// The media uploaded through `POST /2/media/upload`, in order.
    pub fn uploads(&self) -> Vec<crate::media::Uploaded> {
        self.state().uploads.clone()
    }

    /// Times the DM media at `url` was served.
    pub fn media_served(&self, url: &str) -> u32 {
        let path = url.strip_prefix(&self.base_url()).unwrap_or(url);
        self.state().media.find(path).map_or(0, |f| f.served)
    }

    /// Deletes the DM media at `url`, as when the DM is deleted: X answers 404 for it.
    pub fn remove_dm_media(&self, url: &str) {
        let path = url
            .strip_prefix(&self.base_url())
            .unwrap_or(url)
            .to_string();
        self.state().media.files.retain(|f| f.path != path);
    }

    /// Tweets stored so far (seeded and posted through the API).
    pub fn tweets(&self) -> Vec<Tweet> {
        self.state().tweets.clone()
    }

    /// DM events stored so far.
    pub fn dms(&self) -> Vec<DmEvent> {
        self.state().dms.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.0.requests()
    }

    /// Makes the next `times` requests whose path contains `path_contains` fail with `fault`.
    pub fn inject(&self, path_contains: &str, fault: Fault, times: u32) {
        self.shared.0.inject(path_contains, fault, times);
    }

    /// Forgets every fault still waiting to be injected: the platform is healthy again.
    pub fn clear_faults(&self) {
        self.shared.0.clear_faults();
    }

    /// Registers an OAuth 2.0 app (client id and secret) with the authorization server.
    pub fn add_oauth_client(&self, id: &str, secret: &str) {
        self.state().auth.add_client(id, secret);
    }

    /// The clock OAuth tokens expire on (the wall clock until a test moves it).
    pub fn clock(&self) -> SimClock {
        self.state().auth.clock.clone()
    }

    /// How long new access tokens live. Default: two hours, as on X.
    pub fn set_token_ttl(&self, ttl: std::time::Duration) {
        self.state().auth.token_ttl = ttl;
    }

    /// Successful token refreshes so far.
    pub fn refreshes(&self) -> u32 {
        self.state().auth.refreshes()
    }

    /// The most times one refresh token was presented (more than 1: one was spent twice).
    pub fn most_refresh_presentations(&self) -> u32 {
        self.state().auth.most_presentations()
    }

    /// Revokes every OAuth token of `user_id`, as when the user removes the app.
    pub fn revoke_user(&self, user_id: &str) {
        self.state().auth.revoke_user(user_id);
    }

    /// Every OAuth token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().auth.issued_tokens()
    }

    /// The app's webhook credentials: its app-only bearer token (for `/2/webhooks`) and
    /// the consumer secret a CRC answer must be an HMAC with.
    pub fn set_webhook_app(&self, app_token: &str, consumer_secret: &str) {
        let mut state = self.state();
        state.activity.app_token = Some(app_token.to_string());
        state.activity.consumer_secret = Some(consumer_secret.to_string());
    }

    /// The webhooks registered.
    pub fn webhooks(&self) -> Vec<Webhook> {
        self.state().activity.webhooks.clone()
    }

    /// Webhook registrations accepted so far.
    pub fn webhook_registrations(&self) -> u32 {
        self.state().activity.registrations
    }

    /// CRC checks made so far, and how many were answered correctly.
    pub fn crc_checks(&self) -> (u32, u32) {
        let state = self.state();
        (state.activity.crc_checks, state.activity.crc_passed)
    }

    /// Account Activity subscriptions: `(webhook id, user id)`.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.state()
            .activity
            .subscriptions
            .iter()
            .cloned()
            .collect()
    }

    /// Subscription calls received, repeats included.
    pub fn subscribe_calls(&self) -> u32 {
        self.state().activity.subscribe_calls
    }
}

/// `POST /2/webhooks`: checked, then the CRC call (made without holding the state), then
/// registered.
async fn register_webhook(shared: &Shared<XState>, request: &Recorded) -> Response {
    let (url, secret, seed) = {
        let state = lock(&shared.1);
        if !state.activity.is_app(request.header("authorization")) {
            return problem(401, "Unauthorized", "Unauthorized");
        }
        match state.activity.precheck(&request.json()) {
            Ok(url) => (
                url,
                state.activity.consumer_secret.clone().unwrap_or_default(),
                u64::from(state.activity.crc_checks),
            ),
            Err((status, body)) => return reply(status, rate_headers(449, 900), body),
        }
    };
    let crc_ok = crc_check(&url, &secret, seed).await;
    let (status, body) = lock(&shared.1).activity.register(url, crc_ok);
    reply(status, rate_headers(449, 900), body)
}

/// `url` with `pairs` added to its query, percent-encoded.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let mut out = url.to_string();
    for (index, (k, v)) in pairs.iter().enumerate() {
        let joiner = if index == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(joiner);
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// X's OAuth 2.0 endpoints: the consent page, the consent's redirect, token and revoke.
fn oauth(state: &mut XState, request: &Recorded) -> Option<Response> {
    let form: std::collections::HashMap<String, String> =
        query_pairs(&String::from_utf8_lossy(&request.body))
            .into_iter()
            .collect();
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/i/oauth2/authorize") => {
            let params = query_pairs(&request.query);
            let users: Vec<(String, String)> = state
                .users
                .iter()
                .map(|u| (u.id.clone(), format!("@{}", u.username)))
                .collect();
            let page = consent_page("centralino", "/i/oauth2/authorize", &params, &users);
            Some(
                Response::builder()
                    .status(200)
                    .header("content-type", "text/html; charset=utf-8")
                    .body(axum::body::Body::from(page))
                    .unwrap_or_default(),
            )
        }
        ("POST", "/i/oauth2/authorize") => {
            let get = |k: &str| form.get(k).cloned().unwrap_or_default();
            let redirect = get("redirect_uri");
            let location = if get("decision") == "deny" {
                with_query(
                    &redirect,
                    &[("error", "access_denied"), ("state", &get("state"))],
                )
            } else {
                let challenge = form.get("code_challenge").map(String::as_str);
                let Some(code) = state.auth.consent(
                    &get("client_id"),
                    &get("user_id"),
                    &redirect,
                    challenge,
                    &get("scope"),
                ) else {
                    return Some(problem(400, "Invalid Request", "Unknown client."));
                };
                with_query(&redirect, &[("state", &get("state")), ("code", &code)])
            };
            Some(
                Response::builder()
                    .status(302)
                    .header("location", location)
                    .body(axum::body::Body::empty())
                    .unwrap_or_default(),
            )
        }
        ("POST", "/2/oauth2/token") => {
            let (status, body) = state.auth.token(request.header("authorization"), &form);
            Some(reply(status, Vec::new(), body))
        }
        ("POST", "/2/oauth2/revoke") => {
            let token = form.get("token").cloned().unwrap_or_default();
            let revoked = state.auth.revoke(&token);
            Some(reply(200, Vec::new(), json!({ "revoked": revoked })))
        }
        _ => None,
    }
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats epoch seconds as `YYYY-MM-DDTHH:MM:SS.000Z`.
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn create_tweet(state: &mut XState, tweet: NewTweet) -> Tweet {
    let id = state.next_id();
    let edit_history = vec![id.clone()];
    let parent = tweet
        .in_reply_to
        .as_ref()
        .and_then(|p| state.tweets.iter().find(|t| &t.id == p))
        .cloned();
    let stored = Tweet {
        conversation_id: parent
            .as_ref()
            .map_or_else(|| id.clone(), |p| p.conversation_id.clone()),
        in_reply_to_user_id: parent.map(|p| p.author_id),
        id,
        author_id: tweet.author_id,
        text: tweet.text,
        in_reply_to: tweet.in_reply_to,
        created_at: tweet.created_at.unwrap_or_else(now_rfc3339),
        media_ids: Vec::new(),
        edit_history,
    };
    state.tweets.push(stored.clone());
    stored
}

fn create_dm(state: &mut XState, sender_id: &str, recipient_id: &str, text: &str) -> DmEvent {
    let (a, b) = if sender_id.len() < recipient_id.len()
        || sender_id.len() == recipient_id.len() && sender_id < recipient_id
    {
        (sender_id, recipient_id)
    } else {
        (recipient_id, sender_id)
    };
    let event = DmEvent {
        id: state.next_id(),
        sender_id: sender_id.to_string(),
        recipient_id: recipient_id.to_string(),
        text: text.to_string(),
        dm_conversation_id: format!("{a}-{b}"),
        created_at: now_rfc3339(),
        media_ids: Vec::new(),
    };
    state.dms.push(event.clone());
    event
}

fn rate_headers(remaining: u64, reset_after: u64) -> Vec<(&'static str, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    vec![
        ("x-rate-limit-limit", "450".to_string()),
        ("x-rate-limit-remaining", remaining.to_string()),
        ("x-rate-limit-reset", (now + reset_after).to_string()),
    ]
}

fn problem(status: u16, title: &str, detail: &str) -> Response {
    reply(
        status,
        rate_headers(449, 900),
        json!({ "title": title, "type": "about:blank", "status": status, "detail": detail }),
    )
}

async fn handle(
    State(shared): State<Shared<XState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = shared.0.record(&method, &uri, &headers, &body);
    let spent = match shared.0.take_fault(&request.path) {
        Some(Fault::LastInWindow { reset_after_secs }) => Some(reset_after_secs),
        other => {
            if let Some(response) = fault_answer(other).await {
                return response;
            }
            None
        }
    };
    let mut response = respond(&shared, request).await;
    if let Some(reset_after_secs) = spent {
        for (name, value) in rate_headers(0, reset_after_secs) {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

/// The answer a fault gives instead of the normal one, if it replaces it.
async fn fault_answer(fault: Option<Fault>) -> Option<Response> {
    match fault {
        Some(Fault::RateLimited { reset_after_secs }) => Some(reply(
            429,
            rate_headers(0, reset_after_secs),
            json!({ "title": "Too Many Requests", "type": "about:blank", "status": 429, "detail": "Too Many Requests" }),
        )),
        Some(Fault::ServerError(status)) => Some(problem(
            status,
            "Service Unavailable",
            "Service Unavailable",
        )),
        Some(Fault::ExpiredToken) => Some(problem(401, "Unauthorized", "Unauthorized")),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(Fault::LastInWindow { .. }) | None => None,
    }
}

/// The normal answer to `request`.
async fn respond(shared: &Shared<XState>, request: Recorded) -> Response {
    if request.path == "/2/webhooks" && request.method == "POST" {
        return register_webhook(shared, &request).await;
    }
    let mut state = lock(&shared.1);
    if let Some(answer) = oauth(&mut state, &request) {
        return answer;
    }
    if request.path == "/2/webhooks" && request.method == "GET" {
        if !state.activity.is_app(request.header("authorization")) {
            return problem(401, "Unauthorized", "Unauthorized");
        }
        let (status, body) = state.activity.list();
        return reply(status, rate_headers(449, 900), body);
    }
    let token = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // A static token of a known user, or an OAuth token that is live on the clock.
    let user_id = state.auth.check(token).ok();
    let Some(me) = state
        .users
        .iter()
        .find(|u| u.token == token || user_id.as_deref() == Some(u.id.as_str()))
        .cloned()
    else {
        return problem(401, "Unauthorized", "Unauthorized");
    };
    if request.method == "GET" && request.path.starts_with("/1.1/ton/data/dm/") {
        let Some(file) = state.media.find(&request.path) else {
            return crate::media::refuse(404, "Not Found");
        };
        if !file.readers.contains(&me.id) {
            return crate::media::refuse(403, "Forbidden");
        }
        return crate::media::serve(file);
    }
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["2", "users", id, "mentions"]) => mentions(&state, id, &request),
        ("GET", ["2", "dm_events"]) => dm_events(&state, &me, &request),
        ("GET", ["2", "users", "me"]) => reply(
            200,
            rate_headers(449, 900),
            json!({ "data": { "id": me.id, "name": me.name, "username": me.username } }),
        ),
        ("POST", ["2", "tweets"]) => post_tweet(&mut state, &me, &request),
        ("POST", ["2", "media", "upload"]) => upload_media(&mut state, &me, &request),
        (
            method @ ("GET" | "POST"),
            [
                "2",
                "account_activity",
                "webhooks",
                webhook,
                "subscriptions",
                "all",
            ],
        ) => {
            let (status, body) = state.activity.subscription(method, webhook, &me.id);
            reply(status, rate_headers(449, 900), body)
        }
        ("POST", ["2", "dm_conversations", "with", participant, "messages"]) => {
            let Some(text) = request.json()["text"].as_str().map(str::to_string) else {
                return problem(
                    400,
                    "Invalid Request",
                    "One or more parameters to your request was invalid.",
                );
            };
            if !state.users.iter().any(|u| u.id == *participant) {
                return problem(
                    400,
                    "Invalid Request",
                    "The `participant_id` is not a valid user.",
                );
            }
            let media_ids = match dm_media(&state, &me, &request.json()) {
                Ok(ids) => ids,
                Err(detail) => return problem(400, "Invalid Request", &detail),
            };
            let mut event = create_dm(&mut state, &me.id, participant, &text);
            event.media_ids = media_ids;
            if let Some(stored) = state.dms.iter_mut().find(|d| d.id == event.id) {
                stored.media_ids = event.media_ids.clone();
            }
            reply(
                201,
                rate_headers(449, 900),
                json!({ "data": { "dm_conversation_id": event.dm_conversation_id, "dm_event_id": event.id } }),
            )
        }
        _ => problem(404, "Not Found Error", "Sorry, that page does not exist"),
    }
}

fn requested(request: &Recorded, param: &str) -> Vec<String> {
    request
        .query_param(param)
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn id_number(id: &str) -> u128 {
    id.parse().unwrap_or(0)
}

fn mentions(state: &XState, user_id: &str, request: &Recorded) -> Response {
    let Some(user) = state.users.iter().find(|u| u.id == user_id) else {
        return problem(
            400,
            "Invalid Request",
            "The `id` query parameter value is not valid.",
        );
    };
    let handle = format!("@{}", user.username.to_lowercase());
    let since = request
        .query_param("since_id")
        .map(|s| id_number(&s))
        .unwrap_or(0);
    let max = request
        .query_param("max_results")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(5, 100);
    let mut found: Vec<&Tweet> = state
        .tweets
        .iter()
        .filter(|t| {
            t.author_id != user.id
                && t.text.to_lowercase().contains(&handle)
                && id_number(&t.id) > since
                && is_latest_version(state, t)
        })
        .collect();
    found.sort_by_key(|t| std::cmp::Reverse(id_number(&t.id)));
    found.truncate(max);
    let fields = requested(request, "tweet.fields");
    let data: Vec<Value> = found.iter().map(|t| tweet_json(t, &fields)).collect();
    let mut body = json!({ "meta": { "result_count": data.len() } });
    if let (Some(newest), Some(oldest)) = (found.first(), found.last()) {
        body["meta"]["newest_id"] = json!(newest.id);
        body["meta"]["oldest_id"] = json!(oldest.id);
        body["data"] = json!(data);
        if requested(request, "expansions")
            .iter()
            .any(|e| e == "author_id")
        {
            body["includes"] =
                json!({ "users": users_json(state, found.iter().map(|t| t.author_id.as_str())) });
        }
    }
    reply(200, rate_headers(449, 900), body)
}

/// Whether no later edit of `t` exists (X's searches return a post's newest version).
fn is_latest_version(state: &XState, t: &Tweet) -> bool {
    !state.tweets.iter().any(|other| {
        other.edit_history.len() > t.edit_history.len() && other.edit_history.contains(&t.id)
    })
}

fn tweet_json(t: &Tweet, fields: &[String]) -> Value {
    let mut v = json!({ "id": t.id, "text": t.text, "edit_history_tweet_ids": t.edit_history });
    let wants = |f: &str| fields.iter().any(|x| x == f);
    if wants("author_id") {
        v["author_id"] = json!(t.author_id);
    }
    if wants("conversation_id") {
        v["conversation_id"] = json!(t.conversation_id);
    }
    if wants("created_at") {
        v["created_at"] = json!(t.created_at);
    }
    if wants("in_reply_to_user_id")
        && let Some(u) = &t.in_reply_to_user_id
    {
        v["in_reply_to_user_id"] = json!(u);
    }
    if wants("referenced_tweets")
        && let Some(parent) = &t.in_reply_to
    {
        v["referenced_tweets"] = json!([{ "type": "replied_to", "id": parent }]);
    }
    v
}

fn users_json<'a>(state: &XState, ids: impl Iterator<Item = &'a str>) -> Vec<Value> {
    let mut seen: Vec<&str> = Vec::new();
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen.iter()
        .filter_map(|id| state.users.iter().find(|u| u.id == *id))
        .map(|u| json!({ "id": u.id, "name": u.name, "username": u.username }))
        .collect()
}

fn dm_events(state: &XState, me: &XUser, request: &Recorded) -> Response {
    let max = request
        .query_param("max_results")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let mut events: Vec<&DmEvent> = state
        .dms
        .iter()
        .filter(|d| d.sender_id == me.id || d.recipient_id == me.id)
        .collect();
    events.sort_by_key(|d| std::cmp::Reverse(id_number(&d.id)));
    events.truncate(max);
    let fields = requested(request, "dm_event.fields");
    let wants = |f: &str| fields.iter().any(|x| x == f);
    let data: Vec<Value> = events
        .iter()
        .map(|d| {
            let mut v = json!({ "id": d.id, "event_type": "MessageCreate", "text": d.text });
            if wants("sender_id") {
                v["sender_id"] = json!(d.sender_id);
            }
            if wants("dm_conversation_id") {
                v["dm_conversation_id"] = json!(d.dm_conversation_id);
            }
            if wants("created_at") {
                v["created_at"] = json!(d.created_at);
            }
            if wants("participant_ids") {
                v["participant_ids"] = json!([d.sender_id, d.recipient_id]);
            }
            v
        })
        .collect();
    let mut body = json!({ "meta": { "result_count": data.len() } });
    if !data.is_empty() {
        body["data"] = json!(data);
        if requested(request, "expansions")
            .iter()
            .any(|e| e == "sender_id")
        {
            body["includes"] =
                json!({ "users": users_json(state, events.iter().map(|d| d.sender_id.as_str())) });
        }
    }
    reply(200, rate_headers(449, 900), body)
}

fn post_tweet(state: &mut XState, me: &XUser, request: &Recorded) -> Response {
    let body = request.json();
    let Some(text) = body["text"].as_str() else {
        return problem(
            400,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
        );
    };
    if state
        .tweets
        .iter()
        .any(|t| t.author_id == me.id && t.text == text)
    {
        return problem(
            403,
            "Forbidden",
            "You are not allowed to create a Tweet with duplicate content.",
        );
    }
    let in_reply_to = body["reply"]["in_reply_to_tweet_id"]
        .as_str()
        .map(str::to_string);
    if let Some(parent) = &in_reply_to
        && !state.tweets.iter().any(|t| &t.id == parent)
    {
        return problem(
            400,
            "Invalid Request",
            "The `in_reply_to_tweet_id` does not exist.",
        );
    }
    let media_ids: Vec<String> = body["media"]["media_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| id.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    if media_ids.len() > 4 {
        return problem(
            400,
            "Invalid Request",
            "Your media IDs are invalid: a post carries at most 4 images.",
        );
    }
    for id in &media_ids {
        if let Err(detail) = usable_media(state, me, id, "tweet_") {
            return problem(400, "Invalid Request", &detail);
        }
    }
    let mut tweet = create_tweet(
        state,
        NewTweet {
            author_id: me.id.clone(),
            text: text.to_string(),
            in_reply_to,
            created_at: None,
        },
    );
    tweet.media_ids = media_ids;
    if let Some(stored) = state.tweets.iter_mut().find(|t| t.id == tweet.id) {
        stored.media_ids = tweet.media_ids.clone();
    }
    reply(
        201,
        rate_headers(449, 900),
        json!({ "data": { "id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id] } }),
    )
}

/// Largest image X takes (5 MB).
const MAX_IMAGE_BYTES: usize = 5 * 1000 * 1000;

/// `POST /2/media/upload` (one-shot, multipart): the file in `media`, its use in
/// `media_category`; the user's token decides who owns it.
fn upload_media(state: &mut XState, me: &XUser, request: &Recorded) -> Response {
    let parts = match crate::media::multipart(request.header("content-type"), &request.body) {
        Ok(parts) => parts,
        Err(why) => return problem(400, "Invalid Request", &why),
    };
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let Some(media) = field("media").filter(|p| !p.body.is_empty()) else {
        return problem(400, "Invalid Request", "The `media` field is required.");
    };
    let category = field("media_category")
        .map(|p| String::from_utf8_lossy(&p.body).into_owned())
        .unwrap_or_else(|| "tweet_image".to_string());
    if !["tweet_image", "dm_image", "tweet_gif", "dm_gif"].contains(&category.as_str()) {
        return problem(
            400,
            "Invalid Request",
            &format!("The `media_category` value `{category}` is not valid for an image."),
        );
    }
    let Some(content_type) = crate::media::sniff_image(&media.body) else {
        return problem(
            400,
            "Invalid Request",
            "media type unrecognized: the file is not a JPEG, PNG, GIF or WEBP image.",
        );
    };
    if media.body.len() > MAX_IMAGE_BYTES {
        return problem(400, "Invalid Request", "File size exceeds 5242880 bytes.");
    }
    let id = state.next_id();
    state.uploads.push(crate::media::Uploaded {
        id: id.clone(),
        owner: me.id.clone(),
        category: category.clone(),
        content_type: content_type.to_string(),
        bytes: media.body.clone(),
    });
    reply(
        200,
        rate_headers(449, 900),
        json!({ "data": {
            "id": id,
            "media_key": format!("3_{id}"),
            "size": media.body.len(),
            "expires_after_secs": 86400,
            "image": { "image_type": content_type },
        } }),
    )
}

/// Whether `id` is media `me` uploaded for the use `prefix` names (`tweet_`, `dm_`); the
/// detail of X's 400 when it is not.
fn usable_media(state: &XState, me: &XUser, id: &str, prefix: &str) -> Result<(), String> {
    match state.uploads.iter().find(|u| u.id == id) {
        Some(upload) if upload.owner != me.id => Err(format!(
            "Media id {id} was not uploaded by the authenticated user."
        )),
        Some(upload) if !upload.category.starts_with(prefix) => Err(format!(
            "Media id {id} was uploaded with media_category `{}`, not for this use.",
            upload.category
        )),
        Some(_) => Ok(()),
        None => Err(format!("Your media IDs are invalid: {id} is unknown.")),
    }
}

/// The media of a DM request (`attachments: [{ media_id }]`, at most one, `dm_` media);
/// the detail of X's 400 when they are not acceptable.
fn dm_media(state: &XState, me: &XUser, body: &Value) -> Result<Vec<String>, String> {
    let Some(attachments) = body.get("attachments") else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = attachments
        .as_array()
        .map(|a| {
            a.iter()
                .map(|item| item["media_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    if ids.len() != 1 {
        return Err("A direct message carries exactly one attachment.".to_string());
    }
    for id in &ids {
        usable_media(state, me, id, "dm_")?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_epoch_seconds_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_324_000), "2025-11-28T10:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
