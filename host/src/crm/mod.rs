//! The CRM bridge: what the host tells the CRM, and how it makes sure the CRM hears it.
//!
//! Every event is first written to the store, in the same transaction as the change it
//! reports (an inbound message's event commits with the message). A dispatcher then
//! delivers events to the [`Crm`] in order, retrying with backoff while the CRM is down;
//! each delivery carries a stable id, so a CRM that deduplicates on it sees every event
//! exactly once. Two forms are built in: [`LocalInbox`] (in process) and [`WebhookCrm`]
//! (signed HTTP webhooks for CRMs in any language).

mod inbox;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use inbox::LocalInbox;
pub use webhook::{WebhookCrm, sign as sign_webhook};

use crate::store::Store;
use crate::types::Message;

/// Something the CRM should know. New kinds of event may be added in a minor version:
/// match with a `_` arm that ignores (or logs) what the CRM does not know yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CrmEvent {
    /// A customer wrote (a new conversation, or one that continues).
    MessageReceived {
        /// Conversation.
        conversation_id: String,
        /// Whether the message opened the conversation.
        new_conversation: bool,
        /// Connector it came through.
        connector: String,
        /// Host id of the stored message.
        message_id: String,
        /// The message (boxed: it is by far the largest event).
        message: Box<Message>,
    },
    /// An operator got the conversation.
    ConversationAssigned {
        /// Conversation.
        conversation_id: String,
        /// Operator id.
        operator: String,
        /// Why, from the routing chain.
        reason: String,
    },
    /// Nobody could take it yet.
    ConversationQueued {
        /// Conversation.
        conversation_id: String,
        /// Place in the queue (1 = next).
        position: u32,
        /// Honest wait estimate, as told to the customer.
        estimate: String,
    },
    /// A reply reached the platform.
    ReplySent {
        /// Conversation.
        conversation_id: String,
        /// Outbox row.
        outbox_id: String,
        /// Platform id.
        external_id: String,
    },
    /// A reply did not reach the platform.
    ReplyFailed {
        /// Conversation.
        conversation_id: String,
        /// Outbox row.
        outbox_id: String,
        /// Why.
        reason: String,
        /// True when the host stopped mid-send: the platform may have it.
        uncertain: bool,
    },
    /// The conversation was closed.
    ConversationResolved {
        /// Conversation.
        conversation_id: String,
    },
    /// A host-held account changed state (see [`crate::accounts`]): `needs-reauth` means
    /// its replies wait until an admin re-authorises it; `connected` that they go out.
    AccountStateChanged {
        /// Connector.
        connector: String,
        /// Account id.
        account: String,
        /// `connected`, `expiring`, `needs-reauth` or `disconnected`.
        state: String,
        /// Why, in one line (never a token).
        reason: String,
    },
}

/// One event as delivered, with its stable id (the idempotency key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmDelivery {
    /// Stable id: the same event always carries the same id, also when redelivered.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// When the event happened (ms).
    pub created_at: i64,
    /// The event.
    pub event: CrmEvent,
}

/// A boxed future, so [`Crm`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a CRM implements to hear from the host (in process). Return an error to have the
/// delivery retried later; the host keeps the order of events.
pub trait Crm: Send + Sync + 'static {
    /// Takes one event.
    fn deliver<'a>(&'a self, delivery: &'a CrmDelivery) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Delivers stored events to `crm` until the task running it is stopped.
pub(crate) async fn dispatcher(store: Store, crm: Arc<dyn Crm>, host_id: String) {
    {
        loop {
            let idle = match dispatch_once(&store, crm.as_ref(), &host_id).await {
                Ok(delivered) => delivered == 0,
                Err(e) => {
                    tracing::error!("CRM dispatcher: {e:#}");
                    true
                }
            };
            if idle {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Delivers the events that are due, in order, stopping at the first failure (so the CRM
/// never sees a later event before an earlier one). Returns how many were delivered.
pub(crate) async fn dispatch_once(
    store: &Store,
    crm: &dyn Crm,
    host_id: &str,
) -> anyhow::Result<usize> {
    let batch = store.claim_events(host_id, 100).await?;
    if !batch.is_empty() {
        tracing::debug!(events = batch.len(), "delivering CRM events");
    }
    // Delivered events are marked together, once the batch is over: a crash before that
    // redelivers them with their stable ids, as a crash between a delivery and its mark
    // always could.
    let mut delivered = Vec::with_capacity(batch.len());
    let mut failed = None;
    let mut pending = batch.into_iter();
    for (delivery, attempts) in pending.by_ref() {
        match crm.deliver(&delivery).await {
            Ok(()) => delivered.push(delivery.id),
            Err(e) => {
                let retry = u64::try_from(attempts.saturating_sub(1)).unwrap_or(0);
                let wait = crate::retry::CRM_EVENTS.delay(retry);
                tracing::warn!(event = %delivery.id, attempts, "CRM refused an event, retrying in {wait:?}: {e:#}");
                failed = Some((delivery.id, format!("{e:#}"), wait));
                break;
            }
        }
    }
    store.events_delivered(&delivered).await?;
    if let Some((id, reason, wait)) = failed {
        store.event_failed(&id, &reason, wait).await?;
    }
    // Events claimed after a failure go back untouched, to keep the order.
    let rest: Vec<String> = pending.map(|(delivery, _)| delivery.id).collect();
    store.events_release(&rest).await?;
    let delivered = delivered.len();
    Ok(delivered)
}
