//! `centralino.toml` as written: one type per section, every key documented with its
//! default. Unknown keys are refused everywhere, so a typo never falls back to a default.
//!
//! Relative paths (`plugin_dir`, `cache_dir`, `file:` secrets, a SQLite file, a plugin
//! given as a path) are relative to the folder of the config file, not to the folder the
//! host was started from.
//!
//! A plugin is named like a routing stage: a bare name (`twitter`) is
//! `<plugin_dir>/<name>.wasm`; anything with a `/` or ending in `.wasm` is a path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::{CredentialRef, OperatorAccount, SecretRef, SettingValue, string_or_number};
use crate::answers::Brand;
use crate::routing::WorkingHours;

/// The chain used when a tenant has operators but no `[routing]` section.
pub const DEFAULT_CHAIN: &str = "skills > least-loaded";

/// The whole file.
///
/// Connectors, routing, operators and the API token at the top level form the implicit
/// `default` tenant. With `[[tenants]]`, each tenant has its own and the top level has
/// none.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The default tenant's bearer token for the REST API (`/api/v1` on `host.listen`), as
    /// a secret reference: `api_token = "env:CENTRALINO_API_TOKEN"`, written before the
    /// first `[table]`. Default: none, and the default tenant's API refuses every call.
    #[serde(default)]
    pub api_token: Option<SecretRef>,
    /// `[host]`: store, addresses, plugin folder.
    #[serde(default)]
    pub host: HostSection,
    /// `[limits]`: limits of every plugin call, unless a connector or `[routing.limits]`
    /// overrides them.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[[connectors]]` of the default tenant. Default: none.
    #[serde(default)]
    pub connectors: Vec<ConnectorSection>,
    /// `[routing]` of the default tenant. Default: the chain [`DEFAULT_CHAIN`] when there
    /// are operators, no routing otherwise.
    #[serde(default)]
    pub routing: Option<RoutingSection>,
    /// `[[operators]]` of the default tenant. Default: none.
    #[serde(default)]
    pub operators: Vec<OperatorSection>,
    /// `[[brands]]` of the default tenant: automatic answers in the customer's language,
    /// business hours and service levels (see [`crate::answers::Brand`] for every key).
    /// Default: none (no automatic answers).
    #[serde(default)]
    pub brands: Vec<Brand>,
    /// `[retention]` of the default tenant's conversations and messages. Default: kept
    /// forever.
    #[serde(default)]
    pub retention: Option<RetentionSection>,
    /// `[[tenants]]`. Default: none (one implicit tenant, `default`).
    #[serde(default)]
    pub tenants: Vec<TenantSection>,
}

/// `[retention]` (or `[tenants.retention]`): how long a tenant's conversations and
/// messages are kept; the host applies it every hour. A key left out keeps them forever.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Days after it was resolved that a conversation is deleted, with its messages and
    /// replies. At least 1. Default: none (kept forever).
    #[serde(default)]
    pub conversations_days: Option<u64>,
    /// Days after it arrived that a message's content (text, attachments, extras, the
    /// author's handle and name) is emptied; the row stays, so counts and reports stay
    /// true. At least 1. Default: none (kept forever).
    #[serde(default)]
    pub messages_days: Option<u64>,
}

