//! The OpenAPI 3.1 document of the REST API, built here beside the handlers it describes,
//! served at `/openapi.json` and checked in at `docs/openapi.json` (a test keeps the two
//! identical, and validates real responses against it).

use serde_json::{Value, json};

use super::ErrorCode;
use crate::types::is_blank_char;

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "centralino REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "security": [{ "tenantToken": [] }],
        "paths": merged(merged(paths(), super::openapi_customers::paths()), super::openapi_media::paths()),
        "components": {
            "securitySchemes": {
                "tenantToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The tenant's `api_token` from centralino.toml. It names the tenant: every route sees that tenant's data only."
                }
            },
            "parameters": super::lists::openapi_parameters(),
            "responses": responses(),
            "schemas": merged(merged(schemas(), super::openapi_customers::schemas()), super::openapi_media::schemas()),
        }
    })
}

/// The members of two JSON objects in one.
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A reference to one of the shared parameters (`components/parameters`).
fn query_parameter(name: &str) -> Value {
    reference("parameters", name)
}

fn time_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX })
}

/// The document as served and checked in: pretty JSON and a final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

const DESCRIPTION: &str = "For CRMs in any language: read and search conversations and messages, reply as an operator, resolve, transfer and set operators' presence; link a customer's identities on every channel, read their history across channels, export and erase what is held about them. Events (new messages, assignments, delivery results) reach the CRM as signed webhooks.\n\nEvery request carries a tenant's token (`Authorization: Bearer …`); another tenant's conversation is `404`, like one that does not exist. Every refusal is a 4xx with a body `{\"error\": {\"code\", \"message\"}}`. A reply from an operator who does not hold the conversation is `409 not_assignee` (the token authenticates the CRM, not the operator; the request conflicts with who holds the conversation now). Times are milliseconds since the Unix epoch. Lists come a page at a time (`limit`, at most 200) with a `next_cursor` to pass back as `cursor`.";

pub(super) fn path_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": { "type": "string", "minLength": 1 }
    })
}

/// A pattern that a string matches when it has at least one character `blank` does not
/// take: a class of every other character, written as `\uXXXX` escapes (and, beyond the
/// Basic Multilingual Plane, as the characters themselves), which ECMA-262 and Python
/// regular expressions read alike.
pub(super) fn not_only(blank: impl Fn(char) -> bool) -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if !blank(c) {
            continue;
        }
        match ranges.last_mut() {
            Some((_, last)) if u32::from(*last) + 1 == u32::from(c) => *last = c,
            _ => ranges.push((c, c)),
        }
    }
    let escape = |c: char| match u32::from(c) {
        code @ 0..=0xFFFF => format!("\\u{code:04X}"),
        _ => c.to_string(),
    };
    let mut class = String::from("[^");
    for (first, last) in ranges {
        class.push_str(&escape(first));
        if last != first {
            class.push('-');
            class.push_str(&escape(last));
        }
    }
    class.push(']');
    class
}

pub(super) fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

pub(super) fn schema(name: &str) -> Value {
    reference("schemas", name)
}

pub(super) fn ok(description: &str, schema_name: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(schema_name) } }
    })
}

pub(super) fn json_body(schema_name: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": schema(schema_name) } }
    })
}

/// The error responses a route may give, by status.
pub(super) fn errors(statuses: &[&str]) -> serde_json::Map<String, Value> {
    statuses
        .iter()
        .map(|status| {
            let name = match *status {
                "400" => "BadRequest",
                "401" => "Unauthorized",
                "404" => "NotFound",
                "409" => "Conflict",
                "413" => "PayloadTooLarge",
                "415" => "UnsupportedMediaType",
                "422" => "UnprocessableEntity",
                _ => "ServiceUnavailable",
            };
            ((*status).to_string(), reference("responses", name))
        })
        .collect()
}

/// `response` with links to the operations that take what it returns: each named by
/// `(link name, operationId, parameter, runtime expression)`. Clients (and schemathesis's
/// stateful tests) follow them from a list to an item and from a reply to its status.
pub(super) fn linked(mut response: Value, links: &[(&str, &str, &str, &str)]) -> Value {
    let links: serde_json::Map<String, Value> = links
        .iter()
        .map(|(name, operation, parameter, expression)| {
            (
                (*name).to_string(),
                json!({ "operationId": operation, "parameters": { *parameter: expression } }),
            )
        })
        .collect();
    response["links"] = Value::Object(links);
    response
}

