//! The REST API's lists: conversations, a conversation's messages, and messages across the
//! tenant. Each answers one page, read in SQL ([`Host::search_conversations`] and its
//! siblings), never the whole tenant: at most [`MAX_PAGE`] rows and `next_cursor`, which
//! the client passes back as `cursor` for the next page (`null` on the last one).
//!
//! What the request's shape gets wrong (a `limit` out of range, an unknown parameter, a
//! value past its documented length) is `400 invalid_request`; a well-formed query the
//! host cannot run (a cursor it did not give, a search text without a word) is
//! `422 invalid_query`.
//!
//! [`Host::search_conversations`]: crate::Host::search_conversations

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::crm::{Api, Caller, ConversationView};
use super::media::AttachmentView;
use super::{ApiError, ApiPath, ApiQuery, ErrorCode};
use crate::store::{
    ConversationStatus, DEFAULT_PAGE, Direction, MAX_CURSOR_CHARS, MAX_PAGE, MAX_SEARCH_CHARS,
    SearchQuery, StoredMessage,
};
use crate::types::{MessageKind, Person};
use serde_json::{Value, json};

use super::openapi::{path_parameter, schema};

/// Longest channel, brand or operator name a filter takes.
pub(super) const MAX_NAME_CHARS: usize = 200;
/// Latest time a filter takes (ms): `i64::MAX`, as the OpenAPI document says.
const MAX_TIME: u64 = i64::MAX.unsigned_abs();

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum StatusFilter {
    Open,
    Waiting,
    Assigned,
    Resolved,
}

impl From<StatusFilter> for ConversationStatus {
    fn from(status: StatusFilter) -> Self {
        match status {
            StatusFilter::Open => ConversationStatus::Open,
            StatusFilter::Waiting => ConversationStatus::Waiting,
            StatusFilter::Assigned => ConversationStatus::Assigned,
            StatusFilter::Resolved => ConversationStatus::Resolved,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum DirectionFilter {
    Inbound,
    Outbound,
}

/// The filters and paging both searches take.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    q: Option<String>,
    channel: Option<String>,
    brand: Option<String>,
    assignee: Option<String>,
    status: Option<StatusFilter>,
    since: Option<u64>,
    until: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Messages only.
    direction: Option<DirectionFilter>,
}

/// Paging alone (a conversation's messages).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// `limit` within its documented bounds.
fn check_limit(limit: Option<usize>) -> Result<(), ApiError> {
    match limit {
        Some(limit) if !(1..=MAX_PAGE).contains(&limit) => {
            Err(invalid(format!("`limit` must be between 1 and {MAX_PAGE}")))
        }
        _ => Ok(()),
    }
}

/// A `cursor` of the documented shape (whether it is one of ours is the host's to say).
fn check_cursor(cursor: Option<&str>) -> Result<(), ApiError> {
    match cursor {
        Some(cursor)
            if cursor.is_empty()
                || cursor.len() > MAX_CURSOR_CHARS
                || !cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(invalid(format!(
                "`cursor` must be 1 to {MAX_CURSOR_CHARS} characters of A-Z, a-z, 0-9, `-` \
                 and `_`, as a page's `next_cursor` gave it"
            )))
        }
        _ => Ok(()),
    }
}

/// A text parameter within its documented length.
fn check_length(field: &str, value: Option<&str>, min: usize, max: usize) -> Result<(), ApiError> {
    match value.map(|v| v.chars().count()) {
        Some(length) if length < min || length > max => Err(invalid(format!(
            "`{field}` must be {min} to {max} characters"
        ))),
        _ => Ok(()),
    }
}

impl SearchParams {
    /// The host's query, after checking what the OpenAPI document bounds.
    fn query(self) -> Result<SearchQuery, ApiError> {
        check_limit(self.limit)?;
        check_cursor(self.cursor.as_deref())?;
        check_length("q", self.q.as_deref(), 1, MAX_SEARCH_CHARS)?;
        for (field, value) in [
            ("channel", &self.channel),
            ("brand", &self.brand),
            ("assignee", &self.assignee),
        ] {
            check_length(field, value.as_deref(), 0, MAX_NAME_CHARS)?;
        }
        for (field, value) in [("since", self.since), ("until", self.until)] {
            if value.is_some_and(|v| v > MAX_TIME) {
                return Err(invalid(format!(
                    "`{field}` must be between 0 and {MAX_TIME}"
                )));
            }
        }
        let mut query = SearchQuery::new();
        query.text = self.q;
        query.channel = self.channel;
        query.brand = self.brand;
        query.assignee = self.assignee;
        query.status = self.status.map(ConversationStatus::from);
        query.direction = self.direction.map(|d| match d {
            DirectionFilter::Inbound => Direction::Inbound,
            DirectionFilter::Outbound => Direction::Outbound,
        });
        query.since_ms = self.since;
        query.until_ms = self.until;
        query.limit = self.limit;
        query.cursor = self.cursor;
        Ok(query)
    }
}

/// A message, the customer's (`inbound`) or the company's (`outbound`).
#[derive(Serialize)]
pub(super) struct MessageView {
    id: String,
    conversation_id: String,
    channel: String,
    direction: String,
    external_id: String,
    account: String,
    author: Person,
    text: String,
    kind: MessageKind,
    in_reply_to: Option<String>,
    attachments: Vec<AttachmentView>,
    created_at: u64,
    received_at: i64,
    deleted_at: Option<i64>,
    edited_at: Option<i64>,
}

impl MessageView {
    /// The views of `messages`, each attachment with the file the host keeps of it.
    pub(super) async fn page(
        api: &Api,
        tenant: &str,
        mut messages: Vec<StoredMessage>,
    ) -> Result<Vec<MessageView>, ApiError> {
        let attachments = super::media::attachment_views(api, tenant, &mut messages).await?;
        Ok(messages
            .into_iter()
            .zip(attachments)
            .map(|(stored, attachments)| MessageView::new(stored, attachments))
            .collect())
    }

