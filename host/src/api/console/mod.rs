//! The admin console: web pages at `/console` on the admin API's router, in English and
//! Italian (issue 16, first slice).
//!
//! | route (under `/console`) | what |
//! | --- | --- |
//! | `GET /` | to the overview (or the login page) |
//! | `GET /login`, `POST /login` | log in with the admin token; without one, loopback clients enter |
//! | `POST /logout` | end the session |
//! | `GET /overview` | who waits (per tenant and brand, each customer's estimate), unhealthy connectors, the outbox, background tasks down |
//! | `GET /events` | the overview's live updates, as server-sent events ([`live`]) |
//! | `GET /connectors`, `POST /connectors` | each connector's plugin (contract, capabilities, grants), health and circuit; enable, disable, reset, reload; confirm or cancel an upload, roll back |
//! | `POST /upload` | a new version of a connector's plugin, inspected and held for confirmation ([`upload`]) |
//! | `GET /operators`, `POST /operators` | each operator's presence, load, skills, accounts and conversations; set presence ([`operators`]) |
//! | `GET /routing`, `POST /routing` | live and shadow chains, their disagreements; replay a candidate chain over stored traffic; switch to it ([`routing`]) |
//! | `GET /audit` | every change made through the console: who, what, when |
//! | `GET /console.css`, `GET /console.js` | the assets, embedded in the binary |
//!
//! Security: a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS) after
//! logging in with the admin token (every tenant) or as a tenant's console user
//! ([`users`]: Argon2id-hashed passwords in the store; the user sees and changes only
//! that tenant, and may not upload, roll back or reload plugins, which changes files on
//! the host); a CSRF token on every `POST` (`403` without, and
//! `403` for a cross-site `Origin`); a Content-Security-Policy that allows only the
//! console's own script and style (nothing inline). When the host has no admin token,
//! the console answers only requests whose `Host` names a loopback address (and, when
//! the server records it, whose peer is loopback), like the admin API, which then only
//! listens on loopback. Sessions ([`session`]) and the audit log ([`audit`]) are kept in
//! the store (migration 7), so they survive restarts and every host sharing a PostgreSQL
//! database knows the same ones.
//!
//! Pages are built on the server ([`html`]); the only script, `console.js`, puts the
//! overview's live updates in place. Everything works at 1280 px and at phone width.

mod audit;
mod connectors;
mod figures;
mod html;
mod i18n;
mod live;
mod operators;
mod overview;
mod routing;
mod session;
mod upload;
mod users;

pub use users::{MIN_PASSWORD_CHARS, add_console_user};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};

use self::audit::{Action, AuditLog, Entry};
use self::html::{Page, escape, page};
use self::i18n::{LANG_COOKIE, Lang};
use self::live::Live;
use self::session::{
    Flash, LOGIN_COOKIE, SESSION_COOKIE, SessionView, Sessions, Who, field, parse_form,
    same_secret, set_cookie,
};
use super::TokenCheck;
use crate::Host;

/// What a page may load and where it may send: only the console's own files.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";
/// The largest form the console reads.
const MAX_FORM: usize = 16 << 10;
/// How long a login form stays usable.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(30 * 60);

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's state, shared by its handlers.
struct Console {
    host: Host,
    token: Option<TokenCheck>,
    /// Where routing stages named by a bare name are found.
    plugin_dir: Option<PathBuf>,
    sessions: Sessions,
    audit: AuditLog,
    live: Arc<Live>,
    /// Each session's last replay, by session label, until it runs another.
    replays: Mutex<HashMap<String, routing::ReplayResult>>,
    /// Uploaded plugin versions waiting for confirmation, and the versions they replaced.
    uploads: upload::Uploads,
}

/// Replays kept at most (one per session); past it the oldest are dropped.
const MAX_REPLAYS: usize = 100;

