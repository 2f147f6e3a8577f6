//! What a routing policy works with: the operators it may choose from, as plain values.
//!
//! Under contract 0.2 the host tells an instance about each operator once
//! (`update-roster`: id, name, skills, languages, accounts, capacity, under a number, the
//! *handle*) and each `route` call names its candidates by handle, with their live state
//! (load, presence, last assignment). The SDK keeps the announced profiles and joins the
//! two, so a policy still reads "the candidates, best first" and never sees a handle
//! unless it wants to:
//!
//! ```no_run
//! use centralino_sdk::prelude::*;
//! use centralino_sdk::routing::{Decision, RoutingContext};
//!
//! struct FirstFree;
//!
//! impl Router for FirstFree {
//!     fn configure(_settings: Vec<(String, String)>) -> Result<Self> {
//!         Ok(FirstFree)
//!     }
//!
//!     fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
//!         Ok(match context.candidates().find(|op| op.is_available()) {
//!             Some(op) => Decision::assign(&op, format!("first-free: {}", op.id)),
//!             None => Decision::pass("first-free: nobody free"),
//!         })
//!     }
//! }
//!
//! centralino_sdk::export_router!(FirstFree);
//! # fn main() {}
//! ```

use std::cell::RefCell;

pub use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    Action, Agent, AgentHandle, Candidate, Context, Conversation, Decision, Presence, QueueStats,
};
use crate::route_abi::CandidateRow;
use crate::{PluginError, Result};

thread_local! {
    /// The profiles the host announced, by handle. An instance is single-threaded.
    static ROSTER: RefCell<Vec<Option<Agent>>> = const { RefCell::new(Vec::new()) };
}

/// Applies an `update-roster` call: new or changed profiles, dropped handles.
pub(crate) fn update_roster(upserts: Vec<Agent>, removed: Vec<AgentHandle>) {
    ROSTER.with(|roster| {
        let Ok(mut roster) = roster.try_borrow_mut() else {
            return;
        };
        for handle in removed {
            if let Some(slot) = roster.get_mut(handle as usize) {
                *slot = None;
            }
        }
        for agent in upserts {
            let at = agent.handle as usize;
            if roster.len() <= at {
                roster.resize_with(at + 1, || None);
            }
            roster[at] = Some(agent);
        }
    });
}

/// Runs `f` on the context of one `route` call, its candidates joined with their
/// profiles. A candidate the host never announced, or a row whose bytes the contract does
/// not define, is an `invalid-input` error.
pub(crate) fn with_context<R>(
    conversation: &Conversation,
    candidates: &[CandidateRow],
    queue: QueueStats,
    now: u64,
    f: impl FnOnce(&RoutingContext<'_>) -> Result<R>,
) -> Result<R> {
    ROSTER.with(|roster| {
        let roster = roster
            .try_borrow()
            .map_err(|_| PluginError::transient("the plugin was re-entered"))?;
        for c in candidates {
            if !matches!(roster.get(c.agent as usize), Some(Some(_))) {
                return Err(PluginError::InvalidInput(format!(
                    "the host named operator handle {} without announcing it",
                    c.agent
                )));
            }
            if !c.is_well_formed() {
                return Err(PluginError::InvalidInput(format!(
                    "the host sent operator handle {} with a presence or last assignment \
                     contract 0.2 does not define",
                    c.agent
                )));
            }
        }
        f(&RoutingContext {
            roster: &roster,
            conversation,
            candidates,
            queue,
            now,
        })
    })
}

/// Everything a stage may look at for one conversation.
pub struct RoutingContext<'a> {
    roster: &'a [Option<Agent>],
    /// The conversation to place.
    pub conversation: &'a Conversation,
    candidates: &'a [CandidateRow],
    /// Queue statistics.
    pub queue: QueueStats,
    /// Decision time (milliseconds since the epoch).
    pub now: u64,
}

impl<'a> RoutingContext<'a> {
    /// The candidates left by earlier stages, best first (every operator for the first
    /// stage).
    pub fn candidates(&self) -> impl DoubleEndedIterator<Item = Operator<'a>> + Clone + '_ {
        let roster = self.roster;
        self.candidates.iter().filter_map(move |c| {
            let profile = roster.get(c.agent as usize)?.as_ref()?;
            Some(Operator {
                handle: c.agent,
                id: &profile.id,
                name: &profile.name,
                skills: &profile.skills,
                languages: &profile.languages,
                accounts: &profile.accounts,
                capacity: profile.capacity,
                load: c.load,
                // Checked by `with_context`: the fallbacks are never taken.
                presence: c.presence().unwrap_or(Presence::Offline),
                last_assigned_at: c.last_assigned_at().flatten(),
            })
        })
    }

    /// How many candidates there are.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The candidate with this operator id, if any.
    pub fn candidate(&self, id: &str) -> Option<Operator<'a>> {
        self.candidates().find(|op| op.id == id)
    }
}

/// An operator as a stage sees them at decision time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator<'a> {
    /// The host's number for this operator in this instance (what decisions name).
    pub handle: AgentHandle,
    /// Stable id.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Brands and skills.
    pub skills: &'a [String],
    /// Languages spoken.
    pub languages: &'a [String],
    /// Accounts this operator may reply from.
    pub accounts: &'a [String],
    /// Conversations the operator may hold at once.
    pub capacity: u32,
    /// Conversations the operator holds now.
    pub load: u32,
    /// Presence.
    pub presence: Presence,
    /// When the operator was last given a conversation (none if never).
    pub last_assigned_at: Option<u64>,
}

impl Operator<'_> {
    /// Online with a free seat.
    pub fn is_available(&self) -> bool {
        self.presence == Presence::Online && self.load < self.capacity
    }
}

impl Decision {
    /// Give the conversation to `operator`; the chain stops.
    pub fn assign(operator: &Operator<'_>, reason: impl Into<String>) -> Self {
        Decision {
            action: Action::Assign(operator.handle),
            priority: None,
            reason: reason.into(),
        }
    }

    /// Keep only these operators, in this order, for the next stage; none queues the
    /// conversation.
    pub fn narrow<'a>(
        operators: impl IntoIterator<Item = Operator<'a>>,
        reason: impl Into<String>,
    ) -> Self {
        Decision {
            action: Action::Narrow(operators.into_iter().map(|op| op.handle).collect()),
            priority: None,
            reason: reason.into(),
        }
    }

    /// Queue the conversation now; the chain stops.
    pub fn enqueue(reason: impl Into<String>) -> Self {
        Decision {
            action: Action::Enqueue,
            priority: None,
            reason: reason.into(),
        }
    }

    /// No opinion: the next stage sees the same candidates.
    pub fn pass(reason: impl Into<String>) -> Self {
        Decision {
            action: Action::Pass,
            priority: None,
            reason: reason.into(),
        }
    }

    /// The same decision, also setting the conversation's priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }
}
