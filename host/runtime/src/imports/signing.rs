//! `centralino:plugin/signing`: HMAC-SHA256 with secrets that never enter the sandbox.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::bindings::latest::signing::{Host, SigningError};
use crate::state::PluginState;

type HmacSha256 = Hmac<Sha256>;

impl PluginState {
    fn keyed(&self, secret: &str) -> Result<HmacSha256, SigningError> {
        let value = self.grants.secrets.get(secret).ok_or_else(|| {
            SigningError::Denied(format!(
                "secret `{secret}` is not granted to plugin {}",
                self.plugin
            ))
        })?;
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(value.expose())
            .map_err(|e| SigningError::Denied(format!("secret `{secret}` is unusable: {e}")))
    }
}

impl PluginState {
    /// Records a denied signing request before handing the error to the plugin.
    fn reported<T>(&mut self, result: Result<T, SigningError>) -> Result<T, SigningError> {
        if let Err(SigningError::Denied(reason)) = &result {
            self.denied(reason);
        }
        result
    }
}

/// The most `hmac-sha256` signs, in bytes.
const MAX_SIGNED_BYTES: usize = 256;

/// Whether `data` is shaped like a platform's challenge token (X's CRC `crc_token`): 1 to
/// [`MAX_SIGNED_BYTES`] bytes of letters, digits, `+ / = _ . ~ -` and spaces.
///
/// That is all `hmac-sha256` is for. Its answer has the format of a delivery signature
/// (X signs deliveries with the same secret, same MAC), so signing whatever a request
/// brings would let anyone obtain a valid signature for a forged delivery; such a value
/// can never be a delivery (`{`, `[`, `"` and `:` are outside the alphabet). Checking here
/// protects every plugin, not only the ones built on the SDK's reviewed helper.
fn challenge_shaped(data: &[u8]) -> bool {
    !data.is_empty()
        && data.len() <= MAX_SIGNED_BYTES
        && data
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_.~- ".contains(b))
}

impl Host for PluginState {
    fn hmac_sha256(&mut self, secret: String, data: Vec<u8>) -> Result<Vec<u8>, SigningError> {
        let keyed = self.keyed(&secret);
        let mut mac = self.reported(keyed)?;
        if !challenge_shaped(&data) {
            let refused: Result<Vec<u8>, SigningError> = Err(SigningError::Denied(format!(
                "plugin {} asked to sign {} bytes that are not a challenge token with secret \
                 `{secret}`: the host signs only tokens of at most {MAX_SIGNED_BYTES} letters, \
                 digits and `+/=_.~-`, so that no request can obtain a delivery signature",
                self.plugin,
                data.len()
            )));
            return self.reported(refused);
        }
        mac.update(&data);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    fn verify_hmac_sha256(
        &mut self,
        secret: String,
        data: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, SigningError> {
        let keyed = self.keyed(&secret);
        let mut mac = self.reported(keyed)?;
        mac.update(&data);
        // `verify_slice` compares in constant time.
        Ok(mac.verify_slice(&expected).is_ok())
    }

    fn secret_equals(&mut self, secret: String, candidate: String) -> Result<bool, SigningError> {
        let equal = match self.grants.secrets.get(&secret) {
            Some(value) => Ok(constant_time_eq(value.expose(), candidate.as_bytes())),
            None => Err(SigningError::Denied(format!(
                "secret `{secret}` is not granted to plugin {}",
                self.plugin
            ))),
        };
        self.reported(equal)
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::{challenge_shaped, constant_time_eq};

    #[test]
    fn only_challenge_tokens_are_signed() {
        assert!(challenge_shaped(b"test token"));
        assert!(challenge_shaped(
            b"O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0="
        ));
        assert!(challenge_shaped(&[b'a'; 256]));
        assert!(!challenge_shaped(&[b'a'; 257]));
        assert!(!challenge_shaped(b""));
        assert!(!challenge_shaped(br#"{"for_user_id":"1001"}"#));
        assert!(!challenge_shaped(b"[1]"));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"verify-me", b"verify-me"));
        assert!(!constant_time_eq(b"verify-me", b"verify-mf"));
        assert!(!constant_time_eq(b"verify-me", b"verify-me-too"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
