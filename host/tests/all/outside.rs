//! Building a project outside this workspace on the cache this workspace built: the
//! registry crates it shares with the workspace get the same features, so cargo reuses
//! their artifacts (wasmtime above all) instead of compiling them a second time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every package `cargo tree` lists for `manifest` (name and version) with the union of
/// the features it is built with there.
pub fn features(manifest: &Path, workspace: bool) -> BTreeMap<(String, String), BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // Dev-dependencies too: an author's test crate has nothing else (the test kit is one).
    command.args(["tree", "--offline", "--prefix", "none", "-f", "{p}|{f}"]);
    command.args(["-e", "normal,build,dev"]);
    if workspace {
        command.arg("--workspace");
    }
    // From the manifest's folder, so its cargo config (a `[patch]`, say) applies.
    let out = command
        .arg("--manifest-path")
        .arg(manifest)
        .current_dir(manifest.parent().unwrap_or(Path::new(".")))
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
/// `write` puts the lines found so far into the vendor's manifest: a feature turned on
/// can bring in a crate of its own (crypto-common's `rand_core`), which then needs its
/// line too, so the lines are looked for again until none is missing.
pub fn aligned_features(repo: &Path, vendor: &Path, own: &[&str], write: impl Fn(&str)) -> String {
    let workspace = features(&repo.join("Cargo.toml"), true);
    let mut lines: BTreeMap<(String, String), String> = BTreeMap::new();
    for _ in 0..4 {
        let text: String = lines.values().map(String::as_str).collect();
        write(&text);
        let mut added = false;
        for ((name, version), enabled) in features(vendor, false) {
            if name.starts_with("centralino") || own.contains(&name.as_str()) {
                continue;
            }
            let Some(wanted) = workspace.get(&(name.clone(), version.clone())) else {
                continue;
            };
            if wanted.is_subset(&enabled) {
                continue;
            }
            let list: Vec<String> = wanted
                .iter()
                .filter(|f| f.as_str() != "default")
                .map(|f| format!("{f:?}"))
                .collect();
            let line = format!(
                "{name} = {{ version = \"={version}\", default-features = {}, features = [{}] }}\n",
                wanted.contains("default"),
                list.join(", ")
            );
            lines.insert((name, version), line);
            added = true;
        }
        if !added {
            return text;
        }
    }
    panic!("the vendor's features did not settle: {lines:#?}");
}

/// The repository's root (host/ is one below it).
fn repository() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether this machine's `rustc` is older than the Rust the host declares (wasmtime 49's
/// 1.96): it builds the host all the same, once cargo is told `--ignore-rust-version`, as
/// the README and the plugin guide say.
pub fn older_than_the_host_declares() -> bool {
    // Asked once per test process: the guide runner asks for every block it runs.
    static OLDER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OLDER.get_or_init(|| {
        let major_minor = |version: &str| {
            let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        };
        let out = Command::new("rustc").arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text.split_whitespace().nth(1).and_then(major_minor);
        let declared = major_minor(env!("CARGO_PKG_RUST_VERSION"));
        matches!((found, declared), (Some(found), Some(declared)) if found < declared)
    })
}

/// Cargo for a build outside the workspace, without the outer test run's settings: its
/// flags, and what cargo told this test about its own package (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`...), which build scripts such as ring's watch: leaked into the
/// build, they would make it compile those crates again instead of reusing the
/// workspace's.
pub fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let own = name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if own {
            cargo.env_remove(&key);
        }
    }
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

