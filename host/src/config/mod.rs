//! `centralino.toml`: what an admin writes, checked before anything starts.
//!
//! ```toml
//! [host]
//! store = "sqlite://centralino.db"
//! plugin_dir = "plugins"
//!
//! [[connectors]]
//! name = "twitter"
//! plugin = "twitter"                       # plugins/twitter.wasm
//! poll_interval_secs = 60
//! allowed_hosts = ["api.x.com"]
//! secrets = { consumer_secret = "env:X_CONSUMER_SECRET" }
//!
//! [[connectors.accounts]]
//! id = "1443000001"
//! handle = "TIM_Official"
//! brand = "tim"
//! credential = "env:X_TOKEN_TIM_OFFICIAL"  # never the token itself
//!
//! [routing]
//! chain = "sticky > skills > least-loaded"
//! offer_timeout_minutes = 5
//!
//! [[operators]]
//! id = "marco"
//! skills = ["tim"]
//! capacity = 3
//! accounts = ["twitter:TIM_Marco"]
//! ```
//!
//! Three steps, each with errors that name the file, the line, the key path and what was
//! expected:
//!
//! 1. [`Config::load`] reads the file (`config/file.rs` documents every key and its
//!    default; `centralino init` writes a commented example) and checks what can be checked without secrets or compiling: duplicates,
//!    plugin files, the routing chain, operators' accounts, limits. Every problem found is
//!    reported, not only the first.
//! 2. [`Config::resolve_secrets`] reads every `env:`/`file:` reference of the enabled
//!    connectors (and the admin token, the tenants' API tokens, and the store URL when it
//!    is a reference), listing every one that is unset.
//! 3. [`Config::host_builder`] and [`Tenant::engine`] turn the result into what the host
//!    runs: connectors with their grants and limits, and a routing engine per tenant.
//!    [`Config::inspect_plugins`] checks every plugin's world and contract without
//!    compiling it (`centralino check`); [`Config::configure_plugins`] goes one step
//!    further and configures each plugin with its settings (`centralino check --load`).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use centralino::config::Config;
//!
//! let config = Config::load("centralino.toml")?;
//! let secrets = config.resolve_secrets()?;
//! let runtime = config.runtime()?;
//! let host = config.host_builder(runtime.clone(), &secrets).build().await?;
//! for tenant in &config.tenants {
//!     if let Some(engine) = tenant.engine(&runtime).await? {
//!         // serve `tenant.id` with `engine`…
//! #       drop(engine);
//!     }
//! }
//! # drop(host);
//! # Ok(()) }
//! ```

mod build;
mod error;
internal_mod! {
    file;
}
mod reload;
mod secrets;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use build::PluginCheck;
pub use error::{ConfigError, KeyPath, Problem};
pub use file::LogFormat;
pub use reload::{ConfigReload, ConfigReloader};
pub use secrets::ResolvedSecrets;
pub use values::{CredentialRef, OperatorAccount, SecretRef, SettingValue};

use crate::routing::{ChainSpec, Operator};
use crate::runtime::PluginLimits;
use crate::types::Pairs;
use error::Source;

/// The starter config `centralino init` writes: the telecom scenario of
/// `examples/centralino.toml`.
pub const EXAMPLE: &str = include_str!("../../../examples/centralino.toml");

/// The line of [`EXAMPLE`] that [`starter`] fills in.
const EXAMPLE_PLUGIN_DIR: &str = "plugin_dir = \"../target/plugins\"";

/// [`EXAMPLE`] with its `plugin_dir` set to `plugin_dir`: what `centralino init` writes.
pub fn starter(plugin_dir: &Path) -> String {
    let quoted = toml::Value::String(plugin_dir.display().to_string()).to_string();
    EXAMPLE.replacen(EXAMPLE_PLUGIN_DIR, &format!("plugin_dir = {quoted}"), 1)
}

