//! Who built a plugin, and whether the file changed since: Ed25519 signatures carried in
//! the component itself.
//!
//! `centralino plugin sign` appends one custom section, `centralino-signature`, at the end
//! of the component:
//!
//! ```json
//! {"signer": "ACME Plugins", "key": "ed25519:<base64 public key>", "signature": "<base64>"}
//! ```
//!
//! The signature covers every byte of the file before that section, so any change to the
//! component (code, metadata, another section) breaks it, and the section travels with the
//! file wherever it is copied. A component stays loadable by hosts that ignore the section
//! (a custom section changes nothing that runs). Signing an already signed file replaces its
//! signature.
//!
//! At load, the [`PluginTrust`] the runtime was built with decides: a signature that does
//! not verify (a tampered file) is always refused; with `require_signed`, an unsigned
//! component, or one signed by a key not among the trusted keys, is refused too, each with
//! its reason.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Name of the custom section that carries a plugin's signature.
pub const SIGNATURE_SECTION: &str = "centralino-signature";

/// The prefix of a public key written as text: `ed25519:<base64 of its 32 bytes>`.
const KEY_PREFIX: &str = "ed25519:";

/// What a component says about who signed it, as inspection found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PluginSignature {
    /// The name the signer gave (free text: trust comes from the key, not the name).
    pub signer: String,
    /// The public key, `ed25519:<base64>`.
    pub key: String,
    /// Whether the signature verifies over the file as it is now. `false`: the file was
    /// changed after it was signed, or the section is forged.
    pub valid: bool,
}

/// Which plugins a runtime loads (see [`sign`](super::sign) and [`SIGNATURE_SECTION`]). Default: any
/// unsigned or validly signed component, no trusted keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginTrust {
    /// Public keys (`ed25519:<base64>`) whose signatures the admin trusts.
    pub trusted_keys: Vec<String>,
    /// Refuse components that are not signed by one of [`trusted_keys`](Self::trusted_keys).
    pub require_signed: bool,
    /// Tenants whose connectors must be signed by a trusted key even where the host as a
    /// whole does not require it.
    pub tenants_requiring_signed: std::collections::BTreeSet<String>,
}

impl PluginTrust {
    /// A policy that trusts `keys` (each `ed25519:<base64>`); fails naming a malformed one.
    pub fn trusting<I, S>(keys: I) -> Result<PluginTrust, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let trusted_keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        for key in &trusted_keys {
            public_key_bytes(key)?;
        }
        Ok(PluginTrust {
            trusted_keys,
            ..PluginTrust::default()
        })
    }

    /// Refuses components not signed by a trusted key.
    pub fn require_signed(mut self, required: bool) -> PluginTrust {
        self.require_signed = required;
        self
    }

    /// Refuses `tenant`'s connectors unless signed by a trusted key.
    pub fn require_signed_for(mut self, tenant: impl Into<String>) -> PluginTrust {
        self.tenants_requiring_signed.insert(tenant.into());
        self
    }

    /// Whether `tenant` may run the component at `path` (the host-wide rules were checked
    /// when it loaded; this adds the tenant's own `require_signed`).
    #[doc(hidden)]
    pub fn check_for_tenant(
        &self,
        tenant: &str,
        path: &Path,
        info: &super::Inspection,
    ) -> Result<(), Error> {
        if self.require_signed || !self.tenants_requiring_signed.contains(tenant) {
            return Ok(());
        }
        let strict = PluginTrust {
            require_signed: true,
            ..self.clone()
        };
        strict
            .check(path, &info.plugin, info.signature.as_ref())
            .map_err(|e| match e {
                Error::InvalidComponent { path, reason } => Error::InvalidComponent {
                    path,
                    reason: format!("{reason} (tenant `{tenant}` requires signed plugins)"),
                },
                other => other,
            })
    }

    /// Whether the component at `path`, signed as `signature`, may load.
    #[doc(hidden)]
    pub fn check(
        &self,
        path: &Path,
        plugin: &crate::error::PluginId,
        signature: Option<&PluginSignature>,
    ) -> Result<(), Error> {
        let refuse = |reason: String| Error::InvalidComponent {
            path: path.to_path_buf(),
            reason: format!("plugin {plugin}: {reason}"),
        };
        match signature {
            Some(signature) if !signature.valid => Err(refuse(format!(
                "its signature (by \"{}\", key {}) does not match the file: the component was \
                 changed after it was signed",
                signature.signer, signature.key
            ))),
            Some(signature) if self.require_signed && !self.trusts(&signature.key) => {
                Err(refuse(format!(
                    "it is signed by \"{}\" with key {}, which is not among the trusted keys \
                     (`[host] trusted_keys`), and this host requires signed plugins",
                    signature.signer, signature.key
                )))
            }
            None if self.require_signed => Err(refuse(
                "it is not signed, and this host requires signed plugins (`[host] \
                 require_signed`): sign it with `centralino plugin sign`"
                    .to_string(),
            )),
            _ => Ok(()),
        }
    }

    fn trusts(&self, key: &str) -> bool {
        self.trusted_keys.iter().any(|trusted| trusted == key)
    }
}

