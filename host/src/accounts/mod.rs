//! Accounts that stay connected: OAuth run by the host, tokens sealed in the store,
//! refreshed ahead of expiry, and accounts that need an admin held rather than failed.
//!
//! A connector declares how its platform authorises in its plugin metadata
//! ([`OAuthDeclaration`], the `centralino-oauth` section read at inspection); the admin
//! gives the app's client id and secret ([`OAuthApp`], as `env:`/`file:` references in
//! centralino.toml) and marks accounts `credential = "connected"`. The host then:
//!
//! - runs the connect flow: [`Host::connect_account`](crate::Host::connect_account)
//!   answers the authorize URL (state and PKCE verifier single-use, expiring), and the
//!   callback ([`Host::complete_connect`](crate::Host::complete_connect), routed on the
//!   admin listener) exchanges the code, checks who the token acts as, and stores the
//!   tokens sealed (`accounts/seal.rs`); Facebook's one login yields the page tokens of the pages
//!   the connector serves;
//! - attaches the token like a static credential (the plugin names it and never sees it);
//! - refreshes it ahead of expiry and after a refusal, the refresh claimed row by row in
//!   the store so that, with several hosts on PostgreSQL, exactly one spends a single-use
//!   refresh token, and the new pair is stored before the new token is used;
//! - keeps each account's state ([`AccountState`]): shown by `centralino status`, the
//!   admin API and `/metrics`, and reported to the CRM when it changes
//!   ([`CrmEvent::AccountStateChanged`]). An
//!   account that needs re-authorisation holds its replies in the outbox and pauses its
//!   polls; once re-authorised, the held replies go out in order, once.

mod connect;
pub(crate) mod oauth;
mod refresh;
pub(crate) mod seal;
mod webhooks;

pub use crate::capabilities::connected::{AccountState, ConnectedCredential};
pub use crate::capabilities::oauth::{
    AttachDeclaration, ClientAuth, Exchange, Flow, OAUTH_SECTION, OAuthDeclaration, Subscribe,
    WebhookRegistration,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::capabilities::{Credential, Secret};
use crate::crm::CrmEvent;
use crate::error::Error;
use crate::ids::{ConnectorId, TenantId};
use crate::store::Store;
use crate::store::tokens::{AccountKey, PendingConnect, TokenRow};
use seal::Sealer;

/// Endpoints the admin points elsewhere than the connector declares (a platform emulator,
/// a regional endpoint). Default: none, the declaration's URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Overrides `authorize_url`.
    pub authorize_url: Option<String>,
    /// Overrides `token_url`.
    pub token_url: Option<String>,
    /// Overrides `revoke_url`.
    pub revoke_url: Option<String>,
    /// Overrides `identity_url`.
    pub identity_url: Option<String>,
    /// Overrides the Facebook exchange's `accounts_url`.
    pub accounts_url: Option<String>,
    /// Overrides the subscription step's `url` (`{account}` and `{webhook}` are replaced).
    pub subscribe_url: Option<String>,
    /// Overrides the app-level webhook registration's `url` (X's `/2/webhooks`).
    pub webhooks_url: Option<String>,
}

/// A connector's OAuth app, as the admin registered it with the platform.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    /// Client id.
    pub client_id: Secret,
    /// Client secret; `None` for a public client (PKCE only).
    pub client_secret: Option<Secret>,
    /// The callback URL registered with the platform; it must reach this host's
    /// `/oauth/callback` (or `/tenants/<id>/oauth/callback`) on the admin listener.
    pub redirect_url: String,
    /// Endpoint overrides. Default: none.
    pub endpoints: Endpoints,
    /// The public URL of this host's webhook route for the connector
    /// (`https://centralino.example.it/webhooks/twitter`), registered with the platform when
    /// the connector declares an app-level webhook (X's Account Activity). Default: none.
    pub webhook_url: Option<String>,
    /// The app's own bearer token (X: the app-only Bearer Token), for registering
    /// `webhook_url`. Default: none.
    pub app_token: Option<Secret>,
}

/// What an admin sees of an account: never its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    /// Tenant.
    pub tenant: TenantId,
    /// Connector.
    pub connector: ConnectorId,
    /// Account id.
    pub account: String,
    /// Who the platform says it is (handle, page name), when known.
    pub label: Option<String>,
    /// State.
    pub state: AccountState,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// When the access token expires (ms since the epoch, account clock), if it does.
    pub expires_at: Option<u64>,
    /// Replies held until it is re-authorised.
    pub held_replies: u64,
    /// When its token or state last changed (ms since the epoch), if it has a token.
    pub updated_at: Option<u64>,
    /// Whether the platform sends its webhooks: `Some(true)` once the subscription call
    /// succeeded, `Some(false)` when it has not (yet), `None` when the connector declares
    /// no subscription step.
    pub subscribed: Option<bool>,
}