/// Links from a response that holds a conversation's id at `expression` to what can be
/// done with that conversation.
fn conversation_links(response: Value, expression: &str) -> Value {
    let mut response = linked(
        response,
        &[
            ("GetConversation", "getConversation", "id", expression),
            ("ListMessages", "listMessages", "id", expression),
            ("Reply", "reply", "id", expression),
            ("Resolve", "resolveConversation", "id", expression),
            ("Transfer", "transferConversation", "id", expression),
        ],
    );
    // The conversation's customer: its channel and customer id, beside its id.
    let at = expression.strip_suffix("/id").unwrap_or(expression);
    response["links"]["FindCustomer"] = super::openapi_customers::find_customer_link(
        &format!("{at}/channel"),
        &format!("{at}/customer/id"),
    );
    response
}

pub(super) fn with(
    mut responses: serde_json::Map<String, Value>,
    status: &str,
    response: Value,
) -> Value {
    responses.insert(status.to_string(), response);
    Value::Object(responses)
}

fn paths() -> Value {
    let conversation = reference("parameters", "conversationId");
    let body_errors = ["400", "401", "404", "409", "413", "415", "422"];
    json!({
        "/api/v1/conversations": {
            "get": {
                "operationId": "listConversations",
                "summary": "The tenant's conversations, newest first (by creation), one page at a time; every filter given must hold.",
                "parameters": [
                    query_parameter("q"),
                    query_parameter("channel"),
                    query_parameter("brand"),
                    query_parameter("assignee"),
                    query_parameter("status"),
                    {
                        "name": "since", "in": "query", "required": false,
                        "description": "Only conversations created at or after this time (ms).",
                        "schema": time_schema()
                    },
                    {
                        "name": "until", "in": "query", "required": false,
                        "description": "Only conversations created before this time (ms).",
                        "schema": time_schema()
                    },
                    query_parameter("limit"),
                    query_parameter("cursor")
                ],
                "responses": with(errors(&["400", "401", "422"]), "200", conversation_links(ok("One page of conversations, and the cursor of the next.", "ConversationList"), "$response.body#/conversations/0/id"))
            }
        },
        "/api/v1/conversations/{id}": {
            "get": {
                "operationId": "getConversation",
                "summary": "One conversation.",
                "parameters": [conversation],
                "responses": with(errors(&["400", "401", "404"]), "200", conversation_links(ok("The conversation.", "Conversation"), "$response.body#/id"))
            }
        },
        "/api/v1/conversations/{id}/messages": {
            "get": {
                "operationId": "listMessages",
                "summary": "A conversation's messages, oldest first, one page at a time: the customer's (`inbound`) and the replies sent (`outbound`).",
                "parameters": [conversation, query_parameter("limit"), query_parameter("cursor")],
                "responses": with(errors(&["400", "401", "404", "422"]), "200", ok("One page of messages, and the cursor of the next.", "MessageList"))
            }
        },
        "/api/v1/messages": {
            "get": {
                "operationId": "searchMessages",
                "summary": "The tenant's messages, newest stored first, one page at a time; the filters other than `q`, `direction` and the times are the conversation's.",
                "parameters": [
                    query_parameter("q"),
                    query_parameter("channel"),
                    query_parameter("brand"),
                    query_parameter("assignee"),
                    query_parameter("status"),
                    {
                        "name": "direction", "in": "query", "required": false,
                        "description": "Only the customer's messages (`inbound`) or the company's (`outbound`).",
                        "schema": { "type": "string", "enum": ["inbound", "outbound"] }
                    },
                    {
                        "name": "since", "in": "query", "required": false,
                        "description": "Only messages stored at or after this time (ms).",
                        "schema": time_schema()
                    },
                    {
                        "name": "until", "in": "query", "required": false,
                        "description": "Only messages stored before this time (ms).",
                        "schema": time_schema()
                    },
                    query_parameter("limit"),
                    query_parameter("cursor")
                ],
                "responses": with(errors(&["400", "401", "422"]), "200", linked(ok("One page of messages, and the cursor of the next.", "MessageList"), &[
                    ("GetConversation", "getConversation", "id", "$response.body#/messages/0/conversation_id"),
                    ("ListMessages", "listMessages", "id", "$response.body#/messages/0/conversation_id"),
                ]))
            }
        },
        "/api/v1/conversations/{id}/replies": {
            "post": {
                "operationId": "reply",
                "summary": "Reply as an operator: the reply is queued in the outbox and sent once, threaded under the customer's latest message, from the operator's own account where the channel allows it.",
                "parameters": [
                    conversation,
                    {
                        "name": "Idempotency-Key", "in": "header", "required": true,
                        "description": "Unique per reply, 1 to 200 visible ASCII characters. Sending the same request again returns the reply queued the first time.",
                        "schema": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$" }
                    }
                ],
                "requestBody": json_body("ReplyRequest"),
                "responses": with(errors(&body_errors), "202", linked(ok("Queued (or, for a repeated key, the reply queued the first time). Follow it with `GET /api/v1/replies/{id}` or the CRM events.", "Reply"), &[
                    ("GetReply", "getReply", "id", "$response.body#/id"),
                    ("GetConversation", "getConversation", "id", "$response.body#/conversation_id"),
                ]))
            }
        },
        "/api/v1/conversations/{id}/resolve": {
            "post": {
                "operationId": "resolveConversation",
                "summary": "Close a conversation: the operator's seat frees and the queue moves. Resolving a resolved conversation changes nothing.",
                "parameters": [conversation],
                "responses": with(errors(&["400", "401", "404", "409"]), "200", linked(ok("The conversation, resolved.", "Conversation"), &[
                    ("GetConversation", "getConversation", "id", "$response.body#/id"),
                    ("ListMessages", "listMessages", "id", "$response.body#/id"),
                ]))
            }
        },
        "/api/v1/conversations/{id}/transfer": {
            "post": {
                "operationId": "transferConversation",
                "summary": "Hand a conversation to another operator (presence is not checked, capacity is). Afterwards any operator may reply to it.",
                "parameters": [conversation],
                "requestBody": json_body("TransferRequest"),
                "responses": with(errors(&body_errors), "200", conversation_links(ok("The conversation, with its new assignee.", "Conversation"), "$response.body#/id"))
            }
        },
        "/api/v1/operators": {
            "get": {
                "operationId": "listOperators",
                "summary": "The tenant's operators with their presence and load.",
                "responses": with(errors(&["401"]), "200", linked(ok("The operators.", "OperatorList"), &[
                    ("SetPresence", "setPresence", "id", "$response.body#/operators/0/id"),
                ]))
            }
        },
        "/api/v1/operators/{id}/presence": {
            "put": {
                "operationId": "setPresence",
                "summary": "Set an operator's presence: coming online drains the queue, going offline re-routes their unanswered conversations.",
                "parameters": [reference("parameters", "operatorId")],
                "requestBody": json_body("PresenceRequest"),
                "responses": with(errors(&["400", "401", "404", "413", "415"]), "200", ok("The operator.", "Operator"))
            }
        },
        "/api/v1/replies/{id}": {
            "get": {
                "operationId": "getReply",
                "summary": "Where a reply stands.",
                "parameters": [reference("parameters", "replyId")],
                "responses": with(errors(&["400", "401", "404"]), "200", linked(ok("The reply.", "Reply"), &[
                    ("GetConversation", "getConversation", "id", "$response.body#/conversation_id"),
                ]))
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": { "application/json": { "schema": { "type": "object" } } }
                    }
                }
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Up.",
                        "content": { "text/plain": { "schema": { "type": "string" } } }
                    }
                }
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "The store answers and every connector started.",
                "security": [],
                "responses": with(errors(&["503"]), "200", ok("Ready.", "Ready"))
            }
        }
    })
}

