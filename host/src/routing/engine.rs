//! The routing engine: customer messages in, assignments and queue places out.
//!
//! [`RoutingEngine`] ties the parts together. Every change comes through one method, and
//! every method returns the [`Notice`]s a CRM acts on (show the assignment, send the wait
//! estimate as an auto-reply):
//!
//! | call | what happens |
//! | --- | --- |
//! | [`receive`](RoutingEngine::receive) | the message joins its open conversation or opens one; a new or waiting conversation goes through the chain |
//! | [`record_reply`](RoutingEngine::record_reply) | ownership is checked, the sending account picked, the first response stamped |
//! | [`resolve`](RoutingEngine::resolve) | the seat is freed, the handling time recorded, the queue drained |
//! | [`set_presence`](RoutingEngine::set_presence) | online drains the queue; offline re-routes the operator's unanswered conversations |
//! | [`transfer`](RoutingEngine::transfer) | a person hands a conversation to a colleague |
//! | [`tick`](RoutingEngine::tick) | offer timeouts, lapsed exclusions, shifts starting; call it at [`next_deadline`](RoutingEngine::next_deadline) |
//!
//! **Offer timeout.** An assignee who has not answered within the timeout loses the
//! conversation: it goes back to the queue in its original place in time and through the
//! chain again without them (they stay passed over for that conversation for one more
//! timeout, so a team of one still gets it back). Transferred conversations are exempt: a
//! person chose that assignee.
//!
//! **Capacity.** Seats are taken only through the roster, which refuses a full or absent
//! operator, so no chain, however buggy, can overfill anyone.
//!
//! The clock is injected ([`EngineBuilder::clock`]); all state is in memory, in small
//! types a durable store can persist later.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::agents::{Operator, Roster};
use super::chain::{Outcome, PolicyChain};
use super::clock::{Clock, SystemClock};
use super::conversations::{
    Conversation, ConversationId, Conversations, CustomerHistory, CustomerMessage, Exclusion,
    Status,
};
use super::error::RoutingError;
use super::ownership::{ReplyRoute, ReplyRules};
use super::queue::{HandlingTimes, WaitEstimate, WaitQueue};
use super::shadow::{Shadow, ShadowStats};
use crate::types::{Presence, QueueStats, RoutingContext, RoutingConversation};

/// Something the CRM should know about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "notice", rename_all = "kebab-case")]
pub enum Notice {
    /// An operator got the conversation.
    Assigned {
        /// The conversation.
        conversation: ConversationId,
        /// The operator.
        operator: String,
        /// Why, from the deciding stage.
        reason: String,
        /// The operator who had it before and lost it (offer timeout, went offline).
        rerouted_from: Option<String>,
    },
    /// Nobody could take it; it waits.
    Queued {
        /// The conversation.
        conversation: ConversationId,
        /// What the customer can be told.
        estimate: WaitEstimate,
        /// Why, from the chain.
        reason: String,
    },
    /// The assignee did not answer in time and lost the conversation.
    OfferExpired {
        /// The conversation.
        conversation: ConversationId,
        /// Who lost it.
        operator: String,
    },
}

/// What became of a customer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arrival {
    /// Its conversation.
    pub conversation: ConversationId,
    /// Whether it joined an open conversation.
    pub joined: bool,
    /// Assignments and queue places it caused.
    pub notices: Vec<Notice>,
}

/// Counters since the engine started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Chain runs.
    pub decisions: u64,
    /// Assignments made by the chain (re-routes included, transfers not).
    pub assignments: u64,
    /// Conversations that had to wait.
    pub queued: u64,
    /// Offers that timed out.
    pub offer_timeouts: u64,
    /// Longest the queue was.
    pub queue_peak: usize,
    /// Failed stages of the active chain (each treated as `pass`).
    pub stage_failures: u64,
    /// The shadow chain's counters, if one runs.
    pub shadow: Option<ShadowStats>,
}

