//! The operators page: per tenant, each operator's presence, load against capacity,
//! skills, languages and accounts, and the conversations they hold; buttons set presence
//! through [`Host::set_presence`], as the admin API does (stored, so every host sharing
//! the database routes on it).

use std::fmt::Write as _;

use crate::Host;
use crate::routing::Status;
use crate::types::Presence;

use super::html::{duration, escape};
use super::i18n::Lang;
use super::overview::table;

/// Conversations listed per operator, at most (the load counts them all).
const LISTED_PER_OPERATOR: usize = 20;
/// A customer's message, shown up to this many characters.
const TEXT_CHARS: usize = 100;

/// One tenant's operators.
#[derive(Clone, Debug)]
pub(crate) struct TenantOperators {
    tenant: String,
    /// False when the tenant has no routing (then it has no operators).
    routed: bool,
    operators: Vec<OperatorRow>,
}

#[derive(Clone, Debug)]
struct OperatorRow {
    id: String,
    name: String,
    /// What the operator (or an admin) set.
    presence: Presence,
    /// Whether working hours, if any, let them work now.
    on_shift: bool,
    load: u32,
    capacity: u32,
    skills: Vec<String>,
    languages: Vec<String>,
    accounts: Vec<String>,
    holds: Vec<Held>,
}

#[derive(Clone, Debug)]
struct Held {
    channel: String,
    customer: String,
    text: String,
    /// Since the operator got it.
    held_ms: u64,
    answered: bool,
}

/// Reads every tenant's roster from the host; each engine is held only while it is
/// copied. `tenants` limits it to those (a tenant's console user sees only theirs).
pub(crate) async fn sample(host: &Host, tenants: &[String]) -> Vec<TenantOperators> {
    let mut out = Vec::new();
    for tenant in tenants {
        let operators = host
            .with_routing(tenant, |engine| {
                let now = engine.now();
                engine
                    .roster()
                    .iter()
                    .map(|(operator, state)| {
                        let holds: Vec<Held> = engine
                            .conversations()
                            .iter()
                            .filter(|c| {
                                c.status == Status::Assigned
                                    && c.assignee.as_deref() == Some(operator.id.as_str())
                            })
                            .take(LISTED_PER_OPERATOR)
                            .map(|c| Held {
                                channel: c.thread.channel.clone(),
                                customer: c.customer.clone(),
                                text: c.last_text.chars().take(TEXT_CHARS).collect(),
                                held_ms: now.saturating_sub(c.assigned_at.unwrap_or(now)),
                                answered: c.first_response_at.is_some(),
                            })
                            .collect();
                        OperatorRow {
                            id: operator.id.clone(),
                            name: operator.name.clone(),
                            presence: state.presence,
                            on_shift: operator.hours.as_ref().is_none_or(|h| h.contains(now)),
                            load: state.load,
                            capacity: operator.capacity,
                            skills: operator.skills.clone(),
                            languages: operator.languages.clone(),
                            accounts: operator
                                .accounts
                                .iter()
                                .map(|a| format!("{}:{}", a.channel, a.id))
                                .collect(),
                            holds,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let (routed, operators) = match operators {
            Ok(operators) => (true, operators),
            Err(_) => (false, Vec::new()),
        };
        out.push(TenantOperators {
            tenant: tenant.clone(),
            routed,
            operators,
        });
    }
    out
}

/// `online`, `away`, `offline` from a form.
pub(crate) fn parse_presence(name: &str) -> Option<Presence> {
    match name {
        "online" => Some(Presence::Online),
        "away" => Some(Presence::Away),
        "offline" => Some(Presence::Offline),
        _ => None,
    }
}

pub(crate) fn presence_name(presence: Presence) -> &'static str {
    crate::metrics::presence_name(presence)
}

/// A presence in words.
pub(crate) fn presence_label(lang: Lang, presence: Presence) -> &'static str {
    let t = lang.texts();
    match presence {
        Presence::Online => t.presence_online,
        Presence::Away => t.presence_away,
        Presence::Offline => t.presence_offline,
    }
}

/// Sets an operator's presence; the reason when the host refused.
pub(crate) async fn apply(
    host: &Host,
    tenant: &str,
    operator: &str,
    presence: Presence,
) -> Result<(), String> {
    let known = host
        .with_routing(tenant, |engine| {
            engine.roster().operator(operator).is_some()
        })
        .await
        .map_err(|e| e.to_string())?;
    if !known {
        return Err(format!("no operator `{operator}` for tenant `{tenant}`"));
    }
    host.set_presence(tenant, operator, presence)
        .await
        .map_err(|e| e.to_string())
}

/// The page's body.
pub(crate) fn render(lang: Lang, csrf: &str, tenants: &[TenantOperators]) -> String {
    let t = lang.texts();
    let mut html = String::new();
    if tenants.iter().all(|q| !q.routed) {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.no_operators));
        return html;
    }
    for q in tenants.iter().filter(|q| q.routed) {
        let _ = write!(
            html,
            "<section id=\"operators-{tenant}\">\n<h2>{label} {tenant}</h2>\n",
            label = escape(t.tenant),
            tenant = escape(&q.tenant),
        );
        if q.operators.is_empty() {
            let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.no_operators));
            html.push_str("</section>\n");
            continue;
        }
        let rows: Vec<String> = q
            .operators
            .iter()
            .map(|o| operator_row(lang, csrf, &q.tenant, o))
            .collect();
        table(
            &mut html,
            &[
                t.operator, t.presence, t.load, t.skills, t.accounts, t.holds, t.actions,
            ],
            &rows,
        );
        html.push_str("</section>\n");
    }
    html
}

