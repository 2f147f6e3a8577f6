//! # centralino
//!
//! An embeddable plugin host for social customer care. Customers write to a company on
//! Twitter/X, Facebook and newer channels; channel **connectors** and **routing policies**
//! are WebAssembly components behind a stable, versioned WIT contract
//! (`centralino:plugin@0.1.0`, in `wit/`), so a CRM vendor ships the host once and admins
//! add, swap or upgrade plugins without rebuilding anything.
//!
//! This crate is what a CRM links in. Its parts:
//!
//! - [`runtime`]: the wasmtime engine, component inspection and caching, plugin instances
//!   with memory caps and per-call deadlines.
//! - [`capabilities`]: the host side of the contract's imports (`log`, `clock`, `http`,
//!   `signing`), all denied unless granted.
//! - [`types`]: the host's own types for messages, operators and routing decisions.
//! - [`routing`]: operators, conversations, the policy chain, the queue, shadow and replay.
//! - [`api`]: the HTTP APIs of `centralino run`: the REST API for CRMs in any language
//!   (per-tenant bearer tokens, OpenAPI document) and the admin API.
//! - [`metrics`]: Prometheus metrics, counted where things happen.
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
//! };
//! let decision = router.route(&context).await?;
//! assert_eq!(decision.action, RoutingAction::Assign("marco".into()));
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod api;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod crm;
mod error;
mod host;
pub mod metrics;
mod retry;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod store;
mod throttle;
pub mod types;
pub mod windows;

pub use error::{Error, Fault, PluginFailure, PluginId, Result};
pub use host::{
    DEFAULT_ACCOUNT_CHECK, DEFAULT_RETENTION, HOST_AUTHOR, Host, HostBuilder, RoutingReport,
    RoutingUpdate, STUCK_AFTER, TaskHealth,
};
