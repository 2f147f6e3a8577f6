//! The routing context lowered into the guest straight from the host's own types.
//!
//! The generated `call_route` takes the contract's owned `context`, so calling it means
//! cloning every string of every operator first and freeing them after: measured at 40% of
//! a decision's time with 9 operators (`BENCHMARKS.md`, decision cost). These views borrow
//! the host's [`RoutingContext`] instead; wasmtime copies the bytes into guest memory
//! either way. Field names and order mirror `router.wit` of the frozen v0.1.0 contract,
//! and the signature is checked against the component once per instance
//! ([`check_route`]) before any call skips the check ([`route_func`]).

#![allow(missing_docs)]

use std::mem::MaybeUninit;

use wasmtime::AsContext;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InterfaceType, LowerContext, wasmtime_environ,
};
use wasmtime::component::{ComponentType, Func, Lower, TypedFunc};

use super::bindings::v0_1::{router, types};
use crate::types::{Agent, Presence, RoutingContext};

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
/// order, computed from the fields' own layouts.
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
}

impl AgentLayout {
    fn new() -> Self {
        let mut at = 0usize;
        let string = <&str as ComponentType>::ABI;
        let list = <&[String] as ComponentType>::ABI;
        let id = string.next_field32_size(&mut at);
        let name = string.next_field32_size(&mut at);
        let skills = list.next_field32_size(&mut at);
        let languages = list.next_field32_size(&mut at);
        let accounts = list.next_field32_size(&mut at);
        let capacity = <u32 as ComponentType>::ABI.next_field32_size(&mut at);
        let load = <u32 as ComponentType>::ABI.next_field32_size(&mut at);
        let presence = <router::Presence as ComponentType>::ABI.next_field32_size(&mut at);
        let last_assigned_at = <Option<u64> as ComponentType>::ABI.next_field32_size(&mut at);
        let mut payload = 0usize;
        CanonicalAbiInfo::SCALAR1.next_field32_size(&mut payload);
        let option_payload = <u64 as ComponentType>::ABI.next_field32_size(&mut payload);
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
        }
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
fn put_pair(buf: &mut [u8], at: usize, ptr: usize, len: usize) -> wasmtime::Result<()> {
    put_u32(buf, at, u32::try_from(ptr)?)?;
    put_u32(buf, at + 4, u32::try_from(len)?)
}

/// Writes a little-endian `u32` into `buf` at `at`.
fn put_u32(buf: &mut [u8], at: usize, value: u32) -> wasmtime::Result<()> {
    match buf.get_mut(at..at + 4) {
        Some(slot) => slot.copy_from_slice(&value.to_le_bytes()),
        None => wasmtime::bail!("agent record layout out of bounds"),
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
        put_u32(record, layout.capacity, self.capacity)?;
        put_u32(record, layout.load, self.load)?;
        let presence = match self.presence {
            router::Presence::Online => 0u8,
            router::Presence::Away => 1,
            router::Presence::Offline => 2,
        };
        match record.get_mut(layout.presence) {
            Some(slot) => *slot = presence,
            None => wasmtime::bail!("agent record layout out of bounds"),
        }
        if let Some(time) = self.last_assigned_at {
            let at = layout.last_assigned_at;
            let payload = at + layout.option_payload;
            match record.get_mut(at) {
                Some(tag) => *tag = 1,
                None => wasmtime::bail!("agent record layout out of bounds"),
            }
            match record.get_mut(payload..payload + 8) {
                Some(slot) => slot.copy_from_slice(&time.to_le_bytes()),
                None => wasmtime::bail!("agent record layout out of bounds"),
            }
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
        let layout = AgentLayout::new();
        let size = Self::SIZE32;
        scratch::<1536, _>(agents.len() * size, |records| {
            for (agent, record) in agents.iter().zip(records.chunks_mut(size)) {
                agent.fill(cx, &layout, record)?;
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

// SAFETY: the lowering writes exactly `SIZE32` bytes per agent at the offsets the canonical
// ABI gives `router.agent` (computed from its fields' layouts, checked against the derived
// size in a test), with the values the derived lowering would write; the type itself is
// checked against the component by the derived `ComponentType`.
#[allow(unsafe_code)]
unsafe impl Lower for AgentRef<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        _cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        _dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        // An agent only ever reaches the guest inside the context's list, in memory.
        wasmtime::bail!("`router.agent` is only passed in memory")
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        Self::store_all(cx, offset, std::slice::from_ref(self))
    }

    fn linear_store_list_to_memory<T>(
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
        items: &[Self],
    ) -> wasmtime::Result<()> {
        Self::store_all(cx, offset, items)
    }
}

/// `router.conversation`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct ConversationRef<'a> {
    id: &'a str,
    channel: &'a str,
    account: &'a str,
    brand: Option<&'a str>,
    language: Option<&'a str>,
    customer: &'a str,
    kind: types::MessageKind,
    text: &'a str,
    priority: u8,
    #[component(name = "previous-agent")]
    previous_agent: Option<&'a str>,
    #[component(name = "previous-agent-at")]
    previous_agent_at: Option<u64>,
    #[component(name = "waiting-since")]
    waiting_since: u64,
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

impl<'a> From<&'a RoutingContext> for ContextRef<'a> {
    fn from(c: &'a RoutingContext) -> Self {
        let conv = &c.conversation;
        ContextRef {
            conversation: ConversationRef {
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
            },
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
