//! Constructors for the contract's [`PluginError`], so a plugin says what went wrong in
//! one short call: `PluginError::rejected("duplicate content")`.

use crate::{PluginError, RateLimit};

impl PluginError {
    /// The credential was refused (expired, revoked): an admin must re-authorise.
    pub fn invalid_credentials(detail: impl Into<String>) -> Self {
        PluginError::InvalidCredentials(detail.into())
    }

    /// The platform asked to slow down: retry after `retry_after_ms`.
    pub fn rate_limited(retry_after_ms: u64, detail: impl Into<String>) -> Self {
        PluginError::RateLimited(RateLimit {
            retry_after_ms,
            detail: detail.into(),
        })
    }

    /// Refused for good (duplicate, too long, outside a messaging window): no retry helps.
    pub fn rejected(reason: impl Into<String>) -> Self {
        PluginError::Rejected(reason.into())
    }

    /// A temporary failure (5xx, timeout): the host may retry later.
    pub fn transient(detail: impl Into<String>) -> Self {
        PluginError::Transient(detail.into())
    }

    /// The input was not acceptable (bad setting, malformed request, unknown account).
    pub fn invalid_input(detail: impl Into<String>) -> Self {
        PluginError::InvalidInput(detail.into())
    }
}
