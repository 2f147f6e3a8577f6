//! The host's own types for everything that crosses the plugin contract.
//!
//! Defined in the `centralino-runtime` crate (`centralino_runtime::types`); re-exported here as part of
//! this crate's API.

pub use centralino_runtime::types::{
    AccountConfig, Agent, Attachment, Capability, ConnectorConfig, ConnectorDescription,
    DeliveryState, HOST_AUTHOR, Message, MessageKind, OutboundMessage, Pairs, Person, PollResult,
    Presence, QueueStats, Receipt, RoutingAction, RoutingContext, RoutingConversation,
    RoutingDecision, Sent, WebhookOutcome, WebhookRequest, WebhookResponse,
};

// The rest of the module, for the host's own use.
#[allow(unused_imports)]
pub(crate) use centralino_runtime::types::*;
