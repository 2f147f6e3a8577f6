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
use crate::accounts::{AccountStatus, ConnectStart};
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
    callback(&admin, DEFAULT_TENANT, query).await
}

async fn tenant_callback(
    State(admin): State<AdminApi>,
    Path(tenant): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    callback(&admin, &tenant, query).await
}

async fn callback(admin: &AdminApi, tenant: &str, query: CallbackQuery) -> Response {
    let (Some(state), Some(code)) = (query.state, query.code) else {
        let why = match query.error {
            Some(error) => format!("the platform answered `{error}`: nothing was connected"),
            None => "the callback carries no `state` and `code`".to_string(),
        };
        return page(StatusCode::BAD_REQUEST, "Not connected", &why);
    };
    match admin.host().complete_connect(tenant, &state, &code).await {
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
            )
        }
        Err(e) => {
            tracing::warn!(tenant, "an OAuth callback was refused: {e}");
            page(StatusCode::BAD_REQUEST, "Not connected", &e.to_string())
        }
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p id=\"outcome\">{x}</p></body></html>",
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
