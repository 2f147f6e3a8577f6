//! The `route` export of contract 0.3, written by hand instead of generated.
//!
//! Contract 0.3 passes `route` flat values: the conversation as numbers (its repeating
//! strings, channel, account, brand and language, as handles announced once per instance by
//! `update-names`; the rest asked for through the `current-conversation` import by the
//! policies that read it), the candidates' list and the time. Under 0.2 the call carried
//! a `context` record with seven strings: each was a `cabi_realloc` entry into the guest
//! while the host lowered it, and the record, at 17 flat values, went through an argument
//! area as well, one more allocation and entry. That shape was about half of a 9-operator
//! decision (`BENCHMARKS.md` §1, "late afternoon": 518–584 ns of 1.03–1.11 µs). The
//! canonical ABI flattens 0.3's parameters into 16 core values, its `MAX_FLAT_PARAMS`, so
//! they arrive as the export's own parameters ([`FlatRoute`]): no argument area, no string
//! to take over, one `cabi_realloc` for the candidates' list.
//!
//! The generated export would copy the call's candidates, row by row, out of the list the
//! host wrote into a fresh `Vec` before the policy saw them, and free the list: at 200
//! operators that copy was about a seventh of a decision (`BENCHMARKS.md` §1). Here the
//! policy reads the host's rows where they lie ([`CandidateRow`], the canonical ABI's
//! layout of `router.candidate`, the same as in 0.2), the list is freed with the layout
//! the host allocated it with, and the decision is handed back from where the policy built
//! it (kept until the next call) instead of being shrunk into a fresh allocation first.
//!
//! The parameters' order is the canonical ABI's flattening of `route`'s parameters, and
//! the offsets are its layout of `result<decision, plugin-error>` (the generated bindings
//! use the same ones, written in terms of the pointer size); the host's fast-path tests
//! run every routing policy in the tree and `roster-echo`, which writes back every field
//! it received, through this code.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::size_of;

use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    Action, Conversation, Decision, Presence,
};
use crate::{MessageKind, PluginError};

/// Pointer size: the canonical ABI's strings and lists are a pointer and a length.
const P: usize = size_of::<*const u8>();

/// `route`'s parameters as the canonical ABI flattens them into core values: the
/// conversation's fields in the record's order (each `option` as its tag and its value,
/// whose bits mean nothing when the tag is 0; a `u32`, the `u8` and the enum as an `i32`,
/// a `u64` as an `i64`), then the candidates' list (a pointer and a length, `i32`s in a
/// 32-bit memory) and the time. [`export_router!`](crate::export_router) exports a
/// function taking exactly these 16 values, in this order, and passes them on as one
/// `FlatRoute`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct FlatRoute {
    pub channel: i32,
    pub account: i32,
    pub brand_tag: i32,
    pub brand: i32,
    pub language_tag: i32,
    pub language: i32,
    pub kind: i32,
    pub priority: i32,
    pub previous_agent_tag: i32,
    pub previous_agent: i32,
    pub previous_agent_at_tag: i32,
    pub previous_agent_at: i64,
    pub waiting_since: i64,
    pub candidates: *mut u8,
    pub candidates_len: usize,
    pub now: i64,
}

/// `router.candidate` as the host lays it out in the list it passes to `route`: `agent`
/// at 0, `load` at 4, `presence` (a byte) at 8, `last-assigned-at` (`option<u64>`: a tag
/// byte at 16, the value at 24); 32 bytes, aligned to 8. Every field is an integer, so any
/// bytes are a valid row; the presence and the option's tag are checked by
/// [`CandidateRow::presence`] and [`CandidateRow::last_assigned_at`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct CandidateRow {
    pub(crate) agent: u32,
    pub(crate) load: u32,
    presence: u8,
    _pad: [u8; 7],
    last_tag: u8,
    _pad2: [u8; 7],
    last_value: u64,
}

const _: () = assert!(size_of::<CandidateRow>() == 32);
const _: () = assert!(std::mem::align_of::<CandidateRow>() == 8);

impl CandidateRow {
    /// A row with these raw bytes, as a host would write it (for the SDK's tests).
    #[cfg(test)]
    pub(crate) fn raw(agent: u32, load: u32, presence: u8, last_tag: u8, last_value: u64) -> Self {
        CandidateRow {
            agent,
            load,
            presence,
            _pad: [0; 7],
            last_tag,
            _pad2: [0; 7],
            last_value,
        }
    }

    /// The row's presence; `None` for a byte the contract does not define.
    pub(crate) fn presence(&self) -> Option<Presence> {
        // A table, not a `match`: the match compiled to a jump table, an indirect branch
        // for every candidate of every call.
        const BY_BYTE: [Presence; 3] = [Presence::Online, Presence::Away, Presence::Offline];
        BY_BYTE.get(usize::from(self.presence)).copied()
    }

