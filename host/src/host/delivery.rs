//! A webhook delivery from the plugin to the platform's answer.
//!
//! On SQLite (one host, whose routing engine is the truth) a delivery is written in one
//! transaction: its messages and their events are written, the tenant's engine routes
//! them, the outcome is recorded in the same transaction, and only once it is committed is
//! the platform answered. If anything fails before the commit is done, nothing of the
//! delivery is stored, the platform is told to retry, and what the engine decided for it
//! is undone ([`TenantRouting::undo`](super::routing::TenantRouting::undo)).
//!
//! **Deliveries share commits.** A commit waits for the disk (`synchronous = FULL`):
//! about a quarter of what a delivery of 100 messages costs under the lock
//! (`BENCHMARKS.md` §2). Deliveries of a tenant
//! that the plugin has normalised queue up ([`DeliveryQueue`]) while another is being
//! written; whichever of their callers takes the tenant's routing lock next writes every
//! queued one (at most [`MAX_GROUP`]), each in a savepoint of one transaction
//! ([`crate::store::DeliveryGroup`]), and commits once. A delivery that fails is rolled
//! back to its savepoint and told to retry alone; its routing is undone after the commit
//! (the store's connection belongs to the group until then), so deliveries written after
//! it in the group were routed with the seats it took counted, and the loads are read
//! back from the store at the undo. Each caller is answered only when its delivery is
//! durable.
//!
//! **Deliveries of messages alone read ahead** ([`ahead`]), which is what platforms
//! mostly send: the oldest of them queued form a group (of one, too) in which the store
//! reads the next delivery while routing decides the one before, and writes each while
//! routing decides the next, when the two share no message, thread or author; those the
//! plugin queues meanwhile join the group while it is open. Deliveries that also carry
//! receipts, deletions or edits are written in turn, each read, routed and written before
//! the next; a lone one keeps its own transaction, without a savepoint.
//!
//! Locks are taken in one order everywhere: the tenant's routing first, then the
//! store's connection (a routing change takes the connection while holding the routing
//! lock, so a delivery holding the connection must never wait for the routing lock). The
//! plugin runs before either is taken.
//!
//! On PostgreSQL, where several hosts share the store, the delivery commits on its own
//! and routing follows in a change of its own, under the tenant's advisory lock (see
//! `routing`).

use std::sync::{Arc, PoisonError};

use tokio::sync::oneshot;

use crate::connectors::{Connector, Normalised};
use crate::routing::ConversationNumber;
use crate::store::{Backend, Ingested, OpenDelivery};
use crate::types::{WebhookRequest, WebhookResponse};

use super::HostInner;
use super::routing::{AutoAnswer, TenantRouting};

mod ahead;

/// Most deliveries written under one commit: bounds how long the first of a group waits
/// for the others to be written.
const MAX_GROUP: usize = 32;

/// What the platform is answered and what was stored.
type Answer = (WebhookResponse, Vec<Ingested>);

/// The engine conversations a delivery's routing touched (with whether it opened them).
type Touched = Vec<(ConversationNumber, bool)>;

/// A tenant's deliveries that the plugin has normalised and that wait to be written, in
/// arrival order. Whichever of their callers takes the tenant's routing lock first writes
/// all of them in one group (see the module docs) and answers each through its channel.
#[derive(Default)]
pub(super) struct DeliveryQueue(std::sync::Mutex<Vec<Queued>>);

struct Queued {
    connector: Arc<Connector>,
    normalised: Normalised,
    answer: oneshot::Sender<Answer>,
}

impl DeliveryQueue {
    fn push(&self, queued: Queued) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(queued);
    }

    /// The oldest waiting deliveries of messages alone, at most `n`, up to the first that
    /// is not (it waits for the next group).
    fn take_alone(&self, n: usize) -> Vec<Queued> {
        let mut waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let alone = waiting
            .iter()
            .take(n)
            .take_while(|q| q.normalised.messages_alone())
            .count();
        waiting.drain(..alone).collect()
    }

    /// The oldest waiting deliveries, at most [`MAX_GROUP`].
    fn take(&self) -> Vec<Queued> {
        let mut waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = waiting.len().min(MAX_GROUP);
        waiting.drain(..n).collect()
    }
}

