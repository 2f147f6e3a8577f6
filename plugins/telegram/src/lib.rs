//! `telegram`: the channel connector for the Telegram Bot API, written with the guest SDK
//! only (see `docs/writing-a-channel-plugin.md`).
//!
//! One instance serves every configured bot of a tenant. Updates arrive two ways, and both
//! produce the same messages:
//!
//! - **long polling** ([`api::poll`]): `getUpdates` with `offset`; the cursor is the next
//!   offset (the last `update_id` seen plus one), and asking with it confirms everything
//!   before it, so an update is fetched again only if the host did not store the poll;
//! - **webhooks** ([`updates`]): Telegram POSTs each update to the URL given to
//!   `setWebhook`, with the `secret_token` given there in `X-Telegram-Bot-Api-Secret-Token`;
//!   the host compares it with the secret named by `webhook_secret` (constant time) before
//!   a byte of the body is parsed. Telegram's updates do not say which bot they are for,
//!   so with several bots register one URL per bot, ending in the bot's id
//!   (`…/webhooks/telegram/7001`: the request's path below the connector's route); with a
//!   single bot the bare route serves.
//!
//! Replies go out with `sendMessage` from the bot the host names, threaded under the
//! customer's message with `reply_to_message_id`.
//!
//! # The token
//!
//! The Bot API wants the token in the URL path (`/bot<token>/sendMessage`). The plugin
//! writes the SDK's credential placeholder there (`/bot{credential}/sendMessage`) and names
//! the bot's credential; the host puts the token in, so it never enters the sandbox.
//!
//! # How Telegram data becomes messages
//!
//! - Message ids are unique per chat only, so a message's external id is
//!   `<chat id>:<message id>`; `in-reply-to` uses the same form.
//! - A private chat is a private message; a group message (one that mentions the bot or
//!   answers it, under the bot's privacy mode) is a public post. The thread key is
//!   `tg:<bot id>:<chat id>`.
//! - Media become attachments by kind (`image`, `video`, `audio`, `file`, `sticker`,
//!   `location`, `contact`); a caption is the text. A customer sharing their *own* contact
//!   also gives their phone number as the `extra` `centralino:phone`, which the host keeps
//!   (as a digest) to suggest linking their identities on other channels. File addresses are not given: Telegram's download
//!   URLs contain the token.
//! - Edits, channel posts, callbacks and other update kinds produce nothing, and messages
//!   from bots (the company's own included) are never customer messages.
//!
//! # Settings
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `api_base` | `https://api.telegram.org` | Bot API base URL (an emulator in tests) |
//! | `webhook_secret` | `webhook_secret` | NAME of the host-held secret Telegram echoes in webhooks |
//! | `long_poll_seconds` | `0` | how long `getUpdates` may wait for an update (0 to 50); the connector is busy meanwhile, so keep 0 when it also sends |
//!
//! Accounts: `id` is the bot's numeric id (the part of the token before `:`), `handle` its
//! username, `credential` the name of its token held by the host.

mod api;
mod updates;

use centralino_sdk::prelude::*;
use centralino_sdk::text::is_digits;
use centralino_sdk::{numeric_id, signing};

/// Header carrying the `secret_token` given to `setWebhook`.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The connector's validated configuration.
pub struct Telegram {
    /// Bot API base URL without a trailing `/`.
    api_base: String,
    /// The secret Telegram echoes in webhook deliveries.
    webhook_secret: SecretName,
    /// `getUpdates` timeout, seconds.
    long_poll_seconds: u32,
    /// The bots.
    bots: Accounts,
}

impl Connector for Telegram {
    fn describe() -> Description {
        Description {
            channel: "telegram".to_string(),
            summary: "Telegram Bot API: private and group messages by long polling or \
                      webhook; replies threaded with reply_to_message_id"
                .to_string(),
            capabilities: vec![
                Capability::PrivateMessage,
                Capability::PublicReply,
                Capability::Webhook,
                Capability::Polling,
            ],
            max_text_length: api::MAX_TEXT,
        }
    }

    fn configure(config: Config) -> Result<Self> {
        let settings = Settings::parse(
            "telegram connector",
            config.settings,
            &["api_base", "webhook_secret", "long_poll_seconds"],
        )?;
        let long_poll_seconds =
            settings.parse_or("long_poll_seconds", 0, "a number of seconds (0 to 50)")?;
        if long_poll_seconds > 50 {
            return Err(PluginError::invalid_input(
                "setting `long_poll_seconds` must be at most 50",
            ));
        }
        Ok(Telegram {
            api_base: settings.url_or("api_base", "https://api.telegram.org")?,
            webhook_secret: settings.secret_or("webhook_secret", "webhook_secret")?,
            long_poll_seconds,
            bots: Accounts::parse(
                config.accounts,
                "Telegram bot",
                numeric_id("numeric bot id"),
            )?,
        })
    }

    fn poll(&mut self, account: &str, cursor: Option<&str>) -> Result<PollResult> {
        let bot = self.bots.require(account)?;
        api::poll(self, bot, cursor)
    }

    fn handle_webhook(&mut self, request: WebhookRequest) -> Result<WebhookOutcome> {
        if request.method != "POST" {
            return Ok(WebhookOutcome::refuse(
                405,
                "Telegram delivers updates by POST",
            ));
        }
        if let Some(refusal) =
            signing::require_secret_header(&request, SECRET_HEADER, &self.webhook_secret)?
        {
            return Ok(refusal);
        }
        // `/7001` names the bot; the bare route serves a connector with one bot.
        let named = request.path.trim_matches('/');
        let bot = match (named, self.bots.first()) {
            ("", Some(only)) if self.bots.iter().count() == 1 => only,
            (id, _) if is_digits(id) => match self.bots.get(id) {
                Some(bot) => bot,
                None => return Ok(WebhookOutcome::refuse(404, "no such bot")),
            },
            _ => {
                return Ok(WebhookOutcome::refuse(
                    404,
                    "deliver to the route ending in the bot's id",
                ));
            }
        };
        let update = match updates::Update::read(&request.body) {
            Ok(update) => update,
            Err(e) => return Ok(WebhookOutcome::malformed(&format!("not an update: {e}"))),
        };
        let messages = updates::message(bot, update).into_iter().collect();
        Ok(WebhookOutcome::accept(messages, Vec::new()))
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent> {
        let bot = self.bots.require(&message.account)?;
        api::send(self, bot, &message)
    }
}

centralino_sdk::export_connector!(Telegram);
