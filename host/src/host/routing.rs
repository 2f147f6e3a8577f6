//! The host's side of routing: every new customer message goes through the tenant's
//! [`RoutingEngine`], and what the engine decides is recorded in the store and told to the
//! CRM (assignments, queue places with an honest estimate, optionally as an auto-reply).
//!
//! The engine keeps its own, in-memory view of conversations; this module links each of
//! them to the stored conversation, so both thread a message the same way: the engine is
//! always told the account the stored conversation started on.

use std::collections::HashMap;
use std::time::Instant;

use crate::connectors::Connector;
use crate::crm::CrmEvent;
use crate::metrics::Metrics;
use crate::routing::{
    Conversation, ConversationId, CustomerMessage, Notice, RoutingEngine, Status, ThreadKey,
};
use crate::store::{ConversationStatus, Ingested, RoutedConversation, Store};
use crate::types::MessageKind;

/// Author recorded for messages the host itself sends (auto-replies).
pub const HOST_AUTHOR: &str = "centralino";

/// One tenant's routing: the engine and the links between its conversations and the store's.
pub(crate) struct TenantRouting {
    pub(crate) engine: RoutingEngine,
    to_store: HashMap<ConversationId, String>,
    to_engine: HashMap<String, (ConversationId, String)>,
    auto_reply: bool,
}

impl TenantRouting {
    pub(crate) fn new(engine: RoutingEngine, auto_reply: bool) -> Self {
        TenantRouting {
            engine,
            to_store: HashMap::new(),
            to_engine: HashMap::new(),
            auto_reply,
        }
    }

    /// Whether waiting customers get the wait estimate as an automatic reply (a config
    /// reload may change it).
    pub(crate) fn set_auto_reply(&mut self, enabled: bool) {
        self.auto_reply = enabled;
    }

    /// The engine's id of a stored conversation.
    pub(crate) fn engine_id(&self, store_id: &str) -> Option<ConversationId> {
        self.to_engine.get(store_id).map(|(id, _)| *id)
    }

    /// The engine's id of a stored conversation, taking it up from the store first when
    /// the engine does not know it (another host sharing the database routed it). `None`
    /// when the store has no such open conversation either.
    pub(crate) async fn known(
        &mut self,
        store: &Store,
        tenant: &str,
        store_id: &str,
        brand: impl Fn(&str, &str) -> Option<String>,
    ) -> anyhow::Result<Option<ConversationId>> {
        if let Some(id) = self.engine_id(store_id) {
            return Ok(Some(id));
        }
        let Some(stored) = store.routed_conversation(tenant, store_id).await? else {
            return Ok(None);
        };
        if stored.record.status == ConversationStatus::Resolved {
            return Ok(None);
        }
        let id = self.take_up(stored, &brand);
        // A waiting conversation taken up may find a free seat at once.
        let notices = self.engine.resume().await;
        self.apply(store, tenant, notices).await?;
        Ok(Some(id))
    }

    /// Rebuilds the engine's conversations from the store at start-up: every open
    /// conversation with its assignee (who keeps it, counted in their load), the others
    /// back in the queue, which is then offered to whoever can take a conversation.
    /// Returns how many conversations were taken up.
    pub(crate) async fn restore(
        &mut self,
        store: &Store,
        tenant: &str,
        brand: impl Fn(&str, &str) -> Option<String>,
    ) -> anyhow::Result<usize> {
        let open = store.open_conversations(tenant).await?;
        let count = open.len();
        for stored in open {
            if !self.to_engine.contains_key(&stored.record.id) {
                self.take_up(stored, &brand);
            }
        }
        let notices = self.engine.resume().await;
        self.apply(store, tenant, notices).await?;
        Ok(count)
    }

    /// The store just opened a conversation on `message`'s thread, yet the engine still has
    /// one open there: it was resolved through another host sharing the database. It is
    /// closed here too (its seat freed), so the new conversation is routed afresh.
    async fn forget_stale(
        &mut self,
        store: &Store,
        tenant: &str,
        message: &CustomerMessage,
    ) -> anyhow::Result<()> {
        let Some(stale) = self
            .engine
            .conversations()
            .open_on(&message.thread())
            .map(|c| c.id)
        else {
            return Ok(());
        };
        let notices = self.engine.resolve(stale).await?;
        if let Some(id) = self.to_store.remove(&stale) {
            self.to_engine.remove(&id);
        }
        self.apply(store, tenant, notices).await
    }

    /// Gives the engine a stored conversation and links the two ids.
    fn take_up(
        &mut self,
        stored: RoutedConversation,
        brand: &impl Fn(&str, &str) -> Option<String>,
    ) -> ConversationId {
        let RoutedConversation {
            record,
            assigned_at,
            transferred,
            last_text,
            messages,
        } = stored;
        let at = |ms: i64| u64::try_from(ms).unwrap_or(0);
        let status = match record.status {
            ConversationStatus::Assigned => Status::Assigned,
            ConversationStatus::Resolved => Status::Resolved,
            ConversationStatus::Open => Status::Open,
            ConversationStatus::Waiting => Status::Waiting,
        };
        // Rows assigned before the store recorded assignment times: the conversation's last
        // change is the closest (later, so an offer timeout never fires early).
        let assigned_at =
            (record.assignee.is_some()).then(|| at(assigned_at.unwrap_or(record.updated_at)));
        let conversation = Conversation {
            id: ConversationId(0),
            thread: ThreadKey {
                channel: record.channel.clone(),
                account: record.account.clone(),
                key: record.thread_key.clone(),
            },
            brand: brand(&record.channel, &record.account),
            language: None,
            customer: record.customer_id.clone(),
            kind: record.kind,
            status,
            assignee: record.assignee.clone(),
            transferred,
            priority: u8::try_from(record.priority.clamp(0, 255)).unwrap_or(u8::MAX),
            last_text,
            messages: u32::try_from(messages).unwrap_or(u32::MAX),
            created_at: at(record.created_at),
            waiting_since: at(record.created_at),
            assigned_at,
            first_assigned_at: assigned_at,
            first_response_at: record.first_response_at.map(at),
            resolved_at: None,
            offers: u32::from(record.assignee.is_some()),
            excluded: Vec::new(),
        };
        let id = self.engine.restore(conversation);
        self.to_store.insert(id, record.id.clone());
        self.to_engine.insert(record.id, (id, record.account));
        id
    }

