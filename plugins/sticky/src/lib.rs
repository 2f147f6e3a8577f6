//! `sticky`: a returning customer goes back to the operator who helped them last, when
//! that operator can take the conversation now and the last contact is recent.
//!
//! The stage assigns the conversation's `previous-agent` when all of these hold:
//!
//! - they are still among the candidates (an earlier stage, such as `skills`, did not drop
//!   them);
//! - they are online and hold fewer conversations than their capacity;
//! - `previous-agent-at` is no older than `window_minutes` at decision time.
//!
//! Otherwise it has no opinion (`pass`): an away or full operator must not keep a customer
//! waiting, and after the window a stranger is as good as anyone. The host supplies the
//! history with every call, so the policy keeps no state; the previous operator comes as
//! a handle the instance knows when they are among the candidates, so then the decision
//! makes no call to the host (the SDK reads their id from the roster).
//!
//! Settings: `window_minutes` (default 1440, one day; `0` means the same minute only).

centralino_sdk::small_object_allocator!();

use centralino_sdk::routing::{Decision, Presence, RoutingContext};
use centralino_sdk::{PluginError, Result, Router, reason};

/// One day: a customer who writes again the next morning still finds their operator.
const DEFAULT_WINDOW_MINUTES: u64 = 1440;

struct Sticky {
    /// The stickiness window in milliseconds (`window_minutes`).
    window_ms: u64,
}

impl Router for Sticky {
    fn configure(settings: Vec<(String, String)>) -> Result<Self> {
        let mut window_minutes = DEFAULT_WINDOW_MINUTES;
        for (key, value) in &settings {
            match key.as_str() {
                "window_minutes" => {
                    window_minutes = value.trim().parse().map_err(|_| {
                        PluginError::InvalidInput(format!(
                            "sticky: `window_minutes` must be a whole number of minutes, got `{value}`"
                        ))
                    })?;
                }
                other => {
                    return Err(PluginError::InvalidInput(format!(
                        "sticky: unknown setting `{other}` (known: `window_minutes`)"
                    )));
                }
            }
        }
        Ok(Sticky {
            window_ms: window_minutes.saturating_mul(60_000),
        })
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        let conversation = &context.conversation;
        // The time first: without one there is nothing to stick to, and the previous
        // operator's id is not asked of the host.
        let Some((previous, at)) = conversation
            .previous_agent_at
            .and_then(|at| Some((conversation.previous_agent()?, at)))
        else {
            return Ok(Decision::pass("sticky: no previous operator"));
        };
        let age_ms = context.now.saturating_sub(at);
        if age_ms > self.window_ms {
            return Ok(Decision::pass(reason!(
                "sticky: ",
                previous,
                " helped ",
                age_ms / 60_000,
                " min ago, outside the window"
            )));
        }
        let Some(op) = context.candidate(previous) else {
            return Ok(Decision::pass(reason!(
                "sticky: ",
                previous,
                " is not among the candidates"
            )));
        };
        if op.presence != Presence::Online {
            return Ok(Decision::pass(reason!(
                "sticky: ",
                previous,
                " is not online"
            )));
        }
        if op.load >= op.capacity {
            return Ok(Decision::pass(reason!(
                "sticky: ",
                previous,
                " is at capacity"
            )));
        }
        Ok(Decision::assign(
            &op,
            reason!(
                "sticky: back to ",
                previous,
                ", who helped ",
                age_ms / 60_000,
                " min ago"
            ),
        ))
    }
}

centralino_sdk::export_router!(Sticky);
