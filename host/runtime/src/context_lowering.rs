//! The 0.2 routing context written into the guest's memory by hand, in one pass.
//!
//! The derived lowering of `router.context` writes each field on its own: every scalar,
//! tag and pointer pair asks wasmtime for the guest's memory again (a look-up through the
//! instance's canonical options each time, 11% of a 9-operator decision in the profile)
//! and works out the field's offset at run time. Here the strings and the candidates'
//! list are allocated in the guest first (each through the guest's `cabi_realloc`, in
//! the order the derived lowering uses), then the memory is taken once and everything is
//! copied in: the strings' bytes, the candidates' rows ([`CandidateRow`]) and the record
//! itself at offsets computed at compile time from wasmtime's own layouts ([`LAYOUT`]).
//!
//! Fenced like the rest of the fast path (`borrowed.rs`): [`self_check`] compares
//! [`LAYOUT`] with the canonical ABI's numbers written out from the specification
//! ([`SPEC`]) and with the generated record's size, and `runtime::fast_path` routes
//! thousands of random contexts through this lowering and through the generated
//! bindings, for every routing policy and for `hostile-router`'s echo of the context it
//! was given, and requires the same results.

#![allow(missing_docs)]

use std::mem::MaybeUninit;

use wasmtime::component::__internal::{InterfaceType, LowerContext};
use wasmtime::component::{ComponentType, Lower};

use crate::bindings::v0_1::types::MessageKind;
use crate::bindings::v0_2::router;
use crate::borrowed::{ConversationRef, next_field, option_payload, put, put_pair};
use crate::roster::{CandidateRow, ContextRef, ROW_SIZE};

/// Byte offsets of `router.context`'s fields (0.2) in the canonical ABI (32-bit memory),
/// from the start of the record; `*_payload` are the option's value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ContextLayout {
    id: usize,
    channel: usize,
    account: usize,
    brand: usize,
    brand_payload: usize,
    language: usize,
    language_payload: usize,
    customer: usize,
    kind: usize,
    text: usize,
    priority: usize,
    previous_agent: usize,
    previous_agent_payload: usize,
    previous_agent_at: usize,
    previous_agent_at_payload: usize,
    waiting_since: usize,
    candidates: usize,
    queue_waiting: usize,
    queue_oldest_wait_ms: usize,
    queue_average_handle_ms: usize,
    now: usize,
    /// The record's size and alignment.
    size: usize,
    align: u32,
}

