//! # centralino
//!
//! An embeddable plugin host for social customer care. Customers write to a company on
//! Twitter/X, Facebook and newer channels; channel **connectors** and **routing policies**
//! are WebAssembly components behind a stable, versioned WIT contract
//! (`centralino:plugin@0.1.0`, in `wit/`), so a CRM vendor ships the host once and admins
//! add, swap or upgrade plugins without rebuilding anything.
//!
//! This crate is what a CRM links in. Its public API is this short list; everything else
//! is internal (see docs/api-stability.md for what is promised and how it may change):
//!
//! - [`Host`] and [`HostBuilder`]: connectors, routing and the CRM wired together over a
//!   durable store; replies, transfers, presence, health, the webhook ingress
//!   ([`Host::serve`]).
//! - [`crm`]: the [`Crm`](crm::Crm) trait a CRM implements to receive
//!   [`CrmEvent`](crm::CrmEvent)s, the local inbox, and signed event webhooks.
//! - [`types`]: the messages, operators and routing decisions a CRM passes and receives.
//! - [`Error`]: one typed error for everything the host refuses or fails at.
//! - [`TenantId`], [`ConnectorId`], [`ConversationId`]: the ids events carry and the host's
//!   methods take, as distinct types.
//! - [`config`]: `centralino.toml`, read and checked, for hosts configured from a file.
//! - [`connectors`]: a connector's spec, health and reload reports.
//! - [`routing`]: operators, the policy chain and the engine's configuration; replay of
//!   recorded traffic through a candidate chain.
//! - [`store`]: read access to stored conversations and messages, and the outbox backlog.
//! - [`api`]: the HTTP APIs of `centralino run` as axum routers (the REST API for CRMs in
//!   any language, with its OpenAPI document, and the admin API).
//! - [`runtime`] and [`capabilities`]: what plugin tooling needs: the wasmtime engine,
//!   component inspection, plugin instances with their limits, and the grants that open
//!   a plugin's imports.
//!
//! ## Example: ask a routing policy for a decision
//!
//! ```no_run
//! use centralino::runtime::{PluginLimits, Runtime};
//! use centralino::types::*;
//!
//! # async fn example() -> Result<(), centralino::Error> {
//! let runtime = Runtime::new()?;
//! let policy = runtime.load_router("target/plugins/round-robin.wasm")?;
//! let mut router = policy.instance(Vec::new(), PluginLimits::default());
//! let agent = Agent {
//!     id: "marco".into(), name: "Marco".into(), skills: vec!["tim".into()],
//!     languages: vec!["it".into()], accounts: vec!["TIM_Marco".into()],
//!     capacity: 3, load: 0, presence: Presence::Online, last_assigned_at: None,
//! };
//! let conversation = RoutingConversation {
//!     id: "c1".into(), channel: "twitter".into(), account: "TIM_Official".into(),
//!     brand: Some("tim".into()), language: Some("it".into()), customer: "42".into(),
//!     kind: MessageKind::PublicPost, text: "il mio modem non va".into(), priority: 0,
//!     previous_agent: None, previous_agent_at: None, waiting_since: 0,
//! };
//! let context = RoutingContext {
//!     conversation, agents: vec![agent], queue: QueueStats::default(), now: 0,
//!     roster_version: 0,
//! };
//! let decision = router.route(&context).await?;
//! assert_eq!(decision.action, RoutingAction::Assign("marco".into()));
//! # Ok(()) }
//! ```

/// Declares modules that are internal to the crate: `pub(crate)` in a normal build, and
/// public but `#[doc(hidden)]` with the `test-support` feature, which the crate's own tests,
/// benchmarks and fuzzers enable. Nothing reached only through them is part of the API.
macro_rules! internal_mod {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        #[cfg(feature = "test-support")]
        #[doc(hidden)]
        $(#[$attr])*
        pub mod $name;
        #[cfg(not(feature = "test-support"))]
        $(#[$attr])*
        pub(crate) mod $name;
    )*};
}

/// Re-exports items that only the `test-support` feature makes public (see `internal_mod!`).
macro_rules! internal_use {
    ($($path:path),* $(,)?) => {$(
        #[cfg(feature = "test-support")]
        #[doc(hidden)]
        pub use $path;
    )*};
}

pub mod accounts;
pub mod answers;
pub mod api;
pub mod capabilities;
pub mod config;
pub mod connectors;
pub mod crm;
mod error;
mod host;
mod ids;
pub mod rate_limits;
pub mod routing;
pub mod runtime;
pub mod store;
mod throttle;
// The runtime crate's modules that the host uses as its own (see `runtime`).
use centralino_runtime::{calendar, conventions, platform_versions, retry};
pub mod types;
pub mod windows;

internal_mod! {
    clock;
    ingress;
    metrics;
    serve;
}

pub use error::{Error, Fault, PluginFailure, PluginId, Result};
pub use host::{
    DEFAULT_ACCOUNT_CHECK, DEFAULT_RETENTION, HOST_AUTHOR, Host, HostBuilder, MAX_FILE_NAME_CHARS,
    MAX_HISTORY_PAGE, MAX_REPLY_IMAGES, MediaLimits, ReplyImage, RoutingReport, RoutingUpdate,
    STUCK_AFTER, TaskHealth,
};
pub use ids::{ConnectorId, ConversationId, TenantId};
pub use serve::IngressLimits;
