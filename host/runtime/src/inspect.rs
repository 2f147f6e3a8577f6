//! Reading a component without compiling or running it: which world it implements,
//! which contract version, which capabilities it asks for, and who it says it is.
//!
//! The host runs these checks before it compiles or instantiates anything, so a
//! component of the wrong world or of a contract version this host does not serve is
//! refused with a one-line reason that names the plugin.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use crate::error::{Error, PluginId};

/// Package of the contract.
pub const CONTRACT_PACKAGE: &str = "centralino:plugin";

/// Contract versions this host binds (newest last). Released versions stay here forever.
pub const SUPPORTED_CONTRACTS: &[semver::Version] = &[
    semver::Version::new(0, 1, 0),
    semver::Version::new(0, 2, 0),
    semver::Version::new(0, 3, 0),
];

/// Custom section that carries the plugin's metadata (see the guest SDK).
pub const METADATA_SECTION: &str = "centralino-plugin";

/// The two worlds of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// A channel connector (exports `connector`).
    Channel,
    /// A routing policy (exports `router`).
    RoutingPolicy,
}

impl World {
    /// The world's name in WIT.
    pub fn name(self) -> &'static str {
        match self {
            World::Channel => "channel",
            World::RoutingPolicy => "routing-policy",
        }
    }

    fn from_export(interface: &str) -> Option<World> {
        match interface {
            "connector" => Some(World::Channel),
            "router" => Some(World::RoutingPolicy),
            _ => None,
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the plugin states about itself in its metadata section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Contract version it was built against.
    pub contract: String,
}

/// Everything `inspect` learns about a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// The plugin's name and version.
    pub plugin: PluginId,
    /// The world it implements.
    pub world: World,
    /// The contract version it was built against.
    pub contract: semver::Version,
    /// Whether this host serves that version.
    pub supported: bool,
    /// Names of everything it exports.
    pub exports: Vec<String>,
    /// Names of everything it imports.
    pub imports: Vec<String>,
    /// Capabilities it asks for: contract imports (`http`, `signing`, `log`, `clock`) and
    /// `wasi` when it imports WASI (served locked down).
    pub capabilities: Vec<String>,
    /// Size in bytes.
    pub size: usize,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// How the connector's platform authorises, when it declares it (the
    /// `centralino-oauth` section; see the host's `accounts` module). `None` for plugins that
    /// declare nothing, which keep loading as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<crate::capabilities::oauth::OAuthDeclaration>,
    /// How long after the customer's last message the platform takes a reply, when the
    /// connector declares it (the `centralino-reply-window` section; see
    /// [`crate::windows`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_window: Option<crate::windows::ReplyWindow>,
    /// Who signed the component and whether the signature still matches the file (the
    /// `centralino-signature` section; see [`super::PluginSignature`]). `None`: unsigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<super::PluginSignature>,
    /// The connector's own rate-limit headers, when it declares them (the
    /// `centralino-rate-limits` section; see [`crate::rate_limits`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<crate::rate_limits::RateLimitDeclaration>,
}

impl Inspection {
    /// Fails unless the contract version is served and, when `expected` is given, the
    /// world matches.
    pub fn ensure_loadable(&self, path: &Path, expected: Option<World>) -> Result<(), Error> {
        if !self.supported {
            return Err(Error::InvalidComponent {
                path: path.to_path_buf(),
                reason: format!(
                    "plugin {} is built against contract {CONTRACT_PACKAGE}@{}, which this host \
                     does not serve (it serves {})",
                    self.plugin,
                    self.contract,
                    supported_list()
                ),
            });
        }
        if let Some(expected) = expected
            && expected != self.world
        {
            return Err(Error::WrongWorld {
                plugin: self.plugin.clone(),
                found: self.world.name().to_string(),
                expected: expected.name().to_string(),
            });
        }
        Ok(())
    }
}

fn supported_list() -> String {
    SUPPORTED_CONTRACTS
        .iter()
        .map(|v| format!("{}.{}.x", v.major, v.minor))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether this host serves contract `version`: same major (and, before 1.0, same minor)
/// as a supported version, and not newer than it.
pub fn serves(version: &semver::Version) -> bool {
    SUPPORTED_CONTRACTS.iter().any(|served| {
        served.major == version.major
            && (served.major > 0 || served.minor == version.minor)
            && (served.major == 0 || version.minor <= served.minor)
    })
}

/// Reads a component file and inspects it.
pub fn inspect_file(path: &Path) -> Result<Inspection, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    inspect(path, &bytes)
}

