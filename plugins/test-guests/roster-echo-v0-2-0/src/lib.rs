//! Test guest: `roster-echo` as it answered under contract 0.2.0, written on the plain
//! bindings of the frozen `wit/since_v0.2.0` (the generated `Guest` trait, its standard
//! lifting of `route`'s context) instead of the SDK. The host's tests check its
//! hand-written 0.2 lowering (`host/runtime/src/context_lowering.rs`) against it: what
//! the generated code lifts is what the contract means, whatever the SDK does next.
//!
//! It keeps the profiles `update-roster` announces (by handle; `removed` handles are
//! dropped) and joins each call's candidates with them as SDK 0.2 did. With the text
//! `first` it assigns the first candidate (or narrows to none); with `narrow` it narrows
//! to the candidates in reverse order; with `conversation` it passes with the
//! conversation, the queue and the time written out (`|`-separated, options as Rust
//! prints them, the kind as its case number); otherwise it passes with every candidate
//! written out, one line each, in `hostile-router`'s echo format.
//!
//! As under SDK 0.2, a candidate whose handle was never announced (or was removed) is
//! left out where the policy reads it, and the call then fails with `invalid-input`
//! ("the host named operator handle {handle} without announcing it", the last such handle
//! read); a `route` before `configure` fails with "the routing policy is not configured".

wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "routing-policy" });
centralino_sdk::plugin_metadata!(contract = "0.2.0");
centralino_sdk::small_object_allocator!();

use std::cell::{Cell, RefCell};

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{
    Action, Agent, AgentHandle, Candidate, Context, Decision, Guest, Presence,
};

thread_local! {
    /// The profiles the host announced, by handle. An instance is single-threaded.
    static ROSTER: RefCell<Vec<Option<Agent>>> = const { RefCell::new(Vec::new()) };
    /// Whether `configure` has succeeded in this instance.
    static CONFIGURED: Cell<bool> = const { Cell::new(false) };
}

struct RosterEcho;

/// One call's candidates joined with the announced profiles, read as SDK 0.2 read them:
/// a candidate without a profile is skipped where it is read, and remembered.
struct Joined<'a> {
    roster: &'a [Option<Agent>],
    candidates: &'a [Candidate],
    /// The last unannounced handle read (the call fails with it).
    refused: Cell<Option<AgentHandle>>,
}

impl<'a> Joined<'a> {
    fn candidates(&self) -> impl DoubleEndedIterator<Item = (&'a Agent, &'a Candidate)> + '_ {
        let roster = self.roster;
        self.candidates.iter().filter_map(move |c| {
            match roster.get(c.agent as usize).and_then(Option::as_ref) {
                Some(profile) => Some((profile, c)),
                None => {
                    self.refused.set(Some(c.agent));
                    None
                }
            }
        })
    }
}

fn decision(action: Action, reason: String) -> Decision {
    Decision {
        action,
        priority: None,
        reason,
    }
}

fn decide(context: &Context, joined: &Joined<'_>) -> Decision {
    match context.conversation.text.as_str() {
        "first" => {
            return match joined.candidates().next() {
                Some((_, c)) => decision(
                    Action::Assign(c.agent),
                    "roster-echo: first candidate".to_string(),
                ),
                None => decision(
                    Action::Narrow(Vec::new()),
                    "roster-echo: nobody".to_string(),
                ),
            };
        }
        "narrow" => {
            return decision(
                Action::Narrow(joined.candidates().rev().map(|(_, c)| c.agent).collect()),
                "roster-echo: reversed".to_string(),
            );
        }
        "conversation" => {
            let c = &context.conversation;
            let q = &context.queue;
            return decision(
                Action::Pass,
                format!(
                    "{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}",
                    c.id,
                    c.channel,
                    c.account,
                    c.brand,
                    c.language,
                    c.customer,
                    c.kind as u8,
                    c.text,
                    c.priority,
                    c.previous_agent,
                    c.previous_agent_at,
                    c.waiting_since,
                    q.waiting,
                    q.oldest_wait_ms,
                    q.average_handle_ms,
                    context.now
                ),
            );
        }
        _ => {}
    }
    let lines: Vec<String> = joined
        .candidates()
        .map(|(a, c)| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{:?}",
                a.id,
                a.name,
                a.skills.join(","),
                a.languages.join(","),
                a.accounts.join(","),
                a.capacity,
                c.load,
                match c.presence {
                    Presence::Online => "online",
                    Presence::Away => "away",
                    Presence::Offline => "offline",
                },
                c.last_assigned_at
            )
        })
        .collect();
    decision(Action::Pass, lines.join("\n"))
}

impl Guest for RosterEcho {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), PluginError> {
        CONFIGURED.set(true);
        Ok(())
    }

    fn update_roster(upserts: Vec<Agent>, removed: Vec<AgentHandle>) {
        ROSTER.with_borrow_mut(|roster| {
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

    fn route(context: Context) -> Result<Decision, PluginError> {
        if !CONFIGURED.get() {
            return Err(PluginError::InvalidInput(
                "the routing policy is not configured".to_string(),
            ));
        }
        ROSTER.with_borrow(|roster| {
            let joined = Joined {
                roster,
                candidates: &context.candidates,
                refused: Cell::new(None),
            };
            let decision = decide(&context, &joined);
            match joined.refused.get() {
                None => Ok(decision),
                Some(handle) => Err(PluginError::InvalidInput(format!(
                    "the host named operator handle {handle} without announcing it"
                ))),
            }
        })
    }
}

export!(RosterEcho);
