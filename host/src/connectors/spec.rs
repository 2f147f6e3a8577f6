//! What the admin configures for one connector.

use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::Grants;
use crate::ids::{ConnectorId, TenantId};
use crate::runtime::PluginLimits;
use crate::types::ConnectorConfig;

/// Tenant used when a deployment does not mention tenants.
pub const DEFAULT_TENANT: &str = "default";

/// One connector as the admin configured it. Built with [`ConnectorSpec::new`] and the
/// methods after it; its fields stay readable and writable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectorSpec {
    /// Tenant that owns it. Default: [`DEFAULT_TENANT`].
    pub tenant: TenantId,
    /// Name, unique per tenant; the webhook route and the stored channel name
    /// (`twitter`, `facebook-tim`).
    pub name: ConnectorId,
    /// The plugin component.
    pub plugin: PathBuf,
    /// Settings and accounts (credentials by name only).
    pub config: ConnectorConfig,
    /// What the plugin may use: hosts, credentials, secrets. Default: nothing.
    pub grants: Grants,
    /// Limits of its calls.
    pub limits: PluginLimits,
    /// How often to poll each account; `None` when the connector only gets webhooks.
    pub poll_interval: Option<Duration>,
    /// Brand of each account (account id → brand), for routing by brand.
    pub brands: std::collections::BTreeMap<String, String>,
    /// Whether it takes calls from the start. A disabled connector is loaded (its plugin
    /// compiled) but answers webhooks 503, skips polls and keeps replies queued until
    /// enabled. Default: `true`.
    pub enabled: bool,
}

impl ConnectorSpec {
    /// A connector of the default tenant with no grants, default limits and no polling.
    pub fn new(
        name: impl Into<ConnectorId>,
        plugin: impl Into<PathBuf>,
        config: ConnectorConfig,
    ) -> Self {
        ConnectorSpec {
            tenant: DEFAULT_TENANT.into(),
            name: name.into(),
            plugin: plugin.into(),
            config,
            grants: Grants::default(),
            limits: PluginLimits {
                call_deadline: Duration::from_secs(5),
                ..PluginLimits::default()
            },
            poll_interval: None,
            brands: std::collections::BTreeMap::new(),
            enabled: true,
        }
    }

    /// Belongs to `tenant` instead of [`DEFAULT_TENANT`].
    pub fn tenant(mut self, tenant: impl Into<TenantId>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// What the plugin may use (default: nothing).
    pub fn grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// Limits of its calls (default: [`PluginLimits::default`] with a 5 s deadline).
    pub fn limits(mut self, limits: PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Polls each account every `interval` (default: no polling, webhooks only).
    pub fn poll_every(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Account `account` belongs to `brand`, for routing by brand.
    pub fn brand(mut self, account: impl Into<String>, brand: impl Into<String>) -> Self {
        self.brands.insert(account.into(), brand.into());
        self
    }

    /// Starts disabled: loaded, but answering webhooks 503 and holding replies until
    /// enabled (default: enabled).
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}
