//! Building the console's HTML: escaping, the page frame, durations and times.
//!
//! Pages are plain strings built here, every dynamic value through [`escape`]. Links
//! are relative (`overview`, `console.css`): every page sits one folder under the
//! console's root, so the console works wherever an embedder nests the admin API.

use std::fmt::Write as _;

use super::i18n::{Lang, Texts};
use super::session::SessionView;

/// `text` made safe for HTML text and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Which page is showing, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    Login,
    Overview,
    Connectors,
    Operators,
    Routing,
    Audit,
    Refused,
}

impl Page {
    fn path(self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Overview => "overview",
            Page::Connectors => "connectors",
            Page::Operators => "operators",
            Page::Routing => "routing",
            Page::Audit => "audit",
            Page::Refused => "overview",
        }
    }
}

/// A whole page: head, header with navigation and language switch, `body`.
pub(crate) fn page(
    lang: Lang,
    current: Page,
    session: Option<&SessionView>,
    heading: &str,
    body: &str,
) -> String {
    let t = lang.texts();
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{heading} · {title}</title>\n\
         <link rel=\"stylesheet\" href=\"console.css\">\n\
         <script src=\"console.js\" defer></script>\n</head>\n",
        lang = t.html_lang,
        heading = escape(heading),
        title = escape(t.title),
    );
    let _ = write!(
        html,
        "<body data-page=\"{page}\">\n<header class=\"top\">\n\
         <span class=\"brand\">{title}</span>\n",
        page = current.path(),
        title = escape(t.title),
    );
    if let Some(session) = session {
        html.push_str("<nav aria-label=\"console\">\n");
        for (page, label) in [
            (Page::Overview, t.nav_overview),
            (Page::Connectors, t.nav_connectors),
            (Page::Operators, t.nav_operators),
            (Page::Routing, t.nav_routing),
            (Page::Audit, t.nav_audit),
        ] {
            let current_attr = if page == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = writeln!(
                html,
                "<a id=\"nav-{path}\" href=\"{path}\"{current_attr}>{label}</a>",
                path = page.path(),
                label = escape(label),
            );
        }
        html.push_str("</nav>\n");
        let _ = writeln!(
            html,
            "<form class=\"logout\" method=\"post\" action=\"logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <span class=\"who\">{signed_in}: {who}</span> \
             <button id=\"logout\" type=\"submit\">{logout}</button></form>",
            csrf = escape(&session.csrf),
            signed_in = escape(t.signed_in_as),
            who = escape(&who(t, session)),
            logout = escape(t.logout),
        );
    }
    let other = lang.other();
    let _ = write!(
        html,
        "<a id=\"lang\" class=\"lang\" href=\"{path}?lang={code}\" hreflang=\"{code}\" \
         lang=\"{code}\" aria-label=\"{label}\">{name}</a>\n</header>\n<main>\n<h1>{heading}</h1>\n",
        path = current.path(),
        code = other.code(),
        label = escape(t.language_label),
        name = escape(other.texts().language_name),
        heading = escape(heading),
    );
    if let Some(flash) = session.and_then(|s| s.flash.as_ref()) {
        let _ = writeln!(
            html,
            "<p id=\"flash\" class=\"flash {kind}\" role=\"status\">{text}</p>",
            kind = if flash.ok { "ok" } else { "bad" },
            text = escape(&flash.text),
        );
    }
    html.push_str(body);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// Who a session is, as the header and the audit log say it.
pub(crate) fn who(t: &Texts, session: &SessionView) -> String {
    let kind = match (session.who, &session.user) {
        (super::session::Who::AdminToken, _) => t.who_admin.to_string(),
        (super::session::Who::Loopback, _) => t.who_loopback.to_string(),
        (super::session::Who::Crm, _) => t.who_crm.to_string(),
        (super::session::Who::User, user) => fill(
            t.who_user,
            &[
                ("user", user.as_ref().map_or("", |u| u.username.as_str())),
                ("tenant", user.as_ref().map_or("", |u| u.tenant.as_str())),
            ],
        ),
    };
    format!("{kind}, {} {}", t.session, session.label)
}

/// A wait or an age: `12 s`, `3 min 05 s`, `2 h 07 min` (the same in both languages).
pub(crate) fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// A time of day in UTC (`14:03:07 UTC`), from milliseconds since the epoch; with the date
/// (`2026-12-03 14:03:07 UTC`) when `with_date`.
pub(crate) fn time(ms: u64, with_date: bool) -> String {
    let seconds = ms / 1000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    );
    if !with_date {
        return clock;
    }
    let (year, month, day) = crate::calendar::civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{year:04}-{month:02}-{day:02} {clock}")
}

/// `template` with `{name}` replaced by each value.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn durations_and_times_read_naturally() {
        assert_eq!(duration(12_400), "12 s");
        assert_eq!(duration(185_000), "3 min 05 s");
        assert_eq!(duration(7_620_000), "2 h 07 min");
        assert_eq!(time(1_796_306_587_000, true), "2026-12-03 14:03:07 UTC");
        assert_eq!(time(0, false), "00:00:00 UTC");
    }
}
