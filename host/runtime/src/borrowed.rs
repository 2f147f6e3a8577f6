//! The routing context lowered into the guest straight from the host's own types.
//!
//! The generated `call_route` takes the contract's owned `context`, so calling it means
//! cloning every string of every operator first and freeing them after: measured at 40% of
//! a decision's time with 9 operators (`BENCHMARKS.md`, decision cost). These views borrow
//! the host's [`RoutingContext`] instead; wasmtime copies the bytes into guest memory
//! either way. Field names and order mirror `router.wit` of the frozen v0.1.0 contract,
//! and the signature is checked against the component once per instance
//! ([`check_route`]) before any call skips the check ([`route_func`]).
//!
//! This is the one place that uses wasmtime's unstable `component::__internal` API and
//! `unsafe` code. wasmtime is held to one major version (`49.0.5` and later 49.x, whose
//! patch releases keep `__internal` as it is; Cargo.lock names the exact one tested), and
//! the fast path is fenced three ways:
//! - what the `unsafe` lowering assumes (the canonical ABI's offsets and record size of
//!   `router.agent`, and that the borrowed records have the generated ones' layouts) is
//!   written down in [`SPEC`] and checked by [`self_check`]; the tests at the end of this
//!   file fail if a wasmtime upgrade changes any of it;
//! - `runtime::fast_path` routes thousands of random contexts through this path and through
//!   the generated bindings' ordinary typed call, for every routing policy and for
//!   `hostile-router`'s echo, and requires the same decisions;
//! - the generated path stays as the fallback: the runtime runs [`self_check`] once when it
//!   is built and, if it fails, warns and calls `route` through the generated bindings
//!   ([`super::RouteCall`], which says what to do when upgrading wasmtime breaks this file).

#![allow(missing_docs)]

use wasmtime::AsContext;
use wasmtime::component::__internal::{CanonicalAbiInfo, LowerContext, wasmtime_environ};
use wasmtime::component::{ComponentType, Func, Lower, TypedFunc};

use super::bindings::v0_1::{router, types};
use crate::types::{Agent, Presence, RoutingContext, RoutingConversation};

/// Implements `Lower` for a record the host only ever passes inside a list, in the
/// guest's memory: each list (and a lone value, which never occurs) is written by the
/// type's own `store_all`, in one piece. The safety argument for that writer is the
/// caller's, stated above its use of this macro.
macro_rules! lower_in_lists_only {
    ($ty:ty, $name:literal) => {
        // SAFETY: see the comment above the macro's use: `store_all` writes exactly the
        // record's canonical ABI size per element at its offsets, bounds-checked.
        #[allow(unsafe_code)]
        unsafe impl wasmtime::component::Lower for $ty {
            fn linear_lower_to_flat<T>(
                &self,
                _cx: &mut wasmtime::component::__internal::LowerContext<'_, T>,
                _ty: wasmtime::component::__internal::InterfaceType,
                _dst: &mut std::mem::MaybeUninit<Self::Lower>,
            ) -> wasmtime::Result<()> {
                wasmtime::bail!(concat!("`", $name, "` is only passed in memory"))
            }

            fn linear_lower_to_memory<T>(
                &self,
                cx: &mut wasmtime::component::__internal::LowerContext<'_, T>,
                _ty: wasmtime::component::__internal::InterfaceType,
                offset: usize,
            ) -> wasmtime::Result<()> {
                Self::store_all(cx, offset, std::slice::from_ref(self))
            }

            fn linear_store_list_to_memory<T>(
                cx: &mut wasmtime::component::__internal::LowerContext<'_, T>,
                _ty: wasmtime::component::__internal::InterfaceType,
                offset: usize,
                items: &[Self],
            ) -> wasmtime::Result<()> {
                Self::store_all(cx, offset, items)
            }
        }
    };
}
pub(crate) use lower_in_lists_only;

/// `router.agent`, borrowed. Its type is checked against the component like any derived
/// record; its lowering is written out ([`Lower`] below), because the roster is most of
/// what a decision copies into the guest.
#[derive(ComponentType)]
#[component(record)]
pub(super) struct AgentRef<'a> {
    id: &'a str,
    name: &'a str,
    skills: &'a [String],
    languages: &'a [String],
    accounts: &'a [String],
    capacity: u32,
    load: u32,
    presence: router::Presence,
    #[component(name = "last-assigned-at")]
    last_assigned_at: Option<u64>,
}

