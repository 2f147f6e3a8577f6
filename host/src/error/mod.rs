//! The crate's error type. Every error that comes from a plugin names the plugin and its
//! version, so an admin reading a log line knows which component to look at.

use crate::ids::{ConnectorId, ConversationId, TenantId};
use std::path::PathBuf;

mod routing;

pub use centralino_runtime::{Fault, PluginFailure, PluginId};
pub use routing::RoutingError;

/// Errors of the `centralino` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file is not a component this host can load; `reason` says which check failed.
    #[error("{path}: {reason}")]
    InvalidComponent {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one line.
        reason: String,
    },

    /// A plugin was loaded for one role but is built for another.
    #[error("plugin {plugin} is a `{found}` component, but a `{expected}` was needed")]
    WrongWorld {
        /// The plugin.
        plugin: PluginId,
        /// The world it implements.
        found: String,
        /// The world that was needed.
        expected: String,
    },

    /// A call into a plugin ended abnormally; the instance was discarded.
    #[error("plugin {plugin} {fault} in `{function}`: {detail}")]
    Fault {
        /// The plugin.
        plugin: PluginId,
        /// The exported function that was running.
        function: &'static str,
        /// What happened.
        fault: Fault,
        /// Details from the runtime.
        detail: String,
    },

    /// A plugin answered a call with an error of its own.
    #[error("plugin {plugin} failed in `{function}`: {failure}")]
    Plugin {
        /// The plugin.
        plugin: PluginId,
        /// The exported function.
        function: &'static str,
        /// The plugin's answer.
        failure: PluginFailure,
    },

    /// A request the host refuses (a reply from someone who does not hold the
    /// conversation, an unknown operator...).
    #[error("refused: {0}")]
    Refused(String),

    /// A list or search the host cannot run as asked: a limit out of range, a cursor it
    /// did not give, a search text without a word… The message names the field.
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// No connector by that name serves the tenant.
    #[error("no connector `{connector}` for tenant `{tenant}`")]
    UnknownConnector {
        /// The tenant.
        tenant: TenantId,
        /// The connector asked for.
        connector: ConnectorId,
    },

    /// The store holds no conversation by that id for the tenant.
    #[error("no conversation `{conversation}` for tenant `{tenant}`")]
    UnknownConversation {
        /// The tenant.
        tenant: TenantId,
        /// The conversation asked for.
        conversation: ConversationId,
    },

    /// The store holds no customer by that id (or no customer with that identity) for the
    /// tenant; an erased customer is unknown too.
    #[error("no customer `{customer}` for tenant `{tenant}`")]
    UnknownCustomer {
        /// The tenant.
        tenant: TenantId,
        /// The customer (or `channel:platform id`) asked for.
        customer: String,
    },

    /// The tenant has no routing, so its conversations have no assignee to change.
    #[error("tenant `{tenant}` has no routing configured")]
    RoutingNotConfigured {
        /// The tenant.
        tenant: TenantId,
    },

    /// The conversation is resolved (here or, with a shared store, on another host); the
    /// customer's next message opens a new one.
    #[error(
        "refused: conversation `{conversation}` is resolved; the customer's next message opens a new one"
    )]
    ConversationResolved {
        /// The conversation.
        conversation: ConversationId,
    },

    /// Routing refused the change: the operator does not hold the conversation, is at
    /// capacity, is unknown… [`RoutingError`](RoutingError) says which.
    #[error("refused: {source}")]
    Routing {
        /// The conversation the change was about, if it was about one (a presence change
        /// is about an operator).
        conversation: Option<ConversationId>,
        /// Routing's own error.
        source: Box<RoutingError>,
    },

    /// A reply was submitted under an idempotency key already used for a different reply
    /// (another conversation, operator or text); nothing was queued or recorded.
    #[error("idempotency key `{key}` was used for a different reply; use a new key per reply")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },

    /// The host refuses calls to a connector for now, because its plugin kept faulting: it
    /// is backing off, or its circuit is open until an admin resets it.
    #[error("connector `{connector}` (plugin {plugin}) is not taking calls: {reason}")]
    Unavailable {
        /// The connector.
        connector: ConnectorId,
        /// Its plugin.
        plugin: PluginId,
        /// Why, and until when.
        reason: String,
        /// When calls will be tried again, in milliseconds from now; `None` while the
        /// circuit is open (only an admin's reset closes it).
        retry_after_ms: Option<u64>,
    },

    /// Anything else, with context. Its `Display` carries the whole chain of causes
    /// (`starting connector … : unknown setting …`), so `to_string()` says why.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl From<centralino_runtime::Error> for Error {
    /// The runtime's errors are the host's own variants of the same name.
    fn from(error: centralino_runtime::Error) -> Self {
        use centralino_runtime::Error as Runtime;
        match error {
            Runtime::Io { path, source } => Error::Io { path, source },
            Runtime::InvalidComponent { path, reason } => Error::InvalidComponent { path, reason },
            Runtime::WrongWorld {
                plugin,
                found,
                expected,
            } => Error::WrongWorld {
                plugin,
                found,
                expected,
            },
            Runtime::Fault {
                plugin,
                function,
                fault,
                detail,
            } => Error::Fault {
                plugin,
                function,
                fault,
                detail,
            },
            Runtime::Plugin {
                plugin,
                function,
                failure,
            } => Error::Plugin {
                plugin,
                function,
                failure,
            },
            Runtime::Other(error) => Error::Other(error),
            // A variant added to the runtime later: keep it whole, with its message.
            error => Error::Other(anyhow::Error::new(error)),
        }
    }
}

impl Error {
    /// The plugin this error is about, if it came from one.
    pub fn plugin(&self) -> Option<&PluginId> {
        match self {
            Error::WrongWorld { plugin, .. }
            | Error::Fault { plugin, .. }
            | Error::Plugin { plugin, .. }
            | Error::Unavailable { plugin, .. } => Some(plugin),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
