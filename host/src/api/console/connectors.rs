//! The connectors page: each connector's plugin, health and circuit, with enable /
//! disable / reset / reload buttons. The buttons are plain forms (they work without
//! script) that post to `connectors`; [`apply`] calls the same [`Host`] methods as the
//! admin API.

use std::fmt::Write as _;

use crate::Host;
use crate::connectors::ConnectorHealth;

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
        Action::Presence | Action::SwitchChain => {
            Err(format!("`{}` is not a connector's action", action.name()))
        }
    }
}

/// The page's body.
pub(crate) fn render(lang: Lang, csrf: &str, connectors: &[ConnectorHealth]) -> String {
    let t = lang.texts();
    let mut html = String::new();
    if connectors.is_empty() {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.no_connectors));
        return html;
    }
    let rows: Vec<String> = connectors
        .iter()
        .map(|c| {
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
            format!(
                "<tr id=\"connector-{id}\">\
                 <td data-label=\"{th_c}\"><strong>{connector}</strong> \
                 <span class=\"muted\">{tenant}</span></td>\
                 <td data-label=\"{th_p}\">{plugin} <span class=\"muted\">{version}</span><br>\
                 <span class=\"muted\">{th_l} {loaded}</span></td>\
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
