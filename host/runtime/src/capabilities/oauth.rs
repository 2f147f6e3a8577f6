//! How a connector says its platform authorises: read from the plugin's
//! `centralino-oauth` custom section at inspection, before anything is compiled.
//!
//! The section holds one JSON object, written by the guest SDK's `oauth!` macro:
//!
//! ```json
//! {"flow": "authorization-code", "pkce": true,
//!  "authorize_url": "https://x.com/i/oauth2/authorize",
//!  "token_url": "https://api.x.com/2/oauth2/token",
//!  "revoke_url": "https://api.x.com/2/oauth2/revoke",
//!  "identity_url": "https://api.x.com/2/users/me", "identity_id": "/data/id",
//!  "scopes": ["tweet.read", "tweet.write", "users.read", "dm.read", "dm.write", "offline.access"],
//!  "client_auth": "basic", "attach": "bearer", "refresh": true, "rotating_refresh": true}
//! ```
//!
//! A plugin without the section keeps loading as before: its accounts use static
//! credentials only. Unknown keys are refused (naming the plugin), so a declaration this
//! host would misread is never half-applied.

use serde::{Deserialize, Serialize};

use super::connected::Attach;

/// Name of the custom section that carries a connector's OAuth declaration.
pub const OAUTH_SECTION: &str = "centralino-oauth";

/// A connector's declaration of its platform's authorisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthDeclaration {
    /// The grant: `authorization-code` (the only one today).
    pub flow: Flow,
    /// Whether the authorize request carries a PKCE S256 challenge.
    #[serde(default)]
    pub pkce: bool,
    /// Where the admin's browser is sent to consent.
    pub authorize_url: String,
    /// Where codes and refresh tokens are exchanged for tokens.
    pub token_url: String,
    /// Where a token is revoked on disconnect, if the platform has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Who the token acts as: a GET with the new token answers JSON with the account id at
    /// `identity_id` (a JSON pointer). Lets the host check that the admin connected the
    /// account they meant to.
    #[serde(default)]
    pub identity_url: Option<String>,
    /// JSON pointer to the account id in the identity answer. Default: `/id`.
    #[serde(default)]
    pub identity_id: Option<String>,
    /// Scopes asked for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Separator of scopes in the authorize URL. Default: a space.
    #[serde(default)]
    pub scope_separator: Option<String>,
    /// How the client authenticates at the token endpoint. Default: `basic`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// How the token is attached to the plugin's requests: `"bearer"` or
    /// `{"query": "access_token"}`.
    pub attach: AttachDeclaration,
    /// Whether the platform issues refresh tokens.
    #[serde(default)]
    pub refresh: bool,
    /// Whether each refresh token is single-use (a new one comes with every refresh).
    #[serde(default)]
    pub rotating_refresh: bool,
    /// A step after the code exchange that turns the user's token into the accounts'
    /// tokens.
    #[serde(default)]
    pub exchange: Option<Exchange>,
    /// How the platform is made to send the account's webhooks, done on connect and by
    /// `centralino accounts subscribe` (idempotent at the platform).
    #[serde(default)]
    pub subscribe: Option<Subscribe>,
}

/// A per-account subscription call: `POST url` (with `{account}` replaced by the account
/// id, and `{webhook}` by the app's webhook id) with `form` (an empty JSON object when
/// there is none), the account's token attached as declared; a 2xx answer means live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// `https://graph.facebook.com/{account}/subscribed_apps`;
    /// `https://api.x.com/2/account_activity/webhooks/{webhook}/subscriptions/all`.
    pub url: String,
    /// Form fields (`subscribed_fields = "messages,messaging_postbacks,feed"`).
    #[serde(default)]
    pub form: std::collections::BTreeMap<String, String>,
    /// An app-level step before any account subscribes: registering the host's webhook
    /// URL with the platform, once per app (X's Account Activity API). Default: none.
    #[serde(default)]
    pub webhook: Option<WebhookRegistration>,
}

/// Registering the app's webhook URL, made with the app's own bearer token (`app_token`
/// in `[connectors.oauth]`): `GET url` lists the app's webhooks
/// (`{"data": [{"id", "url"}]}`); when none has the host's URL (`webhook_url`), `POST url`
/// with `{"url": …}` registers it, the platform first checking it with its challenge,
/// which the connector's webhook handler answers. The webhook's `id` replaces
/// `{webhook}` in the subscription URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRegistration {
    /// `https://api.x.com/2/webhooks`.
    pub url: String,
}

/// The OAuth grant a connector uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// RFC 6749 §4.1, with or without PKCE (RFC 7636).
    AuthorizationCode,
}

/// How the client proves itself at the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (X confidential clients).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (Graph).
    Body,
}

/// How the token goes on a request, as declared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachDeclaration {
    /// `Authorization: Bearer`.
    Bearer,
    /// A query parameter of this name.
    Query(String),
}

impl AttachDeclaration {
    #[doc(hidden)]
    pub fn attach(&self) -> Attach {
        match self {
            AttachDeclaration::Bearer => Attach::Bearer,
            AttachDeclaration::Query(name) => Attach::Query(name.clone()),
        }
    }
}

