//! Contract versioning (`docs/contract-versioning.md`): every released contract (0.1.0,
//! 0.2.0, 0.3.0) is kept as a frozen copy, the host binds exactly that copy for its line, a
//! plugin built against the frozen 0.1 copy keeps loading and working, and one host runs
//! 0.1, 0.2 and 0.3 plugins side by side.

use std::path::{Path, PathBuf};

use centralino::runtime::{SUPPORTED_CONTRACTS, World, inspect_file};
use centralino::types::{MessageKind, OutboundMessage};
use centralino_testkit::{ConnectorTest, Outcome, webhook};
use sha2::{Digest, Sha256};

/// The digest of `wit/since_v0.1.0` as released. A released contract is never edited: if
/// this test fails, undo the edit and put the change in the next minor version instead.
const FROZEN_V0_1_0_SHA256: &str =
    "59547a81630db8e95a971e05cde24434138cffee2743dc2aa68428d2cd3abdf4";

/// The digest of `wit/since_v0.2.0` as released (same rule).
const FROZEN_V0_2_0_SHA256: &str =
    "1874426843bafc0d07dfc86e08a196e401143cfd4166705549c877171118c6c7";

/// The digest of `wit/since_v0.3.0` as released (same rule).
const FROZEN_V0_3_0_SHA256: &str =
    "870e9e809c795ae73d6b8d1b74a53488a897aa51587297a5ddda23954c7a04af";

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

/// The folder the host's `bindgen!` for contract line `line` (`v0_1`) reads, from the
/// runtime's bindings module of that line.
fn bound_by_the_host(line: &str) -> PathBuf {
    let bindings =
        std::fs::read_to_string(root().join(format!("host/runtime/src/bindings/{line}.rs")))
            .unwrap();
    let path = bindings
        .split("path: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the bindgen! names its WIT path");
    // `bindgen!` paths are relative to the runtime crate, which carries its own copy.
    root().join("host/runtime").join(path)
}

fn digest(dir: &Path) -> String {
    let mut digest = Sha256::new();
    for (name, bytes) in wit_files(dir) {
        digest.update(name.as_bytes());
        digest.update(b"\0");
        digest.update(bytes.len().to_string().as_bytes());
        digest.update(b"\0");
        digest.update(&bytes);
    }
    hex::encode(digest.finalize())
}

fn assert_same_files(left: &Path, right: &Path) {
    let left_files = wit_files(left);
    let right_files = wit_files(right);
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&left_files),
        names(&right_files),
        "{left:?} vs {right:?}"
    );
    for ((name, l), (_, r)) in left_files.iter().zip(&right_files) {
        assert!(
            l == r,
            "{}/{name} differs from {}/{name}",
            left.display(),
            right.display()
        );
    }
}

#[test]
fn the_released_contracts_have_not_been_edited() {
    assert_eq!(
        digest(&root().join("wit/since_v0.1.0")),
        FROZEN_V0_1_0_SHA256,
        "wit/since_v0.1.0 was edited: undo it, released contracts are frozen"
    );
    assert_eq!(
        digest(&root().join("wit/since_v0.2.0")),
        FROZEN_V0_2_0_SHA256,
        "wit/since_v0.2.0 was edited: undo it, released contracts are frozen"
    );
    assert_eq!(
        digest(&root().join("wit/since_v0.3.0")),
        FROZEN_V0_3_0_SHA256,
        "wit/since_v0.3.0 was edited: undo it, released contracts are frozen"
    );
}

/// The guest SDK 0.3.x carries its own copy of the contract it targets, so it builds
/// outside the repository; that copy is the frozen 0.3.0 contract, byte for byte.
#[test]
fn the_sdk_carries_the_frozen_v0_3_0_contract_and_binds_it() {
    assert_same_files(
        &root().join("plugins/sdk/wit"),
        &root().join("wit/since_v0.3.0"),
    );
    let bindings = std::fs::read_to_string(root().join("plugins/sdk/src/bindings.rs")).unwrap();
    let paths: Vec<&str> = bindings
        .split("path: \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(paths, ["wit", "wit"]);
    let manifest = std::fs::read_to_string(root().join("plugins/sdk/Cargo.toml")).unwrap();
    assert!(manifest.contains("\nversion = \"0.3."), "{manifest}");
}

/// The head (`wit/`) has not moved since 0.3.0 was released: it is the frozen copy.
#[test]
fn the_head_is_the_newest_released_contract() {
    assert_same_files(&root().join("wit"), &root().join("wit/since_v0.3.0"));
}

#[test]
fn the_host_binds_each_line_from_files_identical_to_its_frozen_copy() {
    for (line, version) in [("v0_1", "0.1.0"), ("v0_2", "0.2.0"), ("v0_3", "0.3.0")] {
        let frozen = root().join(format!("wit/since_v{version}"));
        assert_same_files(&bound_by_the_host(line), &frozen);
        for (name, bytes) in wit_files(&frozen) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.starts_with(&format!("package centralino:plugin@{version};")),
                "{name} is not part of centralino:plugin@{version}"
            );
        }
        assert!(SUPPORTED_CONTRACTS.contains(&semver::Version::parse(version).unwrap()));
    }
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