/// A checked `centralino.toml`: defaults applied, paths absolute, each tenant's operators
/// and chain ready for the routing engine. Secrets are still references.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file, as it was named.
    pub path: PathBuf,
    /// Its folder, absolute; relative paths in the file start here.
    pub base_dir: PathBuf,
    /// The store: a URL (relative SQLite files made absolute) or a reference to one.
    pub store: StoreLocation,
    /// Address of the webhook ingress.
    pub listen: SocketAddr,
    /// Address of the admin API.
    pub admin_listen: SocketAddr,
    /// Address of the REST API's own listener, if it has one.
    pub api_listen: Option<SocketAddr>,
    /// The admin API's bearer token, as a reference.
    pub admin_token: Option<SecretRef>,
    /// The key sealing host-held tokens, as a reference.
    pub token_key: Option<SecretRef>,
    /// Where plugins named by a bare name are found, absolute.
    pub plugin_dir: PathBuf,
    /// Cache of compiled components, absolute.
    pub cache_dir: Option<PathBuf>,
    /// Largest webhook body accepted, in bytes.
    pub max_webhook_body: usize,
    /// This host's name among hosts sharing a database.
    pub host_id: String,
    /// Where the CRM receives signed event webhooks, if anywhere.
    pub crm_webhook: Option<String>,
    /// The reference of the secret that signs them.
    pub crm_webhook_secret: Option<SecretRef>,
    /// How long a polling lease lasts without renewal; `None`: from each poll interval.
    pub poll_lease_ttl: Option<Duration>,
    /// How long delivered CRM events and finished replies are kept; `None`: forever.
    pub retention: Option<Duration>,
    /// The largest file and each tenant's quota of stored files.
    pub media: crate::MediaLimits,
    /// How often `centralino run` looks at the connectors' plugin files to hot-swap a
    /// changed one; `None` when it does not watch them.
    pub watch_plugins: Option<Duration>,
    /// How the host logs.
    pub log_format: file::LogFormat,
    /// Limits of the webhook ingress (body size, read timeouts, connections).
    pub ingress: crate::serve::IngressLimits,
    /// Pooled instance slots, when the pooling allocator is on.
    pub pooling_instances: Option<u32>,
    /// Which plugins load: trusted signing keys and whether a signature is required.
    pub trust: crate::runtime::PluginTrust,
    /// The tenants; one, `default`, when the file names none.
    pub tenants: Vec<Tenant>,
    source: Source,
    secret_references: Vec<SecretRef>,
}

/// Where the store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A URL without credentials in it.
    Url(String),
    /// A URL kept in the environment or a file (it holds a password).
    Secret(SecretRef),
}

/// One tenant: its connectors, operators and routing.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The tenant's id ([`crate::connectors::DEFAULT_TENANT`] when implicit).
    pub id: String,
    /// Its connectors, enabled or not, in file order.
    pub connectors: Vec<Connector>,
    /// Its operators, personal accounts resolved to account ids.
    pub operators: Vec<Operator>,
    /// Its routing; none when it has neither operators nor a `[routing]` section.
    pub routing: Option<RoutingPlan>,
    /// Its REST API bearer token, as a reference; none closes its API.
    pub api_token: Option<SecretRef>,
    /// Its brands: automatic answers, business hours, service levels.
    pub brands: Vec<crate::answers::Brand>,
    /// How long its conversations and messages are kept (`[retention]`).
    pub retention: crate::store::ContentRetention,
    key: KeyPath,
}

/// A connector as the host will run it.
#[derive(Clone, Debug)]
pub struct Connector {
    /// Name, unique in the tenant.
    pub name: String,
    /// The component file, absolute.
    pub plugin: PathBuf,
    /// Whether the host runs it.
    pub enabled: bool,
    /// Poll interval; none for webhooks only.
    pub poll_interval: Option<Duration>,
    /// Hosts the plugin may reach.
    pub allowed_hosts: Vec<String>,
    /// Settings passed to the plugin.
    pub settings: Pairs,
    /// Signing secrets by the name the plugin uses.
    pub secrets: BTreeMap<String, SecretRef>,
    /// Limits of its calls, levels merged.
    pub limits: PluginLimits,
    /// Its accounts, in file order.
    pub accounts: Vec<Account>,
    /// The OAuth app for its connected accounts.
    pub oauth: Option<file::OAuthSection>,
    key: KeyPath,
}

