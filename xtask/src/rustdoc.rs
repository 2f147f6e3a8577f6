//! Rustdoc's JSON of a workspace library, written against the test build's own artifacts.
//!
//! `cargo rustdoc` documents a crate against dependencies *checked* for it: units of their
//! own that only emit metadata, so on a fresh machine it is a second pass over the whole
//! dependency tree, wasmtime and cranelift included (13 of the 75 minutes of a cold
//! `cargo xtask test` on a slow 2-core machine, for two JSON files). The test build has
//! written every dependency's metadata (`.rmeta`) already: here rustdoc runs directly on
//! those, with the crate's direct dependencies passed as cargo would pass them. If that
//! fails, the caller falls back to `cargo rustdoc` (slow, but cargo's own answer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// What the test build compiled: for every package, its library artifacts (more than
/// one when the package is built with other features for build scripts and proc macros).
pub(crate) struct Build {
    libraries: HashMap<String, Vec<Library>>,
    metadata: Value,
}

struct Library {
    features: usize,
    /// The `.rmeta` (or a proc macro's shared object) to pass with `--extern`.
    file: PathBuf,
}

impl Build {
    /// Runs (or, when it is fresh, replays) the test build of the workspace and reads what
    /// it compiled. Cargo's progress goes to the terminal as usual.
    pub(crate) fn read(root: &Path) -> anyhow::Result<Build> {
        let out = crate::cargo_compiling(&["test"])
            .args([
                "--workspace",
                "--no-run",
                "--message-format",
                "json-render-diagnostics",
            ])
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .context("running the test build (cargo test --workspace --no-run)")?;
        if !out.status.success() {
            bail!("the test build failed ({})", out.status);
        }
        let mut libraries: HashMap<String, Vec<Library>> = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            // A library's own unit tests are reported as `lib` targets too.
            if message["reason"] != "compiler-artifact" || message["profile"]["test"] == true {
                continue;
            }
            let kinds = message["target"]["kind"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let library = kinds
                .iter()
                .any(|k| matches!(k.as_str(), Some("lib" | "rlib" | "proc-macro")));
            if !library {
                continue;
            }
            let files: Vec<PathBuf> = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(PathBuf::from)
                .collect();
            let Some(file) = files
                .iter()
                .find(|f| f.extension().is_some_and(|e| e == "rmeta"))
                .or_else(|| files.first())
            else {
                continue;
            };
            let Some(package) = message["package_id"].as_str() else {
                continue;
            };
            libraries
                .entry(package.to_string())
                .or_default()
                .push(Library {
                    features: message["features"].as_array().map_or(0, Vec::len),
                    file: file.clone(),
                });
        }
        // This machine's packages only: the others (Windows' crates, say) are not
        // downloaded by a build here, and need not be.
        let version = Command::new("rustc")
            .arg("-vV")
            .output()
            .context("running rustc -vV")?;
        let version = String::from_utf8_lossy(&version.stdout);
        let host = version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .context("rustc -vV named no host")?;
        let out = crate::cargo()
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                host,
            ])
            .current_dir(root)
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let metadata = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
        Ok(Build {
            libraries,
            metadata,
        })
    }

    /// Writes `package`'s rustdoc JSON (library target, no features on) into `out_dir`;
    /// returns the file.
    pub(crate) fn json(&self, package: &str, out_dir: &Path) -> anyhow::Result<PathBuf> {
        let packages = self.metadata["packages"].as_array().into_iter().flatten();
        let Some(manifest) = packages
            .filter(|p| p["name"] == package)
            .find(|p| p["source"].is_null())
        else {
            bail!("{package} is not a package of the workspace");
        };
        let id = manifest["id"].as_str().context("a package without an id")?;
        let Some(lib) = manifest["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
        else {
            bail!("{package} has no library target");
        };
        let crate_name = package.replace('-', "_");
        let source = lib["src_path"]
            .as_str()
            .context("a target without src_path")?;
        let edition = lib["edition"].as_str().unwrap_or("2021");
        let version = manifest["version"].as_str().unwrap_or("0.0.0");
        let manifest_dir = manifest["manifest_path"]
            .as_str()
            .map(Path::new)
            .and_then(Path::parent)
            .context("a package without a manifest path")?;

        let nodes = self.metadata["resolve"]["nodes"]
            .as_array()
            .into_iter()
            .flatten();
        let Some(node) = nodes.into_iter().find(|n| n["id"] == id) else {
            bail!("{package} is not in cargo's resolve");
        };
        let mut command =
            Command::new(std::env::var_os("RUSTDOC").unwrap_or_else(|| "rustdoc".into()));
        command
            .args([
                "--edition",
                edition,
                "--crate-type",
                "lib",
                "--crate-name",
                &crate_name,
            ])
            .arg(source)
            .arg("-o")
            .arg(out_dir);
        let mut search = None;
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            let (Some(name), Some(dep_id)) = (dep["name"].as_str(), dep["pkg"].as_str()) else {
                continue;
            };
            if !normal {
                continue;
            }
            // Built for this crate and, with fewer features, for build scripts or proc
            // macros: the crate's own is the one with every feature the build unified.
            let Some(library) = self
                .libraries
                .get(dep_id)
                .and_then(|built| built.iter().max_by_key(|l| l.features))
            else {
                // An optional dependency the build did not need: not used by these features.
                continue;
            };
            search = search.or_else(|| library.file.parent().map(Path::to_path_buf));
            command
                .arg("--extern")
                .arg(format!("{name}={}", library.file.display()));
        }
        if let Some(dir) = search {
            command
                .arg("-L")
                .arg(format!("dependency={}", dir.display()));
        }
        let status = command
            .args(["-Z", "unstable-options", "--output-format", "json"])
            // The workspace's `missing_docs = "warn"`, and any warning fails (a broken or
            // private link in the public docs fails here, not in a reader's browser).
            .args(["-W", "missing_docs", "-D", "warnings"])
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_PKG_NAME", package)
            .env("CARGO_PKG_VERSION", version)
            .env("CARGO_CRATE_NAME", &crate_name)
            .env("CARGO_MANIFEST_DIR", manifest_dir)
            .current_dir(manifest_dir)
            .status()
            .context("running rustdoc")?;
        if !status.success() {
            bail!("rustdoc failed on {package} ({status})");
        }
        Ok(out_dir.join(format!("{crate_name}.json")))
    }
}
