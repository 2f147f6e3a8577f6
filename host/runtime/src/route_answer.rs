//! What `route` returns (0.2 and 0.3), read out of the guest's memory by hand.
//!
//! The derived lifting of `result<decision, plugin-error>` works out every field's offset
//! at run time from the component's type tables (wasmtime's `next_field32_size`, about a
//! tenth of the host's share of a 9-operator decision in the profile) and goes through
//! the generic `Result` and variant code. A decision is read here at offsets computed at
//! compile time from wasmtime's own layouts ([`LAYOUT`]): the action's case and handle or
//! handles, the priority, and the reason through wasmtime's own string lifting (which
//! checks the bounds and the encoding). A plugin's error, the rare case, goes through the
//! derived lifting unchanged.
//!
//! Fenced like the rest of the fast path: the type is checked against each component by
//! the derived `typecheck`, [`self_check`] compares [`LAYOUT`] with the canonical ABI's
//! numbers, and `runtime::fast_path` compares every policy's decisions through this code
//! and through the generated bindings.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

use crate::bindings::latest::{router, types};
use crate::borrowed::{next_field, option_payload};

/// `route`'s result, lifted by hand when it is a decision.
pub(crate) struct RouteAnswer(pub(crate) Result<router::Decision, types::PluginError>);

type Derived = Result<router::Decision, types::PluginError>;

/// Byte offsets into `result<decision, plugin-error>` (32-bit memory).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AnswerLayout {
    /// The decision, after the result's tag.
    decision: usize,
    /// The action's case tag, and its payload (a handle, or a list's pointer and length).
    action_payload: usize,
    priority: usize,
    priority_payload: usize,
    reason: usize,
}

impl AnswerLayout {
    const fn new() -> Self {
        // The result's payload comes after its one-byte tag, aligned to the larger of
        // its two cases.
        let ok = &<router::Decision as ComponentType>::ABI;
        let err = &<types::PluginError as ComponentType>::ABI;
        let align = if ok.align32 > err.align32 {
            ok.align32
        } else {
            err.align32
        };
        let decision = (1usize).next_multiple_of(align as usize);
        let mut at = 0usize;
        next_field(&<router::Action as ComponentType>::ABI, &mut at);
        let priority = next_field(&<Option<u8> as ComponentType>::ABI, &mut at);
        let reason = next_field(&<String as ComponentType>::ABI, &mut at);
        // The action's payload: after its tag, aligned to its widest case (a list).
        let action_payload =
            (1usize).next_multiple_of(<Vec<u32> as ComponentType>::ABI.align32 as usize);
        AnswerLayout {
            decision,
            action_payload,
            priority,
            priority_payload: option_payload(&<u8 as ComponentType>::ABI),
            reason,
        }
    }
}

pub(crate) const LAYOUT: AnswerLayout = AnswerLayout::new();

/// The same offsets written out from the canonical ABI specification: the result's tag
/// at 0, its payload at 8 (`plugin-error`'s `rate-limit` holds a u64); the decision's
/// action tag at 0 and payload at 4 (a u32 or a list's pointer and length), the
/// priority's tag at 12 and value at 13, the reason's pointer and length at 16.
pub(crate) const SPEC: AnswerLayout = AnswerLayout {
    decision: 8,
    action_payload: 4,
    priority: 12,
    priority_payload: 1,
    reason: 16,
};

/// What the hand-written lifting assumes: `Err` names what differs.
pub(crate) fn self_check() -> Result<(), String> {
    if LAYOUT != SPEC {
        return Err(format!(
            "route's result is laid out as {LAYOUT:?}, the canonical ABI says {SPEC:?}"
        ));
    }
    let abi = <Derived as ComponentType>::ABI;
    let decision = <router::Decision as ComponentType>::ABI;
    if (abi.size32 as usize) < LAYOUT.decision + decision.size32 as usize {
        return Err(format!(
            "route's result is {abi:?}, too short for a decision ({decision:?}) at {}",
            LAYOUT.decision
        ));
    }
    Ok(())
}

// SAFETY: the type's ABI and type check are the derived `Result`'s, so wasmtime allocates,
// checks and passes exactly what it would for it.
#[allow(unsafe_code)]
unsafe impl ComponentType for RouteAnswer {
    type Lower = <Derived as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <Derived as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Derived as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads only `bytes` (the result, `Self::ABI.size32` bytes as wasmtime passes it)
// at offsets inside it, and guest memory through bounds-checked slices; anything the
// canonical ABI does not define is an error, as in the derived lifting.
#[allow(unsafe_code)]
unsafe impl Lift for RouteAnswer {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        <Derived as Lift>::linear_lift_from_flat(cx, ty, src).map(RouteAnswer)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        if bytes.first() != Some(&0) {
            return <Derived as Lift>::linear_lift_from_memory(cx, ty, bytes).map(RouteAnswer);
        }
        let Some(d) = bytes.get(LAYOUT.decision..) else {
            wasmtime::bail!("route's result is shorter than a decision");
        };
        let word = |at: usize| -> wasmtime::Result<u32> {
            match d.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
                Some(w) => Ok(u32::from_le_bytes(w)),
                None => wasmtime::bail!("route's decision is shorter than its layout"),
            }
        };
        let byte = |at: usize| d.get(at).copied().unwrap_or(u8::MAX);
        let payload = LAYOUT.action_payload;
        let action = match byte(0) {
            0 => router::Action::Assign(word(payload)?),
            1 => router::Action::Narrow(handles(cx.memory(), word(payload)?, word(payload + 4)?)?),
            2 => router::Action::Enqueue,
            3 => router::Action::Pass,
            tag => wasmtime::bail!("unexpected discriminant: {tag}"),
        };
        let priority = match byte(LAYOUT.priority) {
            0 => None,
            1 => Some(byte(LAYOUT.priority + LAYOUT.priority_payload)),
            tag => wasmtime::bail!("invalid option discriminant: {tag}"),
        };
        let Some(reason) = d.get(LAYOUT.reason..LAYOUT.reason + 8) else {
            wasmtime::bail!("route's decision is shorter than its layout");
        };
        let reason = <String as Lift>::linear_lift_from_memory(cx, InterfaceType::String, reason)?;
        Ok(RouteAnswer(Ok(router::Decision {
            action,
            priority,
            reason,
        })))
    }
}

/// The `list<agent-handle>` of `len` handles at `ptr` in `memory`: bounds and alignment
/// checked as the canonical ABI requires.
fn handles(memory: &[u8], ptr: u32, len: u32) -> wasmtime::Result<Vec<u32>> {
    if !ptr.is_multiple_of(4) {
        wasmtime::bail!("list pointer is not aligned");
    }
    let start = ptr as usize;
    let Some(bytes) = (len as usize)
        .checked_mul(4)
        .and_then(|size| memory.get(start..start.checked_add(size)?))
    else {
        wasmtime::bail!("list pointer/length out of bounds of memory");
    };
    Ok(bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hand_written_layout_is_the_canonical_abis() {
        assert_eq!(super::LAYOUT, super::SPEC);
        assert_eq!(super::self_check(), Ok(()));
    }
}
