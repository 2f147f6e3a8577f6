//! Webhook deliveries as platforms send them, and their signatures.

use base64::Engine as _;
use centralino_runtime::types::WebhookRequest;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `body` with `secret`.
pub fn hmac_sha256(secret: &str, body: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(e) => panic!("HMAC refused a key: {e}"),
    }
}

/// `sha256=` + base64 of the HMAC (X's `x-twitter-webhooks-signature`).
pub fn sha256_base64(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body))
    )
}

/// `sha256=` + hex of the HMAC (Meta's `x-hub-signature-256`).
pub fn sha256_hex(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, body)))
}

/// A JSON `POST` to the connector's route with `headers` (names in lower case).
pub fn post(body: &[u8], headers: &[(&str, &str)]) -> WebhookRequest {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(
        headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: all,
        body: body.to_vec(),
    }
}

/// A `GET` to the connector's route with this raw query (a subscription handshake).
pub fn get(query: &str) -> WebhookRequest {
    WebhookRequest {
        method: "GET".to_string(),
        path: "/".to_string(),
        query: query.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}
