//! Signed outgoing webhooks for CRMs written in any language.
//!
//! Each event is POSTed as JSON ([`super::CrmDelivery`]) with:
//! - `x-centralino-event-id`: the event's stable id (deduplicate on it);
//! - `x-centralino-timestamp`: Unix seconds when it was sent;
//! - `x-centralino-signature`: `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"` with the
//!   shared secret. A receiver checks it and rejects timestamps outside its replay window.
//!
//! A 2xx answer counts as delivered; anything else (or no answer) is retried with backoff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{BoxFuture, Crm, CrmDelivery};
use crate::capabilities::Secret;

/// Delivers events to a CRM's HTTP endpoint.
#[derive(Debug)]
pub struct WebhookCrm {
    url: String,
    secret: Secret,
    client: reqwest::Client,
}

impl WebhookCrm {
    /// Delivers to `url`, signing with `secret`.
    pub fn new(url: impl Into<String>, secret: Secret) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(WebhookCrm {
            url: url.into(),
            secret,
            client,
        })
    }
}

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    match Hmac::<Sha256>::new_from_slice(secret.expose()) {
        Ok(mut mac) => {
            mac.update(&signed);
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC accepts keys of any length.
        Err(_) => String::new(),
    }
}

impl Crm for WebhookCrm {
    fn deliver<'a>(&'a self, delivery: &'a CrmDelivery) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let body = serde_json::to_vec(delivery)?;
            let timestamp = crate::clock::now_ms() / 1000;
            let response = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-centralino-event-id", &delivery.id)
                .header("x-centralino-timestamp", timestamp.to_string())
                .header(
                    "x-centralino-signature",
                    sign(&self.secret, timestamp, &body),
                )
                .body(body)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("CRM webhook {}: {}", self.url, e.without_url()))?;
            let status = response.status();
            anyhow::ensure!(
                status.is_success(),
                "CRM webhook {} answered {status}",
                self.url
            );
            Ok(())
        })
    }
}
