//! Shadow routing: a candidate chain decides beside the active one on live traffic, and
//! only its disagreements are kept.
//!
//! Before switching chains an admin wants to know how often the new one would decide
//! differently, and on what. The shadow chain sees exactly the context the active chain
//! saw, and its decision is compared on the outcome (which operator, or the queue). The
//! engine never acts on it: assignments, loads and the queue follow the active chain
//! only. Each disagreement is counted and logged at `info` with both reasons; the last few
//! are kept for an admin page.

use std::collections::VecDeque;

use serde::Serialize;

use super::chain::{ChainDecision, Outcome, PolicyChain};
use crate::types::RoutingContext;

/// How many disagreements [`Shadow::recent`] keeps.
const RECENT: usize = 20;

/// Counters of a shadow chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShadowStats {
    /// Decisions compared.
    pub compared: u64,
    /// Decisions where the shadow chain chose another outcome.
    pub disagreed: u64,
    /// Failed stages of the shadow chain (they never affect the active decision).
    pub stage_failures: u64,
}

/// One decision the two chains saw differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Disagreement {
    /// The conversation.
    pub conversation: String,
    /// When.
    pub at: u64,
    /// What the active chain did.
    pub active: Outcome,
    /// Why.
    pub active_reason: String,
    /// What the shadow chain would have done.
    pub shadow: Outcome,
    /// Why.
    pub shadow_reason: String,
}

/// A candidate chain running beside the active one.
#[derive(Debug)]
pub struct Shadow {
    chain: PolicyChain,
    stats: ShadowStats,
    recent: VecDeque<Disagreement>,
}

impl Shadow {
    /// Runs `chain` in shadow.
    pub fn new(chain: PolicyChain) -> Self {
        Shadow {
            chain,
            stats: ShadowStats::default(),
            recent: VecDeque::new(),
        }
    }

    /// The chain as written.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn spec(&self) -> &str {
        self.chain.spec()
    }

    /// Counters so far.
    pub fn stats(&self) -> ShadowStats {
        ShadowStats {
            stage_failures: self.chain.total_failures(),
            ..self.stats
        }
    }

    /// The latest disagreements, oldest first.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn recent(&self) -> impl Iterator<Item = &Disagreement> {
        self.recent.iter()
    }

    /// Lets the shadow chain decide on the same context and records whether it agrees.
    pub(crate) async fn compare(&mut self, mut context: RoutingContext, active: &ChainDecision) {
        let conversation = context.conversation.id.clone();
        let at = context.now;
        let shadow = self.chain.decide(&mut context).await;
        self.stats.compared += 1;
        if shadow.outcome == active.outcome {
            return;
        }
        self.stats.disagreed += 1;
        tracing::info!(
            %conversation,
            active = ?active.outcome,
            active_reason = %active.reason,
            shadow = ?shadow.outcome,
            shadow_reason = %shadow.reason,
            "shadow chain `{}` disagrees",
            self.chain.spec()
        );
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Disagreement {
            conversation,
            at,
            active: active.outcome.clone(),
            active_reason: active.reason.clone(),
            shadow: shadow.outcome,
            shadow_reason: shadow.reason,
        });
    }
}
