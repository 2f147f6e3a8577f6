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
use crate::routing::{ConversationId, CustomerMessage, Notice, RoutingEngine};
use crate::store::{ConversationStatus, Ingested, Store};
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

    /// The engine's id of a stored conversation.
    pub(crate) fn engine_id(&self, store_id: &str) -> Option<ConversationId> {
        self.to_engine.get(store_id).map(|(id, _)| *id)
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
        for item in ingested.iter().filter(|i| !i.duplicate) {
            let mut message = CustomerMessage::from_message(&connector.name, &item.message);
            message.brand = connector.brands.get(&item.message.account).cloned();
            if let Some((_, account)) = self.to_engine.get(&item.conversation_id) {
                message.account = account.clone();
                message.brand = connector.brands.get(account).cloned().or(message.brand);
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
            self.apply(store, tenant, arrival.notices).await?;
        }
        Ok(())
    }

    /// Records the engine's notices in the store and tells the CRM.
    pub(crate) async fn apply(
        &mut self,
        store: &Store,
        tenant: &str,
        notices: Vec<Notice>,
    ) -> anyhow::Result<()> {
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
                    store
                        .set_conversation_state(
                            tenant,
                            id,
                            ConversationStatus::Assigned,
                            Some(&operator),
                        )
                        .await?;
                    let event = CrmEvent::ConversationAssigned {
                        conversation_id: id.clone(),
                        operator,
                        reason,
                    };
                    store.append_event(tenant, &event).await?;
                }
                Notice::Queued {
                    conversation,
                    estimate,
                    ..
                } => {
                    let Some(id) = self.to_store.get(&conversation) else {
                        continue;
                    };
                    store
                        .set_conversation_state(tenant, id, ConversationStatus::Waiting, None)
                        .await?;
                    let text = estimate.auto_reply();
                    let position = u32::try_from(estimate.position()).unwrap_or(u32::MAX);
                    let event = CrmEvent::ConversationQueued {
                        conversation_id: id.clone(),
                        position,
                        estimate: text.clone(),
                    };
                    store.append_event(tenant, &event).await?;
                    if self.auto_reply {
                        auto_reply(store, tenant, id, &text).await?;
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
