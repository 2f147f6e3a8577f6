//! Keeping the engine in line with a durable store: conversations taken up after a
//! restart or from another host, loads and states as the store has them.

use super::*;

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

impl RoutingEngine {
    /// Takes up a conversation kept in a durable store (after a restart, or one another
    /// host sharing the database routed) and returns its new id. An assigned one stays
    /// with its assignee and counts in their load, beyond capacity if need be (it is
    /// theirs already); one whose assignee is no longer on the roster, and an open or
    /// waiting one, joins the queue in its place by priority and first message. Nothing is
    /// decided here: call [`resume`](Self::resume) once everything is restored.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn restore(&mut self, mut conversation: Conversation) -> ConversationNumber {
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
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn set_loads(&mut self, loads: &std::collections::HashMap<String, u32>) {
        self.roster.set_loads(loads);
    }

    /// Forgets a conversation the host opened for a delivery whose transaction then
    /// failed to commit: out of the queue and gone, as if the message had never arrived
    /// (the platform delivers it again). Loads are left alone: the host sets them to the
    /// store's count next (see [`set_loads`](Self::set_loads)).
    pub(crate) fn discard(&mut self, id: ConversationNumber) {
        self.queue.remove(id);
        self.conversations.forget(id);
    }

    /// Brings one conversation in line with what a durable store shared by several hosts
    /// says about it: resolved elsewhere, it is closed (out of the queue, its thread free
    /// for a new conversation); held by an operator, it is theirs (as handed over when
    /// `transferred`); open or waiting, it waits in the queue in its place. Loads are left
    /// alone (see [`set_loads`](Self::set_loads)), and nothing is decided. Returns whether
    /// anything changed.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn sync_conversation(&mut self, id: ConversationNumber, stored: StoredState) -> bool {
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

    /// Takes what a durable store says about who last helped a customer (on any channel
    /// of theirs: the store's customer record), unless the engine knows a later help: the
    /// `sticky` stage then sees it as the conversation's previous agent, after a restart
    /// and through any host sharing the database.
    pub(crate) fn remember_helper(&mut self, channel: &str, customer: &str, operator: &str, at: u64) {
        self.history.remember(channel, customer, operator, at);
    }

    /// Forgets what the engine holds about an erased customer: the texts and platform ids of
    /// their conversations `ids`, and who helped their `identities` (channel, platform id).
    pub(crate) fn forget_customer(&mut self, ids: &[ConversationNumber], identities: &[(String, String)]) {
        for id in ids {
            if let Some(conversation) = self.conversations.get_mut(*id) {
                conversation.last_text.clear();
                conversation.customer = "erased".to_string();
                conversation.thread.key = "erased".to_string();
            }
        }
        for (channel, customer) in identities {
            self.history.forget(channel, customer);
        }
    }

    /// Offers the waiting conversations to whoever can take one now: after
    /// [`restore`](Self::restore), so restored conversations do not wait for the next
    /// seat to free. Returns the assignments made.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn resume(&mut self) -> Vec<Notice> {
        self.drain().await
    }

}