/// A delivery written (in a group: its savepoint released), waiting for its commit to settle.
struct Written {
    connector: Arc<Connector>,
    answer: oneshot::Sender<Answer>,
    response: WebhookResponse,
    ingested: Vec<Ingested>,
    answers: Vec<AutoAnswer>,
    touched: Touched,
}

impl HostInner {
    /// Runs one webhook delivery of connector `c`: the plugin, the store, routing.
    pub(super) async fn receive_webhook(
        self: &Arc<Self>,
        c: &Arc<Connector>,
        request: WebhookRequest,
    ) -> Answer {
        let sqlite = self.store.backend() == Backend::Sqlite;
        let (true, Some(queue)) = (sqlite, self.delivery_queues.get(&c.tenant)) else {
            let (response, ingested) = c.deliver(&self.store, request).await;
            self.route(c, &ingested).await;
            return (response, ingested);
        };
        let normalised = match c.normalise(request).await {
            Ok(normalised) => normalised,
            Err(response) => return (response, Vec::new()),
        };
        let (answer, answered) = oneshot::channel();
        queue.push(Queued {
            connector: c.clone(),
            normalised,
            answer,
        });
        // The writing runs in a task of its own: a caller that goes away (the platform
        // hung up) must not cancel a group half written, whose other deliveries and
        // routing decisions depend on it finishing.
        let host = self.clone();
        let tenant = c.tenant.clone();
        tokio::spawn(async move { host.write_queued(&tenant).await });
        // Dropped unanswered only if the task writing it failed before its commit: its
        // transaction rolled back, nothing of this delivery is stored.
        answered.await.unwrap_or_else(|_| {
            let e = anyhow::anyhow!("the delivery's writer stopped before its commit");
            (c.not_stored(&e), Vec::new())
        })
    }

    /// Takes the tenant's routing lock and writes the deliveries queued by then (none when
    /// the writer before took them all).
    async fn write_queued(&self, tenant: &str) {
        let (Some(routing), Some(queue)) =
            (self.routing.get(tenant), self.delivery_queues.get(tenant))
        else {
            return;
        };
        let mut routing = routing.lock().await;
        let alone = queue.take_alone(MAX_GROUP);
        if !alone.is_empty() {
            self.write_ahead(&mut routing, queue, alone).await;
            return;
        }
        let mut group = queue.take();
        if group.len() > 1 {
            self.write_group(&mut routing, group).await;
        } else if let Some(queued) = group.pop() {
            self.write_alone(&mut routing, queued).await;
        }
    }

