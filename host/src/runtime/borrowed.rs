//! The routing context lowered into the guest straight from the host's own types.
//!
//! The generated `call_route` takes the contract's owned `context`, so calling it means
//! cloning every string of every operator first and freeing them after: measured at 40% of
//! a decision's time with 9 operators (`BENCHMARKS.md`, decision cost). These views borrow
//! the host's [`RoutingContext`] instead; wasmtime copies the bytes into guest memory
//! either way. Field names and order mirror `router.wit` of the frozen v0.1.0 contract,
//! and the signature is checked against the component once per instance
//! ([`check_route`]) before any call skips the check ([`route_func`]).

#![allow(missing_docs)]

use wasmtime::AsContext;
use wasmtime::component::{ComponentType, Func, Lower, TypedFunc};

use super::bindings::v0_1::{router, types};
use crate::types::{Agent, Presence, RoutingContext};

/// `router.agent`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct AgentRef<'a> {
    id: &'a str,
    name: &'a str,
    skills: &'a [String],
    languages: &'a [String],
    accounts: &'a [String],
    capacity: u32,
    load: u32,
    presence: router::Presence,
    #[component(name = "last-assigned-at")]
    last_assigned_at: Option<u64>,
}

/// `router.conversation`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct ConversationRef<'a> {
    id: &'a str,
    channel: &'a str,
    account: &'a str,
    brand: Option<&'a str>,
    language: Option<&'a str>,
    customer: &'a str,
    kind: types::MessageKind,
    text: &'a str,
    priority: u8,
    #[component(name = "previous-agent")]
    previous_agent: Option<&'a str>,
    #[component(name = "previous-agent-at")]
    previous_agent_at: Option<u64>,
    #[component(name = "waiting-since")]
    waiting_since: u64,
}

/// `router.context`, borrowed (the agents' list is the only allocation).
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct ContextRef<'a> {
    conversation: ConversationRef<'a>,
    agents: Vec<AgentRef<'a>>,
    queue: router::QueueStats,
    now: u64,
}

fn agent(a: &Agent) -> AgentRef<'_> {
    AgentRef {
        id: &a.id,
        name: &a.name,
        skills: &a.skills,
        languages: &a.languages,
        accounts: &a.accounts,
        capacity: a.capacity,
        load: a.load,
        presence: match a.presence {
            Presence::Online => router::Presence::Online,
            Presence::Away => router::Presence::Away,
            Presence::Offline => router::Presence::Offline,
        },
        last_assigned_at: a.last_assigned_at,
    }
}

impl<'a> From<&'a RoutingContext> for ContextRef<'a> {
    fn from(c: &'a RoutingContext) -> Self {
        let conv = &c.conversation;
        ContextRef {
            conversation: ConversationRef {
                id: &conv.id,
                channel: &conv.channel,
                account: &conv.account,
                brand: conv.brand.as_deref(),
                language: conv.language.as_deref(),
                customer: &conv.customer,
                kind: conv.kind.into(),
                text: &conv.text,
                priority: conv.priority,
                previous_agent: conv.previous_agent.as_deref(),
                previous_agent_at: conv.previous_agent_at,
                waiting_since: conv.waiting_since,
            },
            agents: c.agents.iter().map(agent).collect(),
            queue: router::QueueStats {
                waiting: c.queue.waiting,
                oldest_wait_ms: c.queue.oldest_wait_ms,
                average_handle_ms: c.queue.average_handle_ms,
            },
            now: c.now,
        }
    }
}

/// What `route` returns.
pub(super) type RouteResult = (Result<router::Decision, types::PluginError>,);

/// Checks that `func` (the instance's `route` export) has the signature [`route_func`]
/// assumes.
pub(super) fn check_route(func: &Func, store: impl AsContext) -> wasmtime::Result<()> {
    func.typed::<(ContextRef<'static>,), RouteResult>(store)
        .map(|_| ())
}

/// `route` typed for borrowed arguments, without a type check per call.
#[allow(unsafe_code)]
pub(super) fn route_func<'a>(func: Func) -> TypedFunc<(ContextRef<'a>,), RouteResult> {
    // SAFETY: `func` is the `route` export of an instance whose signature was checked
    // with `check_route` when the instance started (`RouterInstance::ready`); the check
    // does not depend on the lifetime, and the generated bindings call it the same way.
    unsafe { TypedFunc::new_unchecked(func) }
}
