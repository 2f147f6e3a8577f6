//! The REST API for CRMs, under `/api/v1`: the bearer token names the tenant, and every
//! read and change is scoped to it.
//!
//! | method and route | what |
//! | --- | --- |
//! | `GET /api/v1/conversations` | the tenant's conversations, newest first, a page at a time; searched by text, channel, brand, assignee, status and time (`lists.rs`) |
//! | `GET /api/v1/conversations/{id}` | one conversation |
//! | `GET /api/v1/conversations/{id}/messages` | its messages, oldest first, both directions, a page at a time |
//! | `GET /api/v1/messages` | the tenant's messages, newest first, a page at a time; searched like conversations |
//! | `POST /api/v1/conversations/{id}/replies` | an operator's reply, queued in the outbox (`Idempotency-Key` required) |
//! | `POST /api/v1/conversations/{id}/resolve` | close it; the operator's seat frees (again: no-op) |
//! | `POST /api/v1/conversations/{id}/transfer` | hand it to another operator |
//! | `GET /api/v1/operators` | operators with presence and load |
//! | `PUT /api/v1/operators/{id}/presence` | set an operator's presence |
//! | `GET /api/v1/replies/{id}` | where a queued reply stands (pending, sent, failed…) |
//! | `GET /api/v1/media/{id}` | a file of a message or a reply, as stored (`media.rs`) |
//!
//! **Who may reply.** With routing, only the assignee answers a conversation (anyone,
//! after a transfer). A reply from someone else is `409 not_assignee`, not `403`: the
//! token authenticates the CRM, not the operator, so the request is not forbidden to the
//! caller; it conflicts with who holds the conversation now, and the same request
//! succeeds once the conversation is transferred to that operator. An operator the
//! tenant does not have is `422 unknown_operator`.
//!
//! **Idempotency.** A reply needs an `Idempotency-Key` header (1 to 200 visible ASCII
//! characters); the same key, for the same conversation, operator and text, returns the
//! reply queued the first time and never sends twice. The same key with a different
//! reply is `409 idempotency_key_reused`.

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiPath, ApiTokens, ErrorCode, JsonBody, SizedJsonBody, bearer, lists};
use crate::Host;
use crate::error::Error;
use crate::routing::RoutingError;
use crate::store::{ConversationRecord, ConversationStatus, OutboxEntry, OutboxStatus};
use crate::types::{MessageKind, Presence};

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Outbox keys of API replies start with this, so they never meet the host's own keys.
const KEY_PREFIX: &str = "api:";

/// What every handler shares.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) host: Host,
    tokens: Arc<ApiTokens>,
}

/// The REST API routes, `/openapi.json` and `/readyz`.
pub(super) fn router(host: Host, tokens: Arc<ApiTokens>) -> Router {
    Router::new()
        .route("/api/v1/conversations", get(lists::conversations))
        .route("/api/v1/conversations/{id}", get(get_conversation))
        .route("/api/v1/conversations/{id}/messages", get(lists::messages))
        .route("/api/v1/messages", get(lists::search_messages))
        .route("/api/v1/conversations/{id}/replies", post(reply))
        .route("/api/v1/conversations/{id}/resolve", post(resolve))
        .route("/api/v1/conversations/{id}/transfer", post(transfer))
        .route("/api/v1/operators", get(list_operators))
        .route("/api/v1/operators/{id}/presence", put(set_presence))
        .route("/api/v1/replies/{id}", get(get_reply))
        .route("/api/v1/media/{id}", get(super::media::get_media))
        .merge(super::customers::routes())
        .route("/openapi.json", get(openapi))
        .route("/readyz", get(readyz))
        .with_state(Api { host, tokens })
}

/// The tenant a request's bearer token names: `401 unauthorized` without one.
pub(super) struct Caller {
    pub(super) tenant: String,
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "send the tenant's API token as `Authorization: Bearer <token>`",
            ));
        };
        match api.tokens.tenant_of(token) {
            Some(tenant) => Ok(Caller {
                tenant: tenant.to_string(),
            }),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the bearer token is not a tenant's API token",
            )),
        }
    }
}

