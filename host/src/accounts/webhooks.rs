//! The app-level step some platforms need before an account's subscription: registering
//! the host's webhook URL with the platform, once per app. X's Account Activity API works
//! this way (documented at <https://docs.x.com/x-api/webhooks/introduction>,
//! <https://docs.x.com/x-api/webhooks/quickstart> and
//! <https://docs.x.com/x-api/account-activity/introduction>):
//!
//! 1. `GET https://api.x.com/2/webhooks` with the app-only bearer token lists the app's
//!    webhooks: `{"data": [{"id", "url", "valid", "created_at"}], "meta": …}`;
//! 2. if none has the host's URL, `POST https://api.x.com/2/webhooks` with
//!    `{"url": "<the host's webhook URL>"}` registers it. Before answering, X sends
//!    `GET <url>?crc_token=<token>`, which the twitter connector answers with
//!    `{"response_token": "sha256=<base64 HMAC-SHA256(consumer secret, token)>"}`; the
//!    answer is the new webhook (`id`, `url`, `valid`). A URL already registered is
//!    refused (`DuplicateUrlFailed`), so a host that lost a race lists again;
//! 3. each account then subscribes with its own token:
//!    `POST https://api.x.com/2/account_activity/webhooks/{webhook_id}/subscriptions/all`,
//!    answered `{"data": {"subscribed": true}}`, a repeat included.
//!
//! The webhook's id is found by listing, never stored: a host that restarts, or another
//! host sharing the store, finds the same webhook and registers nothing twice.

use super::*;
use crate::capabilities::oauth::WebhookRegistration;

impl AccountBook {
    /// The platform's id of the app's webhook for the host's URL: remembered, else found
    /// by listing, else registered now.
    pub(super) async fn webhook_id(
        &self,
        id: &(String, String),
        app: &App,
        step: &WebhookRegistration,
    ) -> Result<String, String> {
        if let Some(known) = self.known_webhook(id) {
            return Ok(known);
        }
        // One registration at a time on this host; another host is handled by the
        // platform's refusal of a duplicate URL.
        let _one = self.registering.lock().await;
        if let Some(known) = self.known_webhook(id) {
            return Ok(known);
        }
        let (Some(webhook_url), Some(token)) = (&app.app.webhook_url, &app.app.app_token) else {
            return Err(format!(
                "connector `{}` of tenant `{}` subscribes accounts to the app's webhook, which \
                 needs `webhook_url` (the public URL of this host's `/webhooks/{}`) and \
                 `app_token` (the app's own bearer token) in its `oauth` section; until then \
                 only polling brings its messages",
                id.1, id.0, id.1
            ));
        };
        let url = oauth::endpoint(
            &app.app.endpoints,
            |e| e.webhooks_url.as_ref(),
            Some(&step.url),
        )
        .unwrap_or_default();
        let found = match find(&self.http, &url, token, webhook_url).await? {
            Some(found) => found,
            None => match register(&self.http, &url, token, webhook_url).await {
                Ok(registered) => {
                    tracing::info!(tenant = %id.0, connector = %id.1, webhook = %registered, "webhook registered with the platform");
                    registered
                }
                // Another host may have registered it meanwhile.
                Err(e) => find(&self.http, &url, token, webhook_url).await?.ok_or(e)?,
            },
        };
        if let Ok(mut ids) = self.webhook_ids.lock() {
            ids.insert(id.clone(), found.clone());
        }
        Ok(found)
    }

    fn known_webhook(&self, id: &(String, String)) -> Option<String> {
        self.webhook_ids.lock().ok()?.get(id).cloned()
    }

    /// Forgets the app's webhook id (a subscription with it failed: it may be gone), so
    /// the next subscription lists again.
    pub(super) fn forget_webhook(&self, id: &(String, String)) {
        if let Ok(mut ids) = self.webhook_ids.lock() {
            ids.remove(id);
        }
    }
}

/// A call with the app's bearer token; the status and the JSON answer.
async fn app_call(
    request: reqwest::RequestBuilder,
    token: &Secret,
) -> Result<(u16, serde_json::Value), String> {
    let response = request
        .bearer_auth(oauth::text(token))
        .send()
        .await
        .map_err(|e| oauth::scrubbed(oauth::without_url(&e), &[token]))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| oauth::scrubbed(oauth::without_url(&e), &[token]))?;
    Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
}

/// The id of the app's webhook whose URL is `webhook_url`, if there is one.
async fn find(
    http: &reqwest::Client,
    url: &str,
    token: &Secret,
    webhook_url: &str,
) -> Result<Option<String>, String> {
    let (status, answer) = app_call(http.get(url), token).await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "listing the app's webhooks: {url} answered {status}"
        ));
    }
    Ok(answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["url"].as_str() == Some(webhook_url))
        .and_then(id_of))
}

/// Registers `webhook_url`; the platform checks it (CRC) before it answers.
async fn register(
    http: &reqwest::Client,
    url: &str,
    token: &Secret,
    webhook_url: &str,
) -> Result<String, String> {
    let body = serde_json::json!({ "url": webhook_url }).to_string();
    let request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let (status, answer) = app_call(request, token).await?;
    if !(200..300).contains(&status) {
        // X names the reason (`CrcValidationFailed`, `DuplicateUrlFailed`, …).
        let reason = answer["errors"][0]["code"]
            .as_str()
            .or(answer["title"].as_str())
            .unwrap_or("no reason given");
        return Err(format!(
            "registering the webhook URL {webhook_url}: {url} answered {status} ({reason})"
        ));
    }
    id_of(&answer["data"])
        .or_else(|| id_of(&answer))
        .ok_or_else(|| format!("registering the webhook URL: {url} answered no webhook id"))
}

fn id_of(value: &serde_json::Value) -> Option<String> {
    match &value["id"] {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
