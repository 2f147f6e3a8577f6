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
use std::ops::{Div, Rem};

pub use crate::MessageKind;
use crate::bindings::routing_policy::centralino::plugin::current_conversation as asked;
pub use crate::bindings::routing_policy::centralino::plugin::current_conversation::QueueStats;
use crate::bindings::routing_policy::exports::centralino::plugin::router;
pub use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    Action, Agent, AgentHandle, Candidate, Decision, Name, NameHandle, Presence,
};
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

/// A piece of a decision's reason for [`reason!`](crate::reason): text (`&str`, `String`,
/// `char`) or an integer, written in decimal.
///
/// A reason is written on every decision, and in wasm `format!` is expensive: its
/// machinery (`core::fmt::write`, the `Formatter`, the integers' padding) cost about
/// 1,500 instructions of a 13,500-instruction decision of `least-loaded` over 9 operators
/// (`BENCHMARKS.md` §1), more than the policy itself. `reason!` appends each piece in
/// turn instead.
pub trait ReasonPart {
    /// Appends this piece to `reason`.
    fn push_to(&self, reason: &mut String);
}

impl ReasonPart for str {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push_str(self);
    }
}

impl ReasonPart for String {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push_str(self);
    }
}

impl ReasonPart for char {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        reason.push(*self);
    }
}

impl<T: ReasonPart + ?Sized> ReasonPart for &T {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        (**self).push_to(reason);
    }
}

/// Appends `n` in decimal.
fn push_decimal(reason: &mut String, n: u64) {
    // A single digit (most loads and capacities in a reason) is one character: the
    // general loop below cost about 100 instructions per number in wasm.
    if let Ok(digit @ 0..=9) = u8::try_from(n) {
        reason.push(char::from(b'0' + digit));
        return;
    }
    // Most numbers in a reason (loads, capacities, counts) fit in 32 bits, whose division
    // by ten wasm does with a multiplication; a 64-bit one is a division instruction.
    let mut digits = [0u8; 20];
    let at = match u32::try_from(n) {
        Ok(small) => fill_digits(small, &mut digits),
        Err(_) => fill_digits(n, &mut digits),
    };
    for &digit in &digits[at..] {
        reason.push(char::from(digit));
    }
}

/// Writes `n`'s decimal digits at the end of `digits` (room for any `u64`); returns where
/// they start.
fn fill_digits<T>(mut n: T, digits: &mut [u8; 20]) -> usize
where
    T: Copy + PartialEq + From<u8> + Rem<Output = T> + Div<Output = T> + TryInto<u8>,
{
    let (zero, ten) = (T::from(0), T::from(10));
    let mut at = digits.len();
    while at > 0 {
        at -= 1;
        digits[at] = b'0' + (n % ten).try_into().unwrap_or(0);
        n = n / ten;
        if n == zero {
            break;
        }
    }
    at
}

macro_rules! unsigned_parts {
    ($($t:ty),*) => {$(
        impl ReasonPart for $t {
            #[inline]
            fn push_to(&self, reason: &mut String) {
                push_decimal(reason, u64::from(*self));
            }
        }
    )*};
}

unsigned_parts!(u8, u16, u32, u64);

impl ReasonPart for usize {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        push_decimal(reason, u64::try_from(*self).unwrap_or(u64::MAX));
    }
}

macro_rules! signed_parts {
    ($($t:ty),*) => {$(
        impl ReasonPart for $t {
            #[inline]
            fn push_to(&self, reason: &mut String) {
                if *self < 0 {
                    reason.push('-');
                }
                push_decimal(reason, i64::from(*self).unsigned_abs());
            }
        }
    )*};
}

signed_parts!(i8, i16, i32, i64);

impl ReasonPart for isize {
    #[inline]
    fn push_to(&self, reason: &mut String) {
        if *self < 0 {
            reason.push('-');
        }
        push_decimal(reason, self.unsigned_abs() as u64);
    }
}

