//! HTTP ingress for platform webhooks.
//!
//! Routes (any method, since platforms verify with GET and deliver with POST):
//! - `/webhooks/{connector}`: the default tenant;
//! - `/tenants/{tenant}/webhooks/{connector}`;
//! - either of them followed by more segments (`/webhooks/chat/7001`): the plugin gets
//!   the path below the connector's route as received (`/7001`), so one connector can give
//!   each bot or page a URL of its own; the bare route gives it `/`;
//! - `/healthz`.
//!
//! ## Hardening
//!
//! The ingress faces the internet, so it assumes nothing about its clients:
//!
//! - **Slow clients** cannot hold the server: the request head must arrive within
//!   [`IngressLimits::header_read_timeout`] (hyper closes the connection otherwise; this
//!   also ends idle keep-alive connections), and the whole body within
//!   [`IngressLimits::body_read_timeout`] (answered 408, connection closed).
//! - **Big bodies** are refused with 413: at once when `content-length` says so, otherwise
//!   as soon as the bytes read pass [`IngressLimits::max_body_bytes`].
//! - **Many connections**: at most [`IngressLimits::max_connections`] are served at once,
//!   the rest waiting in the listener's accept queue, and at most
//!   [`IngressLimits::max_connections_per_peer`] from one IP address: one client's flood of
//!   connections is closed as it arrives instead of filling the queue ahead of the
//!   platforms. The REST API can have a listener of its own (`host.api_listen`), so a
//!   webhook flood never reaches the CRM's calls.
//! - **Cancellation**: each delivery runs in a task of its own, so a client that hangs up
//!   midway cannot abandon a plugin call or a store transaction halfway.
//! - **Content**: the host does not parse bodies. The plugin gets the raw bytes exactly as
//!   received (signatures cover them), verifies the signature *before* it parses, and
//!   answers wrong content types, malformed or deeply nested JSON with a 4xx; a plugin that
//!   traps on them is a fault (503, and supervision). `tests/all/ingress.rs` tries each.
//!
//! [`Host::serve`](crate::Host::serve) applies these limits. A CRM that nests
//! [`Host::ingress`](crate::Host::ingress) in its own server keeps the body cap, the body
//! timeout and the cancellation guard, and must set header timeouts on that server.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::net::TcpListener;

use crate::Host;
use crate::serve::IngressLimits;
use crate::connectors::DEFAULT_TENANT;
use crate::types::{WebhookRequest, WebhookResponse};

/// What every handler shares.
#[derive(Clone)]
struct Ingress {
    host: Host,
    limits: Arc<IngressLimits>,
}

/// The ingress router of `host`, with a body cap of `max_body` and the other limits at
/// their defaults.
pub(crate) fn router(host: Host, max_body: usize) -> Router {
    router_with(
        host,
        &IngressLimits {
            max_body_bytes: max_body,
            ..IngressLimits::default()
        },
    )
}

/// The ingress router of `host` with `limits` (those a router can apply: body size and
/// body timeout).
pub(crate) fn router_with(host: Host, limits: &IngressLimits) -> Router {
    let ingress = Ingress {
        host,
        limits: Arc::new(limits.clone()),
    };
    Router::new()
        .route("/webhooks/{connector}", any(default_tenant))
        .route("/webhooks/{connector}/{*below}", any(default_tenant_below))
        .route("/tenants/{tenant}/webhooks/{connector}", any(with_tenant))
        .route(
            "/tenants/{tenant}/webhooks/{connector}/{*below}",
            any(with_tenant_below),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(ingress)
}

impl Host {
    /// The webhook ingress as an axum router, to serve or to nest in the CRM's own server.
    pub fn ingress(&self) -> Router {
        router(self.clone(), self.max_webhook_body())
    }

    /// Serves the ingress on `listener` until the future is dropped, with this host's body
    /// cap and the default [`IngressLimits`] (header and body read timeouts, connection
    /// cap).
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        let limits = IngressLimits {
            max_body_bytes: self.max_webhook_body(),
            ..Default::default()
        };
        self.serve_with(listener, limits).await
    }

    /// Serves the ingress on `listener` with explicit `limits`.
    pub async fn serve_with(
        &self,
        listener: TcpListener,
        limits: IngressLimits,
    ) -> std::io::Result<()> {
        let app = router_with(self.clone(), &limits);
        crate::serve::serve(app, listener, limits).await
    }
}

async fn default_tenant(
    State(ingress): State<Ingress>,
    Path(connector): Path<String>,
    request: Request,
) -> Response {
    ingress
        .deliver(DEFAULT_TENANT.to_string(), connector, request)
        .await
}

async fn with_tenant(
    State(ingress): State<Ingress>,
    Path((tenant, connector)): Path<(String, String)>,
    request: Request,
) -> Response {
    ingress.deliver(tenant, connector, request).await
}

async fn default_tenant_below(
    State(ingress): State<Ingress>,
    Path((connector, _below)): Path<(String, String)>,
    request: Request,
) -> Response {
    ingress
        .deliver(DEFAULT_TENANT.to_string(), connector, request)
        .await
}

async fn with_tenant_below(
    State(ingress): State<Ingress>,
    Path((tenant, connector, _below)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    ingress.deliver(tenant, connector, request).await
}

/// The path below a connector's route, as received (percent-encoding kept, like the
/// query): `/7001` for `/webhooks/chat/7001` and for
/// `/tenants/acme/webhooks/chat/7001`, `/` for the bare routes.
fn path_below_route(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "webhooks", connector, ...] or ["", "tenants", tenant, "webhooks", connector, ...]
    let route_end = if segments.get(1) == Some(&"tenants") {
        5
    } else {
        3
    };
    match segments.get(route_end..) {
        Some(below) if !below.is_empty() => format!("/{}", below.join("/")),
        _ => "/".to_string(),
    }
}

impl Ingress {
    async fn deliver(self, tenant: String, connector: String, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match self.read_body(&parts.headers, body).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        let request = WebhookRequest {
            method: parts.method.as_str().to_string(),
            path: path_below_route(parts.uri.path()),
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        // A task of its own: if the client hangs up, the delivery still completes (and is
        // stored, or not) as a whole; the platform's retry then finds it deduplicated.
        let host = self.host;
        let delivery =
            tokio::spawn(async move { host.deliver_webhook(&tenant, &connector, request).await });
        match delivery.await {
            Ok(response) => into_response(response),
            Err(e) => {
                tracing::error!("webhook delivery task failed: {e}");
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not processed, retry later",
                )
            }
        }
    }

    /// Reads the whole body within the size cap and the body timeout.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
        let max = self.limits.max_body_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let too_large = || closing(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        if declared.is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX)) {
            return Err(too_large());
        }
        let read = Limited::new(body, max).collect();
        match tokio::time::timeout(self.limits.body_read_timeout, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(e)) => {
                tracing::debug!("webhook body not read: {e}");
                Err(closing(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ))
            }
            Err(_) => {
                tracing::warn!(
                    "webhook body not received within {} ms; connection closed",
                    self.limits.body_read_timeout.as_millis()
                );
                Err(closing(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time",
                ))
            }
        }
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

/// An answer after which the connection is closed (the body may be half read).
fn closing(status: StatusCode, message: &'static str) -> Response {
    let mut response = plain(status, message);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn into_response(response: WebhookResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, response.body).into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}
