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