/// The guide's fenced blocks of one kind (`sh`, `toml`, `rust`) in the Rust route, in order.
fn guide_blocks(guide: &str, kind: &str) -> Vec<String> {
    let route = &guide[..guide
        .find("\n## Writing a connector in ")
        .unwrap_or(guide.len())];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in route.lines() {
        match (&mut current, line) {
            (None, open) if open == format!("```{kind}") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The one guide block of `kind` containing `marker`.
fn guide_block(guide: &str, kind: &str, marker: &str) -> String {
    let found: Vec<String> = guide_blocks(guide, kind)
        .into_iter()
        .filter(|b| b.contains(marker))
        .collect();
    assert_eq!(found.len(), 1, "one `{kind}` block with `{marker}`");
    found.into_iter().next().unwrap()
}

/// Runs one of the guide's `sh` blocks as the author would type it, in `cwd`, with the
/// `centralino` binary on the `PATH`; returns what it printed and the folder it ended in.
fn run_block(block: &str, cwd: &Path, env: &[(&str, std::ffi::OsString)]) -> (String, PathBuf) {
    let bin = Path::new(env!("CARGO_BIN_EXE_centralino"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    // On a Rust older than wasmtime declares, the author does what the guide says there:
    // cargo's compiling commands get `--ignore-rust-version`.
    let older = if older_than_the_host_declares() {
        "cargo() { case \"$1\" in build|test|run|check) sub=$1; shift; \
         command cargo \"$sub\" --ignore-rust-version \"$@\";; *) command cargo \"$@\";; esac; }\n"
    } else {
        ""
    };
    let script = format!("set -e\n{older}{block}pwd > \"$GUIDE_CWD_FILE\"\n");
    let cwd_file = tempfile::NamedTempFile::new().unwrap();
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(&script).current_dir(cwd).env_clear();
    // The author's shell: this environment without the outer test run's cargo settings.
    for (key, value) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let outer = (name.starts_with("CARGO") && name != "CARGO_HOME")
            || name.starts_with("NEXTEST")
            || name.starts_with("RUST") && name != "RUSTUP_HOME";
        if !outer {
            shell.env(&key, value);
        }
    }
    shell
        .env("PATH", path)
        .env("GUIDE_CWD_FILE", cwd_file.path());
    for (key, value) in env {
        shell.env(key, value);
    }
    let text = succeeds(&mut shell);
    let ended = std::fs::read_to_string(cwd_file.path()).unwrap();
    (text, PathBuf::from(ended.trim()))
}

/// Slow (it builds a guest and a test crate on the test kit): the guide,
/// docs/writing-a-channel-plugin.md, followed by a third-party author with no checkout of
/// the repository. Every `sh` block of its Rust route runs as written, in order; the files
/// the guide tells the author to write (the test crate's dependencies, its component test,
/// the admin's config) are taken from the guide's own blocks. The SDK, the runtime and the
/// test kit are the packaged crates, standing in for the registry (`[patch.crates-io]` in
/// the author's cargo config); builds share the workspace's cache.
#[test]
fn an_author_outside_the_repository_follows_the_guide_from_nothing_to_a_running_connector() {
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
    let guide = std::fs::read_to_string(repo.join("docs/writing-a-channel-plugin.md")).unwrap();
    let blocks = guide_blocks(&guide, "sh");
    assert_eq!(blocks.len(), 7, "the guide's steps changed: {blocks:#?}");

    let outside = tempfile::tempdir().unwrap();
    let home = outside.path().to_path_buf();
    let crates = packaged_crates(&home);
    let path = |name: &str| crates[name].display().to_string().replace('\\', "/");
    // Not on a registry yet: the packaged crates stand in for it. The profile is the
    // workspace's, so the registry crates built for it are reused; the runtime and the
    // test kit, compiled anew from their packages, unoptimised as the workspace builds them
    // (an optimised build of the runtime alone took minutes of the test).
    std::fs::create_dir_all(home.join(".cargo")).unwrap();
    std::fs::write(
        home.join(".cargo/config.toml"),
        format!(
            "[patch.crates-io]\n\
             centralino-plugin-sdk = {{ path = \"{}\" }}\n\
             centralino-runtime = {{ path = \"{}\" }}\n\
             centralino-testkit = {{ path = \"{}\" }}\n\n\
             [profile.dev]\ndebug = \"line-tables-only\"\n\n\
             [profile.dev.package.\"*\"]\nopt-level = 1\n\n\
             [profile.dev.package.centralino-runtime]\nopt-level = 0\n\n\
             [profile.dev.package.centralino-testkit]\nopt-level = 0\n",
            path("centralino-plugin-sdk"),
            path("centralino-runtime"),
            path("centralino-testkit"),
        ),
    )
    .unwrap();
    let env = [
        ("CARGO_NET_OFFLINE", "true".into()),
        ("CARGO_TARGET_DIR", shared_target().into_os_string()),
    ];

    // 1. Create the crate.
    let (_, cwd) = run_block(&blocks[0], &home, &env);
    let connector = home.join("acme-chat");
    assert!(connector.join("src/lib.rs").exists());
    let manifest = std::fs::read_to_string(connector.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("centralino-plugin-sdk = \"0.3\""),
        "{manifest}"
    );
    // The same versions as the workspace (offline), and the guide's paths into the
    // crate's `target/` lead to the shared cache.
    std::fs::copy(
        repo.join("plugins/Cargo.lock"),
        connector.join("Cargo.lock"),
    )
    .unwrap();
    std::os::unix::fs::symlink(shared_target(), connector.join("target")).unwrap();

    // 2. Build it and look at it; 3. its own tests.
    let (inspected, cwd) = run_block(&blocks[1], &cwd, &env);
    assert!(inspected.contains("acme-chat 0.1.0"), "{inspected}");
    assert!(
        inspected.contains("centralino:plugin@0.3.0 (served by this host)"),
        "{inspected}"
    );
    let (tested, cwd) = run_block(&blocks[2], &cwd, &env);
    assert!(tested.contains("test result: ok"), "{tested}");

    // 5. The test crate, its dependencies and its component test, from the guide.
    let (_, cwd) = run_block(&blocks[3], &cwd, &env);
    let tests = home.join("acme-chat-tests");
    let cargo_toml = tests.join("Cargo.toml");
    let generated = std::fs::read_to_string(&cargo_toml).unwrap();
    let dependencies = guide_block(&guide, "toml", "centralino-testkit");
    std::fs::write(&cargo_toml, format!("{generated}\n{dependencies}")).unwrap();
    std::fs::copy(repo.join("Cargo.lock"), tests.join("Cargo.lock")).unwrap();
    // Only so this test reuses the workspace's build: the same features in shared crates.
    aligned_features(&repo, &cargo_toml, &["acme-chat-tests"], |aligned| {
        std::fs::write(&cargo_toml, format!("{generated}{aligned}\n{dependencies}")).unwrap()
    });
    std::fs::create_dir_all(tests.join("tests")).unwrap();
    std::fs::write(
        tests.join("tests/component.rs"),
        guide_block(&guide, "rust", "ConnectorTest::from_path"),
    )
    .unwrap();
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
    let (tested, cwd) = run_block(&blocks[4], &cwd, &env);
    assert!(
        tested.contains("a_signed_delivery_becomes_a_message_and_a_reply_goes_out ... ok"),
        "{tested}"
    );

    // 6. The admin's side: the plugin folder, the config, `check --load`, one delivery.
    let (_, cwd) = run_block(&blocks[5], &cwd, &env);
    std::fs::write(
        cwd.join("centralino.toml"),
        guide_block(&guide, "toml", "[[connectors]]"),
    )
    .unwrap();
    let (ran, _) = run_block(&blocks[6], &cwd, &env);
    assert!(ran.contains("acme-chat"), "{ran}");
    assert!(ran.contains("m-2"), "the delivery's message: {ran}");
}
