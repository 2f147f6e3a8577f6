//! Plugins written in Python, built with componentize-py from PyPI.
//!
//! A Python plugin is a folder under `plugins/` holding `app.py` (the module componentize-py
//! builds, with the plugin's other `.py` files beside it), `requirements.txt` (the pinned
//! build tool, installed with pip into `target/python/<name>-venv`) and `sections.json`:
//! the custom sections to embed, by name, such as
//!
//! ```json
//! {"centralino-plugin": {"name": "mastodon-py", "version": "0.1.0", "contract": "0.1.0"},
//!  "centralino-rate-limits": {"reset": "x-ratelimit-reset", "reset_format": "rfc3339"}}
//! ```
//!
//! componentize-py has no way to add custom sections, so they are appended to the
//! component after the build (a custom section may follow any other section of a
//! component). The contract comes from `centralino-plugin`'s `contract`: the component is
//! built against the frozen copy `wit/since_v<contract>`, world `channel`.
//!
//! A build is skipped when nothing it reads changed (the plugin's files, the pins, the
//! WIT): a fingerprint of them is kept in `target/python/<name>.fingerprint`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{output, run, step};

/// The world every Python plugin is built for (connectors only, for now).
const WORLD: &str = "channel";

/// Builds every Python plugin into `out_dir/<name>.wasm`; returns the components.
pub(crate) fn build_all(root: &Path, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut built = Vec::new();
    for plugin in python_plugins(&root.join("plugins"))? {
        built.push(build(root, &plugin, out_dir)?);
    }
    Ok(built)
}

/// Folders under `plugins/` with an `app.py` and a `requirements.txt`.
fn python_plugins(plugins: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(plugins).with_context(|| format!("reading {}", plugins.display()))?
    {
        let path = entry?.path();
        if path.join("app.py").is_file() && path.join("requirements.txt").is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn build(root: &Path, plugin: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sections = read_sections(plugin)?;
    let contract = sections
        .iter()
        .find(|(section, _)| section == "centralino-plugin")
        .and_then(|(_, json)| serde_json::from_slice::<Value>(json).ok())
        .and_then(|metadata| metadata["contract"].as_str().map(str::to_string))
        .with_context(|| {
            format!("{name}/sections.json: `centralino-plugin` names no `contract` version")
        })?;
    let wit = root.join("wit").join(format!("since_v{contract}"));
    if !wit.is_dir() {
        bail!(
            "{name} targets contract {contract}, but {} does not exist",
            wit.display()
        );
    }

    let work = root.join("target").join("python");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let component = out_dir.join(format!("{name}.wasm"));
    let fingerprint_file = work.join(format!("{name}.fingerprint"));
    let fingerprint = fingerprint(&[plugin, &wit])?;
    if component.is_file()
        && std::fs::read_to_string(&fingerprint_file).ok().as_deref() == Some(fingerprint.as_str())
    {
        step(&format!(
            "python plugin {name}: unchanged, keeping {}",
            component.display()
        ));
        return Ok(component);
    }

    let venv = ensure_venv(&work, &name, &plugin.join("requirements.txt"))?;
    let started = Instant::now();
    step(&format!(
        "python plugin {name}: componentize-py, contract {contract} ({}), world `{WORLD}`",
        wit.display()
    ));
    let built = work.join(format!("{name}.componentized.wasm"));
    run(Command::new(venv.join("bin").join("componentize-py"))
        .arg("-d")
        .arg(&wit)
        .args(["-w", WORLD, "componentize", "-p"])
        .arg(plugin)
        .args(["app", "-o"])
        .arg(&built)
        // Fewer `__pycache__` folders (componentize-py still writes one; it is ignored by
        // git and by the fingerprint).
        .env("PYTHONDONTWRITEBYTECODE", "1"))
    .with_context(|| format!("componentize-py could not build {name}"))?;

    let mut bytes =
        std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    for (section, data) in &sections {
        append_custom_section(&mut bytes, section, data);
    }
    std::fs::write(&component, &bytes)
        .with_context(|| format!("writing {}", component.display()))?;
    std::fs::write(&fingerprint_file, &fingerprint)
        .with_context(|| format!("writing {}", fingerprint_file.display()))?;
    step(&format!(
        "python plugin {name}: {} ({:.1} MB, sections {}) in {:.1} s",
        component.display(),
        bytes.len() as f64 / 1e6,
        sections
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    ));
    Ok(component)
}

/// The sections of `sections.json`, each value re-serialised compactly.
fn read_sections(plugin: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let file = plugin.join("sections.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let parsed: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let Value::Object(sections) = parsed else {
        bail!("{}: expected an object of sections by name", file.display());
    };
    sections
        .into_iter()
        .map(|(name, value)| Ok((name, serde_json::to_vec(&value)?)))
        .collect()
}

/// A venv with the plugin's pinned requirements: reused while `requirements.txt` is the
/// one it was made from.
fn ensure_venv(work: &Path, name: &str, requirements: &Path) -> anyhow::Result<PathBuf> {
    let venv = work.join(format!("{name}-venv"));
    let pins = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let installed = venv.join("centralino-requirements.txt");
    let tool = venv.join("bin").join("componentize-py");
    if tool.is_file() && std::fs::read_to_string(&installed).ok().as_deref() == Some(pins.as_str())
    {
        return Ok(venv);
    }
    if !venv.join("bin").join("python").exists() {
        step(&format!(
            "python plugin {name}: creating {}",
            venv.display()
        ));
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("python3 -m venv failed (python3 with venv is needed)")?;
    }
    step(&format!(
        "python plugin {name}: installing {} from PyPI (pip shows its progress)",
        requirements.display()
    ));
    run(Command::new(venv.join("bin").join("python"))
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
        .arg(requirements))
    .context("pip could not install the plugin's build requirements")?;
    let version = output(Command::new(&tool).arg("--version")).unwrap_or_default();
    step(&format!("python plugin {name}: {}", version.trim()));
    std::fs::write(&installed, &pins)
        .with_context(|| format!("writing {}", installed.display()))?;
    Ok(venv)
}

/// A stable fingerprint (FNV-1a, 64 bits) of every file under `dirs`, names included.
fn fingerprint(dirs: &[&Path]) -> anyhow::Result<String> {
    let mut files = Vec::new();
    for dir in dirs {
        collect(dir, &mut files)?;
    }
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for file in &files {
        feed(file.to_string_lossy().as_bytes());
        feed(&std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
    }
    Ok(format!("{hash:016x} {} files\n", files.len()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let skipped = path
            .file_name()
            .is_some_and(|n| n == "__pycache__" || n.to_string_lossy().starts_with('.'));
        if skipped {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Appends a custom section (id 0: LEB128 size, LEB128 name length, name, data).
fn append_custom_section(bytes: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut payload = Vec::new();
    leb128(&mut payload, name.len() as u64);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    bytes.push(0);
    leb128(bytes, payload.len() as u64);
    bytes.extend_from_slice(&payload);
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_custom_sections_are_encoded_as_the_spec_says() {
        let mut out = Vec::new();
        leb128(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
        let mut bytes = b"\0asm".to_vec();
        append_custom_section(&mut bytes, "ab", b"{}");
        assert_eq!(&bytes[4..], &[0, 5, 2, b'a', b'b', b'{', b'}']);
    }
}
