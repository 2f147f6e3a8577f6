//! Test guest: a channel connector whose bindings come from `wit/since_v0.2.0`, the frozen
//! copy of the released contract, not from the development head in `wit/`. The host must
//! keep loading it for as long as it serves 0.2.x, as `frozen-v0-1-0` keeps 0.1 honest:
//! with the SDK on a later contract, this is the tree's 0.2 connector.
//!
//! It behaves as `echo-channel` did under 0.2 (same channel, ids, errors and logs), so a
//! test can put it where `echo-channel` stood for 0.2: a webhook body `author: text`
//! becomes one private message for the first configured account (no language: the host
//! detects one); `send` answers with a synthetic id, attachments or not (it declares no
//! `attachments` capability, and sends a reply with some like any other).

wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "channel" });
centralino_sdk::plugin_metadata!(contract = "0.2.0");

use std::sync::Mutex;

use centralino::plugin::types::{MessageKind, Person, PluginError};
use centralino::plugin::{clock, log};
use exports::centralino::plugin::connector::{
    Capability, Config, Description, Guest, Message, OutboundMessage, PollResult, Sent,
    WebhookOutcome, WebhookRequest, WebhookResponse,
};

static ACCOUNTS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SENT: Mutex<u64> = Mutex::new(0);

struct Frozen;

/// FNV-1a: the same delivery always gets the same message id, as a platform's would.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Guest for Frozen {
    fn describe() -> Description {
        Description {
            channel: "echo".to_string(),
            summary: "test channel: plain-text webhooks".to_string(),
            capabilities: vec![Capability::Webhook, Capability::PrivateMessage],
            max_text_length: 280,
        }
    }

    fn configure(config: Config) -> Result<(), PluginError> {
        if config.accounts.is_empty() {
            return Err(PluginError::InvalidInput(
                "echo needs at least one account".into(),
            ));
        }
        let mut accounts = ACCOUNTS
            .lock()
            .map_err(|_| PluginError::Transient("poisoned".into()))?;
        *accounts = config.accounts.into_iter().map(|a| a.id).collect();
        log::write(
            log::Level::Info,
            &format!("configured {} account(s)", accounts.len()),
        );
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
        let body = String::from_utf8(request.body)
            .map_err(|_| PluginError::InvalidInput("body is not UTF-8".into()))?;
        let Some((author, text)) = body.split_once(": ") else {
            return Ok(WebhookOutcome {
                response: WebhookResponse {
                    status: 400,
                    headers: Vec::new(),
                    body: b"expected `author: text`".to_vec(),
                },
                messages: Vec::new(),
                receipts: Vec::new(),
            });
        };
        let account = ACCOUNTS
            .lock()
            .map_err(|_| PluginError::Transient("poisoned".into()))?
            .first()
            .cloned()
            .ok_or_else(|| PluginError::InvalidInput("not configured".into()))?;
        let now = clock::now_ms();
        let message = Message {
            external_id: format!("echo-{:016x}", fnv1a(body.as_bytes())),
            account,
            conversation_key: format!("dm:{author}"),
            author: Person {
                id: author.to_string(),
                handle: Some(author.to_string()),
                display_name: None,
            },
            text: text.to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: now,
            language: None,
            extra: Vec::new(),
        };
        Ok(WebhookOutcome {
            response: WebhookResponse {
                status: 200,
                headers: Vec::new(),
                body: b"ok".to_vec(),
            },
            messages: vec![message],
            receipts: Vec::new(),
        })
    }

    fn send(message: OutboundMessage) -> Result<Sent, PluginError> {
        if message.text.chars().count() > 280 {
            return Err(PluginError::Rejected(
                "text longer than 280 characters".into(),
            ));
        }
        let mut sent = SENT
            .lock()
            .map_err(|_| PluginError::Transient("poisoned".into()))?;
        *sent += 1;
        Ok(Sent {
            external_id: format!("echo-out-{}", *sent),
            sent_at: clock::now_ms(),
        })
    }
}

export!(Frozen);
