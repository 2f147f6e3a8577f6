//! Every secret a config refers to, read from the environment and files: tokens, the
//! store URL, and each connector's secrets and credentials.

use super::error::{ConfigError, KeyPath, Problem};
use super::values::{CredentialRef, SecretRef};
use super::{Config, StoreLocation};
use crate::capabilities::{Credential, Secret};
use std::collections::BTreeMap;

/// `token` as the admin and REST APIs compare it: surrounding whitespace trimmed (an HTTP
/// header never carries it); an error saying why when nothing is left, or whitespace or
/// control characters remain inside (such a token cannot be sent as `Bearer <token>`).
fn bearer_token(token: &Secret) -> Result<Secret, &'static str> {
    let value = token.expose().trim_ascii();
    if value.is_empty() {
        return Err("is empty or only whitespace");
    }
    if value
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("holds whitespace or control characters: a bearer token is one word");
    }
    Ok(Secret::new(value.to_vec()))
}

/// The secrets one connector was granted.
#[derive(Clone, Debug, Default)]
pub(super) struct ConnectorSecrets {
    pub(super) credentials: BTreeMap<String, Credential>,
    pub(super) secrets: BTreeMap<String, Secret>,
    /// The OAuth app's client id and secret, for connected accounts.
    pub(super) oauth: Option<(Secret, Option<Secret>)>,
    /// The OAuth app's own bearer token, for registering its webhook.
    pub(super) app_token: Option<Secret>,
    /// A disabled connector's references that are not set (with their keys).
    pub(super) waiting: Vec<String>,
}

/// Every secret a config refers to, read from the environment and files. `Debug` shows
/// no value.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    pub(super) store_url: Option<String>,
    pub(super) admin_token: Option<Secret>,
    pub(super) token_key: Option<Secret>,
    pub(super) crm_webhook_secret: Option<Secret>,
    pub(super) api_tokens: BTreeMap<String, Secret>,
    pub(super) connectors: BTreeMap<(String, String), ConnectorSecrets>,
    pub(super) count: usize,
}

impl std::fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecrets")
            // The URL may hold the database password.
            .field(
                "store_url",
                &self.store_url.as_deref().map(crate::store::redacted_url),
            )
            .field("admin_token", &self.admin_token)
            .field("token_key", &self.token_key)
            .field("crm_webhook_secret", &self.crm_webhook_secret)
            .field("api_tokens", &self.api_tokens)
            .field("connectors", &self.connectors)
            .field("count", &self.count)
            .finish()
    }
}

impl ResolvedSecrets {
    /// The admin API's token, when the config names one.
    pub fn admin_token(&self) -> Option<&Secret> {
        self.admin_token.as_ref()
    }

    /// The key sealing host-held tokens (`host.token_key`), if set.
    pub fn token_key(&self) -> Option<&Secret> {
        self.token_key.as_ref()
    }

    /// Each tenant's REST API token, by tenant id (tenants without one are left out).
    pub fn api_tokens(&self) -> &BTreeMap<String, Secret> {
        &self.api_tokens
    }

    /// How many references were resolved.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the config refers to no secret at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The references of disabled connectors that are not set yet, by tenant and
    /// connector: such a connector is built, and enabling it before they are set (and the
    /// config reloaded) leaves its plugin without them.
    pub fn waiting(&self) -> Vec<(String, String, Vec<String>)> {
        self.connectors
            .iter()
            .filter(|(_, granted)| !granted.waiting.is_empty())
            .map(|((tenant, name), granted)| {
                (tenant.clone(), name.clone(), granted.waiting.clone())
            })
            .collect()
    }
}

impl Config {
    /// Resolves every secret reference from the process environment and files. See
    /// [`Config::resolve_secrets_with`].
    pub fn resolve_secrets(&self) -> Result<ResolvedSecrets, ConfigError> {
        self.resolve_secrets_with(|name| std::env::var(name).ok())
    }

