//! `facebook`: the channel connector for Facebook Pages, through the Messenger Platform
//! and the page feed.
//!
//! Everything arrives by webhook ([`webhook::handle`]): Meta verifies the subscription
//! with a `GET` handshake, then POSTs events signed with the app secret
//! (`X-Hub-Signature-256`), which is checked over the raw bytes before anything is parsed.
//! One delivery may carry several pages' entries:
//!
//! - `entry[].messaging` (and `entry[].standby`, when another app holds the thread)
//!   become private messages ([`messenger`]): text, attachments, postbacks, quick replies,
//!   referrals. Echoes of what the page sent are dropped; delivery and read reports become
//!   receipts.
//! - `entry[].changes` with field `feed` become comments ([`feed`]) when a customer adds a
//!   comment under one of the page's posts.
//!
//! Replies go out through the Graph API from the page the host names ([`send`]): a
//! Messenger message, a public reply under a comment, or a private reply to a comment.
//! The plugin names the page's credential; the host attaches it as `access_token`.
//!
//! Thread keys are `fb:<page id>:<psid>` for Messenger and
//! `fb:<page id>:comment:<top-level comment id>` for comments ([`thread`]).
//!
//! # Settings
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `graph_base` | `https://graph.facebook.com` | Graph API base URL (an emulator in tests) |
//! | `api_version` | `v19.0` | Graph API version in request paths |
//! | `app_secret` | `app_secret` | NAME of the host-held secret that signs deliveries |
//! | `verify_token` | `verify_token` | NAME of the host-held secret the handshake must echo |
//!
//! Accounts: `id` is the page id, `credential` the name of the page access token.

wit_bindgen::generate!({ path: "../../wit", world: "channel" });
centralino_sdk::plugin_metadata!();

mod config;
mod feed;
mod messenger;
mod send;
mod thread;
mod webhook;

use std::cell::RefCell;
use std::rc::Rc;

use centralino::plugin::types::PluginError;
use config::Settings;
use exports::centralino::plugin::connector::{
    Capability, Config, Description, Guest, OutboundMessage, PollResult, Sent, WebhookOutcome,
    WebhookRequest,
};

thread_local! {
    /// The settings `configure` accepted; every other call reads them.
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// The configured settings, or `invalid-input` when the host has not configured us yet.
fn settings() -> Result<Rc<Settings>, PluginError> {
    SETTINGS
        .with_borrow(Clone::clone)
        .ok_or_else(|| PluginError::InvalidInput("the facebook connector is not configured".into()))
}

struct Facebook;

impl Guest for Facebook {
    fn describe() -> Description {
        Description {
            channel: "facebook".to_string(),
            summary: "Facebook Pages: Messenger conversations and page-feed comments by \
                      webhook; Messenger replies, comment replies and private replies"
                .to_string(),
            capabilities: vec![
                Capability::PrivateMessage,
                Capability::CommentReply,
                Capability::Webhook,
            ],
            max_text_length: send::MESSENGER_MAX_CHARS,
        }
    }

    fn configure(config: Config) -> Result<(), PluginError> {
        let settings = Settings::from_config(config)?;
        SETTINGS.set(Some(Rc::new(settings)));
        Ok(())
    }

    /// Messenger and the page feed push everything by webhook; there is nothing to poll.
    fn poll(_account: String, _cursor: Option<String>) -> Result<PollResult, PluginError> {
        Err(PluginError::InvalidInput(
            "the facebook connector receives by webhook only; it does not poll".into(),
        ))
    }

    fn handle_webhook(request: WebhookRequest) -> Result<WebhookOutcome, PluginError> {
        let settings = settings()?;
        webhook::handle(&settings, &request)
    }

    fn send(message: OutboundMessage) -> Result<Sent, PluginError> {
        let settings = settings()?;
        send::send(&settings, &message)
    }
}

export!(Facebook);
