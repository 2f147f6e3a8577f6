//! Every change made through the console: who, what, when, and how it went. Kept in
//! memory for now (the last [`KEPT`] entries since the host started), also written to the
//! host's log, and shown on the audit page.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::html::{escape, time};
use super::i18n::Lang;
use super::overview::table;
use super::session::Who;

/// Entries kept; older ones are dropped.
pub(crate) const KEPT: usize = 1000;

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
        }
    }
}

/// One change.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) at_ms: u64,
    pub(crate) who: Who,
    /// The session's short label.
    pub(crate) session: String,
    pub(crate) action: Action,
    /// What it was done to: `tenant/connector`, `tenant/operator: online`,
    /// `tenant: old chain → new chain`.
    pub(crate) target: String,
    /// `None` when it was done; the reason when it was refused.
    pub(crate) refused: Option<String>,
}

/// The log, newest first.
#[derive(Default)]
pub(crate) struct AuditLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AuditLog {
    pub(crate) fn record(&self, entry: Entry) {
        tracing::info!(
            who = ?entry.who,
            session = entry.session,
            action = entry.action.name(),
            target = entry.target,
            refused = entry.refused.as_deref().unwrap_or_default(),
            "console change"
        );
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.push_front(entry);
        entries.truncate(KEPT);
    }

    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

/// The audit page's body.
pub(crate) fn render(lang: Lang, entries: &[Entry]) -> String {
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
            let who = match e.who {
                Who::AdminToken => t.who_admin,
                Who::Loopback => t.who_loopback,
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
                who = escape(who),
                session = escape(t.session),
                label = escape(&e.session),
                what = escape(e.action.label(lang)),
                target = escape(&e.target),
            )
        })
        .collect();
    table(&mut html, &[t.when, t.who, t.what, t.outcome], &rows);
    html
}
