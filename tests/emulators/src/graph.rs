//! The Graph API emulator: the Messenger Send API and replies to page comments.
//!
//! Served endpoints (as used by the Facebook connector):
//! - `POST /{version}/me/messages?access_token=…`: `recipient.id` (a PSID) or
//!   `recipient.comment_id` (a private reply), `messaging_type`, `message.text`;
//! - `POST /{version}/{comment-id}/comments?access_token=…`: a public reply (`message`).
//!
//! The token in `access_token` decides the page; an unknown token is error 190. A message
//! to a customer who has not written within 24 hours is refused with error 10, subcode
//! 2018278, as the platform does; [`GraphApi::customer_wrote`] opens that window. Answers
//! carry `x-app-usage`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::json;

use crate::server::{Fault, Journal, Recorded, Server, Shared, json as reply, lock};

/// The standard messaging window.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A message or comment reply the emulator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The page that sent it.
    pub page_id: String,
    /// PSID, or `comment:<id>` for private replies and public comment replies.
    pub recipient: String,
    /// Text.
    pub text: String,
    /// Id the emulator gave it.
    pub id: String,
}

#[derive(Debug, Default)]
struct GraphState {
    pages: Vec<(String, String)>,
    windows: Vec<(String, String, Instant)>,
    delivered: Vec<Delivered>,
    next_id: u64,
    /// The version every answer says served it (as Meta does for a retired one); `None`
    /// names the version the request asked for.
    serves: Option<String>,
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

    /// Records that customer `psid` wrote to `page_id` now, opening the 24-hour window.
    pub fn customer_wrote(&self, page_id: &str, psid: &str) {
        lock(&self.shared.1)
            .windows
            .push((page_id.to_string(), psid.to_string(), Instant::now()));
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
        None => {}
    }
    let mut state = lock(&shared.1);
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
        ("POST", [_version, "me", "messages"]) => {
            let Some(text) = body["message"]["text"].as_str() else {
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
                let open = state
                    .windows
                    .iter()
                    .any(|(p, c, at)| *p == page_id && c == psid && at.elapsed() < WINDOW);
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
