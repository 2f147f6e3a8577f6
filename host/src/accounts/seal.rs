//! Tokens at rest: sealed with ChaCha20-Poly1305 under the host's token key, bound to the
//! account they belong to (the account's key is the associated data, so a sealed token
//! copied to another account's row does not open).
//!
//! The key is given as a reference (`token_key = "env:CENTRALINO_TOKEN_KEY"`): at least 32
//! bytes of random text (`openssl rand -hex 32`), hashed with SHA-256 into the cipher key.
//! Each sealed value records the key's id (the first 8 bytes of a hash of the key, never
//! the key), so a host started with the wrong key says so instead of failing to decrypt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::capabilities::Secret;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Seals and opens tokens with one key.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: ChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("key_id", &self.id).finish()
    }
}

impl Sealer {
    /// A sealer for `key`; refuses a key too short to be random enough.
    pub(crate) fn new(key: &Secret) -> Result<Sealer, String> {
        let bytes = key.expose();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the token key has {} bytes; it needs at least {MIN_KEY_BYTES} bytes of random \
                 text (e.g. `openssl rand -hex 32`)",
                bytes.len()
            ));
        }
        let derived = Sha256::new()
            .chain_update(b"centralino token key v1\0")
            .chain_update(bytes)
            .finalize();
        let id = hex::encode(&Sha256::digest(derived)[..8]);
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&derived)),
            id,
        })
    }

    /// The key's id (safe to show and store).
    pub(crate) fn key_id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` for `context` (the account's key): base64 of nonce ‖ ciphertext.
    pub(crate) fn seal(&self, plain: &[u8], context: &str) -> Result<String, String> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| "sealing a token failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD_NO_PAD.encode(out))
    }

    /// Opens what [`Sealer::seal`] sealed for the same `context`.
    pub(crate) fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, String> {
        let bytes = STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| "a sealed token in the store is not base64".to_string())?;
        if bytes.len() < 12 + 16 {
            return Err("a sealed token in the store is truncated".to_string());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                format!(
                    "a sealed token for `{context}` does not open with the token key {}: \
                     wrong key, or the row was tampered with",
                    self.id
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_for_its_account() {
        let key = Secret::new("0123456789abcdef0123456789abcdef-key-one");
        let other = Secret::new("0123456789abcdef0123456789abcdef-key-two");
        let sealer = Sealer::new(&key).unwrap();
        let sealed = sealer
            .seal(b"planted-token-value", "default/x/1001")
            .unwrap();
        assert!(!sealed.contains("planted"));
        assert_eq!(
            sealer.open(&sealed, "default/x/1001").unwrap(),
            b"planted-token-value"
        );
        assert!(sealer.open(&sealed, "default/x/1002").is_err());
        let wrong = Sealer::new(&other).unwrap();
        assert_ne!(wrong.key_id(), sealer.key_id());
        let err = wrong.open(&sealed, "default/x/1001").unwrap_err();
        assert!(
            err.contains(wrong.key_id()) && !err.contains("planted"),
            "{err}"
        );
        // Two seals of the same token differ (fresh nonce each time).
        assert_ne!(
            sealed,
            sealer
                .seal(b"planted-token-value", "default/x/1001")
                .unwrap()
        );
        assert!(Sealer::new(&Secret::new("short")).is_err());
    }
}
