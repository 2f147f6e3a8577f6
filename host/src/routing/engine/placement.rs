//! Placing a conversation: the chain's decision applied (assign, queue), re-routing what
//! an operator gave back, draining the queue when a seat frees.

use super::*;

impl RoutingEngine {
    /// Acts on a service level at risk or missed: raises the conversation's priority to
    /// `raise_to` (if higher), and with `reroute` takes it back from an assignee who has
    /// not answered (passed over for one offer timeout, 15 minutes without one). A
    /// waiting conversation then goes through the chain again.
    pub(crate) async fn escalate(
        &mut self,
        id: ConversationNumber,
        raise_to: Option<u8>,
        reroute: bool,
    ) -> Vec<Notice> {
        let now = self.now();
        let Some(conversation) = self.conversations.get_mut(id) else {
            return Vec::new();
        };
        if let Some(level) = raise_to {
            conversation.priority = conversation.priority.max(level);
        }
        let (priority, since) = (conversation.priority, conversation.waiting_since);
        match conversation.status {
            Status::Assigned if reroute && unanswered_offer(conversation).is_some() => {
                let Some(operator) = conversation.assignee.clone() else {
                    return Vec::new();
                };
                let pass_over = self.offer_timeout_ms.unwrap_or(15 * 60_000);
                conversation.excluded.push(Exclusion {
                    operator: operator.clone(),
                    until: now.saturating_add(pass_over),
                });
                self.take_back(id, &operator);
                tracing::info!(conversation = %id, %operator, "service level: re-routed");
                self.reroute(vec![(id, operator)]).await
            }
            Status::Open | Status::Waiting => {
                if self.queue.contains(id) {
                    self.queue.push(id, priority, since);
                }
                self.place(id).await.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Runs the chain for a conversation that is open or waiting and applies the outcome.
    pub(super) async fn place(&mut self, id: ConversationNumber) -> Option<Notice> {
        let now = self.now();
        let mut context = self.scratch.take().unwrap_or_else(blank_context);
        if !self.fill_context(id, now, &mut context) {
            self.scratch = Some(context);
            return None;
        }
        // The context is copied only for a shadow chain to see it too: a copy holds every
        // operator's profile.
        let decision = match &mut self.shadow {
            Some(shadow) => {
                let copy = context.clone();
                let decision = self.chain.decide(&mut context).await;
                shadow.compare(copy, &decision).await;
                decision
            }
            None => self.chain.decide(&mut context).await,
        };
        self.scratch = Some(context);
        self.stats.decisions += 1;
        if let Some(conversation) = self.conversations.get_mut(id) {
            conversation.priority = decision.priority;
        }
        if let Outcome::Assign(operator) = &decision.outcome {
            match self.assign(id, operator, now) {
                Ok(()) => {
                    tracing::debug!(conversation = %id, %operator, reason = %decision.reason, "assigned");
                    return Some(Notice::Assigned {
                        conversation: id,
                        operator: operator.clone(),
                        reason: decision.reason,
                        rerouted_from: None,
                    });
                }
                // The chain checked availability on the same snapshot, so this is a bug
                // somewhere; the conversation waits rather than overfilling anyone.
                Err(error) => tracing::warn!(conversation = %id, "{error}; queued instead"),
            }
        }
        self.enqueue(id, decision.reason)
    }

    /// Writes what the chain sees for conversation `id` into `into`, reusing its strings'
    /// and lists' allocations; false when the conversation is not open or waiting.
    fn fill_context(&self, id: ConversationNumber, now: u64, into: &mut RoutingContext) -> bool {
        let Some(c) = self.conversations.get(id) else {
            return false;
        };
        if !matches!(c.status, Status::Open | Status::Waiting) {
            return false;
        }
        let previous = self.history.last(&c.thread.channel, &c.customer);
        let to = &mut into.conversation;
        to.id.clear();
        {
            use std::fmt::Write as _;
            let _ = write!(to.id, "{}", c.id);
        }
        to.channel.clone_from(&c.thread.channel);
        to.account.clone_from(&c.thread.account);
        to.brand.clone_from(&c.brand);
        to.language.clone_from(&c.language);
        to.customer.clone_from(&c.customer);
        to.kind = c.kind;
        to.text.clone_from(&c.last_text);
        to.priority = c.priority;
        match previous {
            Some((operator, at)) => {
                let agent = to.previous_agent.get_or_insert_with(String::new);
                agent.clear();
                agent.push_str(operator);
                to.previous_agent_at = Some(at);
            }
            None => {
                to.previous_agent = None;
                to.previous_agent_at = None;
            }
        }
        to.waiting_since = c.waiting_since;
        self.roster
            .agents_into(now, &c.excluded_at(now), &mut into.agents);
        into.queue = QueueStats {
            waiting: u32::try_from(self.queue.len()).unwrap_or(u32::MAX),
            oldest_wait_ms: self
                .queue
                .oldest_waiting_since()
                .map_or(0, |since| now.saturating_sub(since)),
            average_handle_ms: self.handling.average_ms().unwrap_or(0),
        };
        into.now = now;
        into.roster_version = self.roster.version();
        true
    }

    pub(super) fn assign(&mut self, id: ConversationNumber, operator: &str, now: u64) -> Result<(), RoutingError> {
        if self.conversations.get(id).is_none() {
            return Err(RoutingError::UnknownConversation(id.named()));
        }
        self.roster.take_seat(operator, now)?;
        self.queue.remove(id);
        if let Some(conversation) = self.conversations.get_mut(id) {
            conversation.status = Status::Assigned;
            conversation.assignee = Some(operator.to_string());
            conversation.assigned_at = Some(now);
            conversation.first_assigned_at.get_or_insert(now);
            conversation.offers += 1;
            conversation.transferred = false;
            conversation.excluded.clear();
        }
        self.stats.assignments += 1;
        Ok(())
    }

    pub(super) fn enqueue(&mut self, id: ConversationNumber, reason: String) -> Option<Notice> {
        let conversation = self.conversations.get_mut(id)?;
        conversation.status = Status::Waiting;
        conversation.assignee = None;
        conversation.assigned_at = None;
        if !self.queue.contains(id) {
            self.stats.queued += 1;
        }
        self.queue
            .push(id, conversation.priority, conversation.waiting_since);
        self.stats.queue_peak = self.stats.queue_peak.max(self.queue.len());
        Some(Notice::Queued {
            conversation: id,
            estimate: self.wait_estimate(id)?,
            reason,
        })
    }

    /// Takes a conversation away from `operator` and puts it back in the queue, in its
    /// place by priority and by the time the customer first wrote.
    pub(super) fn take_back(&mut self, id: ConversationNumber, operator: &str) {
        self.roster.free_seat(operator);
        if let Some(conversation) = self.conversations.get_mut(id) {
            conversation.status = Status::Waiting;
            conversation.assignee = None;
            conversation.assigned_at = None;
            self.queue
                .push(id, conversation.priority, conversation.waiting_since);
            self.stats.queue_peak = self.stats.queue_peak.max(self.queue.len());
        }
    }

    /// Drains the queue after conversations were taken back from operators, so they are
    /// placed in queue order like everyone else (a re-route does not jump ahead of an
    /// urgent conversation that was already waiting). Their assignments say whom they were
    /// taken from; those still waiting get a queue notice with an estimate.
    pub(super) async fn reroute(&mut self, taken: Vec<(ConversationNumber, String)>) -> Vec<Notice> {
        let mut notices = self.drain().await;
        for notice in &mut notices {
            if let Notice::Assigned {
                conversation,
                rerouted_from,
                ..
            } = notice
                && let Some((_, from)) = taken.iter().find(|(id, _)| id == conversation)
            {
                *rerouted_from = Some(from.clone());
            }
        }
        for (id, _) in taken {
            if let Some(estimate) = self.wait_estimate(id) {
                notices.push(Notice::Queued {
                    conversation: id,
                    estimate,
                    reason: "taken back; nobody else can take it now".to_string(),
                });
            }
        }
        notices
    }

    /// Offers waiting conversations, best first, while anyone can take one. A conversation
    /// nobody takes does not block the ones behind it (a TIM seat may free while the head
    /// of the queue is an Impresa Semplice customer).
    pub(super) async fn drain(&mut self) -> Vec<Notice> {
        let now = self.now();
        self.available = self.roster.available(now).into_iter().collect();
        let mut notices = Vec::new();
        if self.queue.is_empty() || self.available.is_empty() {
            return notices;
        }
        let waiting: Vec<ConversationNumber> = self.queue.iter().collect();
        for id in waiting {
            if self.roster.available(now).is_empty() {
                break;
            }
            if !self.queue.contains(id) {
                continue;
            }
            if let Some(notice @ Notice::Assigned { .. }) = self.place(id).await {
                notices.push(notice);
            }
        }
        self.available = self.roster.available(now).into_iter().collect();
        notices
    }
}

/// When the unanswered, untransferred offer of an assigned conversation was made.
pub(super) fn unanswered_offer(conversation: &Conversation) -> Option<u64> {
    if conversation.status != Status::Assigned
        || conversation.first_response_at.is_some()
        || conversation.transferred
    {
        return None;
    }
    conversation.assigned_at
}

/// A context with nothing in it yet, for [`RoutingEngine::fill_context`] to fill.
fn blank_context() -> RoutingContext {
    RoutingContext {
        conversation: RoutingConversation {
            id: String::new(),
            channel: String::new(),
            account: String::new(),
            brand: None,
            language: None,
            customer: String::new(),
            kind: crate::types::MessageKind::PrivateMessage,
            text: String::new(),
            priority: 0,
            previous_agent: None,
            previous_agent_at: None,
            waiting_since: 0,
        },
        agents: Vec::new(),
        queue: QueueStats::default(),
        now: 0,
        roster_version: 0,
    }
}
