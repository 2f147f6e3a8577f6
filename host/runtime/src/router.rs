//! Routing policy plugins (world `routing-policy`).

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::Func;

use super::bindings::{RouterPre, v0_1, v0_2};
use super::borrowed;
use super::imports::RateLimitBook;
use super::roster::{self, Roster};
use super::state::PluginState;
use super::{
    CacheOutcome, CallNotes, Inspection, PluginLimits, RouteCall, Runtime, begin_call,
    check_output, end_call, fault, instantiate_fault, retire_if_swollen,
};
use crate::capabilities::Grants;
use crate::error::{Error, Fault, PluginFailure, PluginId};
use crate::types::{Pairs, RoutingContext, RoutingDecision};

/// A compiled, linked routing policy. Cheap to clone; make one [`RouterInstance`] per
/// chain stage (per tenant).
#[derive(Clone)]
pub struct RouterPlugin {
    runtime: Runtime,
    info: Arc<Inspection>,
    id: Arc<PluginId>,
    pre: RouterPre,
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
        pre: RouterPre,
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
            notes: CallNotes::default(),
        }
    }
}

struct Live {
    store: Store<PluginState>,
    route: Route,
    /// Set while a call runs; still set at the next call, the previous call's future was
    /// dropped midway and the instance is replaced.
    in_call: bool,
}

/// How a live instance's `route` is called ([`RouteCall`]), by contract line.
enum Route {
    /// 0.1: the `route` export, called with borrowed arguments ([`super::borrowed`]).
    Borrowed(Func),
    /// 0.1: the generated bindings, called with the contract's owned context.
    Generated(v0_1::routing_policy::RoutingPolicy),
    /// 0.2: the roster kept in the instance ([`super::roster`]); `route` is `Some` on the
    /// fast path (borrowed candidates lowered in one copy), `None` through the generated
    /// bindings.
    Roster {
        bindings: v0_2::routing_policy::RoutingPolicy,
        route: Option<Func>,
        roster: Box<Roster>,
    },
}

/// One running routing policy. A fault discards the underlying wasm instance; the next
/// call starts a fresh one with the same settings.
pub struct RouterInstance {
    plugin: RouterPlugin,
    settings: Pairs,
    limits: PluginLimits,
    live: Option<Live>,
    started: u64,
    notes: CallNotes,
}

impl RouterInstance {
    /// The plugin's name and version.
    pub fn id(&self) -> &PluginId {
        &self.plugin.id
    }

    /// Log lines its instances wanted to write beyond their per-call budget (dropped).
    pub fn log_lines_dropped(&self) -> u64 {
        self.notes.log_lines_dropped
    }

    /// Everything noted so far, across instances.
    pub fn notes(&self) -> &CallNotes {
        &self.notes
    }

    /// How many wasm instances were started so far (1 + replacements after faults).
    pub fn instances_started(&self) -> u64 {
        self.started
    }

