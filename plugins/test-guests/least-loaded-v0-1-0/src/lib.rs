//! Test guest: `least-loaded` as it was built against contract 0.1.0 (its source at the
//! last 0.1 release, bound to the frozen `wit/since_v0.1.0`), so a host serving later
//! lines is tested with a 0.1 policy in the same chain as theirs, and the 0.1 fast path
//! stays measured. Named `least-loaded-v0-1-0` in its metadata (its crate name), so tests and
//! benches load it beside the 0.3 build of `least-loaded`.
//!
//! `least-loaded`: a capacity-aware routing policy that gives the conversation to the
//! operator with the most room.
//!
//! An operator is eligible when they are online and hold fewer conversations than their
//! capacity. Among the eligible, the lowest *load ratio* (`load / capacity`) wins, so an
//! operator with 1 of 4 seats taken comes before one with 1 of 2: plain load counts would
//! overfill operators with small capacities. Equal ratios go to whoever was given a
//! conversation longest ago (never assigned first), then to the earlier candidate, so a
//! ranking stage before this one still counts.
//!
//! The policy keeps no state: load and `last-assigned-at` come from the host with every
//! call. When nobody is eligible it narrows the candidates to none, which queues the
//! conversation. It takes no settings.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "routing-policy" });
centralino_sdk::plugin_metadata!(contract = "0.1.0");
centralino_sdk::small_object_allocator!();

use std::cmp::Ordering;

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{Action, Agent, Context, Decision, Guest, Presence};

struct LeastLoaded;

fn eligible(agent: &Agent) -> bool {
    agent.presence == Presence::Online && agent.load < agent.capacity
}

/// Compares `a.load / a.capacity` with `b.load / b.capacity` without floating point:
/// cross-multiplying in `u64` is exact for any `u32` operands.
fn by_load_ratio(a: &Agent, b: &Agent) -> Ordering {
    let left = u64::from(a.load) * u64::from(b.capacity);
    let right = u64::from(b.load) * u64::from(a.capacity);
    left.cmp(&right)
}

/// Never-assigned operators sort first, then the longest idle.
fn recency_key(agent: &Agent) -> u64 {
    agent.last_assigned_at.map_or(0, |at| at.saturating_add(1))
}

impl Guest for LeastLoaded {
    fn configure(settings: Vec<(String, String)>) -> Result<(), PluginError> {
        match settings.first() {
            None => Ok(()),
            Some((key, _)) => Err(PluginError::InvalidInput(format!(
                "least-loaded takes no settings, got `{key}`"
            ))),
        }
    }

    fn route(context: Context) -> Result<Decision, PluginError> {
        // `min_by` keeps the first of equal elements, so candidate order breaks the last tie.
        let chosen = context
            .agents
            .iter()
            .filter(|agent| eligible(agent))
            .min_by(|a, b| by_load_ratio(a, b).then_with(|| recency_key(a).cmp(&recency_key(b))));
        Ok(match chosen {
            Some(agent) => Decision {
                action: Action::Assign(agent.id.clone()),
                priority: None,
                reason: format!(
                    "least-loaded: {} holds {} of {}",
                    agent.id, agent.load, agent.capacity
                ),
            },
            None => Decision {
                action: Action::Narrow(Vec::new()),
                priority: None,
                reason: "least-loaded: nobody online with free capacity".to_string(),
            },
        })
    }
}

export!(LeastLoaded);
