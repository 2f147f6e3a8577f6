//! The host's side of the platforms' OAuth endpoints: exchanging a code, refreshing,
//! revoking, asking who a token acts as, and Facebook's page-token exchange.
//!
//! Nothing here logs a token or puts one in an error: a platform's error answer is
//! reduced to its `error` code and description, and any copy of a token the host sent is
//! cut out of those as well.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{Endpoints, OAuthApp};
use crate::capabilities::Secret;
use crate::capabilities::oauth::{ClientAuth, OAuthDeclaration};

/// What a token endpoint granted.
pub(crate) struct Grant {
    pub(crate) access: Secret,
    pub(crate) refresh: Option<Secret>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scopes: Option<String>,
}

/// Why a token call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The platform refused the grant for good (`invalid_grant`, revoked, expired refresh
    /// token): only an admin's re-authorisation helps.
    Refused(String),
    /// Anything else (network, 5xx, rate limit): try again later.
    Transient(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(why) => write!(f, "refused: {why}"),
            Failure::Transient(why) => write!(f, "failed: {why}"),
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<serde_json::Value>,
    error_description: Option<String>,
}

/// The endpoint `pick` chooses: the admin's override, else the declaration's.
pub(crate) fn endpoint(
    overrides: &Endpoints,
    pick: impl Fn(&Endpoints) -> Option<&String>,
    declared: Option<&String>,
) -> Option<String> {
    pick(overrides).or(declared).cloned()
}

/// The HTTP client for token calls: no redirects, bounded.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("centralino/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("creating the OAuth HTTP client: {e}"))
}

pub(super) fn text(secret: &Secret) -> String {
    String::from_utf8_lossy(secret.expose()).into_owned()
}

/// Removes every copy of `secrets` from `message`.
pub(super) fn scrubbed(mut message: String, secrets: &[&Secret]) -> String {
    for secret in secrets {
        let value = text(secret);
        if value.len() >= 6 {
            message = message.replace(&value, "[credential]");
        }
    }
    message
}

/// Posts a form to the token endpoint and reads the grant.
async fn token_call(
    http: &reqwest::Client,
    app: &OAuthApp,
    declaration: &OAuthDeclaration,
    mut form: Vec<(&str, String)>,
    sent: &[&Secret],
) -> Result<Grant, Failure> {
    let url = endpoint(
        &app.endpoints,
        |e| e.token_url.as_ref(),
        Some(&declaration.token_url),
    )
    .unwrap_or_default();
    let mut request = http.post(&url);
    let mut secrets: Vec<&Secret> = sent.to_vec();
    match declaration.client_auth {
        ClientAuth::Basic => match &app.client_secret {
            Some(secret) => {
                let pair = format!("{}:{}", text(&app.client_id), text(secret));
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(pair)),
                );
                secrets.push(secret);
            }
            // A public client (PKCE without a secret) names itself in the body.
            None => form.push(("client_id", text(&app.client_id))),
        },
        ClientAuth::Body => {
            form.push(("client_id", text(&app.client_id)));
            if let Some(secret) = &app.client_secret {
                form.push(("client_secret", text(secret)));
                secrets.push(secret);
            }
        }
    }
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|e| Failure::Transient(scrubbed(without_url(&e), &secrets)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Transient(scrubbed(without_url(&e), &secrets)))?;
    if !status.is_success() {
        let reason = match serde_json::from_slice::<ErrorAnswer>(&body) {
            Ok(ErrorAnswer {
                error,
                error_description,
            }) => {
                let code = match error {
                    Some(serde_json::Value::String(code)) => code,
                    // Graph nests its errors: {"error": {"message", "code", ...}}.
                    Some(serde_json::Value::Object(map)) => format!(
                        "{} (code {})",
                        map.get("message")
                            .and_then(|m| m.as_str())
                            .unwrap_or("error"),
                        map.get("code").map(ToString::to_string).unwrap_or_default()
                    ),
                    _ => format!("status {}", status.as_u16()),
                };
                match error_description {
                    Some(description) => format!("{code}: {description}"),
                    None => code,
                }
            }
            Err(_) => format!("status {}", status.as_u16()),
        };
        let reason = scrubbed(
            format!("the token endpoint answered {}: {reason}", status.as_u16()),
            &secrets,
        );
        // 400/401 with an OAuth error is the grant refused; the rest may pass.
        return Err(if status.as_u16() == 400 || status.as_u16() == 401 {
            Failure::Refused(reason)
        } else {
            Failure::Transient(reason)
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
        Failure::Transient("the token endpoint's answer is not a token response".to_string())
    })?;
    let Some(access) = answer.access_token.filter(|t| !t.is_empty()) else {
        return Err(Failure::Transient(
            "the token endpoint's answer has no access_token".to_string(),
        ));
    };
    Ok(Grant {
        access: Secret::new(access),
        refresh: answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expires_in: answer.expires_in,
        scopes: answer.scope,
    })
}

