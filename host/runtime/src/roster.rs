//! Routing under contracts 0.2 and 0.3: the roster lives in the policy instance.
//!
//! Under 0.1 every `route` call copied every operator's strings (id, name, skills,
//! languages, accounts) into the guest, and the guest allocated and freed them: 0.7 µs per
//! operator (`BENCHMARKS.md` §1). Since 0.2 the host numbers the operators per instance
//! (`agent-handle`), announces each profile once through the `update-roster` export, and
//! each `route` call carries only the candidates' handles and the fields that change from
//! one decision to the next (load, presence, last assignment): 32 bytes per operator,
//! written on the host and copied into the guest in one piece.
//!
//! [`Roster`] is the host's record of what one instance was told. It is rebuilt with the
//! instance (a fault or a swap starts from nothing). Profiles are compared only when the
//! context's [`RoutingContext::roster_version`] is one this operator's profile was not
//! checked under, so a steady roster costs one string comparison per operator (its id,
//! against the operator at the same position last time).

#![allow(missing_docs)]

use std::collections::HashMap;

use wasmtime::AsContext;
use wasmtime::component::{ComponentType, Func, TypedFunc};

use super::bindings::latest::router;
use super::bindings::v0_2;
use crate::borrowed::ConversationRef;
use crate::inline_str::InlineStr;
use crate::route_answer::RouteAnswer;

pub(crate) use crate::candidate_row::{CandidateRow, ROW_SIZE};
use crate::types::{Agent, RoutingAction, RoutingContext, RoutingDecision};

/// What the host told one instance about one operator's profile.
struct Known {
    id: String,
    name: String,
    skills: Vec<String>,
    languages: Vec<String>,
    accounts: Vec<String>,
    capacity: u32,
}

/// What the per-operator check of every call reads about one handle, kept apart from the
/// profiles: a steady roster's check touches this small array and the context's ids, not
/// the profiles' strings scattered over the heap (reading each `Known`'s id was a cache
/// miss per operator, a quarter of a 200-operator decision in the profile).
#[derive(Clone, Copy)]
struct Slot {
    /// The operator's id, inline when short ([`InlineStr::NONE`] once the handle is
    /// dropped).
    id: InlineStr,
    /// The roster version this profile was last compared under (0: never trusted).
    checked_under: u64,
    /// The call that last named this handle (duplicates in one context get their own).
    named_in: u64,
}

impl Slot {
    fn new(id: &str, version: u64, call: u64) -> Self {
        Slot {
            id: InlineStr::new(id),
            checked_under: version,
            named_in: call,
        }
    }

    const DROPPED: Slot = Slot {
        id: InlineStr::NONE,
        checked_under: 0,
        named_in: 0,
    };
}

impl Known {
    fn new(a: &Agent) -> Self {
        Known {
            id: a.id.clone(),
            name: a.name.clone(),
            skills: a.skills.clone(),
            languages: a.languages.clone(),
            accounts: a.accounts.clone(),
            capacity: a.capacity,
        }
    }

    fn same_profile(&self, a: &Agent) -> bool {
        self.name == a.name
            && self.capacity == a.capacity
            && self.skills == a.skills
            && self.languages == a.languages
            && self.accounts == a.accounts
    }

    fn announce(&self, handle: u32) -> router::Agent {
        router::Agent {
            handle,
            id: self.id.clone(),
            name: self.name.clone(),
            skills: self.skills.clone(),
            languages: self.languages.clone(),
            accounts: self.accounts.clone(),
            capacity: self.capacity,
        }
    }
}

/// The operators one 0.2 or 0.3 instance knows, by handle, and the candidates of the call
/// being prepared.
#[derive(Default)]
pub(crate) struct Roster {
    /// Profiles by handle (`None`: dropped).
    known: Vec<Option<Known>>,
    /// What each call checks, by handle (parallel to `known`).
    slots: Vec<Slot>,
    by_id: HashMap<String, u32>,
    /// Handles of the last context, in order: where each operator probably is next time.
    order: Vec<u32>,
    /// Handles given to a repeated id within one context; dropped at the next call.
    transient: Vec<u32>,
    calls: u64,
    /// The candidates of the call being prepared (kept to reuse the allocation).
    candidates: Vec<CandidateRow>,
}

/// What the instance must hear before the call: new or changed profiles, dropped handles.
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) upserts: Vec<router::Agent>,
    pub(crate) removed: Vec<u32>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty()
    }
}

