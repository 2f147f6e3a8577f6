//! The HTTP APIs `centralino run` serves beside the webhook ingress.
//!
//! - **REST API for CRMs** ([`public_router`], on `host.listen`): `/api/v1/…` lists and
//!   searches conversations and messages (a page at a time, in SQL), and lets a CRM in any language reply as an
//!   operator, resolve, transfer and set operators' presence. Each tenant has its own
//!   bearer token ([`ApiTokens`]); the token *is* the tenant, so no URL names one and one
//!   tenant's token never reaches another tenant's data (another tenant's conversation is
//!   `404`, exactly like one that does not exist). The OpenAPI 3.1 document is served at
//!   `/openapi.json` and checked in at `docs/openapi.json`.
//! - **Admin API** (`api/admin.rs`, on `host.admin_listen`): status, connector health and
//!   reset, presence, and Prometheus `/metrics`, behind the admin token.
//!
//! Both listeners answer `/healthz` (the process is up) and `/readyz` (the store answers
//! and every connector started) without a token, for probes.
//!
//! ## Errors
//!
//! Every refusal is a 4xx with a JSON body `{"error": {"code": "…", "message": "…"}}`;
//! the codes are listed in [`ErrorCode`] and in the OpenAPI document. Tokens are compared
//! in constant time (as SHA-256 digests, so neither their bytes nor their length leak).
//!
//! ```no_run
//! use centralino::Host;
//! use centralino::api::{ApiTokens, public_router};
//! use centralino::capabilities::Secret;
//!
//! # async fn example(host: Host) -> Result<(), Box<dyn std::error::Error>> {
//! let tokens = ApiTokens::new().with("default", &Secret::new("s3cret"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! centralino::api::serve(public_router(host, tokens), listener, Default::default()).await?;
//! # Ok(()) }
//! ```

mod accounts;
mod admin;
mod console;
mod crm;
mod customers;
mod extract;
mod lists;
mod media;
mod openapi;
mod openapi_customers;
mod openapi_media;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::capabilities::Secret;
use crate::routing::RoutingError;
use crate::{Error, Host};

pub use crate::serve::serve;
pub use admin::{AdminApi, check_exposure};
pub use console::{MIN_PASSWORD_CHARS, add_console_user};
pub(crate) use extract::{ApiPath, ApiQuery, JsonBody, SizedJsonBody};
pub use openapi::{document as openapi_document, document_text as openapi_text};

/// Largest JSON body the APIs read (a reply's text is a few KiB at most).
const MAX_JSON_BODY: usize = 64 << 10;

