//! Logging in (the admin token or a tenant's console user) and out.

use super::*;

pub(super) async fn login_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = Viewer::of(&console, &headers, &uri, true).await;
    if viewer.session.is_some() {
        return redirect("overview");
    }
    login_form(&console, &viewer, None, StatusCode::OK)
}

/// The login page with a fresh form token (and `problem`, when the last try failed).
pub(super) fn login_form(
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

pub(super) async fn login(State(console): State<Arc<Console>>, request: Request) -> Response {
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

pub(super) async fn logout(State(console): State<Arc<Console>>, request: Request) -> Response {
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