fn operator_row(lang: Lang, csrf: &str, tenant: &str, o: &OperatorRow) -> String {
    let t = lang.texts();
    let id = format!("{tenant}-{}", o.id);
    let presence_class = match (o.presence, o.on_shift) {
        (Presence::Online, true) => "ok",
        (Presence::Away, _) | (Presence::Online, false) => "warn",
        (Presence::Offline, _) => "bad",
    };
    let mut presence = format!(
        "<span id=\"presence-{id}\" class=\"pill {presence_class}\">{}</span>",
        escape(presence_label(lang, o.presence)),
        id = escape(&id),
    );
    if !o.on_shift {
        let _ = write!(
            presence,
            " <span class=\"muted\">{}</span>",
            escape(t.off_shift)
        );
    }
    let load_class = if o.load >= o.capacity { "warn" } else { "ok" };
    let list = |items: &[String]| {
        if items.is_empty() {
            "–".to_string()
        } else {
            escape(&items.join(", "))
        }
    };
    let holds = if o.holds.is_empty() {
        format!("<span class=\"muted\">{}</span>", escape(t.holds_none))
    } else {
        let mut items = String::from("<ul class=\"holds\">");
        for held in &o.holds {
            let _ = write!(
                items,
                "<li><strong>{customer}</strong> <span class=\"muted\">{channel}, {held}{answered}</span>\
                 <br><span class=\"text\">{text}</span></li>",
                customer = escape(&held.customer),
                channel = escape(&held.channel),
                held = duration(held.held_ms),
                answered = if held.answered {
                    format!(", {}", escape(t.answered))
                } else {
                    String::new()
                },
                text = escape(&held.text),
            );
        }
        items.push_str("</ul>");
        items
    };
    let mut buttons = String::new();
    for choice in [Presence::Online, Presence::Away, Presence::Offline] {
        let current = choice == o.presence;
        let _ = write!(
            buttons,
            "<form method=\"post\" action=\"operators\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
             <input type=\"hidden\" name=\"operator\" value=\"{operator}\">\
             <button type=\"submit\" name=\"presence\" value=\"{value}\" \
             id=\"set-{value}-{id}\"{disabled}>{label}</button></form>",
            csrf = escape(csrf),
            tenant = escape(tenant),
            operator = escape(&o.id),
            value = presence_name(choice),
            id = escape(&id),
            disabled = if current { " disabled" } else { "" },
            label = escape(presence_label(lang, choice)),
        );
    }
    let name = if o.name == o.id {
        escape(&o.id)
    } else {
        format!(
            "{} <span class=\"muted\">{}</span>",
            escape(&o.name),
            escape(&o.id)
        )
    };
    format!(
        "<tr id=\"operator-{id}\">\
         <td data-label=\"{th_o}\"><strong>{name}</strong></td>\
         <td data-label=\"{th_p}\">{presence}</td>\
         <td data-label=\"{th_l}\" class=\"num\"><span id=\"load-{id}\" class=\"pill {load_class}\">\
         {load} / {capacity}</span></td>\
         <td data-label=\"{th_s}\">{skills}<br><span class=\"muted\">{th_lang}: {languages}</span></td>\
         <td data-label=\"{th_a}\">{accounts}</td>\
         <td data-label=\"{th_h}\" id=\"holds-{id}\">{holds}</td>\
         <td data-label=\"{th_x}\" class=\"actions\">{buttons}</td></tr>",
        id = escape(&id),
        th_o = escape(t.operator),
        th_p = escape(t.presence),
        th_l = escape(t.load),
        th_s = escape(t.skills),
        th_lang = escape(t.languages),
        th_a = escape(t.accounts),
        th_h = escape(t.holds),
        th_x = escape(t.actions),
        load = o.load,
        capacity = o.capacity,
        skills = list(&o.skills),
        languages = list(&o.languages),
        accounts = list(&o.accounts),
    )
}
