//! `round-robin`: a routing policy that rotates fairly over the operators who can take a
//! conversation now.
//!
//! An operator is eligible when they are online and hold fewer conversations than their
//! capacity. Among the eligible, the one who was given a conversation longest ago wins
//! (someone never assigned goes first); ties keep the order of the candidates, so an
//! earlier ranking stage still counts. The policy keeps no state of its own: the host
//! reports `last-assigned-at`, so rotation survives restarts, instance replacement and
//! several hosts sharing the work.
//!
//! When nobody is eligible the policy narrows the candidates to none, which queues the
//! conversation.

wit_bindgen::generate!({ path: "../../wit", world: "routing-policy" });
centralino_sdk::plugin_metadata!();

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{Action, Agent, Context, Decision, Guest, Presence};

struct RoundRobin;

fn eligible(agent: &Agent) -> bool {
    agent.presence == Presence::Online && agent.load < agent.capacity
}

impl Guest for RoundRobin {
    fn configure(settings: Vec<(String, String)>) -> Result<(), PluginError> {
        match settings.first() {
            None => Ok(()),
            Some((key, _)) => Err(PluginError::InvalidInput(format!(
                "round-robin takes no settings, got `{key}`"
            ))),
        }
    }

    fn route(context: Context) -> Result<Decision, PluginError> {
        // `min_by_key` keeps the first of equal keys, so candidate order breaks ties.
        let chosen = context
            .agents
            .iter()
            .filter(|agent| eligible(agent))
            .min_by_key(|agent| agent.last_assigned_at.map_or(0, |at| at.saturating_add(1)));
        Ok(match chosen {
            Some(agent) => Decision {
                action: Action::Assign(agent.id.clone()),
                priority: None,
                reason: format!("round-robin: {} is next in rotation", agent.id),
            },
            None => Decision {
                action: Action::Narrow(Vec::new()),
                priority: None,
                reason: "round-robin: nobody online with free capacity".to_string(),
            },
        })
    }
}

export!(RoundRobin);