/// Byte offsets of `router.agent`'s fields in the canonical ABI (32-bit memory), in WIT
/// order, computed at compile time from the fields' own layouts as wasmtime reports them.
/// [`self_check`] compares them with the canonical ABI's numbers ([`SPEC`]) and with the
/// generated `router::Agent`; the tests in this file pin both.
#[derive(Debug, PartialEq, Eq)]
struct AgentLayout {
    id: usize,
    name: usize,
    skills: usize,
    languages: usize,
    accounts: usize,
    capacity: usize,
    load: usize,
    presence: usize,
    last_assigned_at: usize,
    /// Offset of an `option<u64>`'s payload from the option's start.
    option_payload: usize,
    /// Bytes per agent (the record's size, trailing padding included).
    size: usize,
    /// The record's alignment.
    align: u32,
}

/// Where the next field of layout `abi` starts at or after `at`; moves `at` past it.
pub(crate) const fn next_field(abi: &CanonicalAbiInfo, at: &mut usize) -> usize {
    let start = at.next_multiple_of(abi.align32 as usize);
    *at = start + abi.size32 as usize;
    start
}

/// Offset of an option's value from the option's start (a one-byte tag, then the value).
pub(crate) const fn option_payload(value: &CanonicalAbiInfo) -> usize {
    let mut at = 0usize;
    next_field(&CanonicalAbiInfo::SCALAR1, &mut at);
    next_field(value, &mut at)
}

impl AgentLayout {
    const fn new() -> Self {
        let mut at = 0usize;
        let string = &<&str as ComponentType>::ABI;
        let list = &<&[String] as ComponentType>::ABI;
        let id = next_field(string, &mut at);
        let name = next_field(string, &mut at);
        let skills = next_field(list, &mut at);
        let languages = next_field(list, &mut at);
        let accounts = next_field(list, &mut at);
        let capacity = next_field(&<u32 as ComponentType>::ABI, &mut at);
        let load = next_field(&<u32 as ComponentType>::ABI, &mut at);
        let presence = next_field(&<router::Presence as ComponentType>::ABI, &mut at);
        let last_assigned_at = next_field(&<Option<u64> as ComponentType>::ABI, &mut at);
        let option_payload = option_payload(&<u64 as ComponentType>::ABI);
        let record = CanonicalAbiInfo::record_static(&[
            <&str as ComponentType>::ABI,
            <&str as ComponentType>::ABI,
            <&[String] as ComponentType>::ABI,
            <&[String] as ComponentType>::ABI,
            <&[String] as ComponentType>::ABI,
            <u32 as ComponentType>::ABI,
            <u32 as ComponentType>::ABI,
            <router::Presence as ComponentType>::ABI,
            <Option<u64> as ComponentType>::ABI,
        ]);
        AgentLayout {
            id,
            name,
            skills,
            languages,
            accounts,
            capacity,
            load,
            presence,
            last_assigned_at,
            option_payload,
            size: record.size32 as usize,
            align: record.align32,
        }
    }
}

/// The layout [`AgentRef`]'s lowering writes.
const LAYOUT: AgentLayout = AgentLayout::new();

/// `router.agent` as the component model's canonical ABI lays it out in a 32-bit memory
/// (strings and lists are a pointer and a length, 4 bytes each; `presence` is an enum of 3
/// cases, one byte; `option<u64>` is a one-byte tag, then the payload aligned to 8). These
/// numbers come from the specification, not from wasmtime: a wasmtime that computes
/// anything else has changed what the fast path relies on.
const SPEC: AgentLayout = AgentLayout {
    id: 0,
    name: 8,
    skills: 16,
    languages: 24,
    accounts: 32,
    capacity: 40,
    load: 44,
    presence: 48,
    last_assigned_at: 56,
    option_payload: 8,
    size: 72,
    align: 8,
};