    /// Writes, routes and commits one delivery in its own transaction.
    async fn write_alone(&self, routing: &mut TenantRouting, queued: Queued) {
        let Queued {
            connector: c,
            normalised,
            answer,
        } = queued;
        let (response, delivery, ingested) = match c.begin_storing(&self.store, normalised).await {
            Ok(open) => open,
            Err(response) => {
                let _ = answer.send((response, Vec::new()));
                return;
            }
        };
        let mut touched = Vec::new();
        let (answers, committed) = match self
            .route_and_commit(routing, &c, delivery, &ingested, &mut touched)
            .await
        {
            Ok(answers) => (answers, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        let written = Written {
            connector: c,
            answer,
            response,
            ingested,
            answers,
            touched,
        };
        self.settle(routing, vec![written], Vec::new(), committed)
            .await;
    }

    /// Writes and routes several deliveries of one tenant, each in a savepoint, and
    /// commits them together; a delivery that fails is rolled back alone and told to retry.
    async fn write_group(&self, routing: &mut TenantRouting, group: Vec<Queued>) {
        let mut tx = match self.store.begin_group().await {
            Ok(tx) => tx,
            Err(e) => return refuse_all(group, &e),
        };
        let mut written: Vec<Written> = Vec::with_capacity(group.len());
        // What the deliveries rolled back touched in the engine, undone after the commit
        // (the store's connection is the group's until then).
        let mut undo: Vec<(Arc<Connector>, Touched)> = Vec::new();
        for queued in group {
            let Queued {
                connector: c,
                normalised,
                answer,
            } = queued;
            let (response, delivery, ingested) = match c.begin_storing_in(&mut tx, normalised).await
            {
                Ok(open) => open,
                Err(response) => {
                    let _ = answer.send((response, Vec::new()));
                    continue;
                }
            };
            let mut touched = Vec::new();
            let released = self
                .route_and_commit(routing, &c, delivery, &ingested, &mut touched)
                .await;
            match released {
                Ok(answers) => written.push(Written {
                    connector: c,
                    answer,
                    response,
                    ingested,
                    answers,
                    touched,
                }),
                Err(e) => {
                    let _ = answer.send((c.not_stored(&e), Vec::new()));
                    undo.push((c, touched));
                }
            }
        }
        let committed = tx.commit().await;
        self.settle(routing, written, undo, committed).await;
    }

    /// Answers the deliveries of a commit once it is done: on success each is counted,
    /// its automatic answers queued and its platform answered; on failure each is told to
    /// retry and its routing undone. `undo` are deliveries already answered (rolled back
    /// alone) whose routing is undone either way.
    async fn settle(
        &self,
        routing: &mut TenantRouting,
        written: Vec<Written>,
        undo: Vec<(Arc<Connector>, Touched)>,
        committed: anyhow::Result<()>,
    ) {
        for (c, touched) in undo {
            self.undo(routing, &c, touched).await;
        }
        match committed {
            Ok(()) => {
                if let Some(w) = written.first() {
                    self.metrics
                        .deliveries_committed(&w.connector.tenant, written.len());
                }
                for w in written {
                    self.stored(routing, &w.connector, &w.ingested, w.answers)
                        .await;
                    let _ = w.answer.send((w.response, w.ingested));
                }
            }
            Err(e) => {
                for w in written {
                    self.undo(routing, &w.connector, w.touched).await;
                    let _ = w.answer.send((w.connector.not_stored(&e), Vec::new()));
                }
            }
        }
    }

    /// Routes a delivery just written, inside it (nothing to route when every message was
    /// a duplicate), and commits it (in a group: releases its savepoint); returns the
    /// automatic answers to queue once it is durable. On `Err` the delivery was dropped,
    /// so rolled back.
    async fn route_and_commit(
        &self,
        routing: &mut TenantRouting,
        c: &Connector,
        mut delivery: OpenDelivery<'_>,
        ingested: &[Ingested],
        touched: &mut Touched,
    ) -> anyhow::Result<Vec<AutoAnswer>> {
        let answers = if ingested.iter().all(|i| i.duplicate) {
            Vec::new()
        } else {
            routing
                .route_in(
                    &mut delivery,
                    &c.tenant,
                    c,
                    ingested,
                    &self.metrics,
                    &self.brands(&c.tenant),
                    touched,
                )
                .await?
        };
        delivery.commit().await?;
        Ok(answers)
    }

    /// What follows a delivery's commit: its counts, and the automatic answers routing
    /// asked for.
    async fn stored(
        &self,
        routing: &mut TenantRouting,
        c: &Connector,
        ingested: &[Ingested],
        answers: Vec<AutoAnswer>,
    ) {
        self.count_stored(c, ingested);
        if let Err(e) = routing.answer(&self.store, &c.tenant, answers).await {
            tracing::error!(tenant = %c.tenant, connector = %c.name, "routing: automatic answers: {e:#}");
        }
    }

    /// Brings the engine back to the store after a delivery that was not committed.
    async fn undo(&self, routing: &mut TenantRouting, c: &Connector, touched: Touched) {
        if touched.is_empty() {
            return;
        }
        if let Err(undo) = routing.undo(&self.store, &c.tenant, touched).await {
            tracing::error!(tenant = %c.tenant, connector = %c.name, "routing: undoing a delivery that was not stored: {undo:#}");
        }
    }
}

/// Tells every delivery of `group` to retry: its transaction could not begin (`e`).
fn refuse_all(group: Vec<Queued>, e: &anyhow::Error) {
    for queued in group {
        let response = queued.connector.not_stored(e);
        let _ = queued.answer.send((response, Vec::new()));
    }
}
