//! Replay: recorded traffic through a chain on simulated time, to compare chains before
//! switching (`centralino route replay`).
//!
//! # The events file
//!
//! JSON Lines, one event per line; blank lines and lines starting with `#` are skipped.
//! `at` is an RFC 3339 timestamp (`"2026-03-02T09:15:00Z"`) or milliseconds since the
//! epoch. Timed events are applied in time order (lines with equal times in file order).
//!
//! ```text
//! {"type":"operator","at":"2026-03-02T08:00:00Z","id":"marco","name":"Marco","skills":["tim"],
//!  "languages":["it"],"accounts":["twitter:TIM_Marco"],"capacity":3,"presence":"online"}
//! {"type":"presence","at":"2026-03-02T11:00:00Z","operator":"marco","presence":"away"}
//! {"type":"message","at":"2026-03-02T09:15:00Z","channel":"twitter","account":"TIM_Official",
//!  "conversation":"tw-1001","customer":"1234","brand":"tim","language":"it",
//!  "kind":"public-post","text":"@TIM_Official il mio modem non va"}
//! {"type":"reply","conversation":"tw-1001","after_s":90}
//! {"type":"resolve","conversation":"tw-1001","after_s":420}
//! ```
//!
//! - `operator` defines (or redefines) an operator: the fields of
//!   [`Operator`] (`hours` included) plus `presence` (default `online`).
//! - `presence` changes an operator's presence.
//! - `message` is a customer message: `channel`, `account`, `conversation` (the thread
//!   key; a later message with the same key joins the conversation while it is open),
//!   `customer`, `text`, and optionally `brand`, `language`, `kind` (default
//!   `public-post`).
//! - `reply` and `resolve` describe how the conversation keyed `conversation` is handled:
//!   its assignee replies, and resolves it, `after_s` seconds **after it is assigned in the
//!   replay**. They carry no `at` on purpose: when another chain makes a customer wait
//!   longer, the operator's work starts later too, so absolute reply times from the
//!   recording would be wrong. They may appear anywhere after the conversation's first
//!   message. Conversation keys are unique within a file (tweet and thread ids are).
//!
//! # What is measured
//!
//! Per operator, the assignments the chain made (re-routes included). Per conversation,
//! the wait from its first message to its first assignment (one still waiting at the end
//! counts with its wait so far, so a chain cannot look good by never assigning), and
//! whether the first response came within the SLA (one without a response counts as a
//! miss once the SLA has passed). The replay runs until every scheduled reply and
//! resolution is done, at most `horizon` past the last event.
//!
//! With an offer timeout, a conversation whose `reply` comes later than the timeout is
//! never answered: each assignee in turn lets it lapse, as each would in the recording.
//! The report shows it in the offer timeouts and the SLA misses.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::agents::Operator;
use crate::calendar::parse_timestamp;
use super::chain::PolicyChain;
use crate::clock::{Clock, ManualClock};
use super::conversations::{ConversationNumber, CustomerMessage};
use super::engine::{Notice, RoutingEngine};
use crate::error::RoutingError;
use crate::types::{MessageKind, Presence};

/// A timed event of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimedEvent {
    /// An operator joins the roster (or is redefined).
    Operator(Operator, Presence),
    /// An operator's presence changes.
    Presence(String, Presence),
    /// A customer writes.
    Message(CustomerMessage),
}

/// How long the assignee of a conversation takes, counted from the assignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handling {
    /// First reply after this many milliseconds.
    pub reply_after_ms: Option<u64>,
    /// Resolution after this many milliseconds.
    pub resolve_after_ms: Option<u64>,
}

/// A parsed events file.
#[derive(Clone, Debug, Default)]
pub struct ReplayEvents {
    /// Timed events, in time order: (at, line, event).
    pub timed: Vec<(u64, usize, TimedEvent)>,
    /// Handling per conversation key.
    pub handling: HashMap<String, Handling>,
}

