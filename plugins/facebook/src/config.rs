//! Settings and pages, validated once in `configure` so that every later call can trust
//! them: a mistake in the admin's config surfaces when the connector starts, naming the
//! setting, rather than as a failed reply hours later.

use centralino_sdk::connector::Config;
use centralino_sdk::{Account, Accounts, PluginError, Result, SecretName, numeric_id};

/// The Graph API; tests and staging point `graph_base` at an emulator.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.facebook.com";

/// Graph API version used in request paths.
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// Name of the host-held secret that signs deliveries (`X-Hub-Signature-256`).
pub const DEFAULT_APP_SECRET: &str = "app_secret";

/// Name of the host-held secret the subscription handshake must present.
pub const DEFAULT_VERIFY_TOKEN: &str = "verify_token";

/// The connector's validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Graph base URL without a trailing `/`.
    pub graph_base: String,
    /// `v25.0`.
    pub api_version: String,
    /// The app-secret secret.
    pub app_secret: SecretName,
    /// The verify-token secret.
    pub verify_token: SecretName,
    /// The pages served: `id` is the page id, `credential` names its page access token.
    pub pages: Accounts,
    /// Whether a Messenger reply past 24 hours goes out with the `HUMAN_AGENT` tag (a
    /// person answering, within 7 days). Default: false.
    pub human_agent: bool,
}

impl Settings {
    /// Validates the admin's configuration; unknown settings are refused by name.
    pub fn from_config(config: Config) -> Result<Settings> {
        let settings = centralino_sdk::Settings::parse(
            "facebook connector",
            config.settings,
            &[
                "graph_base",
                "api_version",
                "app_secret",
                "verify_token",
                "human_agent",
            ],
        )?;
        let human_agent = match settings.string_or("human_agent", "false").as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(PluginError::invalid_input(format!(
                    "setting `human_agent` must be `true` or `false`, got `{other}`"
                )));
            }
        };
        let api_version = settings.string_or("api_version", DEFAULT_API_VERSION);
        if !is_api_version(&api_version) {
            return Err(PluginError::invalid_input(format!(
                "setting `api_version` must look like `v19.0`, got `{api_version}`"
            )));
        }
        Ok(Settings {
            graph_base: settings.url_or("graph_base", DEFAULT_GRAPH_BASE)?,
            api_version,
            app_secret: settings.secret_or("app_secret", DEFAULT_APP_SECRET)?,
            verify_token: settings.secret_or("verify_token", DEFAULT_VERIFY_TOKEN)?,
            pages: Accounts::parse(
                config.accounts,
                "Facebook page",
                numeric_id("numeric Facebook page id"),
            )?,
            human_agent,
        })
    }

    /// The configured page with this id.
    pub fn page(&self, id: &str) -> Option<&Account> {
        self.pages.get(id)
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
