use centralino::runtime::{CacheOutcome, PluginLimits, Runtime};
use centralino::types::RoutingAction;

use crate::{agent, component, context};

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let policy = first.load_router(component("round-robin")).unwrap();
    assert_eq!(policy.cache_outcome(), CacheOutcome::Miss);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1);

    // A second runtime (a restart) loads the artifact instead of compiling, and it works.
    let second = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let policy = second.load_router(component("round-robin")).unwrap();
    assert_eq!(policy.cache_outcome(), CacheOutcome::Hit);
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    let decision = router
        .route(&context("ciao", vec![agent("a", 1)], 1))
        .await
        .unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("a".to_string()));
}

#[tokio::test]
async fn a_corrupt_cached_artifact_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    runtime.load_router(component("round-robin")).unwrap();
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&artifact, b"not a compiled artifact").unwrap();
    let policy = runtime.load_router(component("round-robin")).unwrap();
    assert_eq!(policy.cache_outcome(), CacheOutcome::Miss);
    let mut router = policy.instance(Vec::new(), PluginLimits::default());
    router
        .route(&context("ciao", vec![agent("a", 1)], 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_swap_compiles_on_one_thread_into_the_same_cache_and_the_component_works() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    // The single-threaded compiler's artifacts fit the engine: no silent fallback.
    assert!(runtime.compiles_quietly());
    let quiet = runtime.load_channel_quietly(component("facebook")).unwrap();
    assert_eq!(quiet.cache_outcome(), CacheOutcome::Miss);
    let mut instance = quiet.instance(
        centralino::types::ConnectorConfig::default(),
        centralino::capabilities::Grants::default(),
        PluginLimits::default(),
    );
    // The guest runs: it describes itself, then refuses an empty configuration itself.
    let refused = instance.ready().await.unwrap_err().to_string();
    assert!(
        refused.contains("facebook@0.1.0")
            && refused.contains("configure at least one Facebook page"),
        "{refused}"
    );
    // Stored under the engine's own key: the normal load (a restart) finds it.
    let again = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let loaded = again.load_channel(component("facebook")).unwrap();
    assert_eq!(loaded.cache_outcome(), CacheOutcome::Hit);
}
