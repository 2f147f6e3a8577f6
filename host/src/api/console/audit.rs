//! Every change made through the console: who, what, when, and how it went. Kept in the
//! store (so it survives restarts and every host sharing the database shows the same
//! history), also written to the host's log, and shown on the audit page newest first,
//! [`PAGE`] entries at a time with a link to the older ones (read a page at a time in
//! SQL), only their own tenant's to a tenant's console user.

use std::fmt::Write as _;

use crate::store::{Store, StoredAudit};

use super::html::{escape, time};
use super::i18n::Lang;
use super::overview::table;
use super::session::Who;

/// Entries one audit page shows.
pub(crate) const PAGE: usize = 100;

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Enable,
    Disable,
    Reset,
    Reload,
    /// An operator's presence.
    Presence,
    /// A tenant's active routing chain.
    SwitchChain,
    /// A new version of a connector's plugin, uploaded and swapped in.
    Upload,
    /// The version an upload replaced, swapped in again.
    Rollback,
    /// A connect (or re-authorise) flow started for an account.
    Connect,
    /// A customer erased at the CRM's request (written by the store, with the erasure).
    EraseCustomer,
}

impl Action {
    /// A connector's action, as its button names it.
    pub(crate) fn parse(name: &str) -> Option<Action> {
        match name {
            "enable" => Some(Action::Enable),
            "disable" => Some(Action::Disable),
            "reset" => Some(Action::Reset),
            "reload" => Some(Action::Reload),
            _ => None,
        }
    }

    /// An action as the store names it.
    fn from_name(name: &str) -> Option<Action> {
        [
            Action::Enable,
            Action::Disable,
            Action::Reset,
            Action::Reload,
            Action::Presence,
            Action::SwitchChain,
            Action::Upload,
            Action::Rollback,
            Action::Connect,
            Action::EraseCustomer,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Reset => "reset",
            Action::Reload => "reload",
            Action::Presence => "presence",
            Action::SwitchChain => "switch-chain",
            Action::Upload => "upload",
            Action::Rollback => "rollback",
            Action::Connect => "connect",
            Action::EraseCustomer => "erase-customer",
        }
    }

    /// The action as its button says it.
    pub(crate) fn label(self, lang: Lang) -> &'static str {
        let t = lang.texts();
        match self {
            Action::Enable => t.enable,
            Action::Disable => t.disable,
            Action::Reset => t.reset,
            Action::Reload => t.reload,
            Action::Presence => t.set_presence,
            Action::SwitchChain => t.switch_chain,
            Action::Upload => t.upload,
            Action::Rollback => t.rollback,
            Action::Connect => t.connect_started,
            Action::EraseCustomer => t.erase_customer,
        }
    }
}

/// One change.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) at_ms: u64,
    /// The tenant the change was made to.
    pub(crate) tenant: String,
    pub(crate) who: Who,
    /// For a console user, their username.
    pub(crate) user: Option<String>,
    /// The session's short label.
    pub(crate) session: String,
    pub(crate) action: Action,
    /// What it was done to: `tenant/connector`, `tenant/operator: online`,
    /// `tenant: old chain → new chain`.
    pub(crate) target: String,
    /// `None` when it was done; the reason when it was refused.
    pub(crate) refused: Option<String>,
}

