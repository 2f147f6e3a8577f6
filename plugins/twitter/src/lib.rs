//! `twitter`: the channel connector for X (formerly Twitter), API v2.
//!
//! One instance serves every configured X account of a tenant: the brand accounts and the
//! operators' own accounts. Customer messages arrive two ways, and both produce the same
//! messages, so a deployment may use either or both:
//!
//! - **polling** ([`api::poll`]): `GET /2/users/:id/mentions` since the newest mention seen
//!   and `GET /2/dm_events` back to the newest DM seen; the cursor carries both ids;
//! - **Account Activity webhooks** ([`webhook::handle`]): the CRC challenge (GET) is
//!   answered with an HMAC of its token, and every POST is checked against
//!   `x-twitter-webhooks-signature` before a byte of it is parsed.
//!
//! Replies leave from the account the host names ([`api::send`]): a threaded public reply
//! (`POST /2/tweets`) or a DM (`POST /2/dm_conversations/with/:id/messages`). A reply's
//! images are uploaded first (`POST /2/media/upload`, `media_category` `tweet_image` or
//! `dm_image`) and named by their ids: up to four on a post (`media.media_ids`), one on
//! a DM (`attachments[].media_id`). The plugin
//! names that account's credential and the host attaches the token, so no token and no
//! secret ever enters the sandbox.
//!
//! # How X data becomes messages
//!
//! - A post's thread key is `tweet:<root id>`: the post's `conversation_id` (the id of the
//!   post that started the thread) when X sends it, which API v2 always does. Account
//!   Activity deliveries use the v1.1 shapes without `conversation_id`; there a post that
//!   answers nothing is its own root (the same key v2 would give), and a reply is keyed by
//!   the post it answers, which is the nearest root the delivery names. The host joins such
//!   a reply to the conversation that holds its parent through `in-reply-to`; the webhook
//!   path does not call X to walk the chain, so it stays fast and cannot fail on a lookup.
//! - A DM's thread key is `dm:<account id>:<customer id>`.
//! - Anything written by a configured account is the company's own (an echo of a reply,
//!   an operator's post): it is dropped, never a customer message.
//! - A post that addresses several configured accounts (a mention of `@TIM_Official` and
//!   `@TIM_Marco`) reaches every one of them, by webhook and by polling. Each copy is
//!   attributed to one canonical account (see [`config::Settings::addressee`]), so every
//!   copy carries the same `(account, external-id)` deduplication key and the host keeps one.
//! - Ids are always the string forms (`id_str`, `id` in v2): X ids overflow the 53-bit
//!   integers of JSON parsers in other languages, and the numeric `id` of v1.1 payloads is
//!   sometimes already wrong on the wire.
//! - Text is the full text (`extended_tweet.full_text` of a truncated post, `note_tweet`
//!   of a long v2 post) with X's HTML entities unescaped.
//! - A polled post whose author X leaves out (no `author_id`) is still a customer message:
//!   its `author.id` is empty and `extra` says `author_unknown = true`, so the CRM can look
//!   the author up from the post id (a warn line names the post). A polled DM without
//!   `sender_id` cannot be answered or told apart from the account's own, so it is no
//!   message: a warn line names it and the DM cursor stays before it, so it is fetched
//!   again rather than passed over. (A webhook post without `user` is refused with 400.)
//! - Times are X's (`created_at`, `timestamp_ms`, `created_timestamp`); when X leaves them
//!   out, the time encoded in the snowflake id (`(id >> 22) + 1288834974657` ms), never
//!   the host's clock unless the id is no snowflake.
//! - An edited post is the customer's edit of the original (the SDK's
//!   [`conventions::edit`](centralino_sdk::conventions::edit)): X gives each edit a new id
//!   and lists the chain, original first (`edit_history_tweet_ids` in v2, `edit_history` in
//!   Account Activity), so the message keeps the original's id (what the host stored and
//!   what replies thread under), reads as the latest version, is edited at that version's
//!   time, and names that version's id (`extra` `centralino:version`). The host replaces
//!   its stored text (if it never stored the original, it stores the post as it reads
//!   now) and knows the message by the version's id too: deleting any version deletes the
//!   whole chain on X, and a `tweet_delete_events` entry naming any of the versions it was
//!   told of empties the message. X lets only posts that answer no one else's be edited,
//!   so a reply in a company thread never is.
//! - A DM answering the company's quick reply keeps the picked option's `metadata` in
//!   `extra` as `quick_reply_metadata` (its label is the text).
//!
//! # Settings
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `api_base` | `https://api.x.com` | X API base URL (an emulator in tests) |
//! | `consumer_secret` | `consumer_secret` | NAME of the host-held secret that signs webhooks |
//!
//! Accounts: `id` is the numeric X user id, `handle` the screen name, `credential` the
//! name of the account's OAuth 2.0 user token held by the host: a static token, or one
//! the host obtains and refreshes itself (`credential = "connected"`, see the `oauth!`
//! declaration at the end of this file).