fn responses() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": schema("Error") } }
        })
    };
    json!({
        "BadRequest": error("`malformed_json`, `invalid_request` (a body, query or path that is not what the route takes: also a path segment that is not UTF-8 once percent-decoded) or `invalid_idempotency_key`."),
        "Unauthorized": error("`unauthorized`: no bearer token, or not a tenant's."),
        "NotFound": error("`conversation_not_found`, `operator_not_found`, `reply_not_found`, `customer_not_found` or `media_not_found` (also when it is another tenant's)."),
        "Conflict": error("`not_assignee`, `conversation_resolved`, `not_routed`, `routing_not_configured`, `operator_at_capacity`, `idempotency_key_reused`, `media_not_stored` or `refused`."),
        "PayloadTooLarge": error("`payload_too_large`: the body is over 64 KiB (a reply with images: about 27 MiB)."),
        "UnsupportedMediaType": error("`unsupported_media_type`: the body's content type is not JSON."),
        "UnprocessableEntity": error("`unknown_operator` (the body names an operator the tenant does not have) `invalid_query` (a `cursor` this list did not give, a search text `q` without a word) or `invalid_image` (a reply's image that is not base64, is empty, is not the type it says, is too large, or one too many)."),
        "ServiceUnavailable": error("`not_ready` (the admin API's `/readyz` says why)."),
    })
}

