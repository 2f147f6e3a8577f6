//! A platform's webhook delivery: through the plugin, into the store, and only then
//! acknowledged; failures become answers that make the platform retry or give up.

use super::Connector;
use super::call::CallKind;
use crate::error::{Error, PluginFailure};
use crate::store::{Amendments, Applied, DeliveryGroup, Ingested, OpenDelivery, Store};
use crate::types::{Message, WebhookRequest, WebhookResponse};

/// A delivery the plugin verified and normalised, to be stored before the platform is
/// given `response`.
pub(crate) struct Normalised {
    response: WebhookResponse,
    messages: Vec<Message>,
    amendments: Amendments,
}

impl Normalised {
    /// Whether the delivery carries messages and nothing else (no receipts, deletions or
    /// edits): on SQLite such a delivery is read before it is routed and written after.
    pub(crate) fn messages_alone(&self) -> bool {
        !self.messages.is_empty() && self.amendments.is_empty()
    }

    /// The delivery's messages.
    pub(crate) fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The answer for the platform and the messages (of a delivery of
    /// [messages alone](Self::messages_alone)).
    pub(crate) fn into_messages(self) -> (WebhookResponse, Vec<Message>) {
        (self.response, self.messages)
    }
}

impl Connector {
    /// Runs a delivery through the plugin and stores its messages; the platform's answer
    /// is returned only once they are committed. Failures become answers that make the
    /// platform retry (5xx) or give up (4xx) as appropriate, so nothing acknowledged is lost.
    pub(crate) async fn deliver(
        &self,
        store: &Store,
        request: WebhookRequest,
    ) -> (WebhookResponse, Vec<Ingested>) {
        let normalised = match self.normalise(request).await {
            Ok(normalised) => normalised,
            Err(response) => return (response, Vec::new()),
        };
        match store
            .ingest_delivery(
                &self.tenant,
                &self.name,
                normalised.messages,
                &normalised.amendments,
            )
            .await
        {
            Ok((ingested, applied)) => {
                self.note_applied(&applied);
                (normalised.response, ingested)
            }
            Err(e) => (self.not_stored(&e), Vec::new()),
        }
    }

    /// Stores a normalised delivery in a transaction left open, for the caller to record
    /// the routing outcome in and commit before answering the platform (see
    /// [`OpenDelivery`]); `Err` is the answer when it could not be stored.
    pub(crate) async fn begin_storing(
        &self,
        store: &Store,
        normalised: Normalised,
    ) -> Result<(WebhookResponse, OpenDelivery<'static>, Vec<Ingested>), WebhookResponse> {
        let written = store
            .begin_delivery(
                &self.tenant,
                &self.name,
                normalised.messages,
                &normalised.amendments,
            )
            .await;
        self.written(written, normalised.response)
    }

    /// [`Connector::begin_storing`] in a savepoint of `group`, which several deliveries
    /// share (see [`DeliveryGroup`]).
    pub(crate) async fn begin_storing_in<'g>(
        &self,
        group: &'g mut DeliveryGroup,
        normalised: Normalised,
    ) -> Result<(WebhookResponse, OpenDelivery<'g>, Vec<Ingested>), WebhookResponse> {
        let written = group
            .begin_delivery(
                &self.tenant,
                &self.name,
                normalised.messages,
                &normalised.amendments,
            )
            .await;
        self.written(written, normalised.response)
    }

    /// What [`Connector::begin_storing`] makes of the store's outcome.
    #[allow(clippy::type_complexity)]
    fn written<'c>(
        &self,
        written: anyhow::Result<(OpenDelivery<'c>, Vec<Ingested>, Applied)>,
        response: WebhookResponse,
    ) -> Result<(WebhookResponse, OpenDelivery<'c>, Vec<Ingested>), WebhookResponse> {
        match written {
            Ok((delivery, ingested, applied)) => {
                self.note_applied(&applied);
                Ok((response, delivery, ingested))
            }
            Err(e) => Err(self.not_stored(&e)),
        }
    }

    /// The answer to a delivery that could not be stored (the platform retries it).
    pub(crate) fn not_stored(&self, e: &anyhow::Error) -> WebhookResponse {
        tracing::error!(tenant = %self.tenant, connector = %self.name, "storing webhook messages failed: {e:#}");
        error_response(503, "not stored, retry later")
    }

    /// Runs a delivery through the plugin: what to store, or (`Err`) the answer for the
    /// platform when there is nothing to store.
    pub(crate) async fn normalise(
        &self,
        request: WebhookRequest,
    ) -> Result<Normalised, WebhookResponse> {
        let active = self.active();
        let plugin = &active.plugin;
        let outcome = self
            .call(
                &active,
                "handle-webhook",
                CallKind::Traffic,
                async move |instance| Ok(instance.handle_webhook(request).await?),
            )
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Error::Plugin {
                failure: PluginFailure::InvalidInput { detail },
                ..
            }) => {
                // The detail is for the admin: it may name secrets, grants or settings, so
                // it goes to the log and to health, and the caller (anyone on the internet)
                // gets a refusal that says nothing about the configuration.
                self.supervisor().rejected(format!(
                    "plugin {plugin} rejected a webhook delivery: {detail}"
                ));
                if let Some(held_back) = self.refusals.admit(std::time::Instant::now()) {
                    tracing::warn!(
                        tenant = %self.tenant, connector = %self.name, %plugin, held_back,
                        "rejected webhook: {detail} ({held_back} more refused since the last \
                         such line, not logged; the last one is in the connector's health)"
                    );
                }
                return Err(error_response(400, REJECTED));
            }
            Err(Error::Unavailable { retry_after_ms, .. }) => {
                tracing::debug!(tenant = %self.tenant, connector = %self.name, "webhook refused: connector not taking calls");
                // Platforms retry 5xx answers; `Retry-After` is a hint in whole seconds.
                let seconds = retry_after_ms.map_or(60, |ms| ms.div_ceil(1000).max(1));
                let mut response = error_response(503, "temporarily unavailable, retry later");
                response
                    .headers
                    .push(("retry-after".to_string(), seconds.to_string()));
                return Err(response);
            }
            Err(e) => {
                tracing::error!(tenant = %self.tenant, connector = %self.name, "webhook not processed: {e}");
                return Err(error_response(503, "not processed, retry later"));
            }
        };
        if outcome.response.status >= 300
            || (outcome.messages.is_empty() && outcome.receipts.is_empty())
        {
            if outcome.response.status >= 400
                && let Some(held_back) = self.refusals.admit(std::time::Instant::now())
            {
                tracing::warn!(
                    tenant = %self.tenant, connector = %self.name, status = outcome.response.status,
                    held_back,
                    "plugin {plugin} refused a webhook delivery ({held_back} more refused since \
                     the last such line, not logged; all are counted in \
                     centralino_webhooks_rejected_total)"
                );
            }
            return Err(outcome.response);
        }
        // Deletions and edits travel as marked messages (see `conventions`).
        let (messages, amendments) = Amendments::split(outcome.messages, outcome.receipts);
        Ok(Normalised {
            response: outcome.response,
            messages,
            amendments,
        })
    }
}

impl Connector {
    /// Logs what receipts, deletions and edits changed, and what they named that was not
    /// stored.
    fn note_applied(&self, applied: &Applied) {
        applied.log(&self.tenant, &self.name, "webhook");
    }
}

/// What the caller of a webhook the plugin rejected as invalid input is told: nothing the
/// plugin said, which is for the admin.
pub(crate) const REJECTED: &str = "invalid request";

fn error_response(status: u16, message: &str) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    }
}
