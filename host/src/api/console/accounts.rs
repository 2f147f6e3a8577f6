//! The connectors page's accounts: every host-held account (`credential = "connected"`)
//! with its token state (connected, expiring, needs re-authorisation, disconnected),
//! whether the platform's webhook subscription is live, when its token expires and the
//! replies it holds; and a **Connect** / **Re-authorise** button per account.
//!
//! The button posts (with the session's CSRF token) to `accounts`, which starts the same
//! OAuth flow as `centralino accounts connect` and the admin API, writes the start to the
//! audit log, and sends the browser on to the platform's consent page. The platform sends
//! it back to the host's `/oauth/callback`, which completes the flow and, because the flow
//! was started here, returns the browser to this page, where the account shows its new
//! state.

use std::fmt::Write as _;

use crate::accounts::{AccountState, AccountStatus};

use super::html::{escape, time};
use super::i18n::Lang;
use super::overview::table;
use super::*;

/// The accounts section of the connectors page (nothing when no account is host-held).
pub(super) fn render(lang: Lang, csrf: &str, accounts: &[AccountStatus]) -> String {
    let t = lang.texts();
    let mut html = String::new();
    if accounts.is_empty() {
        return html;
    }
    let _ = write!(
        html,
        "<section id=\"accounts\">\n<h2>{}</h2>\n<p class=\"muted\">{}</p>\n",
        escape(t.accounts),
        escape(t.accounts_note)
    );
    let rows: Vec<String> = accounts
        .iter()
        .map(|a| {
            let id = format!("{}-{}-{}", a.tenant, a.connector, a.account);
            let (class, state) = match a.state {
                AccountState::Connected => ("ok", t.account_connected),
                AccountState::Expiring => ("warn", t.account_expiring),
                AccountState::NeedsReauth => ("bad", t.account_needs_reauth),
                AccountState::Disconnected => ("bad", t.account_disconnected),
            };
            let (sub_class, subscribed) = match a.subscribed {
                Some(true) => ("ok", t.webhooks_live),
                Some(false) => ("warn", t.webhooks_not_live),
                None => ("muted", t.webhooks_not_used),
            };
            let button = if a.state == AccountState::Disconnected {
                t.connect
            } else {
                t.reauthorise
            };
            let name = match &a.label {
                Some(label) => format!("{} ({})", a.account, label),
                None => a.account.clone(),
            };
            format!(
                "<tr id=\"account-{id}\">\
                 <td data-label=\"{th_c}\">{connector} <span class=\"muted\">{tenant}</span></td>\
                 <td data-label=\"{th_a}\"><strong>{name}</strong></td>\
                 <td data-label=\"{th_s}\"><span id=\"account-state-{id}\" class=\"pill {class}\" \
                 data-state=\"{state_name}\">{state}</span></td>\
                 <td data-label=\"{th_w}\"><span id=\"webhooks-{id}\" class=\"pill {sub_class}\">\
                 {subscribed}</span></td>\
                 <td data-label=\"{th_e}\">{expires}</td>\
                 <td data-label=\"{th_h}\" class=\"num\">{held}</td>\
                 <td data-label=\"{th_x}\" class=\"actions\">\
                 <form method=\"post\" action=\"accounts\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
                 <input type=\"hidden\" name=\"name\" value=\"{connector}\">\
                 <input type=\"hidden\" name=\"account\" value=\"{account}\">\
                 <button type=\"submit\" name=\"action\" value=\"connect\" id=\"connect-{id}\">\
                 {button}</button></form></td></tr>",
                id = escape(&id),
                th_c = escape(t.connector),
                th_a = escape(t.account),
                th_s = escape(t.token_state),
                th_w = escape(t.webhooks),
                th_e = escape(t.token_expires),
                th_h = escape(t.held_replies),
                th_x = escape(t.actions),
                connector = escape(&a.connector),
                tenant = escape(&a.tenant),
                name = escape(&name),
                state_name = a.state.name(),
                state = escape(state),
                subscribed = escape(subscribed),
                expires = a
                    .expires_at
                    .map_or_else(|| escape(t.none), |at| time(at, true)),
                held = a.held_replies,
                csrf = escape(csrf),
                account = escape(&a.account),
                button = escape(button),
            )
        })
        .collect();
    table(
        &mut html,
        &[
            t.connector,
            t.account,
            t.token_state,
            t.webhooks,
            t.token_expires,
            t.held_replies,
            t.actions,
        ],
        &rows,
    );
    html.push_str("</section>\n");
    html
}

/// The host-held accounts of the tenants a session may see.
pub(super) async fn visible(console: &Console, session: &SessionView) -> Vec<AccountStatus> {
    let tenants = console.tenants(session);
    match console.host.accounts().await {
        Ok(accounts) => accounts
            .into_iter()
            .filter(|a| tenants.iter().any(|t| *t == a.tenant))
            .collect(),
        Err(e) => {
            tracing::warn!("the console could not read the accounts: {e}");
            Vec::new()
        }
    }
}

/// `POST accounts`: Connect / Re-authorise. Starts the OAuth flow for the account (its
/// callback returns the browser to the connectors page), records it in the audit log and
/// sends the browser to the platform's consent page.
pub(super) async fn account_action(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Response {
    let (viewer, headers, session, form) = match changing(&console, request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let (Some(tenant), Some(name), Some(account), Some("connect")) = (
        field(&form, "tenant"),
        field(&form, "name"),
        field(&form, "account"),
        field(&form, "action"),
    ) else {
        return redirect("connectors");
    };
    let target = format!("{tenant}/{name}/{account}");
    let started = if console.tenants(&session).iter().any(|t| t == tenant) {
        console
            .host
            .connect_account_from_console(tenant, name, Some(account))
            .await
            .map_err(|e| e.to_string())
    } else {
        Err(format!("no tenant `{tenant}`"))
    };
    let outcome = started.as_ref().map(drop).map_err(Clone::clone);
    console
        .record_change(
            &headers,
            viewer.lang,
            &session,
            tenant,
            Action::Connect,
            target,
            outcome,
        )
        .await;
    match started {
        Ok(start) => to_platform(viewer.lang, &start.authorize_url),
        Err(_) => redirect("connectors"),
    }
}

/// A page that sends the browser on to the platform's consent page. Not a redirect:
/// the console's `form-action 'self'` policy forbids a form's redirect to another site,
/// and a page's own refresh is no form submission.
fn to_platform(lang: Lang, url: &str) -> Response {
    let t = lang.texts();
    let url = escape(url);
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"0; url={url}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"console.css\">\n</head>\n\
         <body>\n<main>\n<h1>{title}</h1>\n<p><a id=\"to-platform\" href=\"{url}\">{go}</a></p>\n\
         </main>\n</body>\n</html>\n",
        lang = t.html_lang,
        title = escape(t.to_consent_title),
        go = escape(t.to_consent_link),
    );
    Html(html).into_response()
}
