//! Routing under contract 0.3: a `route` call of flat values.
//!
//! Under 0.2 a call carried the conversation's seven strings: each one was a
//! `cabi_realloc` entry into the guest before the call, and the arguments (more than the
//! canonical ABI's 16 flat values) went through an argument area, one entry more: about
//! half of a 9-operator decision (`BENCHMARKS.md` §1). Under 0.3 the strings that repeat
//! from one conversation to the next (channel, account, brand, language) are numbered
//! per instance like operators ([`Names`], announced through `update-names`), the rest
//! (id, customer, text, previous operator's id, queue) are answered by the
//! `current-conversation` import to the policies that ask ([`Current`]), and `route`
//! takes 16 flat values: the conversation's numbers, the candidates' list (one
//! `cabi_realloc`, rows written in one copy as under 0.2, [`CandidateRow`]) and the time.

#![allow(missing_docs)]

use std::collections::HashMap;

use wasmtime::AsContext;
use wasmtime::component::{ComponentType, Func, Lower, TypedFunc};

use crate::bindings::latest::{current_conversation, router, types};
use crate::inline_str::InlineStr;
use crate::roster::{CandidateRow, Roster};
use crate::route_answer::RouteAnswer;
use crate::types::{QueueStats, RoutingContext};

/// The most strings one instance is told. Channels, accounts and brands come from the
/// configuration and languages from a platform's short list, so a real instance stays far
/// below; past it the instance is replaced after the call (a fresh one starts with no
/// names), so a stream of invented language tags cannot grow it without bound.
pub(crate) const MAX_NAMES: usize = 4_096;

/// The strings one 0.3 instance was told, by handle (a string's handle is the number of
/// strings told before it).
#[derive(Default)]
pub(crate) struct Names {
    by_text: HashMap<String, u32>,
    /// The last conversation's channel, account, brand and language, and their handles: the
    /// next conversation's are most often the same, told apart from others without a
    /// look-up.
    last: [(InlineStr, u32); 4],
    /// The names the instance must hear before the call being prepared.
    pub(crate) new: Vec<router::Name>,
}

impl Names {
    /// Whether the instance was told [`MAX_NAMES`] strings (it is replaced after the call).
    pub(crate) fn is_full(&self) -> bool {
        self.by_text.len() >= MAX_NAMES
    }

    /// The handle of `text` in field `FIELD` (0 channel, 1 account, 2 brand, 3 language),
    /// noting it in [`Names::new`] when the instance has not heard it.
    #[inline]
    fn handle<const FIELD: usize>(&mut self, text: &str) -> u32 {
        let (last, handle) = &self.last[FIELD];
        if last.is(text) == Some(true) {
            return *handle;
        }
        self.look_up::<FIELD>(text)
    }

    #[cold]
    fn look_up<const FIELD: usize>(&mut self, text: &str) -> u32 {
        let handle = match self.by_text.get(text) {
            Some(handle) => *handle,
            None => {
                let handle = u32::try_from(self.by_text.len()).unwrap_or(u32::MAX);
                self.by_text.insert(text.to_owned(), handle);
                self.new.push(router::Name {
                    handle,
                    text: text.to_owned(),
                });
                handle
            }
        };
        self.last[FIELD] = (InlineStr::new(text), handle);
        handle
    }

    /// `context`'s conversation as 0.3 passes it, its strings numbered (new ones noted in
    /// [`Names::new`], cleared first) and the previous operator named by the handle
    /// `roster` gave them, if any.
    pub(crate) fn conversation(&mut self, context: &RoutingContext, roster: &Roster) -> Flat {
        self.new.clear();
        let c = &context.conversation;
        Flat {
            channel: self.handle::<0>(&c.channel),
            account: self.handle::<1>(&c.account),
            brand: c.brand.as_deref().map(|b| self.handle::<2>(b)),
            language: c.language.as_deref().map(|l| self.handle::<3>(l)),
            kind: c.kind.into(),
            priority: c.priority,
            previous_agent: c
                .previous_agent
                .as_deref()
                .and_then(|id| roster.handle_of(id)),
            previous_agent_at: c.previous_agent_at,
            waiting_since: c.waiting_since,
        }
    }
}

