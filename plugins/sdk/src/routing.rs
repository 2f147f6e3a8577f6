//! What a routing policy works with: the conversation and the operators it may choose
//! from, as plain values.
//!
//! Since contract 0.2 the host tells an instance about each operator once
//! (`update-roster`: id, name, skills, languages, accounts, capacity, under a number, the
//! *handle*) and each `route` call names its candidates by handle, with their live state
//! (load, presence, last assignment). Since 0.3 it does the same for the conversation's
//! strings that repeat (`update-names`: channels, accounts, brands, languages), and a call
//! carries no other string: the conversation's id, the customer, the text and the previous
//! operator's id are asked of the host (the `current-conversation` import) by the policies
//! that read them, and so is the queue. The SDK keeps the announced profiles and names and
//! joins them with each call, so a policy still reads "the conversation" and "the
//! candidates, best first" and never sees a handle unless it wants to:
//!
//! - [`RoutingContext::conversation`] has the numbers as fields, the announced strings as
//!   methods that look them up ([`Conversation::channel`], [`Conversation::brand`]...),
//!   and the rest as methods
//!   ([`Conversation::text`], [`Conversation::id`], [`Conversation::customer`],
//!   [`Conversation::previous_agent`]) that ask the host the first time and keep the
//!   answer for the call;
//! - [`RoutingContext::queue`] likewise;
//! - [`RoutingContext::candidates`] joins each candidate with its profile.
//!
//! A decision that reads only fields and candidates makes no call to the host.
//!
//! ```no_run
//! use centralino_sdk::prelude::*;
//! use centralino_sdk::reason;
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
//!         let conversation = &context.conversation;
//!         // Asked of the host here, once: a policy that never reads the text never copies it.
//!         if conversation.text().contains("fattura") && context.queue().waiting > 10 {
//!             return Ok(Decision::pass("first-free: billing, leave it to the next stage"));
//!         }
//!         Ok(match context.candidates().find(|op| op.is_available()) {
//!             Some(op) => Decision::assign(&op, reason!("first-free: ", op.id, " on ", conversation.channel())),
//!             None => Decision::pass("first-free: nobody free"),
//!         })
//!     }
//! }
//!
//! centralino_sdk::export_router!(FirstFree);
//! # fn main() {}
//! ```
//!
//! A policy runs for every conversation, compiled to wasm, where a few habits of native
//! Rust cost more than they look (measured in `BENCHMARKS.md` §1, instructions per
//! decision of `least-loaded`):
//!
//! - write reasons with [`reason!`](crate::reason), not `format!`: `core::fmt` was 11% of
//!   a decision over 9 operators;
//! - to pick one candidate, keep the best seen in a loop rather than `min_by` / `max_by`,
//!   which move two [`Operator`]s (72 bytes each) through every comparison: about 100
//!   instructions per candidate;
//! - read the conversation's text, id, customer and previous operator and the queue only
//!   where the decision needs them: each is a call into the host and a copy of its answer
//!   (once per decision).

use std::cell::{Cell, OnceCell, RefCell};

pub use crate::MessageKind;
use crate::bindings::routing_policy::centralino::plugin::current_conversation as asked;
pub use crate::bindings::routing_policy::centralino::plugin::current_conversation::QueueStats;
use crate::bindings::routing_policy::exports::centralino::plugin::router;
pub use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    Action, Agent, AgentHandle, Candidate, Decision, Name, NameHandle, Presence,
};
pub use crate::reason_parts::ReasonPart;
use crate::route_abi::CandidateRow;
use crate::{PluginError, Result};

