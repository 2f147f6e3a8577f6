//! Files of messages in the REST API: each attachment of a message shows where its file
//! is (`file`: `stored`, `fetching`, or `failed` with why), and a stored file is served at
//! its stable address, `GET /api/v1/media/{id}`, to the tenant's token only.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::crm::{Api, Caller};
use super::{ApiError, ApiPath, ErrorCode};
use crate::store::{MediaRecord, MediaState, StoredMessage};
use crate::types::Attachment;
use crate::{Host, ReplyImage};

/// Largest reply body read: [`crate::MAX_REPLY_IMAGES`] images of the default largest
/// file, in base64, and the text (about 27 MiB). A host whose `media_max_file_kib` is
/// raised takes larger images through [`Host::reply_with_images`]; over this, the REST
/// reply is `413`.
pub(super) const MAX_REPLY_BODY: usize =
    crate::MAX_REPLY_IMAGES * (crate::MediaLimits::DEFAULT_FILE_BYTES as usize) / 3 * 4
        + (64 << 10);

/// An image in a REST reply: its type, its file name and its bytes in base64.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageBody {
    mime_type: String,
    file_name: String,
    data: String,
}

/// A reply's images, decoded and checked: `400 invalid_request` naming what is wrong.
pub(super) fn images(host: &Host, bodies: Vec<ImageBody>) -> Result<Vec<ReplyImage>, ApiError> {
    let mut images = Vec::with_capacity(bodies.len());
    for (index, body) in bodies.into_iter().enumerate() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(body.data.as_bytes())
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidImage,
                    format!("`images[{index}].data` is not base64 (RFC 4648, with padding): {e}"),
                )
            })?;
        images.push(ReplyImage::new(body.mime_type, body.file_name, data));
    }
    crate::host::check_images(&images, host.media_limits()).map_err(|e| match e {
        crate::Error::Refused(why) => ApiError::new(ErrorCode::InvalidImage, why),
        other => ApiError::from(other),
    })?;
    Ok(images)
}

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
