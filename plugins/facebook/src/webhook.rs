//! The webhook route: Meta's subscription handshake and signed event deliveries.
//!
//! - `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: Meta checks that the
//!   endpoint is ours. The token is compared with the secret named by `verify_token`
//!   inside the host (constant time); a match is answered with the challenge, anything else
//!   with 403.
//! - `POST`: `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the raw body with
//!   the app secret. It is verified over the bytes exactly as received, before parsing; a
//!   missing signature is answered 401, a wrong one 403, and neither produces a message.
//!
//! A verified delivery must be about `page` objects. Its entries are handed to
//! [`crate::messenger`] and [`crate::feed`], which add what they find to a [`Collected`].

use std::collections::HashSet;

use serde::{Deserialize, Deserializer};

use crate::centralino::plugin::types::{Message, PluginError};
use crate::centralino::plugin::{clock, log, signing};
use crate::config::Settings;
use crate::exports::centralino::plugin::connector::{
    Receipt, WebhookOutcome, WebhookRequest, WebhookResponse,
};
use crate::{feed, messenger};

/// Header carrying `sha256=` + hex of the HMAC of the raw body.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Answers one request on the connector's webhook route.
pub fn handle(
    settings: &Settings,
    request: &WebhookRequest,
) -> Result<WebhookOutcome, PluginError> {
    match request.method.as_str() {
        "GET" => answer_handshake(settings, &request.query),
        "POST" => receive(settings, request),
        _ => Ok(respond(
            405,
            "only GET (verification) and POST (events) are served",
        )),
    }
}

/// The subscription handshake: echo `hub.challenge` if the verify token is ours.
fn answer_handshake(settings: &Settings, query: &str) -> Result<WebhookOutcome, PluginError> {
    let param = |wanted: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.into_owned())
    };
    if param("hub.mode").as_deref() != Some("subscribe") {
        return Ok(respond(403, "hub.mode must be subscribe"));
    }
    let Some(token) = param("hub.verify_token") else {
        return Ok(respond(403, "missing hub.verify_token"));
    };
    let matches = signing::secret_equals(&settings.verify_token, &token)
        .map_err(|e| secret_unusable("verify_token", &settings.verify_token, e))?;
    if !matches {
        return Ok(respond(403, "hub.verify_token does not match"));
    }
    match param("hub.challenge") {
        Some(challenge) => Ok(respond(200, &challenge)),
        None => Ok(respond(400, "missing hub.challenge")),
    }
}

/// A POST delivery: verify, then parse, then normalise.
fn receive(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome, PluginError> {
    match check_signature(settings, request)? {
        Signature::Valid => {}
        Signature::Missing => return Ok(respond(401, "missing x-hub-signature-256")),
        Signature::Invalid => return Ok(respond(403, "signature does not match the body")),
    }
    let delivery: Delivery = match serde_json::from_slice(&request.body) {
        Ok(delivery) => delivery,
        Err(e) => return Ok(malformed(&format!("not a webhook delivery: {e}"))),
    };
    if delivery.object.as_deref() != Some("page") {
        return Ok(malformed(&format!(
            "object is {:?}; this connector serves `page` subscriptions",
            delivery.object.unwrap_or_default()
        )));
    }
    let mut collected = Collected::default();
    let now = clock::now_ms();
    for entry in delivery.entry.unwrap_or_default() {
        if let Err(reason) = collect_entry(settings, entry, now, &mut collected) {
            return Ok(malformed(&reason));
        }
    }
    Ok(WebhookOutcome {
        response: text_response(200, "EVENT_RECEIVED"),
        messages: collected.messages,
        receipts: collected.receipts,
    })
}

fn collect_entry(
    settings: &Settings,
    entry: Entry,
    now: u64,
    out: &mut Collected,
) -> Result<(), String> {
    let page = entry.id.map(|id| id.0);
    // Entries carry the time of the batch; events without their own time use it.
    let batch_time = entry.time.map(epoch_ms).unwrap_or(now);
    let messaging = entry
        .messaging
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e, false));
    let standby = entry
        .standby
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e, true));
    for (event, standby) in messaging.chain(standby) {
        messenger::collect(settings, page.as_deref(), event, standby, batch_time, out)?;
    }
    for change in entry.changes.unwrap_or_default() {
        let page = page.as_deref().ok_or("a feed change without its page id")?;
        feed::collect(settings, page, change, batch_time, out)?;
    }
    Ok(())
}

