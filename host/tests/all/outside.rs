//! Building a project outside this workspace on the cache this workspace built: the
//! registry crates it shares with the workspace get the same features, so cargo reuses
//! their artifacts (wasmtime above all) instead of compiling them a second time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Every package `cargo tree` lists for `manifest` (name and version) with the union of
/// the features it is built with there.
pub fn features(manifest: &Path, workspace: bool) -> BTreeMap<(String, String), BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["tree", "--offline", "--prefix", "none", "-f", "{p}|{f}"]);
    if workspace {
        command.args(["--workspace", "-e", "normal,build,dev"]);
    } else {
        command.args(["-e", "normal,build"]);
    }
    let out = command
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // A package listed before is marked ` (*)` after its features.
        let line = line.trim_end().trim_end_matches("(*)").trim_end();
        let Some((package, enabled)) = line.split_once('|') else {
            continue;
        };
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        found
            .entry((
                name.to_string(),
                version.trim_start_matches('v').to_string(),
            ))
            .or_default()
            .extend(
                enabled
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string),
            );
    }
    found
}

/// Dependency lines that give the vendor's build the extra features the workspace's own
/// build turns on in shared crates (through its dev-dependencies and the CLI): with the
/// same features, cargo reuses those crates and everything built on them. A real vendor's
/// project has its own features and compiles once; this is only so the test does not.
pub fn aligned_features(repo: &Path, vendor: &Path, own: &[&str]) -> String {
    let workspace = features(&repo.join("Cargo.toml"), true);
    let ours = features(vendor, false);
    let mut lines = String::new();
    for ((name, version), enabled) in &ours {
        if name.starts_with("centralino") || own.contains(&name.as_str()) {
            continue;
        }
        let Some(wanted) = workspace.get(&(name.clone(), version.clone())) else {
            continue;
        };
        if wanted.is_subset(enabled) {
            continue;
        }
        let list: Vec<String> = wanted
            .iter()
            .filter(|f| f.as_str() != "default")
            .map(|f| format!("{f:?}"))
            .collect();
        lines.push_str(&format!(
            "{name} = {{ version = \"={version}\", default-features = {}, features = [{}] }}\n",
            wanted.contains("default"),
            list.join(", ")
        ));
    }
    lines
}

/// The repository's root (host/ is one below it).
fn repository() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The outer test run's settings must not leak into the author's build.
    cargo
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cargo
}

/// The shared build cache: the workspace's under nextest (its build has finished and
/// released the lock), a folder of its own under plain `cargo test`.
fn shared_target() -> std::path::PathBuf {
    let repo = repository();
    if std::env::var_os("NEXTEST_RUN_ID").is_some() {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(Into::into)
            .unwrap_or_else(|| repo.join("target"))
    } else {
        repo.join("target/outside")
    }
}

fn succeeds(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?}:\n{text}");
    text
}

/// The crates an author gets from a registry (the guest SDK, the runtime and the test
/// kit), packaged by `cargo package` as they would be published and unpacked in `dir`:
/// name → folder. Their manifests are the packaged ones, with no path into the repository.
fn packaged_crates(dir: &Path) -> BTreeMap<String, std::path::PathBuf> {
    let repo = repository();
    let packaging = dir.join("packaging");
    let package = |args: &[&str]| {
        succeeds(
            cargo()
                .args(["package", "--no-verify", "--offline", "--allow-dirty"])
                .args(args)
                .arg("--target-dir")
                .arg(&packaging)
                .current_dir(&repo),
        )
    };
    package(&["-p", "centralino-runtime", "-p", "centralino-testkit"]);
    package(&["--manifest-path", "plugins/sdk/Cargo.toml"]);
    let crates = dir.join("crates");
    std::fs::create_dir_all(&crates).unwrap();
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(packaging.join("package")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "crate") {
            continue;
        }
        succeeds(
            Command::new("tar")
                .arg("xzf")
                .arg(&path)
                .arg("-C")
                .arg(&crates),
        );
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let name = stem.rsplit_once('-').map(|(n, _)| n.to_string()).unwrap();
        let unpacked = crates.join(&stem);
        let manifest = std::fs::read_to_string(unpacked.join("Cargo.toml")).unwrap();
        let repo_text = std::fs::canonicalize(&repo).unwrap().display().to_string();
        assert!(
            !manifest.contains(&repo_text),
            "{name} reaches back: {manifest}"
        );
        assert!(
            !manifest.contains("path = \"../"),
            "{name} reaches back: {manifest}"
        );
        found.insert(name, unpacked);
    }
    for name in [
        "centralino-plugin-sdk",
        "centralino-runtime",
        "centralino-testkit",
    ] {
        assert!(
            found.contains_key(name),
            "{name} was not packaged: {found:?}"
        );
    }
    found
}

/// An author's component tests, in a crate of their own: the guide's test of the
/// scaffold's imaginary platform, on the test kit as published.
const COMPONENT_TEST: &str = r##"
use centralino_testkit::http::{Exchange, ScriptedServer};
use centralino_testkit::runtime::types::OutboundMessage;
use centralino_testkit::{ConnectorTest, Outcome, webhook};
use serde_json::json;