/// An object schema: every property required (nullable ones say so), nothing else allowed.
pub(super) fn object(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// A request body: `required` properties, nothing else allowed.
pub(super) fn request(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

pub(super) fn string() -> Value {
    json!({ "type": "string" })
}

pub(super) fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

pub(super) fn integer() -> Value {
    json!({ "type": "integer" })
}

pub(super) fn millis(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

pub(super) fn nullable_millis(description: &str) -> Value {
    json!({ "type": ["integer", "null"], "description": description })
}

fn next_cursor() -> Value {
    json!({
        "type": ["string", "null"],
        "description": "Pass it as `cursor` for the next page; `null` on the last page."
    })
}

pub(super) fn list(name: &str) -> Value {
    json!({ "type": "array", "items": schema(name) })
}

fn schemas() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "Error": object(json!({
            "error": object(json!({
                "code": { "type": "string", "enum": codes },
                "message": { "type": "string", "description": "What is wrong, for a person." }
            }))
        })),
        "MessageKind": {
            "type": "string",
            "enum": ["public-post", "private-message", "comment"],
            "description": "A public post to an account, a private message, or a comment under one of the account's posts."
        },
        "ConversationStatus": {
            "type": "string",
            "enum": ["open", "waiting", "assigned", "resolved"]
        },
        "ReplyStatus": {
            "type": "string",
            "enum": ["pending", "sending", "sent", "failed", "uncertain"],
            "description": "`uncertain`: the host stopped while sending it; check the platform before sending again."
        },
        "Presence": {
            "type": "string",
            "enum": ["online", "away", "offline"]
        },
        "Customer": object(json!({
            "id": string(),
            "handle": nullable_string()
        })),
        "Conversation": object(json!({
            "id": string(),
            "channel": { "type": "string", "description": "The connector it came through." },
            "account": { "type": "string", "description": "The company account the customer wrote to." },
            "thread_key": string(),
            "customer": schema("Customer"),
            "kind": schema("MessageKind"),
            "status": schema("ConversationStatus"),
            "assignee": nullable_string(),
            "priority": integer(),
            "created_at": millis("When the first message arrived."),
            "updated_at": millis("Last change."),
            "first_response_at": nullable_millis("When an operator's first reply reached the platform."),
            "resolved_at": nullable_millis("When it was resolved.")
        })),
        "ConversationList": object(json!({
            "conversations": list("Conversation"),
            "next_cursor": next_cursor()
        })),
        "Person": object(json!({
            "id": string(),
            "handle": nullable_string(),
            "display_name": nullable_string()
        })),
        "Message": object(json!({
            "id": string(),
            "conversation_id": string(),
            "channel": { "type": "string", "description": "The connector it came through or went out on." },
            "direction": { "type": "string", "enum": ["inbound", "outbound"] },
            "external_id": { "type": "string", "description": "The platform's id." },
            "account": string(),
            "author": schema("Person"),
            "text": string(),
            "kind": schema("MessageKind"),
            "in_reply_to": nullable_string(),
            "attachments": list("Attachment"),
            "created_at": millis("When it was written, on the platform."),
            "received_at": millis("When the host stored it."),
            "deleted_at": nullable_millis("When the customer deleted it: its text and attachments are gone."),
            "edited_at": nullable_millis("When the customer last edited it: `text` is the edited one.")
        })),
        "MessageList": object(json!({
            "messages": list("Message"),
            "next_cursor": next_cursor()
        })),
        "ReplyRequest": request(json!({
            "operator": { "type": "string", "pattern": not_only(char::is_whitespace), "description": "The operator replying (`422 unknown_operator` when the tenant has no such operator)." },
            "text": { "type": "string", "pattern": not_only(is_blank_char), "description": "Something to read: not only whitespace, control or invisible characters (zero-width spaces, direction marks, variation selectors…)." },
            "images": super::openapi_media::reply_images()
        }), &["operator", "text"]),
        "Reply": object(json!({
            "id": string(),
            "conversation_id": string(),
            "operator": { "type": "string", "description": "Who wrote it (`centralino` for the host's wait estimates)." },
            "account": { "type": "string", "description": "The account it goes out from." },
            "text": string(),
            "status": schema("ReplyStatus"),
            "attempts": integer(),
            "last_error": nullable_string(),
            "external_id": { "type": ["string", "null"], "description": "The platform's id, once sent." }
        })),
        "TransferRequest": request(json!({
            "to": { "type": "string", "pattern": not_only(char::is_whitespace), "description": "The operator who takes it (`422 unknown_operator` when the tenant has no such operator)." }
        }), &["to"]),
        "PresenceRequest": request(json!({ "presence": schema("Presence") }), &["presence"]),
        "Operator": object(json!({
            "id": string(),
            "name": string(),
            "skills": { "type": "array", "items": string() },
            "capacity": integer(),
            "load": { "type": "integer", "description": "Conversations held now." },
            "presence": schema("Presence"),
            "available": { "type": "boolean", "description": "Online, within working hours and below capacity." }
        })),
        "OperatorList": object(json!({ "operators": list("Operator") })),
        "Ready": object(json!({ "status": { "type": "string", "enum": ["ready"] } }))
    })
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
