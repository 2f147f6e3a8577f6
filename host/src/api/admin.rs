//! The admin API, on `host.admin_listen`, apart from everything the internet reaches.
//!
//! | method and route | what |
//! | --- | --- |
//! | `GET /status` | readiness, per-tenant routing (statistics, queue depth, operators by presence), every connector's health |
//! | `GET /connectors` | every connector's health (circuit, faults, restarts, refused calls, denials) |
//! | `POST /connectors/{tenant}/{name}/reset` | close a connector's circuit; answers its health |
//! | `POST /connectors/{tenant}/{name}/reload` | hot-swap the connector's plugin from its file; answers the [`ReloadReport`], `409 refused` with the reason when the new version was refused (the old one keeps serving) |
//! | `POST /connectors/reload` | the same for every connector; answers every report |
//! | `POST /connectors/{tenant}/{name}/enable`, `…/disable` | a disabled connector answers webhooks 503 with `Retry-After`, skips polls and keeps replies queued; answers its health |
//! | `POST /reload` | re-read centralino.toml and apply it (routing chains, operators, connectors' plugins and settings); answers the [`ConfigReload`], `409 refused` with the config's errors when it is invalid (nothing changes) |
//! | `POST /operators/{tenant}/{id}/presence` | `{"presence": "online" \| "away" \| "offline"}` |
//! | `GET /accounts`, `POST /accounts/{tenant}/{connector}/connect`, `…/{account}/disconnect`, `GET /oauth/callback` | host-held accounts and their connect flow (`super::accounts`) |
//! | `GET /metrics` | Prometheus text format ([`crate::metrics`]) |
//! | `GET /healthz`, `GET /readyz` | probes, without a token |
//!
//! Everything but the probes needs `Authorization: Bearer <admin_token>`, compared in
//! constant time; refusals are `401` with the API's JSON error body. Without a token the
//! API may only listen on a loopback address: [`check_exposure`] refuses anything else,
//! and [`AdminApi::serve`] checks the address it was actually given before answering
//! anything (the config check refuses it earlier, this is the second lock).

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use super::crm::PresenceBody;
use super::{ApiError, ApiPath, ErrorCode, JsonBody, TokenCheck, bearer};
use std::sync::Arc;

use crate::capabilities::Secret;
use crate::config::{ConfigReload, ConfigReloader};
use crate::connectors::{ConnectorHealth, ReloadReport};
use crate::metrics::presence_name;
use crate::routing::RoutingStats;
use crate::serve::IngressLimits;
use crate::types::Presence;
use crate::{Error, Host};

/// Refuses an admin API that anyone on the network could reach without a token: an
/// address other than a loopback one needs `has_token`.
pub fn check_exposure(address: SocketAddr, has_token: bool) -> Result<(), Error> {
    if has_token || address.ip().is_loopback() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "the admin API would listen on {address}, which is not a loopback address, without \
         a token: set `host.admin_token` (e.g. `admin_token = \"env:CENTRALINO_ADMIN_TOKEN\"`) \
         or listen on 127.0.0.1"
    )))
}

/// The admin API of a host.
#[derive(Clone)]
pub struct AdminApi {
    host: Host,
    token: Option<TokenCheck>,
    reloader: Option<Arc<ConfigReloader>>,
    plugin_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// The admin API of `host`; with `token`, every call but the probes must present it.
    pub fn new(host: Host, token: Option<&Secret>) -> Self {
        AdminApi {
            host,
            token: token.map(TokenCheck::new),
            reloader: None,
            plugin_dir: None,
        }
    }