/// Inspects component bytes; `path` is only used in messages and as a fallback name.
pub fn inspect(path: &Path, bytes: &[u8]) -> Result<Inspection, Error> {
    let invalid = |reason: String| Error::InvalidComponent {
        path: path.to_path_buf(),
        reason,
    };
    if !bytes.starts_with(b"\0asm") {
        return Err(invalid(
            "not a WebAssembly file (no `\\0asm` header)".to_string(),
        ));
    }

    let mut depth = 0usize;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut metadata: Option<Metadata> = None;
    let mut oauth: Option<Result<crate::capabilities::oauth::OAuthDeclaration, String>> = None;
    let mut reply_window: Option<Result<crate::windows::ReplyWindow, String>> = None;
    let mut rate_limits: Option<Result<crate::rate_limits::RateLimitDeclaration, String>> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| invalid(format!("malformed WebAssembly: {e}")))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding == Encoding::Module {
                    return Err(invalid(
                        "a core WebAssembly module, not a component: build the plugin for \
                         `wasm32-wasip2`, or wrap it with `wasm-tools component new`"
                            .to_string(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import =
                        import.map_err(|e| invalid(format!("malformed import section: {e}")))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export =
                        export.map_err(|e| invalid(format!("malformed export section: {e}")))?;
                    exports.push(export.name.name.to_string());
                }
            }
            Payload::CustomSection(section) if section.name() == METADATA_SECTION => {
                let parsed: Metadata = serde_json::from_slice(section.data()).map_err(|e| {
                    invalid(format!(
                        "the `{METADATA_SECTION}` section is not valid metadata JSON: {e}"
                    ))
                })?;
                metadata = Some(parsed);
            }
            Payload::CustomSection(section)
                if section.name() == crate::capabilities::oauth::OAUTH_SECTION =>
            {
                oauth = Some(crate::capabilities::oauth::OAuthDeclaration::parse(
                    section.data(),
                ));
            }
            Payload::CustomSection(section)
                if section.name() == crate::windows::REPLY_WINDOW_SECTION =>
            {
                reply_window = Some(crate::windows::ReplyWindow::parse(section.data()));
            }
            Payload::CustomSection(section)
                if section.name() == crate::rate_limits::RATE_LIMITS_SECTION =>
            {
                rate_limits = Some(crate::rate_limits::RateLimitDeclaration::parse(
                    section.data(),
                ));
            }
            _ => {}
        }
    }

    let fallback_name = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "unnamed".to_string());
    let plugin = match &metadata {
        Some(m) => PluginId {
            name: m.name.clone(),
            version: m.version.clone(),
        },
        None => PluginId {
            name: fallback_name,
            version: "unversioned".to_string(),
        },
    };

    // The world is known by the contract interface it exports.
    let mut found: Option<(World, semver::Version)> = None;
    for export in &exports {
        let Some((interface, version)) = contract_interface(export) else {
            continue;
        };
        let Some(world) = World::from_export(interface) else {
            continue;
        };
        let version = version.ok_or_else(|| {
            invalid(format!(
                "plugin {plugin} exports `{export}` without a contract version"
            ))
        })?;
        if let Some((other, _)) = &found
            && *other != world
        {
            return Err(invalid(format!(
                "plugin {plugin} exports both a connector and a router; a component is one or the other"
            )));
        }
        found = Some((world, version));
    }
    let Some((world, contract)) = found else {
        let listed = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        };
        return Err(invalid(format!(
            "plugin {plugin} is not a centralino plugin: it exports {listed}, but a channel \
             exports `{CONTRACT_PACKAGE}/connector` and a routing policy `{CONTRACT_PACKAGE}/router`"
        )));
    };
    if let Some(m) = &metadata
        && m.contract != contract.to_string()
    {
        return Err(invalid(format!(
            "plugin {plugin} says it was built against contract {} but exports {} {}",
            m.contract, world, contract
        )));
    }

    let oauth = match oauth {
        Some(Ok(declaration)) => Some(declaration),
        Some(Err(reason)) => return Err(invalid(format!("plugin {plugin}: {reason}"))),
        None => None,
    };
    let reply_window = match reply_window {
        Some(Ok(window)) => Some(window),
        Some(Err(reason)) => return Err(invalid(format!("plugin {plugin}: {reason}"))),
        None => None,
    };
    let rate_limits = match rate_limits {
        Some(Ok(declaration)) => Some(declaration),
        Some(Err(reason)) => return Err(invalid(format!("plugin {plugin}: {reason}"))),
        None => None,
    };

    let signature = super::provenance::verify(bytes)
        .map_err(|reason| invalid(format!("plugin {plugin}: {reason}")))?;

    let mut capabilities: Vec<String> = Vec::new();
    for import in &imports {
        let capability = match contract_interface(import) {
            Some((interface, _)) => interface.to_string(),
            None if import.starts_with("wasi:") => "wasi".to_string(),
            None => import.clone(),
        };
        if capability != "types" && !capabilities.contains(&capability) {
            capabilities.push(capability);
        }
    }

    Ok(Inspection {
        supported: serves(&contract),
        plugin,
        world,
        contract,
        exports,
        imports,
        capabilities,
        size: bytes.len(),
        sha256: hex::encode(Sha256::digest(bytes)),
        oauth,
        reply_window,
        signature,
        rate_limits,
    })
}

/// Splits `centralino:plugin/router@0.1.0` into (`router`, Some(0.1.0)).
fn contract_interface(name: &str) -> Option<(&str, Option<semver::Version>)> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    match rest.split_once('@') {
        Some((interface, version)) => Some((interface, semver::Version::parse(version).ok())),
        None => Some((rest, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_each_released_minor_before_one_point_zero() {
        assert!(serves(&semver::Version::new(0, 1, 0)));
        assert!(serves(&semver::Version::new(0, 1, 7)));
        assert!(serves(&semver::Version::new(0, 2, 0)));
        assert!(serves(&semver::Version::new(0, 3, 2)));
        assert!(!serves(&semver::Version::new(0, 4, 0)));
        assert!(!serves(&semver::Version::new(1, 0, 0)));
        assert!(!serves(&semver::Version::new(2, 0, 0)));
    }

    #[test]
    fn splits_contract_interface_names() {
        let (interface, version) = contract_interface("centralino:plugin/router@0.1.0").unwrap();
        assert_eq!(interface, "router");
        assert_eq!(version, Some(semver::Version::new(0, 1, 0)));
        assert!(contract_interface("wasi:io/streams@0.2.6").is_none());
    }

    #[test]
    fn refuses_files_that_are_not_wasm() {
        let err = inspect(Path::new("notes.txt"), b"hello").unwrap_err();
        assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
    }

    #[test]
    fn refuses_core_modules() {
        // The smallest valid core module: header and version only.
        let err = inspect(Path::new("core.wasm"), b"\0asm\x01\0\0\0").unwrap_err();
        assert!(
            err.to_string()
                .contains("core WebAssembly module, not a component"),
            "{err}"
        );
    }
}
