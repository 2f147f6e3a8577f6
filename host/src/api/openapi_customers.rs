//! The customer routes' part of the OpenAPI document (see `openapi.rs`).

use serde_json::{Value, json};

use super::openapi::{
    errors, integer, json_body, linked, list, millis, not_only, nullable_millis, nullable_string,
    object, ok, reference, request, schema, string, with,
};

/// What a history page's `next` looks like (and what `after` takes).
const HISTORY_CURSOR: &str = "^-?[0-9]{1,18}\\.-?[0-9]{1,18}\\.[0-9a-fA-F]{1,64}$";

/// A link from a response holding an identity (a conversation's channel and customer) to
/// the customer it belongs to.
pub(super) fn find_customer_link(channel: &str, platform_id: &str) -> Value {
    json!({
        "operationId": "findCustomer",
        "parameters": { "query.channel": channel, "query.platform_id": platform_id }
    })
}

/// Links from a response holding a customer's id at `expression`.
fn customer_links(response: Value, expression: &str) -> Value {
    linked(
        response,
        &[
            ("GetCustomer", "getCustomer", "id", expression),
            ("CustomerHistory", "customerHistory", "id", expression),
            (
                "CustomerSuggestions",
                "customerSuggestions",
                "id",
                expression,
            ),
            ("ExportCustomer", "exportCustomer", "id", expression),
        ],
    )
}

/// The customer routes.
pub(super) fn paths() -> Value {
    let customer = reference("parameters", "customerId");
    let body_errors = ["400", "401", "404", "409", "413", "415"];
    let text_parameter = |name: &str, description: &str| {
        json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string", "minLength": 1 }
        })
    };
    json!({
        "/api/v1/customers": {
            "get": {
                "operationId": "findCustomer",
                "summary": "The customer of an identity: the connector's name and the platform's id of the person (a conversation's `channel` and `customer.id`). Every identity that wrote has one.",
                "parameters": [
                    { "name": "channel", "in": "query", "required": true, "description": "The connector's name.", "schema": { "type": "string" } },
                    { "name": "platform_id", "in": "query", "required": true, "description": "The platform's id of the person.", "schema": { "type": "string" } }
                ],
                "responses": with(errors(&["400", "401", "404"]), "200", customer_links(ok("The customer.", "CustomerRecord"), "$response.body#/id"))
            }
        },
        "/api/v1/customers/{id}": {
            "get": {
                "operationId": "getCustomer",
                "summary": "A customer and their identities on every channel.",
                "parameters": [customer],
                "responses": with(errors(&["400", "401", "404"]), "200", customer_links(ok("The customer.", "CustomerRecord"), "$response.body#/id"))
            },
            "delete": {
                "operationId": "eraseCustomer",
                "summary": "Erase a customer (a data subject's request; cannot be undone): open conversations are resolved, every text, identity and attachment of theirs is removed (the counts reports need stay), the CRM gets `customer-erased`, the audit log an entry, and redelivered webhooks of their messages are refused.",
                "parameters": [customer],
                "responses": with(errors(&["400", "401", "404", "409"]), "200", ok("What was erased.", "Erasure"))
            }
        },
        "/api/v1/customers/{id}/identities": {
            "post": {
                "operationId": "linkIdentity",
                "summary": "Link an identity to the customer (it may not have written yet): their history, export, erasure and stickiness then cover it. A customer left without identities is merged in.",
                "parameters": [customer],
                "requestBody": json_body("IdentityRequest"),
                "responses": with(errors(&body_errors), "200", customer_links(ok("The customer, with the identity.", "CustomerRecord"), "$response.body#/id"))
            }
        },
        "/api/v1/customers/{id}/identities/{channel}/{platform_id}": {
            "delete": {
                "operationId": "unlinkIdentity",
                "summary": "Take an identity away from the customer: it becomes a customer of its own (`409` for the customer's only identity, or one that is not theirs).",
                "parameters": [customer, text_parameter("channel", "The identity's connector."), text_parameter("platform_id", "The platform's id of the person.")],
                "responses": with(errors(&["400", "401", "404", "409"]), "200", customer_links(ok("The customer, without the identity.", "CustomerRecord"), "$response.body#/id"))
            }
        },
        "/api/v1/customers/{id}/merge": {
            "post": {
                "operationId": "mergeCustomers",
                "summary": "Merge another customer into this one: their identities become this customer's, and they are gone.",
                "parameters": [customer],
                "requestBody": json_body("MergeRequest"),
                "responses": with(errors(&body_errors), "200", customer_links(ok("The customer, with every identity.", "CustomerRecord"), "$response.body#/id"))
            }
        },
        "/api/v1/customers/{id}/suggestions": {
            "get": {
                "operationId": "customerSuggestions",
                "summary": "Customers who may be the same person: their identities carry the same e-mail address or phone number, as the platforms gave them. Never merged by the host.",
                "parameters": [customer],
                "responses": with(errors(&["400", "401", "404"]), "200", ok("The suggestions.", "SuggestionList"))
            }
        },
        "/api/v1/customers/{id}/history": {
            "get": {
                "operationId": "customerHistory",
                "summary": "The customer's messages on every channel (theirs and the company's), newest first, one page at a time.",
                "parameters": [
                    customer,
                    { "name": "limit", "in": "query", "required": false, "description": "At most this many (default 50).", "schema": { "type": "integer", "minimum": 1, "maximum": crate::MAX_HISTORY_PAGE } },
                    { "name": "after", "in": "query", "required": false, "description": "Where the page starts: the previous page's `next`.", "schema": { "type": "string", "pattern": HISTORY_CURSOR } }
                ],
                "responses": with(errors(&["400", "401", "404"]), "200", ok("A page of the history.", "History"))
            }
        },
        "/api/v1/customers/{id}/export": {
            "get": {
                "operationId": "exportCustomer",
                "summary": "Everything held about the customer, in one JSON document: the customer and identities, the links suggested, every conversation with its messages and replies.",
                "parameters": [customer],
                "responses": with(errors(&["400", "401", "404"]), "200", ok("The export.", "CustomerExport"))
            }
        }
    })
}

