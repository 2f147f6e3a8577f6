//! Webhook deliveries: reading the request, and the answers a platform expects.
//!
//! The host hands a connector the request exactly as received (headers in lower case, the
//! raw body that signatures cover) and sends back the [`WebhookOutcome`]'s response only
//! after it has stored the outcome's messages. A request that fails verification is an
//! `Ok` outcome with a 4xx response and no messages, never an error: the platform gets a
//! clear answer and the host logs nothing alarming.

use serde::de::DeserializeOwned;

use crate::Message;
use crate::bindings::channel::exports::centralino::plugin::connector::{
    Receipt, WebhookOutcome, WebhookRequest, WebhookResponse,
};

impl WebhookRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of query parameter `name`, URL-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The body parsed as JSON; the error says why it is not the expected shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
    }
}

impl WebhookOutcome {
    /// `status` with a `text/plain` body and nothing delivered.
    pub fn text(status: u16, body: &str) -> Self {
        WebhookOutcome {
            response: WebhookResponse {
                status,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: body.as_bytes().to_vec(),
            },
            messages: Vec::new(),
            receipts: Vec::new(),
        }
    }

    /// `status` with a JSON body and nothing delivered.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        WebhookOutcome {
            response: WebhookResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            },
            messages: Vec::new(),
            receipts: Vec::new(),
        }
    }

    /// A refusal: `status` and the reason as text (401 unsigned, 403 forged, 405...).
    pub fn refuse(status: u16, reason: &str) -> Self {
        Self::text(status, reason)
    }

    /// A verified delivery that cannot be read: 400, and a warning in the host log.
    pub fn malformed(reason: &str) -> Self {
        crate::log::warn(&format!("refused a delivery: {reason}"));
        Self::text(400, reason)
    }

    /// `200` with an empty body, delivering `messages` and `receipts`.
    pub fn accept(messages: Vec<Message>, receipts: Vec<Receipt>) -> Self {
        WebhookOutcome {
            response: WebhookResponse {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            },
            messages,
            receipts,
        }
    }

    /// This response, delivering `messages` and `receipts`.
    pub fn with(mut self, messages: Vec<Message>, receipts: Vec<Receipt>) -> Self {
        self.messages = messages;
        self.receipts = receipts;
        self
    }
}
