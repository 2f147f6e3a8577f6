use std::process::Command;

use crate::component;
use crate::support::centralino;

#[test]
fn plugin_inspect_prints_world_and_contract_version() {
    let path = component("round-robin");
    let (code, stdout, stderr) = centralino(&["plugin", "inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("world         routing-policy"), "{stdout}");
    assert!(
        stdout.contains("contract      centralino:plugin@0.3.0 (served by this host)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("plugin        round-robin 0.1.0"),
        "{stdout}"
    );
}

#[test]
fn plugin_inspect_json_is_machine_readable() {
    let path = component("echo-channel");
    let (code, stdout, stderr) =
        centralino(&["plugin", "inspect", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["world"], "channel");
    assert_eq!(json["contract"], "0.3.0");
    assert_eq!(json["plugin"]["name"], "echo-channel");
    assert!(
        json["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "log")
    );
}

#[test]
fn plugin_inspect_refuses_with_one_line_reasons() {
    let cases = [
        (component("other-world"), "is not a centralino plugin"),
        (
            component("future-contract"),
            "centralino:plugin@2.0.0, which this host does not serve",
        ),
        (
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            "not a WebAssembly file",
        ),
    ];
    for (path, expected) in cases {
        let (code, _stdout, stderr) = centralino(&["plugin", "inspect", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {stderr}", path.display());
        assert!(stderr.contains(expected), "{}: {stderr}", path.display());
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn plugin_inspect_of_a_missing_file_says_which_file() {
    let (code, _stdout, stderr) = centralino(&["plugin", "inspect", "/nonexistent/plugin.wasm"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/plugin.wasm"), "{stderr}");
}

/// The crates `cargo tree -p centralino -e normal` lists (names only, each once), with
/// `features` passed to cargo; `None` when cargo cannot be started here.
fn normal_dependencies(features: &[&str]) -> Option<std::collections::BTreeSet<String>> {
    package_dependencies("centralino", features)
}

/// The crates `cargo tree -p <package> -e normal` lists (names only, each once).
fn package_dependencies(
    package: &str,
    features: &[&str],
) -> Option<std::collections::BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = match Command::new(cargo)
        .args(["tree", "--offline", "-p", package, "-e", "normal"])
        .args(["--prefix", "none", "--manifest-path"])
        .arg(&manifest)
        .args(features)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run cargo tree: {e}"),
    };
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn an_embedders_build_pulls_in_neither_clap_nor_the_subscriber_nor_the_emulators() {
    let Some(embedder) = normal_dependencies(&["--no-default-features"]) else {
        eprintln!("skipped: cargo is not available to run `cargo tree`");
        return;
    };
    assert!(
        embedder.contains("centralino") && embedder.contains("wasmtime"),
        "the tree was not parsed: {embedder:?}"
    );
    let binarys_own = [
        "clap",
        "clap_builder",
        "clap_derive",
        "tracing-subscriber",
        "centralino-emulators",
    ];
    for name in binarys_own {
        assert!(
            !embedder.contains(name),
            "`{name}` is in an embedder's build (default features off); only the `cli` \
             feature may bring it"
        );
    }
    // The same check sees them when the binary is built, so it is not vacuous.
    let Some(binary) = normal_dependencies(&["--features", "cli"]) else {
        return;
    };
    for name in binarys_own {
        assert!(
            binary.contains(name),
            "`{name}` missing with `cli`: {binary:?}"
        );
    }
}

#[test]
fn the_plugin_test_kit_needs_the_runtime_alone_not_the_store_the_sql_nor_axum() {
    let Some(testkit) = package_dependencies("centralino-testkit", &[]) else {
        eprintln!("skipped: cargo is not available to run `cargo tree`");
        return;
    };
    assert!(
        testkit.contains("centralino-runtime") && testkit.contains("wasmtime"),
        "the tree was not parsed: {testkit:?}"
    );
    for name in [
        "centralino",
        "sqlx",
        "sqlx-core",
        "argon2",
        "chacha20poly1305",
    ] {
        assert!(
            !testkit.contains(name),
            "`{name}` is in the test kit's build; it should need the runtime crate alone"
        );
    }
    // The host's own tree has them, so the check is not vacuous.
    let Some(host) = normal_dependencies(&["--no-default-features"]) else {
        return;
    };
    assert!(host.contains("sqlx") && host.contains("centralino-runtime"));
    eprintln!(
        "the test kit builds {} crates, the embedder's library {}",
        testkit.len(),
        host.len()
    );
}
