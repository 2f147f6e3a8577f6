//! Loopback emulators of the platforms centralino's connectors talk to, for tests and the
//! demo: the X API v2 ([`XApi`]) and the Graph/Messenger Send API ([`GraphApi`]).
//!
//! Each emulator is a real HTTP server on `127.0.0.1` with an ephemeral port. It serves the
//! endpoints the connectors use with the platforms' wire formats (status codes, JSON shapes,
//! error bodies, rate-limit headers), checks credentials the way the platform does, records
//! every request for assertions, and can inject failures: a 429 with a reset time, a 5xx,
//! an expired token, a slow answer. [`webhooks`] builds correctly signed deliveries.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use centralino_emulators::{XApi, x::NewTweet};
//! let x = XApi::start().await?;
//! x.add_user("1001", "TIM_Official", "TIM", "token-tim");
//! x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");
//! x.post_tweet(NewTweet::new("42", "@TIM_Official il mio modem non va"));
//! // point a connector at x.base_url() ...
//! # Ok(()) }
//! ```

pub mod account_activity;
pub mod graph;
pub mod media;
pub mod oauth;
mod server;
pub mod telegram;
pub mod webhooks;
pub mod x;

pub use graph::GraphApi;
pub use server::{Fault, Recorded};
pub use x::XApi;