    fn new(stored: StoredMessage, attachments: Vec<AttachmentView>) -> Self {
        MessageView {
            id: stored.id,
            conversation_id: stored.conversation_id.into_string(),
            channel: stored.channel,
            direction: stored.direction,
            external_id: stored.message.external_id,
            account: stored.message.account,
            author: stored.message.author,
            text: stored.message.text,
            kind: stored.message.kind,
            in_reply_to: stored.message.in_reply_to,
            attachments,
            created_at: stored.message.created_at,
            received_at: stored.received_at,
            deleted_at: stored.deleted_at,
            edited_at: stored.edited_at,
        }
    }
}

#[derive(Serialize)]
pub(super) struct ConversationList {
    conversations: Vec<ConversationView>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
pub(super) struct MessageList {
    messages: Vec<MessageView>,
    next_cursor: Option<String>,
}

/// `GET /api/v1/conversations`.
pub(super) async fn conversations(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<ConversationList>, ApiError> {
    if params.direction.is_some() {
        return Err(invalid(
            "`direction` filters messages (`GET /api/v1/messages`), not conversations".into(),
        ));
    }
    let query = params.query()?;
    let page = api
        .host
        .search_conversations(&caller.tenant, &query)
        .await?;
    Ok(Json(ConversationList {
        conversations: page.items.into_iter().map(ConversationView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/v1/messages`.
pub(super) async fn search_messages(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<MessageList>, ApiError> {
    let query = params.query()?;
    let page = api.host.search_messages(&caller.tenant, &query).await?;
    Ok(Json(MessageList {
        messages: MessageView::page(&api, &caller.tenant, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/v1/conversations/{id}/messages`.
pub(super) async fn messages(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<MessageList>, ApiError> {
    check_limit(params.limit)?;
    check_cursor(params.cursor.as_deref())?;
    api.conversation(&caller.tenant, &id).await?;
    let page = api
        .host
        .conversation_messages(&caller.tenant, &id, params.limit, params.cursor.as_deref())
        .await?;
    Ok(Json(MessageList {
        messages: MessageView::page(&api, &caller.tenant, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// The parameters the routes share, by name, for the OpenAPI document's
/// `components/parameters`: the path ids, and the lists' filters and paging.
pub(super) fn openapi_parameters() -> Value {
    let name_filter = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "required": false,
            "description": description,
            "schema": { "type": "string", "maxLength": MAX_NAME_CHARS }
        })
    };
    json!({
        "conversationId": path_parameter("id", "A conversation's id."),
        "operatorId": path_parameter("id", "An operator's id."),
        "replyId": path_parameter("id", "A reply's id (from `POST …/replies`)."),
        "customerId": path_parameter("id", "A customer's id."),
        "q": {
            "name": "q", "in": "query", "required": false,
            "description": "Search text: only what holds every word of it (runs of letters and digits; case-insensitive, accents kept, whole words, no stemming). A conversation matches when one of its messages does. Without any word: `422 invalid_query`.",
            "schema": { "type": "string", "minLength": 1, "maxLength": MAX_SEARCH_CHARS }
        },
        "channel": name_filter("channel", "Only this channel (the connector's name)."),
        "brand": name_filter("brand", "Only conversations with an account configured with this brand."),
        "assignee": name_filter("assignee", "Only conversations held by this operator."),
        "status": {
            "name": "status", "in": "query", "required": false,
            "description": "Only conversations with this status.",
            "schema": schema("ConversationStatus")
        },
        "limit": {
            "name": "limit", "in": "query", "required": false,
            "description": format!("At most this many per page (default {DEFAULT_PAGE}, at most {MAX_PAGE})."),
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE }
        },
        "cursor": {
            "name": "cursor", "in": "query", "required": false,
            "description": "The `next_cursor` of the page before, unchanged: the page after it, whatever arrived meanwhile (no row twice, none skipped). Absent: the first page. One this list did not give: `422 invalid_query`.",
            "schema": { "type": "string", "minLength": 1, "maxLength": MAX_CURSOR_CHARS, "pattern": "^[A-Za-z0-9_-]+$" }
        }
    })
}