/// The log, in the store.
pub(crate) struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub(crate) fn new(store: Store) -> AuditLog {
        AuditLog { store }
    }

    /// Records a change (and logs it); a store that cannot take it is logged loudly.
    pub(crate) async fn record(&self, entry: Entry) {
        tracing::info!(
            tenant = entry.tenant,
            who = entry.who.name(),
            user = entry.user.as_deref().unwrap_or_default(),
            session = entry.session,
            action = entry.action.name(),
            target = entry.target,
            refused = entry.refused.as_deref().unwrap_or_default(),
            "console change"
        );
        let stored = StoredAudit {
            at: entry.at_ms,
            tenant: entry.tenant,
            who: entry.who.name().to_string(),
            username: entry.user,
            session: entry.session,
            action: entry.action.name().to_string(),
            target: entry.target,
            refused: entry.refused,
        };
        if let Err(e) = self.store.append_console_audit(&stored).await {
            tracing::error!(
                action = stored.action,
                target = stored.target,
                "the console could not write its audit log: {e:#}"
            );
        }
    }

    /// One page of entries, newest first, after `before` (the position an earlier page's
    /// link gave; `None`: the latest), and the position of the next page if there is one;
    /// only `tenant`'s when given.
    pub(crate) async fn entries(
        &self,
        tenant: Option<&str>,
        before: Option<&str>,
    ) -> (Vec<Entry>, Option<String>) {
        let before = before.and_then(parse_position);
        let position = before.as_ref().map(|(at, id)| (*at, id.as_str()));
        let mut stored = match self.store.console_audit(tenant, PAGE + 1, position).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!("the console could not read its audit log: {e:#}");
                Vec::new()
            }
        };
        let older = if stored.len() > PAGE {
            stored.truncate(PAGE);
            stored.last().map(|(id, e)| format!("{}-{id}", e.at))
        } else {
            None
        };
        let entries = stored
            .into_iter()
            .filter_map(|(_, e)| {
                Some(Entry {
                    at_ms: e.at,
                    tenant: e.tenant,
                    who: Who::parse(&e.who)?,
                    user: e.username,
                    session: e.session,
                    action: Action::from_name(&e.action)?,
                    target: e.target,
                    refused: e.refused,
                })
            })
            .collect();
        (entries, older)
    }
}

/// `at-id`, as a page's link to the older entries writes it; anything else is no position.
fn parse_position(text: &str) -> Option<(u64, String)> {
    let (at, id) = text.split_once('-')?;
    let usable = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    Some((at.parse().ok()?, id.to_string())).filter(|_| usable)
}

/// The audit page's body; `older` is the position of the next page, if any.
pub(crate) fn render(lang: Lang, entries: &[Entry], older: Option<&str>) -> String {
    let t = lang.texts();
    let mut html = String::new();
    let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(t.audit_note));
    if entries.is_empty() {
        let _ = writeln!(
            html,
            "<p id=\"audit-empty\" class=\"empty\">{}</p>",
            escape(t.audit_empty)
        );
        return html;
    }
    let rows: Vec<String> = entries
        .iter()
        .map(|e| {
            let who = match (e.who, &e.user) {
                (Who::AdminToken, _) => t.who_admin.to_string(),
                (Who::Loopback, _) => t.who_loopback.to_string(),
                (Who::Crm, _) => t.who_crm.to_string(),
                (Who::User, user) => super::html::fill(
                    t.who_user,
                    &[
                        ("user", user.as_deref().unwrap_or_default()),
                        ("tenant", &e.tenant),
                    ],
                ),
            };
            let outcome = match &e.refused {
                None => escape(t.outcome_done),
                Some(reason) => format!("{}: {}", escape(t.outcome_refused), escape(reason)),
            };
            format!(
                "<tr class=\"audit-entry\"><td data-label=\"{th_when}\">{when}</td>\
                 <td data-label=\"{th_who}\">{who}, {session} {label}</td>\
                 <td data-label=\"{th_what}\">{what} {target}</td>\
                 <td data-label=\"{th_outcome}\">{outcome}</td></tr>",
                th_when = escape(t.when),
                th_who = escape(t.who),
                th_what = escape(t.what),
                th_outcome = escape(t.outcome),
                when = time(e.at_ms, true),
                who = escape(&who),
                session = escape(t.session),
                label = escape(&e.session),
                what = escape(e.action.label(lang)),
                target = escape(&e.target),
            )
        })
        .collect();
    table(&mut html, &[t.when, t.who, t.what, t.outcome], &rows);
    if let Some(older) = older {
        let _ = writeln!(
            html,
            "<p><a id=\"audit-older\" href=\"audit?before={}\">{}</a></p>",
            escape(older),
            escape(t.audit_older)
        );
    }
    html
}