    /// Routes newly stored messages, timing each decision, and records the outcome.
    pub(crate) async fn route(
        &mut self,
        store: &Store,
        tenant: &str,
        connector: &Connector,
        ingested: &[Ingested],
        metrics: &Metrics,
    ) -> anyhow::Result<()> {
        // What the engine decided for the whole delivery is recorded in one transaction.
        let mut notices = Vec::new();
        for item in ingested.iter().filter(|i| !i.duplicate) {
            if !item.new_conversation && !self.to_engine.contains_key(&item.conversation_id) {
                // Opened before a restart, or by another host sharing the database.
                let brands = &connector.brands;
                self.known(store, tenant, &item.conversation_id, |_, account| {
                    brands.get(account).cloned()
                })
                .await?;
            }
            let mut message = CustomerMessage::from_message(&connector.name, &item.message);
            message.brand = connector.brands.get(&item.message.account).cloned();
            if let Some((_, account)) = self.to_engine.get(&item.conversation_id) {
                message.account = account.clone();
                message.brand = connector.brands.get(account).cloned().or(message.brand);
            }
            if item.new_conversation {
                self.forget_stale(store, tenant, &message).await?;
            }
            let account = message.account.clone();
            let decisions = self.engine.stats().decisions;
            let started = Instant::now();
            let arrival = self.engine.receive(message).await;
            // A message joining an assigned conversation runs no chain: not a decision.
            if self.engine.stats().decisions > decisions {
                metrics.routing_decision(tenant, started.elapsed());
            }
            self.to_store
                .insert(arrival.conversation, item.conversation_id.clone());
            self.to_engine.insert(
                item.conversation_id.clone(),
                (arrival.conversation, account),
            );
            notices.extend(arrival.notices);
        }
        self.apply(store, tenant, notices).await
    }

    /// Records the engine's notices in the store and tells the CRM: every state change and
    /// event in one transaction, then the automatic wait estimates.
    pub(crate) async fn apply(
        &mut self,
        store: &Store,
        tenant: &str,
        notices: Vec<Notice>,
    ) -> anyhow::Result<()> {
        let mut changes = Vec::with_capacity(notices.len());
        let mut events = Vec::with_capacity(notices.len());
        let mut estimates = Vec::new();
        for notice in notices {
            match notice {
                Notice::Assigned {
                    conversation,
                    operator,
                    reason,
                    ..
                } => {
                    let Some(id) = self.to_store.get(&conversation) else {
                        continue;
                    };
                    changes.push((
                        id.clone(),
                        ConversationStatus::Assigned,
                        Some(operator.clone()),
                    ));
                    events.push(CrmEvent::ConversationAssigned {
                        conversation_id: id.clone(),
                        operator,
                        reason,
                    });
                }
                Notice::Queued {
                    conversation,
                    estimate,
                    ..
                } => {
                    let Some(id) = self.to_store.get(&conversation) else {
                        continue;
                    };
                    changes.push((id.clone(), ConversationStatus::Waiting, None));
                    let text = estimate.auto_reply();
                    let position = u32::try_from(estimate.position()).unwrap_or(u32::MAX);
                    events.push(CrmEvent::ConversationQueued {
                        conversation_id: id.clone(),
                        position,
                        estimate: text.clone(),
                    });
                    if self.auto_reply {
                        estimates.push((id.clone(), text));
                    }
                }
                Notice::OfferExpired {
                    conversation,
                    operator,
                } => {
                    tracing::info!(tenant, %conversation, operator, "offer expired; re-routing");
                }
            }
        }
        store.record_routing(tenant, &changes, &events).await?;
        for (id, text) in estimates {
            auto_reply(store, tenant, &id, &text).await?;
        }
        Ok(())
    }
}

/// Queues the wait estimate to the customer, once per conversation, from the account the
/// customer wrote to.
async fn auto_reply(
    store: &Store,
    tenant: &str,
    conversation_id: &str,
    text: &str,
) -> anyhow::Result<()> {
    let Some(conversation) = store.conversation(tenant, conversation_id).await? else {
        return Ok(());
    };
    let in_reply_to = store.latest_inbound_id(tenant, conversation_id).await?;
    let mut text = text.to_string();
    if conversation.kind == MessageKind::PublicPost
        && let Some(handle) = &conversation.customer_handle
    {
        // A public reply on X must mention the customer to land in their thread.
        text = format!("@{handle} {text}");
    }
    let message = conversation.reply(
        None,
        in_reply_to,
        text,
        format!("auto-wait:{conversation_id}"),
    );
    store
        .enqueue_reply(
            tenant,
            &conversation.channel,
            conversation_id,
            HOST_AUTHOR,
            &message,
        )
        .await?;
    Ok(())
}
