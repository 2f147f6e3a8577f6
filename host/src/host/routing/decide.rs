//! Routing what a connector just stored: one change for the whole delivery, each decision
//! timed, the outcome recorded, and customers who must wait told the honest estimate in
//! their language (where their brand sends automatic answers), corrected when it turns out
//! wrong by a wide margin.

use std::time::Instant;

use crate::answers::{AnswerKind, fallback_answer};
use crate::connectors::Connector;
use crate::crm::CrmEvent;
use crate::metrics::Metrics;
use std::collections::HashMap;

use crate::routing::{ConversationNumber, CustomerMessage, Notice};
use crate::store::{ConversationStatus, Ingested, OpenDelivery, RoutedConversation, Store};
use crate::types::MessageKind;

use super::{Change, HOST_AUTHOR, TenantRouting, stored_state};

/// What routing a delivery decided: the store's changes and the CRM's events to write with
/// it, and the automatic answers to queue once it is durable.
pub(crate) type Decided = (
    Vec<(String, ConversationStatus, Option<String>)>,
    Vec<CrmEvent>,
    Vec<AutoAnswer>,
);

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
        self.receive_all(
            &mut change,
            connector,
            &fresh,
            &helpers,
            metrics,
            &mut Vec::new(),
        )
        .await?;
        self.finish(store, tenant, change, Vec::new()).await
    }

    /// [`route`](Self::route) on SQLite, inside the delivery's own transaction: what the
    /// engine decides is recorded in it, so the delivery commits once. The engine is the
    /// truth there (one host): it only takes up, read inside the delivery, conversations it
    /// has not seen since it started. Returns the automatic answers to queue once the
    /// delivery is committed ([`answer`](Self::answer)); every engine conversation the
    /// routing touched is added to `touched` (with whether the delivery opened it), for
    /// [`undo`](Self::undo) should the delivery fail to commit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn route_in<B>(
        &mut self,
        delivery: &mut OpenDelivery<'_>,
        tenant: &str,
        connector: &Connector,
        ingested: &[Ingested],
        metrics: &Metrics,
        brand: &B,
        touched: &mut Vec<(ConversationNumber, bool)>,
    ) -> anyhow::Result<Vec<AutoAnswer>>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let stored = delivery
            .routed_conversations(&self.unseen(ingested))
            .await?;
        let helpers = delivery.helpers(&connector.name, ingested).await?;
        let (changes, events, estimates) = self
            .decide(
                tenant, connector, ingested, stored, &helpers, metrics, brand, touched,
            )
            .await?;
        delivery.record_routing(&changes, &events).await?;
        Ok(estimates)
    }

    /// The conversations of a delivery's fresh messages that the engine has not seen since
    /// it started (opened before a restart), each once: [`decide`](Self::decide) takes up
    /// those the store has open.
    pub(crate) fn unseen(&self, ingested: &[Ingested]) -> Vec<String> {
        let mut unseen: Vec<String> = Vec::new();
        for item in ingested.iter().filter(|i| !i.duplicate) {
            let id = item.conversation_id.as_str();
            if !item.new_conversation
                && !self.to_engine.contains_key(id)
                && !unseen.iter().any(|seen| seen == id)
            {
                unseen.push(id.to_string());
            }
        }
        unseen
    }

    /// Routes a delivery's fresh messages on what the store told before (the stored state
    /// of its [`unseen`](Self::unseen) conversations, its authors' last helpers), touching
    /// nothing in the store: returns the store's changes and the CRM's events to write with
    /// the delivery, and the automatic answers to queue once it is durable. Every engine
    /// conversation it touches is added to `touched`, as in [`route_in`](Self::route_in).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn decide<B>(
        &mut self,
        tenant: &str,
        connector: &Connector,
        ingested: &[Ingested],
        stored: Vec<RoutedConversation>,
        helpers: &HashMap<String, (String, u64)>,
        metrics: &Metrics,
        brand: &B,
        touched: &mut Vec<(ConversationNumber, bool)>,
    ) -> anyhow::Result<Decided>
    where
        B: Fn(&str, &str) -> Option<String>,
    {
        let fresh: Vec<&Ingested> = ingested.iter().filter(|i| !i.duplicate).collect();
        let mut taken = false;
        for conversation in stored {
            if conversation.record.status != ConversationStatus::Resolved
                && !self.to_engine.contains_key(conversation.record.id.as_str())
            {
                self.take_up(conversation, brand);
                taken = true;
            }
        }
        let mut change = Change {
            tx: None,
            // A waiting conversation taken up may find a free seat at once.
            notices: if taken {
                self.engine.resume().await
            } else {
                Vec::new()
            },
            events: Vec::new(),
            horizon: None,
        };
        self.receive_all(&mut change, connector, &fresh, helpers, metrics, touched)
            .await?;
        for notice in &change.notices {
            let (Notice::Assigned { conversation, .. }
            | Notice::Queued { conversation, .. }
            | Notice::OfferExpired { conversation, .. }) = notice;
            touched.push((*conversation, false));
        }
        Ok(self.outcomes(tenant, change.notices))
    }

    /// Gives the engine each fresh message of a delivery, timing each decision; notes the
    /// engine conversations it touched (with whether the delivery opened them).
    async fn receive_all(
        &mut self,
        change: &mut Change,
        connector: &Connector,
        fresh: &[&Ingested],
        helpers: &HashMap<String, (String, u64)>,
        metrics: &Metrics,
        touched: &mut Vec<(ConversationNumber, bool)>,
    ) -> anyhow::Result<()> {
        let tenant = connector.tenant.as_str();
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
            if let Some((_, account)) = self.to_engine.get(item.conversation_id.as_str()) {
                message.account = account.clone();
                message.brand = connector.brands.get(account).cloned().or(message.brand);
            }
            if item.new_conversation && !self.to_engine.contains_key(item.conversation_id.as_str())
            {
                self.forget_stale(change, &message).await?;
            }
            let account = message.account.clone();
            let decisions = self.engine.stats().decisions;
            let started = Instant::now();
            let arrival = self.engine.receive(message).await;
            // A message joining an assigned conversation runs no chain: not a decision.
            if self.engine.stats().decisions > decisions {
                metrics.routing_decision(tenant, started.elapsed());
            }
            touched.push((arrival.conversation, item.new_conversation));
            self.to_store
                .insert(arrival.conversation, item.conversation_id.to_string());
            self.to_engine.insert(
                item.conversation_id.to_string(),
                (arrival.conversation, account),
            );
            change.notices.extend(arrival.notices);
        }
        Ok(())
    }

    /// Undoes what [`route_in`](Self::route_in) did to the engine when its delivery was
    /// not committed (the platform is told to retry): conversations the delivery opened
    /// are forgotten, the others brought back to what the store has, and every operator's
    /// load set to the store's count. The engine's statistics keep the attempt.
    pub(crate) async fn undo(
        &mut self,
        store: &Store,
        tenant: &str,
        touched: Vec<(ConversationNumber, bool)>,
    ) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        let opened: std::collections::HashSet<ConversationNumber> = touched
            .iter()
            .filter(|(_, opened)| *opened)
            .map(|(id, _)| *id)
            .collect();
        for (id, _) in touched {
            if !seen.insert(id) {
                continue;
            }
            let stored = match self.to_store.get(&id) {
                Some(store_id) if !opened.contains(&id) => {
                    store.assignment(tenant, store_id).await?
                }
                _ => None,
            };
            match stored {
                Some(stored) => {
                    self.engine.sync_conversation(id, stored_state(&stored));
                }
                None => {
                    self.engine.discard(id);
                    self.unlink(id);
                }
            }
        }
        let loads = store.operator_loads(tenant).await?;
        self.engine.set_loads(&loads);
        Ok(())
    }

    /// The store's changes, the CRM's events and the automatic answers the engine's
    /// notices call for.
    pub(super) fn outcomes(&self, tenant: &str, notices: Vec<Notice>) -> Decided {
        let now = self.engine.now();
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
                        conversation_id: id.clone().into(),
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
                    let brand = self.brand_of(conversation);
                    let language = self
                        .engine
                        .conversation(conversation)
                        .and_then(|c| c.language.as_deref());
                    let answer = match brand {
                        Some(brand) => brand.answer(language, &estimate, now),
                        None => fallback_answer(&estimate, now),
                    };
                    let position = u32::try_from(estimate.position()).unwrap_or(u32::MAX);
                    events.push(CrmEvent::ConversationQueued {
                        conversation_id: id.clone().into(),
                        position,
                        estimate: answer.text.clone(),
                    });
                    if brand.is_some_and(|b| b.auto_reply) {
                        estimates.push(AutoAnswer {
                            conversation: id.clone(),
                            key: format!("auto-wait:{id}"),
                            text: answer.text,
                            minutes: answer
                                .minutes
                                .filter(|_| answer.kind == AnswerKind::WaitEstimate),
                            customer: self.customer_of(conversation),
                        });
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

/// An automatic answer to queue.
pub(crate) struct AutoAnswer {
    /// The stored conversation.
    pub(super) conversation: String,
    /// Its idempotency key: one first answer per conversation, one per correction.
    pub(super) key: String,
    pub(super) text: String,
    /// The wait it told, when it told one.
    pub(super) minutes: Option<u64>,
    /// (channel, customer id), for the per-customer limit on corrections.
    pub(super) customer: Option<(String, String)>,
}

/// The wait a customer was last told.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Told {
    /// When the customer expects an answer (ms).
    answer_by: u64,
    /// The wait told, in minutes.
    minutes: u64,
    /// Corrections sent so far.
    corrections: u32,
}

impl TenantRouting {
    /// (channel, customer id) of an engine conversation.
    pub(super) fn customer_of(
        &self,
        id: crate::routing::ConversationNumber,
    ) -> Option<(String, String)> {
        let c = self.engine.conversation(id)?;
        Some((c.thread.channel.clone(), c.customer.clone()))
    }

    /// Notes what was sent, for later corrections.
    pub(super) fn sent(&mut self, answer: &AutoAnswer, now: u64) {
        if let Some(customer) = &answer.customer {
            self.customer_told.insert(customer.clone(), now);
        }
        let Some(minutes) = answer.minutes else {
            return;
        };
        let corrections = self
            .told
            .get(&answer.conversation)
            .map_or(0, |t| t.corrections);
        let corrections = if answer
            .key
            .starts_with(&format!("auto-wait:{}:", answer.conversation))
        {
            corrections + 1
        } else {
            corrections
        };
        self.told.insert(
            answer.conversation.clone(),
            Told {
                answer_by: now.saturating_add(minutes.saturating_mul(60_000)),
                minutes,
                corrections,
            },
        );
    }

    /// Corrections due: waiting customers of brands with `estimate_update_minutes` whose
    /// estimate now differs from the one told by more than the brand's margin, and who
    /// were not sent an automatic answer within those minutes.
    pub(super) fn corrections(&mut self) -> Vec<AutoAnswer> {
        let now = self.engine.now();
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (store_id, told) in &self.told {
            let Some((id, _)) = self.to_engine.get(store_id) else {
                gone.push(store_id.clone());
                continue;
            };
            let Some(estimate) = self.engine.wait_estimate(*id) else {
                gone.push(store_id.clone());
                continue;
            };
            let Some(brand) = self.brand_of(*id).filter(|b| b.auto_reply) else {
                continue;
            };
            let Some(every) = brand.estimate_update_minutes else {
                continue;
            };
            let customer = self.customer_of(*id);
            let last = customer
                .as_ref()
                .and_then(|c| self.customer_told.get(c))
                .copied()
                .unwrap_or(0);
            if now.saturating_sub(last) < every.saturating_mul(60_000) {
                continue;
            }
            let language = self
                .engine
                .conversation(*id)
                .and_then(|c| c.language.as_deref());
            let answer = brand.answer(language, &estimate, now);
            let Some(minutes) = answer
                .minutes
                .filter(|_| answer.kind == AnswerKind::WaitEstimate)
            else {
                continue;
            };
            let answer_by = now.saturating_add(minutes.saturating_mul(60_000));
            let off_by = answer_by.abs_diff(told.answer_by);
            let margin = told
                .minutes
                .saturating_mul(60_000)
                .saturating_mul(u64::from(brand.estimate_margin_percent))
                / 100;
            if off_by > margin {
                due.push(AutoAnswer {
                    conversation: store_id.clone(),
                    key: format!("auto-wait:{store_id}:{}", told.corrections + 1),
                    text: answer.text,
                    minutes: Some(minutes),
                    customer,
                });
            }
        }
        for store_id in gone {
            self.told.remove(&store_id);
        }
        // Customers told longer ago than any brand's correction period need no memory.
        let keep = self
            .brands
            .values()
            .filter_map(|b| b.estimate_update_minutes)
            .max()
            .unwrap_or(0)
            .saturating_mul(60_000);
        self.customer_told
            .retain(|_, at| now.saturating_sub(*at) < keep);
        due
    }
}

/// Queues an automatic answer to the customer, once per key, from the account the
/// customer wrote to; returns whether it was queued now (not under a key used before).
pub(super) async fn auto_reply(
    store: &Store,
    tenant: &str,
    conversation_id: &str,
    text: &str,
    key: &str,
) -> anyhow::Result<bool> {
    let Some(conversation) = store.conversation(tenant, conversation_id).await? else {
        return Ok(false);
    };
    let in_reply_to = store.latest_inbound_id(tenant, conversation_id).await?;
    let mut text = text.to_string();
    if conversation.kind == MessageKind::PublicPost
        && let Some(handle) = &conversation.customer_handle
    {
        // A public reply on X must mention the customer to land in their thread.
        text = format!("@{handle} {text}");
    }
    let message = conversation.reply(None, in_reply_to, text, key.to_string());
    let (_, new) = store
        .enqueue_reply(
            tenant,
            &conversation.channel,
            conversation_id,
            HOST_AUTHOR,
            &message,
        )
        .await?;
    Ok(new)
}
