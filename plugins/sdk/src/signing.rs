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

/// HMAC-SHA256 of `data` with the named secret (X's CRC challenge).
pub fn hmac_sha256(secret: &SecretName, data: &[u8]) -> Result<Vec<u8>> {
    signing::hmac_sha256(secret.name(), data).map_err(|e| unusable(secret, e))
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
