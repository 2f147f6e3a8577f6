//! A webhook delivery from the plugin to the platform's answer.
//!
//! On SQLite (one host, whose routing engine is the truth) a delivery is one transaction:
//! its messages and their events are written, the tenant's engine routes them, the
//! outcome is recorded in the same transaction, and it commits once; only then is the
//! platform answered. If anything fails before the commit is done, nothing is stored,
//! the platform is told to retry, and what the engine decided for the delivery is undone
//! ([`TenantRouting::undo`](super::routing::TenantRouting::undo)).
//!
//! Locks are taken in one order everywhere: the tenant's routing first, then the
//! store's connection (a routing change takes the connection while holding the routing
//! lock, so a delivery holding the connection must never wait for the routing lock). The
//! plugin runs before either is taken.
//!
//! On PostgreSQL, where several hosts share the store, the delivery commits on its own
//! and routing follows in a change of its own, under the tenant's advisory lock (see
//! `routing`).

use crate::connectors::Connector;
use crate::store::{Backend, Ingested};
use crate::types::{WebhookRequest, WebhookResponse};

use super::HostInner;

impl HostInner {
    /// Runs one webhook delivery of connector `c`: the plugin, the store, routing.
    pub(super) async fn receive_webhook(
        &self,
        c: &Connector,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let routing = match self.store.backend() {
            Backend::Sqlite => self.routing.get(&c.tenant),
            Backend::Postgres => None,
        };
        let Some(routing) = routing else {
            let (response, ingested) = c.deliver(&self.store, request).await;
            self.route(c, &ingested).await;
            return (response, ingested);
        };
        let normalised = match c.normalise(request).await {
            Ok(normalised) => normalised,
            Err(response) => return (response, Vec::new()),
        };
        let mut routing = routing.lock().await;
        let (response, mut delivery, ingested) =
            match c.begin_storing(&self.store, normalised).await {
                Ok(open) => open,
                Err(response) => return (response, Vec::new()),
            };
        let mut touched = Vec::new();
        let routed = if ingested.iter().all(|i| i.duplicate) {
            Ok(Vec::new())
        } else {
            routing
                .route_in(
                    &mut delivery,
                    &c.tenant,
                    c,
                    &ingested,
                    &self.metrics,
                    &self.brands(&c.tenant),
                    &mut touched,
                )
                .await
        };
        let committed = match routed {
            Ok(answers) => delivery.commit().await.map(|()| answers),
            // Dropped: rolled back.
            Err(e) => Err(e),
        };
        match committed {
            Ok(answers) => {
                self.count_stored(c, &ingested);
                if let Err(e) = routing.answer(&self.store, &c.tenant, answers).await {
                    tracing::error!(tenant = %c.tenant, connector = %c.name, "routing: automatic answers: {e:#}");
                }
                (response, ingested)
            }
            Err(e) => {
                if let Err(undo) = routing.undo(&self.store, &c.tenant, touched).await {
                    tracing::error!(tenant = %c.tenant, connector = %c.name, "routing: undoing a delivery that was not stored: {undo:#}");
                }
                (c.not_stored(&e), Vec::new())
            }
        }
    }
}
