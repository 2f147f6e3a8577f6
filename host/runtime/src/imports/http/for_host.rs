//! Requests the host makes itself on a connector's behalf: fetching the files attached to
//! inbound messages (an X DM's image needs the account's token; a Messenger attachment's
//! address expires), so the store keeps them and the CRM never gets a dead link.
//!
//! Such a request goes through the same checks as one the plugin makes (see the parent
//! module): its host must be on the connector's allow-list, the connector's rate-limit
//! book holds it back while a window is spent, a credential goes only over `https://` (or
//! to loopback or an allow-listed emulator), an echoed credential is scrubbed, and the body
//! is refused past its cap rather than truncated. The host attaches the account's
//! credential only when it travels as a header (a bearer token, or a connected token the
//! platform takes as one): a query or path credential would change the address, and the
//! signed addresses of content networks (Messenger's) carry their own authorisation.

use std::sync::Arc;

use super::{HttpContext, RateLimitBook};
use crate::PluginLimits;
use crate::bindings::latest::http::{HttpError, Method, Request};
use crate::capabilities::{Credential, Grants};
use crate::error::PluginId;
use crate::state::PluginState;

/// What [`MediaFetcher::fetch`] brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchedMedia {
    /// The `content-type` the server gave, without parameters, if any.
    pub content_type: Option<String>,
    /// The file.
    pub body: Vec<u8>,
}

/// Why a file could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaFetchError {
    /// Trying again will not help: the address is refused by the grants, the file is over
    /// its cap, or the platform answered it is gone (4xx other than 401, 408 and 429).
    Refused(String),
    /// A temporary failure (5xx, timeout, connection, rate limit, a token refused that may
    /// be refreshed): worth another try later.
    Temporary(String),
}

impl std::fmt::Display for MediaFetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaFetchError::Refused(why) | MediaFetchError::Temporary(why) => f.write_str(why),
        }
    }
}

/// Fetches files for the host under one connector's grants, limits and rate-limit book.
/// Cheap to clone; made by [`crate::ChannelInstance::media_fetcher`].
#[derive(Clone)]
pub struct MediaFetcher {
    pub(crate) plugin: Arc<PluginId>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) book: Arc<RateLimitBook>,
    pub(crate) limits: PluginLimits,
    pub(crate) transport: super::HttpTransport,
    /// Each account's credential name, as the connector's config gives it.
    pub(crate) credentials: Vec<(String, String)>,
}

impl std::fmt::Debug for MediaFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaFetcher")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl MediaFetcher {
    /// Fetches `url` (GET) for `account`: at most `max_bytes` (and at most the connector's
    /// `http_max_response_bytes`), with the account's credential attached when it travels
    /// as a header.
    pub async fn fetch(
        &self,
        account: &str,
        url: &str,
        max_bytes: usize,
    ) -> Result<FetchedMedia, MediaFetchError> {
        let cap = max_bytes.min(self.limits.http_max_response_bytes);
        let http = HttpContext {
            transport: self.transport.clone(),
            book: self.book.clone(),
            timeout: self.limits.http_timeout,
            max_response_bytes: cap,
            retries: self.limits.http_retries,
            hold: self.limits.http_rate_limit_hold,
        };
        let mut state =
            PluginState::new(self.plugin.clone(), self.grants.clone(), http, &self.limits);
        let request = Request {
            method: Method::Get,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            credential: self.header_credential(account),
            timeout_ms: None,
        };
        let response = state.fetch_checked(request).await.map_err(|e| match e {
            HttpError::Denied(why) => MediaFetchError::Refused(why),
            HttpError::InvalidRequest(why) => MediaFetchError::Refused(why),
            HttpError::TooLarge(cap) => {
                MediaFetchError::Refused(format!("the file is larger than the cap of {cap} bytes"))
            }
            HttpError::Timeout => MediaFetchError::Temporary("no answer in time".to_string()),
            HttpError::Connection(why) => MediaFetchError::Temporary(why),
            HttpError::RateLimited(ms) => MediaFetchError::Temporary(format!(
                "the platform's rate limit is spent for {ms} ms"
            )),
        })?;
        let status = response.status;
        if !(200..300).contains(&status) {
            let why = format!("the platform answered {status}");
            return Err(if matches!(status, 401 | 408 | 429) || status >= 500 {
                MediaFetchError::Temporary(why)
            } else {
                MediaFetchError::Refused(why)
            });
        }
        let content_type = response
            .headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .and_then(|(_, value)| value.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        Ok(FetchedMedia {
            content_type,
            body: response.body,
        })
    }

    /// The account's credential name, when it is granted and travels as a header.
    fn header_credential(&self, account: &str) -> Option<String> {
        let (_, name) = self.credentials.iter().find(|(a, _)| a == account)?;
        let header = match self.grants.credentials.get(name)? {
            Credential::Bearer(_) => true,
            Credential::Connected(connected) => connected
                .current()
                .is_ok_and(|(current, _)| matches!(current, Credential::Bearer(_))),
            Credential::QueryParameter { .. } | Credential::PathSegment(_) => false,
        };
        header.then(|| name.clone())
    }
}