impl ContextLayout {
    const fn new() -> Self {
        let string = &<&str as ComponentType>::ABI;
        let option_string = &<Option<&str> as ComponentType>::ABI;
        let u8_ = &<u8 as ComponentType>::ABI;
        let u32_ = &<u32 as ComponentType>::ABI;
        let u64_ = &<u64 as ComponentType>::ABI;
        let option_u64 = &<Option<u64> as ComponentType>::ABI;
        // The conversation record, at the start of the context.
        let mut at = 0usize;
        let id = next_field(string, &mut at);
        let channel = next_field(string, &mut at);
        let account = next_field(string, &mut at);
        let brand = next_field(option_string, &mut at);
        let language = next_field(option_string, &mut at);
        let customer = next_field(string, &mut at);
        let kind = next_field(&<MessageKind as ComponentType>::ABI, &mut at);
        let text = next_field(string, &mut at);
        let priority = next_field(u8_, &mut at);
        let previous_agent = next_field(option_string, &mut at);
        let previous_agent_at = next_field(option_u64, &mut at);
        let waiting_since = next_field(u64_, &mut at);
        // The context's own fields after it: the conversation's size is its record's.
        let mut at = 0usize;
        next_field(&<ConversationRef<'static> as ComponentType>::ABI, &mut at);
        let candidates = next_field(&<&[CandidateRow] as ComponentType>::ABI, &mut at);
        let queue = next_field(&<router::QueueStats as ComponentType>::ABI, &mut at);
        let now = next_field(u64_, &mut at);
        let mut q = 0usize;
        let queue_waiting = queue + next_field(u32_, &mut q);
        let queue_oldest_wait_ms = queue + next_field(u64_, &mut q);
        let queue_average_handle_ms = queue + next_field(u64_, &mut q);
        let record = &<ContextRef<'static> as ComponentType>::ABI;
        ContextLayout {
            id,
            channel,
            account,
            brand,
            brand_payload: brand + option_payload(string),
            language,
            language_payload: language + option_payload(string),
            customer,
            kind,
            text,
            priority,
            previous_agent,
            previous_agent_payload: previous_agent + option_payload(string),
            previous_agent_at,
            previous_agent_at_payload: previous_agent_at + option_payload(u64_),
            waiting_since,
            candidates,
            queue_waiting,
            queue_oldest_wait_ms,
            queue_average_handle_ms,
            now,
            size: record.size32 as usize,
            align: record.align32,
        }
    }
}

/// The layout [`ContextRef`]'s lowering writes.
pub(crate) const LAYOUT: ContextLayout = ContextLayout::new();

/// `router.context` (0.2) as the canonical ABI lays it out in a 32-bit memory, worked out
/// from the specification (strings and lists: pointer and length, 4 bytes each;
/// `option<string>`: a tag byte, the pair at 4; `option<u64>`: a tag byte, the value at
/// 8; `message-kind`: an enum of 3 cases, one byte; records aligned to their widest
/// field). A wasmtime that computes anything else has changed what this file relies on.
pub(crate) const SPEC: ContextLayout = ContextLayout {
    id: 0,
    channel: 8,
    account: 16,
    brand: 24,
    brand_payload: 28,
    language: 36,
    language_payload: 40,
    customer: 48,
    kind: 56,
    text: 60,
    priority: 68,
    previous_agent: 72,
    previous_agent_payload: 76,
    previous_agent_at: 88,
    previous_agent_at_payload: 96,
    waiting_since: 104,
    candidates: 112,
    queue_waiting: 120,
    queue_oldest_wait_ms: 128,
    queue_average_handle_ms: 136,
    now: 144,
    size: 152,
    align: 8,
};

/// `Err` names what the hand-written lowering would get wrong in this build of wasmtime.
pub(crate) fn self_check() -> Result<(), String> {
    let mut differences = Vec::new();
    if LAYOUT != SPEC {
        differences.push(format!(
            "router.context's offsets (0.2) are {LAYOUT:?}, the canonical ABI's are {SPEC:?}"
        ));
    }
    let generated = <router::Context as ComponentType>::ABI;
    if generated.size32 as usize != SPEC.size || generated.align32 != SPEC.align {
        differences.push(format!(
            "the generated router.context (0.2) is {generated:?}, the lowering writes {} \
             bytes aligned to {}",
            SPEC.size, SPEC.align
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join("; "))
    }
}

/// A string to copy in: where the guest allocated it, and its bytes.
struct Placed<'a> {
    ptr: usize,
    bytes: &'a [u8],
}

/// Allocates `s` in the guest (as the canonical ABI does, even when empty).
fn place<'a, T>(cx: &mut LowerContext<'_, T>, s: &'a str) -> wasmtime::Result<Placed<'a>> {
    let ptr = cx.realloc(0, 0, 1, s.len())?;
    Ok(Placed {
        ptr,
        bytes: s.as_bytes(),
    })
}

/// A string's (pointer, length) pair at `at`.
fn put_string(rec: &mut [u8], at: usize, s: &Placed<'_>) -> wasmtime::Result<()> {
    put_pair(rec, at, s.ptr, s.bytes.len())
}

/// An `option<string>` at `at` (its value at `payload`).
fn put_option(
    rec: &mut [u8],
    at: usize,
    payload: usize,
    s: Option<&Placed<'_>>,
) -> wasmtime::Result<()> {
    match s {
        Some(s) => {
            put(rec, at, [1])?;
            put_string(rec, payload, s)
        }
        None => put(rec, at, [0]),
    }
}

fn kind_byte(kind: MessageKind) -> u8 {
    match kind {
        MessageKind::PublicPost => 0,
        MessageKind::PrivateMessage => 1,
        MessageKind::Comment => 2,
    }
}

impl ContextRef<'_> {
    /// Writes the context as the record at `offset` of the guest's memory (see the module
    /// docs).
    fn store<T>(&self, cx: &mut LowerContext<'_, T>, offset: usize) -> wasmtime::Result<()> {
        let c = &self.conversation;
        let id = place(cx, c.id)?;
        let channel = place(cx, c.channel)?;
        let account = place(cx, c.account)?;
        let brand = c.brand.map(|s| place(cx, s)).transpose()?;
        let language = c.language.map(|s| place(cx, s)).transpose()?;
        let customer = place(cx, c.customer)?;
        let text = place(cx, c.text)?;
        let previous_agent = c.previous_agent.map(|s| place(cx, s)).transpose()?;
        let rows = self.candidates.len() * ROW_SIZE;
        let list = cx.realloc(0, 0, 8, rows)?;

        let memory = cx.as_slice_mut();
        let strings = [Some(&id), Some(&channel), Some(&account), brand.as_ref()]
            .into_iter()
            .chain([language.as_ref(), Some(&customer), Some(&text)])
            .chain([previous_agent.as_ref()])
            .flatten();
        for s in strings {
            match memory
                .get_mut(s.ptr..)
                .and_then(|m| m.get_mut(..s.bytes.len()))
            {
                Some(target) => target.copy_from_slice(s.bytes),
                None => wasmtime::bail!("the guest allocated a string outside its memory"),
            }
        }
        let Some(target) = memory.get_mut(list..).and_then(|m| m.get_mut(..rows)) else {
            wasmtime::bail!("the candidates' list lies outside the guest's memory");
        };
        CandidateRow::write_all(target, self.candidates);
        let Some(rec) = memory
            .get_mut(offset..)
            .and_then(|m| m.get_mut(..LAYOUT.size))
        else {
            wasmtime::bail!("router.context lies outside the guest's memory");
        };
        // The guest's fresh allocation may hold old bytes: padding is zeroed too.
        rec.fill(0);
        let l = &LAYOUT;
        put_string(rec, l.id, &id)?;
        put_string(rec, l.channel, &channel)?;
        put_string(rec, l.account, &account)?;
        put_option(rec, l.brand, l.brand_payload, brand.as_ref())?;
        put_option(rec, l.language, l.language_payload, language.as_ref())?;
        put_string(rec, l.customer, &customer)?;
        put(rec, l.kind, [kind_byte(c.kind)])?;
        put_string(rec, l.text, &text)?;
        put(rec, l.priority, [c.priority])?;
        put_option(
            rec,
            l.previous_agent,
            l.previous_agent_payload,
            previous_agent.as_ref(),
        )?;
        if let Some(at) = c.previous_agent_at {
            put(rec, l.previous_agent_at, [1])?;
            put(rec, l.previous_agent_at_payload, at.to_le_bytes())?;
        }
        put(rec, l.waiting_since, c.waiting_since.to_le_bytes())?;
        put(rec, l.candidates, u32::try_from(list)?.to_le_bytes())?;
        let count = u32::try_from(self.candidates.len())?;
        put(rec, l.candidates + 4, count.to_le_bytes())?;
        put(rec, l.queue_waiting, self.queue.waiting.to_le_bytes())?;
        put(
            rec,
            l.queue_oldest_wait_ms,
            self.queue.oldest_wait_ms.to_le_bytes(),
        )?;
        put(
            rec,
            l.queue_average_handle_ms,
            self.queue.average_handle_ms.to_le_bytes(),
        )?;
        put(rec, l.now, self.now.to_le_bytes())
    }
}

// SAFETY: `store` writes the record at exactly the canonical ABI's offsets for
// `router.context` (0.2) within its size (`self_check`, run before the runtime takes
// this path, and the tests below), every string and the candidates' list into fresh
// guest allocations made through the guest's own `cabi_realloc`, with the values the
// derived lowering would write; every write is bounds-checked against the guest's
// memory. The type is checked against each component by the derived `ComponentType`
// (`roster::check_route`). The context has more flat values than a call passes in
// registers, so wasmtime always lowers it into memory; the flat form is refused.
#[allow(unsafe_code)]
unsafe impl Lower for ContextRef<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        _cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        _dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        wasmtime::bail!("`router.context` is only passed in memory")
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.store(cx, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::{LAYOUT, SPEC, self_check};

    #[test]
    fn the_context_layout_is_the_canonical_abis() {
        assert_eq!(LAYOUT, SPEC);
        assert_eq!(self_check(), Ok(()));
    }
}