impl Roster {
    /// Numbers `context`'s operators, noting what the instance has not heard yet, and
    /// fills the candidates for [`Roster::context`].
    pub(crate) fn prepare(&mut self, context: &RoutingContext) -> Changes {
        self.calls += 1;
        let call = self.calls;
        let version = context.roster_version;
        let mut changes = Changes {
            removed: std::mem::take(&mut self.transient),
            ..Changes::default()
        };
        for handle in &changes.removed {
            if let Some(known) = self.known.get_mut(*handle as usize) {
                *known = None;
            }
            if let Some(slot) = self.slots.get_mut(*handle as usize) {
                *slot = Slot::DROPPED;
            }
        }
        self.order.resize(context.agents.len(), u32::MAX);
        // Both vectors leave `self` for the loop, so the rows are written by `extend`
        // over an iterator of known length (no capacity check per row) while the loop
        // still calls `self`'s methods.
        let mut order = std::mem::take(&mut self.order);
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(
            order
                .iter_mut()
                .zip(&context.agents)
                .map(|(hinted, agent)| {
                    let handle = if self.steady(*hinted, &agent.id, version, call) {
                        *hinted
                    } else {
                        let found = if self.holds(*hinted, &agent.id) {
                            Some(*hinted)
                        } else {
                            self.by_id.get(&agent.id).copied()
                        };
                        let handle = match found {
                            Some(handle) => self.name(handle, agent, version, call, &mut changes),
                            None => self.add(agent, version, call, &mut changes),
                        };
                        *hinted = handle;
                        handle
                    };
                    CandidateRow::new(handle, agent.load, agent.presence, agent.last_assigned_at)
                }),
        );
        self.order = order;
        self.candidates = candidates;
        changes
    }

    /// The common case, in one look at `handle`'s slot: it is the operator `id` (an id
    /// held inline), `version` vouches for its profile, and this call has not named it
    /// yet; then it is named. Anything else is for [`Roster::holds`] and
    /// [`Roster::name`].
    #[inline]
    fn steady(&mut self, handle: u32, id: &str, version: u64, call: u64) -> bool {
        let Some(slot) = self.slots.get_mut(handle as usize) else {
            return false;
        };
        let vouched = version != 0 && slot.checked_under == version && slot.named_in != call;
        let same = vouched && slot.id.is(id) == Some(true);
        if same {
            slot.named_in = call;
        }
        same
    }

    /// Whether `handle` is the live operator `id`.
    #[inline]
    fn holds(&self, handle: u32, id: &str) -> bool {
        let Some(slot) = self.slots.get(handle as usize) else {
            return false;
        };
        slot.id.is(id).unwrap_or_else(
            || matches!(self.known.get(handle as usize), Some(Some(k)) if k.id == id),
        )
    }

    /// Names the known operator `handle` in this call: checks its profile against
    /// `agent`'s unless `version` vouches for it, and gives a second mention of the same
    /// id in one context a handle of its own.
    fn name(
        &mut self,
        handle: u32,
        agent: &Agent,
        version: u64,
        call: u64,
        changes: &mut Changes,
    ) -> u32 {
        let Some(slot) = self.slots.get_mut(handle as usize) else {
            return self.add(agent, version, call, changes);
        };
        if slot.named_in == call {
            // The same id twice in one context: the second one is its own operator for
            // this call.
            let handle = self.push(agent, 0, call);
            self.transient.push(handle);
            changes.upserts.push(announce(&self.known, handle));
            return handle;
        }
        slot.named_in = call;
        if version != 0 && slot.checked_under == version {
            return handle;
        }
        slot.checked_under = version;
        match self.known.get_mut(handle as usize) {
            Some(Some(known)) if known.same_profile(agent) => {}
            Some(known) => {
                *known = Some(Known::new(agent));
                changes.upserts.push(announce(&self.known, handle));
            }
            None => return self.add(agent, version, call, changes),
        }
        handle
    }

    fn push(&mut self, agent: &Agent, version: u64, call: u64) -> u32 {
        let handle = self.known.len() as u32;
        self.known.push(Some(Known::new(agent)));
        self.slots.push(Slot::new(&agent.id, version, call));
        handle
    }

    fn add(&mut self, agent: &Agent, version: u64, call: u64, changes: &mut Changes) -> u32 {
        let handle = self.push(agent, version, call);
        self.by_id.insert(agent.id.clone(), handle);
        changes.upserts.push(announce(&self.known, handle));
        handle
    }

    /// The handle the instance knows the operator `id` by, if it was told about them.
    pub(crate) fn handle_of(&self, id: &str) -> Option<u32> {
        let handle = *self.by_id.get(id)?;
        matches!(self.known.get(handle as usize), Some(Some(_))).then_some(handle)
    }

    /// The candidates of the call [`Roster::prepare`] prepared.
    pub(crate) fn candidates(&self) -> &[CandidateRow] {
        &self.candidates
    }

    /// The borrowed 0.2 context for the call [`Roster::prepare`] prepared.
    pub(crate) fn context<'a>(&'a self, c: &'a RoutingContext) -> ContextRef<'a> {
        ContextRef {
            conversation: ConversationRef::of(&c.conversation),
            candidates: &self.candidates,
            queue: v0_2::router::QueueStats {
                waiting: c.queue.waiting,
                oldest_wait_ms: c.queue.oldest_wait_ms,
                average_handle_ms: c.queue.average_handle_ms,
            },
            now: c.now,
        }
    }