    /// Resolves every secret reference: the admin token, the store URL when it is a
    /// reference, and the secrets and credentials of every connector (a disabled one may
    /// wait for its secrets: those unset are listed in [`ResolvedSecrets::waiting`]). `env` looks variables up; files are read relative to
    /// the config file. Every unresolved reference is reported, each with its key and the
    /// variable or file.
    pub fn resolve_secrets_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedSecrets, ConfigError> {
        let mut problems = Vec::new();
        let mut resolved = ResolvedSecrets::default();
        let mut resolve =
            |key: &KeyPath, reference: &SecretRef, problems: &mut Vec<Problem>| match reference
                .resolve(&self.base_dir, &env)
            {
                Ok(secret) => {
                    resolved.count += 1;
                    Some(secret)
                }
                Err(message) => {
                    problems.push(self.source.problem(key, message));
                    None
                }
            };
        let host = KeyPath::root().key("host");
        // A bearer token that cannot be sent in a header would lock its API for good.
        let bearer = |key: &KeyPath,
                      reference: &SecretRef,
                      token: Secret,
                      problems: &mut Vec<Problem>| match bearer_token(&token) {
            Ok(token) => Some(token),
            Err(why) => {
                problems.push(
                    self.source
                        .problem(key, format!("the token in `{reference}` {why}")),
                );
                None
            }
        };
        let token_key = self
            .token_key
            .as_ref()
            .and_then(|r| resolve(&host.key("token_key"), r, &mut problems));
        let admin_token = self.admin_token.as_ref().and_then(|r| {
            let key = host.key("admin_token");
            let token = resolve(&key, r, &mut problems)?;
            bearer(&key, r, token, &mut problems)
        });
        let crm_webhook_secret = self
            .crm_webhook_secret
            .as_ref()
            .and_then(|r| resolve(&host.key("crm_webhook_secret"), r, &mut problems));
        let mut api_tokens: BTreeMap<String, Secret> = BTreeMap::new();
        for tenant in &self.tenants {
            let Some(reference) = &tenant.api_token else {
                continue;
            };
            let key = tenant.key.key("api_token");
            let Some(token) = resolve(&key, reference, &mut problems)
                .and_then(|token| bearer(&key, reference, token, &mut problems))
            else {
                continue;
            };
            // The admin token opens every tenant: a tenant holding it would hold them all.
            if admin_token.as_ref() == Some(&token) {
                problems.push(self.source.problem(
                    &key,
                    format!(
                        "`{reference}` holds the same token as `host.admin_token`: the admin \
                         token opens every tenant, so no tenant's `api_token` may be it"
                    ),
                ));
                continue;
            }
            // A token names its tenant: two tenants sharing one could not be told apart.
            if let Some((other, _)) = api_tokens.iter().find(|(_, known)| **known == token) {
                problems.push(self.source.problem(
                    &key,
                    format!(
                        "`{reference}` holds the same token as tenant `{other}`'s `api_token`: \
                         each tenant needs a token of its own"
                    ),
                ));
                continue;
            }
            api_tokens.insert(tenant.id.clone(), token);
        }
        let store_url = match &self.store {
            StoreLocation::Url(_) => None,
            StoreLocation::Secret(reference) => {
                let key = host.key("store");
                resolve(&key, reference, &mut problems).and_then(|secret| {
                    match String::from_utf8(secret.expose().to_vec()) {
                        Ok(url) => Some(url),
                        Err(_) => {
                            problems.push(self.source.problem(
                                &key,
                                format!("the store URL in `{reference}` is not UTF-8 text"),
                            ));
                            None
                        }
                    }
                })
            }
        };
        let mut connectors = BTreeMap::new();
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                // A disabled connector may wait for its secrets: what is set is granted,
                // what is not is listed in `waiting`, not a problem.
                let mut own = Vec::new();
                let mut granted = ConnectorSecrets::default();
                for (name, reference) in &connector.secrets {
                    let key = connector.key.key("secrets").key(name.clone());
                    if let Some(secret) = resolve(&key, reference, &mut own) {
                        granted.secrets.insert(name.clone(), secret);
                    }
                }
                for (index, account) in connector.accounts.iter().enumerate() {
                    let Some(credential) = &account.credential else {
                        continue;
                    };
                    let key = connector.key.key("accounts").index(index).key("credential");
                    let credential = match credential {
                        CredentialRef::Bearer(reference) => {
                            resolve(&key, reference, &mut own).map(Credential::Bearer)
                        }
                        CredentialRef::Query { parameter, token } => {
                            resolve(&key.key("token"), token, &mut own).map(|token| {
                                Credential::QueryParameter {
                                    name: parameter.clone(),
                                    token,
                                }
                            })
                        }
                        CredentialRef::Path(reference) => {
                            resolve(&key, reference, &mut own).map(Credential::PathSegment)
                        }
                        CredentialRef::Connected => Some(Credential::Connected(
                            crate::accounts::ConnectedCredential::new(),
                        )),
                    };
                    if let Some(credential) = credential {
                        granted.credentials.insert(account.id.clone(), credential);
                    }
                }
                if let Some(oauth) = &connector.oauth {
                    let key = connector.key.key("oauth");
                    let id = resolve(&key.key("client_id"), &oauth.client_id, &mut own);
                    let secret = match &oauth.client_secret {
                        Some(reference) => {
                            resolve(&key.key("client_secret"), reference, &mut own).map(Some)
                        }
                        None => Some(None),
                    };
                    if let (Some(id), Some(secret)) = (id, secret) {
                        granted.oauth = Some((id, secret));
                    }
                    if let Some(reference) = &oauth.app_token {
                        granted.app_token = resolve(&key.key("app_token"), reference, &mut own);
                    }
                }
                if connector.enabled {
                    problems.extend(own);
                } else {
                    granted.waiting = own
                        .into_iter()
                        .map(|p| match p.key {
                            Some(key) => format!("{key}: {}", p.message),
                            None => p.message,
                        })
                        .collect();
                }
                connectors.insert((tenant.id.clone(), connector.name.clone()), granted);
            }
        }
        if !problems.is_empty() {
            return Err(self.source.error(problems));
        }
        resolved.admin_token = admin_token;
        resolved.token_key = token_key;
        resolved.api_tokens = api_tokens;
        resolved.crm_webhook_secret = crm_webhook_secret;
        resolved.store_url = store_url;
        resolved.connectors = connectors;
        Ok(resolved)
    }
}
