//! The live side of a host-held token: what the `http` capability attaches now, shared by
//! every instance of the connector and kept current by the account book.

use std::sync::{Arc, Mutex};

use super::{Credential, Secret};
use serde::{Deserialize, Serialize};

/// How a host-held token is attached to a request (from the connector's declaration).
#[derive(Clone, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum Attach {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `?<name>=<token>`.
    Query(String),
}

#[derive(Debug, Default)]
struct Live {
    /// `(tenant, connector, account)` once the account book has adopted the slot.
    key: Option<(String, String, String)>,
    attach: Option<Attach>,
    token: Option<Secret>,
    generation: i64,
    state: Option<AccountState>,
    /// The generation the platform last refused, until the account book looks at it.
    refused: Option<i64>,
}

/// A credential whose token the host obtained through the connect flow and keeps fresh
/// (see the host's `accounts` module). The plugin names it like any other credential and never sees
/// the token; until the account is connected, a request naming it is refused.
///
/// Clones share one slot: every instance of a connector attaches the token current now.
#[derive(Clone, Default)]
pub struct ConnectedCredential(Arc<Mutex<Live>>);

impl ConnectedCredential {
    /// A credential for an account the host connects (`credential = "connected"` in
    /// centralino.toml). The host binds it to its account when it starts.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Live) -> T) -> Option<T> {
        self.0.lock().ok().map(|mut live| f(&mut live))
    }

    #[doc(hidden)]
    pub fn bind(&self, key: (String, String, String), attach: Attach) {
        self.with(|live| {
            live.key = Some(key);
            live.attach = Some(attach);
        });
    }

    #[doc(hidden)]
    pub fn key(&self) -> Option<(String, String, String)> {
        self.with(|live| live.key.clone()).flatten()
    }

    /// Puts a new token (or none) and state in place.
    #[doc(hidden)]
    pub fn update(&self, token: Option<Secret>, generation: i64, state: AccountState) {
        self.with(|live| {
            live.token = token;
            live.generation = generation;
            live.state = Some(state);
        });
    }

    #[doc(hidden)]
    pub fn set_state(&self, state: AccountState) {
        self.with(|live| live.state = Some(state));
    }

    /// Notes that the platform refused the token of `generation` (a 401, Graph's 190).
    #[doc(hidden)]
    pub fn refused(&self, generation: i64) {
        self.with(|live| live.refused = Some(generation));
    }

    /// Takes the refusal noted, if any.
    #[doc(hidden)]
    pub fn take_refused(&self) -> Option<i64> {
        self.with(|live| live.refused.take()).flatten()
    }

    #[doc(hidden)]
    pub fn generation(&self) -> i64 {
        self.with(|live| live.generation).unwrap_or_default()
    }

    /// The account's state as this host knows it; `Disconnected` before it is bound.
    pub fn state(&self) -> AccountState {
        self.with(|live| live.state)
            .flatten()
            .unwrap_or(AccountState::Disconnected)
    }

    /// Whether the account's traffic waits (held replies, paused polls): it needs an admin
    /// to re-authorise it, or was never connected.
    #[doc(hidden)]
    pub fn waits(&self) -> bool {
        matches!(
            self.state(),
            AccountState::NeedsReauth | AccountState::Disconnected
        )
    }

    /// The credential to attach now, or why there is none (never the token).
    #[doc(hidden)]
    pub fn current(&self) -> Result<(Credential, i64), String> {
        self.with(|live| {
            let (Some(attach), Some(token)) = (&live.attach, &live.token) else {
                let account = live.key.as_ref().map_or("?", |k| k.2.as_str());
                return Err(format!(
                    "account `{account}` is not connected: an admin connects it with \
                     `centralino accounts connect`"
                ));
            };
            let credential = match attach {
                Attach::Bearer => Credential::Bearer(token.clone()),
                Attach::Query(name) => Credential::QueryParameter {
                    name: name.clone(),
                    token: token.clone(),
                },
            };
            Ok((credential, live.generation))
        })
        .unwrap_or_else(|| Err("account credential unavailable".to_string()))
    }
}

impl std::fmt::Debug for ConnectedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedCredential")
            .field("key", &self.key())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ConnectedCredential {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ConnectedCredential {}

/// An account's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountState {
    /// A token is held and works.
    Connected,
    /// The token expires soon and the host cannot renew it by itself (no refresh token,
    /// or refreshing keeps failing): an admin should re-authorise before it does.
    Expiring,
    /// The platform refused the token and its refresh: replies wait, polls pause, until
    /// an admin re-authorises.
    NeedsReauth,
    /// No token: never connected, or disconnected by an admin.
    Disconnected,
}

impl AccountState {
    /// `connected`, `expiring`, `needs-reauth`, `disconnected`.
    pub fn name(self) -> &'static str {
        match self {
            AccountState::Connected => "connected",
            AccountState::Expiring => "expiring",
            AccountState::NeedsReauth => "needs-reauth",
            AccountState::Disconnected => "disconnected",
        }
    }

    #[doc(hidden)]
    pub fn parse(name: &str) -> AccountState {
        match name {
            "connected" => AccountState::Connected,
            "expiring" => AccountState::Expiring,
            "needs-reauth" => AccountState::NeedsReauth,
            _ => AccountState::Disconnected,
        }
    }

    /// Every state, for metrics.
    pub const ALL: [AccountState; 4] = [
        AccountState::Connected,
        AccountState::Expiring,
        AccountState::NeedsReauth,
        AccountState::Disconnected,
    ];
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