/// An exchange step after the code exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Exchange {
    /// Facebook: the short-lived user token becomes a long-lived one
    /// (`grant_type=fb_exchange_token` at the token URL), and `accounts_url`
    /// (`/me/accounts`) lists the pages the user manages with a page token each; the host
    /// keeps the tokens of the pages the connector serves.
    FacebookPages {
        /// `https://graph.facebook.com/vXX.0/me/accounts`.
        accounts_url: String,
    },
}

impl OAuthDeclaration {
    /// Parses the section's bytes; the error says what is wrong, for a message that names
    /// the plugin.
    pub fn parse(bytes: &[u8]) -> Result<OAuthDeclaration, String> {
        let declaration: OAuthDeclaration = serde_json::from_slice(bytes).map_err(|e| {
            format!("the `{OAUTH_SECTION}` section is not a valid declaration: {e}")
        })?;
        for (what, url) in [
            ("authorize_url", Some(&declaration.authorize_url)),
            ("token_url", Some(&declaration.token_url)),
            ("revoke_url", declaration.revoke_url.as_ref()),
            ("identity_url", declaration.identity_url.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(format!(
                    "the `{OAUTH_SECTION}` section's `{what}` is not an http(s) URL"
                ));
            }
        }
        if let Some(subscribe) = &declaration.subscribe {
            for (what, url) in [
                ("subscribe.url", Some(&subscribe.url)),
                (
                    "subscribe.webhook.url",
                    subscribe.webhook.as_ref().map(|w| &w.url),
                ),
            ] {
                if let Some(url) = url
                    && !(url.starts_with("https://") || url.starts_with("http://"))
                {
                    return Err(format!(
                        "the `{OAUTH_SECTION}` section's `{what}` is not an http(s) URL"
                    ));
                }
            }
            if subscribe.url.contains("{webhook}") != subscribe.webhook.is_some() {
                return Err(format!(
                    "the `{OAUTH_SECTION}` section's `subscribe.url` names `{{webhook}}` exactly \
                     when `subscribe.webhook` declares how the app's webhook is registered"
                ));
            }
        }
        if declaration.rotating_refresh && !declaration.refresh {
            return Err(format!(
                "the `{OAUTH_SECTION}` section says refresh tokens rotate but that there are none \
                 (`rotating_refresh` without `refresh`)"
            ));
        }
        Ok(declaration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xs_declaration_and_refuses_unknown_keys() {
        let x = br#"{"flow":"authorization-code","pkce":true,
            "authorize_url":"https://x.com/i/oauth2/authorize",
            "token_url":"https://api.x.com/2/oauth2/token","scopes":["tweet.write","offline.access"],
            "attach":"bearer","refresh":true,"rotating_refresh":true}"#;
        let parsed = OAuthDeclaration::parse(x).unwrap();
        assert!(parsed.pkce && parsed.rotating_refresh);
        assert_eq!(parsed.attach.attach(), Attach::Bearer);
        let graph = br#"{"flow":"authorization-code","authorize_url":"https://www.facebook.com/v21.0/dialog/oauth",
            "token_url":"https://graph.facebook.com/v21.0/oauth/access_token","client_auth":"body",
            "attach":{"query":"access_token"},
            "exchange":{"kind":"facebook-pages","accounts_url":"https://graph.facebook.com/v21.0/me/accounts"}}"#;
        let parsed = OAuthDeclaration::parse(graph).unwrap();
        assert_eq!(parsed.attach.attach(), Attach::Query("access_token".into()));
        let err = OAuthDeclaration::parse(br#"{"flow":"authorization-code","authorize_url":"https://a","token_url":"https://b","attach":"bearer","implicit":true}"#).unwrap_err();
        assert!(err.contains("unknown field `implicit`"), "{err}");
        let err = OAuthDeclaration::parse(br#"{"flow":"authorization-code","authorize_url":"javascript:x","token_url":"https://b","attach":"bearer"}"#).unwrap_err();
        assert!(err.contains("authorize_url"), "{err}");
    }

    #[test]
    fn reads_xs_webhook_registration_and_refuses_a_half_declared_one() {
        let x =
            br#"{"flow":"authorization-code","authorize_url":"https://a","token_url":"https://b",
            "attach":"bearer","subscribe":{"webhook":{"url":"https://api.x.com/2/webhooks"},
            "url":"https://api.x.com/2/account_activity/webhooks/{webhook}/subscriptions/all"}}"#;
        let parsed = OAuthDeclaration::parse(x).unwrap();
        let subscribe = parsed.subscribe.unwrap();
        assert_eq!(
            subscribe.webhook.unwrap().url,
            "https://api.x.com/2/webhooks"
        );
        assert!(subscribe.form.is_empty());
        let err = OAuthDeclaration::parse(br#"{"flow":"authorization-code","authorize_url":"https://a","token_url":"https://b",
            "attach":"bearer","subscribe":{"url":"https://x/webhooks/{webhook}/subscriptions/all"}}"#).unwrap_err();
        assert!(err.contains("{webhook}"), "{err}");
        let err = OAuthDeclaration::parse(br#"{"flow":"authorization-code","authorize_url":"https://a","token_url":"https://b",
            "attach":"bearer","subscribe":{"webhook":{"url":"ftp://x"},"url":"https://x/{webhook}"}}"#).unwrap_err();
        assert!(err.contains("subscribe.webhook.url"), "{err}");
    }
}
