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
//! - [`agents`]: operators, working hours, the roster with presence and load.
//! - [`conversations`]: threading and conversation state.
//! - [`chain`]: the admin's chain of policy plugins and its semantics.
//! - [`queue`]: the waiting queue and the wait estimate.
//! - [`ownership`]: who may reply, from which account.
//! - [`shadow`]: a candidate chain compared on live traffic.
//! - [`engine`]: [`RoutingEngine`], which ties them together.
//! - [`replay`](mod@replay): recorded traffic through a chain on simulated time.
//! - [`clock`]: the injectable clock.
//!
//! Everything is in memory for now, in small serialisable types a durable store can keep.
//!
//! ## Example
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use centralino::routing::{
//!     ChainSpec, ChannelAccount, CustomerMessage, Operator, PolicyChain, RoutingEngine,
//! };
//! use centralino::runtime::{PluginLimits, Runtime};
//! use centralino::types::{MessageKind, Presence};
//!
//! # async fn example() -> Result<(), centralino::routing::RoutingError> {
//! let runtime = Runtime::new()?;
//! let spec: ChainSpec = "priority > sticky > skills > least-loaded".parse()?;
//! let chain =
//!     PolicyChain::load(&runtime, &spec, Path::new("target/plugins"), &PluginLimits::default())
//!         .await?;
//! let mut engine = RoutingEngine::builder(chain)
//!     .offer_timeout(Duration::from_secs(5 * 60))
//!     .build();
//! let marco = Operator {
//!     skills: vec!["tim".into()],
//!     accounts: vec![ChannelAccount { channel: "twitter".into(), id: "TIM_Marco".into() }],
//!     ..Operator::new("marco", 3)
//! };
//! engine.add_operator(marco, Presence::Online).await;
//! let arrival = engine
//!     .receive(CustomerMessage {
//!         channel: "twitter".into(),
//!         account: "TIM_Official".into(),
//!         conversation_key: "1890000000000000001".into(),
//!         customer: "42".into(),
//!         brand: Some("tim".into()),
//!         language: Some("it".into()),
//!         kind: MessageKind::PublicPost,
//!         text: "@TIM_Official il mio modem non va".into(),
//!     })
//!     .await;
//! // Marco answers from @TIM_Marco.
//! let route = engine.record_reply(arrival.conversation, "marco")?;
//! assert_eq!(route.account, "TIM_Marco");
//! # Ok(()) }
//! ```

pub mod agents;
mod calendar;
pub mod chain;
pub mod clock;
pub mod conversations;
pub mod engine;
mod error;
pub mod ownership;
pub mod queue;
pub mod replay;
pub mod shadow;

pub use agents::{ChannelAccount, Operator, OperatorState, Roster, TimeSpan, WorkingHours};
pub use chain::{ChainDecision, ChainSpec, Outcome, PolicyChain, StageSpec, Step, StepOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use conversations::{
    Conversation, ConversationId, Conversations, CustomerHistory, CustomerMessage, Status,
    ThreadKey,
};
pub use engine::{
    Arrival, EngineBuilder, EngineStats, Notice, RosterChange, RoutingEngine, StoredState,
};
pub use error::RoutingError;
pub use ownership::{ReplyRoute, ReplyRules};
pub use queue::{HandlingTimes, WaitEstimate, WaitQueue};
pub use replay::{ReplayEvents, ReplayOptions, ReplayReport, parse_events, replay};
pub use shadow::{Disagreement, Shadow, ShadowStats};
