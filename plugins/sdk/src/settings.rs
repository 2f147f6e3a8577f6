//! Settings and accounts from the admin's config, validated once in `configure`.
//!
//! A mistake in the admin's config should surface when the connector starts, naming the
//! setting, not as a failed reply hours later. So: every key a plugin knows is declared up
//! front and anything else is refused by name (a typo like `api-base` never falls back to
//! a default silently), a key given twice is refused, and values are checked as they are
//! read.

use crate::bindings::channel::exports::centralino::plugin::connector;
use crate::{PluginError, Result};

/// A plugin's settings: `name = value` pairs with a declared set of known keys.
///
/// There is nothing to close or finish: [`Settings::parse`] refuses unknown and repeated
/// keys at once, and each getter checks its value as it reads it.
///
/// ```
/// use centralino_sdk::Settings;
///
/// // In `configure`, the pairs are `config.settings`.
/// let pairs = vec![("api_base".to_string(), "https://api.x.com/".to_string())];
/// let settings = Settings::parse("twitter connector", pairs, &["api_base", "consumer_secret"])?;
/// assert_eq!(settings.url_or("api_base", "https://api.example.com")?, "https://api.x.com");
/// let consumer_secret = settings.secret_or("consumer_secret", "consumer_secret")?;
/// assert_eq!(consumer_secret.name(), "consumer_secret");
///
/// // A typo is refused by name instead of falling back to a default.
/// let typo = vec![("api-base".to_string(), "https://api.x.com".to_string())];
/// assert!(Settings::parse("twitter connector", typo, &["api_base"]).is_err());
/// # Ok::<(), centralino_sdk::PluginError>(())
/// ```
#[derive(Debug)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Checks `pairs` against the `known` keys. `plugin` names the plugin in messages
    /// (`"twitter connector"`).
    pub fn parse(plugin: &str, pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self> {
        for (index, (key, _)) in pairs.iter().enumerate() {
            if !known.contains(&key.as_str()) {
                let knows = if known.is_empty() {
                    "takes no settings".to_string()
                } else {
                    format!("knows {}", list(known))
                };
                return Err(PluginError::invalid_input(format!(
                    "unknown setting `{key}` (the {plugin} {knows})"
                )));
            }
            if pairs[..index].iter().any(|(earlier, _)| earlier == key) {
                return Err(PluginError::invalid_input(format!(
                    "setting `{key}` is given twice"
                )));
            }
        }
        Ok(Settings { pairs })
    }

    /// The value of `key`, if the admin set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// An `http(s)://` base URL without query or fragment, trailing `/` dropped.
    pub fn url_or(&self, key: &str, default: &str) -> Result<String> {
        let value = self.get(key).unwrap_or(default);
        let trimmed = value.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => {
                Ok(trimmed.to_string())
            }
            _ => Err(PluginError::invalid_input(format!(
                "setting `{key}` must be an http(s) URL without query, got `{value}`"
            ))),
        }
    }

    /// The NAME of a host-held secret (the plugin never sees its value).
    pub fn secret_or(&self, key: &str, default: &str) -> Result<SecretName> {
        let name = self.get(key).unwrap_or(default);
        if name.trim().is_empty() {
            return Err(PluginError::invalid_input(format!(
                "setting `{key}` must name a secret"
            )));
        }
        Ok(SecretName {
            setting: key.to_string(),
            name: name.to_string(),
        })
    }

    /// A value parsed with [`str::parse`], or `default`; `what` says what was expected.
    pub fn parse_or<T: core::str::FromStr>(&self, key: &str, default: T, what: &str) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| {
                PluginError::invalid_input(format!("setting `{key}` must be {what}, got `{value}`"))
            }),
        }
    }
}

/// `a`, `a` and `b`, `a`, `b` and `c` (each in backticks).
fn list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The name of a secret held by the host, and the setting that named it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretName {
    setting: String,
    name: String,
}

impl SecretName {
    /// A secret named directly, not through a setting.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        SecretName {
            setting: name.clone(),
            name,
        }
    }

    /// The secret's name, as the host knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The setting that named it.
    pub fn setting(&self) -> &str {
        &self.setting
    }
}

/// One account a connector serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Id the host and the CRM use (platform user id, page id, bot id).
    pub id: String,
    /// Public handle without a leading `@`, if configured.
    pub handle: Option<String>,
    /// Name of the credential the host attaches to this account's requests.
    pub credential: Option<String>,
}

impl Account {
    /// The credential to name in requests made for this account.
    pub fn credential(&self) -> Result<&str> {
        self.credential.as_deref().ok_or_else(|| {
            PluginError::invalid_input(format!(
                "account `{}` has no credential: name the credential the host holds for it",
                self.id
            ))
        })
    }
}

/// The accounts of a connector, in configuration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    list: Vec<Account>,
}

impl Accounts {
    /// Validates the configured accounts: at least one, no id twice, no account settings,
    /// and every id accepted by `check_id` (which says what an id must be).
    ///
    /// `noun` names an account in messages (`"X account"`).
    pub fn parse(
        accounts: Vec<connector::Account>,
        noun: &str,
        check_id: impl Fn(&str) -> core::result::Result<(), String>,
    ) -> Result<Self> {
        let mut list: Vec<Account> = Vec::new();
        for account in accounts {
            let id = account.id;
            check_id(&id).map_err(|reason| {
                PluginError::invalid_input(format!("account `{id}`: {reason}"))
            })?;
            if list.iter().any(|known| known.id == id) {
                return Err(PluginError::invalid_input(format!(
                    "account `{id}` is configured twice"
                )));
            }
            if let Some((key, _)) = account.settings.first() {
                return Err(PluginError::invalid_input(format!(
                    "account `{id}`: unknown setting `{key}` ({noun}s take no settings)"
                )));
            }
            let handle = account
                .handle
                .map(|h| h.trim().trim_start_matches('@').to_string())
                .filter(|h| !h.is_empty());
            list.push(Account {
                id,
                handle,
                credential: account.credential,
            });
        }
        if list.is_empty() {
            return Err(PluginError::invalid_input(format!(
                "configure at least one {noun}"
            )));
        }
        Ok(Accounts { list })
    }

    /// The account with this id.
    pub fn get(&self, id: &str) -> Option<&Account> {
        self.list.iter().find(|account| account.id == id)
    }

    /// The account with this id, or `invalid-input` naming it.
    pub fn require(&self, id: &str) -> Result<&Account> {
        self.get(id)
            .ok_or_else(|| PluginError::invalid_input(format!("account `{id}` is not configured")))
    }

    /// Whether `id` is one of the configured accounts (the company's own).
    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// The accounts in configuration order.
    pub fn iter(&self) -> core::slice::Iter<'_, Account> {
        self.list.iter()
    }

    /// The first configured account.
    pub fn first(&self) -> Option<&Account> {
        self.list.first()
    }
}

impl<'a> IntoIterator for &'a Accounts {
    type Item = &'a Account;
    type IntoIter = core::slice::Iter<'a, Account>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

/// Checks for [`Accounts::parse`]: ids made of decimal digits (X, Facebook, Telegram).
pub fn numeric_id(meaning: &'static str) -> impl Fn(&str) -> core::result::Result<(), String> {
    move |id| {
        if crate::text::is_digits(id) {
            Ok(())
        } else {
            Err(format!("the id must be the {meaning}"))
        }
    }
}
