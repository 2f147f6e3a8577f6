//! The Graph API emulator: the Messenger Send API and replies to page comments.
//!
//! Served endpoints (as used by the Facebook connector):
//! - `POST /{version}/me/messages?access_token=…`: `recipient.id` (a PSID) or
//!   `recipient.comment_id` (a private reply), `messaging_type`, `message.text`;
//! - `POST /{version}/{comment-id}/comments?access_token=…`: a public reply (`message`);
//! - `POST /{version}/me/message_attachments?access_token=…` (multipart: `message` with
//!   the attachment's `type`, `filedata`): the Attachment Upload API, answering an
//!   `attachment_id` that a Send API message (`message.attachment.payload.attachment_id`,
//!   without `text`) then carries;
//! - `GET /cdn/…?oe=…`: a customer's attachment at its signed address, until it expires
//!   ([`GraphApi::add_attachment`], see [`crate::media`]).
//!
//! Facebook Login ([`crate::oauth`]): `GET /{version}/dialog/oauth` (a consent form),
//! its redirect with `code`, `/{version}/oauth/access_token` (a code, or
//! `grant_type=fb_exchange_token` for a long-lived user token) and
//! `GET /{version}/me/accounts` (the user's pages, each with a page token), and
//! `POST /{version}/{page-id}/subscribed_apps` (`subscribed_fields`, with the page's token).
//!
//! The token in `access_token` decides the page; an unknown token is error 190. A message
//! to a customer who has not written within 24 hours is refused with error 10, subcode
//! 2018278, as the platform does, unless it is sent as `messaging_type: MESSAGE_TAG` with
//! `tag: HUMAN_AGENT`, which is accepted for 7 days; [`GraphApi::customer_wrote`] (and
//! [`GraphApi::customer_wrote_ago`]) open that window. Answers
//! carry `x-app-usage`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::json;

use crate::oauth::{AuthServer, consent_page};
use crate::server::{Fault, Journal, Recorded, Server, Shared, json as reply, lock, query_pairs};

/// The standard messaging window.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The window of the `HUMAN_AGENT` message tag.
const HUMAN_AGENT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// A message or comment reply the emulator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The page that sent it.
    pub page_id: String,
    /// PSID, or `comment:<id>` for private replies and public comment replies.
    pub recipient: String,
    /// Text (empty for an attachment).
    pub text: String,
    /// Id the emulator gave it.
    pub id: String,
    /// The uploaded attachment it carries (`message.attachment.payload.attachment_id`).
    pub attachment_id: Option<String>,
}

#[derive(Debug)]
struct GraphState {
    pages: Vec<(String, String)>,
    /// When each customer last wrote to each page (ms on the login clock).
    windows: Vec<(String, String, u64)>,
    delivered: Vec<Delivered>,
    next_id: u64,
    /// The version every answer says served it (as Meta does for a retired one); `None`
    /// names the version the request asked for.
    serves: Option<String>,
    auth: AuthServer,
    /// Facebook users who can log in.
    users: Vec<FacebookUser>,
    /// Page id → the fields the app is subscribed to (`subscribed_apps`).
    subscriptions: std::collections::BTreeMap<String, String>,
    /// Attachments served at their signed addresses (see [`crate::media`]).
    media: crate::media::Shelf,
    /// Files uploaded through the Attachment Upload API.
    uploads: Vec<crate::media::Uploaded>,
}

/// A Facebook user: id, name, and the pages they manage (id, name).
type FacebookUser = (String, String, Vec<(String, String)>);

impl Default for GraphState {
    fn default() -> Self {
        GraphState {
            pages: Vec::new(),
            windows: Vec::new(),
            delivered: Vec::new(),
            next_id: 0,
            serves: None,
            // A user token from the login dialog lives about two hours.
            auth: AuthServer::new("fb", Duration::from_secs(7200)),
            users: Vec::new(),
            subscriptions: std::collections::BTreeMap::new(),
            media: crate::media::Shelf::default(),
            uploads: Vec::new(),
        }
    }
}

/// A long-lived user token lives about 60 days.
const LONG_LIVED: Duration = Duration::from_secs(60 * 24 * 3600);