mod api;
mod config;
mod normalise;
mod webhook;

use centralino_sdk::prelude::*;
use config::Settings;

/// The connector: its validated settings.
struct Twitter(Settings);

impl Connector for Twitter {
    fn describe() -> Description {
        Description {
            channel: "twitter".to_string(),
            summary: "X (Twitter) API v2: mentions and DMs by polling or Account Activity \
                      webhooks; threaded replies and DMs from each operator's own account"
                .to_string(),
            capabilities: vec![
                Capability::PublicReply,
                Capability::PrivateMessage,
                Capability::Webhook,
                Capability::Polling,
                Capability::Attachments,
            ],
            max_text_length: api::POST_MAX_CHARS,
        }
    }

    fn configure(config: Config) -> Result<Self> {
        Settings::from_config(config).map(Twitter)
    }

    fn poll(&mut self, account: &str, cursor: Option<&str>) -> Result<PollResult> {
        api::poll(&self.0, account, cursor)
    }

    fn handle_webhook(&mut self, request: WebhookRequest) -> Result<WebhookOutcome> {
        webhook::handle(&self.0, &request)
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent> {
        api::send(&self.0, &message)
    }
}

centralino_sdk::export_connector!(Twitter);

// How X authorises (OAuth 2.0 authorization code with PKCE): the host connects the
// operators' accounts, refreshes their two-hour tokens with the single-use refresh tokens
// `offline.access` brings, and attaches them as bearer tokens. `identity_url` tells the
// host which account a login is, so an operator who logs in as someone else is refused.
// Webhooks (X's Account Activity API): the host registers its webhook URL once per app
// (`POST /2/webhooks` with the app's bearer token; X checks it with a CRC, which
// `webhook::handle` answers), then subscribes each connected account with its own token
// (`POST /2/account_activity/webhooks/{webhook_id}/subscriptions/all`). See
// https://docs.x.com/x-api/webhooks/introduction and
// https://docs.x.com/x-api/account-activity/introduction.
centralino_sdk::oauth!(
    r#"{"flow": "authorization-code", "pkce": true,
    "authorize_url": "https://x.com/i/oauth2/authorize",
    "token_url": "https://api.x.com/2/oauth2/token",
    "revoke_url": "https://api.x.com/2/oauth2/revoke",
    "identity_url": "https://api.x.com/2/users/me", "identity_id": "/data/id",
    "scopes": ["tweet.read", "tweet.write", "users.read", "dm.read", "dm.write", "offline.access"],
    "client_auth": "basic", "attach": "bearer", "refresh": true, "rotating_refresh": true,
    "subscribe": {"webhook": {"url": "https://api.x.com/2/webhooks"},
                  "url": "https://api.x.com/2/account_activity/webhooks/{webhook}/subscriptions/all"}}"#
);
