//! The webhook route: Meta's subscription handshake and signed event deliveries.
//!
//! - `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: Meta checks that the
//!   endpoint is ours. The token is compared with the secret named by `verify_token`
//!   inside the host (constant time); a match is answered with the challenge if it is
//!   shaped like one (short, token characters; else 400), anything else with 403.
//! - `POST`: `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the raw body with
//!   the app secret. It is verified over the bytes exactly as received, before parsing; a
//!   missing signature is answered 401, a wrong one 403, and neither produces a message.
//!
//! A verified delivery must be about `page` objects. Its entries are handed to
//! [`crate::messenger`] and [`crate::feed`], which add what they find to a [`Collected`].

use std::collections::HashSet;

use centralino_sdk::conventions;
use centralino_sdk::prelude::*;
use centralino_sdk::signing::{self, Encoding, SignatureHeader};
use centralino_sdk::time;
use serde::{Deserialize, Deserializer};

use crate::config::Settings;
use crate::{feed, messenger};

/// `sha256=` + hex of the HMAC of the raw body.
const SIGNATURE: SignatureHeader = SignatureHeader {
    name: "x-hub-signature-256",
    prefix: "sha256=",
    encoding: Encoding::Hex,
};

/// Answers one request on the connector's webhook route.
pub fn handle(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    match request.method.as_str() {
        "GET" => answer_handshake(settings, request),
        "POST" => receive(settings, request),
        _ => Ok(WebhookOutcome::refuse(
            405,
            "only GET (verification) and POST (events) are served",
        )),
    }
}

/// The subscription handshake: echo `hub.challenge` if the verify token is ours.
fn answer_handshake(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    if request.query_param("hub.mode").as_deref() != Some("subscribe") {
        return Ok(WebhookOutcome::refuse(403, "hub.mode must be subscribe"));
    }
    let Some(token) = request.query_param("hub.verify_token") else {
        return Ok(WebhookOutcome::refuse(403, "missing hub.verify_token"));
    };
    if !signing::secret_equals(&settings.verify_token, &token)? {
        return Ok(WebhookOutcome::refuse(
            403,
            "hub.verify_token does not match",
        ));
    }
    // Echoed only when it looks like Meta's (a short token): the endpoint must not reflect
    // arbitrary content, even to a caller holding the verify token.
    Ok(match request.query_param("hub.challenge") {
        Some(challenge) => match signing::challenge_token(&challenge) {
            Some(challenge) => WebhookOutcome::text(200, challenge),
            None => WebhookOutcome::refuse(
                400,
                "hub.challenge is not a challenge token (at most 256 letters, digits and `+/=_.~-`)",
            ),
        },
        None => WebhookOutcome::refuse(400, "missing hub.challenge"),
    })
}

/// A POST delivery: verify, then parse, then normalise.
fn receive(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    if let Some(refusal) = SIGNATURE.refusal(request, &settings.app_secret)? {
        return Ok(refusal);
    }
    let delivery: Delivery = match request.json() {
        Ok(delivery) => delivery,
        Err(e) => {
            return Ok(WebhookOutcome::malformed(&format!(
                "not a webhook delivery: {e}"
            )));
        }
    };
    if delivery.object.as_deref() != Some("page") {
        return Ok(WebhookOutcome::malformed(&format!(
            "object is {:?}; this connector serves `page` subscriptions",
            delivery.object.unwrap_or_default()
        )));
    }
    let mut collected = Collected::default();
    let now = time::now_ms();
    for entry in delivery.entry.unwrap_or_default() {
        if let Err(reason) = collect_entry(settings, entry, now, &mut collected) {
            return Ok(WebhookOutcome::malformed(&reason));
        }
    }
    Ok(WebhookOutcome::text(200, "EVENT_RECEIVED").with(collected.messages, collected.receipts))
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

/// Messages and receipts found in a delivery so far.
#[derive(Default)]
pub struct Collected {
    messages: Vec<Message>,
    receipts: Vec<Receipt>,
    /// `(account, external id, amendment)` of the messages kept: Meta may repeat an event
    /// within one delivery, and the host should see it once. A message, the customer
    /// editing it and unsending it share their `mid` and may arrive in the same delivery:
    /// each is kept (the amendment is the deletion or edit marker with its value, so two
    /// edits at different times are both kept and the host keeps the later).
    seen: HashSet<Seen>,
}

/// What tells the events of a delivery apart: account, external id, amendment marker.
type Seen = (String, String, Option<(String, String)>);

impl Collected {
    /// Adds a customer message (or a deletion, or an edit) unless the delivery already had
    /// it.
    pub fn message(&mut self, message: Message) {
        let amendment = message
            .extra
            .iter()
            .find(|(key, _)| key == conventions::DELETED || key == conventions::EDITED)
            .cloned();
        let key = (
            message.account.clone(),
            message.external_id.clone(),
            amendment,
        );
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