/// Facebook Login and the page-token exchange: the login dialog (a consent form), its
/// redirect, `oauth/access_token` (a code, or `fb_exchange_token`) and `me/accounts`.
fn login(state: &mut GraphState, request: &Recorded) -> Option<Response> {
    let mut form: std::collections::HashMap<String, String> =
        query_pairs(&request.query).into_iter().collect();
    form.extend(query_pairs(&String::from_utf8_lossy(&request.body)));
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", [version, "dialog", "oauth"]) => {
            let params = query_pairs(&request.query);
            let users: Vec<(String, String)> = state
                .users
                .iter()
                .map(|(id, name, _)| (id.clone(), name.clone()))
                .collect();
            let action = format!("/{version}/dialog/oauth");
            let page = consent_page("centralino", &action, &params, &users);
            Some(
                Response::builder()
                    .status(200)
                    .header("content-type", "text/html; charset=utf-8")
                    .body(axum::body::Body::from(page))
                    .unwrap_or_default(),
            )
        }
        ("POST", [_version, "dialog", "oauth"]) => {
            let redirect = get("redirect_uri");
            let joiner = if redirect.contains('?') { '&' } else { '?' };
            let location = if get("decision") == "deny" {
                format!(
                    "{redirect}{joiner}error=access_denied&state={}",
                    get("state")
                )
            } else {
                let code = state.auth.consent(
                    &get("client_id"),
                    &get("user_id"),
                    &redirect,
                    None,
                    &get("scope"),
                )?;
                format!("{redirect}{joiner}code={code}&state={}", get("state"))
            };
            Some(
                Response::builder()
                    .status(302)
                    .header("location", location)
                    .body(axum::body::Body::empty())
                    .unwrap_or_default(),
            )
        }
        (_, [_version, "oauth", "access_token"]) => {
            if get("grant_type") == "fb_exchange_token" {
                if state.auth.client(None, &form).is_none() {
                    return Some(graph_error(
                        400,
                        101,
                        None,
                        "OAuthException",
                        "Error validating application. Invalid application ID.",
                    ));
                }
                return Some(
                    match state.auth.exchange(&get("fb_exchange_token"), LONG_LIVED) {
                        Some(answer) => reply(200, usage(1), answer),
                        None => graph_error(
                            400,
                            190,
                            None,
                            "OAuthException",
                            "Error validating access token: The session has been invalidated.",
                        ),
                    },
                );
            }
            if !form.contains_key("grant_type") {
                form.insert("grant_type".into(), "authorization_code".into());
            }
            let (status, answer) = state.auth.token(None, &form);
            Some(if status == 200 {
                reply(200, usage(1), answer)
            } else {
                graph_error(
                    400,
                    100,
                    None,
                    "OAuthException",
                    "Invalid verification code format.",
                )
            })
        }
        ("GET", [_version, "me", "accounts"]) => {
            let token = get("access_token");
            let Ok(user) = state.auth.check(&token) else {
                return Some(graph_error(
                    400,
                    190,
                    None,
                    "OAuthException",
                    "Invalid OAuth access token - Cannot parse access token",
                ));
            };
            let managed = state
                .users
                .iter()
                .find(|(id, _, _)| *id == user)
                .map(|(_, _, pages)| pages.clone())
                .unwrap_or_default();
            let mut data = Vec::new();
            for (page_id, name) in managed {
                // A page token from a long-lived user token does not expire.
                let page_token = state.auth.mint_for(
                    &format!("page:{page_id}"),
                    Duration::from_secs(u64::from(u32::MAX)),
                );
                state.pages.push((page_id.clone(), page_token.clone()));
                data.push(json!({ "id": page_id, "name": name, "access_token": page_token, "category": "Telecommunication Company", "tasks": ["MANAGE", "MESSAGING"] }));
            }
            Some(reply(200, usage(1), json!({ "data": data })))
        }
        _ => None,
    }
}

/// The Graph API emulator. Stops when dropped.
#[derive(Clone, Debug)]
pub struct GraphApi {
    shared: Shared<GraphState>,
    server: Arc<Server>,
}

