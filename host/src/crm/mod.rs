//! The CRM bridge: what the host tells the CRM, and how it makes sure the CRM hears it.
//!
//! Every event is first written to the store, in the same transaction as the change it
//! reports (an inbound message's event commits with the message). The host's dispatcher
//! then delivers events to the [`Crm`] in order, retrying with backoff while the CRM is down;
//! each delivery carries a stable id, so a CRM that deduplicates on it sees every event
//! exactly once. Two forms are built in: [`LocalInbox`] (in process) and [`WebhookCrm`]
//! (signed HTTP webhooks for CRMs in any language).

mod inbox;
mod webhook;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use inbox::LocalInbox;
pub use webhook::{WebhookCrm, sign as sign_webhook};

use crate::ids::{ConnectorId, ConversationId, TenantId};
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
        conversation_id: ConversationId,
        /// Whether the message opened the conversation.
        new_conversation: bool,
        /// Connector it came through.
        connector: ConnectorId,
        /// Host id of the stored message.
        message_id: String,
        /// The message (boxed: it is by far the largest event).
        message: Box<Message>,
    },
    /// An operator got the conversation.
    ConversationAssigned {
        /// Conversation.
        conversation_id: ConversationId,
        /// Operator id.
        operator: String,
        /// Why, from the routing chain.
        reason: String,
    },
    /// Nobody could take it yet.
    ConversationQueued {
        /// Conversation.
        conversation_id: ConversationId,
        /// Place in the queue (1 = next).
        position: u32,
        /// What the customer is told (or, when their brand sends no automatic answers,
        /// would be): the brand's template in their language, or a plain English
        /// sentence for a conversation without a configured brand.
        estimate: String,
    },
    /// A reply reached the platform.
    ReplySent {
        /// Conversation.
        conversation_id: ConversationId,
        /// Outbox row.
        outbox_id: String,
        /// Platform id.
        external_id: String,
    },
    /// A reply did not reach the platform.
    ReplyFailed {
        /// Conversation.
        conversation_id: ConversationId,
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
        conversation_id: ConversationId,
    },
    /// The platform said how far a sent reply got (Messenger's delivery and read
    /// receipts, X's read marks). Sent once per change: a reply goes from delivered to
    /// read, never back.
    ReplyReceipt {
        /// Conversation.
        conversation_id: ConversationId,
        /// Outbox row.
        outbox_id: String,
        /// Platform id of the reply.
        external_id: String,
        /// Its new state.
        state: crate::types::DeliveryState,
        /// When the platform recorded it (ms).
        at: u64,
    },
    /// The customer deleted a message (a deleted post, an unsent message). The host has
    /// emptied its stored copy; the CRM should remove the text it holds too, as the
    /// platforms' terms require.
    MessageDeleted {
        /// Conversation.
        conversation_id: ConversationId,
        /// Connector it came through.
        connector: ConnectorId,
        /// Host id of the stored message.
        message_id: String,
        /// Platform id of the deleted message.
        external_id: String,
        /// When the platform says it was deleted (ms).
        at: u64,
    },
    /// The customer edited a message (where the platform says so: Messenger, for one). The
    /// host keeps the new text in place of the old; the CRM should show it too. Sent once
    /// per edit, in order after the message's `message-received`; a message the host never
    /// stored arrives as `message-received` instead, with its text as edited.
    MessageEdited {
        /// Conversation.
        conversation_id: ConversationId,
        /// Connector it came through.
        connector: ConnectorId,
        /// Host id of the stored message.
        message_id: String,
        /// Platform id of the edited message.
        external_id: String,
        /// The message's text now.
        text: String,
        /// When the platform says it was edited (ms).
        at: u64,
    },
    /// An unanswered conversation reached the at-risk share of its brand's
    /// first-response target (business hours only; see [`crate::answers::ServiceLevels`]).
    /// Sent once per conversation.
    ServiceLevelAtRisk {
        /// Conversation.
        conversation_id: ConversationId,
        /// Its brand.
        brand: String,
        /// The first-response target (ms).
        target_ms: u64,
        /// How long the customer has waited, in business hours (ms).
        waited_ms: u64,
        /// Who holds it, if anyone.
        assignee: Option<String>,
        /// What the routing chain was asked to do: `none`, `raise-priority`, `reroute`.
        action: String,
    },
    /// An unanswered conversation missed its brand's first-response target. Sent once per
    /// conversation, after its `service-level-at-risk`.
    ServiceLevelBreached {
        /// Conversation.
        conversation_id: ConversationId,
        /// Its brand.
        brand: String,
        /// The first-response target (ms).
        target_ms: u64,
        /// How long the customer has waited, in business hours (ms).
        waited_ms: u64,
        /// Who holds it, if anyone.
        assignee: Option<String>,
        /// What the routing chain was asked to do: `none`, `raise-priority`, `reroute`.
        action: String,
    },
    /// Two customers' identities carry the same e-mail address or phone number as the
    /// platforms gave them: they may be one person. The host never merges them itself;
    /// the CRM decides (link or merge through the API, or nothing).
    CustomerMatchSuggested {
        /// The customer whose identity just carried the contact.
        customer_id: String,
        /// The customer who carries it too.
        other_customer_id: String,
        /// `same-email` or `same-phone`.
        reason: String,
    },
    /// A customer was erased (a data subject's request): their texts, identities and media
    /// are gone from the host, and the events about them it still held. The CRM should
    /// erase what it holds about them too: the customer and these conversations.
    CustomerErased {
        /// The erased customer's id.
        customer_id: String,
        /// Their conversations (still counted in reports, emptied).
        conversation_ids: Vec<ConversationId>,
        /// When (ms).
        at: u64,
    },
    /// A host-held account changed state (see [`crate::accounts`]): `needs-reauth` means
    /// its replies wait until an admin re-authorises it; `connected` that they go out.
    AccountStateChanged {
        /// Connector.
        connector: ConnectorId,
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
#[non_exhaustive]
pub struct CrmDelivery {
    /// Stable id: the same event always carries the same id, also when redelivered.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
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
