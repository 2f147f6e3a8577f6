//! `centralino plugin new`: the crates it writes inside the repository's plugins workspace
//! and as standalone workspaces, their clippy cleanliness outside the repository, and the
//! polling example. (The guide itself is followed, command by command, by `outside.rs`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use centralino_testkit::ConnectorTest;
use centralino_testkit::http::{Exchange, ScriptedServer};
use serde_json::json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn centralino(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_centralino"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A scratch repository whose `plugins/Cargo.toml` is the real one with no members, its
/// SDK dependency pointing at the real SDK.
fn scratch_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let manifest = std::fs::read_to_string(root().join("plugins/Cargo.toml")).unwrap();
    let start = manifest.find("members = [").unwrap();
    let end = start + manifest[start..].find(']').unwrap() + 1;
    let sdk = std::fs::canonicalize(root().join("plugins/sdk")).unwrap();
    let manifest = format!("{}members = [\n]{}", &manifest[..start], &manifest[end..]).replace(
        "centralino-plugin-sdk = { path = \"sdk\" }",
        &format!("centralino-plugin-sdk = {{ path = {:?} }}", sdk),
    );
    std::fs::write(plugins.join("Cargo.toml"), manifest).unwrap();
    // The same dependency versions as the real workspace, so the build reuses its cache.
    std::fs::copy(
        root().join("plugins/Cargo.lock"),
        plugins.join("Cargo.lock"),
    )
    .unwrap();
    dir
}