/// `[host]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostSection {
    /// The store: `sqlite://FILE` (relative to the config file), `sqlite::memory:` or
    /// `postgres://…`. Default: `sqlite://centralino.db`.
    pub store: String,
    /// Address of the webhook ingress. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Address of the admin API. Default: `127.0.0.1:8081`. Any address other than a
    /// loopback one requires `admin_token`.
    pub admin_listen: SocketAddr,
    /// Address of the REST API, when it should have a listener (and connection limits) of
    /// its own, apart from the webhooks the internet sends. Default: none, the REST API is
    /// served beside the ingress on `listen`.
    pub api_listen: Option<SocketAddr>,
    /// The bearer token admin calls must present, as a secret reference. Default: none.
    pub admin_token: Option<SecretRef>,
    /// Where plugins named by a bare name are found. Default: `plugins`.
    pub plugin_dir: PathBuf,
    /// Where compiled components are cached (created on first use). Default: none, every
    /// start compiles every plugin.
    pub cache_dir: Option<PathBuf>,
    /// Largest webhook body accepted, in bytes; larger ones get `413`. Default: 1048576
    /// (1 MiB).
    pub max_webhook_body_bytes: usize,
    /// This host's name, unique among hosts sharing a database: it claims outbox rows and,
    /// after a crash, finds the replies it was sending. Default: `centralino`.
    pub host_id: String,
    /// Where the CRM receives events as signed webhooks (`http(s)://…`). Default: none, the
    /// events stay in the store's log.
    pub crm_webhook: Option<String>,
    /// The secret that signs the CRM webhooks, as a reference. Required with `crm_webhook`.
    pub crm_webhook_secret: Option<SecretRef>,
    /// Whether `centralino run` watches the connectors' plugin files and hot-swaps a
    /// changed one (compiled, checked and configured first; a broken file leaves the old
    /// version serving). Default: `false` (reload with `centralino connectors reload`).
    pub watch_plugins: bool,
    /// How often watched plugin files are looked at, in milliseconds; a file must hold
    /// still for one more look before it is loaded. Default: 1000.
    pub watch_interval_ms: u64,
    /// How the host logs: `pretty` (for people) or `json` (one object per line, for log
    /// collectors). `--log-format` and `CENTRALINO_LOG_FORMAT` override it. Default:
    /// `pretty`.
    pub log_format: LogFormat,
    /// Longest a webhook client may take to send its request line and headers, in
    /// milliseconds (also how long an idle keep-alive connection stays open). Default:
    /// 10000.
    pub header_read_timeout_ms: u64,
    /// Longest a webhook client may take to send the whole body, in milliseconds; slower
    /// ones get `408`. Default: 30000.
    pub body_read_timeout_ms: u64,
    /// Connections the webhook ingress serves at once; more wait in the accept queue.
    /// Default: 1024.
    pub max_connections: usize,
    /// Connections the ingress serves at once from one IP address; more are closed at
    /// once. Default: 64.
    pub max_connections_per_peer: usize,
    /// Preallocated plugin instance slots (wasmtime's pooling allocator): cheaper
    /// instantiation and a footprint fixed up front, for many tenants; each slot's memory
    /// is capped at 64 MiB. Default: none (instances are allocated on demand).
    pub pooling_instances: Option<u32>,
    /// Seconds a polling lease lasts without renewal: when a host sharing the database
    /// dies, another takes its accounts over this long after its last poll at most (plus
    /// one poll interval). Must exceed every `poll_interval_secs`. Default: three poll
    /// intervals of each connector, at least 10.
    pub poll_lease_ttl_secs: Option<u64>,
    /// The key that seals the tokens the host obtains for `credential = "connected"`
    /// accounts, as a secret reference: 32 random bytes or more (`openssl rand -hex 32`).
    /// Changing it needs `centralino keys rotate`. Default: none (required by connected
    /// accounts).
    pub token_key: Option<SecretRef>,
    /// Days delivered CRM events and replies sent or failed for good are kept; the host
    /// deletes older ones every hour (conversations and messages have their own
    /// `[retention]`). `0` keeps them forever. Default: 30.
    pub retention_days: u64,
    /// Public keys (`ed25519:<base64>`, as `centralino plugin keygen` prints them) whose
    /// plugin signatures this host trusts. Default: none.
    pub trusted_keys: Vec<String>,
    /// Refuse plugins not signed by one of `trusted_keys` (a signature that does not match
    /// its file is refused in any case). Default: false.
    pub require_signed: bool,
    /// Largest file the host keeps of an inbound message, or sends with a reply, in KiB
    /// (an inbound file is also capped by its connector's `http_max_response_kib`). At
    /// least 1. Default: 5120 (5 MiB). See docs/media.md.
    pub media_max_file_kib: u64,
    /// Most MiB of stored files per tenant; a file that would pass it is not kept (its
    /// state says why). At least 1. Default: 1024 (1 GiB).
    pub media_max_tenant_mib: u64,
}