impl ReplayEvents {
    /// Distinct conversation keys in customer messages.
    pub fn conversation_keys(&self) -> usize {
        self.handling.len()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRef {
    operator: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageLine {
    channel: String,
    account: String,
    conversation: String,
    customer: String,
    text: String,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default = "public_post")]
    kind: MessageKind,
}

fn public_post() -> MessageKind {
    MessageKind::PublicPost
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandlingLine {
    conversation: String,
    after_s: u64,
}

fn timestamp(value: Option<Value>) -> Result<u64, String> {
    match value {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("`at` {n} is not milliseconds since the epoch")),
        Some(Value::String(text)) => parse_timestamp(&text),
        Some(other) => Err(format!("`at` {other} is not a timestamp")),
        None => Err("missing `at`".to_string()),
    }
}

/// Parses one line into `events`: a timed event is appended, a handling line is attached
/// to its conversation.
fn parse_line(line: &str, line_number: usize, events: &mut ReplayEvents) -> Result<(), String> {
    let mut fields: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return Err("missing `type` (operator, presence, message, reply, resolve)".into()),
    };
    let at = fields.remove("at");
    // Only `operator` and `presence` lines have a presence; elsewhere it stays an unknown
    // field and is refused as one.
    let presence = match kind.as_str() {
        "operator" | "presence" => fields.remove("presence"),
        _ => None,
    };
    let rest = Value::Object(fields);
    let invalid = |e: serde_json::Error| format!("{kind}: {e}");
    let event = match kind.as_str() {
        "operator" => {
            let presence = match presence {
                Some(value) => serde_json::from_value(value).map_err(invalid)?,
                None => Presence::Online,
            };
            TimedEvent::Operator(serde_json::from_value(rest).map_err(invalid)?, presence)
        }
        "presence" => {
            let operator: OperatorRef = serde_json::from_value(rest).map_err(invalid)?;
            let presence = presence.ok_or("presence: missing field `presence`")?;
            let presence = serde_json::from_value(presence).map_err(invalid)?;
            TimedEvent::Presence(operator.operator, presence)
        }
        "message" => {
            let line: MessageLine = serde_json::from_value(rest).map_err(invalid)?;
            events
                .handling
                .entry(line.conversation.clone())
                .or_default();
            TimedEvent::Message(CustomerMessage {
                channel: line.channel,
                account: line.account,
                conversation_key: line.conversation,
                customer: line.customer,
                brand: line.brand,
                language: line.language,
                kind: line.kind,
                text: line.text,
            })
        }
        "reply" | "resolve" => {
            if at.is_some() {
                return Err(format!(
                    "{kind} lines take `after_s` (seconds after the assignment), not `at`"
                ));
            }
            let line: HandlingLine = serde_json::from_value(rest).map_err(invalid)?;
            let Some(handling) = events.handling.get_mut(&line.conversation) else {
                return Err(format!(
                    "conversation `{}` has no message before this line",
                    line.conversation
                ));
            };
            let after = Some(line.after_s.saturating_mul(1000));
            if kind == "reply" {
                handling.reply_after_ms = after;
            } else {
                handling.resolve_after_ms = after;
            }
            return Ok(());
        }
        other => {
            return Err(format!(
                "unknown type `{other}` (operator, presence, message, reply, resolve)"
            ));
        }
    };
    events.timed.push((timestamp(at)?, line_number, event));
    Ok(())
}

/// Parses an events file; errors name `source_name` and the line.
pub fn parse_events(source_name: &str, text: &str) -> Result<ReplayEvents, RoutingError> {
    let mut events = ReplayEvents::default();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        parse_line(trimmed, index + 1, &mut events).map_err(|reason| RoutingError::Events {
            source_name: source_name.to_string(),
            line: index + 1,
            reason,
        })?;
    }
    // Stable: equal times keep file order.
    events.timed.sort_by_key(|(at, _, _)| *at);
    Ok(events)
}

