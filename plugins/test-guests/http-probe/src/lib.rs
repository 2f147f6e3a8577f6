//! Test guest: exercises the host's `http` import.
//!
//! A webhook body of lines `METHOD URL [CREDENTIAL]` followed by optional `Name: value`
//! header lines makes one request through the host. The webhook response reports what
//! came back: status 200 with body `STATUS\n<response body>`, or status 502 with body
//! `ERROR <variant>: <detail>`. Nothing else: the host's behaviour is what tests assert.

wit_bindgen::generate!({ path: "../../../wit", world: "channel" });
centralino_sdk::plugin_metadata!();
// A platform with headers of its own, which the host learns only from this declaration.
centralino_sdk::rate_limits!(
    r#"{"remaining": "x-quota-left", "reset": "x-quota-reset", "reset_format": "delta-seconds"}"#
);

use centralino::plugin::http::{self, HttpError, Method, Request};
use centralino::plugin::types::PluginError;
use exports::centralino::plugin::connector::{
    Capability, Config, Description, Guest, OutboundMessage, PollResult, Sent, WebhookOutcome,
    WebhookRequest, WebhookResponse,
};

struct Probe;

fn outcome(status: u16, body: String) -> WebhookOutcome {
    WebhookOutcome {
        response: WebhookResponse {
            status,
            headers: Vec::new(),
            body: body.into_bytes(),
        },
        messages: Vec::new(),
        receipts: Vec::new(),
    }
}

impl Guest for Probe {
    fn describe() -> Description {
        Description {
            channel: "probe".to_string(),
            summary: "test channel: one HTTP request per webhook".to_string(),
            capabilities: vec![Capability::Webhook],
            max_text_length: 0,
        }
    }

    fn configure(_config: Config) -> Result<(), PluginError> {
        Ok(())
    }

    fn poll(_account: String, cursor: Option<String>) -> Result<PollResult, PluginError> {
        Ok(PollResult {
            messages: Vec::new(),
            cursor,
            next_poll_after_ms: None,
        })
    }

    fn handle_webhook(request: WebhookRequest) -> Result<WebhookOutcome, PluginError> {
        let text = String::from_utf8_lossy(&request.body).into_owned();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let mut words = first.split_whitespace();
        let method = match words.next() {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some("PUT") => Method::Put,
            Some("DELETE") => Method::Delete,
            other => {
                return Err(PluginError::InvalidInput(format!(
                    "unknown method {other:?}"
                )));
            }
        };
        let url = words.next().unwrap_or_default().to_string();
        let credential = words.next().map(str::to_string);
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let body = matches!(method, Method::Post | Method::Put).then(|| b"{}".to_vec());
        let result = http::fetch(&Request {
            method,
            url,
            headers,
            body,
            credential,
            timeout_ms: None,
        });
        Ok(match result {
            Ok(response) => outcome(
                200,
                format!(
                    "{}\n{}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ),
            ),
            Err(e) => {
                let (variant, detail) = match e {
                    HttpError::Denied(d) => ("denied", d),
                    HttpError::InvalidRequest(d) => ("invalid-request", d),
                    HttpError::Timeout => ("timeout", String::new()),
                    HttpError::Connection(d) => ("connection", d),
                    HttpError::TooLarge(n) => ("too-large", n.to_string()),
                    HttpError::RateLimited(ms) => ("rate-limited", ms.to_string()),
                };
                outcome(502, format!("ERROR {variant}: {detail}"))
            }
        })
    }

    fn send(_message: OutboundMessage) -> Result<Sent, PluginError> {
        Err(PluginError::Rejected("the probe sends nothing".to_string()))
    }
}

export!(Probe);