impl Default for HostSection {
    fn default() -> Self {
        HostSection {
            store: "sqlite://centralino.db".to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            api_listen: None,
            admin_token: None,
            plugin_dir: PathBuf::from("plugins"),
            cache_dir: None,
            max_webhook_body_bytes: 1 << 20,
            host_id: "centralino".to_string(),
            crm_webhook: None,
            crm_webhook_secret: None,
            watch_plugins: false,
            watch_interval_ms: 1000,
            log_format: LogFormat::Pretty,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_connections: 1024,
            max_connections_per_peer: 64,
            pooling_instances: None,
            trusted_keys: Vec::new(),
            require_signed: false,
            poll_lease_ttl_secs: None,
            token_key: None,
            retention_days: 30,
            media_max_file_kib: 5 << 10,
            media_max_tenant_mib: 1 << 10,
        }
    }
}

/// `[limits]`, a connector's `limits` or `[routing.limits]`. A key left out keeps the
/// value of the level above: connector → `[limits]` → the default given here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Longest one call may compute, in milliseconds (time spent waiting on HTTP does not
    /// count). Default: 5000 for connectors, 1000 for routing stages.
    pub call_deadline_ms: Option<u64>,
    /// Linear memory of one plugin instance, in MiB. Default: 64.
    pub memory_mib: Option<u64>,
    /// Log lines one call may write before further lines are dropped. Default: 10000.
    pub log_lines: Option<u64>,
    /// Timeout of one outgoing HTTP exchange, in milliseconds. Default: 10000.
    pub http_timeout_ms: Option<u64>,
    /// Largest HTTP response body handed to a plugin, in KiB. Default: 4096 (4 MiB).
    pub http_max_response_kib: Option<u64>,
    /// Retries of an idempotent request after a 5xx or a timeout. Default: 2.
    pub http_retries: Option<u32>,
    /// Longest a request is held while a platform's rate-limit window is spent, in
    /// milliseconds; beyond that the plugin is told it is rate limited. Default: 2000.
    pub http_rate_limit_hold_ms: Option<u64>,
    /// Log bytes one call may write before further lines are dropped. Default: 1048576
    /// (1 MiB).
    pub log_bytes: Option<u64>,
    /// Most messages one `poll` or `handle-webhook` call may return; a result over it is
    /// refused (nothing stored, the platform delivers again), never truncated. Default:
    /// 1000.
    pub max_messages_per_call: Option<usize>,
    /// Longest message text a plugin may return, in characters. Default: 65536.
    pub max_text_chars: Option<usize>,
    /// Most bytes of text and data in one call's result. Default: 8388608 (8 MiB).
    pub max_output_bytes: Option<usize>,
    /// Consecutive faults after which a connector's circuit opens (calls refused until an
    /// admin resets it or a reload swaps in a new version). Default: 5.
    pub circuit_open_after: Option<u32>,
    /// Pause after the second consecutive fault, in milliseconds; it doubles with every
    /// further one. Default: 1000.
    pub fault_backoff_ms: Option<u64>,
    /// Longest pause between attempts while backing off, in milliseconds. Default: 60000.
    pub fault_backoff_max_ms: Option<u64>,
}

/// `[[connectors]]`: one channel connector plugin and the accounts it serves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSection {
    /// Unique in its tenant; the webhook route (`/webhooks/<name>`) and the channel name
    /// operators' accounts refer to. Letters, digits, `-`, `_`. Required.
    pub name: String,
    /// The plugin: a name in `plugin_dir` (`twitter`) or a path to a `.wasm` file.
    /// Required.
    pub plugin: String,
    /// Whether the host runs it. A disabled connector is still checked, but its secrets
    /// are not resolved. Default: `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between two polls of each account. Default: none (webhooks only).
    pub poll_interval_secs: Option<u64>,
    /// Hosts the plugin may reach over HTTP (`api.x.com`, `127.0.0.1:9000`). Default: none
    /// (no HTTP at all).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Settings passed to the plugin as text (`api_base`, `api_version`…). Default: none.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
    /// Secrets the plugin may sign and verify with, by the name the plugin uses
    /// (`consumer_secret = "env:X_CONSUMER_SECRET"`). Default: none.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// Limits of this connector's calls, over `[limits]`. Default: `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[[connectors.accounts]]`: the company accounts served. Default: none.
    #[serde(default)]
    pub accounts: Vec<AccountSection>,
    /// `[connectors.oauth]`: the OAuth app the host connects `credential = "connected"`
    /// accounts with. Default: none.
    #[serde(default)]
    pub oauth: Option<OAuthSection>,
}

