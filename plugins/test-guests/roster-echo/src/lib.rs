//! Test guest: a contract 0.3 routing policy (on the SDK) that passes with every
//! candidate written out in the reason, as the SDK joined the call's candidates with the
//! profiles the host announced: the host tests that the roster kept in the instance and
//! each call's candidates say what the host meant. The format is `hostile-router`'s echo,
//! so every contract line is checked against the same expectation. With the text `first`
//! it assigns the first candidate; with `narrow` it narrows to the candidates in reverse
//! order; with `conversation` it passes with the conversation, the queue and the time
//! written out instead (`|`-separated, options as Rust prints them, the kind as its case
//! number): the strings the host announced by name handle, those it answered through
//! `current-conversation`, and the previous operator as the SDK resolved them.

use centralino_sdk::routing::{Decision, Presence, RoutingContext};
use centralino_sdk::{Result, Router};

centralino_sdk::small_object_allocator!();

struct RosterEcho;

impl Router for RosterEcho {
    fn configure(_settings: Vec<(String, String)>) -> Result<Self> {
        Ok(RosterEcho)
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        match context.conversation.text() {
            "first" => {
                return Ok(match context.candidates().next() {
                    Some(op) => Decision::assign(&op, "roster-echo: first candidate"),
                    None => Decision::narrow([], "roster-echo: nobody"),
                });
            }
            "narrow" => {
                return Ok(Decision::narrow(
                    context.candidates().rev(),
                    "roster-echo: reversed",
                ));
            }
            "conversation" => {
                let c = &context.conversation;
                let q = context.queue();
                return Ok(Decision::pass(format!(
                    "{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}",
                    c.id(),
                    c.channel(),
                    c.account(),
                    c.brand(),
                    c.language(),
                    c.customer(),
                    c.kind as u8,
                    c.text(),
                    c.priority,
                    c.previous_agent(),
                    c.previous_agent_at,
                    c.waiting_since,
                    q.waiting,
                    q.oldest_wait_ms,
                    q.average_handle_ms,
                    context.now
                )));
            }
            _ => {}
        }
        let lines: Vec<String> = context
            .candidates()
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
        Ok(Decision::pass(lines.join("\n")))
    }
}

centralino_sdk::export_router!(RosterEcho);
