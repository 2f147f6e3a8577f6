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
//!   comment under one of the page's posts, and with field `mention` when a customer names
//!   the page in a post or comment of their own.
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
//! | `api_version` | `v25.0` | Graph API version in request paths (a current one: v19.0 was retired on 21 May 2026, v20.0 ends on 24 September 2026; the host warns 90 days ahead) |
//! | `app_secret` | `app_secret` | NAME of the host-held secret that signs deliveries |
//! | `verify_token` | `verify_token` | NAME of the host-held secret the handshake must echo |
//! | `human_agent` | `false` | `true`: a Messenger reply 24 h to 7 days after the customer's last message goes out with the `HUMAN_AGENT` tag (a person answering); later ones the host refuses before any call |
//!
//! Accounts: `id` is the page id, `credential` the name of the page access token.

mod config;
mod feed;
mod messenger;
mod send;
mod thread;
mod webhook;

use centralino_sdk::prelude::*;
use config::Settings;

/// The connector: its validated settings. Messenger and the page feed push everything by
/// webhook, so it keeps the SDK's answer to `poll` (it does not poll).
struct Facebook(Settings);

impl Connector for Facebook {
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
                Capability::Attachments,
            ],
            max_text_length: send::MESSENGER_MAX_CHARS,
        }
    }

    fn configure(config: Config) -> Result<Self> {
        Settings::from_config(config).map(Facebook)
    }

    fn handle_webhook(&mut self, request: WebhookRequest) -> Result<WebhookOutcome> {
        webhook::handle(&self.0, &request)
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent> {
        send::send(&self.0, &message)
    }
}

centralino_sdk::export_connector!(Facebook);

// Messenger takes a reply for 24 hours after the customer's last message, and for 7 days
// when a person answers with the HUMAN_AGENT tag (setting `human_agent = true`); the host
// refuses a later one before any call.
centralino_sdk::reply_window!(
    r#"{"kinds": ["private-message"], "hours": 24, "extended_hours": 168,
    "extended_setting": "human_agent"}"#
);

// How Facebook authorises pages: Facebook Login (authorization code, the app secret in the
// body), then the host trades the user token for a long-lived one and lists the pages the
// user manages, keeping the page tokens (which do not expire) of the pages this connector
// serves; they go on requests as `?access_token=`. Each page then subscribes the app to its
// webhooks (`subscribed_apps`, idempotent): every Messenger field the connector reads
// (messages and unsends, postbacks, referrals, delivery and read receipts, edits) and the
// feed. A field left out is never sent: Meta delivers only the fields a page subscribed.
// The URLs are unversioned so they follow the app's Graph version; an admin overrides them
// in `[connectors.oauth]`.
centralino_sdk::oauth!(
    r#"{"flow": "authorization-code",
    "authorize_url": "https://www.facebook.com/dialog/oauth",
    "token_url": "https://graph.facebook.com/oauth/access_token",
    "scopes": ["pages_show_list", "pages_messaging", "pages_manage_metadata",
               "pages_read_engagement", "pages_manage_engagement"],
    "scope_separator": ",", "client_auth": "body", "attach": {"query": "access_token"},
    "exchange": {"kind": "facebook-pages", "accounts_url": "https://graph.facebook.com/me/accounts"},
    "subscribe": {"url": "https://graph.facebook.com/{account}/subscribed_apps",
                  "form": {"subscribed_fields": "messages,messaging_postbacks,messaging_referrals,message_deliveries,message_reads,message_edits,standby,feed"}}}"#
);
