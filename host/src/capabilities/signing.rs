//! `centralino:plugin/signing`: HMAC-SHA256 with secrets that never enter the sandbox.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::runtime::bindings::v0_1::signing::{Host, SigningError};
use crate::runtime::state::PluginState;

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

impl Host for PluginState {
    fn hmac_sha256(&mut self, secret: String, data: Vec<u8>) -> Result<Vec<u8>, SigningError> {
        let keyed = self.keyed(&secret);
        let mut mac = self.reported(keyed)?;
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
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"verify-me", b"verify-me"));
        assert!(!constant_time_eq(b"verify-me", b"verify-mf"));
        assert!(!constant_time_eq(b"verify-me", b"verify-me-too"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