    /// The row's last assignment; the outer `None` for a tag the contract does not define.
    pub(crate) fn last_assigned_at(&self) -> Option<Option<u64>> {
        // Two comparisons rather than a `match`, which compiled to more per row: 39,137
        // instructions per 200-operator `least-loaded` decision against 37,534.
        (self.last_tag <= 1).then_some((self.last_tag == 1).then_some(self.last_value))
    }
}

/// The candidates' list as the host allocated it: freed when this drops.
struct Rows {
    ptr: *mut CandidateRow,
    count: usize,
}

impl Drop for Rows {
    /// Frees the candidates' list with the layout the host allocated it with.
    fn drop(&mut self) {
        if self.count > 0 {
            // SAFETY: allocated by the host through `cabi_realloc` (this crate's global
            // allocator) with exactly this size and alignment (`lift`'s promise); freed
            // once, here.
            unsafe { dealloc(self.ptr.cast(), self.count * 32, 8) };
        }
    }
}

/// One `route` call's arguments, lifted from the core values the host passed.
pub(crate) struct Arguments {
    /// The conversation, its strings still as handles.
    pub(crate) conversation: Conversation,
    rows: Rows,
    pub(crate) now: u64,
}

impl Arguments {
    /// The candidates, where the host wrote them.
    pub(crate) fn rows(&self) -> &[CandidateRow] {
        if self.rows.count == 0 {
            return &[];
        }
        // SAFETY: the host allocated `count` rows of 32 bytes at `ptr`, aligned to 8
        // (`cabi_realloc` with the list's layout), and wrote them before the call; any
        // bytes are a valid `CandidateRow`; the list lives until `Rows` drops.
        unsafe { std::slice::from_raw_parts(self.rows.ptr, self.rows.count) }
    }
}

/// Frees `size` bytes at `ptr` aligned to `align` (nothing for an empty allocation, which
/// `cabi_realloc` never made).
///
/// # Safety
/// `ptr` was allocated by the global allocator with this size and alignment.
unsafe fn dealloc(ptr: *mut u8, size: usize, align: usize) {
    if size == 0 {
        return;
    }
    if let Ok(layout) = std::alloc::Layout::from_size_align(size, align) {
        // SAFETY: the caller's promise.
        unsafe { std::alloc::dealloc(ptr, layout) };
    }
}

/// An `option`'s value from its flat tag and value; `what` names the field in the error
/// for a tag the contract does not define.
fn option<T>(tag: i32, value: T, what: &str) -> Result<Option<T>, PluginError> {
    match tag {
        0 => Ok(None),
        1 => Ok(Some(value)),
        other => Err(PluginError::InvalidInput(format!(
            "the host sent the conversation's {what} with option tag {other}, which contract \
             0.3 does not define"
        ))),
    }
}

/// The conversation from its flat values (the canonical ABI's lifting: integers of fewer
/// than 32 bits keep their low bits; a tag or a case the contract does not define is
/// refused, by name, where the ABI would trap).
pub(crate) fn conversation(flat: &FlatRoute) -> Result<Conversation, PluginError> {
    let kind = match flat.kind {
        0 => MessageKind::PublicPost,
        1 => MessageKind::PrivateMessage,
        2 => MessageKind::Comment,
        other => {
            return Err(PluginError::InvalidInput(format!(
                "the host sent message kind {other}, which contract 0.3 does not define"
            )));
        }
    };
    Ok(Conversation {
        channel: flat.channel as u32,
        account: flat.account as u32,
        brand: option(flat.brand_tag, flat.brand as u32, "brand")?,
        language: option(flat.language_tag, flat.language as u32, "language")?,
        kind,
        priority: flat.priority as u8,
        previous_agent: option(
            flat.previous_agent_tag,
            flat.previous_agent as u32,
            "previous agent",
        )?,
        previous_agent_at: option(
            flat.previous_agent_at_tag,
            flat.previous_agent_at as u64,
            "previous agent's time",
        )?,
        waiting_since: flat.waiting_since as u64,
    })
}

/// Lifts `route`'s arguments. The candidates' list is taken over first, so it is freed
/// whatever the rest holds.
///
/// # Safety
/// `flat` holds the values the host passed to `route`, passed once: `candidates` points to
/// `candidates_len` rows of 32 bytes aligned to 8 that the host allocated through
/// `cabi_realloc` with exactly that layout and wrote (any pointer when the length is 0).
pub(crate) unsafe fn lift(flat: FlatRoute) -> Result<Arguments, PluginError> {
    let rows = Rows {
        ptr: flat.candidates.cast(),
        count: flat.candidates_len,
    };
    Ok(Arguments {
        conversation: conversation(&flat)?,
        rows,
        now: flat.now as u64,
    })
}

