//! The HTTP exchange with X for one account, and X's answers turned into the contract's
//! `plugin-error`.

use centralino_sdk::http::{Api, DEFAULT_RETRY_AFTER_MS, FormPart, Response};
use centralino_sdk::prelude::*;
use centralino_sdk::time;
use centralino_sdk::{MediaKind, OutboundAttachment};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::Settings;

/// Requests for one account, remembering when X said its window resets.
pub(super) struct XApi {
    api: Api,
    /// When to poll again, if a response said the window is spent.
    pub(super) resume_at: Option<u64>,
}

impl XApi {
    pub(super) fn new(settings: &Settings, credential: &str) -> Self {
        XApi {
            api: Api::new("X", &settings.api_base)
                .credential(credential)
                .errors(platform_error),
            resume_at: None,
        }
    }

    /// GET `path?query` and parse the JSON answer.
    pub(super) fn get<T: DeserializeOwned>(
        &mut self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T> {
        let response = self
            .api
            .get(path)
            .query_pairs(query.iter().copied())
            .send()?;
        self.note_window(&response);
        response.json().map_err(|e| {
            PluginError::transient(format!("X answered {path} with an unreadable body: {e}"))
        })
    }

    /// POST a JSON body.
    pub(super) fn post(&mut self, path: &str, body: &serde_json::Value) -> Result<Response> {
        let response = self.api.post(path).json_body(body).send()?;
        self.note_window(&response);
        Ok(response)
    }

    /// Uploads an image for `category` (`dm_image`, `tweet_image`) through X's media
    /// upload (`POST /2/media/upload`, multipart `media` and `media_category`); its id.
    pub(super) fn upload(
        &mut self,
        attachment: &OutboundAttachment,
        category: &str,
    ) -> Result<String> {
        if attachment.kind != MediaKind::Image {
            return Err(PluginError::rejected(format!(
                "the X connector sends images only, not `{}` ({})",
                attachment.file_name, attachment.mime_type
            )));
        }
        let response = self
            .api
            .post("/2/media/upload")
            .multipart_body(&[
                FormPart::file(
                    "media",
                    &attachment.file_name,
                    &attachment.mime_type,
                    &attachment.data,
                ),
                FormPart::text("media_category", category),
            ])
            .send()?;
        self.note_window(&response);
        #[derive(Deserialize)]
        struct Uploaded {
            data: UploadedData,
        }
        #[derive(Deserialize)]
        struct UploadedData {
            id: String,
        }
        let uploaded: Uploaded = response.json().map_err(|e| {
            PluginError::transient(format!(
                "X answered the upload of `{}` with an unreadable body: {e}",
                attachment.file_name
            ))
        })?;
        Ok(uploaded.data.id)
    }

    fn note_window(&mut self, response: &Response) {
        if response.header("x-rate-limit-remaining") == Some("0") {
            self.resume_at = self.resume_at.max(reset_ms(response));
        }
    }
}

/// `x-rate-limit-reset` (epoch seconds) in milliseconds.
fn reset_ms(response: &Response) -> Option<u64> {
    let seconds: u64 = response.header("x-rate-limit-reset")?.parse().ok()?;
    seconds.checked_mul(1000)
}

/// What X's error answer means for the host.
///
/// 401/403 mean the token was refused (revoked, expired, app not enrolled), except the 403
/// X gives a post that repeats an earlier one, which no retry will fix.
fn platform_error(platform: &str, response: &Response) -> PluginError {
    let detail = problem_detail(response);
    let now = time::now_ms();
    match response.status {
        429 => PluginError::rate_limited(
            reset_ms(response).map_or(DEFAULT_RETRY_AFTER_MS, |reset| {
                reset.saturating_sub(now).max(1000)
            }),
            detail,
        ),
        403 if detail.to_ascii_lowercase().contains("duplicate") => {
            PluginError::rejected("duplicate content")
        }
        401 | 403 => PluginError::invalid_credentials(detail),
        status @ 500..=599 => {
            PluginError::transient(format!("{platform} answered {status}: {detail}"))
        }
        status => PluginError::rejected(format!("{platform} answered {status}: {detail}")),
    }
}

/// The human part of an X error body: v2 problem `detail`/`title`, or a v1.1
/// `errors[0].message`, or the raw body.
fn problem_detail(response: &Response) -> String {
    #[derive(Deserialize)]
    struct Problem {
        detail: Option<String>,
        title: Option<String>,
        #[serde(default)]
        errors: Vec<ProblemError>,
    }
    #[derive(Deserialize)]
    struct ProblemError {
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Problem>(&response.body)
        .ok()
        .and_then(|problem| {
            problem
                .detail
                .or(problem.title)
                .or_else(|| problem.errors.into_iter().find_map(|e| e.message))
        });
    parsed.unwrap_or_else(|| response.summary())
}
