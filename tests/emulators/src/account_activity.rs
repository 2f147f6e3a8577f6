//! X's webhooks and Account Activity subscriptions, as the X emulator serves them:
//!
//! - `GET /2/webhooks` (app-only bearer token): the app's webhooks,
//!   `{"data": [{"id", "url", "valid", "created_at"}], "meta": {"result_count"}}`;
//! - `POST /2/webhooks` (app-only bearer token, `{"url": …}`): registers a webhook after a
//!   real challenge-response check: the emulator calls `GET <url>?crc_token=…` and accepts
//!   only `{"response_token": "sha256=<base64 HMAC-SHA256(consumer secret, crc_token)>"}`.
//!   A URL already registered is refused with `DuplicateUrlFailed`, a failed check with
//!   `CrcValidationFailed`, as X does;
//! - `POST /2/account_activity/webhooks/{webhook_id}/subscriptions/all` (the user's OAuth
//!   token): subscribes the user; a repeat is a no-op answering the same
//!   `{"data": {"subscribed": true}}`;
//! - `GET …/subscriptions/all` (the user's token): `{"data": {"subscribed": bool}}`.
//!
//! Wire formats from <https://docs.x.com/x-api/webhooks/introduction>,
//! <https://docs.x.com/x-api/webhooks/quickstart> and
//! <https://docs.x.com/x-api/account-activity/introduction>.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::webhooks::twitter_crc_response;

/// One registered webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// X's id of the webhook.
    pub id: String,
    /// Its callback URL.
    pub url: String,
}

/// What the emulator keeps of the app's webhooks and subscriptions.
#[derive(Debug, Default)]
pub(crate) struct AccountActivity {
    /// The app-only bearer token; without one every webhook call is refused.
    pub(crate) app_token: Option<String>,
    /// The consumer secret CRC answers are checked against.
    pub(crate) consumer_secret: Option<String>,
    pub(crate) webhooks: Vec<Webhook>,
    /// `(webhook id, user id)`.
    pub(crate) subscriptions: BTreeSet<(String, String)>,
    /// Registrations accepted.
    pub(crate) registrations: u32,
    /// CRC checks made, and how many were answered correctly.
    pub(crate) crc_checks: u32,
    pub(crate) crc_passed: u32,
    /// Subscription calls received (repeats included).
    pub(crate) subscribe_calls: u32,
    next_id: u64,
}

/// An X error answer with one of its documented reasons.
pub(crate) fn refusal(status: u16, reason: &str, detail: &str) -> (u16, Value) {
    (
        status,
        json!({ "errors": [{ "message": detail, "code": reason }], "title": reason,
                "detail": detail, "status": status, "type": "about:blank" }),
    )
}

impl AccountActivity {
    /// Whether `authorization` carries the app-only bearer token.
    pub(crate) fn is_app(&self, authorization: Option<&str>) -> bool {
        let presented = authorization.and_then(|a| a.strip_prefix("Bearer "));
        self.app_token.is_some() && presented == self.app_token.as_deref()
    }

    pub(crate) fn list(&self) -> (u16, Value) {
        let data: Vec<Value> = self
            .webhooks
            .iter()
            .map(|w| {
                json!({ "id": w.id, "url": w.url, "valid": true,
                        "created_at": "2026-12-01T09:00:00.000Z" })
            })
            .collect();
        (
            200,
            json!({ "data": data, "meta": { "result_count": self.webhooks.len() } }),
        )
    }

    /// Checks a registration before the CRC: `Err` with X's answer when it is refused.
    pub(crate) fn precheck(&self, body: &Value) -> Result<String, (u16, Value)> {
        let Some(url) = body["url"]
            .as_str()
            .filter(|u| !u.is_empty() && u.len() <= 200)
        else {
            return Err(refusal(
                400,
                "UrlValidationFailed",
                "The callback URL is missing or too long.",
            ));
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(refusal(
                400,
                "UrlValidationFailed",
                "The callback URL is not a URL.",
            ));
        }
        if self.webhooks.iter().any(|w| w.url == url) {
            return Err(refusal(
                400,
                "DuplicateUrlFailed",
                "A webhook is already registered for this URL.",
            ));
        }
        Ok(url.to_string())
    }

    /// Registers `url` once its CRC check went as `crc_ok` says.
    pub(crate) fn register(&mut self, url: String, crc_ok: bool) -> (u16, Value) {
        self.crc_checks += 1;
        if !crc_ok {
            return refusal(
                400,
                "CrcValidationFailed",
                "The callback URL did not respond correctly to the CRC check.",
            );
        }
        self.crc_passed += 1;
        if let Err(duplicate) = self.precheck(&json!({ "url": url })) {
            return duplicate;
        }
        self.next_id += 1;
        let id = (1_146_654_567_674_912_000u64 + self.next_id).to_string();
        self.webhooks.push(Webhook {
            id: id.clone(),
            url: url.clone(),
        });
        self.registrations += 1;
        (
            200,
            json!({ "data": { "id": id, "url": url, "valid": true,
                              "created_at": "2026-12-01T09:00:00.000Z" } }),
        )
    }

    /// `POST` (subscribe) or `GET` (check) of `user`'s subscription to `webhook`.
    pub(crate) fn subscription(&mut self, method: &str, webhook: &str, user: &str) -> (u16, Value) {
        if !self.webhooks.iter().any(|w| w.id == webhook) {
            return refusal(404, "WebhookIdInvalid", "The webhook_id was not found.");
        }
        let key = (webhook.to_string(), user.to_string());
        if method == "POST" {
            self.subscribe_calls += 1;
            self.subscriptions.insert(key);
            return (200, json!({ "data": { "subscribed": true } }));
        }
        (
            200,
            json!({ "data": { "subscribed": self.subscriptions.contains(&key) } }),
        )
    }
}

/// Asks `url` the CRC question with a fresh `crc_token`, as X does on registration;
/// whether the answer is right for `consumer_secret`.
pub(crate) async fn crc_check(url: &str, consumer_secret: &str, seed: u64) -> bool {
    use sha2::Digest as _;
    let token = hex::encode(sha2::Sha256::digest(format!("crc-{seed}-{url}")));
    let Ok(client) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    else {
        return false;
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let Ok(response) = client
        .get(format!("{url}{separator}crc_token={token}"))
        .send()
        .await
    else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    let Ok(body) = response.bytes().await else {
        return false;
    };
    let Ok(answer) = serde_json::from_slice::<Value>(&body) else {
        return false;
    };
    answer["response_token"].as_str() == Some(&twitter_crc_response(consumer_secret, &token))
}
