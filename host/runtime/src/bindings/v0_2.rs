//! Contract 0.2 (`wit/since_v0.2.0`): its generated bindings and the adapter that keeps
//! 0.2 plugins running on a host written against the latest line ([`super::latest`]).
//!
//! 0.3 changed only routing (the `route` call's shape, `update-names`, the
//! `current-conversation` import); everything a connector exchanges is the same in both
//! lines. So 0.2's `types` interface is bound to the latest line's generated types (the
//! component model checks types by structure, not by the package version that named
//! them), the connector's own records are converted field by field, and the host
//! functions 0.2 plugins import call the latest line's implementations. 0.2 routing
//! policies keep their own path: the host's context lowered straight into 0.2's
//! `router.context` (`crate::context_lowering`), the roster kept in the instance as under
//! 0.3 (`crate::roster`).

pub(crate) mod channel {
    wasmtime::component::bindgen!({
        path: "wit/since_v0.2.0",
        world: "channel",
        imports: {
            "centralino:plugin/http.fetch": async,
            default: tracing,
        },
        exports: { default: async },
        with: {
            "centralino:plugin/types": crate::bindings::v0_3::channel::centralino::plugin::types,
        },
    });
}

pub(crate) mod routing_policy {
    wasmtime::component::bindgen!({
        path: "wit/since_v0.2.0",
        world: "routing-policy",
        imports: { default: tracing },
        exports: { default: async },
        with: {
            "centralino:plugin/types": crate::bindings::v0_3::channel::centralino::plugin::types,
            "centralino:plugin/log": super::channel::centralino::plugin::log,
            "centralino:plugin/clock": super::channel::centralino::plugin::clock,
        },
    });
}

pub(crate) use channel::centralino::plugin::{clock, http, log, signing};
pub(crate) use channel::exports::centralino::plugin::connector;
pub(crate) use routing_policy::exports::centralino::plugin::router;

use super::latest;
use crate::state::PluginState;

// What 0.2 plugins import: the latest line's implementations, types converted.
super::older::older_line_imports!();

// What 0.2 connectors exchange, to and from the latest line (messages, replies and errors
// are the latest line's own types already, so messages pass as they are).
super::older::older_line_connector!(std::convert::identity);

// Routing: what the roster (kept in the latest line's types) tells a 0.2 instance, and
// what the generated fallback's decision is in the latest line's types.

impl From<latest::router::Agent> for router::Agent {
    fn from(a: latest::router::Agent) -> Self {
        router::Agent {
            handle: a.handle,
            id: a.id,
            name: a.name,
            skills: a.skills,
            languages: a.languages,
            accounts: a.accounts,
            capacity: a.capacity,
        }
    }
}

impl From<router::Decision> for latest::router::Decision {
    fn from(d: router::Decision) -> Self {
        latest::router::Decision {
            action: match d.action {
                router::Action::Assign(handle) => latest::router::Action::Assign(handle),
                router::Action::Narrow(handles) => latest::router::Action::Narrow(handles),
                router::Action::Enqueue => latest::router::Action::Enqueue,
                router::Action::Pass => latest::router::Action::Pass,
            },
            priority: d.priority,
            reason: d.reason,
        }
    }
}