impl GraphApi {
    /// Starts the emulator on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<GraphApi> {
        let shared: Shared<GraphState> =
            Arc::new((Journal::default(), Mutex::new(GraphState::default())));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router).await?;
        Ok(GraphApi {
            shared,
            server: Arc::new(server),
        })
    }

    /// Puts a customer's attachment on the content network: served without a token at
    /// the returned address (a webhook's `payload.url`) for `ttl`, then refused with 403
    /// `URL signature expired`, as Messenger's signed addresses are.
    pub fn add_attachment(
        &self,
        name: &str,
        bytes: &[u8],
        content_type: &str,
        ttl: Duration,
    ) -> String {
        let mut state = lock(&self.shared.1);
        state.next_id += 1;
        let path = format!("/cdn/v/t1.15752-9/{}_{name}", state.next_id);
        let expires_at = crate::media::now_secs() + ttl.as_secs();
        state.media.files.push(crate::media::Shelved {
            path: path.clone(),
            bytes: bytes.to_vec(),
            content_type: content_type.to_string(),
            readers: Vec::new(),
            expires_at: Some(expires_at),
            served: 0,
        });
        format!(
            "{}{path}?_nc_cat=1&_nc_sid=8cd0a2&oh=03_emulator&oe={expires_at:X}",
            self.base_url()
        )
    }

    /// The files uploaded through `POST /{version}/me/message_attachments`, in order.
    pub fn uploads(&self) -> Vec<crate::media::Uploaded> {
        lock(&self.shared.1).uploads.clone()
    }

    /// Lets every attachment address pass its `oe` time: each is refused from now on.
    pub fn expire_attachments(&self) {
        for file in &mut lock(&self.shared.1).media.files {
            file.expires_at = Some(0);
        }
    }

    /// Times the attachment at `url` was served.
    pub fn attachment_served(&self, url: &str) -> u32 {
        let path = url
            .strip_prefix(&self.base_url())
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        lock(&self.shared.1)
            .media
            .find(&path)
            .map_or(0, |f| f.served)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// `127.0.0.1:<port>`, for allow-lists.
    pub fn authority(&self) -> String {
        self.server.addr.to_string()
    }

    /// Registers a page and its page access token.
    pub fn add_page(&self, page_id: &str, token: &str) {
        lock(&self.shared.1)
            .pages
            .push((page_id.to_string(), token.to_string()));
    }

    /// Registers an app with Facebook Login.
    pub fn add_oauth_client(&self, id: &str, secret: &str) {
        lock(&self.shared.1).auth.add_client(id, secret);
    }

    /// A Facebook user who can log in, with the pages (id, name) they manage.
    pub fn add_user(&self, user_id: &str, name: &str, pages: &[(&str, &str)]) {
        lock(&self.shared.1).users.push((
            user_id.to_string(),
            name.to_string(),
            pages
                .iter()
                .map(|(id, name)| ((*id).to_string(), (*name).to_string()))
                .collect(),
        ));
    }

    /// The pages the app is subscribed to, with their subscribed fields.
    pub fn subscriptions(&self) -> std::collections::BTreeMap<String, String> {
        lock(&self.shared.1).subscriptions.clone()
    }

    /// Every token Facebook Login issued (user and page tokens).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.1).auth.issued_tokens()
    }

    /// Records that customer `psid` wrote to `page_id` now, opening the 24-hour window.
    pub fn customer_wrote(&self, page_id: &str, psid: &str) {
        self.customer_wrote_ago(page_id, psid, Duration::ZERO);
    }

    /// Records that customer `psid` last wrote to `page_id` `ago` before now.
    pub fn customer_wrote_ago(&self, page_id: &str, psid: &str, ago: Duration) {
        let mut state = lock(&self.shared.1);
        let at = state
            .auth
            .clock
            .now_ms()
            .saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX));
        state
            .windows
            .retain(|(p, c, _)| !(p == page_id && c == psid));
        state
            .windows
            .push((page_id.to_string(), psid.to_string(), at));
    }

    /// Everything the pages sent.
    pub fn delivered(&self) -> Vec<Delivered> {
        lock(&self.shared.1).delivered.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.0.requests()
    }

    /// Answers every request as served by `version` (`facebook-api-version`), whatever it
    /// asked for: what Graph does when the version asked for is retired.
    pub fn serve_version(&self, version: &str) {
        lock(&self.shared.1).serves = Some(version.to_string());
    }

    /// Makes the next `times` requests whose path contains `path_contains` fail with `fault`.
    pub fn inject(&self, path_contains: &str, fault: Fault, times: u32) {
        self.shared.0.inject(path_contains, fault, times);
    }
}

fn usage(percent: u64) -> Vec<(&'static str, String)> {
    vec![(
        "x-app-usage",
        format!(r#"{{"call_count":{percent},"total_cputime":1,"total_time":1}}"#),
    )]
}

fn graph_error(http: u16, code: u64, subcode: Option<u64>, kind: &str, message: &str) -> Response {
    let mut error =
        json!({ "message": message, "type": kind, "code": code, "fbtrace_id": "AcentralinoEmu" });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    reply(http, usage(1), json!({ "error": error }))
}

/// Every answer names the version that served it in `facebook-api-version`, as Graph's do.
async fn handle(
    State(shared): State<Shared<GraphState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = uri
        .path()
        .trim_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let serves = lock(&shared.1).serves.clone().unwrap_or(asked);
    let mut response = answer(State(shared), method, uri, headers, body).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&serves) {
        response.headers_mut().insert("facebook-api-version", value);
    }
    response
}

