//! Host-held accounts on the admin listener ([`crate::accounts`]).
//!
//! | method and route | what |
//! | --- | --- |
//! | `GET /accounts` | every host-held account: state, scopes, expiry, held replies (never a token) |
//! | `POST /accounts/{tenant}/{connector}/connect` | starts a connect or re-authorise flow, `{"account": "…"}` optional; answers `{"authorize_url", "expires_at"}` |
//! | `POST /accounts/{tenant}/{connector}/subscribe` | makes the platform send each connected account's webhooks again (idempotent); answers their status with `subscribed` |
//! | `POST /accounts/{tenant}/{connector}/{account}/disconnect` | revokes and forgets the token |
//! | `GET /oauth/callback`, `GET /tenants/{tenant}/oauth/callback` | where the platform sends the admin's browser back: no admin token (the single-use `state` is the proof); answers a short page |
//!
//! The first three need the admin token like the rest of the admin API.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::admin::AdminApi;
use super::{ApiError, ErrorCode};
use crate::accounts::{AccountStatus, ConnectStart, ReturnTo};
use crate::connectors::DEFAULT_TENANT;

/// The routes that need the admin token.
pub(super) fn protected() -> Router<AdminApi> {
    Router::new()
        .route("/accounts", get(list))
        .route("/accounts/{tenant}/{connector}/connect", post(connect))
        .route("/accounts/{tenant}/{connector}/subscribe", post(subscribe))
        .route(
            "/accounts/{tenant}/{connector}/{account}/disconnect",
            post(disconnect),
        )
}

/// The platform's redirect back, without a token.
pub(super) fn callbacks() -> Router<AdminApi> {
    Router::new()
        .route("/oauth/callback", get(default_callback))
        .route("/tenants/{tenant}/oauth/callback", get(tenant_callback))
}

async fn list(State(admin): State<AdminApi>) -> Result<Json<Vec<AccountStatus>>, ApiError> {
    Ok(Json(admin.host().accounts().await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    account: Option<String>,
}

async fn connect(
    State(admin): State<AdminApi>,
    Path((tenant, connector)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ConnectStart>, ApiError> {
    let body: ConnectBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConnectBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("expected {{\"account\": \"ID\"}} or no body: {e}"),
            )
        })?
    };
    Ok(Json(
        admin
            .host()
            .connect_account(&tenant, &connector, body.account.as_deref())
            .await?,
    ))
}

async fn subscribe(
    State(admin): State<AdminApi>,
    Path((tenant, connector)): Path<(String, String)>,
) -> Result<Json<Vec<AccountStatus>>, ApiError> {
    Ok(Json(
        admin.host().subscribe_accounts(&tenant, &connector).await?,
    ))
}

async fn disconnect(
    State(admin): State<AdminApi>,
    Path((tenant, connector, account)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let disconnected = admin
        .host()
        .disconnect_account(&tenant, &connector, &account)
        .await?;
    Ok(Json(serde_json::json!({ "disconnected": disconnected })))
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn default_callback(
    State(admin): State<AdminApi>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // `/oauth/callback` → the console at `/console`.
    callback(&admin, DEFAULT_TENANT, query, "../console/connectors").await
}

async fn tenant_callback(
    State(admin): State<AdminApi>,
    Path(tenant): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // `/tenants/{tenant}/oauth/callback` → the console at `/console`.
    callback(&admin, &tenant, query, "../../../console/connectors").await
}

/// Completes a connect flow. A flow started from the console sends the browser back to
/// the console's connectors page (`console`, relative, so it works wherever an embedder
/// nests the admin API); the others get a short page. The way back is a page that
/// refreshes to the console rather than a redirect: after a redirect chain that began on
/// the platform's site, browsers withhold the console's `SameSite=Strict` session cookie,
/// but not on a navigation this page starts.
async fn callback(admin: &AdminApi, tenant: &str, query: CallbackQuery, console: &str) -> Response {
    let (Some(state), Some(code)) = (query.state.as_deref(), query.code.as_deref()) else {
        let why = match &query.error {
            Some(error) => format!("the platform answered `{error}`: nothing was connected"),
            None => "the callback carries no `state` and `code`".to_string(),
        };
        // A refused consent still names its flow: spend it, and lead back to the console
        // when it started there.
        let back = match (&query.error, query.state.as_deref()) {
            (Some(_), Some(state)) => admin.host().abandon_connect(state).await,
            _ => ReturnTo::Page,
        };
        let console = (back == ReturnTo::Console).then_some((console, false));
        return page(StatusCode::BAD_REQUEST, "Not connected", &why, console);
    };
    let (return_to, outcome) = admin
        .host()
        .complete_connect_returning(tenant, state, code)
        .await;
    let console = (return_to == ReturnTo::Console).then_some(console);
    match outcome {
        Ok(accounts) => {
            let names: Vec<String> = accounts
                .iter()
                .map(|a| match &a.label {
                    Some(label) => format!("{} ({label})", a.account),
                    None => a.account.clone(),
                })
                .collect();
            page(
                StatusCode::OK,
                "Connected",
                &format!(
                    "{} connected: {}. You can close this window.",
                    accounts.first().map_or("", |a| a.connector.as_str()),
                    names.join(", ")
                ),
                console.map(|c| (c, true)),
            )
        }
        Err(e) => {
            tracing::warn!(tenant, "an OAuth callback was refused: {e}");
            // A refusal stays on screen, with the way back to the console.
            page(
                StatusCode::BAD_REQUEST,
                "Not connected",
                &e.to_string(),
                console.map(|c| (c, false)),
            )
        }
    }
}

/// A short page; with `back`, a link to the console, followed at once when its flag says.
fn page(status: StatusCode, title: &str, text: &str, back: Option<(&str, bool)>) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (refresh, link) = match back {
        Some((url, follow)) => (
            if follow {
                format!(
                    "<meta http-equiv=\"refresh\" content=\"0; url={}\">",
                    escape(url)
                )
            } else {
                String::new()
            },
            format!(
                "<p><a id=\"back\" href=\"{}\">Back to the console</a></p>",
                escape(url)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{refresh}<title>{t}</title></head>\
         <body><h1>{t}</h1><p id=\"outcome\">{x}</p>{link}</body></html>",
        t = escape(title),
        x = escape(text)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
