//! The extractors of the APIs' requests: each refuses what it cannot read with the APIs'
//! JSON error body instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::{ApiError, ErrorCode, MAX_JSON_BODY};

/// A JSON body: `400 malformed_json` when it does not parse, `400 invalid_request` when
/// it is not what the route takes, `415` when its content type says it is something
/// else, `413` past its limit. A missing content type is accepted.
/// `MAX` is the largest body read: [`MAX_JSON_BODY`] unless a route takes more (a reply
/// with images).
pub(crate) struct JsonBody<T, const MAX: usize = MAX_JSON_BODY>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned, const MAX: usize> FromRequest<S> for JsonBody<T, MAX> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        Ok(JsonBody(read_json::<T>(request, MAX).await?.0))
    }
}

/// [`JsonBody`] with the body's size in bytes, for a route whose limit depends on what
/// the body holds (a reply: 64 KiB of text, more with images).
pub(crate) struct SizedJsonBody<T, const MAX: usize>(pub(crate) T, pub(crate) usize);

impl<S: Send + Sync, T: DeserializeOwned, const MAX: usize> FromRequest<S>
    for SizedJsonBody<T, MAX>
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (value, size) = read_json::<T>(request, MAX).await?;
        Ok(SizedJsonBody(value, size))
    }
}

/// Reads a JSON body of at most `max` bytes; the value and the body's size.
async fn read_json<T: DeserializeOwned>(
    request: Request,
    max: usize,
) -> Result<(T, usize), ApiError> {
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let mime = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("expected a JSON body (`application/json`), not `{mime}`"),
            ));
        }
    }
    let bytes = match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {max} bytes"),
            ));
        }
        Err(e) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the body could not be read: {e}"),
            ));
        }
    };
    serde_json::from_slice(&bytes)
        .map(|value| (value, bytes.len()))
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the body is not what this route takes: {e}"),
            ),
            _ => ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ),
        })
}

/// Path parameters, refused as `400 invalid_request` with a JSON body.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// Query parameters, refused as `400 invalid_request` with a JSON body.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}
