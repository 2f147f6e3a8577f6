//! Channel connector plugins (world `channel`).

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::{ChannelBindings, ChannelPre};
use super::call::{
    begin_call, check_output, end_call, fault, instantiate_fault, retire_if_swollen,
};
use super::imports::{MediaFetcher, RateLimitBook};
use super::state::PluginState;
use super::{CacheOutcome, CallNotes, Inspection, PluginLimits, Runtime};
use crate::capabilities::Grants;
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
    pre: ChannelPre,
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
        pre: ChannelPre,
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
            book: Arc::new(RateLimitBook::new(self.info.rate_limits.clone())),
            limits,
            live: None,
            description: None,
            started: 0,
            notes: Notebook::default(),
        }
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: ChannelBindings,
    /// Set while a call runs. Still set when the next call comes, it means the caller
    /// dropped the call's future midway (a client went away): the instance may be mid-way
    /// through an export and is replaced, which is not the plugin's fault.
    in_call: bool,
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
    notes: Notebook,
}

/// Notes of every call so far, and of those not yet taken.
#[derive(Default)]
struct Notebook {
    all: CallNotes,
    fresh: CallNotes,
}

impl Notebook {
    fn record(&mut self, notes: CallNotes) {
        if notes.is_empty() {
            return;
        }
        self.all.absorb(notes.clone());
        self.fresh.absorb(notes);
    }
}

/// Runs one export on the live instance: starts its budgets, collects its notes, checks its
/// result against the output caps, and discards the instance if the call faults.
macro_rules! call {
    ($self:ident, $function:literal, $output:ty, |$bindings:ident, $store:ident| $call:expr) => {{
        $self.ready().await?;
        let plugin = $self.plugin.id.clone();
        let Some(live) = $self.live.as_mut() else {
            return Err(Error::Other(anyhow::anyhow!(
                "plugin {plugin} has no instance"
            )));
        };
        begin_call(&mut live.store, $self.limits.call_deadline);
        live.in_call = true;
        let $bindings = &live.bindings;
        let $store = &mut live.store;
        let result = $call.await;
        live.in_call = false;
        let notes = end_call(&mut live.store, $function);
        $self.notes.record(notes);
        // A call that faulted discards its instance anyway.
        let swollen = result.is_ok() && retire_if_swollen(&live.store, $function);
        let outcome = match result {
            Ok(Ok(value)) => {
                let value: $output = value.into();
                match check_output(&plugin, $function, &value, &$self.limits) {
                    Ok(()) => Ok(value),
                    Err(error) => {
                        $self.live = None;
                        Err(error)
                    }
                }
            }
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
        };
        if swollen {
            $self.live = None;
        }
        outcome
    }};
}

impl ChannelInstance {
    /// The plugin's name and version.
    pub fn id(&self) -> &PluginId {
        &self.plugin.id
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// What the host fetches inbound attachments with: this connector's grants, limits
    /// and rate-limit book, and each account's credential name (see [`MediaFetcher`]).
    pub fn media_fetcher(&self) -> MediaFetcher {
        MediaFetcher {
            plugin: self.plugin.id.clone(),
            grants: self.grants.clone(),
            book: self.book.clone(),
            limits: self.limits.clone(),
            transport: self.plugin.runtime.http_transport(),
            credentials: self
                .config
                .accounts
                .iter()
                .filter_map(|a| Some((a.id.clone(), a.credential.clone()?)))
                .collect(),
        }
    }

    /// Log lines its instances wanted to write beyond their per-call budget (dropped).
    pub fn log_lines_dropped(&self) -> u64 {
        self.notes.all.log_lines_dropped
    }

    /// Everything noted so far, across instances: refused capability requests, log
    /// overflows.
    pub fn notes(&self) -> &CallNotes {
        &self.notes.all
    }

    /// Notes of the calls since the last time this was called.
    pub fn take_notes(&mut self) -> CallNotes {
        std::mem::take(&mut self.notes.fresh)
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
        if let Some(live) = &self.live {
            if !live.in_call {
                return Ok(());
            }
            tracing::warn!(plugin = %self.plugin.id, "the previous call was abandoned midway; instance replaced");
            self.live = None;
        }
        let id = self.plugin.id.clone();
        let mut store = self.plugin.runtime.store(
            id.clone(),
            self.grants.clone(),
            self.book.clone(),
            &self.limits,
        );
        begin_call(&mut store, self.limits.call_deadline);
        let instantiated = self.plugin.pre.instantiate_async(&mut store).await;
        let bindings = match instantiated {
            Ok(bindings) => bindings,
            Err(e) => {
                let notes = end_call(&mut store, "instantiate");
                self.notes.record(notes);
                return Err(instantiate_fault(&id, &e));
            }
        };
        self.started += 1;
        let described = bindings.describe(&mut store).await;
        let description = match described {
            Ok(d) => d,
            Err(e) => {
                let notes = end_call(&mut store, "describe");
                self.notes.record(notes);
                return Err(fault(&store, "describe", &e));
            }
        };
        let notes = end_call(&mut store, "describe");
        self.notes.record(notes);
        check_output(&id, "describe", &description, &self.limits)?;
        begin_call(&mut store, self.limits.call_deadline);
        let configured = bindings.configure(&mut store, self.config.clone()).await;
        let notes = end_call(&mut store, "configure");
        self.notes.record(notes);
        match configured {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Error::Plugin {
                    plugin: (*id).clone(),
                    function: "configure",
                    failure: e,
                });
            }
            Err(e) => return Err(fault(&store, "configure", &e)),
        }
        self.description = Some(description);
        store.data_mut().limiter.ready();
        self.live = Some(Live {
            store,
            bindings,
            in_call: false,
        });
        Ok(())
    }

    /// Fetches what arrived for `account` since `cursor`.
    pub async fn poll(&mut self, account: &str, cursor: Option<&str>) -> Result<PollResult, Error> {
        call!(self, "poll", PollResult, |b, store| b
            .poll(store, account, cursor))
    }

    /// Runs one webhook delivery through the connector.
    pub async fn handle_webhook(
        &mut self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, Error> {
        call!(self, "handle-webhook", WebhookOutcome, |b, store| b
            .handle_webhook(store, request))
    }

    /// Sends a reply.
    pub async fn send(&mut self, message: OutboundMessage) -> Result<Sent, Error> {
        call!(self, "send", Sent, |b, store| b.send(store, message))
    }
}
