//! Routing what a connector just stored: one change for the whole delivery, each decision
//! timed, the outcome recorded, and customers who must wait told the honest estimate.

use std::time::Instant;

use crate::connectors::Connector;
use crate::crm::CrmEvent;
use crate::metrics::Metrics;
use crate::routing::{CustomerMessage, Notice};
use crate::store::{ConversationStatus, Ingested, Store};
use crate::types::MessageKind;

use super::{HOST_AUTHOR, TenantRouting};

impl TenantRouting {
    /// Routes newly stored messages, timing each decision, and records the outcome: one
    /// change (one lock and one read of the loads on PostgreSQL) for the whole delivery.
    pub(crate) async fn route<B>(
        &mut self,
        store: &Store,
        tenant: &str,
        connector: &Connector,
        ingested: &[Ingested],
        metrics: &Metrics,
        brand: &B,
    ) -> anyhow::Result<()>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let fresh: Vec<&Ingested> = ingested.iter().filter(|i| !i.duplicate).collect();
        let wanted: Vec<(&str, bool)> = fresh
            .iter()
            .map(|i| (i.conversation_id.as_str(), i.new_conversation))
            .collect();
        // Conversations opened before a restart, or by another host sharing the database,
        // are taken up here.
        let mut change = self.open(store, tenant, &wanted, brand).await?;
        // Who last helped each author, on any channel of theirs (the store's customer
        // record): stickiness across channels, restarts and hosts.
        let authors: Vec<&str> = fresh.iter().map(|i| i.message.author.id.as_str()).collect();
        let helpers = store.helpers(tenant, &connector.name, &authors).await?;
        for item in fresh {
            if let Some((operator, at)) = helpers.get(&item.message.author.id) {
                self.engine.remember_helper(
                    &connector.name,
                    &item.message.author.id,
                    operator,
                    *at,
                );
            }
            let mut message = CustomerMessage::from_message(&connector.name, &item.message);
            message.brand = connector.brands.get(&item.message.account).cloned();
            // The platform's own detection (X's `lang`), when the connector passed it on.
            message.language = crate::conventions::language(&item.message);
            if let Some((_, account)) = self.to_engine.get(&item.conversation_id) {
                message.account = account.clone();
                message.brand = connector.brands.get(account).cloned().or(message.brand);
            }
            if item.new_conversation && !self.to_engine.contains_key(&item.conversation_id) {
                self.forget_stale(&mut change, &message).await?;
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
            change.notices.extend(arrival.notices);
        }
        self.finish(store, tenant, change, Vec::new()).await
    }

    /// The store's changes, the CRM's events and the automatic wait estimates the
    /// engine's notices call for.
    #[allow(clippy::type_complexity)]
    pub(super) fn outcomes(
        &self,
        tenant: &str,
        notices: Vec<Notice>,
    ) -> (
        Vec<(String, ConversationStatus, Option<String>)>,
        Vec<CrmEvent>,
        Vec<(String, String)>,
    ) {
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
        (changes, events, estimates)
    }
}

/// Queues the wait estimate to the customer, once per conversation, from the account the
/// customer wrote to.
pub(super) async fn auto_reply(
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