/// The start of a connect flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectStart {
    /// Where the admin's browser goes to consent.
    pub authorize_url: String,
    /// Until when (ms since the epoch, account clock) the callback is accepted.
    pub expires_at: u64,
}

/// Where the admin's browser goes once a connect flow's callback is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReturnTo {
    /// A short page saying what was connected (the CLI and the admin API).
    Page,
    /// Back to the console's connectors page, where the flow was started.
    Console,
}

impl ReturnTo {
    fn stored(self) -> Option<String> {
        match self {
            ReturnTo::Page => None,
            ReturnTo::Console => Some("console".to_string()),
        }
    }

    fn from_stored(stored: Option<&str>) -> ReturnTo {
        match stored {
            Some("console") => ReturnTo::Console,
            _ => ReturnTo::Page,
        }
    }
}

/// The clock the account book reads expiry against: milliseconds since the epoch.
/// Default: the host's wall clock; a simulation gives its own.
pub type AccountClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How long a connect flow's state is accepted.
const CONNECT_TTL_MS: u64 = 10 * 60 * 1000;
/// How long a refresh claim lasts (account clock) before another host may take it over.
const REFRESH_CLAIM_MS: u64 = 60 * 1000;
/// Refresh this long before expiry at most ...
const REFRESH_AHEAD_MS: u64 = 10 * 60 * 1000;
/// ... and a token that expires within this, without a way to refresh, is `expiring`.
const EXPIRING_WARN_MS: u64 = 24 * 3600 * 1000;

/// The sealed payload of one account.
#[derive(Serialize, Deserialize)]
struct Tokens {
    access: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
}

/// One connector's app and declaration.
struct App {
    app: OAuthApp,
    declaration: OAuthDeclaration,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) refreshed: AtomicU64,
    pub(crate) refresh_failed: AtomicU64,
    pub(crate) connected: AtomicU64,
}

/// What a refusal of an account's token led to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// A newer token is in place: try again now.
    Recovered,
    /// The account needs an admin: hold its traffic.
    NeedsReauth,
    /// Undecided yet (another host is refreshing): try again shortly.
    Later,
    /// This host's refresh failed for now (the token endpoint unreachable or failing):
    /// try again shortly.
    Unreachable,
}

