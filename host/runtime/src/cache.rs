//! Compiled components cached on disk, so a restart does not pay for Cranelift again.
//!
//! The key is the SHA-256 of the component bytes plus the wasmtime version and the
//! engine's compatibility hash: a new wasmtime or a changed engine setting never loads a
//! stale artifact. Files are written to a temporary name and renamed into place, so a
//! crash mid-write leaves no torn artifact behind.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release in Cargo.lock, for the artifacts' names; the engine's compatibility
/// hash beside it tells any other release (or setting) apart.
const WASMTIME_VERSION: &str = "49.0.5";

/// Where compiled artifacts live.
#[derive(Clone, Debug)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
}

/// Whether a load was served from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache configured: compiled.
    Disabled,
    /// Found on disk.
    Hit,
    /// Compiled and stored.
    Miss,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ComponentCache { dir }
    }

    fn artifact_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let name = format!(
            "{}-wasmtime{}-{:016x}.cwasm",
            hex::encode(Sha256::digest(bytes)),
            WASMTIME_VERSION,
            hasher.finish()
        );
        self.dir.join(name)
    }

    /// Loads the compiled form of `bytes`, compiling it with `build` and storing it on a
    /// miss.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        build: impl FnOnce() -> anyhow::Result<Component>,
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let path = self.artifact_path(engine, bytes);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {e:#}")
                }
            }
        }
        let component = build()?;
        let serialized = component.serialize().map_err(anyhow::Error::from)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating the component cache {}", self.dir.display()))?;
        // Unique per process and per write: two threads (or hosts) compiling the same
        // component never write into one temporary file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "tmp{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, serialized).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("moving {} into place", path.display()))?;
        Ok((component, CacheOutcome::Miss))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of an engine with the same
    // version and compatibility hash (both are in its name), in a directory only this
    // host writes, and it was renamed into place only after being fully written.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}
