//! Host side of the contract's imports, one file per interface.
//!
//! Everything a plugin can reach outside its sandbox goes through here, and everything is
//! denied unless the admin granted it: [`Grants::default`] grants nothing but `log` and
//! `clock`.

mod clock;
mod http;
mod log;
mod signing;

use std::collections::BTreeMap;
use std::fmt;

pub(crate) use http::{HttpContext, HttpTransport};
pub use http::{RateLimitBook, host_allowed};

/// A secret value held by the host. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Secret(value.into())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// How the host attaches a credential to an outgoing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <token>` (X API v2, OAuth 2.0 user tokens).
    Bearer(Secret),
    /// `?<param>=<token>` (Graph API `access_token`).
    QueryParameter {
        /// Parameter name.
        name: String,
        /// Token.
        token: Secret,
    },
    /// The token as a URL path segment, where the request writes [`CREDENTIAL_PLACEHOLDER`]
    /// (bot APIs that carry the token in the path: `/bot{credential}/sendMessage`).
    PathSegment(Secret),
    /// A token the host obtained through the connect flow and keeps fresh
    /// ([`crate::accounts`]), attached as the connector declares (bearer or query).
    Connected(crate::accounts::ConnectedCredential),
}

/// What a plugin writes in a URL path where the host is to put a path-segment credential.
pub const CREDENTIAL_PLACEHOLDER: &str = "{credential}";

/// What one plugin instance may use. Deny by default: an empty allow-list reaches no host,
/// and only named credentials and secrets exist for the plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Hosts the `http` import may reach (`api.x.com`, `127.0.0.1:8080`); empty denies all.
    pub allowed_hosts: Vec<String>,
    /// Credentials the plugin may name in requests.
    pub credentials: BTreeMap<String, Credential>,
    /// Secrets the plugin may sign and verify with.
    pub secrets: BTreeMap<String, Secret>,
}