/// Checks, in this build of wasmtime, everything the fast path assumes that is not checked
/// against each component: the offsets and the record size it writes ([`LAYOUT`]) are the
/// canonical ABI's ([`SPEC`]); they are what the derived `AgentRef` and the generated
/// `router::Agent` report; and the borrowed records the derive lowers (conversation,
/// context) have the generated records' layouts. `Err` names what differs. The runtime runs
/// it once when it is built and calls `route` through the generated bindings if it fails
/// ([`super::RouteCall`]); the tests below fail on it.
pub(super) fn self_check() -> Result<(), String> {
    let mut differences = Vec::new();
    if LAYOUT != SPEC {
        differences.push(format!(
            "router.agent's offsets are {LAYOUT:?}, the canonical ABI's are {SPEC:?}"
        ));
    }
    let abis = [
        (
            "agent (borrowed)",
            <AgentRef<'static> as ComponentType>::ABI,
            <router::Agent as ComponentType>::ABI,
        ),
        (
            "conversation (borrowed)",
            <ConversationRef<'static> as ComponentType>::ABI,
            <router::Conversation as ComponentType>::ABI,
        ),
        (
            "context (borrowed)",
            <ContextRef<'static> as ComponentType>::ABI,
            <router::Context as ComponentType>::ABI,
        ),
    ];
    for (what, borrowed, generated) in abis {
        if borrowed != generated {
            differences.push(format!(
                "router.{what} is {borrowed:?}, the generated binding's is {generated:?}"
            ));
        }
    }
    let derived = <AgentRef<'static> as ComponentType>::ABI;
    if derived.size32 as usize != LAYOUT.size || derived.align32 != LAYOUT.align {
        differences.push(format!(
            "the lowering writes {} bytes per agent aligned to {}, the derived record is {derived:?}",
            LAYOUT.size, LAYOUT.align
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join("; "))
    }
}

/// Copies `bytes` into guest memory at a fresh allocation (`align`), returning its address.
fn copy_in<T>(cx: &mut LowerContext<'_, T>, align: u32, bytes: &[u8]) -> wasmtime::Result<usize> {
    let ptr = cx.realloc(0, 0, align, bytes.len())?;
    let Some(target) = cx
        .as_slice_mut()
        .get_mut(ptr..)
        .and_then(|m| m.get_mut(..bytes.len()))
    else {
        wasmtime::bail!(
            "the guest allocated {} bytes outside its memory",
            bytes.len()
        );
    };
    target.copy_from_slice(bytes);
    Ok(ptr)
}

/// Writes a (pointer, length) pair into `buf` at `at`.
pub(crate) fn put_pair(buf: &mut [u8], at: usize, ptr: usize, len: usize) -> wasmtime::Result<()> {
    put(buf, at, u32::try_from(ptr)?.to_le_bytes())?;
    put(buf, at + 4, u32::try_from(len)?.to_le_bytes())
}

/// Writes `bytes` into the record `buf` at `at` (a fixed size, so the copy is a store or
/// two, not a call to `memcpy`).
#[inline]
pub(crate) fn put<const N: usize>(
    buf: &mut [u8],
    at: usize,
    bytes: [u8; N],
) -> wasmtime::Result<()> {
    match buf.get_mut(at..at + N) {
        Some(slot) => slot.copy_from_slice(&bytes),
        None => wasmtime::bail!("record layout out of bounds"),
    }
    Ok(())
}

/// Lowers a UTF-8 string; returns its (pointer, length).
fn lower_str<T>(cx: &mut LowerContext<'_, T>, s: &str) -> wasmtime::Result<(usize, usize)> {
    Ok((copy_in(cx, 1, s.as_bytes())?, s.len()))
}

/// Runs `f` on `len` zeroed bytes: on the stack up to `N`, on the heap beyond (a decision
/// makes dozens of these, and the allocator showed in the profile).
fn scratch<const N: usize, R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len <= N {
        let mut bytes = [0u8; N];
        f(&mut bytes[..len])
    } else {
        f(&mut vec![0u8; len])
    }
}

/// Lowers a `list<string>`: every string, then the array of their (pointer, length)
/// pairs in one copy.
fn lower_strings<T>(
    cx: &mut LowerContext<'_, T>,
    list: &[String],
) -> wasmtime::Result<(usize, usize)> {
    let ptr = scratch::<128, _>(list.len() * 8, |pairs| {
        for (n, s) in list.iter().enumerate() {
            let (ptr, len) = lower_str(cx, s)?;
            put_pair(pairs, n * 8, ptr, len)?;
        }
        copy_in(cx, 4, pairs)
    })?;
    Ok((ptr, list.len()))
}

