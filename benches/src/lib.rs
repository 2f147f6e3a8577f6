//! Benchmarks of centralino, measured side by side in one process run so that every ratio
//! holds on a noisy machine.
//!
//! Run the whole report with `cargo xtask bench` (it builds the plugins first), or
//! `cargo run --release -p centralino-bench -- --help` for the options. The criterion
//! suites (`cargo bench -p centralino-bench`) cover the two micro-benchmarks, decision cost
//! and instantiation, with criterion's statistics.
//!
//! | module | figure |
//! | --- | --- |
//! | [`decision`] | `route()` through the wasm policies vs the same code compiled natively vs an HTTP routing service on loopback |
//! | [`ingest`] | signed Facebook webhook batches through the real [`Host`](centralino::Host) into SQLite and a counting CRM |
//! | [`ingest_limit`] | the store's own limit: the same rows by a plain batched insert, same connection and pragmas |
//! | [`density`] | connector instances of one compiled component: time per instance, resident memory per idle instance |
//! | [`swap`] | what switching a connector to a new plugin version costs, under traffic |
//! | [`cold`] | a host with three plugins starting in a fresh process, with and without the compiled-artifact cache |
//! | [`console`] | the ingress load over HTTP with and without the console's live overview streaming |
//! | [`search`] | one page of a search over 100,000 stored messages, on SQLite (FTS5) and PostgreSQL (GIN) |

// Benchmarks fail loudly with the reason; there is no caller to hand an error to.
#![allow(clippy::expect_used)]

pub mod cold;
pub mod console;
pub mod decision;
pub mod density;
pub mod fixtures;
pub mod floor;
pub mod http_peer;
pub mod ingest;
pub mod ingest_limit;
pub mod machine;
pub mod native;
pub mod search;
pub mod stats;
pub mod swap;

use std::path::{Path, PathBuf};

/// Where the built plugins are: `$CENTRALINO_PLUGIN_DIR`, else `target/plugins` of this
/// workspace.
pub fn default_plugin_dir() -> PathBuf {
    std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("plugins")
        })
}

/// The component `name` in `dir`, or an error naming the command that builds it.
pub fn component(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.wasm"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the plugins with `cargo xtask plugins` (or run `cargo xtask bench`)",
        path.display()
    );
    Ok(path)
}

/// A fresh scratch directory under the system temp dir (on this machine's disk, so SQLite
/// commits there are durable: `/tmp` is not a tmpfs here; the report says where it was).
pub fn scratch_dir(label: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "centralino-bench-{label}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