/// `[connectors.oauth]`: the app registered with the platform. The flow itself (URLs,
/// scopes, PKCE, refresh) is declared by the plugin; only the app's identity is the
/// admin's.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSection {
    /// The app's client id, as a secret reference. Required.
    pub client_id: SecretRef,
    /// The app's client secret, as a secret reference. Default: none (a public client,
    /// PKCE only).
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// The callback URL registered with the platform; it must reach this host's admin
    /// listener. Default: `http://<admin_listen>/oauth/callback` (for a tenant,
    /// `…/tenants/<id>/oauth/callback`).
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Overrides the plugin's authorize URL (an emulator, a regional endpoint). Default:
    /// the plugin's.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Overrides the plugin's token URL. Default: the plugin's.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Overrides the plugin's revoke URL. Default: the plugin's.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Overrides the plugin's identity URL. Default: the plugin's.
    #[serde(default)]
    pub identity_url: Option<String>,
    /// Overrides the plugin's page-listing URL (Facebook). Default: the plugin's.
    #[serde(default)]
    pub accounts_url: Option<String>,
    /// Overrides the plugin's subscription URL (`{account}` is replaced). Default: the
    /// plugin's.
    #[serde(default)]
    pub subscribe_url: Option<String>,
    /// The public URL of this host's webhook route for the connector
    /// (`https://centralino.example.it/webhooks/twitter`), registered with the platform
    /// when the plugin declares an app-level webhook (X's Account Activity). Default:
    /// none: the platform is not asked to send webhooks (polling still works).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The app's own bearer token (X: the app-only Bearer Token of the developer portal),
    /// as a secret reference, for registering `webhook_url`. Default: none.
    #[serde(default)]
    pub app_token: Option<SecretRef>,
    /// Overrides the plugin's webhook-registration URL (an emulator). Default: the
    /// plugin's.
    #[serde(default)]
    pub webhooks_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// How the host writes its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, with the fields of the spans it happened in (a plugin
    /// call's plugin, version, tenant and connector).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}`, expected `pretty` or `json`"
            )),
        }
    }
}

/// `[[connectors.accounts]]`: one company account (a brand's, or an operator's own).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// The platform's id of the account (numeric on X and Facebook; a number may be written
    /// without quotes). Unique in its connector. Required.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Public handle without `@` (`TIM_Official`); operators may name the account by it.
    /// Default: none.
    #[serde(default)]
    pub handle: Option<String>,
    /// The brand messages to this account belong to (`tim`); routing matches it against
    /// operators' skills. Default: none.
    #[serde(default)]
    pub brand: Option<String>,
    /// The account's credential: a bearer token reference (`"env:NAME"`),
    /// `{ query = "access_token", token = "env:NAME" }`, or `"connected"` (a token the host
    /// obtains and refreshes; see `[connectors.oauth]`). Default: none.
    #[serde(default)]
    pub credential: Option<CredentialRef>,
    /// Account-level settings passed to the plugin. Default: none.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
}

/// `[routing]`: the policy chain that picks an operator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    /// Stages joined by `>`, each a routing-policy plugin with optional settings in
    /// parentheses: `priority(level=7) > sticky > skills > least-loaded`. Default:
    /// [`DEFAULT_CHAIN`].
    #[serde(default = "default_chain")]
    pub chain: String,
    /// A candidate chain run beside the active one and compared, never acted on. Default:
    /// none.
    #[serde(default)]
    pub shadow: Option<String>,
    /// Minutes an assignee has to answer before the conversation goes to someone else.
    /// Default: none (never taken back).
    #[serde(default)]
    pub offer_timeout_minutes: Option<u64>,
    /// No longer here: automatic answers are configured per brand (`[[brands]]
    /// auto_reply`); `check` says so when it is written.
    #[serde(default)]
    pub auto_reply: Option<bool>,
    /// How many recent handling times the wait estimate averages. Default: 50.
    #[serde(default)]
    pub handling_window: Option<usize>,
    /// `[routing.settings.<stage>]`: settings of a stage, wherever it appears in `chain`
    /// or `shadow`, besides those in parentheses. Default: none.
    #[serde(default)]
    pub settings: BTreeMap<String, BTreeMap<String, SettingValue>>,
    /// Limits of routing calls, over `[limits]`. Default: `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
}