async fn answer(
    State(shared): State<Shared<GraphState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = shared.0.record(&method, &uri, &headers, &body);
    match shared.0.take_fault(&request.path) {
        Some(Fault::RateLimited { .. }) => {
            return reply(
                400,
                usage(100),
                json!({ "error": { "message": "(#613) Calls to this api have exceeded the rate limit.", "type": "OAuthException", "code": 613, "fbtrace_id": "AcentralinoEmu" } }),
            );
        }
        Some(Fault::ServerError(status)) => {
            return graph_error(
                status,
                2,
                None,
                "OAuthException",
                "An unexpected error has occurred. Please retry your request later.",
            );
        }
        Some(Fault::ExpiredToken) => {
            return graph_error(
                400,
                190,
                Some(463),
                "OAuthException",
                "Error validating access token: Session has expired on Saturday, 28-Nov-26 09:00:00 PST.",
            );
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::LastInWindow { .. }) => {}
        None => {}
    }
    if request.method == "GET" && request.path.starts_with("/cdn/") {
        let mut state = lock(&shared.1);
        let Some(file) = state.media.find(&request.path) else {
            return crate::media::refuse(404, "Not Found");
        };
        let oe = request
            .query_param("oe")
            .and_then(|oe| u64::from_str_radix(&oe, 16).ok());
        if oe.is_none() || oe != file.expires_at && file.expires_at != Some(0) {
            return crate::media::refuse(403, "Bad URL hash");
        }
        if file
            .expires_at
            .is_some_and(|at| at == 0 || crate::media::now_secs() > at)
        {
            return crate::media::refuse(403, "URL signature expired");
        }
        return crate::media::serve(file);
    }
    let mut state = lock(&shared.1);
    if let Some(answer) = login(&mut state, &request) {
        return answer;
    }
    let token = request.query_param("access_token").unwrap_or_default();
    let Some(page_id) = state
        .pages
        .iter()
        .find(|(_, t)| *t == token)
        .map(|(p, _)| p.clone())
    else {
        return graph_error(
            400,
            190,
            None,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
        );
    };
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let body = request.json();
    match (request.method.as_str(), segments.as_slice()) {
        ("POST", [_version, page, "subscribed_apps"]) => {
            if *page != page_id {
                return graph_error(
                    400,
                    200,
                    None,
                    "OAuthException",
                    "(#200) The page token does not belong to this page",
                );
            }
            let form: std::collections::HashMap<String, String> =
                query_pairs(&String::from_utf8_lossy(&request.body))
                    .into_iter()
                    .collect();
            let fields = form.get("subscribed_fields").cloned().unwrap_or_default();
            state.subscriptions.insert(page_id.clone(), fields);
            reply(200, usage(1), json!({ "success": true }))
        }
        ("POST", [_version, who, "message_attachments"]) if *who == "me" || *who == page_id => {
            upload_attachment(&mut state, &page_id, &request)
        }
        ("POST", [_version, "me", "messages"]) => {
            let attachment = &body["message"]["attachment"];
            let attachment_id = if attachment.is_null() {
                None
            } else {
                if body["message"].get("text").is_some() {
                    return graph_error(
                        400,
                        100,
                        None,
                        "OAuthException",
                        "(#100) Only one of message.text and message.attachment may be set",
                    );
                }
                let id = attachment["payload"]["attachment_id"]
                    .as_str()
                    .unwrap_or_default();
                let kind = attachment["type"].as_str().unwrap_or_default();
                match state.uploads.iter().find(|u| u.id == id) {
                    Some(upload) if upload.owner == page_id && upload.category == kind => {}
                    _ => {
                        return graph_error(
                            400,
                            100,
                            Some(2_018_047),
                            "OAuthException",
                            "(#100) Upload attachment failure: the attachment_id is not an attachment of this page of that type",
                        );
                    }
                }
                Some(id.to_string())
            };
            let Some(text) = body["message"]["text"]
                .as_str()
                .or(attachment_id.as_ref().map(|_| ""))
            else {
                return graph_error(
                    400,
                    100,
                    None,
                    "OAuthException",
                    "(#100) The parameter message is required",
                );
            };
            if body["messaging_type"].as_str().is_none() {
                return graph_error(
                    400,
                    100,
                    None,
                    "OAuthException",
                    "(#100) The parameter messaging_type is required",
                );
            }
            let recipient = if let Some(psid) = body["recipient"]["id"].as_str() {
                // RESPONSE within 24 hours of the customer's last message; the HUMAN_AGENT
                // tag within 7 days; nothing after.
                let human_agent =
                    body["messaging_type"] == "MESSAGE_TAG" && body["tag"] == "HUMAN_AGENT";
                let window = if human_agent {
                    HUMAN_AGENT_WINDOW
                } else {
                    WINDOW
                };
                let now = state.auth.clock.now_ms();
                let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
                let open = state.windows.iter().any(|(p, c, at)| {
                    *p == page_id && c == psid && now.saturating_sub(*at) < window_ms
                });
                if !open {
                    return graph_error(
                        400,
                        10,
                        Some(2_018_278),
                        "OAuthException",
                        "(#10) This message is sent outside of allowed window.",
                    );
                }
                psid.to_string()
            } else if let Some(comment) = body["recipient"]["comment_id"].as_str() {
                format!("comment:{comment}")
            } else {
                return graph_error(
                    400,
                    100,
                    None,
                    "OAuthException",
                    "(#100) The parameter recipient is required",
                );
            };
            state.next_id += 1;
            let id = format!("m_centralino{}", state.next_id);
            state.delivered.push(Delivered {
                page_id,
                recipient: recipient.clone(),
                text: text.to_string(),
                id: id.clone(),
                attachment_id,
            });
            let recipient_id = recipient
                .strip_prefix("comment:")
                .unwrap_or(&recipient)
                .to_string();
            reply(
                200,
                usage(1),
                json!({ "recipient_id": recipient_id, "message_id": id }),
            )
        }
        ("POST", [_version, comment, "comments"]) => {
            let Some(text) = body["message"].as_str() else {
                return graph_error(
                    400,
                    100,
                    None,
                    "OAuthException",
                    "(#100) The parameter message is required",
                );
            };
            let post = comment.split('_').next().unwrap_or(comment);
            state.next_id += 1;
            let id = format!("{post}_{}", 900_000 + state.next_id);
            state.delivered.push(Delivered {
                page_id,
                recipient: format!("comment:{comment}"),
                text: text.to_string(),
                id: id.clone(),
                attachment_id: None,
            });
            reply(200, usage(1), json!({ "id": id }))
        }
        _ => graph_error(
            400,
            100,
            None,
            "GraphMethodException",
            "Unsupported post request.",
        ),
    }
}

