//! The REST API's customers, under `/api/v1/customers`: one record per person with their
//! identities on every channel, linked by the CRM; their history across channels; the
//! export and the erasure the law gives them (see docs/customers.md).
//!
//! | method and route | what |
//! | --- | --- |
//! | `GET /api/v1/customers?channel=…&platform_id=…` | the customer of an identity |
//! | `GET /api/v1/customers/{id}` | a customer and their identities |
//! | `DELETE /api/v1/customers/{id}` | erase them (cannot be undone) |
//! | `POST /api/v1/customers/{id}/identities` | link an identity to them |
//! | `DELETE /api/v1/customers/{id}/identities/{channel}/{platform_id}` | unlink one |
//! | `POST /api/v1/customers/{id}/merge` | merge another customer into them |
//! | `GET /api/v1/customers/{id}/suggestions` | links the host suggests (same e-mail or phone) |
//! | `GET /api/v1/customers/{id}/history` | their messages on every channel, newest first, paged (`limit`, `after`) |
//! | `GET /api/v1/customers/{id}/export` | everything held about them, as JSON |

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::crm::{Api, Caller};
use super::lists::MessageView;
use super::{ApiError, ApiPath, ApiQuery, ErrorCode, JsonBody};
use crate::store::{
    Customer, CustomerExport, Erasure, HistoryCursor, Identity, StoredMessage, Suggestion,
};

/// Messages of a history page when the request does not say.
const DEFAULT_HISTORY: usize = 50;

/// The customer routes (their state is the REST API's).
pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/customers", get(find_customer))
        .route(
            "/api/v1/customers/{id}",
            get(get_customer).delete(erase_customer),
        )
        .route("/api/v1/customers/{id}/identities", post(link))
        .route(
            "/api/v1/customers/{id}/identities/{channel}/{platform_id}",
            delete(unlink),
        )
        .route("/api/v1/customers/{id}/merge", post(merge))
        .route("/api/v1/customers/{id}/suggestions", get(suggestions))
        .route("/api/v1/customers/{id}/history", get(history))
        .route("/api/v1/customers/{id}/export", get(export))
}

/// A customer as the API shows them.
#[derive(Serialize)]
struct CustomerView {
    id: String,
    identities: Vec<IdentityView>,
    last_operator: Option<String>,
    last_operator_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct IdentityView {
    channel: String,
    platform_id: String,
    handle: Option<String>,
    linked_by: String,
    created_at: i64,
}

impl From<Identity> for IdentityView {
    fn from(i: Identity) -> Self {
        IdentityView {
            channel: i.channel,
            platform_id: i.platform_id,
            handle: i.handle,
            linked_by: i.linked_by,
            created_at: i.created_at,
        }
    }
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView {
            id: c.id,
            identities: c.identities.into_iter().map(IdentityView::from).collect(),
            last_operator: c.last_operator,
            last_operator_at: c.last_operator_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Serialize)]
struct SuggestionView {
    customer_id: String,
    other_id: String,
    reason: String,
    created_at: i64,
}

#[derive(Serialize)]
struct SuggestionList {
    suggestions: Vec<SuggestionView>,
}

impl From<Suggestion> for SuggestionView {
    fn from(s: Suggestion) -> Self {
        SuggestionView {
            customer_id: s.customer_id,
            other_id: s.other_id,
            reason: s.reason,
            created_at: s.created_at,
        }
    }
}

#[derive(Serialize)]
struct HistoryView {
    messages: Vec<MessageView>,
    next: Option<String>,
}

#[derive(Serialize)]
struct ErasureView {
    customer_id: String,
    identities: u64,
    conversations: u64,
    messages: u64,
    replies: u64,
    events: u64,
    at: i64,
}

impl From<Erasure> for ErasureView {
    fn from(e: Erasure) -> Self {
        ErasureView {
            customer_id: e.customer_id,
            identities: e.identities,
            conversations: e.conversations,
            messages: e.messages,
            replies: e.replies,
            events: e.events,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindQuery {
    channel: String,
    platform_id: String,
}

async fn find_customer(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(query): ApiQuery<FindQuery>,
) -> Result<Json<CustomerView>, ApiError> {
    let customer = api
        .host
        .customer_by_identity(&caller.tenant, &query.channel, &query.platform_id)
        .await?;
    Ok(Json(customer.into()))
}

async fn get_customer(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerView>, ApiError> {
    Ok(Json(api.host.customer(&caller.tenant, &id).await?.into()))
}

async fn erase_customer(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ErasureView>, ApiError> {
    Ok(Json(
        api.host.erase_customer(&caller.tenant, &id).await?.into(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    channel: String,
    platform_id: String,
}

/// `400 invalid_request` for an empty or blank value.
fn filled(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{field}` is empty"),
        ));
    }
    Ok(())
}

async fn link(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<IdentityBody>,
) -> Result<Json<CustomerView>, ApiError> {
    filled("channel", &body.channel)?;
    filled("platform_id", &body.platform_id)?;
    let customer = api
        .host
        .link_identity(&caller.tenant, &id, &body.channel, &body.platform_id)
        .await?;
    Ok(Json(customer.into()))
}

async fn unlink(
    State(api): State<Api>,
    caller: Caller,
    ApiPath((id, channel, platform_id)): ApiPath<(String, String, String)>,
) -> Result<Json<CustomerView>, ApiError> {
    let customer = api
        .host
        .unlink_identity(&caller.tenant, &id, &channel, &platform_id)
        .await?;
    Ok(Json(customer.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    from: String,
}

async fn merge(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<MergeBody>,
) -> Result<Json<CustomerView>, ApiError> {
    filled("from", &body.from)?;
    let customer = api
        .host
        .merge_customers(&caller.tenant, &id, &body.from)
        .await?;
    Ok(Json(customer.into()))
}

async fn suggestions(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SuggestionList>, ApiError> {
    api.host.customer(&caller.tenant, &id).await?;
    let suggestions = api
        .host
        .store()
        .customer_suggestions(&caller.tenant, &id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(SuggestionList {
        suggestions: suggestions.into_iter().map(SuggestionView::from).collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn history(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY);
    if !(1..=crate::MAX_HISTORY_PAGE).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`limit` must be between 1 and {}", crate::MAX_HISTORY_PAGE),
        ));
    }
    let after = query
        .after
        .as_deref()
        .map(str::parse::<HistoryCursor>)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e))?;
    let page = api
        .host
        .customer_history(&caller.tenant, &id, limit, after.as_ref())
        .await?;
    Ok(Json(HistoryView {
        // The same view as every other list of messages, with the entry's conversation.
        messages: MessageView::page(
            &api,
            &caller.tenant,
            page.entries
                .into_iter()
                .map(|entry| StoredMessage {
                    conversation_id: entry.conversation_id,
                    channel: entry.channel,
                    ..entry.message
                })
                .collect(),
        )
        .await?,
        next: page.next.map(|c| c.to_string()),
    }))
}

async fn export(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CustomerExport>, ApiError> {
    Ok(Json(api.host.export_customer(&caller.tenant, &id).await?))
}