/// Exchanges an authorization code (RFC 6749 §4.1.3, with the PKCE verifier).
pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    app: &OAuthApp,
    declaration: &OAuthDeclaration,
    code: &str,
    verifier: Option<&str>,
) -> Result<Grant, Failure> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", app.redirect_url.clone()),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier.to_string()));
    }
    token_call(http, app, declaration, form, &[]).await
}

/// Spends a refresh token (RFC 6749 §6).
pub(crate) async fn refresh(
    http: &reqwest::Client,
    app: &OAuthApp,
    declaration: &OAuthDeclaration,
    refresh_token: &Secret,
) -> Result<Grant, Failure> {
    let form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", text(refresh_token)),
    ];
    token_call(http, app, declaration, form, &[refresh_token]).await
}

/// Facebook: a short-lived user token becomes a long-lived one.
pub(crate) async fn long_lived(
    http: &reqwest::Client,
    app: &OAuthApp,
    declaration: &OAuthDeclaration,
    user_token: &Secret,
) -> Result<Grant, Failure> {
    let form = vec![
        ("grant_type", "fb_exchange_token".to_string()),
        ("fb_exchange_token", text(user_token)),
    ];
    token_call(http, app, declaration, form, &[user_token]).await
}

/// A GET with `token` attached as declared; the JSON answer.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
    declaration: &OAuthDeclaration,
    token: &Secret,
) -> Result<serde_json::Value, Failure> {
    let mut request = http.get(url);
    match &declaration.attach {
        crate::capabilities::oauth::AttachDeclaration::Bearer => {
            request = request.bearer_auth(text(token));
        }
        crate::capabilities::oauth::AttachDeclaration::Query(name) => {
            request = request.query(&[(name.as_str(), text(token))]);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Transient(scrubbed(without_url(&e), &[token])))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Transient(scrubbed(without_url(&e), &[token])))?;
    if !(200..300).contains(&status) {
        return Err(Failure::Refused(format!("{url} answered {status}")));
    }
    serde_json::from_slice(&body)
        .map_err(|_| Failure::Transient(format!("{url} did not answer JSON")))
}

/// Who a new token acts as: the account id at the declared pointer, and a label (the
/// handle or name) when the answer has one.
pub(crate) async fn identity(
    http: &reqwest::Client,
    url: &str,
    declaration: &OAuthDeclaration,
    token: &Secret,
) -> Result<(String, Option<String>), Failure> {
    let answer = get_json(http, url, declaration, token).await?;
    let pointer = declaration.identity_id.as_deref().unwrap_or("/id");
    let id = match answer.pointer(pointer) {
        Some(serde_json::Value::String(id)) => id.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => {
            return Err(Failure::Transient(format!(
                "the identity answer has no account id at `{pointer}`"
            )));
        }
    };
    let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
    let label = ["username", "name"].iter().find_map(|field| {
        answer
            .pointer(&format!("{parent}/{field}"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    Ok((id, label))
}

/// One page the user manages, with its page token.
pub(crate) struct Page {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) token: Secret,
}

/// Facebook's `/me/accounts`: the pages the user manages and a page token for each.
pub(crate) async fn pages(
    http: &reqwest::Client,
    url: &str,
    declaration: &OAuthDeclaration,
    user_token: &Secret,
) -> Result<Vec<Page>, Failure> {
    let answer = get_json(http, url, declaration, user_token).await?;
    let pages = answer["data"].as_array().cloned().unwrap_or_default();
    Ok(pages
        .iter()
        .filter_map(|page| {
            Some(Page {
                id: page["id"].as_str()?.to_string(),
                name: page["name"].as_str().map(str::to_string),
                token: Secret::new(page["access_token"].as_str()?.to_string()),
            })
        })
        .collect())
}

/// The subscription call: `POST url` with `form` (an empty JSON object when there is none,
/// as X's Account Activity subscription takes) and the token attached as declared.
pub(crate) async fn subscribe(
    http: &reqwest::Client,
    url: &str,
    declaration: &OAuthDeclaration,
    token: &Secret,
    form: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    let mut request = if form.is_empty() {
        http.post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
    } else {
        http.post(url).form(form)
    };
    match &declaration.attach {
        crate::capabilities::oauth::AttachDeclaration::Bearer => {
            request = request.bearer_auth(text(token))
        }
        crate::capabilities::oauth::AttachDeclaration::Query(name) => {
            request = request.query(&[(name.as_str(), text(token))]);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| scrubbed(without_url(&e), &[token]))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the subscription endpoint answered {status}"))
    }
}

/// Revokes a token (RFC 7009); failures are reported, not fatal.
pub(crate) async fn revoke(
    http: &reqwest::Client,
    app: &OAuthApp,
    url: &str,
    token: &Secret,
) -> Result<(), String> {
    let mut form = vec![("token", text(token))];
    form.push(("client_id", text(&app.client_id)));
    let response = http
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| scrubbed(without_url(&e), &[token]))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the revoke endpoint answered {}",
            response.status().as_u16()
        ))
    }
}

/// A transport error without its URL (whose query may hold a token).
pub(super) fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &url.origin().ascii_serialization());
    }
    text
}
