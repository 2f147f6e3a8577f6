//! Test guest: a contract 0.3 routing policy whose `route` export is written by hand and
//! returns, on request, a result the canonical ABI does not define, so the host's tests
//! can check that its hand-written reading of `route`'s result (`route_answer.rs`) refuses
//! each one as a fault of this plugin, never a panic, and that the next call works.
//!
//! The conversation's `priority` picks what comes back: 0 a well-formed `pass`, 1 a result
//! tag that is neither `ok` nor `err`, 2 an action tag past `pass`, 3 a priority option
//! tag past `some`, 4 `narrow` with its list outside memory, 5 `narrow` with a misaligned
//! list, 6 a reason outside memory, 7 a reason that is not UTF-8, 8 `assign` of a handle
//! never announced.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "routing-policy",
    skip: ["route"],
});
centralino_sdk::plugin_metadata!();

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{Agent, AgentHandle, Guest, Name};

struct Malformed;

impl Guest for Malformed {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), PluginError> {
        Ok(())
    }

    fn update_roster(_upserts: Vec<Agent>, _removed: Vec<AgentHandle>) {}

    fn update_names(_names: Vec<Name>) {}
}

export!(Malformed);

/// The result area `route` returns: `result<decision, plugin-error>` is 32 bytes, aligned
/// to 8 (the tag at 0; the decision at 8: its action's tag at 8 and payload at 12, its
/// priority's tag at 20 and value at 21, its reason's pointer and length at 24 and 28).
static mut RESULT: [u8; 32] = [0; 32];

/// Where a misaligned narrow points into (aligned to 4).
static mut HANDLES: [u32; 2] = [0; 2];

const REASON: &[u8] = b"malformed-router";
const NOT_UTF8: &[u8] = &[0xff, 0xfe, 0xfd];

/// `route`, with the canonical ABI's 16 core parameters (see `centralino_sdk::FlatRoute`).
///
/// # Safety
/// Called by the host as the canonical ABI calls `route` (the candidates' list is left
/// allocated: a test guest).
#[unsafe(export_name = "centralino:plugin/router@0.3.0#route")]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn route(
    _channel: i32,
    _account: i32,
    _brand_tag: i32,
    _brand: i32,
    _language_tag: i32,
    _language: i32,
    _kind: i32,
    priority: i32,
    _previous_agent_tag: i32,
    _previous_agent: i32,
    _previous_agent_at_tag: i32,
    _previous_agent_at: i64,
    _waiting_since: i64,
    candidates: *mut u8,
    candidates_len: usize,
    _now: i64,
) -> *mut u8 {
    let _ = (candidates, candidates_len);
    // SAFETY: the instance is single-threaded and the host reads the result before the
    // next call.
    unsafe {
        let out = &raw mut RESULT;
        let handles = &raw mut HANDLES;
        let mut bytes = [0u8; 32];
        let word = |bytes: &mut [u8; 32], at: usize, value: u32| {
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        };
        // A well-formed `ok(decision { action: pass, priority: none, reason })`.
        bytes[8] = 3;
        word(&mut bytes, 24, REASON.as_ptr() as u32);
        word(&mut bytes, 28, REASON.len() as u32);
        match priority {
            1 => bytes[0] = 2,
            2 => bytes[8] = 9,
            3 => bytes[20] = 5,
            4 => {
                bytes[8] = 1;
                word(&mut bytes, 12, 0xffff_fff0);
                word(&mut bytes, 16, 4);
            }
            5 => {
                bytes[8] = 1;
                word(&mut bytes, 12, (handles as u32) + 2);
                word(&mut bytes, 16, 1);
            }
            6 => {
                word(&mut bytes, 24, 0xffff_fff0);
                word(&mut bytes, 28, 64);
            }
            7 => {
                word(&mut bytes, 24, NOT_UTF8.as_ptr() as u32);
                word(&mut bytes, 28, NOT_UTF8.len() as u32);
            }
            8 => {
                bytes[8] = 0;
                word(&mut bytes, 12, 0x7fff_ffff);
            }
            _ => {}
        }
        (*out) = bytes;
        out.cast()
    }
}
