//! Webhook verification with secrets the host holds (`signing` import).
//!
//! Platforms prove a delivery is theirs in one of two ways, and both are checked inside
//! the host, so the app secret never enters the sandbox:
//!
//! - an HMAC-SHA256 of the raw body in a header ([`SignatureHeader`]: X's
//!   `x-twitter-webhooks-signature`, Meta's `x-hub-signature-256`);
//! - a shared token echoed in a header or a query parameter ([`require_secret_header`]:
//!   Telegram's `x-telegram-bot-api-secret-token`; [`secret_equals`] for Meta's
//!   `hub.verify_token`), compared in constant time.
//!
//! A third use is X's CRC challenge, answered with an HMAC of a token the *request*
//! chooses. That answer is a signing oracle unless it is constrained: its format
//! (`sha256=<base64>`) is exactly X's delivery signature, so signing any `crc_token` would
//! let anyone obtain a valid signature for a forged delivery body. [`crc_response_token`]
//! therefore signs only values shaped like the tokens X sends (see [`challenge_token`]),
//! and the SDK offers no generic "HMAC these bytes" helper: a connector has no reviewed way
//! to sign request-controlled data, and should never need one. The host enforces the same
//! shape on every `hmac-sha256` call, for plugins not built on this SDK.
//!
//! A secret the host does not grant is the admin's mistake, not the platform's: it is an
//! `invalid-input` error naming the setting and the secret, so the host reports it instead
//! of answering the platform 403 forever.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::bindings::channel::centralino::plugin::signing::{self, SigningError};
use crate::bindings::channel::exports::centralino::plugin::connector::{
    WebhookOutcome, WebhookRequest,
};
use crate::{PluginError, Result, SecretName};

/// How a signature header encodes the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Lower- or upper-case hex (Meta).
    Hex,
    /// Standard base64 with padding (X).
    Base64,
}

/// What a delivery's signature says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is the HMAC of the body with the secret.
    Valid,
    /// There is no signature.
    Missing,
    /// There is one, and it is not (or not readable).
    Invalid,
}

/// A header carrying `<prefix><encoded HMAC-SHA256 of the raw body>`.
#[derive(Clone, Copy, Debug)]
pub struct SignatureHeader {
    /// Header name, lower case.
    pub name: &'static str,
    /// What precedes the MAC (`sha256=`).
    pub prefix: &'static str,
    /// How the MAC is written.
    pub encoding: Encoding,
}

impl SignatureHeader {
    /// Checks the request's body against its signature, inside the host.
    pub fn verify(&self, request: &WebhookRequest, secret: &SecretName) -> Result<Verdict> {
        let Some(value) = request.header(self.name) else {
            return Ok(Verdict::Missing);
        };
        let encoded = value.trim().strip_prefix(self.prefix);
        let mac = encoded.and_then(|encoded| match self.encoding {
            Encoding::Hex => hex::decode(encoded).ok(),
            Encoding::Base64 => BASE64.decode(encoded).ok(),
        });
        let Some(mac) = mac else {
            return Ok(Verdict::Invalid);
        };
        match signing::verify_hmac_sha256(secret.name(), &request.body, &mac) {
            Ok(true) => Ok(Verdict::Valid),
            Ok(false) => Ok(Verdict::Invalid),
            Err(e) => Err(unusable(secret, e)),
        }
    }

    /// `None` when the signature is valid; otherwise the answer to give: 401 when it is
    /// missing, 403 when it does not match.
    pub fn refusal(
        &self,
        request: &WebhookRequest,
        secret: &SecretName,
    ) -> Result<Option<WebhookOutcome>> {
        Ok(match self.verify(request, secret)? {
            Verdict::Valid => None,
            Verdict::Missing => Some(WebhookOutcome::refuse(
                401,
                &format!("missing {}", self.name),
            )),
            Verdict::Invalid => Some(WebhookOutcome::refuse(
                403,
                "signature does not match the body",
            )),
        })
    }
}

/// The longest challenge token answered, in bytes. X's CRC tokens and Meta's
/// `hub.challenge` values are a few dozen characters.
pub const MAX_CHALLENGE_TOKEN_BYTES: usize = 256;

