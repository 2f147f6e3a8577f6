//! A CRM vendor's project, outside this workspace: `examples/embed-minimal` copied to a
//! temporary folder with a manifest of its own, built against the crate with its default
//! features off, then run. Inside the workspace the crate's own tests turn `test-support`
//! on for every member (cargo unifies features), so only a build out here shows that the
//! example needs nothing but the public API.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::outside::aligned_features;

/// The repository's root (host/ is one below it).
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A manifest like a CRM vendor's: its own workspace, the crate by path without default
/// features, and the profile this repository builds with, so cargo can reuse the artifacts
/// it already has for every registry crate instead of compiling wasmtime a second time.
fn manifest(repo: &Path, aligned: &str) -> String {
    let path = |p: &str| repo.join(p).display().to_string().replace('\\', "/");
    format!(
        r#"[package]
name = "crm-outside"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
anyhow = "1"
centralino = {{ path = "{host}", default-features = false }}
centralino-emulators = {{ path = "{emulators}" }}
serde_json = "1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "sync", "time", "signal", "net"] }}
{aligned}
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
opt-level = 1

# This repository's crates unoptimised, as its workspace builds its members: the emulators
# are then reused, and the library (built again here without the tests' features) compiles
# in a fraction of the time an optimised build takes.
[profile.dev.package.centralino]
opt-level = 0

[profile.dev.package.centralino-runtime]
opt-level = 0

[profile.dev.package.centralino-emulators]
opt-level = 0
"#,
        host = path("host"),
        emulators = path("tests/emulators"),
    )
}

#[test]
fn a_crm_outside_the_workspace_builds_on_the_public_api_and_answers_a_customer() {
    let repo = repository();
    let plugins = repo.join("target/plugins");
    if !plugins.join("twitter.wasm").exists() {
        eprintln!("skipped: build the plugins first (cargo xtask plugins)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::copy(
        repo.join("examples/embed-minimal/src/main.rs"),
        dir.path().join("src/main.rs"),
    )
    .unwrap();
    // The same versions as the workspace builds with, then the same features.
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let vendor = dir.path().join("Cargo.toml");
    aligned_features(&repo, &vendor, &["crm-outside"], |aligned| {
        std::fs::write(&vendor, manifest(&repo, aligned)).unwrap()
    });

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let mut test = crate::outside::cargo();
    test.arg("test");
    if crate::outside::older_than_the_host_declares() {
        // As the README says for Rust 1.95.
        test.arg("--ignore-rust-version");
    }
    let out = test
        .args(["--offline", "--manifest-path"])
        .arg(dir.path().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env("CENTRALINO_PLUGIN_DIR", &plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example did not build or its test failed outside the workspace:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("the_crm_opens_a_ticket_that_marco_answers_from_his_own_account"),
        "the example's test did not run:\n{stdout}"
    );

    // And the build saw no internals: `test-support` stayed off.
    let tree = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["tree", "--offline", "-e", "features", "-i", "centralino"])
        .arg("--manifest-path")
        .arg(dir.path().join("Cargo.toml"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.contains("centralino v"),
        "cargo tree said nothing: {tree}"
    );
    assert!(
        !tree.contains("test-support") && !tree.contains("feature \"cli\""),
        "the vendor's build enabled internal features:\n{tree}"
    );
}