/// `router.conversation` (0.3): numbers only, so it is lowered as flat values.
#[derive(ComponentType, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(record)]
pub(crate) struct Flat {
    pub(crate) channel: u32,
    pub(crate) account: u32,
    pub(crate) brand: Option<u32>,
    pub(crate) language: Option<u32>,
    pub(crate) kind: types::MessageKind,
    pub(crate) priority: u8,
    #[component(name = "previous-agent")]
    pub(crate) previous_agent: Option<u32>,
    #[component(name = "previous-agent-at")]
    pub(crate) previous_agent_at: Option<u64>,
    #[component(name = "waiting-since")]
    pub(crate) waiting_since: u64,
}

impl From<Flat> for router::Conversation {
    fn from(f: Flat) -> Self {
        router::Conversation {
            channel: f.channel,
            account: f.account,
            brand: f.brand,
            language: f.language,
            kind: f.kind,
            priority: f.priority,
            previous_agent: f.previous_agent,
            previous_agent_at: f.previous_agent_at,
            waiting_since: f.waiting_since,
        }
    }
}

/// `route`'s arguments (0.3).
pub(crate) type Arguments<'a> = (Flat, &'a [CandidateRow], u64);

/// What `route` returns (a decision read by hand, [`RouteAnswer`]).
pub(crate) type RouteResult = (RouteAnswer,);

/// Checks that `func` (an instance's `route` export) takes [`Arguments`].
pub(crate) fn check_route(func: &Func, store: impl AsContext) -> wasmtime::Result<()> {
    func.typed::<Arguments<'static>, RouteResult>(store)
        .map(|_| ())
}

/// `route` typed for borrowed arguments, without a type check per call.
#[allow(unsafe_code)]
pub(crate) fn route_func<'a>(func: Func) -> TypedFunc<Arguments<'a>, RouteResult> {
    // SAFETY: `func` is the `route` export of an instance whose signature was checked
    // with `check_route` when the instance started; the check does not depend on the
    // lifetime.
    unsafe { TypedFunc::new_unchecked(func) }
}

/// What the fast path assumes of 0.3, checked when the runtime is built: the
/// conversation's record is the generated binding's, and its flat values fit the
/// canonical ABI's 16 with the list and the time (else wasmtime would pass them through
/// memory, which is correct but not what this line was made for).
pub(crate) fn self_check() -> Result<(), String> {
    let flat = <Flat as ComponentType>::ABI;
    let generated = <router::Conversation as ComponentType>::ABI;
    if flat != generated {
        return Err(format!(
            "router.conversation (0.3, flat) is {flat:?}, the generated binding's is {generated:?}"
        ));
    }
    let candidate = <CandidateRow as ComponentType>::ABI;
    let generated = <router::Candidate as ComponentType>::ABI;
    if candidate != generated {
        return Err(format!(
            "router.candidate (0.3) is {candidate:?}, the generated binding's is {generated:?}"
        ));
    }
    Ok(())
}

/// What the `current-conversation` import answers during a 0.3 `route` call: the
/// conversation's strings that the call does not carry, copied into buffers kept with the
/// instance (no allocation once they have grown), and emptied when the call ends.
#[derive(Default)]
pub(crate) struct Current {
    id: String,
    customer: String,
    text: String,
    previous_agent: Option<String>,
    queue: QueueStats,
}

impl Current {
    /// Holds `context`'s strings and queue for the call about to start.
    pub(crate) fn hold(&mut self, context: &RoutingContext) {
        let c = &context.conversation;
        replace(&mut self.id, &c.id);
        replace(&mut self.customer, &c.customer);
        replace(&mut self.text, &c.text);
        match (&mut self.previous_agent, &c.previous_agent) {
            (Some(held), Some(id)) => replace(held, id),
            (held, id) => *held = id.clone(),
        }
        self.queue = context.queue;
    }

