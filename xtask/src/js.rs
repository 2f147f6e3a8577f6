//! Plugins written in JavaScript or TypeScript (`plugins/<name>/package.json` with a
//! `centralino` field), built into components with componentize-js.
//!
//! Each one is copied (sources, package.json, package-lock.json, build script) into
//! `target/js/<name>/`, where `npm ci` installs the locked toolchain from the npm registry
//! (again only when the lock changes) and `node build.mjs <wit> <out>` writes
//! `target/plugins/<name>.wasm`. Nothing is rebuilt while the sources, the lock and the
//! contract's WIT are unchanged. node_modules and the component never enter the
//! repository.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{output, run, step};

/// Files and folders of a JS plugin that are build output, not sources.
const SKIPPED: &[&str] = &["node_modules", "dist", ".gitignore"];

/// The JS plugin folders under `plugins/`: those with a package.json.
fn js_plugins(plugins: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(plugins).with_context(|| format!("reading {}", plugins.display()))?
    {
        let path = entry?.path();
        if path.join("package.json").is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Node.js and npm, or an error saying how to get them.
fn ensure_node() -> anyhow::Result<String> {
    let node = output(Command::new("node").arg("--version"));
    let npm = output(Command::new("npm").arg("--version"));
    match (node, npm) {
        (Some(node), Some(npm)) => {
            let major = node
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .unwrap_or(0);
            if major < 18 {
                bail!(
                    "the TypeScript plugins need Node.js 18 or newer (componentize-js), found {}",
                    node.trim()
                );
            }
            Ok(format!("node {}, npm {}", node.trim(), npm.trim()))
        }
        _ => bail!(
            "the TypeScript plugins (plugins/*/package.json) are built with Node.js and npm, \
             which were not found on PATH: install them (for example `apt-get install nodejs \
             npm`, Node.js 18 or newer) and run again"
        ),
    }
}

/// Hashes every file under `dir` (paths and contents, in a stable order), skipping
/// [`SKIPPED`] and `.wasm` files.
fn hash_tree(hasher: &mut DefaultHasher, base: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if SKIPPED.contains(&name.as_str()) || name.ends_with(".wasm") {
            continue;
        }
        if path.is_dir() {
            hash_tree(hasher, base, &path)?;
        } else {
            let relative = path.strip_prefix(base).unwrap_or(&path);
            hasher.write(relative.to_string_lossy().as_bytes());
            hasher.write(
                &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    Ok(())
}

/// Copies the sources of `from` into `to` (same skips as [`hash_tree`]).
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if SKIPPED.contains(&name.as_str()) || name.ends_with(".wasm") {
            continue;
        }
        let target = to.join(&name);
        if path.is_dir() {
            copy_sources(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)
                .with_context(|| format!("copying {} to {}", path.display(), target.display()))?;
        }
    }
    Ok(())
}

/// The contract a JS plugin targets: `centralino.contract` in its package.json.
fn contract_of(plugin: &Path) -> anyhow::Result<String> {
    let manifest = plugin.join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    json.pointer("/centralino/contract")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{} has no `centralino.contract` (such as \"0.1.0\")",
                manifest.display()
            )
        })
}

/// Builds every JS plugin into `out_dir`, returning the component paths.
pub(crate) fn build(root: &Path, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let plugins = js_plugins(&root.join("plugins"))?;
    if plugins.is_empty() {
        return Ok(Vec::new());
    }
    let tools = ensure_node()?;
    let mut built = Vec::new();
    for plugin in plugins {
        let name = plugin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock = plugin.join("package-lock.json");
        if !lock.is_file() {
            bail!(
                "{} has no package-lock.json: run `npm install` there and commit the lock",
                plugin.display()
            );
        }
        let contract = contract_of(&plugin)?;
        let wit = root.join("wit").join(format!("since_v{contract}"));
        if !wit.is_dir() {
            bail!(
                "{name} targets contract {contract}, but {} does not exist",
                wit.display()
            );
        }
        let component = out_dir.join(format!("{name}.wasm"));
        let work = root.join("target").join("js").join(&name);

        let mut sources = DefaultHasher::new();
        hash_tree(&mut sources, &plugin, &plugin)?;
        hash_tree(&mut sources, &wit, &wit)?;
        let sources = format!("{:016x}", sources.finish());
        let stamp = work.join(".built-from");
        if component.is_file()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(sources.as_str())
        {
            step(&format!(
                "{name} (TypeScript) is up to date: {}",
                component.display()
            ));
            built.push(component);
            continue;
        }

        step(&format!(
            "building {name} (TypeScript, componentize-js; {tools})"
        ));
        // Everything but the installed packages is replaced, so a deleted source file does
        // not linger in the build.
        if work.is_dir() {
            for entry in
                std::fs::read_dir(&work).with_context(|| format!("reading {}", work.display()))?
            {
                let path = entry?.path();
                if path.file_name().is_some_and(|n| n == "node_modules") {
                    continue;
                }
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                }
                .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        copy_sources(&plugin, &work)?;
        let mut locked = DefaultHasher::new();
        locked.write(&std::fs::read(&lock).with_context(|| format!("reading {}", lock.display()))?);
        let locked = format!("{:016x}", locked.finish());
        let installed = work.join("node_modules").join(".centralino-lock");
        if std::fs::read_to_string(&installed).ok().as_deref() != Some(locked.as_str()) {
            step(&format!(
                "npm ci in {} (the locked toolchain, from the npm registry)",
                work.display()
            ));
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&work))
            .with_context(|| format!("installing the packages of {name} failed"))?;
            std::fs::write(&installed, &locked)
                .with_context(|| format!("writing {}", installed.display()))?;
        }
        run(Command::new("node")
            .arg("build.mjs")
            .arg(&wit)
            .arg(&component)
            .current_dir(&work))
        .with_context(|| format!("building {name} into a component failed"))?;
        std::fs::write(&stamp, &sources).with_context(|| format!("writing {}", stamp.display()))?;
        built.push(component);
    }
    Ok(built)
}
