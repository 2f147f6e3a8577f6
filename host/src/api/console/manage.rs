//! The pages that change things: connectors (enable, disable, reset, reload, upload and
//! roll back a plugin), operators (presence) and routing (replay, switch).

use super::*;

pub(super) async fn connectors_page(
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
        .filter(|c| tenants.iter().any(|t| *t == c.tenant))
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
    let accounts = accounts::visible(&console, session).await;
    body.push_str(&accounts::render(viewer.lang, &session.csrf, &accounts));
    if !health.is_empty() {
        let names: Vec<(String, String)> = health
            .iter()
            .map(|c| (c.tenant.to_string(), c.connector.to_string()))
            .collect();
        upload::render_form(&mut body, viewer.lang, &session.csrf, &names);
    }
    viewer.page(Page::Connectors, t.connectors_title, &body)
}

pub(super) async fn connector_action(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Response {
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
pub(super) async fn changing(
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
pub(super) fn files_allowed(lang: Lang, session: &SessionView) -> Result<(), String> {
    match session.who {
        Who::User | Who::Crm => Err(lang.texts().admin_only.to_string()),
        Who::AdminToken | Who::Loopback => Ok(()),
    }
}

impl Console {
    /// The tenants a session may see: a console user only their own.
    pub(super) fn tenants(&self, session: &SessionView) -> Vec<String> {
        let all = self.host.tenants();
        match &session.user {
            Some(user) => all.into_iter().filter(|t| *t == user.tenant).collect(),
            None => all,
        }
    }

    /// Records a change to `tenant` in the audit log and leaves its outcome for the
    /// session's next page.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_change(
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
                at_ms: self.host.store().now_ms(),
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
pub(super) async fn upload_plugin(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Response {
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

pub(super) async fn operators_page(
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

pub(super) async fn operator_action(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Response {
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

pub(super) async fn routing_page(
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

pub(super) async fn routing_action(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Response {
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
