//! The `route` export of contract 0.2, written by hand instead of generated.
//!
//! The generated export copied the call's candidates, row by row, out of the list the
//! host wrote into a fresh `Vec` before the policy saw them, and freed the list: at 200
//! operators that copy was about a seventh of a decision (`BENCHMARKS.md` §1). Here the
//! policy reads the host's rows where they lie ([`CandidateRow`], the canonical ABI's
//! layout of `router.candidate`), and the decision is handed back from where the policy
//! built it (kept until the next call) instead of being shrunk into a fresh
//! allocation first. Everything else is what the generated code did: the conversation's
//! strings are taken over as owned `String`s, the argument area and the list are freed
//! with the layouts the host allocated them with.
//!
//! The offsets are the canonical ABI's for `router.context` and `result<decision,
//! plugin-error>` (the generated bindings use the same ones, written in terms of the
//! pointer size); the host's fast-path tests run every routing policy in the tree and
//! `roster-echo`, which writes back every field it received, through this code.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::size_of;

use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    Action, Conversation, Decision, Presence, QueueStats,
};
use crate::{MessageKind, PluginError};

/// Pointer size: the canonical ABI's strings and lists are a pointer and a length.
const P: usize = size_of::<*const u8>();

/// The size of `router.context`'s argument area (the host allocates it, aligned to 8).
const CONTEXT_SIZE: usize = 64 + 22 * P;

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

/// One `route` call's arguments, taken over from the host's argument area.
pub(crate) struct Arguments {
    pub(crate) conversation: Conversation,
    /// The candidates' list as the host allocated it (freed when the arguments drop).
    rows: *mut CandidateRow,
    count: usize,
    pub(crate) queue: QueueStats,
    pub(crate) now: u64,
}

impl Arguments {
    /// The candidates, where the host wrote them.
    pub(crate) fn rows(&self) -> &[CandidateRow] {
        if self.count == 0 {
            return &[];
        }
        // SAFETY: the host allocated `count` rows of 32 bytes at `rows`, aligned to 8
        // (`cabi_realloc` with the list's layout), and wrote them before the call; any
        // bytes are a valid `CandidateRow`; the list lives until `free_rows`.
        unsafe { std::slice::from_raw_parts(self.rows, self.count) }
    }
}

impl Drop for Arguments {
    /// Frees the candidates' list with the layout the host allocated it with.
    fn drop(&mut self) {
        if self.count > 0 {
            // SAFETY: allocated by the host through `cabi_realloc` (this crate's global
            // allocator) with exactly this size and alignment; freed once, here.
            unsafe { dealloc(self.rows.cast(), self.count * 32, 8) };
        }
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

/// Reads `T` at `at` bytes into `base`.
///
/// # Safety
/// `base + at` holds a `T` (alignment not required).
unsafe fn read<T: Copy>(base: *const u8, at: usize) -> T {
    // SAFETY: the caller's promise.
    unsafe { base.add(at).cast::<T>().read_unaligned() }
}

/// Takes over the string whose pointer and length are at `at`.
///
/// # Safety
/// `base + at` holds a string's pointer and length, allocated by the host through
/// `cabi_realloc` with exactly that length and alignment 1, holding UTF-8 (the canonical
/// ABI's promise), not taken over before.
unsafe fn string(base: *const u8, at: usize) -> String {
    // SAFETY: the caller's promise; an empty string's pointer is never freed.
    unsafe {
        let ptr: *mut u8 = read(base, at);
        let len: usize = read(base, at + P);
        String::from_utf8_unchecked(Vec::from_raw_parts(ptr, len, len))
    }
}

/// An `option<string>` whose tag is at `at` (its pointer and length at `at + P`).
///
/// # Safety
/// As [`string`], for the payload when the tag is 1.
unsafe fn option_string(base: *const u8, at: usize) -> Option<String> {
    // SAFETY: the caller's promise.
    unsafe { (read::<u8>(base, at) == 1).then(|| string(base, at + P)) }
}

/// Lifts `route`'s arguments and frees the argument area.
///
/// # Safety
/// `area` is the argument area the host lowered `router.context` into: `CONTEXT_SIZE`
/// bytes aligned to 8, allocated through `cabi_realloc`, passed once.
pub(crate) unsafe fn lift(area: *mut u8) -> Result<Arguments, PluginError> {
    // SAFETY: the offsets are the canonical ABI's for `router.context` (the generated
    // bindings read the same ones); every string is taken over exactly once.
    let lifted = unsafe {
        let a = area.cast_const();
        let kind = read::<u8>(a, 14 * P);
        let arguments = Arguments {
            conversation: Conversation {
                id: string(a, 0),
                channel: string(a, 2 * P),
                account: string(a, 4 * P),
                brand: option_string(a, 6 * P),
                language: option_string(a, 9 * P),
                customer: string(a, 12 * P),
                kind: MessageKind::PublicPost,
                text: string(a, 15 * P),
                priority: read(a, 17 * P),
                previous_agent: option_string(a, 18 * P),
                previous_agent_at: (read::<u8>(a, 8 + 20 * P) == 1).then(|| read(a, 16 + 20 * P)),
                waiting_since: read(a, 24 + 20 * P),
            },
            rows: read::<*mut CandidateRow>(a, 32 + 20 * P),
            count: read(a, 32 + 21 * P),
            queue: QueueStats {
                waiting: read(a, 32 + 22 * P),
                oldest_wait_ms: read(a, 40 + 22 * P),
                average_handle_ms: read(a, 48 + 22 * P),
            },
            now: read(a, 56 + 22 * P),
        };
        dealloc(area, CONTEXT_SIZE, 8);
        (arguments, kind)
    };
    let (mut arguments, kind) = lifted;
    arguments.conversation.kind = match kind {
        0 => MessageKind::PublicPost,
        1 => MessageKind::PrivateMessage,
        2 => MessageKind::Comment,
        other => {
            return Err(PluginError::InvalidInput(format!(
                "the host sent message kind {other}, which contract 0.2 does not define"
            )));
        }
    };
    Ok(arguments)
}

/// Runs `route` on the lifted arguments, which are freed afterwards.
pub(crate) fn run(
    arguments: Arguments,
    route: impl FnOnce(&Conversation, &[CandidateRow], QueueStats, u64) -> Result<Decision, PluginError>,
) -> Result<Decision, PluginError> {
    route(
        &arguments.conversation,
        arguments.rows(),
        arguments.queue,
        arguments.now,
    )
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