    /// Where the console finds routing plugins named by a bare name (`least-loaded` is
    /// `<dir>/least-loaded.wasm`) when it replays a candidate chain or switches to one.
    /// Without it, stages must be named by their `.wasm` path. `centralino run` gives
    /// it `host.plugin_dir`.
    pub fn with_plugin_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.plugin_dir = Some(dir.into());
        self
    }

    /// The host it administers.
    pub(super) fn host(&self) -> &Host {
        &self.host
    }

    /// Lets `POST /reload` re-read the config file the host was started from.
    pub fn with_reloader(mut self, reloader: Arc<ConfigReloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }

    /// The routes, to serve or to nest. Nesting it on a non-loopback listener without a
    /// token bypasses [`check_exposure`]: prefer [`AdminApi::serve`].
    pub fn router(&self) -> Router {
        let protected = Router::new()
            .route("/status", get(status))
            .route("/connectors", get(connectors))
            .route("/connectors/{tenant}/{name}/reset", post(reset_connector))
            .route("/connectors/reload", post(reload_connectors))
            .route("/connectors/{tenant}/{name}/reload", post(reload_connector))
            .route("/connectors/{tenant}/{name}/enable", post(enable_connector))
            .route(
                "/connectors/{tenant}/{name}/disable",
                post(disable_connector),
            )
            .route("/reload", post(reload_config))
            .route("/operators/{tenant}/{id}/presence", post(set_presence))
            .route("/metrics", get(metrics))
            .merge(super::accounts::protected())
            .route_layer(middleware::from_fn_with_state(self.clone(), authorize));
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .merge(super::accounts::callbacks())
            .merge(protected)
            .nest(
                "/console",
                super::console::router(
                    self.host.clone(),
                    self.token.clone(),
                    self.plugin_dir.clone(),
                ),
            )
            .fallback(super::not_found)
            .method_not_allowed_fallback(super::method_not_allowed)
            .with_state(self.clone())
    }

    /// Serves the admin API on `listener` until the future is dropped, with the ingress's
    /// default limits (header timeout, connection cap). Refuses, before answering
    /// anything, a listener on a non-loopback address when there is no token.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        let address = listener.local_addr()?;
        check_exposure(address, self.token.is_some())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
        super::serve(self.router(), listener, IngressLimits::default()).await
    }
}

async fn authorize(State(admin): State<AdminApi>, request: Request, next: Next) -> Response {
    if let Some(token) = &admin.token {
        let presented = bearer(request.headers());
        if !presented.is_some_and(|p| token.matches(p)) {
            let message = match presented {
                None => "send the admin token as `Authorization: Bearer <token>`",
                Some(_) => "the bearer token is not the admin token",
            };
            return ApiError::new(ErrorCode::Unauthorized, message).into_response();
        }
    }
    next.run(request).await
}

/// Operators of a tenant by effective presence.
#[derive(Serialize)]
struct PresenceCounts {
    online: usize,
    away: usize,
    offline: usize,
}

/// One tenant's routing, for `/status`.
#[derive(Serialize)]
struct TenantStatus {
    tenant: String,
    /// None when the tenant has no routing.
    routing: Option<RoutingStatus>,
}

#[derive(Serialize)]
struct RoutingStatus {
    queue_depth: usize,
    operators: PresenceCounts,
    stats: RoutingStats,
}

#[derive(Serialize)]
struct Status {
    ready: bool,
    /// What is not ready, when not.
    not_ready: Option<String>,
    /// Conversations waiting, all tenants together.
    queue_depth: usize,
    tenants: Vec<TenantStatus>,
    connectors: Vec<ConnectorHealth>,
    /// The supervised background tasks.
    tasks: Vec<crate::TaskHealth>,
    /// Host-held accounts: state, scopes, expiry (never a token).
    accounts: Vec<crate::accounts::AccountStatus>,
}

async fn status(State(admin): State<AdminApi>) -> Json<Status> {
    let host = &admin.host;
    let readiness = host.readiness().await;
    let mut tenants = Vec::new();
    for tenant in host.tenants() {
        let routing = host
            .with_routing(&tenant, |engine| {
                let now = engine.now();
                let mut operators = PresenceCounts {
                    online: 0,
                    away: 0,
                    offline: 0,
                };
                for (operator, _) in engine.roster().iter() {
                    match engine.roster().effective_presence(&operator.id, now) {
                        Some(Presence::Online) => operators.online += 1,
                        Some(Presence::Away) => operators.away += 1,
                        _ => operators.offline += 1,
                    }
                }
                RoutingStatus {
                    queue_depth: engine.queue().len(),
                    operators,
                    stats: engine.stats(),
                }
            })
            .await
            .ok();
        tenants.push(TenantStatus { tenant, routing });
    }
    Json(Status {
        ready: readiness.is_ok(),
        not_ready: readiness.err(),
        queue_depth: tenants
            .iter()
            .filter_map(|t| t.routing.as_ref())
            .map(|r| r.queue_depth)
            .sum(),
        tenants,
        connectors: host.connector_health(),
        tasks: host.background_tasks(),
        accounts: host.accounts().await.unwrap_or_else(|e| {
            tracing::warn!("status: reading the accounts: {e}");
            Vec::new()
        }),
    })
}

