//! Routing policy plugins (world `routing-policy`).

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::v0_1::routing_policy::{RoutingPolicy, RoutingPolicyPre};
use super::state::PluginState;
use super::{
    CacheOutcome, Inspection, PluginLimits, Runtime, begin_call, fault, instantiate_fault,
};
use crate::capabilities::{Grants, RateLimitBook};
use crate::error::{Error, PluginId};
use crate::types::{Pairs, RoutingContext, RoutingDecision};

/// A compiled, linked routing policy. Cheap to clone; make one [`RouterInstance`] per
/// chain stage (per tenant).
#[derive(Clone)]
pub struct RouterPlugin {
    runtime: Runtime,
    info: Arc<Inspection>,
    id: Arc<PluginId>,
    pre: RoutingPolicyPre<PluginState>,
    cache: CacheOutcome,
}

impl std::fmt::Debug for RouterPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterPlugin")
            .field("plugin", &self.id)
            .finish_non_exhaustive()
    }
}

impl RouterPlugin {
    pub(super) fn new(
        runtime: Runtime,
        info: Arc<Inspection>,
        pre: RoutingPolicyPre<PluginState>,
        cache: CacheOutcome,
    ) -> Self {
        let id = Arc::new(info.plugin.clone());
        RouterPlugin {
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

    /// An instance configured with `settings`. Nothing runs until the first call, which
    /// instantiates and configures it; a bad setting is reported there.
    pub fn instance(&self, settings: Pairs, limits: PluginLimits) -> RouterInstance {
        RouterInstance {
            plugin: self.clone(),
            settings,
            limits,
            live: None,
            started: 0,
        }
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: RoutingPolicy,
}

/// One running routing policy. A fault discards the underlying wasm instance; the next
/// call starts a fresh one with the same settings.
pub struct RouterInstance {
    plugin: RouterPlugin,
    settings: Pairs,
    limits: PluginLimits,
    live: Option<Live>,
    started: u64,
}

impl RouterInstance {
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

    /// How many wasm instances were started so far (1 + replacements after faults).
    pub fn instances_started(&self) -> u64 {
        self.started
    }

    /// Makes sure a configured instance exists.
    pub async fn ready(&mut self) -> Result<(), Error> {
        if self.live.is_some() {
            return Ok(());
        }
        let id = self.plugin.id.clone();
        let mut store = self.plugin.runtime.store(
            id.clone(),
            Arc::new(Grants::default()),
            Arc::new(RateLimitBook::default()),
            &self.limits,
        );
        let bindings = self
            .plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| instantiate_fault(&id, &e))?;
        self.started += 1;
        begin_call(&mut store, self.limits.call_deadline);
        let configured = bindings
            .centralino_plugin_router()
            .call_configure(&mut store, &self.settings)
            .await;
        match configured {
            Ok(Ok(())) => {
                self.live = Some(Live { store, bindings });
                Ok(())
            }
            Ok(Err(e)) => Err(Error::Plugin {
                plugin: (*id).clone(),
                function: "configure",
                failure: e.into(),
            }),
            Err(e) => Err(fault(&store, "configure", &e)),
        }
    }

    /// Asks the policy for a decision.
    pub async fn route(&mut self, context: &RoutingContext) -> Result<RoutingDecision, Error> {
        self.ready().await?;
        let Some(live) = self.live.as_mut() else {
            return Err(Error::Other(anyhow::anyhow!(
                "plugin {} has no instance",
                self.plugin.id
            )));
        };
        begin_call(&mut live.store, self.limits.call_deadline);
        let wit_context = context.into();
        match live
            .bindings
            .centralino_plugin_router()
            .call_route(&mut live.store, &wit_context)
            .await
        {
            Ok(Ok(decision)) => Ok(decision.into()),
            Ok(Err(e)) => Err(Error::Plugin {
                plugin: (*self.plugin.id).clone(),
                function: "route",
                failure: e.into(),
            }),
            Err(e) => {
                let error = fault(&live.store, "route", &e);
                self.live = None;
                Err(error)
            }
        }
    }
}