/// The size of `result<decision, plugin-error>` (32 bytes in a 32-bit memory).
const RESULT_SIZE: usize = 8 + 6 * P;

/// Where the result is handed to the host: the canonical ABI's `result<decision,
/// plugin-error>` (aligned to 8), and the value its pointers point into, kept until the
/// next call replaces it. The export declares no `post-return`: the host has copied the
/// result out when the call returns, and freeing it then would be one more entry into the
/// instance per decision (about 300 instructions of wasmtime's, 2.5% of a decision over 9
/// operators, `BENCHMARKS.md` §1) to free memory the next call frees anyway.
#[repr(C, align(8))]
struct Returned {
    area: [u8; RESULT_SIZE],
    kept: Option<Result<Decision, PluginError>>,
}

struct ReturnSlot(UnsafeCell<Returned>);

// SAFETY: a component instance runs one call at a time on one thread; the slot is written
// by `route`, read by the host before the call returns, and replaced by the next call.
unsafe impl Sync for ReturnSlot {}

static RETURNED: ReturnSlot = ReturnSlot(UnsafeCell::new(Returned {
    area: [0; RESULT_SIZE],
    kept: None,
}));

/// Writes `value` at `at` bytes into `area`.
fn put<const N: usize>(area: &mut [u8; RESULT_SIZE], at: usize, value: [u8; N]) {
    if let Some(target) = area.get_mut(at..at + N) {
        target.copy_from_slice(&value);
    }
}

/// Writes a pointer and a length at `at`.
fn put_pair(area: &mut [u8; RESULT_SIZE], at: usize, ptr: *const u8, len: usize) {
    put(area, at, (ptr as usize).to_ne_bytes());
    put(area, at + P, len.to_ne_bytes());
}