/// A signing key read from a file written by [`generate_key`].
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a key file (base64 of a PKCS#8 Ed25519 key, as [`generate_key`] writes it).
    pub fn from_file(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the signing key {}: {e}", path.display()))?;
        let der = BASE64.decode(text.trim()).map_err(|_| {
            format!(
                "{} is not a signing key written by `centralino plugin keygen` (not base64)",
                path.display()
            )
        })?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| {
            format!(
                "{} is not an Ed25519 signing key in PKCS#8: {e}",
                path.display()
            )
        })?;
        Ok(SigningKey { pair })
    }

    /// The public key, `ed25519:<base64>`, which admins add to `[host] trusted_keys`.
    pub fn public_key(&self) -> String {
        format!(
            "{KEY_PREFIX}{}",
            BASE64.encode(self.pair.public_key().as_ref())
        )
    }
}

/// A new signing key, as the text to keep in a private file (base64 of PKCS#8).
pub fn generate_key() -> Result<String, String> {
    let rng = ring::rand::SystemRandom::new();
    let document = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| "the system's random source failed".to_string())?;
    Ok(BASE64.encode(document.as_ref()))
}

/// `component` signed by `key` in the name of `signer`: any earlier signature removed, the
/// signature section appended.
pub fn sign(component: &[u8], key: &SigningKey, signer: &str) -> Result<Vec<u8>, String> {
    let unsigned = match find(component)? {
        Some(found) => &component[..found.start],
        None => component,
    };
    let signature = key.pair.sign(unsigned);
    let section = serde_json::json!({
        "signer": signer,
        "key": key.public_key(),
        "signature": BASE64.encode(signature.as_ref()),
    })
    .to_string();
    let mut out = unsigned.to_vec();
    append_custom_section(&mut out, SIGNATURE_SECTION, section.as_bytes());
    Ok(out)
}

/// The component's signature and whether it verifies; `None` when it is not signed. A
/// signature section that is not the file's last, or not readable, is an error: a
/// component is either signed as `centralino plugin sign` does it or not at all.
pub fn verify(component: &[u8]) -> Result<Option<PluginSignature>, String> {
    let Some(found) = find(component)? else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        signer: String,
        key: String,
        signature: String,
    }
    let section: Section = serde_json::from_slice(found.data).map_err(|e| {
        format!("the `{SIGNATURE_SECTION}` section is not a signature written by `centralino plugin sign`: {e}")
    })?;
    let public = public_key_bytes(&section.key)?;
    let valid = BASE64
        .decode(section.signature.as_bytes())
        .is_ok_and(|signature| {
            UnparsedPublicKey::new(&ED25519, public)
                .verify(&component[..found.start], &signature)
                .is_ok()
        });
    Ok(Some(PluginSignature {
        signer: section.signer,
        key: section.key,
        valid,
    }))
}

/// The 32 bytes of a public key written `ed25519:<base64>`.
fn public_key_bytes(key: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("`{key}` is not a public key such as `ed25519:<base64 of 32 bytes>`");
    let encoded = key.strip_prefix(KEY_PREFIX).ok_or_else(bad)?;
    let bytes = BASE64.decode(encoded).map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    Ok(bytes)
}

/// Where the signature section is: the offset its header starts at and its data.
struct Found<'a> {
    start: usize,
    data: &'a [u8],
}

/// Finds the signature section, which must be the last section of the component.
fn find(component: &[u8]) -> Result<Option<Found<'_>>, String> {
    let mut found: Option<Found<'_>> = None;
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| format!("malformed WebAssembly: {e}"))?;
        match payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(section)
                if depth == 1 && section.name() == SIGNATURE_SECTION =>
            {
                if found.is_some() {
                    return Err(format!(
                        "the component has two `{SIGNATURE_SECTION}` sections"
                    ));
                }
                // The section's contents run to `range().end`; its header (id byte and
                // size) comes before them.
                // (wasmparser gives offsets as u64.)
                let malformed = || format!("a malformed `{SIGNATURE_SECTION}` section");
                let range = section.range();
                let (Ok(begin), Ok(end)) =
                    (usize::try_from(range.start), usize::try_from(range.end))
                else {
                    return Err(malformed());
                };
                let size = end.checked_sub(begin).ok_or_else(malformed)?;
                let start = begin
                    .checked_sub(1 + leb128_len(size))
                    .ok_or_else(malformed)?;
                if end != component.len() {
                    return Err(format!(
                        "the `{SIGNATURE_SECTION}` section is not the last in the file: \
                         something was added after the component was signed"
                    ));
                }
                found = Some(Found {
                    start,
                    data: section.data(),
                });
            }
            _ => {}
        }
    }
    Ok(found)
}

fn leb128_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn push_leb128(out: &mut Vec<u8>, mut value: usize) {
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

/// Appends a custom section (id 0: a name, then data) at the component's top level.
fn append_custom_section(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut contents = Vec::with_capacity(name.len() + data.len() + 5);
    push_leb128(&mut contents, name.len());
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(data);
    out.push(0);
    push_leb128(out, contents.len());
    out.extend_from_slice(&contents);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_lengths_match_what_is_written() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            usize::MAX >> 8,
        ] {
            let mut out = Vec::new();
            push_leb128(&mut out, value);
            assert_eq!(out.len(), leb128_len(value), "{value}");
        }
    }

    #[test]
    fn malformed_public_keys_are_named() {
        for key in [
            "",
            "ed25519:",
            "rsa:AAAA",
            "ed25519:not base64!",
            "ed25519:AAAA",
        ] {
            let error = PluginTrust::trusting([key]).unwrap_err();
            assert!(error.contains(&format!("`{key}`")), "{error}");
        }
    }
}