#[tokio::test]
async fn a_signed_delivery_becomes_a_message_and_a_reply_goes_out() {
    let platform = ScriptedServer::start(vec![
        Exchange::post("/messages").reply_json(200, json!({ "id": "out-1" })),
    ])
    .await
    .unwrap();
    let mut connector = ConnectorTest::new("acme-chat")
        .setting("api_base", platform.base_url())
        .allow(platform.authority())
        .secret("webhook_secret", "s3cret")
        .bearer("acme-token", "t0ken")
        .account("acme", Some("acme-token"))
        .instance()
        .unwrap();
    let body = br#"{"id": "m-1", "from": "mario", "text": "ciao", "time": 1795856400000}"#;
    let signature = webhook::sha256_hex("s3cret", body);
    let outcome = connector
        .handle_webhook(webhook::post(body, &[("x-signature", &signature)]))
        .await
        .unwrap();
    let message = outcome.only_message();
    assert_eq!(message.text, "ciao");
    connector
        .handle_webhook(webhook::post(body, &[("x-signature", "00")]))
        .await
        .unwrap()
        .assert_refused(403);

    let reply = OutboundMessage {
        account: "acme".into(),
        conversation_key: message.conversation_key.clone(),
        kind: message.kind,
        recipient: None,
        in_reply_to: Some(message.external_id.clone()),
        text: "ciao Mario".into(),
        attachments: Vec::new(),
        idempotency_key: "reply-1".into(),
    };
    assert_eq!(connector.send(reply).await.unwrap().external_id, "out-1");
    let sent = &platform.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(sent.json()["to"], "mario");
}
"##;

/// Slow (it builds a guest and a test crate on the test kit): a third-party author with
/// no checkout of the repository. The SDK, the runtime and the test kit come as packaged;
/// the connector is scaffolded, built for wasm, tested with the kit in a crate of the
/// author's own, and checked and loaded by the host binary.
#[test]
fn an_author_outside_the_repository_scaffolds_builds_tests_with_the_kit_and_loads_a_connector() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        eprintln!("skipped: rustup's wasm32-wasip2 target is not installed");
        return;
    }
    let repo = repository();
    let outside = tempfile::tempdir().unwrap();
    let crates = packaged_crates(outside.path());

    // The connector, scaffolded on the packaged SDK and built as a component.
    let sdk = &crates["centralino-plugin-sdk"];
    succeeds(
        Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["plugin", "new", "--kind", "channel", "acme-chat", "--dir"])
            .arg(outside.path())
            .arg("--sdk")
            .arg(sdk)
            .current_dir(outside.path()),
    );
    let connector = outside.path().join("acme-chat");
    std::fs::copy(
        repo.join("plugins/Cargo.lock"),
        connector.join("Cargo.lock"),
    )
    .unwrap();
    succeeds(
        cargo()
            .args([
                "build",
                "--offline",
                "--release",
                "--target",
                "wasm32-wasip2",
            ])
            .env("CARGO_TARGET_DIR", shared_target())
            .current_dir(&connector),
    );
    let plugins = outside.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        shared_target().join("wasm32-wasip2/release/acme_chat.wasm"),
        plugins.join("acme-chat.wasm"),
    )
    .unwrap();

    // The author's component tests, on the test kit as published.
    let tests = outside.path().join("acme-chat-tests");
    std::fs::create_dir_all(tests.join("tests")).unwrap();
    std::fs::write(tests.join("tests/component.rs"), COMPONENT_TEST).unwrap();
    std::fs::copy(repo.join("Cargo.lock"), tests.join("Cargo.lock")).unwrap();
    let path = |name: &str| crates[name].display().to_string().replace('\\', "/");
    let manifest = |aligned: &str| {
        format!(
            r#"[package]
name = "acme-chat-tests"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
{aligned}
[dev-dependencies]
centralino-testkit = "0.1"
serde_json = "1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "sync", "time", "signal", "net"] }}

# Not on a registry yet: the packaged crates, unpacked.
[patch.crates-io]
centralino-runtime = {{ path = "{runtime}" }}
centralino-testkit = {{ path = "{testkit}" }}

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
opt-level = 1
"#,
            runtime = path("centralino-runtime"),
            testkit = path("centralino-testkit"),
        )
    };
    let cargo_toml = tests.join("Cargo.toml");
    std::fs::write(&cargo_toml, manifest("")).unwrap();
    std::fs::create_dir_all(tests.join("src")).unwrap();
    std::fs::write(
        tests.join("src/lib.rs"),
        "//! Component tests of acme-chat.\n",
    )
    .unwrap();
    let aligned = aligned_features(&repo, &cargo_toml, &["acme-chat-tests"]);
    std::fs::write(&cargo_toml, manifest(&aligned)).unwrap();
    let tree = succeeds(
        cargo()
            .args(["tree", "--offline", "-e", "normal,dev", "--prefix", "none"])
            .current_dir(&tests),
    );
    for absent in ["centralino v", "sqlx", "axum"] {
        assert!(
            !tree.contains(absent),
            "`{absent}` in the author's test build:\n{tree}"
        );
    }
    let tested = succeeds(
        cargo()
            .args(["test", "--offline"])
            .env("CARGO_TARGET_DIR", shared_target())
            .env("CENTRALINO_PLUGIN_DIR", &plugins)
            .current_dir(&tests),
    );
    assert!(
        tested.contains("a_signed_delivery_becomes_a_message_and_a_reply_goes_out ... ok"),
        "{tested}"
    );

    // The admin's side: the host binary checks the config and loads the plugin.
    std::fs::write(
        outside.path().join("centralino.toml"),
        r#"[host]
plugin_dir = "plugins"

[[connectors]]
name = "acme-chat"
plugin = "acme-chat"
allowed_hosts = ["api.example.com"]
secrets = { webhook_secret = "env:ACME_WEBHOOK_SECRET" }

[[connectors.accounts]]
id = "acme"
credential = "env:ACME_TOKEN"
"#,
    )
    .unwrap();
    let checked = succeeds(
        Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["check", "--config", "centralino.toml", "--load"])
            .env("ACME_WEBHOOK_SECRET", "s3cret")
            .env("ACME_TOKEN", "t0ken")
            .current_dir(outside.path()),
    );
    assert!(checked.contains("acme-chat"), "{checked}");
}
