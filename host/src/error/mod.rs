//! The crate's error type. Every error that comes from a plugin names the plugin and its
//! version, so an admin reading a log line knows which component to look at.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

mod routing;

pub use routing::RoutingError;

/// A plugin as admins know it: its name and version, from the component's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PluginId {
    /// Package name the plugin was built from (`round-robin`).
    pub name: String,
    /// The plugin's own version (`0.1.0`), or `unversioned` when it carries no metadata.
    pub version: String,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Why a plugin call ended without a result from the plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The guest trapped: a panic, an `unreachable`, an out-of-bounds access.
    Trap,
    /// The call ran past its deadline and was cut off.
    Deadline,
    /// The guest asked for more memory than its cap.
    MemoryLimit,
    /// The host could not create an instance (missing import, start-up trap, a table or
    /// instance cap).
    Instantiate,
    /// The call returned more than the plugin's output caps allow (messages per call, text
    /// per message, bytes); the result was refused, not truncated.
    OutputLimit,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Trap => "trapped",
            Fault::Deadline => "ran past its deadline",
            Fault::MemoryLimit => "exceeded its memory limit",
            Fault::Instantiate => "could not be instantiated",
            Fault::OutputLimit => "exceeded an output limit",
        })
    }
}

/// A plugin's own answer that a call failed (the contract's `plugin-error`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PluginFailure {
    /// The platform refused the credential: an admin must re-authorise.
    InvalidCredentials {
        /// What the plugin said.
        detail: String,
    },
    /// The platform asked to slow down.
    RateLimited {
        /// How long to wait, in milliseconds.
        retry_after_ms: u64,
        /// What the plugin said.
        detail: String,
    },
    /// Refused for good; retrying will not help.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Temporary failure; retry later.
    Transient {
        /// What happened.
        detail: String,
    },
    /// The input (webhook, setting) was not acceptable.
    InvalidInput {
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginFailure::InvalidCredentials { detail } => {
                write!(f, "invalid credentials (needs re-authorisation): {detail}")
            }
            PluginFailure::RateLimited {
                retry_after_ms,
                detail,
            } => {
                write!(f, "rate limited, retry after {retry_after_ms} ms: {detail}")
            }
            PluginFailure::Rejected { reason } => write!(f, "rejected: {reason}"),
            PluginFailure::Transient { detail } => write!(f, "transient failure: {detail}"),
            PluginFailure::InvalidInput { detail } => write!(f, "invalid input: {detail}"),
        }
    }
}

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
        tenant: String,
        /// The connector asked for.
        connector: String,
    },

    /// The store holds no conversation by that id for the tenant.
    #[error("no conversation `{conversation}` for tenant `{tenant}`")]
    UnknownConversation {
        /// The tenant.
        tenant: String,
        /// The conversation asked for.
        conversation: String,
    },

    /// The tenant has no routing, so its conversations have no assignee to change.
    #[error("tenant `{tenant}` has no routing configured")]
    RoutingNotConfigured {
        /// The tenant.
        tenant: String,
    },

    /// The conversation is resolved (here or, with a shared store, on another host); the
    /// customer's next message opens a new one.
    #[error(
        "refused: conversation `{conversation}` is resolved; the customer's next message opens a new one"
    )]
    ConversationResolved {
        /// The conversation.
        conversation: String,
    },

    /// Routing refused the change: the operator does not hold the conversation, is at
    /// capacity, is unknown… [`RoutingError`](RoutingError) says which.
    #[error("refused: {source}")]
    Routing {
        /// The conversation the change was about, if it was about one (a presence change
        /// is about an operator).
        conversation: Option<String>,
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
        connector: String,
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
