//! Errors of the routing engine. Each says which operator, conversation or line it is
//! about, so a CRM can show it to the person who caused it.

use crate::ids::ConversationId;

/// What went wrong in routing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// No operator has this id.
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),

    /// No conversation has this id. (Conversations are named by the store's id when the
    /// error comes from [`Host`](crate::Host); by the engine's own `conv-N` in a replay.)
    #[error("unknown conversation {0}")]
    UnknownConversation(ConversationId),

    /// The conversation is resolved; a new customer message opens a new one.
    #[error("conversation {0} is resolved")]
    Resolved(ConversationId),

    /// A reply from someone who does not own the conversation.
    #[error("{operator} may not reply to {conversation}: {owner}")]
    NotAssignee {
        /// The conversation.
        conversation: ConversationId,
        /// Who tried to reply.
        operator: String,
        /// Who owns it, in words (`it is assigned to sara`, `it is not assigned yet`).
        owner: String,
    },

    /// The operator is not online within their hours, or is full.
    #[error("operator `{0}` cannot take a conversation now")]
    Unavailable(String),

    /// A transfer to an operator who is full.
    #[error("operator `{operator}` already holds {capacity} conversations, their capacity")]
    AtCapacity {
        /// The operator.
        operator: String,
        /// Their capacity.
        capacity: u32,
    },

    /// A chain specification that does not parse.
    #[error("routing chain `{spec}`: {reason}")]
    ChainSpec {
        /// The text as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },

    /// A line of an events file that does not parse.
    #[error("{source_name}:{line}: {reason}")]
    Events {
        /// The file (or `events` when read from memory).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A policy plugin could not be loaded or configured; the error names the plugin.
    #[error(transparent)]
    Plugin(#[from] crate::Error),
}

impl RoutingError {
    /// This error with its conversation named `conversation` (the store's id, where the
    /// engine knows only its own number).
    pub(crate) fn about(self, conversation: &ConversationId) -> RoutingError {
        match self {
            RoutingError::UnknownConversation(_) => {
                RoutingError::UnknownConversation(conversation.clone())
            }
            RoutingError::Resolved(_) => RoutingError::Resolved(conversation.clone()),
            RoutingError::NotAssignee {
                operator, owner, ..
            } => RoutingError::NotAssignee {
                conversation: conversation.clone(),
                operator,
                owner,
            },
            other => other,
        }
    }
}