impl Api {
    /// The caller's conversation, or `404` (also when it is another tenant's).
    pub(super) async fn conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<ConversationRecord, ApiError> {
        self.host
            .store()
            .conversation(tenant, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ConversationNotFound,
                    format!("no conversation `{id}`"),
                )
            })
    }

    /// The caller's open conversation: `404`, or `409` when it is resolved.
    async fn open_conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<ConversationRecord, ApiError> {
        let conversation = self.conversation(tenant, id).await?;
        if conversation.status == ConversationStatus::Resolved {
            return Err(ApiError::new(
                ErrorCode::ConversationResolved,
                format!(
                    "conversation `{id}` is resolved; the customer's next message opens a new one"
                ),
            ));
        }
        Ok(conversation)
    }

    /// An operator as the API shows them, or `404`.
    async fn operator(&self, tenant: &str, id: &str) -> Result<OperatorView, ApiError> {
        self.host
            .with_routing(tenant, |engine| {
                operators(engine)
                    .into_iter()
                    .find(|operator| operator.id == id)
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| operator_not_found(id))
    }
}

fn operator_not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::OperatorNotFound, format!("no operator `{id}`"))
}

// ---------------------------------------------------------------------------------------
// What the API shows. Its own types, so a change inside the host never changes the API by
// accident (the OpenAPI test would notice).
// ---------------------------------------------------------------------------------------

/// A conversation.
#[derive(Serialize)]
pub(super) struct ConversationView {
    id: String,
    channel: String,
    account: String,
    thread_key: String,
    customer: CustomerView,
    kind: MessageKind,
    status: ConversationStatus,
    assignee: Option<String>,
    priority: i64,
    created_at: i64,
    updated_at: i64,
    first_response_at: Option<i64>,
    resolved_at: Option<i64>,
}

#[derive(Serialize)]
struct CustomerView {
    id: String,
    handle: Option<String>,
}

impl From<ConversationRecord> for ConversationView {
    fn from(c: ConversationRecord) -> Self {
        ConversationView {
            id: c.id,
            channel: c.channel,
            account: c.account,
            thread_key: c.thread_key,
            customer: CustomerView {
                id: c.customer_id,
                handle: c.customer_handle,
            },
            kind: c.kind,
            status: c.status,
            assignee: c.assignee,
            priority: c.priority,
            created_at: c.created_at,
            updated_at: c.updated_at,
            first_response_at: c.first_response_at,
            resolved_at: c.resolved_at,
        }
    }
}

/// A reply in the outbox.
#[derive(Serialize)]
struct ReplyView {
    id: String,
    conversation_id: String,
    operator: String,
    account: String,
    text: String,
    status: OutboxStatus,
    attempts: i64,
    last_error: Option<String>,
    external_id: Option<String>,
}

impl From<OutboxEntry> for ReplyView {
    fn from(entry: OutboxEntry) -> Self {
        ReplyView {
            id: entry.id,
            conversation_id: entry.conversation_id.into_string(),
            operator: entry.author,
            account: entry.message.account,
            text: entry.message.text,
            status: entry.status,
            attempts: entry.attempts,
            last_error: entry.last_error,
            external_id: entry.external_id,
        }
    }
}

/// An operator with their live state.
#[derive(Serialize)]
struct OperatorView {
    id: String,
    name: String,
    skills: Vec<String>,
    capacity: u32,
    load: u32,
    presence: Presence,
    available: bool,
}

#[derive(Serialize)]
struct OperatorList {
    operators: Vec<OperatorView>,
}

fn operators(engine: &crate::routing::RoutingEngine) -> Vec<OperatorView> {
    let now = engine.now();
    engine
        .roster()
        .iter()
        .map(|(operator, state)| OperatorView {
            id: operator.id.clone(),
            name: operator.name.clone(),
            skills: operator.skills.clone(),
            capacity: operator.capacity,
            load: state.load,
            presence: state.presence,
            available: engine.roster().is_available(&operator.id, now),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Handlers. The caller is extracted first, so a request without a valid token is `401`
// whatever else is wrong with it.
// ---------------------------------------------------------------------------------------

async fn get_conversation(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let conversation = api.conversation(&caller.tenant, &id).await?;
    Ok(Json(conversation.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    operator: String,
    text: String,
    /// Images to send with the text (see `media.rs`).
    #[serde(default)]
    images: Vec<super::media::ImageBody>,
}

/// The `Idempotency-Key` header: required, 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "a reply needs an `Idempotency-Key` header, unique per reply, so that a retried \
             request never sends twice",
        ));
    };
    let key = value.to_str().unwrap_or_default();
    let usable = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !usable {
        return Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            format!(
                "the `Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ),
        ));
    }
    Ok(key.to_string())
}

