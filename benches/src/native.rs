//! The `least-loaded` and `skills` policies compiled natively: the same logic as
//! `plugins/least-loaded/src/lib.rs` and `plugins/skills/src/lib.rs`, line for line, over
//! the host's own types. This is the limit a CRM reaches by compiling its routing into its
//! own code; the wasm figures are compared with it.
//!
//! The unit tests check that both agree with the plugins on the benchmark's rosters (the
//! decision benchmark checks it again against the loaded components before timing).

use std::cmp::Ordering;

use centralino::types::{Agent, Presence, RoutingAction, RoutingContext, RoutingDecision};

fn eligible(agent: &Agent) -> bool {
    agent.presence == Presence::Online && agent.load < agent.capacity
}

fn by_load_ratio(a: &Agent, b: &Agent) -> Ordering {
    let left = u64::from(a.load) * u64::from(b.capacity);
    let right = u64::from(b.load) * u64::from(a.capacity);
    left.cmp(&right)
}

fn recency_key(agent: &Agent) -> u64 {
    agent.last_assigned_at.map_or(0, |at| at.saturating_add(1))
}

/// A piece of a reason: the SDK's `reason!` takes text and unsigned numbers.
enum Part<'a> {
    Text(&'a str),
    Number(u64),
}

/// What the SDK's `reason!` does (`plugins/sdk/src/routing.rs`): one allocation, the
/// pieces appended in turn, numbers in decimal, no `core::fmt`.
fn reason(parts: &[Part<'_>]) -> String {
    let mut reason = String::with_capacity(64);
    for part in parts {
        match part {
            Part::Text(text) => reason.push_str(text),
            // A single digit as one character, as the SDK writes it.
            Part::Number(n @ 0..=9) => reason.push(char::from(b'0' + *n as u8)),
            Part::Number(n) => {
                let (mut digits, mut at, mut n) = ([0u8; 20], 20, *n);
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                for &digit in &digits[at..] {
                    reason.push(char::from(digit));
                }
            }
        }
    }
    reason
}

/// `least-loaded`: the eligible operator with the lowest load ratio, then the longest idle.
pub fn least_loaded(context: &RoutingContext) -> RoutingDecision {
    let mut chosen: Option<&Agent> = None;
    for agent in &context.agents {
        if !eligible(agent) {
            continue;
        }
        let better = chosen.is_none_or(|best| {
            by_load_ratio(agent, best)
                .then_with(|| recency_key(agent).cmp(&recency_key(best)))
                .is_lt()
        });
        if better {
            chosen = Some(agent);
        }
    }
    match chosen {
        Some(agent) => RoutingDecision {
            action: RoutingAction::Assign(agent.id.clone()),
            priority: None,
            reason: reason(&[
                Part::Text("least-loaded: "),
                Part::Text(&agent.id),
                Part::Text(" holds "),
                Part::Number(agent.load.into()),
                Part::Text(" of "),
                Part::Number(agent.capacity.into()),
            ]),
        },
        None => RoutingDecision {
            action: RoutingAction::Narrow(Vec::new()),
            priority: None,
            reason: "least-loaded: nobody online with free capacity".to_string(),
        },
    }
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(wanted))
}

/// `skills` with `require_language` (the plugin's default: `true`): the operators of the
/// conversation's brand who speak its language, in roster order.
pub fn skills(context: &RoutingContext, require_language: bool) -> RoutingDecision {
    let conversation = &context.conversation;
    let brand = conversation.brand.as_deref();
    let language = conversation.language.as_deref();
    // The plugin's loop: speakers kept in order, the others behind them when the language
    // is not required; the host's decision names operators by id.
    let mut kept: Vec<String> = Vec::with_capacity(context.agents.len());
    let mut others: Vec<String> = Vec::new();
    for agent in &context.agents {
        if !brand.is_none_or(|brand| has(&agent.skills, brand)) {
            continue;
        }
        if language.is_none_or(|lang| has(&agent.languages, lang)) {
            kept.push(agent.id.clone());
        } else if !require_language {
            others.push(agent.id.clone());
        }
    }
    kept.extend(others);
    let reason = reason(&[
        Part::Text("skills: "),
        Part::Number(kept.len() as u64),
        Part::Text(" of "),
        Part::Number(context.agents.len() as u64),
        Part::Text(" operators serve brand "),
        Part::Text(brand.unwrap_or("(any)")),
        Part::Text(" in language "),
        Part::Text(language.unwrap_or("(any)")),
    ]);
    RoutingDecision {
        action: RoutingAction::Narrow(kept),
        priority: None,
        reason,
    }
}

/// The two policies the benchmark compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `plugins/least-loaded`.
    LeastLoaded,
    /// `plugins/skills` with default settings.
    Skills,
}

impl Policy {
    /// Both, in report order.
    pub const ALL: [Policy; 2] = [Policy::LeastLoaded, Policy::Skills];

    /// The plugin's name (`target/plugins/<name>.wasm`, the HTTP peer's path).
    pub fn name(self) -> &'static str {
        match self {
            Policy::LeastLoaded => "least-loaded",
            Policy::Skills => "skills",
        }
    }

    /// Parses a plugin name.
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Runs the native version.
    pub fn decide(self, context: &RoutingContext) -> RoutingDecision {
        match self {
            Policy::LeastLoaded => least_loaded(context),
            Policy::Skills => skills(context, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::routing_context;

    #[test]
    fn least_loaded_picks_the_lowest_ratio_among_the_eligible() {
        let context = routing_context(9);
        let decision = least_loaded(&context);
        let RoutingAction::Assign(id) = decision.action else {
            panic!("expected an assignment: {decision:?}");
        };
        let chosen = context.agents.iter().find(|a| a.id == id).unwrap();
        assert!(eligible(chosen));
        for other in context.agents.iter().filter(|a| eligible(a)) {
            assert_ne!(by_load_ratio(other, chosen), Ordering::Less, "{other:?}");
        }
    }

    #[test]
    fn skills_keeps_the_brand_and_language_in_roster_order() {
        let context = routing_context(200);
        let RoutingAction::Narrow(kept) = skills(&context, true).action else {
            panic!("skills narrows");
        };
        assert!(!kept.is_empty() && kept.len() < 200);
        let expected: Vec<String> = context
            .agents
            .iter()
            .filter(|a| has(&a.skills, "tim") && has(&a.languages, "it"))
            .map(|a| a.id.clone())
            .collect();
        assert_eq!(kept, expected);
    }
}