/// Configures a [`RoutingEngine`]. Defaults: the system clock, no offer timeout, no
/// shadow chain, personal accounts on Twitter/X, the last 50 handling times.
#[derive(Debug)]
pub struct EngineBuilder {
    chain: PolicyChain,
    clock: Arc<dyn Clock>,
    offer_timeout: Option<Duration>,
    shadow: Option<PolicyChain>,
    reply_rules: ReplyRules,
    handling_window: usize,
}

impl EngineBuilder {
    /// Uses `clock` for every timestamp.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Takes a conversation back from an assignee who has not answered within `timeout`.
    pub fn offer_timeout(mut self, timeout: Duration) -> Self {
        self.offer_timeout = Some(timeout);
        self
    }

    /// Runs `chain` in shadow beside the active one.
    pub fn shadow(mut self, chain: PolicyChain) -> Self {
        self.shadow = Some(chain);
        self
    }

    /// Which channels let operators reply from their own accounts.
    pub fn reply_rules(mut self, rules: ReplyRules) -> Self {
        self.reply_rules = rules;
        self
    }

    /// How many recent handling times the wait estimate averages.
    pub fn handling_window(mut self, conversations: usize) -> Self {
        self.handling_window = conversations;
        self
    }

    /// The engine.
    pub fn build(self) -> RoutingEngine {
        RoutingEngine {
            clock: self.clock,
            chain: self.chain,
            shadow: self.shadow.map(Shadow::new),
            roster: Roster::default(),
            conversations: Conversations::default(),
            history: CustomerHistory::default(),
            queue: WaitQueue::default(),
            handling: HandlingTimes::new(self.handling_window),
            reply_rules: self.reply_rules,
            offer_timeout_ms: self
                .offer_timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            stats: EngineStats::default(),
            available: BTreeSet::new(),
        }
    }
}

/// Routes conversations to operators through a policy chain. See the module docs.
#[derive(Debug)]
pub struct RoutingEngine {
    clock: Arc<dyn Clock>,
    chain: PolicyChain,
    shadow: Option<Shadow>,
    roster: Roster,
    conversations: Conversations,
    history: CustomerHistory,
    queue: WaitQueue,
    handling: HandlingTimes,
    reply_rules: ReplyRules,
    offer_timeout_ms: Option<u64>,
    stats: EngineStats,
    /// Who could take a conversation at the last drain, to notice newcomers in `tick`.
    available: BTreeSet<String>,
}

impl RoutingEngine {
    /// A builder around the active chain.
    pub fn builder(chain: PolicyChain) -> EngineBuilder {
        EngineBuilder {
            chain,
            clock: Arc::new(SystemClock),
            offer_timeout: None,
            shadow: None,
            reply_rules: ReplyRules::default(),
            handling_window: 50,
        }
    }

    /// The engine's time.
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Operators and their state.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Every conversation.
    pub fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    /// One conversation.
    pub fn conversation(&self, id: ConversationId) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    /// The waiting queue.
    pub fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    /// Recent handling times.
    pub fn handling_times(&self) -> &HandlingTimes {
        &self.handling
    }

    /// The active chain.
    pub fn chain(&self) -> &PolicyChain {
        &self.chain
    }

    /// The shadow chain, if any.
    pub fn shadow(&self) -> Option<&Shadow> {
        self.shadow.as_ref()
    }

