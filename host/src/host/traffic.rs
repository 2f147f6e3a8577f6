//! What the console's routing page needs from the host: the traffic the store holds for a
//! period, as events a candidate chain can be replayed over, and switching a tenant's
//! active chain alone (the shadow chain, operators and conversations stay as they are).

use super::Host;
use crate::error::Error;
use crate::routing::replay::{Handling, TimedEvent};
use crate::routing::{CustomerMessage, PolicyChain, ReplayEvents};
use crate::store::{MAX_TRAFFIC_THREADS, StoredThread};
use crate::types::Presence;

/// The stored traffic of a period, ready to replay.
#[derive(Debug)]
pub(crate) struct StoredTraffic {
    pub(crate) events: ReplayEvents,
    /// Conversations read.
    pub(crate) conversations: usize,
    /// Customer messages read.
    pub(crate) messages: usize,
    /// Whether the period held more conversations than are read at once.
    pub(crate) truncated: bool,
}

impl Host {
    /// `tenant`'s conversations opened in `[from_ms, to_ms)` as replay events: the
    /// roster as it is now, everyone online from the period's start (the store keeps
    /// presence as it is now, not its history); each customer message at the time the
    /// host stored it; and how long the recorded assignee took to reply and to resolve,
    /// counted from their assignment (from the conversation's start when it was answered
    /// before its last assignment), so a chain that assigns later gets the work done later.
    /// The events end at `to_ms` (an unchanged presence then), so a conversation a chain
    /// never assigns waits, and misses its SLA, until the period's end.
    pub(crate) async fn stored_traffic(
        &self,
        tenant: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<StoredTraffic, Error> {
        let operators = self
            .with_routing(tenant, |engine| {
                engine
                    .roster()
                    .iter()
                    .map(|(operator, _)| operator.clone())
                    .collect::<Vec<_>>()
            })
            .await?;
        let threads = self.inner.store.traffic(tenant, from_ms, to_ms).await?;
        let truncated = threads.len() >= MAX_TRAFFIC_THREADS;
        let brand = self.inner.brands(tenant);
        let mut events = ReplayEvents::default();
        let start = threads
            .iter()
            .flat_map(|t| t.inbound.first())
            .map(|m| u64::try_from(m.received_at).unwrap_or(0))
            .min()
            .unwrap_or(from_ms);
        let last_operator = operators.last().map(|o| o.id.clone());
        for operator in operators {
            let line = events.timed.len();
            events.timed.push((
                start,
                line,
                TimedEvent::Operator(operator, Presence::Online),
            ));
        }
        let mut messages = 0;
        for thread in &threads {
            let c = &thread.conversation;
            events.handling.insert(c.id.clone(), handling(thread));
            for stored in &thread.inbound {
                let mut message = CustomerMessage::from_message(&c.channel, &stored.message);
                message.account = c.account.clone();
                message.conversation_key = c.id.clone();
                message.brand = brand(&c.channel, &c.account);
                let line = events.timed.len();
                let at = u64::try_from(stored.received_at).unwrap_or(0);
                events.timed.push((at, line, TimedEvent::Message(message)));
                messages += 1;
            }
        }
        if let Some(operator) = last_operator {
            let line = events.timed.len();
            events.timed.push((
                to_ms.max(start),
                line,
                TimedEvent::Presence(operator, Presence::Online),
            ));
        }
        // Stable: operators (at the start) come before messages at the same time.
        events.timed.sort_by_key(|(at, _, _)| *at);
        Ok(StoredTraffic {
            events,
            conversations: threads.len(),
            messages,
            truncated,
        })
    }

    /// Makes `chain` `tenant`'s active chain; the next decision uses it. The shadow chain
    /// (and its counts), the operators, the queue and every conversation are kept.
    /// Answers the chain it replaced.
    pub(crate) async fn switch_chain(
        &self,
        tenant: &str,
        chain: PolicyChain,
    ) -> Result<String, Error> {
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let previous = routing.engine.switch_active_chain(chain);
        tracing::info!(
            tenant,
            from = %previous,
            to = %routing.engine.chain().spec(),
            "routing chain switched from the console"
        );
        Ok(previous)
    }
}

/// How long the recorded assignee took, from their assignment.
fn handling(thread: &StoredThread) -> Handling {
    let c = &thread.conversation;
    let since = |at: i64| {
        let base = thread
            .assigned_at
            .filter(|assigned| *assigned <= at)
            .unwrap_or(c.created_at);
        u64::try_from(at.saturating_sub(base)).ok()
    };
    Handling {
        reply_after_ms: c.first_response_at.and_then(since),
        resolve_after_ms: c.resolved_at.and_then(since),
    }
}