    /// Forgets the call's conversation: outside a call the import answers as for an empty
    /// one.
    pub(crate) fn clear(&mut self) {
        self.id.clear();
        self.customer.clear();
        self.text.clear();
        self.previous_agent = None;
        self.queue = QueueStats::default();
    }
}

fn replace(held: &mut String, with: &str) {
    held.clear();
    held.push_str(with);
}

impl current_conversation::Host for crate::state::PluginState {
    fn id(&mut self) -> String {
        self.current.id.clone()
    }

    fn customer(&mut self) -> String {
        self.current.customer.clone()
    }

    fn text(&mut self) -> String {
        self.current.text.clone()
    }

    fn previous_agent(&mut self) -> Option<String> {
        self.current.previous_agent.clone()
    }

    fn queue(&mut self) -> current_conversation::QueueStats {
        let q = self.current.queue;
        current_conversation::QueueStats {
            waiting: q.waiting,
            oldest_wait_ms: q.oldest_wait_ms,
            average_handle_ms: q.average_handle_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_NAMES, Names};
    use crate::roster::Roster;
    use crate::types::{MessageKind, QueueStats, RoutingContext, RoutingConversation};

    fn context(account: &str, brand: Option<&str>, language: Option<&str>) -> RoutingContext {
        RoutingContext {
            conversation: RoutingConversation {
                id: "c1".to_string(),
                channel: "twitter".to_string(),
                account: account.to_string(),
                brand: brand.map(str::to_string),
                language: language.map(str::to_string),
                customer: "mario".to_string(),
                kind: MessageKind::PublicPost,
                text: "ciao".to_string(),
                priority: 0,
                previous_agent: Some("giulia".to_string()),
                previous_agent_at: Some(5),
                waiting_since: 7,
            },
            agents: Vec::new(),
            queue: QueueStats::default(),
            now: 9,
            roster_version: 0,
        }
    }

    #[test]
    fn each_string_is_announced_once_and_named_by_the_same_number_after() {
        let roster = Roster::default();
        let mut names = Names::default();
        let first = names.conversation(&context("TIM_Official", Some("tim"), None), &roster);
        let told: Vec<(u32, &str)> = names.new.iter().map(|n| (n.handle, &*n.text)).collect();
        assert_eq!(told, [(0, "twitter"), (1, "TIM_Official"), (2, "tim")]);
        assert_eq!((first.channel, first.account, first.brand), (0, 1, Some(2)));
        assert_eq!(first.language, None);
        // An operator the instance was never told about has no handle.
        assert_eq!(first.previous_agent, None);
        assert_eq!((first.previous_agent_at, first.waiting_since), (Some(5), 7));

        // Another account, then the first again: only the new one is announced, and a
        // string is the same number whichever field names it.
        let second = names.conversation(&context("Vodafone_IT", Some("tim"), Some("it")), &roster);
        let told: Vec<(u32, &str)> = names.new.iter().map(|n| (n.handle, &*n.text)).collect();
        assert_eq!(told, [(3, "Vodafone_IT"), (4, "it")]);
        assert_eq!(
            (second.account, second.brand, second.language),
            (3, Some(2), Some(4))
        );
        let third = names.conversation(&context("TIM_Official", None, Some("tim")), &roster);
        assert!(names.new.is_empty(), "{:?}", names.new);
        assert_eq!(
            (third.account, third.brand, third.language),
            (1, None, Some(2))
        );
        assert!(!names.is_full());
    }

    #[test]
    fn an_instance_told_the_most_strings_is_full() {
        let roster = Roster::default();
        let mut names = Names::default();
        // twitter and the account, then a new language per conversation.
        for n in 0..MAX_NAMES - 2 {
            assert!(!names.is_full(), "after {n} languages");
            names.conversation(&context("acme", None, Some(&format!("x-{n}"))), &roster);
            assert_eq!(names.new.len(), if n == 0 { 3 } else { 1 });
        }
        assert!(names.is_full());
    }
}