/// A company account of a connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Platform id.
    pub id: String,
    /// Handle without `@`.
    pub handle: Option<String>,
    /// Brand of the messages it receives.
    pub brand: Option<String>,
    /// Its credential, as a reference.
    pub credential: Option<CredentialRef>,
    /// Account-level settings.
    pub settings: Pairs,
}

/// A tenant's routing, ready for the engine.
#[derive(Clone, Debug)]
pub struct RoutingPlan {
    /// The active chain, `[routing.settings]` merged in, path stages absolute.
    pub chain: ChainSpec,
    /// The shadow chain, likewise.
    pub shadow: Option<ChainSpec>,
    /// Offer timeout.
    pub offer_timeout: Option<Duration>,
    /// Handling times averaged for wait estimates.
    pub handling_window: usize,
    /// Limits of routing calls, levels merged.
    pub limits: PluginLimits,
    /// Where stages named by a bare name are found (the host's `plugin_dir`).
    pub plugin_dir: PathBuf,
    key: KeyPath,
}

impl Config {
    /// Reads and checks a config file. Relative paths in it are relative to its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))?;
        Config::parse(path, text)
    }

    /// Checks config text as if it were the file at `path` (which need not exist; its
    /// folder anchors relative paths).
    pub fn parse(path: impl AsRef<Path>, text: impl Into<String>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let source = Source::new(path, text.into());
        if let Err(e) = toml::de::DeTable::parse(source.text()) {
            // An unquoted word starting with `t` or `f` reads as a broken boolean.
            let reason = if e.message().starts_with("invalid boolean") {
                "expected `true` or `false`, or a string in quotes"
            } else {
                e.message()
            };
            let message = format!("invalid TOML: {reason}");
            return Err(source.error(vec![source.problem_at(e.span(), message)]));
        }
        let file: file::ConfigFile = toml::from_str(source.text()).map_err(|e| {
            let message = validate::friendly_serde_message(e.message());
            source.error(vec![source.problem_at(e.span(), message)])
        })?;
        let base_dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let mut references: Vec<SecretRef> =
            file.secret_references().into_iter().cloned().collect();
        references.dedup();
        let mut config = validate::check(file, source, base_dir)?;
        config.secret_references = references;
        Ok(config)
    }

    /// Every `env:` and `file:` reference the file makes (tokens, store URL, connector
    /// secrets and credentials), in file order: what must exist before the host starts.
    pub fn secret_references(&self) -> &[SecretRef] {
        &self.secret_references
    }

    /// The line of the file where `key` is written, for messages.
    pub fn line_of(&self, key: &KeyPath) -> Option<usize> {
        self.source.line_of(key)
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|tenant| tenant.id == id)
    }
}

/// `path` relative to `base` (or `path` itself when absolute), with `.` and `..` folded
/// away so messages show the file an admin would look for.
pub(crate) fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !clean.pop() {
                    clean.push("..");
                }
            }
            other => clean.push(other),
        }
    }
    clean
}

impl Tenant {
    /// The connector with this name.
    pub fn connector(&self, name: &str) -> Option<&Connector> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// The brand of messages received on `account` of `connector`, for the routing
    /// engine's `CustomerMessage::brand`.
    pub fn brand_of(&self, connector: &str, account: &str) -> Option<&str> {
        self.connector(connector)?
            .accounts
            .iter()
            .find(|a| a.id == account)?
            .brand
            .as_deref()
    }

    /// Where this tenant's keys are in the file (`tenants[1]`, or the top level).
    pub fn key(&self) -> &KeyPath {
        &self.key
    }
}

impl Connector {
    /// Where this connector is in the file (`connectors[0]`).
    pub fn key(&self) -> &KeyPath {
        &self.key
    }
}

impl RoutingPlan {
    /// Where this routing is in the file (`routing`).
    pub fn key(&self) -> &KeyPath {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_fills_in_the_plugin_dir_of_the_example() {
        assert_eq!(EXAMPLE.matches(EXAMPLE_PLUGIN_DIR).count(), 1);
        let text = starter(Path::new("/opt/centralino/plugins"));
        assert!(
            text.contains("\nplugin_dir = \"/opt/centralino/plugins\"\n"),
            "{text}"
        );
        assert!(!text.contains(EXAMPLE_PLUGIN_DIR));
    }
}