/// The customer routes' schemas.
pub(super) fn schemas() -> Value {
    let any_object = json!({ "type": "object" });
    json!({
        "Identity": object(json!({
            "channel": { "type": "string", "description": "The connector's name." },
            "platform_id": { "type": "string", "description": "The platform's id of the person." },
            "handle": nullable_string(),
            "linked_by": { "type": "string", "enum": ["host", "crm"], "description": "`host`: filed by its first message; `crm`: linked by the CRM." },
            "created_at": millis("When the host first knew it.")
        })),
        "CustomerRecord": object(json!({
            "id": string(),
            "identities": list("Identity"),
            "last_operator": { "type": ["string", "null"], "description": "Who last helped them, on any channel (stickiness)." },
            "last_operator_at": nullable_millis("When."),
            "created_at": millis("Created."),
            "updated_at": millis("Last change.")
        })),
        "IdentityRequest": request(json!({
            "channel": { "type": "string", "pattern": not_only(char::is_whitespace) },
            "platform_id": { "type": "string", "pattern": not_only(char::is_whitespace) }
        }), &["channel", "platform_id"]),
        "MergeRequest": request(json!({
            "from": { "type": "string", "pattern": not_only(char::is_whitespace), "description": "The customer merged in (and gone afterwards)." }
        }), &["from"]),
        "Suggestion": object(json!({
            "customer_id": string(),
            "other_id": string(),
            "reason": { "type": "string", "enum": ["same-email", "same-phone"] },
            "created_at": millis("When the host noticed.")
        })),
        "SuggestionList": object(json!({ "suggestions": list("Suggestion") })),
        "HistoryMessage": object(json!({
            "id": string(),
            "conversation_id": string(),
            "channel": string(),
            "direction": { "type": "string", "enum": ["inbound", "outbound"] },
            "external_id": string(),
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
        "History": object(json!({
            "messages": list("HistoryMessage"),
            "next": { "type": ["string", "null"], "pattern": HISTORY_CURSOR, "description": "Pass as `after` for the next page; null on the last." }
        })),
        "Erasure": object(json!({
            "customer_id": string(),
            "identities": integer(),
            "conversations": { "type": "integer", "description": "Conversations emptied (their rows stay, counted)." },
            "messages": { "type": "integer", "description": "Messages emptied (their rows stay, counted)." },
            "replies": integer(),
            "events": { "type": "integer", "description": "CRM events about them deleted." },
            "at": millis("When.")
        })),
        "CustomerExport": {
            "type": "object",
            "required": ["customer", "suggestions", "conversations", "exported_at"],
            "properties": {
                "customer": any_object,
                "suggestions": { "type": "array", "items": any_object },
                "conversations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["conversation", "messages", "replies"],
                        "properties": {
                            "conversation": any_object,
                            "messages": { "type": "array", "items": any_object },
                            "replies": { "type": "array", "items": any_object }
                        }
                    }
                },
                "exported_at": integer()
            }
        }
    })
}