/// `token` if it is shaped like a platform's challenge token, else `None`.
///
/// Platforms send short random strings: 1 to [`MAX_CHALLENGE_TOKEN_BYTES`] bytes of
/// letters, digits and `+ / = _ . ~ -` (base64 and URL-safe alphabets), and spaces, which
/// is what a `+` of an unescaped base64 token becomes once the query string is decoded.
/// Such a value can never be a delivery a connector accepts: a delivery is a JSON object
/// or array, and `{`, `[`, `"` and `:` are all outside the alphabet. The most it can parse
/// as is a bare number or `true`/`false`/`null`, which no connector takes as a delivery.
pub fn challenge_token(token: &str) -> Option<&str> {
    let shaped = !token.is_empty()
        && token.len() <= MAX_CHALLENGE_TOKEN_BYTES
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_.~- ".contains(&b));
    shaped.then_some(token)
}

/// X's answer to a CRC challenge: `sha256=` + base64 of the HMAC-SHA256 of `token` with
/// the named secret (the consumer secret), or `None` when `token` is not shaped like a
/// challenge token ([`challenge_token`]); the caller then refuses the request (400)
/// without signing anything.
///
/// This is the only signature the SDK computes over request-controlled data, and it is
/// bounded on purpose: its format is the delivery signature's, so an unbounded token would
/// make the CRC endpoint sign forged deliveries for anyone who asks.
pub fn crc_response_token(secret: &SecretName, token: &str) -> Result<Option<String>> {
    let Some(token) = challenge_token(token) else {
        return Ok(None);
    };
    let mac =
        signing::hmac_sha256(secret.name(), token.as_bytes()).map_err(|e| unusable(secret, e))?;
    Ok(Some(format!("sha256={}", BASE64.encode(mac))))
}

/// Whether `candidate` is the named secret, compared in constant time by the host.
pub fn secret_equals(secret: &SecretName, candidate: &str) -> Result<bool> {
    signing::secret_equals(secret.name(), candidate).map_err(|e| unusable(secret, e))
}

/// `None` when header `name` carries the named secret; otherwise 401 (missing) or 403
/// (wrong).
pub fn require_secret_header(
    request: &WebhookRequest,
    name: &str,
    secret: &SecretName,
) -> Result<Option<WebhookOutcome>> {
    let Some(candidate) = request.header(name) else {
        return Ok(Some(WebhookOutcome::refuse(
            401,
            &format!("missing {name}"),
        )));
    };
    Ok(if secret_equals(secret, candidate)? {
        None
    } else {
        Some(WebhookOutcome::refuse(
            403,
            &format!("{name} does not match"),
        ))
    })
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn unusable(secret: &SecretName, error: SigningError) -> PluginError {
    let SigningError::Denied(detail) = error;
    PluginError::invalid_input(format!(
        "cannot use the secret named by `{}` (`{}`): {detail}",
        secret.setting(),
        secret.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHALLENGE_TOKEN_BYTES, challenge_token};

    #[test]
    fn challenge_tokens_are_short_token_strings() {
        for token in [
            "test token",
            "9b4507b3-9040-4669-9ff0-7cc8ff4ad7a0",
            "O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0=",
            "1158201444",
        ] {
            assert_eq!(challenge_token(token), Some(token));
        }
        assert_eq!(
            challenge_token(&"a".repeat(MAX_CHALLENGE_TOKEN_BYTES)).map(str::len),
            Some(MAX_CHALLENGE_TOKEN_BYTES)
        );
    }

    #[test]
    fn a_delivery_body_or_an_oversized_value_is_not_a_challenge_token() {
        for value in [
            "",
            r#"{"for_user_id":"1001","tweet_create_events":[]}"#,
            "[1]",
            "\"quoted\"",
            "<script>alert(1)</script>",
            "line\nbreak",
            "caffè",
        ] {
            assert_eq!(challenge_token(value), None, "{value:?}");
        }
        assert_eq!(
            challenge_token(&"a".repeat(MAX_CHALLENGE_TOKEN_BYTES + 1)),
            None
        );
    }
}