/// How to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// First-response SLA. Default: 15 minutes.
    pub sla: Duration,
    /// Offer timeout, if the engine should use one. Default: none.
    pub offer_timeout: Option<Duration>,
    /// How long past the last event scheduled work may still run. Default: 8 hours, a
    /// working day: whatever is still waiting then counts as never assigned.
    pub horizon: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            sla: Duration::from_secs(15 * 60),
            offer_timeout: None,
            horizon: Duration::from_secs(8 * 3600),
        }
    }
}

/// Assignments one operator got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorCount {
    /// Operator id.
    pub operator: String,
    /// Assignments.
    pub assigned: u64,
}

/// What a replay measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplayReport {
    /// The chain.
    pub chain: String,
    /// Conversations opened.
    pub conversations: usize,
    /// Assignments per operator, in roster order.
    pub assignments: Vec<OperatorCount>,
    /// Conversations never assigned by the end.
    pub never_assigned: usize,
    /// Median wait for a first assignment, ms.
    pub wait_p50_ms: u64,
    /// 95th percentile wait, ms.
    pub wait_p95_ms: u64,
    /// Longest wait, ms.
    pub wait_max_ms: u64,
    /// The SLA, in minutes.
    pub sla_minutes: u64,
    /// First responses later than the SLA (or missing once it passed).
    pub sla_missed: usize,
    /// Longest the queue was.
    pub queue_peak: usize,
    /// Offers that timed out.
    pub offer_timeouts: u64,
    /// Failed stages (each treated as `pass`).
    pub stage_failures: u64,
    /// Chain runs.
    pub decisions: u64,
    /// Simulated time from the first event to the end of the replay, ms.
    pub simulated_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Reply,
    Resolve,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: u64,
    seq: u64,
    conversation: ConversationNumber,
    operator: String,
    offer: u32,
    work: Work,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], percent: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