impl AgentRef<'_> {
    /// Lowers this agent's strings and lists into the guest and fills `record` (the
    /// agent's bytes in the canonical ABI) with their addresses and the scalar fields.
    fn fill<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        layout: &AgentLayout,
        record: &mut [u8],
    ) -> wasmtime::Result<()> {
        let (ptr, len) = lower_str(cx, self.id)?;
        put_pair(record, layout.id, ptr, len)?;
        let (ptr, len) = lower_str(cx, self.name)?;
        put_pair(record, layout.name, ptr, len)?;
        let (ptr, len) = lower_strings(cx, self.skills)?;
        put_pair(record, layout.skills, ptr, len)?;
        let (ptr, len) = lower_strings(cx, self.languages)?;
        put_pair(record, layout.languages, ptr, len)?;
        let (ptr, len) = lower_strings(cx, self.accounts)?;
        put_pair(record, layout.accounts, ptr, len)?;
        put(record, layout.capacity, self.capacity.to_le_bytes())?;
        put(record, layout.load, self.load.to_le_bytes())?;
        let presence = match self.presence {
            router::Presence::Online => 0u8,
            router::Presence::Away => 1,
            router::Presence::Offline => 2,
        };
        put(record, layout.presence, [presence])?;
        if let Some(time) = self.last_assigned_at {
            let at = layout.last_assigned_at;
            put(record, at, [1])?;
            put(record, at + layout.option_payload, time.to_le_bytes())?;
        }
        Ok(())
    }

    /// Lowers `agents` into `offset`: each agent's strings, then every record in one copy.
    fn store_all<T>(
        cx: &mut LowerContext<'_, T>,
        offset: usize,
        agents: &[Self],
    ) -> wasmtime::Result<()> {
        if cx.options().string_encoding != wasmtime_environ::component::StringEncoding::Utf8 {
            wasmtime::bail!("the routing policy does not take UTF-8 strings");
        }
        let size = Self::SIZE32;
        scratch::<1536, _>(agents.len() * size, |records| {
            for (agent, record) in agents.iter().zip(records.chunks_mut(size)) {
                agent.fill(cx, &LAYOUT, record)?;
            }
            let Some(target) = cx
                .as_slice_mut()
                .get_mut(offset..)
                .and_then(|m| m.get_mut(..records.len()))
            else {
                wasmtime::bail!("the agents' list lies outside the guest's memory");
            };
            target.copy_from_slice(records);
            Ok(())
        })
    }
}

// SAFETY: for each agent the lowering writes exactly `SIZE32` bytes (the derived record's
// size, which wasmtime allocated per list element) at the offsets the canonical ABI gives
// `router.agent` ([`LAYOUT`], computed from its fields' layouts), with the values the
// derived lowering would write; every write is bounds-checked against the guest's memory.
// What this relies on is checked by [`self_check`] when the runtime is built (it calls
// `route` through the generated bindings if the check fails) and pinned by the tests
// `borrowed::tests::the_agent_layout_is_the_canonical_abis`,
// `borrowed::tests::the_borrowed_records_have_the_generated_records_layouts` and
// `borrowed::tests::the_self_check_passes_on_this_wasmtime`; that the bytes written are the
// ones the generated bindings write is checked end to end, decision by decision, by
// `runtime::fast_path` (the differential test). The type itself is checked against the
// component by the derived `ComponentType`.
lower_in_lists_only!(AgentRef<'_>, "router.agent");

/// `router.conversation`, borrowed. Contracts 0.1 and 0.2 declare this record alike (and
/// its `message-kind` enum), so the 0.2 fast path ([`crate::roster`]) passes it too; the
/// derived `ComponentType` checks it against each component's own type.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ConversationRef<'a> {
    pub(crate) id: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) account: &'a str,
    pub(crate) brand: Option<&'a str>,
    pub(crate) language: Option<&'a str>,
    pub(crate) customer: &'a str,
    pub(crate) kind: types::MessageKind,
    pub(crate) text: &'a str,
    pub(crate) priority: u8,
    #[component(name = "previous-agent")]
    pub(crate) previous_agent: Option<&'a str>,
    #[component(name = "previous-agent-at")]
    pub(crate) previous_agent_at: Option<u64>,
    #[component(name = "waiting-since")]
    pub(crate) waiting_since: u64,
}

/// `router.context`, borrowed (the agents' list is the only allocation).
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct ContextRef<'a> {
    conversation: ConversationRef<'a>,
    agents: Vec<AgentRef<'a>>,
    queue: router::QueueStats,
    now: u64,
}