#[test]
fn plugin_new_refuses_bad_names_and_existing_folders() {
    let repo = scratch_repository();
    for name in ["Acme", "acme_chat", "-acme", "acme-", "9lives", "sdk"] {
        let out = centralino(
            repo.path(),
            &["plugin", "new", "--kind", "channel", "--", name],
        );
        assert!(!out.status.success(), "{name} was accepted");
        assert!(text(&out).contains(&format!("`{name}`")), "{}", text(&out));
    }
    let first = centralino(repo.path(), &["plugin", "new", "--kind", "router", "fair"]);
    assert!(first.status.success(), "{}", text(&first));
    let again = centralino(repo.path(), &["plugin", "new", "--kind", "router", "fair"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
}

#[test]
fn plugin_new_adds_the_crate_to_the_plugins_workspace_or_makes_it_standalone() {
    let repo = scratch_repository();
    let out = centralino(
        repo.path(),
        &["plugin", "new", "--kind", "router", "fair-share"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let workspace = std::fs::read_to_string(repo.path().join("plugins/Cargo.toml")).unwrap();
    assert!(
        workspace.contains("members = [\n    \"fair-share\",\n]"),
        "{workspace}"
    );
    let manifest =
        std::fs::read_to_string(repo.path().join("plugins/fair-share/Cargo.toml")).unwrap();
    assert!(manifest.contains("centralino-plugin-sdk.workspace = true"));
    let source =
        std::fs::read_to_string(repo.path().join("plugins/fair-share/src/lib.rs")).unwrap();
    assert!(source.contains("export_router!(FairShare)"), "{source}");
    assert!(text(&out).contains("cargo xtask plugins"), "{}", text(&out));

    // Elsewhere: a workspace of its own, on the SDK by version (the 0.2 line, the SDK's
    // own), or by path when asked.
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().to_str().unwrap();
    let out = centralino(
        repo.path(),
        &["plugin", "new", "--kind", "channel", "acme", "--dir", dir],
    );
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(elsewhere.path().join("acme/Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    assert!(
        manifest.contains("\ncentralino-plugin-sdk = \"0.3\"\n"),
        "{manifest}"
    );
    assert!(!manifest.contains("path ="), "{manifest}");
    let sdk = std::fs::read_to_string(root().join("plugins/sdk/Cargo.toml")).unwrap();
    assert!(
        sdk.contains("\nversion = \"0.3."),
        "the SDK left the 0.3 line: {sdk}"
    );
    let sdk_dir = root().join("plugins/sdk");
    let out = centralino(
        repo.path(),
        &[
            "plugin",
            "new",
            "--kind",
            "channel",
            "acme-local",
            "--dir",
            dir,
            "--sdk",
            sdk_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(elsewhere.path().join("acme-local/Cargo.toml")).unwrap();
    assert!(manifest.contains("plugins/sdk\" }"), "{manifest}");
}

fn cargo() -> Command {
    let mut cargo = crate::outside::cargo();
    // Share the project's build cache. Under nextest the outer build has finished and
    // released it; under plain `cargo test` a separate folder avoids waiting on its lock.
    let target = if std::env::var_os("NEXTEST_RUN_ID").is_some() {
        root().join("target")
    } else {
        root().join("target/scaffold")
    };
    cargo.env("CARGO_TARGET_DIR", target);
    cargo
}

fn target_dir() -> PathBuf {
    if std::env::var_os("NEXTEST_RUN_ID").is_some() {
        root().join("target")
    } else {
        root().join("target/scaffold")
    }
}

fn succeeds(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", text(&out));
}

#[test]
fn plugin_new_refuses_poll_for_a_routing_policy() {
    let repo = scratch_repository();
    let out = centralino(
        repo.path(),
        &["plugin", "new", "--kind", "router", "fair", "--poll"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("--kind channel"), "{}", text(&out));
    assert!(!repo.path().join("plugins/fair").exists());
}

/// Copies the guest SDK out of the repository, as its manifest's `include` list names it
/// (what `cargo package` would ship): nothing in the copy may reach back into the repository.
fn sdk_copy(dir: &Path) -> PathBuf {
    let sdk = root().join("plugins/sdk");
    let copy = dir.join("centralino-plugin-sdk");
    for folder in ["src", "wit"] {
        copy_tree(&sdk.join(folder), &copy.join(folder));
    }
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains(".workspace"), "{manifest}");
    assert!(!manifest.contains("path ="), "{manifest}");
    std::fs::write(copy.join("Cargo.toml"), manifest).unwrap();
    copy
}

/// Copies the folder `from` into `to` with its subfolders (`src/**/*.rs` in the SDK's
/// `include` list takes modules in folders too).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

/// A standalone crate (`--dir` outside any workspace) made by `plugin new` with `args` on
/// the SDK at `sdk`, its lock file seeded from the plugins workspace's so that it builds
/// offline from the cache.
fn standalone(dir: &Path, sdk: &Path, args: &[&str]) -> PathBuf {
    let name = args.last().unwrap();
    let mut all = vec!["plugin", "new"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--dir",
        dir.to_str().unwrap(),
        "--sdk",
        sdk.to_str().unwrap(),
    ]);
    let out = centralino(dir, &all);
    assert!(out.status.success(), "{}", text(&out));
    let crate_dir = dir.join(name);
    std::fs::copy(
        root().join("plugins/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    crate_dir
}

/// Slow (it builds a guest): on a copy of the SDK taken out of the repository, the
/// untouched scaffolds pass `cargo clippy --all-targets` (the repository's `clippy.toml`
/// does not apply there) and their tests; and a polling connector from `--poll`, built as
/// a component, polls as its comments say.
#[tokio::test]
async fn scaffolded_crates_pass_clippy_outside_the_repository_and_the_poll_example_polls() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        eprintln!("skipped: rustup's wasm32-wasip2 target is not installed");
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let sdk = sdk_copy(outside.path());
    // Ready to publish: `cargo package` builds the packaged SDK from its own files.
    std::fs::copy(root().join("plugins/Cargo.lock"), sdk.join("Cargo.lock")).unwrap();
    succeeds(
        cargo()
            .args(["package", "--offline", "--allow-dirty"])
            .current_dir(&sdk),
    );
    let crates = [
        standalone(outside.path(), &sdk, &["--kind", "channel", "acme-hooks"]),
        standalone(
            outside.path(),
            &sdk,
            &["--kind", "channel", "--poll", "acme-poll"],
        ),
        standalone(outside.path(), &sdk, &["--kind", "router", "acme-route"]),
    ];
    let repository = std::fs::canonicalize(root()).unwrap();
    for crate_dir in &crates {
        assert!(!crate_dir.join("clippy.toml").exists());
        let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
        assert!(
            !manifest.contains(repository.to_str().unwrap()),
            "{manifest}"
        );
        succeeds(
            cargo()
                .args([
                    "clippy",
                    "--offline",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(crate_dir),
        );
        succeeds(cargo().args(["test", "--offline"]).current_dir(crate_dir));
    }
    let source = std::fs::read_to_string(crates[1].join("src/lib.rs")).unwrap();
    assert!(source.contains("**The first poll**"), "{source}");
    assert!(source.contains("export_connector!(AcmePoll)"), "{source}");

    succeeds(
        cargo()
            .args([
                "build",
                "--offline",
                "--release",
                "--target",
                "wasm32-wasip2",
            ])
            .current_dir(&crates[1]),
    );
    let built = outside.path().join("acme-poll.wasm");
    std::fs::copy(
        target_dir().join("wasm32-wasip2/release/acme_poll.wasm"),
        &built,
    )
    .unwrap();

    let page = |ids: &[&str], pause: Option<u64>| {
        let messages: Vec<_> = ids
            .iter()
            .map(|id| json!({ "id": id, "from": "mario", "text": format!("text of {id}"), "time": 1_795_856_400_000u64 }))
            .collect();
        match pause {
            Some(seconds) => json!({ "messages": messages, "poll_again_after": seconds }),
            None => json!({ "messages": messages }),
        }
    };
    let platform = ScriptedServer::start(vec![
        // First poll: the most recent page, only to learn where "now" is.
        Exchange::get("/accounts/acme/messages").reply_json(200, page(&["m-1", "m-2"], None)),
        // Then what came after it, with a pause asked for.
        Exchange::get("/accounts/acme/messages").reply_json(200, page(&["m-3"], Some(30))),
        // Nothing new: the cursor stays where it was.
        Exchange::get("/accounts/acme/messages").reply_json(200, page(&[], None)),
    ])
    .await
    .unwrap();
    let mut polling = ConnectorTest::from_path(&built)
        .setting("api_base", platform.base_url())
        .allow(platform.authority())
        .bearer("acme-token", "t0ken")
        .account("acme", Some("acme-token"))
        .instance()
        .unwrap();
    let first = polling.poll("acme", None).await.unwrap();
    assert!(first.messages.is_empty(), "{first:?}");
    assert_eq!(first.next_poll_after_ms, None);
    let cursor = first.cursor.unwrap();
    let second = polling.poll("acme", Some(&cursor)).await.unwrap();
    let texts: Vec<&str> = second.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["text of m-3"]);
    assert_eq!(second.messages[0].conversation_key, "acme-poll:mario");
    assert!(second.next_poll_after_ms.is_some(), "{second:?}");
    let cursor = second.cursor.unwrap();
    let third = polling.poll("acme", Some(&cursor)).await.unwrap();
    assert!(third.messages.is_empty());
    assert_eq!(third.cursor.as_deref(), Some(cursor.as_str()));

    let asked: Vec<String> = platform
        .requests()
        .iter()
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        asked,
        ["limit=50", "limit=50&after=m-2", "limit=50&after=m-3"]
    );
    for request in platform.requests() {
        assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    }

    // With `backfill`, the first poll keeps the most recent page.
    let platform_again = ScriptedServer::start(vec![
        Exchange::get("/accounts/acme/messages").reply_json(200, page(&["m-1", "m-2"], None)),
    ])
    .await
    .unwrap();
    let mut backfilling = ConnectorTest::from_path(&built)
        .setting("api_base", platform_again.base_url())
        .setting("backfill", "true")
        .allow(platform_again.authority())
        .bearer("acme-token", "t0ken")
        .account("acme", Some("acme-token"))
        .instance()
        .unwrap();
    let first = backfilling.poll("acme", None).await.unwrap();
    let ids: Vec<&str> = first
        .messages
        .iter()
        .map(|m| m.external_id.as_str())
        .collect();
    assert_eq!(ids, ["m-1", "m-2"]);
}