thread_local! {
    /// The profiles the host announced, by handle. An instance is single-threaded.
    static ROSTER: RefCell<Vec<Option<Agent>>> = const { RefCell::new(Vec::new()) };
    /// The strings the host announced (`update-names`), by handle. The host never reuses
    /// a handle nor withdraws a string.
    static NAMES: RefCell<Vec<Option<String>>> = const { RefCell::new(Vec::new()) };
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

/// Applies an `update-names` call: strings new to the instance, under their handles.
pub(crate) fn update_names(names: Vec<Name>) {
    NAMES.with(|table| {
        // Never borrowed when the host calls (it does not call during `route`).
        let Ok(mut table) = table.try_borrow_mut() else {
            return;
        };
        for name in names {
            let at = name.handle as usize;
            if table.len() <= at {
                table.resize_with(at + 1, || None);
            }
            table[at] = Some(name.text);
        }
    });
}

/// Runs `f` on the context of one `route` call: the conversation with its announced
/// strings, the candidates joined with their profiles. A name handle or a candidate the
/// host never announced, or a row whose bytes the contract does not define, makes the
/// call an `invalid-input` error when the policy comes to it.
///
/// The rows are checked as the policy reads them ([`RoutingContext::candidates`]), not in
/// a pass of their own before: that pass's loop was about 35 instructions per operator in
/// wasm, and checking in the iterator instead saved about 20 per operator of a
/// `least-loaded` decision (`BENCHMARKS.md` §1), for rows only a faulty host gets wrong.
/// A policy's decision is never built on a row it did not read, so none is built on a
/// bad one.
pub(crate) fn with_context<R>(
    conversation: &router::Conversation,
    candidates: &[CandidateRow],
    now: u64,
    f: impl FnOnce(&RoutingContext<'_>) -> Result<R>,
) -> Result<R> {
    ROSTER.with(|roster| {
        NAMES.with(|names| {
            let roster = roster
                .try_borrow()
                .map_err(|_| PluginError::transient("the plugin was re-entered"))?;
            let names = names
                .try_borrow()
                .map_err(|_| PluginError::transient("the plugin was re-entered"))?;
            let context = RoutingContext {
                roster: &roster,
                conversation: Conversation::new(conversation, &roster, &names),
                candidates,
                queue: OnceCell::new(),
                now,
                refused: Cell::new(None),
            };
            let result = f(&context);
            if let Some((what, handle)) = context.conversation.refused.get() {
                return Err(PluginError::InvalidInput(format!(
                    "the host named the conversation's {what} by name handle {handle} \
                     without announcing it"
                )));
            }
            match context.refused.get() {
                None => result,
                Some(handle) if matches!(roster.get(handle as usize), Some(Some(_))) => {
                    Err(PluginError::InvalidInput(format!(
                        "the host sent operator handle {handle} with a presence or last \
                         assignment contract 0.3 does not define"
                    )))
                }
                Some(handle) => Err(PluginError::InvalidInput(format!(
                    "the host named operator handle {handle} without announcing it"
                ))),
            }
        })
    })
}

/// Everything a stage may look at for one conversation.
pub struct RoutingContext<'a> {
    roster: &'a [Option<Agent>],
    /// The conversation to place.
    pub conversation: Conversation<'a>,
    candidates: &'a [CandidateRow],
    /// The queue's statistics, once asked for.
    queue: OnceCell<QueueStats>,
    /// Decision time (milliseconds since the epoch).
    pub now: u64,
    /// A row the policy came to that names an unannounced handle or holds bytes the
    /// contract does not define (the call fails with it).
    refused: Cell<Option<AgentHandle>>,
}

impl<'a> RoutingContext<'a> {
    /// The candidates left by earlier stages, best first (every operator for the first
    /// stage). A row naming an operator the host never announced, or holding bytes the
    /// contract does not define, is left out, and the call then fails with
    /// `invalid-input` whatever the policy returns (only a faulty host writes one).
    pub fn candidates(&self) -> impl DoubleEndedIterator<Item = Operator<'a>> + Clone + '_ {
        let roster = self.roster;
        let refused = &self.refused;
        self.candidates.iter().filter_map(move |c| {
            let profile = roster.get(c.agent as usize).and_then(Option::as_ref);
            let (Some(profile), Some(presence), Some(last_assigned_at)) =
                (profile, c.presence(), c.last_assigned_at())
            else {
                refused.set(Some(c.agent));
                return None;
            };
            Some(Operator {
                handle: c.agent,
                id: &profile.id,
                name: &profile.name,
                skills: &profile.skills,
                languages: &profile.languages,
                accounts: &profile.accounts,
                capacity: profile.capacity,
                load: c.load,
                presence,
                last_assigned_at,
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

    /// The queue's statistics as they are now: asked of the host the first time (a call
    /// into the host), the same answer for the rest of the call.
    pub fn queue(&self) -> QueueStats {
        *self.queue.get_or_init(asked::queue)
    }
}

/// The conversation to place, as a stage sees it.
///
/// The fields and [`channel`](Conversation::channel), [`account`](Conversation::account),
/// [`brand`](Conversation::brand) and [`language`](Conversation::language) are what every
/// `route` call carries (the strings announced once per instance, looked up by the SDK
/// when read): reading them costs nothing but the look-up. The other methods are the
/// strings that are new with every conversation: each asks the host (the contract's
/// `current-conversation` import) the first time it is called and keeps the answer for
/// the rest of the call, so a policy that never reads the text never copies it.
#[derive(Debug)]
pub struct Conversation<'a> {
    /// How it reached the company.
    pub kind: MessageKind,
    /// Priority so far (0 normal; higher is more urgent).
    pub priority: u8,
    /// When the previous operator ([`Conversation::previous_agent`]) last handled this
    /// customer.
    pub previous_agent_at: Option<u64>,
    /// When the customer started waiting (milliseconds since the epoch).
    pub waiting_since: u64,
    /// The call's numbers for the conversation's strings.
    handles: Handles,
    names: &'a [Option<String>],
    roster: &'a [Option<Agent>],
    /// A name handle the policy read that the host never announced (the call fails).
    refused: Cell<Option<(&'static str, NameHandle)>>,
    id: OnceCell<String>,
    customer: OnceCell<String>,
    text: OnceCell<String>,
    previous_agent: OnceCell<Option<String>>,
}

/// The handles a `route` call names the conversation's strings and previous operator by.
#[derive(Clone, Copy, Debug)]
struct Handles {
    channel: NameHandle,
    account: NameHandle,
    brand: Option<NameHandle>,
    language: Option<NameHandle>,
    previous_agent: Option<AgentHandle>,
}

impl<'a> Conversation<'a> {
    /// The call's conversation, its handles looked up in `names` and `roster` when read.
    fn new(
        conversation: &router::Conversation,
        roster: &'a [Option<Agent>],
        names: &'a [Option<String>],
    ) -> Self {
        Conversation {
            kind: conversation.kind,
            priority: conversation.priority,
            previous_agent_at: conversation.previous_agent_at,
            waiting_since: conversation.waiting_since,
            handles: Handles {
                channel: conversation.channel,
                account: conversation.account,
                brand: conversation.brand,
                language: conversation.language,
                previous_agent: conversation.previous_agent,
            },
            names,
            roster,
            refused: Cell::new(None),
            id: OnceCell::new(),
            customer: OnceCell::new(),
            text: OnceCell::new(),
            previous_agent: OnceCell::new(),
        }
    }

    /// The announced string under `handle`; an unannounced one reads as empty and fails
    /// the call (`what` names the field in the error).
    fn name(&self, handle: NameHandle, what: &'static str) -> &'a str {
        match self.names.get(handle as usize) {
            Some(Some(text)) => text,
            _ => {
                self.refused.set(Some((what, handle)));
                ""
            }
        }
    }

    /// Channel (`twitter`, `facebook`...).
    pub fn channel(&self) -> &'a str {
        self.name(self.handles.channel, "channel")
    }

    /// Company account that received it.
    pub fn account(&self) -> &'a str {
        self.name(self.handles.account, "account")
    }

    /// Brand the account belongs to, if configured.
    pub fn brand(&self) -> Option<&'a str> {
        self.handles.brand.map(|handle| self.name(handle, "brand"))
    }

    /// Language, if known.
    pub fn language(&self) -> Option<&'a str> {
        self.handles
            .language
            .map(|handle| self.name(handle, "language"))
    }

    /// Host id of the conversation (asked of the host once per call).
    pub fn id(&self) -> &str {
        self.id.get_or_init(asked::id)
    }

    /// Platform id of the customer (asked of the host once per call).
    pub fn customer(&self) -> &str {
        self.customer.get_or_init(asked::customer)
    }

    /// Text of the customer's latest message (asked of the host once per call).
    pub fn text(&self) -> &str {
        self.text.get_or_init(asked::text)
    }

    /// Id of the operator who last helped this customer, if any: read from the roster
    /// when the call names them by handle (they are among the candidates, or were
    /// announced before), otherwise asked of the host once per call.
    pub fn previous_agent(&self) -> Option<&str> {
        let announced = self
            .handles
            .previous_agent
            .and_then(|handle| self.roster.get(handle as usize))
            .and_then(Option::as_ref);
        match announced {
            Some(agent) => Some(&agent.id),
            None => self
                .previous_agent
                .get_or_init(asked::previous_agent)
                .as_deref(),
        }
    }
}

/// An operator as a stage sees them at decision time.
///
/// A copy is 72 bytes in a 32-bit memory. Where a policy goes over many candidates, a
/// loop that keeps the best one seen reads each where it lies; `min_by`, `max_by` and
/// `fold` move both values through every comparison, which compiled to wasm costs about
/// 100 instructions per candidate (`least-loaded` shows the loop).
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
        Self::narrow_to(operators.into_iter().map(|op| op.handle).collect(), reason)
    }

    /// [`Decision::narrow`] to operators by their handles, for a policy that collects the
    /// handles it keeps as it goes (4 bytes each, where an [`Operator`] is 72).
    pub fn narrow_to(handles: Vec<AgentHandle>, reason: impl Into<String>) -> Self {
        Decision {
            action: Action::Narrow(handles),
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

#[cfg(test)]
mod tests;
