//! Reading how long a platform asks a connector to stay away, from the headers of its
//! answers. The host reads every common family by itself, so a new channel is polite
//! without saying anything:
//!
//! Defined in the `centralino-runtime` crate (`centralino_runtime::rate_limits`); re-exported here as part of
//! this crate's API.

pub use centralino_runtime::rate_limits::{
    MAX_RATE_LIMIT_WAIT, RATE_LIMITS_SECTION, RateLimitDeclaration, ResetFormat,
};

// The rest of the module, for the host's own use.
#[allow(unused_imports)]
pub(crate) use centralino_runtime::rate_limits::*;