    /// The context [`Roster::context`] borrows, owned, for the generated bindings'
    /// `call_route` (the fallback when the fast path's self-check fails).
    pub(crate) fn owned_context(&self, c: &RoutingContext) -> v0_2::router::Context {
        let conv = &c.conversation;
        v0_2::router::Context {
            conversation: v0_2::router::Conversation {
                id: conv.id.clone(),
                channel: conv.channel.clone(),
                account: conv.account.clone(),
                brand: conv.brand.clone(),
                language: conv.language.clone(),
                customer: conv.customer.clone(),
                kind: conv.kind.into(),
                text: conv.text.clone(),
                priority: conv.priority,
                previous_agent: conv.previous_agent.clone(),
                previous_agent_at: conv.previous_agent_at,
                waiting_since: conv.waiting_since,
            },
            candidates: self
                .candidates
                .iter()
                .map(|row| {
                    let row = row.owned();
                    v0_2::router::Candidate {
                        agent: row.agent,
                        load: row.load,
                        presence: match row.presence {
                            router::Presence::Online => v0_2::router::Presence::Online,
                            router::Presence::Away => v0_2::router::Presence::Away,
                            router::Presence::Offline => v0_2::router::Presence::Offline,
                        },
                        last_assigned_at: row.last_assigned_at,
                    }
                })
                .collect(),
            queue: v0_2::router::QueueStats {
                waiting: c.queue.waiting,
                oldest_wait_ms: c.queue.oldest_wait_ms,
                average_handle_ms: c.queue.average_handle_ms,
            },
            now: c.now,
        }
    }

    /// The decision in the host's terms: handles back to operator ids. A handle the
    /// instance was never told about is `Err` (what it was).
    pub(crate) fn decision(&self, d: router::Decision) -> Result<RoutingDecision, String> {
        let id = |handle: u32| match self.known.get(handle as usize) {
            Some(Some(known)) => Ok(known.id.clone()),
            _ => Err(format!(
                "route named operator handle {handle}, which the host never announced"
            )),
        };
        Ok(RoutingDecision {
            action: match d.action {
                router::Action::Assign(handle) => RoutingAction::Assign(id(handle)?),
                router::Action::Narrow(handles) => {
                    RoutingAction::Narrow(handles.into_iter().map(id).collect::<Result<_, _>>()?)
                }
                router::Action::Enqueue => RoutingAction::Enqueue,
                router::Action::Pass => RoutingAction::Pass,
            },
            priority: d.priority,
            reason: d.reason,
        })
    }
}

fn announce(known: &[Option<Known>], handle: u32) -> router::Agent {
    match known.get(handle as usize) {
        Some(Some(k)) => k.announce(handle),
        // `handle` was pushed just before; unreachable in practice, harmless if not.
        _ => router::Agent {
            handle,
            id: String::new(),
            name: String::new(),
            skills: Vec::new(),
            languages: Vec::new(),
            accounts: Vec::new(),
            capacity: 0,
        },
    }
}

/// `router.context` (0.2), borrowed; written into the guest by hand
/// (`context_lowering.rs`).
#[derive(ComponentType)]
#[component(record)]
pub(crate) struct ContextRef<'a> {
    pub(crate) conversation: ConversationRef<'a>,
    pub(crate) candidates: &'a [CandidateRow],
    pub(crate) queue: v0_2::router::QueueStats,
    pub(crate) now: u64,
}

/// What `route` returns (a decision read by hand, [`RouteAnswer`]).
pub(crate) type RouteResult = (RouteAnswer,);

/// Checks that `func` (an instance's `route` export) takes [`ContextRef`].
pub(crate) fn check_route(func: &Func, store: impl AsContext) -> wasmtime::Result<()> {
    func.typed::<(ContextRef<'static>,), RouteResult>(store)
        .map(|_| ())
}

/// `route` typed for borrowed arguments, without a type check per call.
#[allow(unsafe_code)]
pub(crate) fn route_func<'a>(func: Func) -> TypedFunc<(ContextRef<'a>,), RouteResult> {
    // SAFETY: `func` is the `route` export of an instance whose signature was checked
    // with `check_route` when the instance started; the check does not depend on the
    // lifetime.
    unsafe { TypedFunc::new_unchecked(func) }
}

/// What the hand-written lowering assumes, checked when the runtime is built (with the
/// 0.1 fast path's check): `Err` names what differs.
pub(crate) fn self_check() -> Result<(), String> {
    let derived = <CandidateRow as ComponentType>::ABI;
    let generated = <v0_2::router::Candidate as ComponentType>::ABI;
    let mut differences = Vec::new();
    if derived != generated {
        differences.push(format!(
            "router.candidate (borrowed) is {derived:?}, the generated binding's is {generated:?}"
        ));
    }
    if derived.size32 as usize != ROW_SIZE || derived.align32 != 8 {
        differences.push(format!(
            "router.candidate is {derived:?}, the lowering writes {ROW_SIZE} bytes aligned to 8"
        ));
    }
    let context = <ContextRef<'static> as ComponentType>::ABI;
    let generated = <v0_2::router::Context as ComponentType>::ABI;
    if context != generated {
        differences.push(format!(
            "router.context (borrowed, 0.2) is {context:?}, the generated binding's is {generated:?}"
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join("; "))
    }
}
