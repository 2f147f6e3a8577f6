//! Contract versioning (`docs/contract-versioning.md`): the released 0.1.0 contract is kept
//! as a frozen copy, the host binds exactly that copy for 0.1.x, and a plugin built against
//! the frozen copy keeps loading and working.

use std::path::{Path, PathBuf};

use centralino::runtime::{SUPPORTED_CONTRACTS, World, inspect_file};
use centralino::types::{MessageKind, OutboundMessage};
use centralino_testkit::{ConnectorTest, Outcome, webhook};
use sha2::{Digest, Sha256};

/// The digest of `wit/since_v0.1.0` as released. A released contract is never edited: if
/// this test fails, undo the edit and put the change in the next minor version instead.
const FROZEN_V0_1_0_SHA256: &str =
    "59547a81630db8e95a971e05cde24434138cffee2743dc2aa68428d2cd3abdf4";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.wit` files of a folder (not its subfolders), sorted by name, with their bytes.
fn wit_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "wit"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The folder the host's `bindgen!` for contract 0.1 reads, from the runtime's bindings.
fn bound_by_the_host_for_v0_1() -> PathBuf {
    let bindings = std::fs::read_to_string(root().join("host/runtime/src/bindings.rs")).unwrap();
    let module = bindings
        .split("mod v0_1")
        .nth(1)
        .expect("bindings.rs has a `v0_1` module");
    let path = module
        .split("path: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the v0_1 bindgen! names its WIT path");
    // `bindgen!` paths are relative to the runtime crate, which carries its own copy.
    root().join("host/runtime").join(path)
}

#[test]
fn the_frozen_v0_1_0_contract_has_not_been_edited() {
    let mut digest = Sha256::new();
    for (name, bytes) in wit_files(&root().join("wit/since_v0.1.0")) {
        digest.update(name.as_bytes());
        digest.update(b"\0");
        digest.update(bytes.len().to_string().as_bytes());
        digest.update(b"\0");
        digest.update(&bytes);
    }
    assert_eq!(hex::encode(digest.finalize()), FROZEN_V0_1_0_SHA256);
}

/// The guest SDK 0.1.x carries its own copy of the contract it targets, so it builds
/// outside the repository; that copy is the frozen 0.1.0 contract, byte for byte.
#[test]
fn the_sdk_carries_the_frozen_v0_1_0_contract_and_binds_it() {
    let frozen = wit_files(&root().join("wit/since_v0.1.0"));
    let carried = wit_files(&root().join("plugins/sdk/wit"));
    assert_eq!(
        carried.iter().map(|f| &f.0).collect::<Vec<_>>(),
        frozen.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, carried), (_, frozen)) in carried.iter().zip(&frozen) {
        assert!(
            carried == frozen,
            "plugins/sdk/wit/{name} differs from wit/since_v0.1.0/{name}"
        );
    }
    let bindings = std::fs::read_to_string(root().join("plugins/sdk/src/bindings.rs")).unwrap();
    let paths: Vec<&str> = bindings
        .split("path: \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(paths, ["wit", "wit"]);
    let manifest = std::fs::read_to_string(root().join("plugins/sdk/Cargo.toml")).unwrap();
    assert!(manifest.contains("\nversion = \"0.1."), "{manifest}");
}

#[test]
fn the_host_binds_contract_0_1_from_files_identical_to_the_frozen_copy() {
    let frozen = wit_files(&root().join("wit/since_v0.1.0"));
    let bound = wit_files(&bound_by_the_host_for_v0_1());
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&bound), names(&frozen));
    for ((name, bound), (_, frozen)) in bound.iter().zip(&frozen) {
        assert!(
            bound == frozen,
            "{name} differs from wit/since_v0.1.0/{name}"
        );
    }
    for (name, bytes) in &frozen {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.starts_with("package centralino:plugin@0.1.0;"),
            "{name} is not part of centralino:plugin@0.1.0"
        );
    }
    assert!(SUPPORTED_CONTRACTS.contains(&semver::Version::new(0, 1, 0)));
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_contract_loads_and_works() {
    let path = centralino_testkit::component("frozen-v0-1-0");
    let info = inspect_file(&path).unwrap();
    assert_eq!(info.world, World::Channel);
    assert_eq!(info.contract, semver::Version::new(0, 1, 0));
    assert!(info.supported);

    let mut connector = ConnectorTest::from_path(&path)
        .account("acme", None)
        .instance()
        .unwrap();
    let outcome = connector
        .handle_webhook(webhook::post(b"mario: il modem non va", &[]))
        .await
        .unwrap();
    let message = outcome.only_message();
    assert_eq!(message.account, "acme");
    assert_eq!(message.text, "il modem non va");
    assert_eq!(message.kind, MessageKind::PrivateMessage);

    let sent = connector
        .send(OutboundMessage {
            account: "acme".to_string(),
            conversation_key: message.conversation_key.clone(),
            kind: MessageKind::PrivateMessage,
            recipient: Some("mario".to_string()),
            in_reply_to: None,
            text: "ciao".to_string(),
            attachments: Vec::new(),
            idempotency_key: "k1".to_string(),
        })
        .await
        .unwrap();
    assert_eq!(sent.external_id, "frozen-sent-k1");
}
