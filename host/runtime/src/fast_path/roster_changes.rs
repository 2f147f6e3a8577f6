//! The roster kept in a 0.2 or 0.3 instance through a day of changes.

use super::{ROSTER_ECHOES, Rng, echo, instance, seed};
use crate::route_call::RouteCall;
use crate::types::{Agent, RoutingAction};

/// A roster that changes the way the engine's does: loads and presence move with the same
/// version; an operator added, removed or reconfigured brings a new version; stages see
/// subsets in other orders. A 0.2 or 0.3 instance, told only what changed, sees every
/// call's candidates exactly as the host holds them, and its decisions name the right
/// operator.
#[tokio::test]
async fn the_roster_kept_in_a_0_2_or_0_3_instance_follows_every_change() {
    for guest in ROSTER_ECHOES {
        roster_follows_every_change(guest).await;
    }
}

async fn roster_follows_every_change(guest: &str) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut policy = instance(guest, &[], RouteCall::Borrowed);
    let mut roster: Vec<Agent> = (0..30).map(|_| rng.agent()).collect();
    for (n, agent) in roster.iter_mut().enumerate() {
        agent.id = format!("op-{n}");
    }
    let mut version = 1;
    let mut next_id = roster.len();
    for step in 0..400 {
        match rng.below(6) {
            0 => {
                let at = rng.below(roster.len() as u64) as usize;
                roster[at].skills = rng.strings();
                roster[at].capacity = rng.u32();
                version += 1;
            }
            1 => {
                let mut agent = rng.agent();
                agent.id = format!("op-{next_id}");
                next_id += 1;
                roster.push(agent);
                version += 1;
            }
            2 if roster.len() > 1 => {
                let at = rng.below(roster.len() as u64) as usize;
                roster.remove(at);
                version += 1;
            }
            _ => {
                for agent in &mut roster {
                    agent.load = rng.u32();
                    agent.presence = rng.presence();
                    agent.last_assigned_at = rng.option(Rng::u64);
                }
            }
        }
        let mut context = rng.context(Some("echo"));
        context.roster_version = if rng.chance(10) { 0 } else { version };
        context.agents = roster.clone();
        if rng.chance(3) {
            // A later stage: a subset, reordered.
            context.agents.retain(|_| rng.chance(2));
            context.agents.reverse();
        }
        let decision = policy.route(&context).await.unwrap();
        assert_eq!(
            decision.reason,
            echo(&context.agents),
            "{guest}, step {step} of seed {seed}: the instance's roster drifted from the host's"
        );
        context.conversation.text = "first".to_string();
        let decision = policy.route(&context).await.unwrap();
        match context.agents.first() {
            Some(first) => assert_eq!(
                decision.action,
                RoutingAction::Assign(first.id.clone()),
                "step {step} of seed {seed}"
            ),
            None => assert_eq!(decision.action, RoutingAction::Narrow(Vec::new())),
        }
        context.conversation.text = "narrow".to_string();
        let decision = policy.route(&context).await.unwrap();
        let reversed: Vec<String> = context.agents.iter().rev().map(|a| a.id.clone()).collect();
        assert_eq!(
            decision.action,
            RoutingAction::Narrow(reversed),
            "step {step} of seed {seed}"
        );
    }
    assert_eq!(policy.instances_started(), 1);
}