#[derive(Serialize)]
struct ConnectorList {
    connectors: Vec<ConnectorHealth>,
}

async fn connectors(State(admin): State<AdminApi>) -> Json<ConnectorList> {
    Json(ConnectorList {
        connectors: admin.host.connector_health(),
    })
}

async fn reset_connector(
    State(admin): State<AdminApi>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<ConnectorHealth>, ApiError> {
    Ok(Json(admin.host.reset_connector(&tenant, &name)?))
}

async fn reload_connector(
    State(admin): State<AdminApi>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<ReloadReport>, ApiError> {
    let report = admin.host.reload_connector(&tenant, &name).await?;
    match &report.error {
        Some(reason) => Err(ApiError::new(ErrorCode::Refused, reason.clone())),
        None => Ok(Json(report)),
    }
}

#[derive(Serialize)]
struct ReloadList {
    /// Whether every connector took its new version.
    swapped: bool,
    connectors: Vec<ReloadReport>,
}

async fn reload_connectors(State(admin): State<AdminApi>) -> Json<ReloadList> {
    let connectors = admin.host.reload_connectors().await;
    Json(ReloadList {
        swapped: connectors.iter().all(|r| r.swapped),
        connectors,
    })
}

async fn set_enabled(
    admin: &AdminApi,
    tenant: &str,
    name: &str,
    enabled: bool,
) -> Result<Json<ConnectorHealth>, ApiError> {
    Ok(Json(
        admin
            .host
            .set_connector_enabled(tenant, name, enabled)
            .await?,
    ))
}

async fn enable_connector(
    State(admin): State<AdminApi>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<ConnectorHealth>, ApiError> {
    set_enabled(&admin, &tenant, &name, true).await
}

async fn disable_connector(
    State(admin): State<AdminApi>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<ConnectorHealth>, ApiError> {
    set_enabled(&admin, &tenant, &name, false).await
}

async fn reload_config(State(admin): State<AdminApi>) -> Result<Json<ConfigReload>, ApiError> {
    let Some(reloader) = &admin.reloader else {
        return Err(ApiError::new(
            ErrorCode::Refused,
            "this host was not started from a config file, so there is nothing to reload",
        ));
    };
    Ok(Json(reloader.reload(&admin.host).await?))
}

#[derive(Serialize)]
struct PresenceSet {
    tenant: String,
    operator: String,
    presence: Presence,
}

async fn set_presence(
    State(admin): State<AdminApi>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<PresenceBody>,
) -> Result<Json<PresenceSet>, ApiError> {
    let host = &admin.host;
    let Ok(known) = host
        .with_routing(&tenant, |engine| engine.roster().operator(&id).is_some())
        .await
    else {
        let code = if host.tenants().contains(&tenant) {
            ErrorCode::OperatorNotFound
        } else {
            ErrorCode::TenantNotFound
        };
        return Err(ApiError::new(
            code,
            format!("no operator `{id}` for tenant `{tenant}`"),
        ));
    };
    if !known {
        return Err(ApiError::new(
            ErrorCode::OperatorNotFound,
            format!("no operator `{id}` for tenant `{tenant}`"),
        ));
    }
    host.set_presence(&tenant, &id, body.presence).await?;
    tracing::info!(
        tenant,
        operator = id,
        presence = presence_name(body.presence),
        "presence set through the admin API"
    );
    Ok(Json(PresenceSet {
        tenant,
        operator: id,
        presence: body.presence,
    }))
}

async fn metrics(State(admin): State<AdminApi>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        admin.host.metrics_text().await,
    )
        .into_response()
}

async fn readyz(State(admin): State<AdminApi>) -> Response {
    super::readiness(&admin.host, true).await
}
