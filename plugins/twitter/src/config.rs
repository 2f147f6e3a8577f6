//! Settings and accounts, validated once in `configure` so that every later call can trust
//! them: a mistake in the admin's config surfaces when the connector starts, naming the
//! setting, rather than as a failed reply hours later.

use centralino_sdk::connector::Config;
use centralino_sdk::{Account, Accounts, Result, SecretName, numeric_id};

/// The X API; tests and staging point `api_base` at an emulator.
pub const DEFAULT_API_BASE: &str = "https://api.x.com";

/// Name of the host-held secret that signs webhooks and answers CRC challenges.
pub const DEFAULT_CONSUMER_SECRET: &str = "consumer_secret";

/// An account named in a post: X gives the id and the screen name, one of them at least.
#[derive(Clone, Copy, Debug)]
pub struct Mention<'a> {
    /// User id.
    pub id: Option<&'a str>,
    /// Screen name without `@`.
    pub handle: Option<&'a str>,
}

impl Mention<'_> {
    /// Whether this mention names `account`, by id or, failing that, by handle (screen
    /// names are case-insensitive on X).
    fn names(&self, account: &Account) -> bool {
        match (self.id, self.handle, account.handle.as_deref()) {
            (Some(id), _, _) => id == account.id,
            (None, Some(named), Some(own)) => named.eq_ignore_ascii_case(own),
            _ => false,
        }
    }
}

/// The connector's validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// API base URL without a trailing `/`.
    pub api_base: String,
    /// The consumer-secret secret.
    pub consumer_secret: SecretName,
    /// Accounts in configuration order (the order decides the canonical account): `id` is
    /// the numeric X user id, `credential` names its user token.
    pub accounts: Accounts,
}

impl Settings {
    /// Validates the admin's configuration; unknown settings are refused by name.
    pub fn from_config(config: Config) -> Result<Settings> {
        let settings = centralino_sdk::Settings::parse(
            "twitter connector",
            config.settings,
            &["api_base", "consumer_secret"],
        )?;
        Ok(Settings {
            api_base: settings.url_or("api_base", DEFAULT_API_BASE)?,
            consumer_secret: settings.secret_or("consumer_secret", DEFAULT_CONSUMER_SECRET)?,
            accounts: Accounts::parse(
                config.accounts,
                "X account",
                numeric_id("numeric X user id"),
            )?,
        })
    }

    /// The configured account with this X user id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Whether `user_id` is one of the company's own accounts.
    pub fn is_own(&self, user_id: &str) -> bool {
        self.accounts.contains(user_id)
    }

    /// The one account a post is attributed to, the same for every copy X delivers.
    ///
    /// X delivers a post to each subscribed account it addresses, so the choice may only
    /// depend on the post itself: the account it replies to, if configured (a customer
    /// answering an operator stays with that operator's account); otherwise the first
    /// configured account, in configuration order, that it mentions. Only a post that
    /// addresses none (a quote of the brand's post) falls back to the account it was
    /// delivered for.
    pub fn addressee(
        &self,
        replies_to_user: Option<&str>,
        mentioned: &[Mention<'_>],
        delivered_for: Option<&str>,
    ) -> Option<&Account> {
        replies_to_user
            .and_then(|user| self.account(user))
            .or_else(|| {
                self.accounts
                    .iter()
                    .find(|account| mentioned.iter().any(|m| m.names(account)))
            })
            .or_else(|| delivered_for.and_then(|user| self.account(user)))
    }
}
