//! [`ConnectorTest`]: a connector component with the settings, accounts and grants of one
//! test.

use std::path::PathBuf;

use centralino_runtime::Error;
use centralino_runtime::capabilities::{Credential, Grants, Secret};
use centralino_runtime::types::{AccountConfig, ConnectorConfig};
use centralino_runtime::{ChannelInstance, PluginLimits, Runtime};

/// A connector to test: a component plus everything an admin would configure. Grants
/// nothing by default, like the host.
#[derive(Clone, Debug)]
pub struct ConnectorTest {
    plugin: PathBuf,
    config: ConnectorConfig,
    grants: Grants,
    limits: PluginLimits,
    cache_dir: Option<PathBuf>,
}

impl ConnectorTest {
    /// The built component `name` (see [`component`](crate::component)).
    pub fn new(name: &str) -> Self {
        Self::from_path(crate::component(name))
    }

    /// The component at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        ConnectorTest {
            plugin: path.into(),
            config: ConnectorConfig::default(),
            grants: Grants::default(),
            limits: PluginLimits::default(),
            cache_dir: None,
        }
    }

    /// A connector-level setting.
    pub fn setting(mut self, key: &str, value: impl Into<String>) -> Self {
        self.config.settings.push((key.to_string(), value.into()));
        self
    }

    /// An account with this id and credential name.
    pub fn account(self, id: &str, credential: Option<&str>) -> Self {
        self.account_config(AccountConfig {
            id: id.to_string(),
            handle: None,
            credential: credential.map(str::to_string),
            settings: Vec::new(),
        })
    }

    /// An account as configured.
    pub fn account_config(mut self, account: AccountConfig) -> Self {
        self.config.accounts.push(account);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: ConnectorConfig) -> Self {
        self.config = config;
        self
    }

    /// Grants a secret for `signing`.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.grants
            .secrets
            .insert(name.to_string(), Secret::new(value));
        self
    }

    /// Grants a credential.
    pub fn credential(mut self, name: &str, credential: Credential) -> Self {
        self.grants.credentials.insert(name.to_string(), credential);
        self
    }

    /// Grants a bearer token.
    pub fn bearer(self, name: &str, token: &str) -> Self {
        self.credential(name, Credential::Bearer(Secret::new(token)))
    }

    /// Grants a token the host puts in the URL path where the plugin writes `{credential}`.
    pub fn path_token(self, name: &str, token: &str) -> Self {
        self.credential(name, Credential::PathSegment(Secret::new(token)))
    }

    /// Lets the `http` import reach `authority` (`127.0.0.1:<port>`).
    pub fn allow(mut self, authority: impl Into<String>) -> Self {
        self.grants.allowed_hosts.push(authority.into());
        self
    }

    /// Replaces the grants.
    pub fn grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps compiled components in `dir` (see `RuntimeBuilder::cache_dir`), so tests
    /// that load a large component (a Python or JavaScript one: 10–20 MB) compile it once
    /// rather than once per test. Without it every [`instance`](Self::instance) compiles.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Loads the component and makes an instance; it is configured on first use (or by
    /// [`ChannelInstance::ready`]).
    // `centralino_runtime::Error` is the runtime's public error type, returned as it is.
    #[allow(clippy::result_large_err)]
    pub fn instance(&self) -> Result<ChannelInstance, Error> {
        let mut runtime = Runtime::builder();
        if let Some(dir) = &self.cache_dir {
            runtime = runtime.cache_dir(dir);
        }
        let plugin = runtime.build()?.load_channel(&self.plugin)?;
        Ok(plugin.instance(
            self.config.clone(),
            self.grants.clone(),
            self.limits.clone(),
        ))
    }
}