/// Every host-held account of a host.
pub(crate) struct AccountBook {
    store: Store,
    host_id: String,
    sealer: Option<Sealer>,
    apps: HashMap<(String, String), App>,
    slots: HashMap<AccountKey, ConnectedCredential>,
    clock: AccountClock,
    http: reqwest::Client,
    pub(crate) check_every: Duration,
    pub(crate) counters: Counters,
    /// One refresh at a time on this host.
    refreshing: tokio::sync::Mutex<()>,
    /// Each app's webhook id at the platform, once found or registered ([`webhooks`]).
    webhook_ids: std::sync::Mutex<HashMap<(String, String), String>>,
    /// One webhook registration at a time on this host.
    registering: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AccountBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountBook")
            .field("accounts", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// What the builder hands the book.
pub(crate) struct BookParts {
    pub(crate) store: Store,
    pub(crate) host_id: String,
    pub(crate) key: Option<Secret>,
    pub(crate) apps: HashMap<(String, String), OAuthApp>,
    pub(crate) clock: Option<AccountClock>,
    pub(crate) check_every: Duration,
}

/// One connector's connected accounts, as the builder finds them.
pub(crate) struct ConnectorAccounts {
    pub(crate) tenant: String,
    pub(crate) connector: String,
    pub(crate) plugin: String,
    pub(crate) declaration: Option<OAuthDeclaration>,
    /// Account id → its connected credential.
    pub(crate) accounts: Vec<(String, ConnectedCredential)>,
}

fn context(key: &AccountKey) -> String {
    format!("{}/{}/{}", key.0, key.1, key.2)
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl AccountBook {
    /// Binds every connected credential to its account; refuses a connector that has
    /// connected accounts but no app, a plugin that declares no OAuth, or a missing key.
    pub(crate) fn new(parts: BookParts, connectors: Vec<ConnectorAccounts>) -> Result<Self, Error> {
        let sealer = parts
            .key
            .as_ref()
            .map(Sealer::new)
            .transpose()
            .map_err(|e| Error::Refused(format!("token key: {e}")))?;
        let mut apps = HashMap::new();
        let mut slots = HashMap::new();
        let mut offered = parts.apps;
        for connector in connectors {
            let id = (connector.tenant.clone(), connector.connector.clone());
            let app = offered.remove(&id);
            if connector.accounts.is_empty() {
                continue;
            }
            let Some(declaration) = connector.declaration else {
                return Err(Error::Refused(format!(
                    "connector `{}` of tenant `{}` has connected accounts, but its plugin {} \
                     declares no OAuth (no `{OAUTH_SECTION}` section): give its accounts \
                     static credentials instead",
                    connector.connector, connector.tenant, connector.plugin
                )));
            };
            let Some(app) = app else {
                return Err(Error::Refused(format!(
                    "connector `{}` of tenant `{}` has connected accounts but no OAuth app: \
                     add its `oauth` section with `client_id` (and `client_secret`)",
                    connector.connector, connector.tenant
                )));
            };
            if sealer.is_none() {
                return Err(Error::Refused(format!(
                    "connector `{}` of tenant `{}` has connected accounts, whose tokens are \
                     sealed in the store: set `host.token_key` (e.g. `token_key = \
                     \"env:CENTRALINO_TOKEN_KEY\"`, 32 random bytes or more)",
                    connector.connector, connector.tenant
                )));
            }
            for (account, credential) in connector.accounts {
                let key = (id.0.clone(), id.1.clone(), account);
                credential.bind(key.clone(), declaration.attach.attach());
                slots.insert(key, credential);
            }
            apps.insert(id, App { app, declaration });
        }
        Ok(AccountBook {
            store: parts.store,
            host_id: parts.host_id,
            sealer,
            apps,
            slots,
            clock: parts
                .clock
                .unwrap_or_else(|| Arc::new(crate::clock::now_ms)),
            http: oauth::client().map_err(|e| Error::Other(anyhow::anyhow!(e)))?,
            check_every: parts.check_every,
            counters: Counters::default(),
            refreshing: tokio::sync::Mutex::new(()),
            webhook_ids: std::sync::Mutex::new(HashMap::new()),
            registering: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether any account is host-held.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    fn sealer(&self) -> Result<&Sealer, Error> {
        self.sealer
            .as_ref()
            .ok_or_else(|| Error::Refused("no token key is configured".to_string()))
    }

    fn open(&self, row: &TokenRow) -> Result<Tokens, String> {
        let sealer = self.sealer.as_ref().ok_or("no token key is configured")?;
        if row.key_id != sealer.key_id() {
            return Err(format!(
                "the token of `{}` is sealed with key {}, but this host's token key is {}: \
                 start it with that key, or run `centralino keys rotate`",
                context(&row.key()),
                row.key_id,
                sealer.key_id()
            ));
        }
        let plain = sealer.open(&row.sealed, &context(&row.key()))?;
        serde_json::from_slice(&plain).map_err(|_| "a sealed token is not readable".to_string())
    }

    fn seal(&self, key: &AccountKey, tokens: &Tokens) -> Result<(String, String), Error> {
        let sealer = self.sealer()?;
        let plain = serde_json::to_vec(tokens).map_err(|e| Error::Other(e.into()))?;
        let sealed = sealer.seal(&plain, &context(key)).map_err(Error::Refused)?;
        Ok((sealed, sealer.key_id().to_string()))
    }

    /// Puts the store's tokens into the slots (at start, and to follow other hosts'
    /// refreshes).
    pub(crate) async fn sync(&self) -> anyhow::Result<()> {
        let rows = self.store.token_rows().await?;
        let mut seen = Vec::new();
        for row in rows {
            let key = row.key();
            let Some(slot) = self.slots.get(&key) else {
                continue;
            };
            seen.push(key.clone());
            let state = AccountState::parse(&row.state);
            if row.generation == slot.generation() && slot.state() == state {
                continue;
            }
            match self.open(&row) {
                Ok(tokens) => slot.update(Some(Secret::new(tokens.access)), row.generation, state),
                Err(e) => {
                    tracing::error!(tenant = %key.0, connector = %key.1, account = %key.2, "{e}");
                    slot.update(None, row.generation, AccountState::NeedsReauth);
                }
            }
        }
        for (key, slot) in &self.slots {
            if !seen.contains(key) {
                slot.update(None, 0, AccountState::Disconnected);
            }
        }
        Ok(())
    }

    /// Every account's status.
    pub(crate) async fn statuses(&self) -> anyhow::Result<Vec<AccountStatus>> {
        let rows = self.store.token_rows().await?;
        let mut keys: Vec<&AccountKey> = self.slots.keys().collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let row = rows.iter().find(|r| &r.key() == key);
            out.push(AccountStatus {
                tenant: key.0.clone().into(),
                connector: key.1.clone().into(),
                account: key.2.clone(),
                label: row.and_then(|r| r.label.clone()),
                state: row.map_or(AccountState::Disconnected, |r| {
                    AccountState::parse(&r.state)
                }),
                scopes: row
                    .map(|r| r.scopes.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                expires_at: row
                    .and_then(|r| r.expires_at)
                    .and_then(|t| u64::try_from(t).ok()),
                held_replies: u64::try_from(self.store.outbox_held(key).await?).unwrap_or(0),
                updated_at: row.and_then(|r| u64::try_from(r.updated_at).ok()),
                subscribed: self
                    .apps
                    .get(&(key.0.clone(), key.1.clone()))
                    .and_then(|a| a.declaration.subscribe.as_ref())
                    .map(|_| row.is_some_and(|r| r.subscribed_at.is_some())),
            });
        }
        Ok(out)
    }

    /// Puts the live connected credentials in place of those of a new spec of a running
    /// connector (a reload builds its grants anew), so the swapped-in version attaches the
    /// tokens this book keeps.
    pub(crate) fn rebind(&self, spec: &mut crate::connectors::ConnectorSpec) {
        for account in &spec.config.accounts {
            let Some(name) = &account.credential else {
                continue;
            };
            let key = (
                spec.tenant.to_string(),
                spec.name.to_string(),
                account.id.clone(),
            );
            if let (Some(live), Some(Credential::Connected(_))) =
                (self.slots.get(&key), spec.grants.credentials.get(name))
            {
                spec.grants
                    .credentials
                    .insert(name.clone(), Credential::Connected(live.clone()));
            }
        }
    }

    /// The connected credential of an account, if it is host-held.
    pub(crate) fn slot(&self, key: &AccountKey) -> Option<&ConnectedCredential> {
        self.slots.get(key)
    }

    /// Records a new state; on a change, tells the CRM and, when the account is usable
    /// again, lets its held replies go.
    async fn mark(
        &self,
        key: &AccountKey,
        state: AccountState,
        reason: &str,
    ) -> anyhow::Result<()> {
        if let Some(slot) = self.slots.get(key) {
            slot.set_state(state);
        }
        if !self.store.set_token_state(key, state.name()).await? {
            return Ok(());
        }
        tracing::warn!(tenant = %key.0, connector = %key.1, account = %key.2, state = state.name(), "account state changed: {reason}");
        self.changed(key, state, reason).await
    }

    async fn changed(
        &self,
        key: &AccountKey,
        state: AccountState,
        reason: &str,
    ) -> anyhow::Result<()> {
        let event = CrmEvent::AccountStateChanged {
            connector: key.1.clone().into(),
            account: key.2.clone(),
            state: state.name().to_string(),
            reason: reason.to_string(),
        };
        self.store.append_event(&key.0, &event).await?;
        if state == AccountState::Connected {
            let released = self.store.outbox_resume(key).await?;
            if released > 0 {
                tracing::info!(tenant = %key.0, connector = %key.1, account = %key.2, released, "held replies go out");
            }
        }
        Ok(())
    }
}

/// When a token is refreshed: [`REFRESH_AHEAD_MS`] before it expires (at 1 h 50 min of
/// a two-hour X token).
fn refresh_at(expires_at: u64) -> u64 {
    expires_at.saturating_sub(REFRESH_AHEAD_MS)
}

/// Re-seals every stored token from `old` to `new` key, in one transaction; answers how
/// many. What `centralino keys rotate` runs (hosts stopped, or restarted with the new key
/// right after).
pub async fn rotate_token_key(store: &Store, old: &Secret, new: &Secret) -> Result<usize, Error> {
    let old = Sealer::new(old).map_err(|e| Error::Refused(format!("old token key: {e}")))?;
    let new = Sealer::new(new).map_err(|e| Error::Refused(format!("new token key: {e}")))?;
    let done = store
        .reseal_tokens(|row| {
            let context = context(&row.key());
            if row.key_id == new.key_id() {
                return Ok((row.sealed.clone(), row.key_id.clone()));
            }
            if row.key_id != old.key_id() {
                anyhow::bail!(
                    "the token of `{context}` is sealed with key {}, which is neither the old key ({}) nor the new one",
                    row.key_id,
                    old.key_id()
                );
            }
            let plain = old.open(&row.sealed, &context).map_err(anyhow::Error::msg)?;
            let sealed = new.seal(&plain, &context).map_err(anyhow::Error::msg)?;
            Ok((sealed, new.key_id().to_string()))
        })
        .await
        .map_err(Error::Other)?;
    Ok(done)
}
