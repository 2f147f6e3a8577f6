//! The connectors page: each connector's plugin (name, version, contract and
//! capabilities as `plugin inspect` shows them, and its grants), health and circuit, with
//! enable / disable / reset / reload buttons, a rollback button after an upload
//! ([`super::upload`]) and the upload form. The buttons are plain forms (they work
//! without script) that post to `connectors`; [`apply`] calls the same [`Host`] methods
//! as the admin API.
//!
//! Each row is one connector; below the table, its host-held accounts with their token
//! state and the Connect / Re-authorise button ([`super::accounts`]).

use std::fmt::Write as _;

use crate::connectors::ConnectorHealth;
use crate::{Host, PluginId};

use super::audit::Action;
use super::html::{escape, time};
use super::i18n::Lang;
use super::overview::{circuit, table};

/// Does `action` to a connector; the reason when the host refused.
pub(crate) async fn apply(
    host: &Host,
    action: Action,
    tenant: &str,
    name: &str,
) -> Result<(), String> {
    match action {
        Action::Enable | Action::Disable => host
            .set_connector_enabled(tenant, name, action == Action::Enable)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Reset => host
            .reset_connector(tenant, name)
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Reload => match host.reload_connector(tenant, name).await {
            Ok(report) => report.error.map_or(Ok(()), Err),
            Err(e) => Err(e.to_string()),
        },
        Action::Presence
        | Action::SwitchChain
        | Action::Upload
        | Action::Rollback
        | Action::Connect
        | Action::EraseCustomer => Err(format!("`{}` is not a connector's action", action.name())),
    }
}

/// What the page shows of a connector besides its health.
#[derive(Clone, Debug, Default)]
pub(crate) struct Details {
    /// Contract version and capabilities of the serving file, as `plugin inspect` reads
    /// them; `None` when the file cannot be read now.
    inspected: Option<(String, Vec<String>)>,
    /// Hosts, credential names and secret names granted.
    grants: (Vec<String>, Vec<String>, Vec<String>),
    /// The version a rollback would bring back.
    pub(crate) previous: Option<PluginId>,
}

/// Each connector's details, in the order of `connectors`; plugin files are read off the
/// async threads.
pub(crate) async fn details(host: &Host, connectors: &[ConnectorHealth]) -> Vec<Details> {
    let files: Vec<std::path::PathBuf> = connectors.iter().map(|c| c.plugin_file.clone()).collect();
    let inspected = tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|file| {
                crate::runtime::inspect_file(file)
                    .ok()
                    .map(|i| (i.contract.to_string(), i.capabilities))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    connectors
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let grants = host
                .connector_spec(&c.tenant, &c.connector)
                .map(|spec| {
                    (
                        spec.grants.allowed_hosts.clone(),
                        spec.grants.credentials.keys().cloned().collect(),
                        spec.grants.secrets.keys().cloned().collect(),
                    )
                })
                .unwrap_or_default();
            Details {
                inspected: inspected.get(index).cloned().flatten(),
                grants,
                previous: None,
            }
        })
        .collect()
}

