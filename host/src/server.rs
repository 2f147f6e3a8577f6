//! HTTP ingress for platform webhooks.
//!
//! Routes (any method, since platforms verify with GET and deliver with POST):
//! - `/webhooks/{connector}`: the default tenant;
//! - `/tenants/{tenant}/webhooks/{connector}`.
//!
//! Bodies over the configured cap are refused with 413 before the plugin sees them; the
//! raw bytes reach the plugin untouched, so signatures over them can be checked.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::Host;
use crate::connectors::DEFAULT_TENANT;
use crate::types::{WebhookRequest, WebhookResponse};

/// The ingress router of `host`.
pub(crate) fn router(host: Host, max_body: usize) -> Router {
    Router::new()
        .route("/webhooks/{connector}", any(default_tenant))
        .route("/tenants/{tenant}/webhooks/{connector}", any(with_tenant))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(host)
}

async fn default_tenant(
    State(host): State<Host>,
    Path(connector): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deliver(
        host,
        DEFAULT_TENANT.to_string(),
        connector,
        method,
        uri,
        headers,
        body,
    )
    .await
}

async fn with_tenant(
    State(host): State<Host>,
    Path((tenant, connector)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deliver(host, tenant, connector, method, uri, headers, body).await
}

async fn deliver(
    host: Host,
    tenant: String,
    connector: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = WebhookRequest {
        method: method.as_str().to_string(),
        path: "/".to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers
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
    into_response(host.deliver_webhook(&tenant, &connector, request).await)
}

fn into_response(response: WebhookResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, response.body).into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}
