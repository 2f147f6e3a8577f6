//! Routing policy plugins (world `routing-policy`).

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::{RouterLine, RouterPre};
use super::borrowed;
use super::call::{
    begin_call, check_output, end_call, fault, instantiate_fault, retire_if_swollen,
};
use super::flat_route;
use super::imports::RateLimitBook;
use super::roster;
use super::route_call::{Live, Refusal, Route, call_route};
use super::state::PluginState;
use super::{CacheOutcome, CallNotes, Inspection, PluginLimits, RouteCall, Runtime};
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
            overran: false,
            notes: CallNotes::default(),
        }
    }
}

/// One running routing policy. A fault discards the underlying wasm instance; the next
/// call starts a fresh one with the same settings.
pub struct RouterInstance {
    plugin: RouterPlugin,
    settings: Pairs,
    limits: PluginLimits,
    live: Option<Live>,
    started: u64,
    /// A call without a fiber ran to its deadline: later instances are called on one
    /// (yielding at every tick), so a policy that loops holds a thread once, not each time.
    overran: bool,
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

    /// Whether the live instance's `route` is called without a fiber (`None` before the
    /// first call).
    #[cfg(test)]
    pub(crate) fn calls_without_fiber(&self) -> Option<bool> {
        self.live
            .as_ref()
            .map(|live| live.store.data().never_yields)
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
        let fast = self.plugin.runtime.inner.route_call == RouteCall::Borrowed;
        // An instance that imports nothing that waits is called without a fiber on the fast
        // path, and so never yields: its calls run to the end or to their deadline on the
        // caller's thread.
        let without_fiber = fast
            && self.plugin.pre.never_waits
            && !self.plugin.runtime.inner.routing_on_fiber
            && !self.overran;
        store.data_mut().never_yields = without_fiber;
        begin_call(&mut store, self.limits.call_deadline);
        // Every line starts its instance the same way: instantiated (a failure ends here,
        // with what the call did noted), configured, and on the fast path its `route`
        // export checked against the types `$check` lowers and lifts.
        macro_rules! start {
            ($pre:expr, $check:path) => {{
                let bindings = match $pre.instantiate_async(&mut store).await {
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
                    $check(&route, &store).map_err(|e| instantiate_fault(&id, &e))?;
                    Some(route)
                } else {
                    None
                };
                (bindings, configured, route)
            }};
        }
        let (configured, route) =
            match &self.plugin.pre.line {
                RouterLine::V0_1(pre) => {
                    let (bindings, configured, route) = start!(pre, borrowed::check_route);
                    let route = match route {
                        Some(route) => Route::Borrowed(route),
                        None => Route::Generated(bindings),
                    };
                    (configured, route)
                }
                RouterLine::V0_2(pre) => {
                    let (bindings, configured, route) = start!(pre, roster::check_route);
                    let roster = Box::default();
                    (
                        configured,
                        Route::Roster {
                            bindings,
                            route,
                            roster,
                        },
                    )
                }
                RouterLine::V0_3(pre) => {
                    let (bindings, configured, route) = start!(pre, flat_route::check_route);
                    // Only a policy that imports `current-conversation` can ask for the
                    // conversation's strings: the others' calls skip holding them.
                    let asks =
                        self.plugin.info.imports.iter().any(|name| {
                            name.starts_with("centralino:plugin/current-conversation@")
                        });
                    let (roster, names) = (Box::default(), Box::default());
                    (
                        configured,
                        Route::Flat {
                            bindings,
                            route,
                            roster,
                            names,
                            asks,
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
            Err(e) => {
                let error = fault(&store, "configure", &e);
                if ran_out_without_yielding(&error, &store) {
                    self.overrun();
                }
                Err(error)
            }
        }
    }

    /// A call of this policy ran to its deadline without yielding (any export of an
    /// instance called without a fiber): the next instances are called on one.
    fn overrun(&mut self) {
        tracing::warn!(plugin = %self.plugin.id, "ran past its deadline without yielding; its next instances are called on a fiber");
        self.overran = true;
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
        let swollen =
            result.is_ok() && (retire_if_swollen(&live.store, function) || live.route.names_full());
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
                if ran_out_without_yielding(&error, &live.store) {
                    self.overrun();
                }
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

/// Whether `error` is a call of an instance that never yields running to its deadline.
fn ran_out_without_yielding(error: &Error, store: &Store<PluginState>) -> bool {
    store.data().never_yields
        && matches!(
            error,
            Error::Fault {
                fault: Fault::Deadline,
                ..
            }
        )
}

#[cfg(test)]
mod tests {
    use super::super::fast_path::component;
    use super::super::{PluginLimits, Runtime};
    use crate::error::{Error, Fault};
    use crate::types::{
        Agent, MessageKind, Presence, QueueStats, RoutingAction, RoutingContext,
        RoutingConversation,
    };

    fn context(text: &str, agents: &[&str]) -> RoutingContext {
        RoutingContext {
            conversation: RoutingConversation {
                id: "c-1".to_string(),
                channel: "twitter".to_string(),
                account: "@tim".to_string(),
                brand: Some("tim".to_string()),
                language: Some("it".to_string()),
                customer: "cliente".to_string(),
                kind: MessageKind::PrivateMessage,
                text: text.to_string(),
                priority: 0,
                previous_agent: None,
                previous_agent_at: None,
                waiting_since: 1,
            },
            agents: agents
                .iter()
                .map(|id| Agent {
                    id: id.to_string(),
                    name: id.to_string(),
                    skills: vec!["tim".to_string()],
                    languages: vec!["it".to_string()],
                    accounts: vec!["@tim".to_string()],
                    capacity: 4,
                    load: 0,
                    presence: Presence::Online,
                    last_assigned_at: None,
                })
                .collect(),
            queue: QueueStats::default(),
            now: 2,
            roster_version: 1,
        }
    }

    fn instance(runtime: &Runtime, policy: &str, limits: PluginLimits) -> super::RouterInstance {
        runtime
            .load_router(component(policy))
            .unwrap()
            .instance(Vec::new(), limits)
    }

    #[tokio::test]
    async fn a_policy_importing_only_the_standard_streams_is_called_without_a_fiber_and_one_importing_more_on_one()
     {
        let runtime = Runtime::new().unwrap();
        for (policy, without_fiber) in [
            // Rust policies on `std`: streams, environment, exit, the terminals.
            ("least-loaded", true),
            ("hostile-router", true),
            ("least-loaded-v0-1-0", true),
            // Imports WASI's monotonic clock as well.
            ("wasi-clock-router", false),
        ] {
            let mut router = instance(&runtime, policy, PluginLimits::default());
            let decision = router
                .route(&context("ciao", &["anna", "bruno"]))
                .await
                .unwrap();
            assert_eq!(
                decision.action,
                RoutingAction::Assign("anna".to_string()),
                "{policy}: {}",
                decision.reason
            );
            assert_eq!(
                router.calls_without_fiber(),
                Some(without_fiber),
                "{policy}"
            );
        }
    }

    /// Asks `router`'s hostile policy to loop; the call must end at its deadline.
    async fn loops_to_its_deadline(router: &mut super::RouterInstance) {
        let err = router.route(&context("loop", &["anna"])).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Fault {
                    fault: Fault::Deadline,
                    function: "route",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_route_without_a_fiber_that_never_returns_is_cut_off_at_its_deadline_and_later_instances_yield()
     {
        let runtime = Runtime::new().unwrap();
        let limits = PluginLimits {
            call_deadline: std::time::Duration::from_millis(50),
            ..PluginLimits::default()
        };
        let mut router = instance(&runtime, "hostile-router", limits);
        router.ready().await.unwrap();
        assert_eq!(router.calls_without_fiber(), Some(true));
        let started = std::time::Instant::now();
        loops_to_its_deadline(&mut router).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The next instance decides, on a fiber from now on: a policy that loops holds a
        // thread once, then yields at every tick like a connector.
        let decision = router.route(&context("ciao", &["anna"])).await.unwrap();
        assert_eq!(decision.action, RoutingAction::Assign("anna".to_string()));
        assert_eq!(router.instances_started(), 2);
        assert_eq!(router.calls_without_fiber(), Some(false));
        loops_to_its_deadline(&mut router).await;
        let decision = router.route(&context("ciao", &["anna"])).await.unwrap();
        assert_eq!(decision.action, RoutingAction::Assign("anna".to_string()));
        assert_eq!(router.calls_without_fiber(), Some(false));
    }

    #[tokio::test]
    async fn an_embedder_may_have_every_policy_called_on_a_fiber() {
        let runtime = Runtime::builder().routing_on_fiber(true).build().unwrap();
        let mut router = instance(&runtime, "least-loaded", PluginLimits::default());
        let decision = router
            .route(&context("ciao", &["anna", "bruno"]))
            .await
            .unwrap();
        assert_eq!(decision.action, RoutingAction::Assign("anna".to_string()));
        assert_eq!(router.calls_without_fiber(), Some(false));
    }

    #[tokio::test]
    async fn the_guest_clock_reading_comes_back_through_full_wasi() {
        let runtime = Runtime::new().unwrap();
        let mut router = instance(&runtime, "wasi-clock-router", PluginLimits::default());
        let decision = router.route(&context("ciao", &["anna"])).await.unwrap();
        let reading = decision
            .reason
            .strip_prefix("wasi-clock-router: first candidate at ")
            .unwrap_or_else(|| panic!("{}", decision.reason));
        assert!(reading.parse::<u64>().unwrap() > 0, "{reading}");
    }

    /// A 0.3 instance told the most strings it may be (`flat_route::MAX_NAMES`) is
    /// replaced after that call, and the fresh one, told its strings again, sees every
    /// conversation as the host holds it.
    #[tokio::test]
    async fn an_instance_told_too_many_strings_is_replaced_and_decides_as_before() {
        let runtime = Runtime::new().unwrap();
        let mut router = instance(&runtime, "roster-echo", PluginLimits::default());
        let mut context = context("conversation", &["anna"]);
        // Twitter, the account and the brand, then a new language each time.
        for n in 0..super::flat_route::MAX_NAMES + 10 {
            let language = format!("x-{n}");
            context.conversation.language = Some(language.clone());
            let decision = router.route(&context).await.unwrap();
            let echoed = decision.reason.split('|').nth(4).unwrap().to_string();
            assert_eq!(echoed, format!("{:?}", Some(&language)), "conversation {n}");
        }
        assert_eq!(router.instances_started(), 2);
    }

    /// What the host reads back from a 0.3 `route` by hand (`route_answer.rs`): every
    /// result the canonical ABI does not define is a fault naming the plugin and `route`,
    /// never a panic nor a decision, and the next call, on a fresh instance, decides.
    #[tokio::test]
    async fn a_malformed_route_result_is_a_fault_of_the_plugin_and_the_next_call_decides() {
        let runtime = Runtime::new().unwrap();
        let mut router = instance(&runtime, "malformed-router", PluginLimits::default());
        let mut context = context("ciao", &["anna"]);
        let well_formed = router.route(&context).await.unwrap();
        assert_eq!(well_formed.action, RoutingAction::Pass);
        assert_eq!(well_formed.reason, "malformed-router");
        for (mode, what) in [
            (1, "a result tag past err"),
            (2, "an action tag past pass"),
            (3, "a priority tag past some"),
            (4, "a narrow outside memory"),
            (5, "a misaligned narrow"),
            (6, "a reason outside memory"),
            (7, "a reason that is not UTF-8"),
            (8, "an operator handle never announced"),
        ] {
            context.conversation.priority = mode;
            match router.route(&context).await {
                Err(Error::Fault {
                    plugin, function, ..
                }) => {
                    assert_eq!(plugin.name, "malformed-router", "{what}");
                    assert_eq!(function, "route", "{what}");
                }
                other => panic!("{what}: expected a fault of the plugin, got {other:?}"),
            }
            context.conversation.priority = 0;
            let decision = router.route(&context).await.unwrap();
            assert_eq!(decision.reason, "malformed-router", "after {what}");
        }
        assert_eq!(router.instances_started(), 9);
    }
}
