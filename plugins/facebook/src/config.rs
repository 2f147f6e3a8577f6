//! Settings and pages, validated once in `configure` so that every later call can trust
//! them: a mistake in the admin's config surfaces when the connector starts, naming the
//! setting, rather than as a failed reply hours later.

use crate::centralino::plugin::types::PluginError;
use crate::exports::centralino::plugin::connector::Config;

/// The Graph API; tests and staging point `graph_base` at an emulator.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.facebook.com";

/// Graph API version used in request paths.
pub const DEFAULT_API_VERSION: &str = "v19.0";

/// Name of the host-held secret that signs deliveries (`X-Hub-Signature-256`).
pub const DEFAULT_APP_SECRET: &str = "app_secret";

/// Name of the host-held secret the subscription handshake must present.
pub const DEFAULT_VERIFY_TOKEN: &str = "verify_token";

/// One Facebook page the connector serves.
#[derive(Debug)]
pub struct Page {
    /// Page id.
    pub id: String,
    /// Name of the page access token, attached by the host.
    pub credential: Option<String>,
}

impl Page {
    /// The credential to name in requests made for this page.
    pub fn credential(&self) -> Result<&str, PluginError> {
        self.credential.as_deref().ok_or_else(|| {
            PluginError::InvalidInput(format!(
                "page `{}` has no credential: configure its page access token",
                self.id
            ))
        })
    }
}

/// The connector's validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Graph base URL without a trailing `/`.
    pub graph_base: String,
    /// `v19.0`.
    pub api_version: String,
    /// Name of the app-secret secret.
    pub app_secret: String,
    /// Name of the verify-token secret.
    pub verify_token: String,
    /// The pages served.
    pub pages: Vec<Page>,
}

impl Settings {
    /// Validates the admin's configuration. Unknown settings are refused by name, so a typo
    /// (`graph-base`) cannot silently fall back to a default.
    pub fn from_config(config: Config) -> Result<Settings, PluginError> {
        let mut graph_base = None;
        let mut api_version = None;
        let mut app_secret = None;
        let mut verify_token = None;
        for (key, value) in config.settings {
            let slot = match key.as_str() {
                "graph_base" => &mut graph_base,
                "api_version" => &mut api_version,
                "app_secret" => &mut app_secret,
                "verify_token" => &mut verify_token,
                _ => {
                    return Err(invalid(format!(
                        "unknown setting `{key}` (the facebook connector knows `graph_base`, \
                         `api_version`, `app_secret` and `verify_token`)"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!("setting `{key}` is given twice")));
            }
        }
        let graph_base = match graph_base {
            Some(value) => base_url("graph_base", &value)?,
            None => DEFAULT_GRAPH_BASE.to_string(),
        };
        let api_version = api_version.unwrap_or_else(|| DEFAULT_API_VERSION.into());
        if !is_api_version(&api_version) {
            return Err(invalid(format!(
                "setting `api_version` must look like `v19.0`, got `{api_version}`"
            )));
        }
        let app_secret = secret_name("app_secret", app_secret, DEFAULT_APP_SECRET)?;
        let verify_token = secret_name("verify_token", verify_token, DEFAULT_VERIFY_TOKEN)?;

        let mut pages: Vec<Page> = Vec::new();
        for account in config.accounts {
            let id = account.id;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!(
                    "account `{id}`: the id must be the numeric Facebook page id"
                )));
            }
            if pages.iter().any(|known| known.id == id) {
                return Err(invalid(format!("account `{id}` is configured twice")));
            }
            if let Some((key, _)) = account.settings.first() {
                return Err(invalid(format!(
                    "account `{id}`: unknown setting `{key}` (pages take no settings)"
                )));
            }
            pages.push(Page {
                id,
                credential: account.credential,
            });
        }
        if pages.is_empty() {
            return Err(invalid("configure at least one Facebook page".into()));
        }
        Ok(Settings {
            graph_base,
            api_version,
            app_secret,
            verify_token,
            pages,
        })
    }

    /// The configured page with this id.
    pub fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|page| page.id == id)
    }

    /// The configured page with this id, or `invalid-input` naming it.
    pub fn require_page(&self, id: &str) -> Result<&Page, PluginError> {
        self.page(id)
            .ok_or_else(|| invalid(format!("account `{id}` is not configured")))
    }
}

/// `v19.0`: a `v`, digits, a dot, digits.
fn is_api_version(value: &str) -> bool {
    let Some((major, minor)) = value.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

fn secret_name(key: &str, value: Option<String>, default: &str) -> Result<String, PluginError> {
    let name = value.unwrap_or_else(|| default.to_string());
    if name.trim().is_empty() {
        return Err(invalid(format!("setting `{key}` must name a secret")));
    }
    Ok(name)
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
