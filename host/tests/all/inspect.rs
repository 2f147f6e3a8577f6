use centralino::runtime::Error;
use centralino::runtime::{Runtime, World, inspect_file};

use crate::component;

#[test]
fn inspect_reports_world_version_and_identity_of_round_robin() {
    let info = inspect_file(&component("round-robin")).unwrap();
    assert_eq!(info.world, World::RoutingPolicy);
    assert_eq!(info.contract, semver::Version::new(0, 3, 0));
    assert!(info.supported);
    assert_eq!(info.plugin.name, "round-robin");
    assert_eq!(info.plugin.version, "0.1.0");
    assert_eq!(
        info.exports,
        vec!["centralino:plugin/router@0.3.0".to_string()]
    );
    assert!(
        !info
            .capabilities
            .iter()
            .any(|c| c == "http" || c == "signing"),
        "{:?}",
        info.capabilities
    );
}

#[test]
fn inspect_lists_the_capabilities_a_channel_asks_for() {
    let info = inspect_file(&component("echo-channel")).unwrap();
    assert_eq!(info.world, World::Channel);
    assert!(
        info.capabilities.contains(&"log".to_string()),
        "{:?}",
        info.capabilities
    );
    assert!(
        info.capabilities.contains(&"clock".to_string()),
        "{:?}",
        info.capabilities
    );
}

#[test]
fn wrong_world_component_is_refused_naming_plugin_and_exports() {
    let path = component("other-world");
    let err = Runtime::new().unwrap().load_router(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
    assert!(text.contains("other-world@0.1.0"), "{text}");
    assert!(text.contains("acme:greeter/greet@1.0.0"), "{text}");
    assert!(text.contains("not a centralino plugin"), "{text}");
}

#[test]
fn unsupported_contract_version_is_refused_before_instantiation() {
    let path = component("future-contract");
    let info = inspect_file(&path).unwrap();
    assert!(!info.supported);
    assert_eq!(info.contract, semver::Version::new(2, 0, 0));
    let err = Runtime::new().unwrap().load_router(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("future-contract@0.1.0"), "{text}");
    assert!(text.contains("centralino:plugin@2.0.0"), "{text}");
    assert!(text.contains("serves 0.1.x"), "{text}");
}

#[test]
fn a_router_loaded_as_a_channel_is_refused_as_the_wrong_world() {
    let err = Runtime::new()
        .unwrap()
        .load_channel(component("round-robin"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin round-robin@0.1.0 is a `routing-policy` component, but a `channel` was needed"
    );
}

#[test]
fn a_truncated_component_is_refused_as_malformed() {
    let bytes = std::fs::read(component("round-robin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.wasm");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Runtime::new().unwrap().load_router(&path).unwrap_err();
    assert!(err.to_string().contains("malformed WebAssembly"), "{err}");
}