    /// Counters so far.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            // Failures of chains replaced by a reload are kept in `self.stats`.
            stage_failures: self.stats.stage_failures + self.chain.total_failures(),
            shadow: self.shadow.as_ref().map(Shadow::stats),
            ..self.stats
        }
    }

    /// What a waiting customer can be told now.
    pub fn wait_estimate(&self, id: ConversationId) -> Option<WaitEstimate> {
        let position = self.queue.position(id)?;
        Some(WaitEstimate::new(
            position,
            self.roster.working_capacity(self.now()),
            &self.handling,
        ))
    }

    /// Adds an operator (or updates one, keeping their load) and gives them waiting
    /// conversations if they can take some.
    pub async fn add_operator(&mut self, operator: Operator, presence: Presence) -> Vec<Notice> {
        self.roster.upsert(operator, presence);
        self.drain().await
    }

    /// Sets an operator's presence. Coming online drains the queue; going offline
    /// re-routes the conversations they hold but have not answered (answered ones stay:
    /// the customer already talks to them).
    pub async fn set_presence(
        &mut self,
        operator: &str,
        presence: Presence,
    ) -> Result<Vec<Notice>, RoutingError> {
        let previous = self.roster.set_presence(operator, presence)?;
        let mut taken = Vec::new();
        if presence == Presence::Offline && previous != Presence::Offline {
            let unanswered: Vec<ConversationId> = self
                .conversations
                .iter()
                .filter(|c| {
                    c.status == Status::Assigned
                        && c.assignee.as_deref() == Some(operator)
                        && c.first_response_at.is_none()
                })
                .map(|c| c.id)
                .collect();
            for id in unanswered {
                self.take_back(id, operator);
                taken.push((id, operator.to_string()));
            }
        }
        Ok(self.reroute(taken).await)
    }

    /// Takes a customer message. A new conversation, or a waiting one (the new text may
    /// change its priority), goes through the chain; an assigned one stays with its
    /// operator.
    pub async fn receive(&mut self, message: CustomerMessage) -> Arrival {
        let now = self.now();
        let (id, joined) = self.conversations.receive(&message, now);
        let status = self.conversations.get(id).map(|c| c.status);
        let notices = match status {
            Some(Status::Open | Status::Waiting) => self.place(id).await.into_iter().collect(),
            _ => Vec::new(),
        };
        Arrival {
            conversation: id,
            joined,
            notices,
        }
    }

    /// Checks that `operator` may reply to the conversation and picks the sending
    /// account, without recording anything.
    pub fn authorize_reply(
        &self,
        id: ConversationId,
        operator: &str,
    ) -> Result<ReplyRoute, RoutingError> {
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id))?;
        self.reply_rules.route(&self.roster, conversation, operator)
    }

    /// Records a reply by `operator` (after [`authorize_reply`](Self::authorize_reply)'s
    /// checks): stamps the first response and remembers who helped the customer.
    pub fn record_reply(
        &mut self,
        id: ConversationId,
        operator: &str,
    ) -> Result<ReplyRoute, RoutingError> {
        let route = self.authorize_reply(id, operator)?;
        let now = self.now();
        if let Some(conversation) = self.conversations.get_mut(id) {
            conversation.first_response_at.get_or_insert(now);
            self.history.record(
                &conversation.thread.channel,
                &conversation.customer,
                operator,
                now,
            );
        }
        Ok(route)
    }

    /// Resolves a conversation (waiting ones too: a customer may give up). Frees the seat,
    /// records the handling time and gives the seat to the queue. Resolving twice is a
    /// no-op.
    pub async fn resolve(&mut self, id: ConversationId) -> Result<Vec<Notice>, RoutingError> {
        let now = self.now();
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id))?;
        if conversation.status == Status::Resolved {
            return Ok(Vec::new());
        }
        if let Some(operator) = conversation.assignee.clone() {
            let (channel, customer) = (
                conversation.thread.channel.clone(),
                conversation.customer.clone(),
            );
            if let Some(at) = conversation.assigned_at {
                self.handling.record(now.saturating_sub(at));
            }
            self.roster.free_seat(&operator);
            self.history.record(&channel, &customer, &operator, now);
        }
        self.queue.remove(id);
        self.conversations.close(id, now);
        Ok(self.drain().await)
    }

    /// A person hands the conversation to `to` (from its assignee, or straight from the
    /// queue). Refused if `to` is full; presence is not checked. Afterwards any operator
    /// may reply to it, and the offer timeout no longer applies.
    pub async fn transfer(
        &mut self,
        id: ConversationId,
        to: &str,
    ) -> Result<Vec<Notice>, RoutingError> {
        let now = self.now();
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id))?;
        if conversation.status == Status::Resolved {
            return Err(RoutingError::Resolved(id));
        }
        let from = conversation.assignee.clone();
        if from.as_deref() == Some(to) {
            return Ok(Vec::new());
        }
        self.roster.move_seat(from.as_deref(), to, now)?;
        self.queue.remove(id);
        if let Some(conversation) = self.conversations.get_mut(id) {
            conversation.status = Status::Assigned;
            conversation.assignee = Some(to.to_string());
            conversation.assigned_at = Some(now);
            conversation.first_assigned_at.get_or_insert(now);
            conversation.transferred = true;
        }
        tracing::info!(conversation = %id, from = ?from, to, "conversation transferred");
        Ok(self.drain().await)
    }

    /// Applies what time alone changes: offers that timed out are re-routed, lapsed
    /// exclusions and starting shifts let the queue move.
    pub async fn tick(&mut self) -> Vec<Notice> {
        let now = self.now();
        let mut notices = Vec::new();
        let mut taken = Vec::new();
        if let Some(timeout) = self.offer_timeout_ms {
            let mut expired: Vec<(u64, ConversationId, String)> = self
                .conversations
                .iter()
                .filter_map(|c| {
                    let at = unanswered_offer(c)?;
                    let operator = c.assignee.clone()?;
                    (at.saturating_add(timeout) <= now).then_some((at, c.id, operator))
                })
                .collect();
            expired.sort();
            for (_, id, operator) in expired {
                self.take_back(id, &operator);
                if let Some(conversation) = self.conversations.get_mut(id) {
                    conversation.excluded.push(Exclusion {
                        operator: operator.clone(),
                        until: now.saturating_add(timeout),
                    });
                }
                self.stats.offer_timeouts += 1;
                tracing::info!(conversation = %id, %operator, "offer timed out without a reply");
                notices.push(Notice::OfferExpired {
                    conversation: id,
                    operator: operator.clone(),
                });
                taken.push((id, operator));
            }
        }
        let mut lapsed = false;
        let waiting: Vec<ConversationId> = self.queue.iter().collect();
        for id in waiting {
            if let Some(conversation) = self.conversations.get_mut(id) {
                let before = conversation.excluded.len();
                conversation.excluded.retain(|e| e.until > now);
                lapsed |= conversation.excluded.len() != before;
            }
        }
        let available: BTreeSet<String> = self.roster.available(now).into_iter().collect();
        let newcomer = available.difference(&self.available).next().is_some();
        if lapsed || newcomer || !taken.is_empty() {
            notices.extend(self.reroute(taken).await);
        } else {
            self.available = available;
        }
        notices
    }

    /// When [`tick`](Self::tick) next has something to do: an offer expiring, an exclusion
    /// lapsing, or (while someone waits) a shift starting.
    pub fn next_deadline(&self) -> Option<u64> {
        let now = self.now();
        let offers = self.offer_timeout_ms.into_iter().flat_map(|timeout| {
            self.conversations
                .iter()
                .filter_map(move |c| unanswered_offer(c).map(|at| at.saturating_add(timeout)))
        });
        let exclusions = self
            .queue
            .iter()
            .filter_map(|id| self.conversations.get(id))
            .flat_map(|c| c.excluded.iter().map(|e| e.until));
        let shift = if self.queue.is_empty() {
            None
        } else {
            self.roster.next_shift_start(now)
        };
        offers.chain(exclusions).chain(shift).min()
    }

    /// Takes up a conversation kept in a durable store (after a restart, or one another
    /// host sharing the database routed) and returns its new id. An assigned one stays
    /// with its assignee and counts in their load, beyond capacity if need be (it is
    /// theirs already); one whose assignee is no longer on the roster, and an open or
    /// waiting one, joins the queue in its place by priority and first message. Nothing is
    /// decided here: call [`resume`](Self::resume) once everything is restored.
    pub fn restore(&mut self, mut conversation: Conversation) -> ConversationId {
        let assigned_at = conversation.assigned_at.unwrap_or(conversation.created_at);
        let assignee = match (conversation.status, conversation.assignee.take()) {
            (Status::Assigned, Some(operator))
                if self.roster.restore_seat(&operator, assigned_at).is_ok() =>
            {
                Some(operator)
            }
            _ => None,
        };
        if let (Some(operator), Some(at)) = (&assignee, conversation.first_response_at) {
            self.history.record(
                &conversation.thread.channel,
                &conversation.customer,
                operator,
                at,
            );
        }
        match (&assignee, conversation.status) {
            (_, Status::Resolved) => {}
            (Some(operator), _) => {
                conversation.status = Status::Assigned;
                conversation.assignee = Some(operator.clone());
                conversation.assigned_at = Some(assigned_at);
                conversation.first_assigned_at.get_or_insert(assigned_at);
            }
            (None, _) => {
                conversation.status = Status::Waiting;
                conversation.assigned_at = None;
                conversation.transferred = false;
            }
        }
        let waiting = conversation.status == Status::Waiting;
        let (priority, since) = (conversation.priority, conversation.waiting_since);
        let id = self.conversations.restore(conversation);
        if waiting {
            self.queue.push(id, priority, since);
            self.stats.queue_peak = self.stats.queue_peak.max(self.queue.len());
        }
        id
    }

    /// Sets every operator's load to what a durable store shared by several hosts counts
    /// (an operator absent from `loads` holds nothing): conversations other hosts routed,
    /// resolved or moved count as they do there. Nothing is decided here: call
    /// [`resume`](Self::resume) afterwards to give freed seats to the queue.
    pub fn set_loads(&mut self, loads: &std::collections::HashMap<String, u32>) {
        self.roster.set_loads(loads);
    }

    /// Brings one conversation in line with what a durable store shared by several hosts
    /// says about it: resolved elsewhere, it is closed (out of the queue, its thread free
    /// for a new conversation); held by an operator, it is theirs (as handed over when
    /// `transferred`); open or waiting, it waits in the queue in its place. Loads are left
    /// alone (see [`set_loads`](Self::set_loads)), and nothing is decided. Returns whether
    /// anything changed.
    pub fn sync_conversation(&mut self, id: ConversationId, stored: StoredState) -> bool {
        let StoredState {
            status,
            assignee,
            assigned_at,
            transferred,
            first_response_at,
        } = stored;
        let now = self.now();
        if let (Some(at), Some(conversation)) = (first_response_at, self.conversations.get_mut(id))
        {
            // Answered through another host: no offer timeout applies any more.
            conversation.first_response_at.get_or_insert(at);
        }
        let Some(current) = self.conversations.get(id) else {
            return false;
        };
        if current.status == Status::Resolved {
            return false;
        }
        match (status, assignee) {
            (Status::Resolved, _) => {
                if let Some(operator) = current.assignee.clone() {
                    let (channel, customer) =
                        (current.thread.channel.clone(), current.customer.clone());
                    self.history.record(&channel, &customer, &operator, now);
                }
                self.queue.remove(id);
                self.conversations.close(id, now);
                true
            }
            (Status::Assigned, Some(operator)) => {
                if current.status == Status::Assigned
                    && current.assignee.as_deref() == Some(operator.as_str())
                    && current.transferred == transferred
                {
                    return false;
                }
                self.queue.remove(id);
                if let Some(conversation) = self.conversations.get_mut(id) {
                    let at = assigned_at.unwrap_or(now);
                    conversation.status = Status::Assigned;
                    conversation.assignee = Some(operator);
                    conversation.assigned_at = Some(at);
                    conversation.first_assigned_at.get_or_insert(at);
                    conversation.transferred = transferred;
                }
                true
            }
            _ => {
                if matches!(current.status, Status::Open | Status::Waiting) {
                    return false;
                }
                if let Some(conversation) = self.conversations.get_mut(id) {
                    conversation.status = Status::Waiting;
                    conversation.assignee = None;
                    conversation.assigned_at = None;
                    conversation.transferred = false;
                    self.queue
                        .push(id, conversation.priority, conversation.waiting_since);
                    self.stats.queue_peak = self.stats.queue_peak.max(self.queue.len());
                }
                true
            }
        }
    }

    /// Offers the waiting conversations to whoever can take one now: after
    /// [`restore`](Self::restore), so restored conversations do not wait for the next
    /// seat to free. Returns the assignments made.
    pub async fn resume(&mut self) -> Vec<Notice> {
        self.drain().await
    }

    /// Runs the chain for a conversation that is open or waiting and applies the outcome.
    async fn place(&mut self, id: ConversationId) -> Option<Notice> {
        let now = self.now();
        let context = self.context(id, now)?;
        let decision = self.chain.decide(context.clone()).await;
        if let Some(shadow) = &mut self.shadow {
            shadow.compare(context, &decision).await;
        }
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
        self.enqueue(id, decision.reason, now)
    }

    /// What the chain sees for one conversation.
    fn context(&self, id: ConversationId, now: u64) -> Option<RoutingContext> {
        let c = self.conversations.get(id)?;
        if !matches!(c.status, Status::Open | Status::Waiting) {
            return None;
        }
        let previous = self.history.last(&c.thread.channel, &c.customer);
        let waiting = u32::try_from(self.queue.len()).unwrap_or(u32::MAX);
        Some(RoutingContext {
            conversation: RoutingConversation {
                id: c.id.to_string(),
                channel: c.thread.channel.clone(),
                account: c.thread.account.clone(),
                brand: c.brand.clone(),
                language: c.language.clone(),
                customer: c.customer.clone(),
                kind: c.kind,
                text: c.last_text.clone(),
                priority: c.priority,
                previous_agent: previous.map(|(operator, _)| operator.to_string()),
                previous_agent_at: previous.map(|(_, at)| at),
                waiting_since: c.waiting_since,
            },
            agents: self.roster.agents(now, &c.excluded_at(now)),
            queue: QueueStats {
                waiting,
                oldest_wait_ms: self
                    .queue
                    .oldest_waiting_since()
                    .map_or(0, |since| now.saturating_sub(since)),
                average_handle_ms: self.handling.average_ms().unwrap_or(0),
            },
            now,
        })
    }

    fn assign(&mut self, id: ConversationId, operator: &str, now: u64) -> Result<(), RoutingError> {
        if self.conversations.get(id).is_none() {
            return Err(RoutingError::UnknownConversation(id));
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

    fn enqueue(&mut self, id: ConversationId, reason: String, now: u64) -> Option<Notice> {
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
        let position = self.queue.position(id)?;
        Some(Notice::Queued {
            conversation: id,
            estimate: WaitEstimate::new(
                position,
                self.roster.working_capacity(now),
                &self.handling,
            ),
            reason,
        })
    }

    /// Takes a conversation away from `operator` and puts it back in the queue, in its
    /// place by priority and by the time the customer first wrote.
    fn take_back(&mut self, id: ConversationId, operator: &str) {
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
    async fn reroute(&mut self, taken: Vec<(ConversationId, String)>) -> Vec<Notice> {
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
    async fn drain(&mut self) -> Vec<Notice> {
        let now = self.now();
        self.available = self.roster.available(now).into_iter().collect();
        let mut notices = Vec::new();
        if self.queue.is_empty() || self.available.is_empty() {
            return notices;
        }
        let waiting: Vec<ConversationId> = self.queue.iter().collect();
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
fn unanswered_offer(conversation: &Conversation) -> Option<u64> {
    if conversation.status != Status::Assigned
        || conversation.first_response_at.is_some()
        || conversation.transferred
    {
        return None;
    }
    conversation.assigned_at
}

/// What a durable store shared by several hosts says about a conversation, for
/// [`RoutingEngine::sync_conversation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// Its status.
    pub status: Status,
    /// Who holds it.
    pub assignee: Option<String>,
    /// Since when (ms), if known.
    pub assigned_at: Option<u64>,
    /// Whether a person handed it over.
    pub transferred: bool,
    /// When it was first answered (ms), if it was.
    pub first_response_at: Option<u64>,
}

/// What [`RoutingEngine::apply_roster`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RosterChange {
    /// Operators added (offline until they say otherwise; a host gives them the presence
    /// it stored for them, if any).
    pub added: Vec<String>,
    /// Operators whose configuration changed (presence and load kept).
    pub updated: Vec<String>,
    /// Operators removed from the roster.
    pub removed: Vec<String>,
    /// Operators no longer configured who still hold answered conversations: kept on the
    /// roster, offline, so they can finish them (or an admin transfers them); the next
    /// reload removes them once they hold none.
    pub retained: Vec<String>,
}

/// Live changes: what a config reload applies without a restart. Conversations, the
/// queue, assignments, history and handling times are kept.
impl RoutingEngine {
    /// Replaces the active chain and the shadow chain. The next decision uses them.
    pub fn replace_chains(&mut self, chain: PolicyChain, shadow: Option<PolicyChain>) {
        self.stats.stage_failures += self.chain.total_failures();
        tracing::info!(from = %self.chain.spec(), to = %chain.spec(), "routing chain replaced");
        self.chain = chain;
        self.shadow = shadow.map(Shadow::new);
    }

    /// Sets the offer timeout; `None` never takes a conversation back.
    pub fn set_offer_timeout(&mut self, timeout: Option<Duration>) {
        self.offer_timeout_ms = timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    }

    /// Sets the rules that pick the account a reply goes out from.
    pub fn set_reply_rules(&mut self, rules: ReplyRules) {
        self.reply_rules = rules;
    }

    /// Makes the roster `operators`: new ones join offline, known ones get their new
    /// configuration (keeping presence, load and last assignment), missing ones go offline
    /// (their unanswered conversations are re-routed) and leave the roster unless they
    /// still hold conversations. Then the queue drains to whoever can take it.
    pub async fn apply_roster(&mut self, operators: Vec<Operator>) -> (RosterChange, Vec<Notice>) {
        let mut change = RosterChange::default();
        let mut notices = Vec::new();
        let keep: BTreeSet<String> = operators.iter().map(|o| o.id.clone()).collect();
        let gone: Vec<String> = self
            .roster
            .iter()
            .map(|(operator, _)| operator.id.clone())
            .filter(|id| !keep.contains(id))
            .collect();
        for id in gone {
            if let Ok(more) = self.set_presence(&id, Presence::Offline).await {
                notices.extend(more);
            }
            if self.roster.remove_idle(&id) {
                change.removed.push(id);
            } else {
                change.retained.push(id);
            }
        }
        for operator in operators {
            let id = operator.id.clone();
            match self.roster.operator(&id) {
                Some(known) if *known == operator => {}
                Some(_) => {
                    let presence = self
                        .roster
                        .state(&id)
                        .map_or(Presence::Offline, |s| s.presence);
                    self.roster.upsert(operator, presence);
                    change.updated.push(id);
                }
                None => {
                    self.roster.upsert(operator, Presence::Offline);
                    change.added.push(id);
                }
            }
        }
        notices.extend(self.drain().await);
        (change, notices)
    }
}

/// Switching the active chain alone (the console's routing page).
impl RoutingEngine {
    /// Makes `chain` the active chain, keeping the shadow chain and its counts; answers
    /// the spec of the chain it replaced. The next decision uses the new one.
    pub(crate) fn switch_active_chain(&mut self, chain: PolicyChain) -> String {
        self.stats.stage_failures += self.chain.total_failures();
        let previous = std::mem::replace(&mut self.chain, chain);
        previous.spec().to_string()
    }
}
