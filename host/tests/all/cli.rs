use std::process::Command;

use crate::component;

fn centralino(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_inspect_prints_world_and_contract_version() {
    let path = component("round-robin");
    let (code, stdout, stderr) = centralino(&["plugin", "inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("world         routing-policy"), "{stdout}");
    assert!(
        stdout.contains("contract      centralino:plugin@0.1.0 (served by this host)"),
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
    assert_eq!(json["contract"], "0.1.0");
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