/// One host serves the three contract lines at once. The routing chain is `skills` (built
/// on SDK 0.3: the roster and the repeating strings kept in its instance, the rest asked
/// for), then `roster-echo-v0-2-0` (a 0.2 policy: with the text `first` it assigns the
/// first candidate it is given, otherwise it passes), then `least-loaded` as released for
/// 0.1 (its 0.1 build, `least-loaded-v0-1-0`: every operator lowered per call); the
/// connectors are `echo-channel` (0.3), `frozen-v0-2-0` (0.2) and `frozen-v0-1-0` (0.1). A
/// customer writes on each; giulia lacks the brand (only the 0.3 stage can drop her), the
/// customer on the 0.2 connector writes `first` (only the 0.2 stage assigns sara, whom
/// least-loaded would pass over for marco, who holds nothing yet), the other two are
/// placed by the 0.1 stage; each assignee's reply goes out through the connector the
/// customer wrote on. `centralino plugin inspect` names each contract.
#[tokio::test]
async fn one_host_runs_0_1_0_2_and_0_3_plugins_side_by_side() {
    use centralino::connectors::ConnectorSpec;
    use centralino::routing::{Operator, RoutingEngine};
    use centralino::store::{ConversationStatus, OutboxStatus};
    use centralino::types::{AccountConfig, ConnectorConfig, Presence, WebhookRequest};

    let plugins = [
        ("skills", World::RoutingPolicy, "0.3.0"),
        ("roster-echo-v0-2-0", World::RoutingPolicy, "0.2.0"),
        ("least-loaded-v0-1-0", World::RoutingPolicy, "0.1.0"),
        ("echo-channel", World::Channel, "0.3.0"),
        ("frozen-v0-2-0", World::Channel, "0.2.0"),
        ("frozen-v0-1-0", World::Channel, "0.1.0"),
    ];
    for (name, world, contract) in plugins {
        let path = centralino_testkit::component(name);
        let info = inspect_file(&path).unwrap();
        assert_eq!(info.world, world, "{name}");
        assert_eq!(
            info.contract,
            semver::Version::parse(contract).unwrap(),
            "{name}"
        );
        assert!(info.supported, "{name}");
        let (code, shown, stderr) =
            crate::support::centralino(&["plugin", "inspect", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            shown.contains(&format!(
                "contract      centralino:plugin@{contract} (served by this host)"
            )),
            "{name}: {shown}"
        );
    }

    let account = |id: &str| ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: id.to_string(),
            handle: Some(id.to_string()),
            credential: None,
            settings: Vec::new(),
        }],
    };
    let mut echo = ConnectorSpec::new(
        "echo",
        centralino_testkit::component("echo-channel"),
        account("support"),
    );
    echo.brands.insert("support".to_string(), "tim".to_string());
    let mut frozen = ConnectorSpec::new(
        "frozen",
        centralino_testkit::component("frozen-v0-1-0"),
        account("acme"),
    );
    frozen.brands.insert("acme".to_string(), "tim".to_string());
    let mut frozen_v0_2 = ConnectorSpec::new(
        "frozen-v0-2",
        centralino_testkit::component("frozen-v0-2-0"),
        account("beta"),
    );
    frozen_v0_2
        .brands
        .insert("beta".to_string(), "tim".to_string());

    let mut engine = RoutingEngine::builder(
        crate::routing::chain("skills > roster-echo-v0-2-0 > least-loaded-v0-1-0").await,
    )
    .build();
    engine
        .add_operator(
            Operator::new("giulia", 2)
                .skills(["vodafone"])
                .languages(["it"]),
            Presence::Online,
        )
        .await;
    for name in ["sara", "marco"] {
        engine
            .add_operator(
                Operator::new(name, 2).skills(["tim"]).languages(["it"]),
                Presence::Online,
            )
            .await;
    }
    let host = centralino::Host::builder()
        .connector(echo)
        .connector(frozen_v0_2)
        .connector(frozen)
        .routing(engine)
        .build()
        .await
        .unwrap();

    for (connector, body, assignee, sent_prefix, why) in [
        (
            "echo",
            "mario: il modem non va",
            "sara",
            "echo-out-",
            "the 0.3 stage drops giulia, the 0.1 stage takes the first of two free operators",
        ),
        (
            "frozen-v0-2",
            "anna: first",
            "sara",
            "echo-out-",
            "the 0.2 stage assigns the first candidate",
        ),
        (
            "frozen",
            "lucia: niente linea",
            "marco",
            "frozen-sent-",
            "the 0.1 stage gives it to the operator with the most room",
        ),
    ] {
        let request = WebhookRequest {
            method: "POST".to_string(),
            path: "/".to_string(),
            query: String::new(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let (response, stored) = host
            .deliver_webhook_stored("default", connector, request)
            .await;
        assert_eq!(response.status, 200, "{connector}");
        assert_eq!(stored.len(), 1, "{connector}");
        let conversation = stored[0].conversation_id.clone();
        let record = host
            .store()
            .conversation("default", &conversation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, ConversationStatus::Assigned, "{connector}");
        assert_eq!(
            record.assignee.as_deref(),
            Some(assignee),
            "{connector}: {why}"
        );

        let entry = host
            .reply(
                "default",
                &conversation,
                assignee,
                None,
                "Ciao, ci penso io",
                &format!("side-{connector}"),
            )
            .await
            .unwrap();
        let mut sent = None;
        crate::support::eventually(
            &format!("the reply through {connector} is sent"),
            async || {
                let now = host
                    .store()
                    .outbox_entry("default", &entry.id)
                    .await
                    .unwrap()
                    .unwrap();
                let done = now.status == OutboxStatus::Sent;
                sent = now.external_id;
                done
            },
        )
        .await;
        let sent = sent.unwrap();
        assert!(sent.starts_with(sent_prefix), "{connector}: {sent}");
    }
}
