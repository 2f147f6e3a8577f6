//! How a routing policy's `route` is called: the fast path or the generated bindings.

use wasmtime::Store;
use wasmtime::component::Func;

use super::bindings::{latest, v0_1, v0_2, v0_3};
use super::borrowed;
use super::flat_route::{self, Names};
use super::roster::{self, Roster};
use super::state::PluginState;
use crate::error::PluginFailure;
use crate::types::{RoutingContext, RoutingDecision};

/// How a routing policy's `route` is called; chosen once, when the [`Runtime`](super::Runtime) is built.
///
/// The fast path ([`borrowed`](super::borrowed)) lowers the routing context straight from the host's types
/// through wasmtime's unstable `component::__internal` API, with `unsafe` code; it is why
/// wasmtime is held to one major version. The generated bindings' ordinary typed call
/// clones every string of the context into the contract's owned types first (the cost
/// [`borrowed`](super::borrowed) removes) and relies on nothing internal. Both give the same
/// decisions: `runtime::fast_path` checks it over thousands of random contexts for every
/// routing policy.
///
/// By default the runtime takes the fast path when [`borrowed::self_check`](super::borrowed::self_check) passes (the
/// layout the `unsafe` code writes is the canonical ABI's and the generated bindings'),
/// and otherwise warns once and takes the generated path. For a maintainer upgrading
/// wasmtime: if the `borrowed::tests` or `runtime::fast_path` tests fail, decisions are
/// still right through the generated path; to ship before the fast path is repaired, make
/// [`RouteCall::chosen`] return [`RouteCall::Generated`] (one line), and if `__internal` no
/// longer compiles, reduce `borrowed.rs` to the conversion to `router::Context` (and
/// `roster.rs` and `context_lowering.rs`, the 0.2 lowering, to the generated call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteCall {
    /// The context borrowed from the host's types, lowered by [`borrowed`](super::borrowed).
    Borrowed,
    /// The generated bindings' typed `call_route`, with an owned `router::Context`.
    Generated,
}

impl RouteCall {
    /// `forced` if given, else the fast path if `check` (the fast path's self-check) passed.
    pub(super) fn chosen(
        forced: Option<RouteCall>,
        check: impl FnOnce() -> Result<(), String>,
    ) -> Self {
        if let Some(call) = forced {
            return call;
        }
        match check() {
            Ok(()) => RouteCall::Borrowed,
            Err(difference) => {
                tracing::warn!(
                    "routing decisions go through the generated bindings (slower): the fast \
                     path's assumptions do not hold in this wasmtime: {difference}"
                );
                RouteCall::Generated
            }
        }
    }
}

pub(crate) struct Live {
    pub(crate) store: Store<PluginState>,
    pub(crate) route: Route,
    /// Set while a call runs; still set at the next call, the previous call's future was
    /// dropped midway and the instance is replaced.
    pub(crate) in_call: bool,
}

/// How a live instance's `route` is called ([`RouteCall`]), by contract line.
pub(crate) enum Route {
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
    /// 0.3: the roster and the repeating strings kept in the instance
    /// ([`super::flat_route`]); `route` is `Some` on the fast path (flat values, the
    /// candidates lowered in one copy), `None` through the generated bindings.
    Flat {
        bindings: v0_3::routing_policy::RoutingPolicy,
        route: Option<Func>,
        roster: Box<Roster>,
        names: Box<Names>,
        /// The policy imports `current-conversation`: each call holds the conversation's
        /// strings for it.
        asks: bool,
    },
}

impl Route {
    /// Whether the instance was told as many strings as one may be (it is replaced
    /// after the call, [`flat_route::MAX_NAMES`]).
    pub(crate) fn names_full(&self) -> bool {
        matches!(self, Route::Flat { names, .. } if names.is_full())
    }
}

/// Why a call returned no decision although the guest ran to the end.
pub(crate) enum Refusal {
    /// The policy's own error.
    Plugin(PluginFailure),
    /// A 0.2 policy named a handle it was never told about.
    UnknownHandle(String),
}

/// Calls `route` on `live` the way its line and the runtime say; returns the outcome and
/// the export that ran last (`update-roster` when announcing operators failed).
pub(crate) async fn call_route(
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
            let arguments = (borrowed::ContextRef::from(context),);
            let route = borrowed::route_func(*route);
            let r = if store.data().never_yields {
                route.call(&mut *store, arguments)
            } else {
                route.call_async(&mut *store, arguments).await
            };
            let r = r.map(|(r,)| r.map(RoutingDecision::from).map_err(PluginFailure::from));
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
                let upserts: Vec<v0_2::router::Agent> =
                    changes.upserts.into_iter().map(Into::into).collect();
                let told = bindings
                    .centralino_plugin_router()
                    .call_update_roster(&mut *store, &upserts, &changes.removed)
                    .await;
                if let Err(e) = told {
                    return (Err(e), "update-roster");
                }
            }
            let r = match route {
                Some(route) => {
                    let arguments = (roster.context(context),);
                    let route = roster::route_func(*route);
                    let r = if store.data().never_yields {
                        route.call(&mut *store, arguments)
                    } else {
                        route.call_async(&mut *store, arguments).await
                    };
                    r.map(|(r,)| r.0)
                }
                None => bindings
                    .centralino_plugin_router()
                    .call_route(&mut *store, &roster.owned_context(context))
                    .await
                    .map(|r| r.map(Into::into)),
            };
            (decided(roster, r), "route")
        }
        Route::Flat {
            bindings,
            route,
            roster,
            names,
            asks,
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
            let conversation = names.conversation(context, roster);
            if !names.new.is_empty() {
                let told = bindings
                    .centralino_plugin_router()
                    .call_update_names(&mut *store, &names.new)
                    .await;
                if let Err(e) = told {
                    return (Err(e), "update-names");
                }
            }
            if *asks {
                store.data_mut().current.hold(context);
            }
            let r = match route {
                Some(route) => {
                    let arguments = (conversation, roster.candidates(), context.now);
                    let route = flat_route::route_func(*route);
                    let r = if store.data().never_yields {
                        route.call(&mut *store, arguments)
                    } else {
                        route.call_async(&mut *store, arguments).await
                    };
                    r.map(|(r,)| r.0)
                }
                None => {
                    let candidates: Vec<_> =
                        roster.candidates().iter().map(|row| row.owned()).collect();
                    bindings
                        .centralino_plugin_router()
                        .call_route(&mut *store, conversation.into(), &candidates, context.now)
                        .await
                }
            };
            if *asks {
                store.data_mut().current.clear();
            }
            (decided(roster, r), "route")
        }
    }
}

/// A 0.2 or 0.3 `route`'s outcome in the host's terms: the decision's handles back to
/// operator ids (a handle the instance was never told about is refused).
fn decided(
    roster: &Roster,
    r: wasmtime::Result<Result<latest::router::Decision, latest::types::PluginError>>,
) -> wasmtime::Result<Result<RoutingDecision, Refusal>> {
    r.map(|r| match r {
        Ok(decision) => roster.decision(decision).map_err(Refusal::UnknownHandle),
        Err(e) => Err(Refusal::Plugin(e.into())),
    })
}
