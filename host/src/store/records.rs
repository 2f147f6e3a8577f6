//! What the store hands out: conversations, messages, ingest results.

use super::*;
use crate::ids::{ConversationId, TenantId};

/// What happened to one inbound message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Ingested {
    /// Platform id.
    pub external_id: String,
    /// Host id of the stored message (of the earlier copy, for a duplicate).
    pub message_id: String,
    /// Conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Whether it opened a new conversation.
    pub new_conversation: bool,
    /// Whether it had been stored before (nothing changed).
    pub duplicate: bool,
    /// Whether it was refused because its customer was erased (see
    /// [`Host::erase_customer`](crate::Host::erase_customer)): nothing was stored, and
    /// `message_id` and `conversation_id` are empty. Such a message also counts as a
    /// `duplicate`.
    pub erased: bool,
    /// The message as the connector normalised it.
    pub message: Message,
}

/// Status of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConversationStatus {
    /// New, not yet routed.
    Open,
    /// Waiting in the queue for an operator.
    Waiting,
    /// With an operator.
    Assigned,
    /// Closed.
    Resolved,
}

impl ConversationStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Waiting => "waiting",
            ConversationStatus::Assigned => "assigned",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub(super) fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "open" => ConversationStatus::Open,
            "waiting" => ConversationStatus::Waiting,
            "assigned" => ConversationStatus::Assigned,
            "resolved" => ConversationStatus::Resolved,
            other => anyhow::bail!("unknown conversation status `{other}` in the store"),
        })
    }
}

/// A stored conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConversationRecord {
    /// Host id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Channel (connector name).
    pub channel: String,
    /// Company account the customer first wrote to.
    pub account: String,
    /// Connector's thread key.
    pub thread_key: String,
    /// Customer platform id.
    pub customer_id: String,
    /// Customer handle.
    pub customer_handle: Option<String>,
    /// How it started.
    pub kind: MessageKind,
    /// Status.
    pub status: ConversationStatus,
    /// Operator holding it.
    pub assignee: Option<String>,
    /// Priority.
    pub priority: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// First reply sent (ms).
    pub first_response_at: Option<i64>,
    /// Resolved (ms).
    pub resolved_at: Option<i64>,
}

impl ConversationRecord {
    /// A reply in this conversation: threaded under `in_reply_to`, to the customer
    /// privately when the conversation is private, from `account` (default: the account
    /// the customer wrote to).
    pub fn reply(
        &self,
        account: Option<String>,
        in_reply_to: Option<String>,
        text: String,
        idempotency_key: String,
    ) -> OutboundMessage {
        OutboundMessage {
            account: account.unwrap_or_else(|| self.account.clone()),
            conversation_key: self.thread_key.clone(),
            kind: self.kind,
            recipient: (self.kind == MessageKind::PrivateMessage).then(|| self.customer_id.clone()),
            in_reply_to,
            text,
            attachments: Vec::new(),
            idempotency_key,
        }
    }
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoredMessage {
    /// Host id.
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// The channel (connector) it came through or went out on.
    pub channel: String,
    /// `inbound` (customer) or `outbound` (company).
    pub direction: String,
    /// The message.
    pub message: Message,
    /// When the host stored it (ms).
    pub received_at: i64,
    /// When the customer deleted it (ms); its text, attachments and extras are gone.
    pub deleted_at: Option<i64>,
    /// When the customer last edited it (ms); its text is the edited one.
    pub edited_at: Option<i64>,
}

pub(super) fn kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::PublicPost => "public-post",
        MessageKind::PrivateMessage => "private-message",
        MessageKind::Comment => "comment",
    }
}

pub(super) fn parse_kind(s: &str) -> anyhow::Result<MessageKind> {
    Ok(match s {
        "public-post" => MessageKind::PublicPost,
        "private-message" => MessageKind::PrivateMessage,
        "comment" => MessageKind::Comment,
        other => anyhow::bail!("unknown message kind `{other}` in the store"),
    })
}
