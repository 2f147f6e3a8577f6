//! Test guest: a channel connector whose bindings come from `wit/since_v0.1.0`, the frozen
//! copy of the released contract, not from the development head in `wit/`. The host must
//! keep loading it for as long as it serves 0.1.x: that is what "released versions are
//! frozen" buys plugin authors.
//!
//! A webhook body `author: text` becomes one private message for the first account; `send`
//! answers with an id derived from the idempotency key.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "channel" });
centralino_sdk::plugin_metadata!(contract = "0.1.0");

use std::cell::RefCell;

use centralino::plugin::clock;
use centralino::plugin::types::{MessageKind, Person, PluginError};
use exports::centralino::plugin::connector::{
    Capability, Config, Description, Guest, Message, OutboundMessage, PollResult, Sent,
    WebhookOutcome, WebhookRequest, WebhookResponse,
};

thread_local! {
    static ACCOUNT: RefCell<Option<String>> = const { RefCell::new(None) };
}

struct Frozen;

fn response(status: u16, body: &str) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

impl Guest for Frozen {
    fn describe() -> Description {
        Description {
            channel: "frozen".to_string(),
            summary: "test channel built against contract 0.1.0 as released".to_string(),
            capabilities: vec![Capability::Webhook, Capability::PrivateMessage],
            max_text_length: 0,
        }
    }

    fn configure(config: Config) -> Result<(), PluginError> {
        let first = config.accounts.into_iter().next().map(|a| a.id);
        let Some(account) = first else {
            return Err(PluginError::InvalidInput("configure one account".into()));
        };
        ACCOUNT.set(Some(account));
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
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let account = ACCOUNT.with_borrow(Clone::clone);
        let (Some(account), Some((author, text))) = (account, body.split_once(": ")) else {
            return Ok(WebhookOutcome {
                response: response(400, "expected `author: text`"),
                messages: Vec::new(),
                receipts: Vec::new(),
            });
        };
        let message = Message {
            external_id: format!("frozen-{}", body.len()),
            account,
            conversation_key: format!("frozen:{author}"),
            author: Person {
                id: author.to_string(),
                handle: None,
                display_name: None,
            },
            text: text.to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: clock::now_ms(),
            extra: Vec::new(),
        };
        Ok(WebhookOutcome {
            response: response(200, "ok"),
            messages: vec![message],
            receipts: Vec::new(),
        })
    }

    fn send(message: OutboundMessage) -> Result<Sent, PluginError> {
        Ok(Sent {
            external_id: format!("frozen-sent-{}", message.idempotency_key),
            sent_at: clock::now_ms(),
        })
    }
}

export!(Frozen);