fn agent(a: &Agent) -> AgentRef<'_> {
    AgentRef {
        id: &a.id,
        name: &a.name,
        skills: &a.skills,
        languages: &a.languages,
        accounts: &a.accounts,
        capacity: a.capacity,
        load: a.load,
        presence: match a.presence {
            Presence::Online => router::Presence::Online,
            Presence::Away => router::Presence::Away,
            Presence::Offline => router::Presence::Offline,
        },
        last_assigned_at: a.last_assigned_at,
    }
}

impl<'a> ConversationRef<'a> {
    /// `conv`, borrowed.
    pub(crate) fn of(conv: &'a RoutingConversation) -> Self {
        ConversationRef {
            id: &conv.id,
            channel: &conv.channel,
            account: &conv.account,
            brand: conv.brand.as_deref(),
            language: conv.language.as_deref(),
            customer: &conv.customer,
            kind: conv.kind.into(),
            text: &conv.text,
            priority: conv.priority,
            previous_agent: conv.previous_agent.as_deref(),
            previous_agent_at: conv.previous_agent_at,
            waiting_since: conv.waiting_since,
        }
    }
}

impl<'a> From<&'a RoutingContext> for ContextRef<'a> {
    fn from(c: &'a RoutingContext) -> Self {
        ContextRef {
            conversation: ConversationRef::of(&c.conversation),
            agents: c.agents.iter().map(agent).collect(),
            queue: router::QueueStats {
                waiting: c.queue.waiting,
                oldest_wait_ms: c.queue.oldest_wait_ms,
                average_handle_ms: c.queue.average_handle_ms,
            },
            now: c.now,
        }
    }
}

/// What `route` returns.
pub(super) type RouteResult = (Result<router::Decision, types::PluginError>,);

/// Checks that `func` (the instance's `route` export) has the signature [`route_func`]
/// assumes.
pub(super) fn check_route(func: &Func, store: impl AsContext) -> wasmtime::Result<()> {
    func.typed::<(ContextRef<'static>,), RouteResult>(store)
        .map(|_| ())
}

/// `route` typed for borrowed arguments, without a type check per call.
#[allow(unsafe_code)]
pub(super) fn route_func<'a>(func: Func) -> TypedFunc<(ContextRef<'a>,), RouteResult> {
    // SAFETY: `func` is the `route` export of an instance whose signature was checked
    // with `check_route` when the instance started (`RouterInstance::ready`); the check
    // does not depend on the lifetime, and the generated bindings call it the same way.
    unsafe { TypedFunc::new_unchecked(func) }
}

/// What the fast path's `unsafe` code assumes, pinned: if a wasmtime upgrade changes any of
/// it, these fail (and a runtime built anyway calls `route` through the generated bindings,
/// see [`self_check`]).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_layout_is_the_canonical_abis() {
        assert_eq!(
            LAYOUT, SPEC,
            "wasmtime now lays out router.agent differently from the canonical ABI: the fast \
             path in runtime/borrowed.rs writes LAYOUT and must be fixed"
        );
        assert_eq!(<AgentRef<'static> as ComponentType>::SIZE32, SPEC.size);
        assert_eq!(<AgentRef<'static> as ComponentType>::ALIGN32, SPEC.align);
        assert_eq!(<router::Agent as ComponentType>::SIZE32, SPEC.size);
        assert_eq!(<router::Agent as ComponentType>::ALIGN32, SPEC.align);
        // The pieces the lowering writes by hand: a (pointer, length) pair is 8 bytes, the
        // presence is one byte, an option's tag one byte before its payload.
        assert_eq!(<&str as ComponentType>::SIZE32, 8);
        assert_eq!(<&[String] as ComponentType>::SIZE32, 8);
        assert_eq!(<router::Presence as ComponentType>::SIZE32, 1);
        assert_eq!(<Option<u64> as ComponentType>::SIZE32, 16);
    }

    #[test]
    fn the_borrowed_records_have_the_generated_records_layouts() {
        assert_eq!(
            <AgentRef<'static> as ComponentType>::ABI,
            <router::Agent as ComponentType>::ABI
        );
        assert_eq!(
            <ConversationRef<'static> as ComponentType>::ABI,
            <router::Conversation as ComponentType>::ABI
        );
        assert_eq!(
            <ContextRef<'static> as ComponentType>::ABI,
            <router::Context as ComponentType>::ABI
        );
    }

    #[test]
    fn the_self_check_passes_on_this_wasmtime() {
        if let Err(difference) = self_check() {
            panic!("the fast path's assumptions no longer hold: {difference}");
        }
    }
}
