//! The media part of the OpenAPI document (see `openapi.rs` and `media.rs`): a stored
//! file's route, the file an attachment shows, and a reply's images.

use serde_json::{Value, json};

use super::openapi::{errors, nullable_string, object, request, schema, string, with};

/// The file route.
pub(super) fn paths() -> Value {
    json!({
        "/api/v1/media/{id}": {
            "get": {
                "operationId": "getMedia",
                "summary": "A file of a message (a customer's image the host fetched and keeps) or of a reply, as stored: its bytes with its type. The address (an attachment's `file.href`) stays valid whatever happens to the platform's own address, until retention or an erasure removes the message.",
                "parameters": [{
                    "name": "id", "in": "path", "required": true,
                    "description": "A file's id (an attachment's `file.id`).",
                    "schema": { "type": "string", "minLength": 1 }
                }],
                "responses": with(errors(&["400", "401", "404", "409"]), "200", json!({
                    "description": "The file. `409 media_not_stored` while it is still being fetched, or when it failed (the message says why).",
                    "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } }
                }))
            }
        }
    })
}

/// The file and image schemas.
pub(super) fn schemas() -> Value {
    json!({
        "Attachment": object(json!({
            "kind": string(),
            "url": nullable_string(),
            "mime_type": nullable_string(),
            "description": nullable_string(),
            "file": attachment_file()
        })),
        "File": object(json!({
            "id": string(),
            "state": {
                "type": "string", "enum": ["fetching", "stored", "failed"],
                "description": "`fetching`: the host is bringing it from the platform (or waits to try again); `stored`: served at `href`; `failed`: not kept, `error` says why."
            },
            "href": { "type": "string", "description": "Its address on this API: `/api/v1/media/{id}` (needs the tenant's token)." },
            "mime_type": nullable_string(),
            "size": { "type": "integer", "minimum": 0, "description": "Bytes (0 until stored)." },
            "error": { "type": ["string", "null"], "description": "Why it failed, or what the last try said while it is still fetching." }
        })),
        "ReplyImage": request(json!({
            "mime_type": { "type": "string", "enum": ["image/jpeg", "image/png", "image/gif", "image/webp"] },
            "file_name": { "type": "string", "minLength": 1, "maxLength": crate::MAX_FILE_NAME_CHARS, "pattern": "^[^/\\\\\\u0000-\\u001f\\u007f]+$", "description": "A file name without a path." },
            "data": { "type": "string", "contentEncoding": "base64", "description": "The image, base64 (RFC 4648, with padding); its bytes must be the type it says, at most the host's `media_max_file_kib`." }
        }), &["mime_type", "file_name", "data"]),
    })
}

/// An attachment's `file` property: the file the host keeps of it, or null.
fn attachment_file() -> Value {
    json!({
        "anyOf": [schema("File"), { "type": "null" }],
        "description": "The file the host keeps of it: null for what is no file (a location, a link)."
    })
}

/// A reply's `images` property.
pub(super) fn reply_images() -> Value {
    json!({
        "type": "array", "maxItems": crate::MAX_REPLY_IMAGES, "items": schema("ReplyImage"),
        "description": "Images sent with the text (default none); each checked before the reply is queued (`422 invalid_image` says what is wrong). The connector uploads them the platform's way."
    })
}