/// Replays `events` through `chain` and measures the result.
pub async fn replay(
    chain: PolicyChain,
    events: &ReplayEvents,
    options: &ReplayOptions,
) -> ReplayReport {
    let start = events.timed.first().map_or(0, |(at, _, _)| *at);
    let last = events.timed.last().map_or(0, |(at, _, _)| *at);
    let end = last.saturating_add(u64::try_from(options.horizon.as_millis()).unwrap_or(u64::MAX));
    let clock = ManualClock::new(start);
    let mut builder = RoutingEngine::builder(chain).clock(clock.clone());
    if let Some(timeout) = options.offer_timeout {
        builder = builder.offer_timeout(timeout);
    }
    let mut engine = builder.build();
    let mut counts: Vec<OperatorCount> = Vec::new();
    let mut work: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut last_tick: Option<u64> = None;

    loop {
        let now = clock.now_ms();
        let input_at = events.timed.get(next).map(|(at, _, _)| *at);
        let work_at = work.peek().map(|Reverse(w)| w.at);
        let tick_at = engine
            .next_deadline()
            .map(|at| at.max(now))
            .filter(|at| last_tick != Some(*at));
        let Some(at) = [input_at, work_at, tick_at].into_iter().flatten().min() else {
            break;
        };
        if at > end {
            break;
        }
        clock.set(at.max(now));
        // At equal times: finished work first (a seat freed at 10:00 serves the 10:00
        // message), then timeouts, then new events.
        let notices = if work_at == Some(at) {
            let Some(Reverse(item)) = work.pop() else {
                break;
            };
            do_work(&mut engine, item).await
        } else if tick_at == Some(at) {
            last_tick = Some(at);
            engine.tick().await
        } else {
            let Some((_, _, event)) = events.timed.get(next) else {
                break;
            };
            next += 1;
            apply(&mut engine, event, &mut counts).await
        };
        for notice in notices {
            let Notice::Assigned {
                conversation,
                operator,
                ..
            } = notice
            else {
                continue;
            };
            match counts.iter_mut().find(|c| c.operator == operator) {
                Some(count) => count.assigned += 1,
                None => counts.push(OperatorCount {
                    operator: operator.clone(),
                    assigned: 1,
                }),
            }
            let Some(c) = engine.conversation(conversation) else {
                continue;
            };
            let handling = events
                .handling
                .get(&c.thread.key)
                .copied()
                .unwrap_or_default();
            let now = clock.now_ms();
            let mut schedule = |after: Option<u64>, what: Work| {
                if let Some(after) = after {
                    seq += 1;
                    work.push(Reverse(Scheduled {
                        at: now.saturating_add(after),
                        seq,
                        conversation,
                        operator: operator.clone(),
                        offer: c.offers,
                        work: what,
                    }));
                }
            };
            if c.first_response_at.is_none() {
                schedule(handling.reply_after_ms, Work::Reply);
            }
            schedule(handling.resolve_after_ms, Work::Resolve);
        }
    }

    let finished = clock.now_ms();
    let sla_ms = u64::try_from(options.sla.as_millis()).unwrap_or(u64::MAX);
    let mut waits = Vec::new();
    let mut never_assigned = 0;
    let mut sla_missed = 0;
    for c in engine.conversations().iter() {
        match c.first_assigned_at {
            Some(at) => waits.push(at.saturating_sub(c.created_at)),
            None => {
                never_assigned += 1;
                let until = c.resolved_at.unwrap_or(finished);
                waits.push(until.saturating_sub(c.created_at));
            }
        }
        let missed = match c.first_response_at {
            Some(at) => at.saturating_sub(c.created_at) > sla_ms,
            None => finished.saturating_sub(c.created_at) > sla_ms,
        };
        sla_missed += usize::from(missed);
    }
    waits.sort_unstable();
    let stats = engine.stats();
    ReplayReport {
        chain: engine.chain().spec().to_string(),
        conversations: engine.conversations().len(),
        assignments: counts,
        never_assigned,
        wait_p50_ms: percentile(&waits, 50),
        wait_p95_ms: percentile(&waits, 95),
        wait_max_ms: waits.last().copied().unwrap_or(0),
        sla_minutes: options.sla.as_secs() / 60,
        sla_missed,
        queue_peak: stats.queue_peak,
        offer_timeouts: stats.offer_timeouts,
        stage_failures: stats.stage_failures,
        decisions: stats.decisions,
        simulated_ms: finished.saturating_sub(start),
    }
}

/// Applies one timed event. Operators are listed in the report in the order they appear.
async fn apply(
    engine: &mut RoutingEngine,
    event: &TimedEvent,
    counts: &mut Vec<OperatorCount>,
) -> Vec<Notice> {
    match event {
        TimedEvent::Operator(operator, presence) => {
            if !counts.iter().any(|c| c.operator == operator.id) {
                counts.push(OperatorCount {
                    operator: operator.id.clone(),
                    assigned: 0,
                });
            }
            engine.add_operator(operator.clone(), *presence).await
        }
        TimedEvent::Presence(operator, presence) => {
            match engine.set_presence(operator, *presence).await {
                Ok(notices) => notices,
                Err(error) => {
                    tracing::warn!("replay: {error}; presence change skipped");
                    Vec::new()
                }
            }
        }
        TimedEvent::Message(message) => engine.receive(message.clone()).await.notices,
    }
}

/// Does scheduled work if the conversation is still with the operator it was planned for.
async fn do_work(engine: &mut RoutingEngine, item: Scheduled) -> Vec<Notice> {
    let current = engine.conversation(item.conversation).is_some_and(|c| {
        c.is_open()
            && c.assignee.as_deref() == Some(item.operator.as_str())
            && c.offers == item.offer
    });
    if !current {
        return Vec::new();
    }
    match item.work {
        Work::Reply => {
            if let Err(error) = engine.record_reply(item.conversation, &item.operator) {
                tracing::warn!("replay: {error}");
            }
            Vec::new()
        }
        Work::Resolve => engine.resolve(item.conversation).await.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
