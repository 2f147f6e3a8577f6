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

centralino_sdk::small_object_allocator!();

use centralino_sdk::routing::{Decision, Operator, RoutingContext};
use centralino_sdk::{PluginError, Result, Router, reason};

struct RoundRobin;

fn eligible(op: &Operator<'_>) -> bool {
    op.is_available()
}

/// Never-assigned operators first, then the one assigned longest ago.
fn rotation_key(op: &Operator<'_>) -> u64 {
    op.last_assigned_at.map_or(0, |at| at.saturating_add(1))
}

impl Router for RoundRobin {
    fn configure(settings: Vec<(String, String)>) -> Result<Self> {
        match settings.first() {
            None => Ok(RoundRobin),
            Some((key, _)) => Err(PluginError::InvalidInput(format!(
                "round-robin takes no settings, got `{key}`"
            ))),
        }
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        // A loop keeping the best so far, not `min_by_key`, which moves the 72-byte
        // `Operator`s through every comparison (see the SDK's `Operator`). Only a strictly
        // longer wait replaces the best, so candidate order breaks ties.
        let mut chosen: Option<Operator<'_>> = None;
        for op in context.candidates() {
            if eligible(&op)
                && chosen
                    .as_ref()
                    .is_none_or(|best| rotation_key(&op) < rotation_key(best))
            {
                chosen = Some(op);
            }
        }
        Ok(match chosen {
            Some(op) => {
                Decision::assign(&op, reason!("round-robin: ", op.id, " is next in rotation"))
            }
            None => Decision::narrow([], "round-robin: nobody online with free capacity"),
        })
    }
}

centralino_sdk::export_router!(RoundRobin);