    /// Makes sure a configured instance exists.
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
            Arc::new(Grants::default()),
            Arc::new(RateLimitBook::default()),
            &self.limits,
        );
        begin_call(&mut store, self.limits.call_deadline);
        let fast = self.plugin.runtime.inner.route_call == RouteCall::Borrowed;
        let (configured, route) = match &self.plugin.pre {
            RouterPre::V0_1(pre) => {
                let bindings = match pre.instantiate_async(&mut store).await {
                    Ok(bindings) => bindings,
                    Err(e) => {
                        self.notes.absorb(end_call(&mut store, "instantiate"));
                        return Err(instantiate_fault(&id, &e));
                    }
                };
                self.started += 1;
                let configured = bindings
                    .centralino_plugin_router()
                    .call_configure(&mut store, &self.settings)
                    .await
                    .map(|r| r.map_err(PluginFailure::from));
                let route = if fast {
                    let route = *bindings.centralino_plugin_router().func_route().func();
                    borrowed::check_route(&route, &store)
                        .map_err(|e| instantiate_fault(&id, &e))?;
                    Route::Borrowed(route)
                } else {
                    Route::Generated(bindings)
                };
                (configured, route)
            }
            RouterPre::V0_2(pre) => {
                let bindings = match pre.instantiate_async(&mut store).await {
                    Ok(bindings) => bindings,
                    Err(e) => {
                        self.notes.absorb(end_call(&mut store, "instantiate"));
                        return Err(instantiate_fault(&id, &e));
                    }
                };
                self.started += 1;
                let configured = bindings
                    .centralino_plugin_router()
                    .call_configure(&mut store, &self.settings)
                    .await
                    .map(|r| r.map_err(PluginFailure::from));
                let route = if fast {
                    let route = *bindings.centralino_plugin_router().func_route().func();
                    roster::check_route(&route, &store).map_err(|e| instantiate_fault(&id, &e))?;
                    Some(route)
                } else {
                    None
                };
                (
                    configured,
                    Route::Roster {
                        bindings,
                        route,
                        roster: Box::default(),
                    },
                )
            }
        };
        self.notes.absorb(end_call(&mut store, "configure"));
        match configured {
            Ok(Ok(())) => {
                store.data_mut().limiter.ready();
                self.live = Some(Live {
                    store,
                    route,
                    in_call: false,
                });
                Ok(())
            }
            Ok(Err(failure)) => Err(Error::Plugin {
                plugin: (*id).clone(),
                function: "configure",
                failure,
            }),
            Err(e) => Err(fault(&store, "configure", &e)),
        }
    }

    /// Asks the policy for a decision (in a `plugin_call` span naming the plugin and its
    /// version).
    pub async fn route(&mut self, context: &RoutingContext) -> Result<RoutingDecision, Error> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %self.plugin.id.name,
            version = %self.plugin.id.version,
            function = "route",
        );
        self.route_unspanned(context).instrument(span).await
    }

    async fn route_unspanned(
        &mut self,
        context: &RoutingContext,
    ) -> Result<RoutingDecision, Error> {
        self.ready().await?;
        let Some(live) = self.live.as_mut() else {
            return Err(Error::Other(anyhow::anyhow!(
                "plugin {} has no instance",
                self.plugin.id
            )));
        };
        begin_call(&mut live.store, self.limits.call_deadline);
        live.in_call = true;
        let (result, function) = call_route(live, context).await;
        live.in_call = false;
        self.notes.absorb(end_call(&mut live.store, function));
        // Whatever the outcome, a swollen instance is replaced before the next call (and
        // the fresh one is told the roster again); one that faulted is discarded anyway.
        let swollen = result.is_ok() && retire_if_swollen(&live.store, function);
        let outcome = match result {
            Ok(Ok(decision)) => {
                match check_output(&self.plugin.id, "route", &decision, &self.limits) {
                    Ok(()) => Ok(decision),
                    Err(error) => {
                        self.live = None;
                        Err(error)
                    }
                }
            }
            Ok(Err(Refusal::Plugin(failure))) => Err(Error::Plugin {
                plugin: (*self.plugin.id).clone(),
                function: "route",
                failure,
            }),
            Ok(Err(Refusal::UnknownHandle(detail))) => {
                tracing::warn!(plugin = %self.plugin.id, function = "route", fault = %Fault::OutputLimit, "{detail}; result refused, instance discarded");
                self.live = None;
                Err(Error::Fault {
                    plugin: (*self.plugin.id).clone(),
                    function: "route",
                    fault: Fault::OutputLimit,
                    detail,
                })
            }
            Err(e) => {
                let error = fault(&live.store, function, &e);
                self.live = None;
                Err(error)
            }
        };
        if swollen {
            self.live = None;
        }
        outcome
    }
}

/// Why a call returned no decision although the guest ran to the end.
enum Refusal {
    /// The policy's own error.
    Plugin(PluginFailure),
    /// A 0.2 policy named a handle it was never told about.
    UnknownHandle(String),
}

/// Calls `route` on `live` the way its line and the runtime say; returns the outcome and
/// the export that ran last (`update-roster` when announcing operators failed).
async fn call_route(
    live: &mut Live,
    context: &RoutingContext,
) -> (
    wasmtime::Result<Result<RoutingDecision, Refusal>>,
    &'static str,
) {
    let store = &mut live.store;
    let plugin = |r: wasmtime::Result<Result<RoutingDecision, PluginFailure>>| {
        r.map(|r| r.map_err(Refusal::Plugin))
    };
    match &mut live.route {
        Route::Borrowed(route) => {
            let arguments = borrowed::ContextRef::from(context);
            let r = borrowed::route_func(*route)
                .call_async(&mut *store, (arguments,))
                .await
                .map(|(r,)| r.map(RoutingDecision::from).map_err(PluginFailure::from));
            (plugin(r), "route")
        }
        Route::Generated(bindings) => {
            let r = bindings
                .centralino_plugin_router()
                .call_route(&mut *store, &v0_1::router::Context::from(context))
                .await
                .map(|r| r.map(RoutingDecision::from).map_err(PluginFailure::from));
            (plugin(r), "route")
        }
        Route::Roster {
            bindings,
            route,
            roster,
        } => {
            let changes = roster.prepare(context);
            if !changes.is_empty() {
                let told = bindings
                    .centralino_plugin_router()
                    .call_update_roster(&mut *store, &changes.upserts, &changes.removed)
                    .await;
                if let Err(e) = told {
                    return (Err(e), "update-roster");
                }
            }
            let r = match route {
                Some(route) => roster::route_func(*route)
                    .call_async(&mut *store, (roster.context(context),))
                    .await
                    .map(|(r,)| r),
                None => {
                    bindings
                        .centralino_plugin_router()
                        .call_route(&mut *store, &roster.owned_context(context))
                        .await
                }
            };
            let r = r.map(|r| match r {
                Ok(decision) => roster.decision(decision).map_err(Refusal::UnknownHandle),
                Err(e) => Err(Refusal::Plugin(e.into())),
            });
            (r, "route")
        }
    }
}
