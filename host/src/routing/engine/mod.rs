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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::agents::{Operator, Roster};
use super::chain::{Outcome, PolicyChain};
use crate::clock::{Clock, SystemClock};
use super::conversations::{
    Conversation, ConversationNumber, Conversations, CustomerHistory, CustomerMessage, Exclusion,
    Status,
};
use crate::error::RoutingError;
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
        conversation: ConversationNumber,
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
        conversation: ConversationNumber,
        /// What the customer can be told.
        estimate: WaitEstimate,
        /// Why, from the chain.
        reason: String,
    },
    /// The assignee did not answer in time and lost the conversation.
    OfferExpired {
        /// The conversation.
        conversation: ConversationNumber,
        /// Who lost it.
        operator: String,
    },
}

/// What became of a customer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arrival {
    /// Its conversation.
    pub conversation: ConversationNumber,
    /// Whether it joined an open conversation.
    pub joined: bool,
    /// Assignments and queue places it caused.
    pub notices: Vec<Notice>,
}

/// Counters since the engine started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RoutingStats {
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
    operators: Vec<(Operator, Presence)>,
}

impl EngineBuilder {
    /// Adds an operator with their starting presence (a later call for the same id
    /// replaces the earlier one).
    pub fn operator(mut self, operator: Operator, presence: Presence) -> Self {
        self.operators.push((operator, presence));
        self
    }

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
        let mut roster = Roster::default();
        for (operator, presence) in self.operators {
            roster.upsert(operator, presence);
        }
        RoutingEngine {
            clock: self.clock,
            chain: self.chain,
            shadow: self.shadow.map(Shadow::new),
            roster,
            conversations: Conversations::default(),
            history: CustomerHistory::default(),
            queue: WaitQueue::default(),
            handling: HandlingTimes::new(self.handling_window),
            handling_window: self.handling_window,
            brand_handling: HashMap::new(),
            reply_rules: self.reply_rules,
            offer_timeout_ms: self
                .offer_timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            stats: RoutingStats::default(),
            available: BTreeSet::new(),
            scratch: None,
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
    handling_window: usize,
    /// Recent handling times per brand, for the brand's estimate.
    brand_handling: HashMap<String, HandlingTimes>,
    reply_rules: ReplyRules,
    offer_timeout_ms: Option<u64>,
    stats: RoutingStats,
    /// Who could take a conversation at the last drain, to notice newcomers in `tick`.
    available: BTreeSet<String>,
    /// The last decision's context, kept so the next one reuses its allocations (every
    /// operator's strings) instead of building them anew.
    scratch: Option<RoutingContext>,
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
            operators: Vec::new(),
        }
    }

    /// Moves the engine onto `clock` (the host's, when the host was given one).
    pub(crate) fn use_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// The engine's time.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Operators and their state.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Every conversation.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    /// One conversation.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn conversation(&self, id: ConversationNumber) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    /// The waiting queue.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    /// Recent handling times.
    #[cfg(feature = "test-support")]
    pub fn handling_times(&self) -> &HandlingTimes {
        &self.handling
    }

    /// The active chain.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn chain(&self) -> &PolicyChain {
        &self.chain
    }

    /// The shadow chain, if any.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn shadow(&self) -> Option<&Shadow> {
        self.shadow.as_ref()
    }

    /// Counters so far.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn stats(&self) -> RoutingStats {
        RoutingStats {
            // Failures of chains replaced by a reload are kept in `self.stats`.
            stage_failures: self.stats.stage_failures + self.chain.total_failures(),
            shadow: self.shadow.as_ref().map(Shadow::stats),
            ..self.stats
        }
    }

    /// What a waiting customer can be told now, per brand: their place among the
    /// brand's waiting customers, the brand's seats at work
    /// ([`Roster::brand_capacity`]) and the brand's recent handling times (the tenant's
    /// while the brand has none).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn wait_estimate(&self, id: ConversationNumber) -> Option<WaitEstimate> {
        if !self.queue.contains(id) {
            return None;
        }
        let brand = self.conversations.get(id)?.brand.as_deref();
        let same_brand = |other: &ConversationNumber| {
            self.conversations
                .get(*other)
                .is_some_and(|c| c.brand.as_deref() == brand)
        };
        let position = self
            .queue
            .iter()
            .take_while(|other| *other != id)
            .filter(same_brand)
            .count()
            + 1;
        let handling = brand
            .and_then(|b| self.brand_handling.get(b))
            .filter(|h| h.average_ms().is_some())
            .unwrap_or(&self.handling);
        Some(WaitEstimate::new(
            position,
            self.roster.brand_capacity(brand, self.now()),
            handling,
        ))
    }

    /// Adds an operator (or updates one, keeping their load) and gives them waiting
    /// conversations if they can take some.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn add_operator(&mut self, operator: Operator, presence: Presence) -> Vec<Notice> {
        self.roster.upsert(operator, presence);
        self.drain().await
    }

    /// Sets an operator's presence. Coming online drains the queue; going offline
    /// re-routes the conversations they hold but have not answered (answered ones stay:
    /// the customer already talks to them).
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn set_presence(
        &mut self,
        operator: &str,
        presence: Presence,
    ) -> Result<Vec<Notice>, RoutingError> {
        let previous = self.roster.set_presence(operator, presence)?;
        let mut taken = Vec::new();
        if presence == Presence::Offline && previous != Presence::Offline {
            let unanswered: Vec<ConversationNumber> = self
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn receive(&mut self, message: CustomerMessage) -> Arrival {
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn authorize_reply(
        &self,
        id: ConversationNumber,
        operator: &str,
    ) -> Result<ReplyRoute, RoutingError> {
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id.named()))?;
        self.reply_rules.route(&self.roster, conversation, operator)
    }

    /// Records a reply by `operator` (after [`authorize_reply`](Self::authorize_reply)'s
    /// checks): stamps the first response and remembers who helped the customer.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn record_reply(
        &mut self,
        id: ConversationNumber,
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn resolve(&mut self, id: ConversationNumber) -> Result<Vec<Notice>, RoutingError> {
        let now = self.now();
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id.named()))?;
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
                if let Some(brand) = &conversation.brand {
                    let window = self.handling_window;
                    self.brand_handling
                        .entry(brand.clone())
                        .or_insert_with(|| HandlingTimes::new(window))
                        .record(now.saturating_sub(at));
                }
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn transfer(
        &mut self,
        id: ConversationNumber,
        to: &str,
    ) -> Result<Vec<Notice>, RoutingError> {
        let now = self.now();
        let conversation = self
            .conversations
            .get(id)
            .ok_or(RoutingError::UnknownConversation(id.named()))?;
        if conversation.status == Status::Resolved {
            return Err(RoutingError::Resolved(id.named()));
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn tick(&mut self) -> Vec<Notice> {
        let now = self.now();
        let mut notices = Vec::new();
        let mut taken = Vec::new();
        if let Some(timeout) = self.offer_timeout_ms {
            let mut expired: Vec<(u64, ConversationNumber, String)> = self
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
        let waiting: Vec<ConversationNumber> = self.queue.iter().collect();
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
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

}

mod live;
mod placement;
mod store_sync;

pub use live::RosterChange;
pub use store_sync::StoredState;
use placement::unanswered_offer;
