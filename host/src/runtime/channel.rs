//! Channel connector plugins (world `channel`).

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::v0_1::channel::{Channel, ChannelPre};
use super::state::PluginState;
use super::{
    CacheOutcome, Inspection, PluginLimits, Runtime, begin_call, fault, instantiate_fault,
};
use crate::capabilities::{Grants, RateLimitBook};
use crate::error::{Error, PluginFailure, PluginId};
use crate::types::{
    ConnectorConfig, ConnectorDescription, OutboundMessage, PollResult, Sent, WebhookOutcome,
    WebhookRequest,
};

/// A compiled, linked channel connector. Cheap to clone; make one [`ChannelInstance`] per
/// configured connector (per tenant).
#[derive(Clone)]
pub struct ChannelPlugin {
    runtime: Runtime,
    info: Arc<Inspection>,
    id: Arc<PluginId>,
    pre: ChannelPre<PluginState>,
    cache: CacheOutcome,
}

impl std::fmt::Debug for ChannelPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelPlugin")
            .field("plugin", &self.id)
            .finish_non_exhaustive()
    }
}

impl ChannelPlugin {
    pub(super) fn new(
        runtime: Runtime,
        info: Arc<Inspection>,
        pre: ChannelPre<PluginState>,
        cache: CacheOutcome,
    ) -> Self {
        let id = Arc::new(info.plugin.clone());
        ChannelPlugin {
            runtime,
            info,
            id,
            pre,
            cache,
        }
    }

    /// What inspection found.
    pub fn info(&self) -> &Inspection {
        &self.info
    }

    /// The plugin's name and version.
    pub fn id(&self) -> &PluginId {
        &self.id
    }

    /// Whether compiling was served from the disk cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// An instance with `config` and the capabilities in `grants`. It is instantiated and
    /// configured on first use.
    pub fn instance(
        &self,
        config: ConnectorConfig,
        grants: Grants,
        limits: PluginLimits,
    ) -> ChannelInstance {
        ChannelInstance {
            plugin: self.clone(),
            config,
            grants: Arc::new(grants),
            book: Arc::new(RateLimitBook::default()),
            limits,
            live: None,
            description: None,
            started: 0,
        }
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: Channel,
}

/// One running connector. A fault discards the wasm instance; the next call starts a
/// fresh one, described and configured again.
pub struct ChannelInstance {
    plugin: ChannelPlugin,
    config: ConnectorConfig,
    grants: Arc<Grants>,
    /// Rate-limit windows seen by this connector; kept across instance replacements.
    book: Arc<RateLimitBook>,
    limits: PluginLimits,
    live: Option<Live>,
    description: Option<ConnectorDescription>,
    started: u64,
}

/// Runs one export on the live instance, discarding it if the call faults.
macro_rules! call {
    ($self:ident, $function:literal, |$bindings:ident, $store:ident| $call:expr) => {{
        $self.ready().await?;
        let plugin = $self.plugin.id.clone();
        let Some(live) = $self.live.as_mut() else {
            return Err(Error::Other(anyhow::anyhow!(
                "plugin {plugin} has no instance"
            )));
        };
        begin_call(&mut live.store, $self.limits.call_deadline);
        let $bindings = live.bindings.centralino_plugin_connector();
        let $store = &mut live.store;
        match $call.await {
            Ok(Ok(value)) => Ok(value.into()),
            Ok(Err(e)) => Err(Error::Plugin {
                plugin: (*plugin).clone(),
                function: $function,
                failure: PluginFailure::from(e),
            }),
            Err(e) => {
                let error = fault(&live.store, $function, &e);
                $self.live = None;
                Err(error)
            }
        }
    }};
}

impl ChannelInstance {
    /// The plugin's name and version.
    pub fn id(&self) -> &PluginId {
        &self.plugin.id
    }

    /// Log lines the current instance wanted to write beyond its budget (dropped).
    pub fn log_lines_dropped(&self) -> u64 {
        self.live
            .as_ref()
            .map_or(0, |live| live.store.data().log_budget.dropped())
    }

    /// How many wasm instances were started so far.
    pub fn instances_started(&self) -> u64 {
        self.started
    }

    /// The connector's description (after the first successful `ready`).
    pub fn description(&self) -> Option<&ConnectorDescription> {
        self.description.as_ref()
    }

    /// Makes sure a described and configured instance exists.
    pub async fn ready(&mut self) -> Result<(), Error> {
        if self.live.is_some() {
            return Ok(());
        }
        let id = self.plugin.id.clone();
        let mut store = self.plugin.runtime.store(
            id.clone(),
            self.grants.clone(),
            self.book.clone(),
            &self.limits,
        );
        let bindings = self
            .plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| instantiate_fault(&id, &e))?;
        self.started += 1;
        let connector = bindings.centralino_plugin_connector();
        let description = match connector.call_describe(&mut store).await {
            Ok(d) => ConnectorDescription::from(d),
            Err(e) => return Err(fault(&store, "describe", &e)),
        };
        begin_call(&mut store, self.limits.call_deadline);
        let config = self.config.clone().into();
        match connector.call_configure(&mut store, &config).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Error::Plugin {
                    plugin: (*id).clone(),
                    function: "configure",
                    failure: e.into(),
                });
            }
            Err(e) => return Err(fault(&store, "configure", &e)),
        }
        self.description = Some(description);
        self.live = Some(Live { store, bindings });
        Ok(())
    }

    /// Fetches what arrived for `account` since `cursor`.
    pub async fn poll(&mut self, account: &str, cursor: Option<&str>) -> Result<PollResult, Error> {
        let cursor = cursor.map(str::to_string);
        call!(self, "poll", |b, store| b.call_poll(
            store,
            account,
            cursor.as_deref()
        ))
    }

    /// Runs one webhook delivery through the connector.
    pub async fn handle_webhook(
        &mut self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, Error> {
        let request = request.into();
        call!(self, "handle-webhook", |b, store| b
            .call_handle_webhook(store, &request))
    }

    /// Sends a reply.
    pub async fn send(&mut self, message: OutboundMessage) -> Result<Sent, Error> {
        let message = message.into();
        call!(self, "send", |b, store| b.call_send(store, &message))
    }
}
