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
//! The policy keeps no state of its own: the SDK keeps the operators' profiles the host
//! announced (since contract 0.2), and load and `last-assigned-at` come with every call.
//! It reads nothing of the conversation, so a decision makes no call to the host. When
//! nobody is eligible it narrows the candidates to none, which queues the conversation. It
//! takes no settings.

centralino_sdk::small_object_allocator!();

use std::cmp::Ordering;

use centralino_sdk::routing::{Decision, Operator, RoutingContext};
use centralino_sdk::{PluginError, Result, Router, reason};

struct LeastLoaded;

fn eligible(op: &Operator<'_>) -> bool {
    op.is_available()
}

/// Compares `a.load / a.capacity` with `b.load / b.capacity` without floating point:
/// cross-multiplying in `u64` is exact for any `u32` operands.
fn by_load_ratio(a: &Operator<'_>, b: &Operator<'_>) -> Ordering {
    let left = u64::from(a.load) * u64::from(b.capacity);
    let right = u64::from(b.load) * u64::from(a.capacity);
    left.cmp(&right)
}

/// Never-assigned operators sort first, then the longest idle.
fn recency_key(op: &Operator<'_>) -> u64 {
    op.last_assigned_at.map_or(0, |at| at.saturating_add(1))
}

impl Router for LeastLoaded {
    fn configure(settings: Vec<(String, String)>) -> Result<Self> {
        match settings.first() {
            None => Ok(LeastLoaded),
            Some((key, _)) => Err(PluginError::InvalidInput(format!(
                "least-loaded takes no settings, got `{key}`"
            ))),
        }
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        // A loop keeping the best so far, not `min_by`: the fold moves both `Operator`s
        // (72 bytes each) through every comparison, which LLVM leaves in linear memory
        // in wasm, about 100 instructions per candidate (`BENCHMARKS.md` §1). Only a
        // strictly better candidate replaces the best, so candidate order breaks the last
        // tie.
        let mut chosen: Option<Operator<'_>> = None;
        for op in context.candidates() {
            if !eligible(&op) {
                continue;
            }
            let better = chosen.as_ref().is_none_or(|best| {
                by_load_ratio(&op, best)
                    .then_with(|| recency_key(&op).cmp(&recency_key(best)))
                    .is_lt()
            });
            if better {
                chosen = Some(op);
            }
        }
        Ok(match chosen {
            Some(op) => Decision::assign(
                &op,
                reason!(
                    "least-loaded: ",
                    op.id,
                    " holds ",
                    op.load,
                    " of ",
                    op.capacity
                ),
            ),
            None => Decision::narrow([], "least-loaded: nobody online with free capacity"),
        })
    }
}

centralino_sdk::export_router!(LeastLoaded);
