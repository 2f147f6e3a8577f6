//! Routing: operators, conversations, the policy chain, the queue, shadow and replay.
//!
//! ```text
//! customer message ──► conversations (join the open one, or open one per thread)
//!                            │ new or waiting
//!                            ▼
//!          policy chain: stage 1 ─► stage 2 ─► … (wasm plugins: assign | narrow | enqueue | pass)
//!                            │                         └─► shadow chain: compared, never acted on
//!              ┌─────────────┴─────────────┐
//!           assigned                    waiting (priority, then age) + honest wait estimate
//!              │                             ▲ drained when a seat frees or an operator arrives
//!   reply (assignee only, own account       │
//!   where the channel allows) · offer timeout re-routes · resolve frees the seat
//! ```
//!
//! Inside: operators, working hours and the roster with presence and load (`agents`);
//! threading and conversation state (`conversations`); the admin's chain of policy plugins
//! (`chain`); the waiting queue and the wait estimate (`queue`); who may reply, from which
//! account (`ownership`); a candidate chain compared on live traffic (`shadow`); the
//! [`RoutingEngine`] that ties them together (`engine`); recorded traffic through a chain
//! on simulated time ([`replay()`]); the injectable [`Clock`]. An embedder configures an
//! engine and hands it to [`HostBuilder::routing`](crate::HostBuilder::routing); the host
//! drives it, keeps it in line with the store, and answers for it through
//! [`Host`](crate::Host)'s methods (`reply`, `transfer`, `resolve`, `set_presence`,
//! `routing_stats`).
//!
//! ## Example
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use centralino::Host;
//! use centralino::routing::{ChainSpec, Operator, PolicyChain, RoutingEngine};
//! use centralino::runtime::{PluginLimits, Runtime};
//! use centralino::types::Presence;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new()?;
//! let spec: ChainSpec = "priority > sticky > skills > least-loaded".parse()?;
//! let chain =
//!     PolicyChain::load(&runtime, &spec, Path::new("target/plugins"), &PluginLimits::default())
//!         .await?;
//! let marco = Operator::new("marco", 3).skills(["tim"]).account("twitter", "TIM_Marco");
//! let engine = RoutingEngine::builder(chain)
//!     .operator(marco, Presence::Online)
//!     .offer_timeout(Duration::from_secs(5 * 60))
//!     .build();
//! let host = Host::builder().runtime(runtime).routing(engine).build().await?;
//! # Ok(()) }
//! ```

internal_mod! {
    agents;
    chain;
    conversations;
    engine;
    ownership;
    queue;
    replay;
    shadow;
}

mod narrow;

pub use crate::clock::{Clock, SystemClock};
pub use crate::error::RoutingError;
pub use agents::{ChannelAccount, Operator, TimeSpan, WorkingHours};
pub use chain::{ChainSpec, PolicyChain, StageSpec};
pub use engine::{EngineBuilder, RosterChange, RoutingEngine, RoutingStats};
pub use ownership::ReplyRules;
pub use replay::{ReplayEvents, ReplayOptions, ReplayReport, parse_events, replay};
pub use shadow::{Disagreement, ShadowStats};

internal_use!(
    crate::clock::ManualClock,
    agents::OperatorState,
    agents::Roster,
    chain::ChainDecision,
    chain::Outcome,
    chain::Step,
    chain::StepOutcome,
    conversations::Conversation,
    conversations::ConversationNumber,
    conversations::Conversations,
    conversations::CustomerHistory,
    conversations::CustomerMessage,
    conversations::Status,
    conversations::ThreadKey,
    engine::Arrival,
    engine::Notice,
    engine::StoredState,
    ownership::ReplyRoute,
    queue::HandlingTimes,
    queue::WaitEstimate,
    queue::WaitQueue,
    shadow::Shadow,
);
#[cfg(not(feature = "test-support"))]
pub(crate) use {
    chain::Outcome,
    conversations::{Conversation, ConversationNumber, CustomerMessage, Status, ThreadKey},
    engine::{Notice, StoredState},
    queue::WaitEstimate,
};