/// What the signature header says about a delivery.
enum Signature {
    Valid,
    Missing,
    Invalid,
}

fn check_signature(
    settings: &Settings,
    request: &WebhookRequest,
) -> Result<Signature, PluginError> {
    let Some((_, value)) = request
        .headers
        .iter()
        .find(|(name, _)| name == SIGNATURE_HEADER)
    else {
        return Ok(Signature::Missing);
    };
    let mac = value
        .trim()
        .strip_prefix("sha256=")
        .and_then(|encoded| hex::decode(encoded).ok());
    let Some(mac) = mac else {
        return Ok(Signature::Invalid);
    };
    match signing::verify_hmac_sha256(&settings.app_secret, &request.body, &mac) {
        Ok(true) => Ok(Signature::Valid),
        Ok(false) => Ok(Signature::Invalid),
        Err(e) => Err(secret_unusable("app_secret", &settings.app_secret, e)),
    }
}

/// The admin named a secret the host does not grant: nothing can be verified until that is
/// fixed, which is the admin's business, not the platform's.
fn secret_unusable(setting: &str, name: &str, error: signing::SigningError) -> PluginError {
    let signing::SigningError::Denied(detail) = error;
    PluginError::InvalidInput(format!(
        "cannot use the secret named by `{setting}` (`{name}`): {detail}"
    ))
}

fn text_response(status: u16, body: &str) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn respond(status: u16, body: &str) -> WebhookOutcome {
    WebhookOutcome {
        response: text_response(status, body),
        messages: Vec::new(),
        receipts: Vec::new(),
    }
}

/// A signed delivery we cannot read: 400, and a log line for the admin.
fn malformed(reason: &str) -> WebhookOutcome {
    log::write(log::Level::Warn, &format!("refused a delivery: {reason}"));
    respond(400, reason)
}

/// Messages and receipts found in a delivery so far.
#[derive(Default)]
pub struct Collected {
    messages: Vec<Message>,
    receipts: Vec<Receipt>,
    /// `(account, external id)` of the messages kept: Meta may repeat an event within one
    /// delivery, and the host should see it once.
    seen: HashSet<(String, String)>,
}

impl Collected {
    /// Adds a customer message unless the delivery already had it.
    pub fn message(&mut self, message: Message) {
        let key = (message.account.clone(), message.external_id.clone());
        if self.seen.insert(key) {
            self.messages.push(message);
        }
    }

    /// Adds a receipt.
    pub fn receipt(&mut self, receipt: Receipt) {
        self.receipts.push(receipt);
    }
}

// ---- the delivery envelope ----

#[derive(Deserialize)]
struct Delivery {
    object: Option<String>,
    entry: Option<Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    id: Option<GraphId>,
    time: Option<u64>,
    messaging: Option<Vec<messenger::Event>>,
    standby: Option<Vec<messenger::Event>>,
    changes: Option<Vec<feed::Change>>,
}

/// A Graph id. Graph writes ids as strings, but some older payloads write numbers; Graph
/// ids fit in 64 bits, so a number converts without loss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphId(pub String);

impl<'de> Deserialize<'de> for GraphId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        Ok(GraphId(match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        }))
    }
}

/// Milliseconds since the epoch from a Graph timestamp, which is in milliseconds for
/// Messenger events but in seconds in some payloads (feed `created_time`, some referrals).
/// Anything below 10^11 is read as seconds: as milliseconds it would be 1973.
pub fn epoch_ms(timestamp: u64) -> u64 {
    if timestamp < 100_000_000_000 {
        timestamp.saturating_mul(1000)
    } else {
        timestamp
    }
}
