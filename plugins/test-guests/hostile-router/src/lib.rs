//! Test guest: a routing policy that misbehaves when the customer's text asks it to.
//!
//! - `panic`: panics (a trap for the host).
//! - `loop`: never returns (the host's epoch deadline must cut it off).
//! - `bomb`: allocates until memory runs out (the host's memory cap must stop it).
//! - `stdout`: prints to stdout and stderr (the host must log it, tagged).
//! - `echo`: passes, with every candidate as it arrived written out in the reason (the host
//!   tests that what it lowers is what it meant).
//! - anything else: assigns the first candidate.
//!
//! Built against the frozen contract 0.1.0: it exercises the 0.1 routing path (the
//! borrowed fast path lowers every operator's strings), which 0.1 policies keep.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "routing-policy" });
centralino_sdk::plugin_metadata!(contract = "0.1.0");
// The routing policies' allocator, so the echo test checks lowering through it too.
centralino_sdk::small_object_allocator!();

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{Action, Context, Decision, Guest, Presence};

struct Hostile;

impl Guest for Hostile {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), PluginError> {
        Ok(())
    }

    #[allow(clippy::panic)]
    fn route(context: Context) -> Result<Decision, PluginError> {
        match context.conversation.text.as_str() {
            "panic" => panic!("hostile-router was asked to panic"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "echo" => {
                let agents: Vec<String> = context
                    .agents
                    .iter()
                    .map(|a| {
                        format!(
                            "{}|{}|{}|{}|{}|{}|{}|{}|{:?}",
                            a.id,
                            a.name,
                            a.skills.join(","),
                            a.languages.join(","),
                            a.accounts.join(","),
                            a.capacity,
                            a.load,
                            match a.presence {
                                Presence::Online => "online",
                                Presence::Away => "away",
                                Presence::Offline => "offline",
                            },
                            a.last_assigned_at
                        )
                    })
                    .collect();
                return Ok(Decision {
                    action: Action::Pass,
                    priority: None,
                    reason: agents.join("\n"),
                });
            }
            "stdout" => {
                println!("hello from hostile-router stdout");
                eprintln!("hello from hostile-router stderr");
            }
            _ => {}
        }
        let first = context.agents.first().map(|a| a.id.clone());
        Ok(Decision {
            action: match first {
                Some(id) => Action::Assign(id),
                None => Action::Narrow(Vec::new()),
            },
            priority: None,
            reason: "hostile-router: first candidate".to_string(),
        })
    }
}

export!(Hostile);