/// Largest file the Attachment Upload API takes (25 MB).
const MAX_ATTACHMENT_BYTES: usize = 25 * 1000 * 1000;

/// `POST /{version}/me/message_attachments` (multipart): `message` (JSON: the attachment's
/// `type` and `payload.is_reusable`) and `filedata` (the file, with its content type).
fn upload_attachment(state: &mut GraphState, page_id: &str, request: &Recorded) -> Response {
    let invalid = |message: &str| graph_error(400, 100, None, "OAuthException", message);
    let parts = match crate::media::multipart(request.header("content-type"), &request.body) {
        Ok(parts) => parts,
        Err(why) => return invalid(&format!("(#100) {why}")),
    };
    let message: serde_json::Value = parts
        .iter()
        .find(|p| p.name == "message")
        .and_then(|p| serde_json::from_slice(&p.body).ok())
        .unwrap_or_default();
    let kind = message["attachment"]["type"].as_str().unwrap_or_default();
    if !["image", "audio", "video", "file"].contains(&kind) {
        return invalid(
            "(#100) param message[attachment][type] must be one of {image, audio, video, file}",
        );
    }
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "filedata" && !p.body.is_empty())
    else {
        return invalid("(#100) Upload attachment failure: no filedata");
    };
    if file.body.len() > MAX_ATTACHMENT_BYTES {
        return invalid("(#100) Upload attachment failure: the file is larger than 25 MB");
    }
    let declared = file.content_type.as_deref().unwrap_or_default();
    let sniffed = crate::media::sniff_image(&file.body);
    if kind == "image" && (sniffed.is_none() || !declared.starts_with("image/")) {
        return invalid("(#100) Upload attachment failure: the filedata is not an image");
    }
    state.next_id += 1;
    let id = format!("{}", 1_857_777_774_821_000u64 + state.next_id);
    state.uploads.push(crate::media::Uploaded {
        id: id.clone(),
        owner: page_id.to_string(),
        category: kind.to_string(),
        content_type: sniffed.unwrap_or(declared).to_string(),
        bytes: file.body.clone(),
    });
    reply(200, usage(1), json!({ "attachment_id": id }))
}