/// Why a request was refused: the `code` of the JSON error body. Each maps to one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 401: no bearer token, or not one this host knows.
    Unauthorized,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 404: no such conversation for this tenant.
    ConversationNotFound,
    /// 404: no such operator for this tenant.
    OperatorNotFound,
    /// 404: no such reply for this tenant.
    ReplyNotFound,
    /// 404: no such customer for this tenant (an erased customer is none).
    CustomerNotFound,
    /// 404: no such file for this tenant.
    MediaNotFound,
    /// 404: no such connector (admin API).
    ConnectorNotFound,
    /// 404: no such tenant (admin API).
    TenantNotFound,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: the JSON, a path segment or a query parameter is not what the route takes.
    InvalidRequest,
    /// 400: a reply without an `Idempotency-Key` header, or with an unusable one.
    InvalidIdempotencyKey,
    /// 413: the body is larger than the API reads.
    PayloadTooLarge,
    /// 415: a body that says it is not JSON.
    UnsupportedMediaType,
    /// 422: the body names an operator the tenant does not have.
    UnknownOperator,
    /// 422: a list's query is well-formed but cannot be run: a `cursor` this list did not
    /// give, a search text without a word.
    InvalidQuery,
    /// 422: a reply's image cannot be sent: not base64, empty, not the type it says, too
    /// large, or too many.
    InvalidImage,
    /// 409: the operator does not hold the conversation (only the assignee answers, unless
    /// it was transferred).
    NotAssignee,
    /// 409: the conversation is resolved.
    ConversationResolved,
    /// 409: routing does not know the conversation (no open conversation by that id).
    NotRouted,
    /// 409: the tenant has no routing, so nobody can be assigned.
    RoutingNotConfigured,
    /// 409: the operator already holds as many conversations as their capacity.
    OperatorAtCapacity,
    /// 409: the `Idempotency-Key` was used for a different reply.
    IdempotencyKeyReused,
    /// 409: the file is not stored (still being fetched, or failed: the message says why).
    MediaNotStored,
    /// 409: the host refused for another reason, given in the message.
    Refused,
    /// 503: the host is not ready (`/readyz`).
    NotReady,
    /// 500: something failed inside the host; the log has the details.
    Internal,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ConversationNotFound,
        ErrorCode::OperatorNotFound,
        ErrorCode::ReplyNotFound,
        ErrorCode::CustomerNotFound,
        ErrorCode::MediaNotFound,
        ErrorCode::ConnectorNotFound,
        ErrorCode::TenantNotFound,
        ErrorCode::MalformedJson,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::UnknownOperator,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidImage,
        ErrorCode::NotAssignee,
        ErrorCode::ConversationResolved,
        ErrorCode::NotRouted,
        ErrorCode::RoutingNotConfigured,
        ErrorCode::OperatorAtCapacity,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::MediaNotStored,
        ErrorCode::Refused,
        ErrorCode::NotReady,
        ErrorCode::Internal,
    ];

    /// The code as written in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ConversationNotFound => "conversation_not_found",
            ErrorCode::OperatorNotFound => "operator_not_found",
            ErrorCode::ReplyNotFound => "reply_not_found",
            ErrorCode::CustomerNotFound => "customer_not_found",
            ErrorCode::MediaNotFound => "media_not_found",
            ErrorCode::ConnectorNotFound => "connector_not_found",
            ErrorCode::TenantNotFound => "tenant_not_found",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::UnknownOperator => "unknown_operator",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidImage => "invalid_image",
            ErrorCode::NotAssignee => "not_assignee",
            ErrorCode::ConversationResolved => "conversation_resolved",
            ErrorCode::NotRouted => "not_routed",
            ErrorCode::RoutingNotConfigured => "routing_not_configured",
            ErrorCode::OperatorAtCapacity => "operator_at_capacity",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::MediaNotStored => "media_not_stored",
            ErrorCode::Refused => "refused",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound
            | ErrorCode::ConversationNotFound
            | ErrorCode::OperatorNotFound
            | ErrorCode::ReplyNotFound
            | ErrorCode::CustomerNotFound
            | ErrorCode::MediaNotFound
            | ErrorCode::ConnectorNotFound
            | ErrorCode::TenantNotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MalformedJson
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnknownOperator | ErrorCode::InvalidQuery | ErrorCode::InvalidImage => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::NotAssignee
            | ErrorCode::ConversationResolved
            | ErrorCode::NotRouted
            | ErrorCode::RoutingNotConfigured
            | ErrorCode::OperatorAtCapacity
            | ErrorCode::IdempotencyKeyReused
            | ErrorCode::MediaNotStored
            | ErrorCode::Refused => StatusCode::CONFLICT,
            ErrorCode::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A refusal, answered as `{"error": {"code", "message"}}` with the code's status.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A failure inside the host: logged in full, answered without details.
    pub(crate) fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!("API request failed: {error:#}");
        ApiError::new(ErrorCode::Internal, "internal error; see the host's log")
    }
}

/// A host error as the API answers it: each refusal with its own code, anything else as an
/// internal failure (logged, answered without details). Handlers just use `?`.
impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::UnknownConnector { tenant, connector } => ApiError::new(
                ErrorCode::ConnectorNotFound,
                format!("no connector `{connector}` for tenant `{tenant}`"),
            ),
            Error::UnknownConversation { conversation, .. } => ApiError::new(
                ErrorCode::ConversationNotFound,
                format!("no conversation `{conversation}`"),
            ),
            Error::UnknownCustomer { customer, .. } => ApiError::new(
                ErrorCode::CustomerNotFound,
                format!("no customer `{customer}`"),
            ),
            Error::RoutingNotConfigured { .. } => ApiError::new(
                ErrorCode::RoutingNotConfigured,
                "this tenant has no routing, so conversations have no assignee to change",
            ),
            Error::ConversationResolved { conversation } => ApiError::new(
                ErrorCode::ConversationResolved,
                format!(
                    "conversation `{conversation}` is resolved; the customer's next message \
                     opens a new one"
                ),
            ),
            Error::Routing {
                conversation,
                source,
            } => refusal(*source, conversation.as_deref().unwrap_or_default()),
            Error::IdempotencyKeyReused { .. } => ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this `Idempotency-Key` was used for a different reply; use a new key per reply",
            ),
            Error::Refused(reason) => ApiError::new(ErrorCode::Refused, reason),
            Error::InvalidQuery(reason) => ApiError::new(ErrorCode::InvalidQuery, reason),
            other => ApiError::internal(other),
        }
    }
}

