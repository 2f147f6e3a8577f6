//! What a plugin may use outside its sandbox: the grants an admin gives each plugin
//! instance, and the secrets and credentials they name.
//!
//! Everything is denied unless granted: [`Grants::default`] grants nothing but `log` and
//! `clock`. The imports that enforce these grants live with the runtime
//! (`runtime/imports/`, one file per interface of the contract).

pub mod connected;
pub mod oauth;

use std::collections::BTreeMap;
use std::fmt;

/// A secret value held by the host. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Secret(value.into())
    }

    /// The secret's bytes, for the host that attaches or uses them; plugins never see them.
    #[doc(hidden)]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// HMAC-SHA256 of `data` keyed with this secret: what platforms sign webhook bodies
    /// with (`centralino plugin webhook --sign` replays a capture signed this way). The
    /// secret itself never leaves the host.
    pub fn hmac_sha256(&self, data: &[u8]) -> Vec<u8> {
        use hmac::Mac as _;
        match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length; this arm cannot run.
            Err(_) => Vec::new(),
        }
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
    /// (the host's `accounts` module), attached as the connector declares (bearer or query).
    Connected(connected::ConnectedCredential),
}

/// What a plugin writes in a URL path where the host is to put a path-segment credential.
pub const CREDENTIAL_PLACEHOLDER: &str = "{credential}";

/// What one plugin instance may use. Deny by default: an empty allow-list reaches no host,
/// and only named credentials and secrets exist for the plugin. Built from
/// `Grants::default()` with the methods below.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {
    /// Hosts the `http` import may reach (`api.x.com`, `127.0.0.1:8080`); empty denies all.
    pub allowed_hosts: Vec<String>,
    /// Credentials the plugin may name in requests.
    pub credentials: BTreeMap<String, Credential>,
    /// Secrets the plugin may sign and verify with.
    pub secrets: BTreeMap<String, Secret>,
}

impl Grants {
    /// Lets the `http` import reach `host` (`api.x.com`, or `host:port`; written
    /// `http://host:port` for a local emulator that may receive credentials over plain HTTP).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// [`Grants::allow_host`] for each of `hosts`.
    pub fn allow_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Lets the plugin name `credential` as `name` in its requests; the host attaches it.
    pub fn credential(mut self, name: impl Into<String>, credential: Credential) -> Self {
        self.credentials.insert(name.into(), credential);
        self
    }

    /// [`Grants::credential`] for each pair.
    pub fn credentials<S: Into<String>>(
        mut self,
        credentials: impl IntoIterator<Item = (S, Credential)>,
    ) -> Self {
        self.credentials
            .extend(credentials.into_iter().map(|(n, c)| (n.into(), c)));
        self
    }

    /// Lets the plugin sign and verify with `secret`, named `name`.
    pub fn secret(mut self, name: impl Into<String>, secret: Secret) -> Self {
        self.secrets.insert(name.into(), secret);
        self
    }

    /// [`Grants::secret`] for each pair.
    pub fn secrets<S: Into<String>>(
        mut self,
        secrets: impl IntoIterator<Item = (S, Secret)>,
    ) -> Self {
        self.secrets
            .extend(secrets.into_iter().map(|(n, s)| (n.into(), s)));
        self
    }
}
