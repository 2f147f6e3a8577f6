//! Configured connectors: one plugin instance per (tenant, connector), and what the host
//! does around its calls: storing what a webhook or a poll produced before acknowledging
//! it, and turning failures into answers a platform understands.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::capabilities::Grants;
use crate::error::{Error, PluginFailure, PluginId};
use crate::runtime::{ChannelInstance, PluginLimits};
use crate::store::{Ingested, Store};
use crate::types::{ConnectorConfig, WebhookRequest, WebhookResponse};

/// Tenant used when a deployment does not mention tenants.
pub const DEFAULT_TENANT: &str = "default";

/// One connector as the admin configured it.
#[derive(Clone, Debug)]
pub struct ConnectorSpec {
    /// Tenant that owns it. Default: [`DEFAULT_TENANT`].
    pub tenant: String,
    /// Name, unique per tenant; the webhook route and the stored channel name
    /// (`twitter`, `facebook-tim`).
    pub name: String,
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
}

impl ConnectorSpec {
    /// A connector of the default tenant with no grants, default limits and no polling.
    pub fn new(
        name: impl Into<String>,
        plugin: impl Into<PathBuf>,
        config: ConnectorConfig,
    ) -> Self {
        ConnectorSpec {
            tenant: DEFAULT_TENANT.to_string(),
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
        }
    }
}

/// A running connector.
pub(crate) struct Connector {
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) plugin: PluginId,
    pub(crate) accounts: Vec<String>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) brands: std::collections::BTreeMap<String, String>,
    instance: Mutex<ChannelInstance>,
}

/// What one poll of one account did.
#[derive(Clone, Debug, Serialize)]
pub struct PollReport {
    /// The account.
    pub account: String,
    /// Messages stored (duplicates excluded).
    pub stored: usize,
    /// Messages already stored before.
    pub duplicates: usize,
    /// The failure, if the poll failed.
    pub error: Option<String>,
}

impl Connector {
    pub(crate) fn new(spec: &ConnectorSpec, instance: ChannelInstance) -> Self {
        Connector {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            plugin: instance.id().clone(),
            accounts: spec.config.accounts.iter().map(|a| a.id.clone()).collect(),
            poll_interval: spec.poll_interval,
            brands: spec.brands.clone(),
            instance: Mutex::new(instance),
        }
    }

    /// Instantiates and configures the plugin now, so a bad config fails at start-up.
    pub(crate) async fn ready(&self) -> Result<(), Error> {
        self.instance.lock().await.ready().await
    }

    /// Runs a delivery through the plugin and stores its messages; the platform's answer
    /// is returned only once they are committed. Failures become answers that make the
    /// platform retry (5xx) or give up (4xx) as appropriate, so nothing acknowledged is lost.
    pub(crate) async fn deliver(
        &self,
        store: &Store,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let outcome = self.instance.lock().await.handle_webhook(request).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Error::Plugin {
                failure: PluginFailure::InvalidInput { detail },
                ..
            }) => {
                tracing::warn!(tenant = %self.tenant, connector = %self.name, plugin = %self.plugin, "rejected webhook: {detail}");
                return (error_response(400, &detail), Vec::new());
            }
            Err(e) => {
                tracing::error!(tenant = %self.tenant, connector = %self.name, "webhook not processed: {e}");
                return (
                    error_response(503, &format!("not processed, retry later: {e}")),
                    Vec::new(),
                );
            }
        };
        if outcome.response.status >= 300 || outcome.messages.is_empty() {
            if outcome.response.status >= 400 {
                tracing::warn!(
                    tenant = %self.tenant, connector = %self.name, status = outcome.response.status,
                    "plugin {} refused a webhook delivery", self.plugin
                );
            }
            return (outcome.response, Vec::new());
        }
        match store
            .ingest(&self.tenant, &self.name, &outcome.messages)
            .await
        {
            Ok(ingested) => (outcome.response, ingested),
            Err(e) => {
                tracing::error!(tenant = %self.tenant, connector = %self.name, "storing webhook messages failed: {e:#}");
                (error_response(503, "not stored, retry later"), Vec::new())
            }
        }
    }

    /// Polls every account once, storing messages and cursors together.
    pub(crate) async fn poll_all(&self, store: &Store) -> (Vec<PollReport>, Vec<Ingested>) {
        let mut reports = Vec::new();
        let mut all = Vec::new();
        for account in &self.accounts {
            let mut report = PollReport {
                account: account.clone(),
                stored: 0,
                duplicates: 0,
                error: None,
            };
            let cursor = match store.cursor(&self.tenant, &self.name, account).await {
                Ok(cursor) => cursor,
                Err(e) => {
                    report.error = Some(format!("reading the cursor: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let polled = self
                .instance
                .lock()
                .await
                .poll(account, cursor.as_deref())
                .await;
            match polled {
                Ok(result) => {
                    match store
                        .ingest_polled(
                            &self.tenant,
                            &self.name,
                            account,
                            &result.messages,
                            result.cursor.as_deref(),
                        )
                        .await
                    {
                        Ok(ingested) => {
                            report.duplicates = ingested.iter().filter(|i| i.duplicate).count();
                            report.stored = ingested.len() - report.duplicates;
                            all.extend(ingested);
                        }
                        Err(e) => report.error = Some(format!("storing: {e:#}")),
                    }
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            if let Some(error) = &report.error {
                tracing::warn!(tenant = %self.tenant, connector = %self.name, account, "poll failed: {error}");
            }
            reports.push(report);
        }
        (reports, all)
    }

    /// Sends through the plugin.
    pub(crate) async fn send(
        &self,
        message: crate::types::OutboundMessage,
    ) -> Result<crate::types::Sent, Error> {
        self.instance.lock().await.send(message).await
    }
}

fn error_response(status: u16, message: &str) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    }
}