/// Routing's refusal as the API answers it.
fn refusal(error: RoutingError, conversation: &str) -> ApiError {
    match error {
        RoutingError::UnknownOperator(operator) => ApiError::new(
            ErrorCode::UnknownOperator,
            format!("no operator `{operator}`"),
        ),
        RoutingError::NotAssignee {
            operator, owner, ..
        } => ApiError::new(
            ErrorCode::NotAssignee,
            format!(
                "operator `{operator}` may not reply to conversation `{conversation}`: {owner}"
            ),
        ),
        RoutingError::Resolved(_) => ApiError::new(
            ErrorCode::ConversationResolved,
            format!("conversation `{conversation}` is resolved"),
        ),
        RoutingError::AtCapacity { operator, capacity } => ApiError::new(
            ErrorCode::OperatorAtCapacity,
            format!("operator `{operator}` already holds {capacity} conversations, their capacity"),
        ),
        RoutingError::UnknownConversation(_) => ApiError::new(
            ErrorCode::NotRouted,
            format!(
                "routing does not know conversation `{conversation}` (the store holds no open \
                 conversation by that id)"
            ),
        ),
        other => ApiError::new(ErrorCode::Refused, other.to_string()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        let mut response = (self.code.status(), axum::Json(body)).into_response();
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token as kept for comparison.
type Digest32 = [u8; 32];

fn digest(token: &[u8]) -> Digest32 {
    Sha256::digest(token).into()
}

/// Compares two digests in constant time.
fn same_digest(a: &Digest32, b: &Digest32) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A single token (the admin API's), kept as a digest.
#[derive(Clone)]
pub(crate) struct TokenCheck(Digest32);

impl TokenCheck {
    pub(crate) fn new(token: &Secret) -> Self {
        TokenCheck(digest(token.expose()))
    }

    /// Whether `presented` is the token, in constant time.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        same_digest(&self.0, &digest(presented.as_bytes()))
    }
}

/// Each tenant's REST API token. A request's token names its tenant; tokens are kept as
/// SHA-256 digests and every one is compared, in constant time, on every request.
#[derive(Clone, Default)]
pub struct ApiTokens {
    tenants: Vec<(String, Digest32)>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field(
                "tenants",
                &self.tenants.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ApiTokens {
    /// No tokens: every API call is refused.
    pub fn new() -> Self {
        ApiTokens::default()
    }

    /// Adds `tenant`'s token. Refuses an empty token, a second token for a tenant, and a
    /// token another tenant already has (it could not tell the two apart).
    pub fn with(mut self, tenant: impl Into<String>, token: &Secret) -> Result<Self, Error> {
        let tenant = tenant.into();
        if token.expose().is_empty() {
            return Err(anyhow::anyhow!("the API token of tenant `{tenant}` is empty").into());
        }
        let hashed = digest(token.expose());
        for (other, known) in &self.tenants {
            if *other == tenant {
                return Err(anyhow::anyhow!("tenant `{tenant}` has an API token already").into());
            }
            if same_digest(known, &hashed) {
                return Err(anyhow::anyhow!(
                    "tenants `{other}` and `{tenant}` have the same API token: each needs its own"
                )
                .into());
            }
        }
        self.tenants.push((tenant, hashed));
        Ok(self)
    }

    /// Tokens of every tenant in `tokens` (as [`ResolvedSecrets::api_tokens`] gives them).
    ///
    /// [`ResolvedSecrets::api_tokens`]: crate::config::ResolvedSecrets::api_tokens
    pub fn from_tenants<'a>(
        tokens: impl IntoIterator<Item = (&'a String, &'a Secret)>,
    ) -> Result<Self, Error> {
        tokens
            .into_iter()
            .try_fold(ApiTokens::new(), |all, (tenant, token)| {
                all.with(tenant.clone(), token)
            })
    }

    /// Whether no tenant has a token.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// The tenants that have a token.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.iter().map(|(tenant, _)| tenant.as_str())
    }

    /// The tenant whose token `presented` is. Compares against every token, whatever
    /// matches, so the time taken says nothing about which one (or how much) matched.
    pub(crate) fn tenant_of(&self, presented: &str) -> Option<&str> {
        let hashed = digest(presented.as_bytes());
        let mut found = None;
        for (tenant, known) in &self.tenants {
            let matched = same_digest(known, &hashed);
            found = if matched {
                Some(tenant.as_str())
            } else {
                found
            };
        }
        found
    }
}

/// The public listener's router: the webhook ingress ([`Host::ingress`]) with the REST
/// API under `/api/v1`, `/openapi.json` and `/readyz` beside it (the ingress answers
/// `/healthz`). Unknown routes get a JSON `404`.
pub fn public_router(host: Host, tokens: ApiTokens) -> Router {
    host.ingress()
        .merge(crm::router(host, Arc::new(tokens)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The REST API alone, for a listener of its own (`host.api_listen`).
pub fn rest_router(host: Host, tokens: ApiTokens) -> Router {
    crm::router(host, Arc::new(tokens))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The webhook ingress alone, with the REST API's error shapes for unknown routes.
pub fn ingress_router(host: Host) -> Router {
    host.ingress()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take this method",
    )
}

/// `/readyz`: `200 {"status": "ready"}` when the store answers and every connector
/// started, `503 not_ready` otherwise. Only the admin listener says what is not ready:
/// the public one does not tell the internet its tenants' and connectors' names.
pub(crate) async fn readiness(host: &Host, detailed: bool) -> Response {
    match host.readiness().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(reason) if detailed => ApiError::new(ErrorCode::NotReady, reason).into_response(),
        Err(reason) => {
            tracing::warn!("not ready: {reason}");
            ApiError::new(
                ErrorCode::NotReady,
                "not ready; the admin API's /readyz says why",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests;
