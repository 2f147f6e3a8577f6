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
//! | `GET /connectors`, `POST /connectors` | each connector's plugin (contract, capabilities, grants), health and circuit; enable, disable, reset, reload; confirm or cancel an upload, roll back; the host-held accounts with their token state and webhook subscription |
//! | `POST /accounts` | Connect / Re-authorise an account: starts the OAuth flow, on to the platform's consent page; its callback returns to `connectors` ([`accounts`]) |
//! | `POST /upload` | a new version of a connector's plugin, inspected and held for confirmation ([`upload`]) |
//! | `GET /operators`, `POST /operators` | each operator's presence, load, skills, accounts and conversations; set presence ([`operators`]) |
//! | `GET /routing`, `POST /routing` | live and shadow chains, their disagreements; replay a candidate chain over stored traffic; switch to it ([`routing`]) |
//! | `GET /audit` | every change made through the console: who, what, when; 100 a page, `?before=` for older ones |
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

mod accounts;
mod audit;
mod connectors;
mod figures;
mod html;
mod i18n;
mod live;
mod login;
mod manage;
mod operators;
mod overview;
mod routing;
mod session;
mod upload;
mod users;

use login::*;
use manage::*;
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
        .route("/accounts", post(accounts::account_action))
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

async fn audit_page(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    let Some(session) = &viewer.session else {
        return redirect("login");
    };
    let t = viewer.lang.texts();
    let tenant = session.user.as_ref().map(|u| u.tenant.as_str());
    let before = uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("before="))
    });
    let (entries, older) = console.audit.entries(tenant, before).await;
    let body = audit::render(viewer.lang, &entries, older.as_deref());
    viewer.page(Page::Audit, t.audit_title, &body)
}

#[cfg(test)]
mod tests;