/// The console's routes, to nest at `/console` on the admin API's router. `token` is the
/// admin API's; without one only loopback clients are answered. `plugin_dir` is where
/// routing stages named by a bare name are found (replays and chain switches).
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    host: Host,
    token: Option<TokenCheck>,
    plugin_dir: Option<PathBuf>,
) -> Router<S> {
    let console = Arc::new(Console {
        sessions: Sessions::new(host.store().clone()),
        audit: AuditLog::new(host.store().clone()),
        host,
        token,
        plugin_dir,
        live: Arc::new(Live::default()),
        replays: Mutex::new(HashMap::new()),
        uploads: upload::Uploads::default(),
    });
    Router::new()
        .route("/", get(root))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/overview", get(overview_page))
        .route("/events", get(events))
        .route("/connectors", get(connectors_page).post(connector_action))
        .route("/upload", post(upload_plugin))
        .route("/operators", get(operators_page).post(operator_action))
        .route("/routing", get(routing_page).post(routing_action))
        .route("/audit", get(audit_page))
        .route("/console.css", get(css))
        .route("/console.js", get(js))
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

/// Before every console request: loopback only without a token, no cross-site posts;
/// after: the security headers.
async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let lang = Lang::of(request.headers(), None);
    let refusal = if console.token.is_none() && !from_loopback(&request) {
        Some(lang.texts().refused_loopback)
    } else if request.method() == axum::http::Method::POST && cross_site(request.headers()) {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        tracing::warn!(
            origin = header("origin"),
            host = header("host"),
            sec_fetch_site = header("sec-fetch-site"),
            "console POST refused: it came from another site"
        );
        Some(lang.texts().refused_origin)
    } else {
        None
    };
    let mut response = match refusal {
        Some(reason) => refused(lang, reason),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it browsers send `Origin: null` on the console's own forms.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether a request comes from this machine: its `Host` names a loopback address (which
/// a page on another site cannot arrange, even by rebinding its DNS name to 127.0.0.1),
/// and its peer, when the server records it, is loopback.
fn from_loopback(request: &Request) -> bool {
    let peer_ok = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_none_or(|ConnectInfo(peer)| peer.ip().is_loopback());
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let host_ok = host.is_some_and(|host| {
        let name = match host.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    });
    peer_ok && host_ok
}

/// Whether a browser says the request comes from another origin. Browsers that send
/// Fetch Metadata say it in `Sec-Fetch-Site` (only `same-origin`, and `none` for what
/// the user typed, pass: `same-site` includes another port on the same host); older
/// ones send `Origin`, which must name this host (`null`, an opaque origin, does not).
/// A request with neither is no browser's cross-site form: the CSRF token decides.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The viewer of a page: language (and the cookie remembering a chosen one) and session.
struct Viewer {
    lang: Lang,
    remember_lang: bool,
    secure: bool,
    session: Option<SessionView>,
}

impl Viewer {
    /// The viewer of a request; a page that shows the session's flash message takes it.
    async fn of(console: &Console, headers: &HeaderMap, uri: &Uri, take_flash: bool) -> Viewer {
        let chosen = uri
            .query()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("lang=")));
        let lang = Lang::of(headers, chosen);
        Viewer {
            lang,
            remember_lang: chosen.is_some(),
            secure: session::over_tls(headers, uri.scheme_str()),
            session: console.sessions.get(headers, take_flash).await,
        }
    }

    /// A page, remembering the language chosen with `?lang=`.
    fn page(&self, current: Page, heading: &str, body: &str) -> Response {
        let html = page(self.lang, current, self.session.as_ref(), heading, body);
        let mut response = Html(html).into_response();
        self.remember(&mut response);
        response
    }

    fn remember(&self, response: &mut Response) {
        if self.remember_lang {
            let year = Some(Duration::from_secs(365 * 24 * 60 * 60));
            if let Some(cookie) = set_cookie(LANG_COOKIE, self.lang.code(), year, self.secure) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
    }
}

/// `303 See Other` to a page, relative to the one asked for.
fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A `403` page saying why.
fn refused(lang: Lang, reason: &str) -> Response {
    let t = lang.texts();
    let body = format!(
        "<p id=\"refused\" class=\"flash bad\">{}</p>\n<p><a href=\"overview\">{}</a></p>\n",
        escape(reason),
        escape(t.back_to_console)
    );
    let html = page(lang, Page::Refused, None, t.refused_title, &body);
    (StatusCode::FORBIDDEN, Html(html)).into_response()
}

/// A form body, at most [`MAX_FORM`] bytes.
async fn read_form(body: Body) -> Option<Vec<(String, String)>> {
    let bytes = Limited::new(body, MAX_FORM)
        .collect()
        .await
        .ok()?
        .to_bytes();
    Some(parse_form(&bytes))
}

/// Whether a state-changing request carries its session's CSRF token.
fn csrf_ok(session: &SessionView, headers: &HeaderMap, form: &[(String, String)]) -> bool {
    let presented =
        field(form, "csrf").or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    presented.is_some_and(|token| same_secret(token, &session.csrf))
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

async fn root(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    match console.sessions.get(&headers, false).await {
        Some(_) => redirect("console/overview"),
        None => redirect("console/login"),
    }
}

async fn login_page(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    if viewer.session.is_some() {
        return redirect("overview");
    }
    login_form(&console, &viewer, None, StatusCode::OK)
}

/// The login page with a fresh form token (and `problem`, when the last try failed).
fn login_form(
    console: &Console,
    viewer: &Viewer,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let t = viewer.lang.texts();
    let nonce = session::random_token();
    let mut body = String::new();
    if let Some(problem) = problem {
        body.push_str(&format!(
            "<p id=\"login-problem\" class=\"flash bad\" role=\"alert\">{}</p>\n",
            escape(problem)
        ));
    }
    body.push_str(&format!(
        "<form class=\"login\" method=\"post\" action=\"login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{nonce}\">\n"
    ));
    match console.token {
        Some(_) => body.push_str(&format!(
            "<h2>{title}</h2>\n<label for=\"token\">{label}</label>\n\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
             required autofocus>\n<p class=\"help\">{help}</p>\n\
             <button id=\"login\" type=\"submit\">{button}</button>\n",
            title = escape(t.login_admin_title),
            label = escape(t.login_token_label),
            help = escape(t.login_token_help),
            button = escape(t.login_button),
        )),
        None => body.push_str(&format!(
            "<p id=\"no-token\" class=\"note\">{note}</p>\n\
             <button id=\"login\" type=\"submit\">{button}</button>\n",
            note = escape(t.login_no_token),
            button = escape(t.login_enter),
        )),
    }
    body.push_str(&format!(
        "</form>\n<h2>{title}</h2>\n\
         <form class=\"login\" method=\"post\" action=\"login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{nonce}\">\n\
         <input type=\"hidden\" name=\"kind\" value=\"user\">\n\
         <label for=\"username\">{username}</label>\n\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required>\n\
         <label for=\"password\">{password}</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required>\n\
         <button id=\"login-user\" type=\"submit\">{button}</button>\n</form>\n\
         <p class=\"note\">{note}</p>\n",
        title = escape(t.login_user_title),
        username = escape(t.login_username),
        password = escape(t.login_password),
        button = escape(t.login_user_button),
        note = escape(t.sessions_in_memory),
    ));
    let mut response = viewer.page(Page::Login, t.login_title, &body);
    *response.status_mut() = status;
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, &nonce, Some(LOGIN_FORM_TTL), viewer.secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn login(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let viewer = Viewer::of(&console, &parts.headers, &parts.uri, false).await;
    let t = viewer.lang.texts();
    let Some(form) = read_form(body).await else {
        return login_form(
            &console,
            &viewer,
            Some(t.login_expired),
            StatusCode::BAD_REQUEST,
        );
    };
    let form_ok = match (
        session::cookie(&parts.headers, LOGIN_COOKIE),
        field(&form, "csrf"),
    ) {
        (Some(cookie), Some(presented)) => same_secret(cookie, presented),
        _ => false,
    };
    if !form_ok {
        return login_form(
            &console,
            &viewer,
            Some(t.login_expired),
            StatusCode::FORBIDDEN,
        );
    }
    let (who, user) = if field(&form, "kind") == Some("user") {
        let username = field(&form, "username").unwrap_or_default().trim();
        let password = field(&form, "password").unwrap_or_default();
        match users::check(console.host.store(), username, password).await {
            Some(user) => (
                Who::User,
                Some(session::ConsoleUser {
                    username: user.username,
                    tenant: user.tenant,
                }),
            ),
            None => {
                tracing::warn!(
                    username,
                    "console login refused: unknown user or wrong password"
                );
                return login_form(
                    &console,
                    &viewer,
                    Some(t.login_wrong_password),
                    StatusCode::UNAUTHORIZED,
                );
            }
        }
    } else {
        let who = match &console.token {
            Some(token) => {
                if !field(&form, "token").is_some_and(|presented| token.matches(presented.trim())) {
                    tracing::warn!("console login refused: not the admin token");
                    return login_form(
                        &console,
                        &viewer,
                        Some(t.login_wrong_token),
                        StatusCode::UNAUTHORIZED,
                    );
                }
                Who::AdminToken
            }
            // The guard let only loopback clients this far.
            None => Who::Loopback,
        };
        (who, None)
    };
    let username = user
        .as_ref()
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let secret = match console.sessions.open(who, user).await {
        Ok(secret) => secret,
        Err(e) => {
            tracing::error!("the console could not store a session: {e:#}");
            let mut response = login_form(
                &console,
                &viewer,
                Some(t.login_expired),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return response;
        }
    };
    tracing::info!(who = who.name(), username, "console login");
    let mut response = redirect("overview");
    let headers = response.headers_mut();
    for cookie in [
        set_cookie(SESSION_COOKIE, &secret, None, viewer.secure),
        set_cookie(LOGIN_COOKIE, "", Some(Duration::ZERO), viewer.secure),
    ]
    .into_iter()
    .flatten()
    {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let viewer = Viewer::of(&console, &parts.headers, &parts.uri, false).await;
    let form = read_form(body).await.unwrap_or_default();
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    if !csrf_ok(session, &parts.headers, &form) {
        return refused(viewer.lang, viewer.lang.texts().refused_csrf);
    }
    console.sessions.close(&parts.headers).await;
    let mut response = redirect("login");
    if let Some(cookie) = set_cookie(SESSION_COOKIE, "", Some(Duration::ZERO), viewer.secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn overview_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let snapshot = overview::sample(&console.host, console.live.figures(), true).await;
    let body = format!(
        "<p id=\"live-state\" class=\"live\" data-on=\"{on}\" data-off=\"{off}\" hidden></p>\n\
         <div id=\"live\">\n{live}</div>\n",
        on = escape(t.live_on),
        off = escape(t.live_off),
        live = overview::render(
            viewer.lang,
            &snapshot,
            session.user.as_ref().map(|u| u.tenant.as_str())
        ),
    );
    viewer.page(Page::Overview, t.overview_title, &body)
}

async fn events(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, false).await;
    if viewer.session.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let only = viewer
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .map(|u| u.tenant.clone());
    console.live.stream(&console.host, viewer.lang, only).await
}

async fn connectors_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let tenants = console.tenants(session);
    let health: Vec<_> = console
        .host
        .connector_health()
        .into_iter()
        .filter(|c| tenants.contains(&c.tenant))
        .collect();
    let mut details = connectors::details(&console.host, &health).await;
    for (c, d) in health.iter().zip(details.iter_mut()) {
        d.previous = console.uploads.previous(&c.tenant, &c.connector);
    }
    let mut body = String::new();
    if let Some(staged) = console.uploads.staged(&session.label) {
        upload::render_review(&mut body, viewer.lang, &session.csrf, &staged);
    }
    body.push_str(&connectors::render(
        viewer.lang,
        &session.csrf,
        &health,
        &details,
    ));
    if !health.is_empty() {
        let names: Vec<(String, String)> = health
            .iter()
            .map(|c| (c.tenant.clone(), c.connector.clone()))
            .collect();
        upload::render_form(&mut body, viewer.lang, &session.csrf, &names);
    }
    viewer.page(Page::Connectors, t.connectors_title, &body)
}

async fn connector_action(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (viewer, headers, session, form) = match changing(&console, request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    match field(&form, "action") {
        Some("confirm") => {
            if let Some(staged) = console.uploads.take(&session.label) {
                let tenant_of_staged = staged.tenant.clone();
                let (target, outcome) = match files_allowed(viewer.lang, &session) {
                    Ok(()) => upload::confirm(&console.host, &console.uploads, staged).await,
                    Err(why) => (format!("{}/{}", staged.tenant, staged.name), Err(why)),
                };
                console
                    .record_change(
                        &headers,
                        viewer.lang,
                        &session,
                        &tenant_of_staged,
                        Action::Upload,
                        target,
                        outcome,
                    )
                    .await;
            }
            return redirect("connectors");
        }
        Some("cancel") => {
            if console.uploads.take(&session.label).is_some() {
                let text = viewer.lang.texts().upload_cancelled.to_string();
                console
                    .sessions
                    .flash(&headers, Flash { ok: true, text })
                    .await;
            }
            return redirect("connectors");
        }
        _ => {}
    }
    let (Some(tenant), Some(name), Some(action)) = (
        field(&form, "tenant"),
        field(&form, "name"),
        field(&form, "action"),
    ) else {
        return redirect("connectors");
    };
    if !console.tenants(&session).iter().any(|t| t == tenant) {
        return redirect("connectors");
    }
    if action == "rollback" {
        let (target, outcome) = match files_allowed(viewer.lang, &session) {
            Ok(()) => upload::rollback(&console.host, &console.uploads, tenant, name).await,
            Err(why) => (format!("{tenant}/{name}"), Err(why)),
        };
        console
            .record_change(
                &headers,
                viewer.lang,
                &session,
                tenant,
                Action::Rollback,
                target,
                outcome,
            )
            .await;
        return redirect("connectors");
    }
    let Some(action) = Action::parse(action) else {
        return redirect("connectors");
    };
    let outcome = if action == Action::Reload
        && let Err(why) = files_allowed(viewer.lang, &session)
    {
        Err(why)
    } else if console.tenants(&session).iter().any(|t| t == tenant) {
        connectors::apply(&console.host, action, tenant, name).await
    } else {
        Err(format!("no tenant `{tenant}`"))
    };
    console
        .record_change(
            &headers,
            viewer.lang,
            &session,
            tenant,
            action,
            format!("{tenant}/{name}"),
            outcome,
        )
        .await;
    redirect("connectors")
}

/// A state-changing request's session and form, once its CSRF token checked out; else
/// the `403` to answer.
async fn changing(
    console: &Console,
    request: Request,
) -> Result<(Viewer, HeaderMap, SessionView, Vec<(String, String)>), Response> {
    let (parts, body) = request.into_parts();
    let viewer = Viewer::of(console, &parts.headers, &parts.uri, false).await;
    let t = viewer.lang.texts();
    let form = read_form(body).await.unwrap_or_default();
    let Some(session) = viewer.session.clone() else {
        return Err(refused(viewer.lang, t.refused_csrf));
    };
    if !csrf_ok(&session, &parts.headers, &form) {
        tracing::warn!(
            session = session.label,
            "console POST refused: no valid CSRF token"
        );
        return Err(refused(viewer.lang, t.refused_csrf));
    }
    Ok((viewer, parts.headers, session, form))
}

/// Whether a session may change files on the host (upload, roll back, reload a plugin):
/// the admin's may, a tenant's console user's may not.
fn files_allowed(lang: Lang, session: &SessionView) -> Result<(), String> {
    match session.who {
        Who::User => Err(lang.texts().admin_only.to_string()),
        Who::AdminToken | Who::Loopback => Ok(()),
    }
}

impl Console {
    /// The tenants a session may see: a console user only their own.
    fn tenants(&self, session: &SessionView) -> Vec<String> {
        let all = self.host.tenants();
        match &session.user {
            Some(user) => all.into_iter().filter(|t| *t == user.tenant).collect(),
            None => all,
        }
    }

    /// Records a change to `tenant` in the audit log and leaves its outcome for the
    /// session's next page.
    #[allow(clippy::too_many_arguments)]
    async fn record_change(
        &self,
        headers: &HeaderMap,
        lang: Lang,
        session: &SessionView,
        tenant: &str,
        action: Action,
        target: String,
        outcome: Result<(), String>,
    ) {
        let t = lang.texts();
        let flash = Flash {
            ok: outcome.is_ok(),
            text: match &outcome {
                Ok(()) => format!("{} {target}: {}", action.label(lang), t.outcome_done),
                Err(reason) => format!(
                    "{} {target}: {} ({reason})",
                    action.label(lang),
                    t.outcome_refused
                ),
            },
        };
        self.audit
            .record(Entry {
                at_ms: crate::clock::now_ms(),
                tenant: tenant.to_string(),
                who: session.who,
                user: session.user.as_ref().map(|u| u.username.clone()),
                session: session.label.clone(),
                action,
                target,
                refused: outcome.err(),
            })
            .await;
        self.sessions.flash(headers, flash).await;
    }
}

/// `POST upload`: a plugin file for a connector, inspected (nothing compiled) and held
/// for the admin to confirm on the connectors page; refused with the reason when it
/// could never serve as a connector's plugin.
async fn upload_plugin(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let viewer = Viewer::of(&console, &parts.headers, &parts.uri, false).await;
    let t = viewer.lang.texts();
    let Some(session) = viewer.session.clone() else {
        return refused(viewer.lang, t.refused_csrf);
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let read = match Limited::new(body, upload::MAX_UPLOAD).collect().await {
        Ok(collected) => upload::parse_multipart(&content_type, &collected.to_bytes()),
        Err(_) => Err(format!(
            "the upload is larger than {} MiB",
            upload::MAX_UPLOAD >> 20
        )),
    };
    let form = read.as_deref().unwrap_or_default();
    let text_field = |name: &str| {
        form.iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let presented = text_field("csrf").or_else(|| {
        parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    if !presented.is_some_and(|token| same_secret(&token, &session.csrf)) {
        tracing::warn!(
            session = session.label,
            "console upload refused: no valid CSRF token"
        );
        return refused(viewer.lang, t.refused_csrf);
    }
    let connector = text_field("connector").unwrap_or_default();
    let (tenant, name) = connector.split_once('/').unwrap_or(("", ""));
    let file = form
        .iter()
        .find(|p| p.name == "plugin" && p.filename.is_some());
    let filename = file.and_then(|f| f.filename.clone()).unwrap_or_default();
    let running = console
        .host
        .connector_health()
        .into_iter()
        .find(|c| c.tenant == tenant && c.connector == name)
        .map(|c| c.plugin);
    let inspected = match (&read, file, &running) {
        (Err(reason), _, _) => Err(reason.clone()),
        (Ok(_), _, None) => Err(format!("no connector `{connector}`")),
        (Ok(_), _, Some(_)) if !console.tenants(&session).iter().any(|t| t == tenant) => {
            Err(format!("no connector `{connector}`"))
        }
        (Ok(_), _, Some(_)) if session.who == Who::User => Err(t.admin_only.to_string()),
        (Ok(_), None, _) => Err("the form carries no file".to_string()),
        (Ok(_), Some(file), Some(_)) => upload::inspect_upload(&filename, &file.data),
    };
    match (inspected, running, file) {
        (Ok(inspection), Some(running), Some(file)) => {
            tracing::info!(
                session = session.label,
                connector,
                plugin = %inspection.plugin,
                sha256 = inspection.sha256,
                "console upload inspected, waiting for confirmation"
            );
            console.uploads.stage(
                &session.label,
                upload::Staged::new(
                    tenant,
                    name,
                    &filename,
                    file.data.clone(),
                    inspection,
                    running,
                ),
            );
        }
        (outcome, _, _) => {
            let reason = outcome.err().unwrap_or_default();
            console
                .record_change(
                    &parts.headers,
                    viewer.lang,
                    &session,
                    tenant,
                    Action::Upload,
                    format!("{connector}: {filename}"),
                    Err(reason),
                )
                .await;
        }
    }
    redirect("connectors")
}

async fn operators_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let tenants = operators::sample(&console.host, &console.tenants(session)).await;
    let body = operators::render(viewer.lang, &session.csrf, &tenants);
    viewer.page(Page::Operators, t.operators_title, &body)
}

async fn operator_action(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (viewer, headers, session, form) = match changing(&console, request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let (Some(tenant), Some(operator), Some(presence)) = (
        field(&form, "tenant"),
        field(&form, "operator"),
        field(&form, "presence").and_then(operators::parse_presence),
    ) else {
        return redirect("operators");
    };
    let outcome = if console.tenants(&session).iter().any(|t| t == tenant) {
        operators::apply(&console.host, tenant, operator, presence).await
    } else {
        Err(format!("no tenant `{tenant}`"))
    };
    console
        .record_change(
            &headers,
            viewer.lang,
            &session,
            tenant,
            Action::Presence,
            format!(
                "{tenant}/{operator}: {}",
                operators::presence_name(presence)
            ),
            outcome,
        )
        .await;
    redirect("operators")
}

async fn routing_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let tenants = routing::sample(&console.host, &console.tenants(session)).await;
    let last = console
        .replays
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&session.label)
        .cloned();
    let body = routing::render(viewer.lang, &session.csrf, &tenants, last.as_ref());
    viewer.page(Page::Routing, t.routing_title, &body)
}

async fn routing_action(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (viewer, headers, session, form) = match changing(&console, request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let t = viewer.lang.texts();
    let (Some(tenant), Some(chain), Some(action)) = (
        field(&form, "tenant"),
        field(&form, "chain"),
        field(&form, "action"),
    ) else {
        return redirect("routing");
    };
    if !console.tenants(&session).iter().any(|t| t == tenant) || !console.host.has_routing(tenant) {
        console
            .sessions
            .flash(
                &headers,
                Flash {
                    ok: false,
                    text: format!("{}: no routing for tenant `{tenant}`", t.outcome_refused),
                },
            )
            .await;
        return redirect("routing");
    }
    let plugin_dir = console.plugin_dir.as_deref();
    match action {
        "replay" => {
            let ran = match (
                routing::period_hours(field(&form, "period")),
                routing::sla_minutes(field(&form, "sla")),
            ) {
                (Ok(hours), Ok(sla)) => {
                    routing::run_replay(&console.host, plugin_dir, tenant, chain, hours, sla).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match ran {
                Ok(result) => {
                    let mut replays = console
                        .replays
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if replays.len() >= MAX_REPLAYS {
                        replays.clear();
                    }
                    replays.insert(session.label.clone(), result);
                }
                Err(reason) => {
                    console
                        .sessions
                        .flash(
                            &headers,
                            Flash {
                                ok: false,
                                text: format!(
                                    "{} `{}`: {} ({reason})",
                                    t.replay,
                                    chain.trim(),
                                    t.outcome_refused
                                ),
                            },
                        )
                        .await;
                }
            }
        }
        "switch" => {
            let outcome = match routing::load(&console.host, plugin_dir, chain).await {
                Ok(loaded) => console
                    .host
                    .switch_chain(tenant, loaded)
                    .await
                    .map_err(|e| e.to_string()),
                Err(reason) => Err(reason),
            };
            let target = match &outcome {
                Ok(previous) => format!("{tenant}: {previous} → {}", chain.trim()),
                Err(_) => format!("{tenant}: → {}", chain.trim()),
            };
            console
                .record_change(
                    &headers,
                    viewer.lang,
                    &session,
                    tenant,
                    Action::SwitchChain,
                    target,
                    outcome.map(drop),
                )
                .await;
        }
        _ => {}
    }
    redirect("routing")
}

async fn audit_page(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let tenant = session.user.as_ref().map(|u| u.tenant.as_str());
    let body = audit::render(viewer.lang, &console.audit.entries(tenant).await);
    viewer.page(Page::Audit, t.audit_title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, peer: Option<&str>) -> Request {
        let mut request = Request::builder()
            .uri("/overview")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        if let Some(peer) = peer {
            let peer: SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        request
    }

    #[test]
    fn loopback_means_a_loopback_host_name_and_peer() {
        assert!(from_loopback(&request("127.0.0.1:8081", None)));
        assert!(from_loopback(&request("localhost:8081", None)));
        assert!(from_loopback(&request("[::1]:8081", Some("[::1]:5000"))));
        assert!(!from_loopback(&request("evil.example", None)));
        assert!(!from_loopback(&request("127.0.0.1.evil.example", None)));
        assert!(!from_loopback(&request(
            "127.0.0.1:8081",
            Some("10.0.0.7:5000")
        )));
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:8081"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "http://127.0.0.1:9999"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8081")])));
    }
}