fn default_chain() -> String {
    DEFAULT_CHAIN.to_string()
}

impl Default for RoutingSection {
    /// What a tenant with operators and no `[routing]` gets.
    fn default() -> Self {
        RoutingSection {
            chain: default_chain(),
            shadow: None,
            offer_timeout_minutes: None,
            auto_reply: None,
            handling_window: None,
            settings: BTreeMap::new(),
            limits: LimitsSection::default(),
        }
    }
}

/// `[[operators]]`: a person who answers customers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSection {
    /// Stable id, unique in the tenant (`marco`). Letters, digits, `-`, `_`. Required.
    pub id: String,
    /// Display name. Default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Brands and skills (`tim`, `fibra`). Default: none.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Languages spoken (`it`, `en`). Default: none.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Conversations the operator may hold at once, at least 1. Required.
    pub capacity: u32,
    /// Personal accounts the operator replies from: `"connector:account"` where the
    /// account is one of the connector's, by id or handle (`"twitter:TIM_Marco"`).
    /// Default: none (replies go out from the account the customer wrote to).
    #[serde(default)]
    pub accounts: Vec<OperatorAccount>,
    /// Working hours (`utc_offset_minutes`, `mon` … `sun` as `"09:00-13:00"` spans);
    /// outside them an operator counts as away. Default: none (presence alone decides).
    #[serde(default)]
    pub hours: Option<WorkingHours>,
}

/// `[[tenants]]`: one company served by this host.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    /// Unique id, used in webhook routes (`/tenants/<id>/webhooks/<connector>`). Letters,
    /// digits, `-`, `_`. Required.
    pub id: String,
    /// `[[tenants.connectors]]`. Default: none.
    #[serde(default)]
    pub connectors: Vec<ConnectorSection>,
    /// `[tenants.routing]`. Default: as for the top level.
    #[serde(default)]
    pub routing: Option<RoutingSection>,
    /// `[[tenants.operators]]`. Default: none.
    #[serde(default)]
    pub operators: Vec<OperatorSection>,
    /// `[[tenants.brands]]`. Default: none.
    #[serde(default)]
    pub brands: Vec<Brand>,
    /// The tenant's bearer token for the REST API, as a secret reference; it sees this
    /// tenant's conversations and operators only. Each tenant needs a token of its own.
    /// Default: none, and the tenant's API refuses every call.
    #[serde(default)]
    pub api_token: Option<SecretRef>,
    /// Refuse this tenant's plugins unless signed by one of `[host] trusted_keys`, even
    /// where the host as a whole does not require it. Default: false.
    #[serde(default)]
    pub require_signed: bool,
    /// `[tenants.retention]`: how long this tenant's conversations and messages are kept.
    /// Default: forever.
    #[serde(default)]
    pub retention: Option<RetentionSection>,
}

impl ConfigFile {
    /// Every secret reference written in the file, in file order per section: what an admin
    /// has to provide before the host can start.
    pub fn secret_references(&self) -> Vec<&SecretRef> {
        let mut references: Vec<&SecretRef> = self
            .host
            .admin_token
            .iter()
            .chain(self.host.crm_webhook_secret.iter())
            .chain(self.host.token_key.iter())
            .collect();
        references.extend(&self.api_token);
        references.extend(self.tenants.iter().filter_map(|t| t.api_token.as_ref()));
        let tenants = std::iter::once(&self.connectors)
            .chain(self.tenants.iter().map(|tenant| &tenant.connectors));
        for connectors in tenants {
            for connector in connectors {
                references.extend(connector.secrets.values());
                references.extend(
                    connector
                        .accounts
                        .iter()
                        .filter_map(|a| a.credential.as_ref().and_then(CredentialRef::token)),
                );
                if let Some(oauth) = &connector.oauth {
                    references.push(&oauth.client_id);
                    references.extend(&oauth.client_secret);
                    references.extend(&oauth.app_token);
                }
            }
        }
        references
    }
}