/// The page's body.
pub(crate) fn render(
    lang: Lang,
    csrf: &str,
    connectors: &[ConnectorHealth],
    details: &[Details],
) -> String {
    let t = lang.texts();
    let mut html = String::new();
    if connectors.is_empty() {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.no_connectors));
        return html;
    }
    let rows: Vec<String> = connectors
        .iter()
        .zip(details.iter().chain(std::iter::repeat(&Details::default())))
        .map(|(c, d)| {
            let id = format!("{}-{}", c.tenant, c.connector);
            let state_class = if c.enabled { "ok" } else { "bad" };
            let circuit_class = match c.circuit {
                crate::connectors::Circuit::Closed => "ok",
                crate::connectors::Circuit::BackingOff => "warn",
                crate::connectors::Circuit::Open => "bad",
            };
            let mut buttons = String::new();
            let toggle = if c.enabled {
                Action::Disable
            } else {
                Action::Enable
            };
            for action in [toggle, Action::Reset, Action::Reload] {
                let _ = write!(
                    buttons,
                    "<form method=\"post\" action=\"connectors\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
                     <input type=\"hidden\" name=\"name\" value=\"{name}\">\
                     <button type=\"submit\" name=\"action\" value=\"{action}\" \
                     id=\"{action}-{id}\">{label}</button></form>",
                    csrf = escape(csrf),
                    tenant = escape(&c.tenant),
                    name = escape(&c.connector),
                    action = action.name(),
                    id = escape(&id),
                    label = escape(action.label(lang)),
                );
            }
            if let Some(previous) = &d.previous {
                let _ = write!(
                    buttons,
                    "<form method=\"post\" action=\"connectors\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
                     <input type=\"hidden\" name=\"name\" value=\"{name}\">\
                     <button type=\"submit\" name=\"action\" value=\"rollback\" \
                     id=\"rollback-{id}\">{label}</button></form>",
                    csrf = escape(csrf),
                    tenant = escape(&c.tenant),
                    name = escape(&c.connector),
                    id = escape(&id),
                    label = escape(&super::html::fill(
                        t.rollback_to,
                        &[("plugin", &previous.to_string())]
                    )),
                );
            }
            let inspected = match &d.inspected {
                Some((contract, capabilities)) => format!(
                    "<br><span class=\"muted\">{th_contract} {contract} · {capabilities}</span>",
                    th_contract = escape(t.contract),
                    contract = escape(contract),
                    capabilities = escape(&capabilities.join(", ")),
                ),
                None => String::new(),
            };
            let (hosts, credentials, secrets) = &d.grants;
            let mut grants = Vec::new();
            for (label, items) in [
                (t.hosts, hosts),
                (t.credentials, credentials),
                (t.secrets, secrets),
            ] {
                if !items.is_empty() {
                    grants.push(format!("{label}: {}", items.join(", ")));
                }
            }
            let grants = if grants.is_empty() {
                t.grants_none.to_string()
            } else {
                grants.join("; ")
            };
            format!(
                "<tr id=\"connector-{id}\">\
                 <td data-label=\"{th_c}\"><strong>{connector}</strong> \
                 <span class=\"muted\">{tenant}</span></td>\
                 <td data-label=\"{th_p}\"><span id=\"plugin-{id}\">{plugin} \
                 <span class=\"muted\">{version}</span></span>{inspected}<br>\
                 <span class=\"muted\">{th_l} {loaded}</span><br>\
                 <span class=\"muted\">{th_g}: {grants}</span></td>\
                 <td data-label=\"{th_s}\"><span id=\"state-{id}\" class=\"pill {state_class}\">\
                 {state}</span></td>\
                 <td data-label=\"{th_k}\"><span id=\"circuit-{id}\" class=\"pill {circuit_class}\">\
                 {circuit}</span></td>\
                 <td data-label=\"{th_f}\" class=\"num\">{faults}</td>\
                 <td data-label=\"{th_lf}\" class=\"text\">{last_fault}</td>\
                 <td data-label=\"{th_a}\" class=\"actions\">{buttons}</td></tr>",
                id = escape(&id),
                th_c = escape(t.connector),
                th_p = escape(t.plugin),
                th_l = escape(t.loaded_at),
                th_g = escape(t.grants),
                grants = escape(&grants),
                th_s = escape(t.state),
                th_k = escape(t.circuit),
                th_f = escape(t.faults),
                th_lf = escape(t.last_fault),
                th_a = escape(t.actions),
                connector = escape(&c.connector),
                tenant = escape(&c.tenant),
                plugin = escape(&c.plugin.name),
                version = escape(&c.plugin.version),
                loaded = time(c.loaded_at_ms, true),
                state = escape(if c.enabled { t.enabled } else { t.disabled }),
                circuit = escape(circuit(lang, c.circuit)),
                faults = c.faults,
                last_fault = escape(
                    c.last_fault
                        .as_ref()
                        .map_or(t.none, |incident| incident.message.as_str())
                ),
            )
        })
        .collect();
    table(
        &mut html,
        &[
            t.connector,
            t.plugin,
            t.state,
            t.circuit,
            t.faults,
            t.last_fault,
            t.actions,
        ],
        &rows,
    );
    html
}
