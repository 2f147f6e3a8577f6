//! `least-loaded` as an Extism plug-in, the way an Extism user would write it: the host's
//! routing context arrives as JSON (`centralino::types::RoutingContext`'s serde form), the
//! decision leaves as JSON. The logic is `plugins/least-loaded`'s, line for line: the
//! lowest load ratio among those online with a free seat, then the longest idle, then
//! candidate order.

use std::cmp::Ordering;

use extism_pdk::{FnResult, Json, plugin_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Agent {
    id: String,
    capacity: u32,
    load: u32,
    presence: String,
    last_assigned_at: Option<u64>,
}

#[derive(Deserialize)]
struct Context {
    agents: Vec<Agent>,
}

#[derive(Serialize)]
struct Decision {
    action: Action,
    priority: Option<u8>,
    reason: String,
}

#[derive(Serialize)]
#[serde(tag = "action", content = "agents", rename_all = "kebab-case")]
enum Action {
    Assign(String),
    Narrow(Vec<String>),
}

fn eligible(agent: &Agent) -> bool {
    agent.presence == "online" && agent.load < agent.capacity
}

fn by_load_ratio(a: &Agent, b: &Agent) -> Ordering {
    let left = u64::from(a.load) * u64::from(b.capacity);
    let right = u64::from(b.load) * u64::from(a.capacity);
    left.cmp(&right)
}

fn recency_key(agent: &Agent) -> u64 {
    agent.last_assigned_at.map_or(0, |at| at.saturating_add(1))
}

#[plugin_fn]
pub fn route(Json(context): Json<Context>) -> FnResult<Json<Decision>> {
    let chosen = context
        .agents
        .iter()
        .filter(|agent| eligible(agent))
        .min_by(|a, b| by_load_ratio(a, b).then_with(|| recency_key(a).cmp(&recency_key(b))));
    Ok(Json(match chosen {
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
    }))
}
