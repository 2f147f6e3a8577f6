//! Settings and accounts, validated once in `configure` so that every later call can trust
//! them: a mistake in the admin's config surfaces when the connector starts, naming the
//! setting, rather than as a failed reply hours later.

use crate::centralino::plugin::types::PluginError;
use crate::exports::centralino::plugin::connector::Config;

/// The X API; tests and staging point `api_base` at an emulator.
pub const DEFAULT_API_BASE: &str = "https://api.x.com";

/// Name of the host-held secret that signs webhooks and answers CRC challenges.
pub const DEFAULT_CONSUMER_SECRET: &str = "consumer_secret";

/// One X account the connector serves.
#[derive(Debug)]
pub struct Account {
    /// Numeric X user id, as a string.
    pub id: String,
    /// Screen name without `@`.
    pub handle: Option<String>,
    /// Name of the account's user token, attached by the host.
    pub credential: Option<String>,
}

/// An account named in a post: X gives the id and the screen name, one of them at least.
#[derive(Clone, Copy, Debug)]
pub struct Mention<'a> {
    /// User id.
    pub id: Option<&'a str>,
    /// Screen name without `@`.
    pub handle: Option<&'a str>,
}

impl Account {
    /// Whether `mention` names this account, by id or, failing that, by handle (screen
    /// names are case-insensitive on X).
    fn is_mentioned(&self, mention: &Mention<'_>) -> bool {
        match (mention.id, mention.handle, self.handle.as_deref()) {
            (Some(id), _, _) => id == self.id,
            (None, Some(named), Some(own)) => named.eq_ignore_ascii_case(own),
            _ => false,
        }
    }

    /// The credential to name in requests made for this account.
    pub fn credential(&self) -> Result<&str, PluginError> {
        self.credential.as_deref().ok_or_else(|| {
            PluginError::InvalidInput(format!(
                "account `{}` has no credential: configure its user token",
                self.id
            ))
        })
    }
}

/// The connector's validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// API base URL without a trailing `/`.
    pub api_base: String,
    /// Name of the consumer-secret secret.
    pub consumer_secret: String,
    /// Accounts in configuration order (the order decides the canonical account).
    pub accounts: Vec<Account>,
}

impl Settings {
    /// Validates the admin's configuration. Unknown settings are refused by name, so a typo
    /// (`api-base`) cannot silently fall back to a default.
    pub fn from_config(config: Config) -> Result<Settings, PluginError> {
        let mut api_base = None;
        let mut consumer_secret = None;
        for (key, value) in config.settings {
            let slot = match key.as_str() {
                "api_base" => &mut api_base,
                "consumer_secret" => &mut consumer_secret,
                _ => {
                    return Err(invalid(format!(
                        "unknown setting `{key}` (the twitter connector knows `api_base` and \
                         `consumer_secret`)"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!("setting `{key}` is given twice")));
            }
        }
        let api_base = match api_base {
            Some(value) => base_url("api_base", &value)?,
            None => DEFAULT_API_BASE.to_string(),
        };
        let consumer_secret = consumer_secret.unwrap_or_else(|| DEFAULT_CONSUMER_SECRET.into());
        if consumer_secret.trim().is_empty() {
            return Err(invalid(
                "setting `consumer_secret` must name a secret".into(),
            ));
        }

        let mut accounts: Vec<Account> = Vec::new();
        for account in config.accounts {
            let id = account.id;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!(
                    "account `{id}`: the id must be the numeric X user id"
                )));
            }
            if accounts.iter().any(|known| known.id == id) {
                return Err(invalid(format!("account `{id}` is configured twice")));
            }
            if let Some((key, _)) = account.settings.first() {
                return Err(invalid(format!(
                    "account `{id}`: unknown setting `{key}` (X accounts take no settings)"
                )));
            }
            let handle = account
                .handle
                .map(|h| h.trim().trim_start_matches('@').to_string())
                .filter(|h| !h.is_empty());
            accounts.push(Account {
                id,
                handle,
                credential: account.credential,
            });
        }
        if accounts.is_empty() {
            return Err(invalid("configure at least one X account".into()));
        }
        Ok(Settings {
            api_base,
            consumer_secret,
            accounts,
        })
    }

    /// The configured account with this X user id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|account| account.id == id)
    }

    /// The configured account with this id, or `invalid-input` naming it.
    pub fn require_account(&self, id: &str) -> Result<&Account, PluginError> {
        self.account(id)
            .ok_or_else(|| invalid(format!("account `{id}` is not configured")))
    }

    /// Whether `user_id` is one of the company's own accounts.
    pub fn is_own(&self, user_id: &str) -> bool {
        self.account(user_id).is_some()
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
                    .find(|account| mentioned.iter().any(|m| account.is_mentioned(m)))
            })
            .or_else(|| delivered_for.and_then(|user| self.account(user)))
    }
}

/// Checks an http(s) base URL and drops its trailing `/`.
fn base_url(key: &str, value: &str) -> Result<String, PluginError> {
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => Ok(trimmed.into()),
        _ => Err(invalid(format!(
            "setting `{key}` must be an http(s) URL without query, got `{value}`"
        ))),
    }
}

fn invalid(detail: String) -> PluginError {
    PluginError::InvalidInput(detail)
}