fn not_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{field}` is empty"),
        ));
    }
    Ok(())
}

async fn reply(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    SizedJsonBody(body, size): SizedJsonBody<ReplyBody, { super::media::MAX_REPLY_BODY }>,
) -> Result<(StatusCode, Json<ReplyView>), ApiError> {
    // Only images make a reply larger than any other body.
    if body.images.is_empty() && size > super::MAX_JSON_BODY {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the body is larger than {} bytes (a reply with images may be up to {})",
                super::MAX_JSON_BODY,
                super::media::MAX_REPLY_BODY
            ),
        ));
    }
    let tenant = &caller.tenant;
    let key = idempotency_key(&headers)?;
    let images = super::media::images(&api.host, body.images)?;
    not_empty("operator", &body.operator)?;
    if crate::types::is_blank_text(&body.text) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "`text` is blank: it has only whitespace or invisible characters (such as \
             zero-width spaces), and would be sent as an empty post",
        ));
    }
    api.open_conversation(tenant, &id).await?;
    // Routing's ownership rules are the host's: its typed refusal becomes the answer.
    let entry = api
        .host
        .reply_with_images(
            tenant,
            &id,
            &body.operator,
            None,
            &body.text,
            &images,
            &format!("{KEY_PREFIX}{key}"),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(entry.into())))
}

async fn resolve(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let tenant = &caller.tenant;
    let conversation = api.conversation(tenant, &id).await?;
    // Resolving twice changes nothing and tells the CRM nothing new.
    if conversation.status != ConversationStatus::Resolved {
        api.host.resolve(tenant, &id).await?;
    }
    Ok(Json(api.conversation(tenant, &id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: String,
}

async fn transfer(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<Json<ConversationView>, ApiError> {
    let tenant = &caller.tenant;
    not_empty("to", &body.to)?;
    api.open_conversation(tenant, &id).await?;
    let to = body.to.as_str();
    // Capacity and the roster are routing's to check, under its lock: no copy here.
    api.host.transfer(tenant, &id, to).await?;
    Ok(Json(api.conversation(tenant, &id).await?.into()))
}

async fn list_operators(State(api): State<Api>, caller: Caller) -> Json<OperatorList> {
    let operators = api
        .host
        .with_routing(&caller.tenant, operators)
        .await
        .unwrap_or_default();
    Json(OperatorList { operators })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PresenceBody {
    pub(super) presence: Presence,
}

async fn set_presence(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<PresenceBody>,
) -> Result<Json<OperatorView>, ApiError> {
    let tenant = &caller.tenant;
    // The operator is the route's resource: routing's own refusal (no such operator, or
    // no routing and so no operators at all) is this route's `404`, not a pre-check.
    match api.host.set_presence(tenant, &id, body.presence).await {
        Ok(()) => {}
        Err(Error::RoutingNotConfigured { .. }) => return Err(operator_not_found(&id)),
        Err(Error::Routing { source, .. })
            if matches!(*source, RoutingError::UnknownOperator(_)) =>
        {
            return Err(operator_not_found(&id));
        }
        Err(other) => return Err(other.into()),
    }
    Ok(Json(api.operator(tenant, &id).await?))
}

async fn get_reply(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReplyView>, ApiError> {
    let entry = api
        .host
        .store()
        .outbox_entry(&caller.tenant, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::ReplyNotFound, format!("no reply `{id}`")))?;
    Ok(Json(entry.into()))
}

/// The OpenAPI document, rendered once.
static OPENAPI: LazyLock<String> = LazyLock::new(super::openapi::document_text);

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

async fn readyz(State(api): State<Api>) -> Response {
    super::readiness(&api.host, false).await
}