/// Keeps `result` until the next call (dropping the last one) and returns the area
/// describing it to the host.
pub(crate) fn hand_back(result: Result<Decision, PluginError>) -> *mut u8 {
    // SAFETY: see `ReturnSlot`: nothing else holds the slot during a call.
    let returned = unsafe { &mut *RETURNED.0.get() };
    returned.area = [0; RESULT_SIZE];
    let kept = returned.kept.insert(result);
    let area = &mut returned.area;
    match kept {
        Ok(decision) => {
            put(area, 0, [0]);
            match &decision.action {
                Action::Assign(handle) => {
                    put(area, 8, [0]);
                    put(area, 8 + P, handle.to_ne_bytes());
                }
                Action::Narrow(handles) => {
                    put(area, 8, [1]);
                    put_pair(area, 8 + P, handles.as_ptr().cast(), handles.len());
                }
                Action::Enqueue => put(area, 8, [2]),
                Action::Pass => put(area, 8, [3]),
            }
            if let Some(priority) = decision.priority {
                put(area, 8 + 3 * P, [1, priority]);
            }
            put_pair(
                area,
                8 + 4 * P,
                decision.reason.as_ptr(),
                decision.reason.len(),
            );
        }
        Err(error) => {
            put(area, 0, [1]);
            // The case, and where its text goes (after the retry delay for `rate-limited`).
            let (case, at, detail): (u8, usize, &String) = match error {
                PluginError::InvalidCredentials(detail) => (0, 16, detail),
                PluginError::RateLimited(limit) => {
                    put(area, 16, limit.retry_after_ms.to_ne_bytes());
                    (1, 24, &limit.detail)
                }
                PluginError::Rejected(detail) => (2, 16, detail),
                PluginError::Transient(detail) => (3, 16, detail),
                PluginError::InvalidInput(detail) => (4, 16, detail),
            };
            put(area, 8, [case]);
            put_pair(area, at, detail.as_ptr(), detail.len());
        }
    }
    area.as_mut_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `route`'s values for a conversation on channel 1, account 2, no options set, with
    /// no candidates.
    fn flat() -> FlatRoute {
        FlatRoute {
            channel: 1,
            account: 2,
            brand_tag: 0,
            brand: 0,
            language_tag: 0,
            language: 0,
            kind: 1,
            priority: 0,
            previous_agent_tag: 0,
            previous_agent: 0,
            previous_agent_at_tag: 0,
            previous_agent_at: 0,
            waiting_since: 9,
            candidates: std::ptr::null_mut(),
            candidates_len: 0,
            now: 10,
        }
    }

    fn invalid_input(result: Result<Conversation, PluginError>) -> String {
        match result {
            Err(PluginError::InvalidInput(detail)) => detail,
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn the_conversation_is_lifted_from_its_flat_values() {
        let unset = conversation(&flat());
        assert_eq!(
            unset.ok(),
            Some(Conversation {
                channel: 1,
                account: 2,
                brand: None,
                language: None,
                kind: MessageKind::PrivateMessage,
                priority: 0,
                previous_agent: None,
                previous_agent_at: None,
                waiting_since: 9,
            })
        );
        let set = FlatRoute {
            // The bytes past the tag are ignored when it is 0, taken when it is 1.
            brand_tag: 1,
            brand: 3,
            language_tag: 1,
            language: -1,
            kind: 2,
            // A `u8` keeps the low byte.
            priority: 0x105,
            previous_agent_tag: 1,
            previous_agent: 7,
            previous_agent_at_tag: 1,
            previous_agent_at: 1_700_000_000_000,
            waiting_since: -1,
            ..flat()
        };
        assert_eq!(
            conversation(&set).ok(),
            Some(Conversation {
                channel: 1,
                account: 2,
                brand: Some(3),
                language: Some(u32::MAX),
                kind: MessageKind::Comment,
                priority: 5,
                previous_agent: Some(7),
                previous_agent_at: Some(1_700_000_000_000),
                waiting_since: u64::MAX,
            })
        );
        let values_without_tags = FlatRoute {
            brand: 3,
            previous_agent: 7,
            previous_agent_at: 5,
            kind: 0,
            ..flat()
        };
        assert_eq!(
            conversation(&values_without_tags).map(|c| (
                c.brand,
                c.previous_agent,
                c.previous_agent_at,
                c.kind
            )),
            Ok((None, None, None, MessageKind::PublicPost))
        );
    }

    #[test]
    fn a_tag_or_kind_the_contract_does_not_define_is_invalid_input_naming_it() {
        type SetTag = fn(&mut FlatRoute, i32);
        let cases: [(&str, SetTag); 4] = [
            ("brand", |f, tag| f.brand_tag = tag),
            ("language", |f, tag| f.language_tag = tag),
            ("previous agent", |f, tag| f.previous_agent_tag = tag),
            ("previous agent's time", |f, tag| {
                f.previous_agent_at_tag = tag
            }),
        ];
        for (what, set) in cases {
            for tag in [2, -1, 256] {
                let mut values = flat();
                set(&mut values, tag);
                let detail = invalid_input(conversation(&values));
                assert!(
                    detail.contains(&format!("conversation's {what} with option tag {tag},")),
                    "{detail}"
                );
                assert!(detail.contains("contract 0.3 does not define"), "{detail}");
            }
        }
        for kind in [3, -1] {
            let detail = invalid_input(conversation(&FlatRoute { kind, ..flat() }));
            assert!(
                detail.contains(&format!("message kind {kind},")),
                "{detail}"
            );
        }
    }

    /// A candidates' list as the host allocates it (`count` rows of 32 bytes, aligned to 8).
    fn host_list(rows: &[CandidateRow]) -> (*mut u8, usize) {
        let list: Box<[CandidateRow]> = rows.into();
        let count = list.len();
        (Box::into_raw(list).cast(), count)
    }

    #[test]
    fn lift_reads_the_candidates_in_place_and_frees_them_whatever_the_rest_holds() {
        let rows = [
            CandidateRow::raw(4, 1, 0, 1, 77),
            CandidateRow::raw(2, 0, 2, 0, 0),
        ];
        let (candidates, candidates_len) = host_list(&rows);
        // SAFETY: the list is allocated as the host allocates it, passed once.
        let lifted = unsafe {
            lift(FlatRoute {
                candidates,
                candidates_len,
                ..flat()
            })
        };
        let seen = lifted.map(|arguments| {
            assert_eq!(arguments.conversation.channel, 1);
            assert_eq!(arguments.now, 10);
            let agents: Vec<_> = arguments
                .rows()
                .iter()
                .map(|r| (r.agent, r.load, r.presence(), r.last_assigned_at()))
                .collect();
            assert_eq!(
                agents,
                [
                    (4, 1, Some(Presence::Online), Some(Some(77))),
                    (2, 0, Some(Presence::Offline), Some(None)),
                ]
            );
            // The arguments drop here, freeing the list.
        });
        assert!(seen.is_ok());
        // A bad tag: the error, and the list freed all the same.
        let (candidates, candidates_len) = host_list(&rows);
        // SAFETY: as above.
        let lifted = unsafe {
            lift(FlatRoute {
                candidates,
                candidates_len,
                brand_tag: 2,
                ..flat()
            })
        };
        assert!(matches!(lifted, Err(PluginError::InvalidInput(_))));
    }
}
