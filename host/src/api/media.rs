//! Files of messages in the REST API: each attachment of a message shows where its file
//! is (`file`: `stored`, `fetching`, or `failed` with why), and a stored file is served at
//! its stable address, `GET /api/v1/media/{id}`, to the tenant's token only.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::crm::{Api, Caller};
use super::{ApiError, ApiPath, ErrorCode};
use crate::store::{MediaRecord, MediaState, StoredMessage};
use crate::types::Attachment;

/// An attachment as the API shows it: what the platform said, and the file the host keeps
/// of it (`null` for what is no file: a location, a link).
#[derive(Serialize)]
pub(super) struct AttachmentView {
    #[serde(flatten)]
    attachment: Attachment,
    file: Option<FileView>,
}

/// The file the host keeps of an attachment.
#[derive(Serialize)]
struct FileView {
    id: String,
    state: MediaState,
    /// The file's address on this API (needs the tenant's token).
    href: String,
    mime_type: Option<String>,
    size: u64,
    error: Option<String>,
}

impl From<MediaRecord> for FileView {
    fn from(record: MediaRecord) -> Self {
        FileView {
            href: format!("/api/v1/media/{}", record.id),
            id: record.id,
            state: record.state,
            mime_type: record.mime_type,
            size: record.size,
            error: record.error,
        }
    }
}

/// The attachments of `messages` with their files, read in one query per page.
pub(super) async fn attachment_views(
    api: &Api,
    tenant: &str,
    messages: &mut [StoredMessage],
) -> Result<Vec<Vec<AttachmentView>>, ApiError> {
    let ids: Vec<String> = messages
        .iter()
        .filter(|m| !m.message.attachments.is_empty())
        .map(|m| m.id.clone())
        .collect();
    let mut records = if ids.is_empty() {
        Vec::new()
    } else {
        api.host.media_of(tenant, &ids).await?
    };
    Ok(messages
        .iter_mut()
        .map(|m| {
            std::mem::take(&mut m.message.attachments)
                .into_iter()
                .enumerate()
                .map(|(position, attachment)| {
                    let at = records.iter().position(|r| {
                        r.owner_id == m.id && usize::try_from(r.position) == Ok(position)
                    });
                    AttachmentView {
                        attachment,
                        file: at.map(|at| FileView::from(records.swap_remove(at))),
                    }
                })
                .collect()
        })
        .collect())
}

/// `GET /api/v1/media/{id}`: a stored file's bytes, with its type.
pub(super) async fn get_media(
    State(api): State<Api>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(content) = api.host.media(&caller.tenant, &id).await? else {
        return Err(ApiError::new(
            ErrorCode::MediaNotFound,
            format!("no file `{id}`"),
        ));
    };
    match content.record.state {
        MediaState::Stored => {}
        MediaState::Fetching => {
            return Err(ApiError::new(
                ErrorCode::MediaNotStored,
                format!(
                    "file `{id}` is still being fetched from the platform (try {}{})",
                    content.record.attempts,
                    content
                        .record
                        .error
                        .map(|e| format!("; the last try said: {e}"))
                        .unwrap_or_default()
                ),
            ));
        }
        MediaState::Failed => {
            return Err(ApiError::new(
                ErrorCode::MediaNotStored,
                format!(
                    "file `{id}` was not stored: {}",
                    content.record.error.unwrap_or_default()
                ),
            ));
        }
    }
    let mime = content
        .record
        .mime_type
        .as_deref()
        .and_then(|m| HeaderValue::from_str(m).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // A customer's file is never a page of this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        content.bytes,
    )
        .into_response())
}