/// Builds a decision's reason from pieces, text or integers, without `format!`
/// (see [`ReasonPart`] for why):
///
/// ```
/// # use centralino_sdk::reason;
/// let (id, load, capacity) = ("op-3", 2u32, 4u32);
/// let text = reason!("least-loaded: ", id, " holds ", load, " of ", capacity);
/// assert_eq!(text, "least-loaded: op-3 holds 2 of 4");
/// ```
#[macro_export]
macro_rules! reason {
    ($($part:expr),+ $(,)?) => {{
        let mut reason = ::std::string::String::with_capacity(64);
        $( $crate::routing::ReasonPart::push_to(&$part, &mut reason); )+
        reason
    }};
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
mod tests {
    use super::*;

    fn agent(handle: u32, id: &str, capacity: u32) -> Agent {
        Agent {
            handle,
            id: id.to_string(),
            name: id.to_uppercase(),
            skills: vec!["tim".to_string()],
            languages: vec!["it".to_string()],
            accounts: Vec::new(),
            capacity,
        }
    }

    fn name(handle: u32, text: &str) -> Name {
        Name {
            handle,
            text: text.to_string(),
        }
    }

    /// Announces the names [`conversation`] uses.
    fn announce_names() {
        update_names(vec![
            name(0, "twitter"),
            name(1, "tim_official"),
            name(2, "tim"),
        ]);
    }

    /// A conversation on `twitter`, account `tim_official`, brand `tim` (handles 0, 1, 2).
    fn conversation() -> router::Conversation {
        router::Conversation {
            channel: 0,
            account: 1,
            brand: Some(2),
            language: None,
            kind: MessageKind::PrivateMessage,
            priority: 0,
            previous_agent: None,
            previous_agent_at: None,
            waiting_since: 1,
        }
    }

    /// What a call would ask the host, given beforehand (the import does not run in a
    /// native test): the methods then answer from their cells, as they do after asking.
    fn answer_for_the_host(context: &RoutingContext<'_>, previous_agent: Option<&str>) {
        let conversation = &context.conversation;
        let _ = conversation.id.set("c1".to_string());
        let _ = conversation.customer.set("42".to_string());
        let _ = conversation.text.set("aiuto".to_string());
        let _ = conversation
            .previous_agent
            .set(previous_agent.map(str::to_string));
        let _ = context.queue.set(QueueStats {
            waiting: 3,
            oldest_wait_ms: 4,
            average_handle_ms: 5,
        });
    }

    /// Runs a policy that reads every candidate's id over `rows`.
    fn ids(rows: &[CandidateRow]) -> Result<Vec<String>> {
        announce_names();
        with_context(&conversation(), rows, 5, |context| {
            Ok(context.candidates().map(|op| op.id.to_string()).collect())
        })
    }

    #[test]
    fn candidates_join_the_rows_with_the_announced_profiles() {
        update_roster(vec![agent(0, "anna", 3), agent(2, "bruno", 1)], Vec::new());
        announce_names();
        let rows = [
            CandidateRow::raw(2, 1, 0, 1, 77),
            CandidateRow::raw(0, 0, 1, 0, 0),
        ];
        let seen = with_context(&conversation(), &rows, 5, |context| {
            Ok(context
                .candidates()
                .map(|op| {
                    (
                        op.id.to_string(),
                        op.load,
                        op.capacity,
                        op.presence,
                        op.last_assigned_at,
                    )
                })
                .collect::<Vec<_>>())
        });
        assert_eq!(
            seen.ok(),
            Some(vec![
                ("bruno".to_string(), 1, 1, Presence::Online, Some(77)),
                ("anna".to_string(), 0, 3, Presence::Away, None),
            ])
        );
    }

    #[test]
    fn a_row_naming_an_unannounced_handle_fails_the_call_that_reads_it() {
        update_roster(vec![agent(0, "anna", 3)], vec![]);
        let rows = [
            CandidateRow::raw(0, 0, 0, 0, 0),
            CandidateRow::raw(5, 0, 0, 0, 0),
        ];
        match ids(&rows) {
            Err(PluginError::InvalidInput(detail)) => {
                assert!(
                    detail.contains("handle 5 without announcing it"),
                    "{detail}"
                )
            }
            other => panic!("expected invalid-input, got {other:?}"),
        }
        // A dropped handle is unannounced again.
        update_roster(Vec::new(), vec![0]);
        assert!(ids(&rows[..1]).is_err());
    }

    #[test]
    fn a_row_with_bytes_the_contract_does_not_define_fails_the_call() {
        update_roster(vec![agent(0, "anna", 3)], Vec::new());
        for row in [
            CandidateRow::raw(0, 0, 3, 0, 0),
            CandidateRow::raw(0, 0, 0, 2, 0),
        ] {
            match ids(&[row]) {
                Err(PluginError::InvalidInput(detail)) => {
                    assert!(detail.contains("contract 0.3 does not define"), "{detail}")
                }
                other => panic!("expected invalid-input, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_conversation_reads_the_announced_names_and_the_hosts_answers() {
        announce_names();
        // Announced later, under a handle past a gap.
        update_names(vec![name(9, "it")]);
        let mut raw = conversation();
        raw.language = Some(9);
        raw.priority = 4;
        raw.previous_agent_at = Some(70);
        let seen = with_context(&raw, &[], 80, |context| {
            answer_for_the_host(context, Some("ext-7"));
            let c = &context.conversation;
            let q = context.queue();
            Ok(format!(
                "{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}",
                c.id(),
                c.channel(),
                c.account(),
                c.brand(),
                c.language(),
                c.customer(),
                c.kind as u8,
                c.text(),
                c.priority,
                c.previous_agent(),
                c.previous_agent_at,
                c.waiting_since,
                q.waiting,
                q.oldest_wait_ms,
                q.average_handle_ms,
                context.now
            ))
        });
        assert_eq!(
            seen.ok().as_deref(),
            Some(
                "c1|twitter|tim_official|Some(\"tim\")|Some(\"it\")|42|1|aiuto|4|\
                 Some(\"ext-7\")|Some(70)|1|3|4|5|80"
            )
        );
    }

    #[test]
    fn an_unannounced_name_handle_fails_the_call_that_reads_it() {
        announce_names();
        type Change = fn(&mut router::Conversation);
        type Read = fn(&Conversation<'_>) -> bool;
        let cases: [(&str, Change, Read); 4] = [
            ("channel", |c| c.channel = 7, |c| c.channel().is_empty()),
            ("account", |c| c.account = 8, |c| c.account().is_empty()),
            ("brand", |c| c.brand = Some(3), |c| c.brand() == Some("")),
            (
                "language",
                |c| c.language = Some(11),
                |c| c.language() == Some(""),
            ),
        ];
        for (field, change, read) in cases {
            let mut raw = conversation();
            change(&mut raw);
            // A policy that never reads the field decides as usual.
            assert_eq!(
                with_context(&raw, &[], 5, |_| Ok(1)).ok(),
                Some(1),
                "{field}"
            );
            // One that reads it sees an empty string, and its decision is refused.
            let mut empty = false;
            let result = with_context(&raw, &[], 5, |context| {
                empty = read(&context.conversation);
                Ok(1)
            });
            assert!(empty, "{field}");
            match result {
                Err(PluginError::InvalidInput(detail)) => {
                    assert!(
                        detail.contains(&format!("conversation's {field} by name handle ")),
                        "{detail}"
                    );
                    assert!(detail.contains("without announcing it"), "{detail}");
                }
                other => panic!("{field}: expected invalid-input, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_previous_agent_is_read_from_the_roster_when_announced() {
        update_roster(vec![agent(0, "anna", 3), agent(4, "bruno", 1)], Vec::new());
        announce_names();
        let mut raw = conversation();
        raw.previous_agent = Some(4);
        // No answer given for the host: the import is not asked (natively it would panic).
        let seen = with_context(&raw, &[], 5, |context| {
            Ok(context.conversation.previous_agent().map(str::to_string))
        });
        assert_eq!(seen.ok(), Some(Some("bruno".to_string())));
        // A handle the instance does not know (dropped since): the host's answer.
        update_roster(Vec::new(), vec![4]);
        let seen = with_context(&raw, &[], 5, |context| {
            answer_for_the_host(context, Some("bruno"));
            Ok(context.conversation.previous_agent().map(str::to_string))
        });
        assert_eq!(seen.ok(), Some(Some("bruno".to_string())));
        // No handle: the host's answer, none here.
        raw.previous_agent = None;
        let seen = with_context(&raw, &[], 5, |context| {
            answer_for_the_host(context, None);
            Ok(context.conversation.previous_agent().map(str::to_string))
        });
        assert_eq!(seen.ok(), Some(None));
    }

    #[test]
    fn reason_writes_signed_integers_and_characters() {
        let text = crate::reason!(
            'Δ',
            " ",
            -5i32,
            " ",
            0i64,
            " ",
            i64::MIN,
            " ",
            i8::MAX,
            " ",
            -1isize
        );
        assert_eq!(text, "Δ -5 0 -9223372036854775808 127 -1");
    }

    #[test]
    fn reason_writes_text_and_decimal_numbers() {
        let id = String::from("op-3");
        let text = crate::reason!(
            "least-loaded: ",
            id,
            " holds ",
            0u8,
            "/",
            4u32,
            " ",
            u64::MAX,
            " ",
            u64::from(u32::MAX) + 1,
            " ",
            10usize
        );
        assert_eq!(
            text,
            "least-loaded: op-3 holds 0/4 18446744073709551615 4294967296 10"
        );
    }
}
