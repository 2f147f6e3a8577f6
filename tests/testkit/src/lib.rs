//! Test kit for centralino channel connectors: load a built component, feed it webhook
//! deliveries and scripted HTTP exchanges, and assert the normalised messages and the
//! requests it made, all on loopback.
//!
//! ```no_run
//! use centralino_testkit::{ConnectorTest, Outcome, http::{Exchange, ScriptedServer}, webhook};
//! use serde_json::json;
//!
//! # async fn example() -> anyhow::Result<()> {
//! // A platform that answers one request, as scripted.
//! let platform = ScriptedServer::start(vec![
//!     Exchange::post("/v1/send").reply_json(200, json!({ "id": "m-1" })),
//! ]).await?;
//! let mut connector = ConnectorTest::new("hello")          // target/plugins/hello.wasm
//!     .setting("api_base", platform.base_url())
//!     .allow(platform.authority())
//!     .bearer("hello-token", "t0ken")
//!     .account("acme", Some("hello-token"))
//!     .instance()?;
//!
//! // A webhook delivery becomes one message…
//! let outcome = connector.handle_webhook(webhook::post(b"mario: ciao", &[])).await?;
//! assert_eq!(outcome.only_message().text, "ciao");
//! // …and nothing reached the network but the scripted platform.
//! assert!(platform.requests().is_empty());
//! # Ok(()) }
//! ```
//!
//! Components come from `target/plugins/` (built by `cargo xtask plugins`), or from the
//! folder in `CENTRALINO_PLUGIN_DIR`, or from any path ([`ConnectorTest::from_path`]).
//! Tests that want a whole platform rather than a script use the platform emulators of
//! the repository (`tests/emulators`: X, Graph, Telegram) beside the kit.
//!
//! The kit needs the runtime crate alone (`centralino-runtime`: the host's engine, limits
//! and capabilities), not the host's store, SQL or servers.

// A test kit's job is to fail the test that uses it, loudly and with the reason.
#![allow(clippy::panic)]

mod connector;
pub mod http;
mod outcome;
pub mod webhook;

use std::path::PathBuf;

pub use centralino_runtime as runtime;
pub use connector::ConnectorTest;
pub use outcome::{Outcome, failure};

/// Path of the built component `name` (`target/plugins/<name>.wasm`, or
/// `$CENTRALINO_PLUGIN_DIR/<name>.wasm`). Panics with the command to run when it is
/// missing.
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    if !path.exists() {
        panic!(
            "{} is missing: run `cargo xtask plugins` first (or `cargo xtask test`)",
            path.display()
        );
    }
    path
}
