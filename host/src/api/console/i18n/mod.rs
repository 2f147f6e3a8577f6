//! Every string the console shows, in English and Italian.
//!
//! [`Texts`] is one struct with a field per string and one constant per language, so a
//! string missing in one language is a compile error. The language comes from `?lang=`
//! (remembered in a cookie), else that cookie, else the browser's `Accept-Language`.

use axum::http::{HeaderMap, header};

/// The console's languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    It,
}

/// The cookie that remembers a language chosen with `?lang=`.
pub(crate) const LANG_COOKIE: &str = "centralino_lang";

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("it") {
            Some(Lang::It)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The other language, offered by the switch in every page's header.
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::En => Lang::It,
            Lang::It => Lang::En,
        }
    }

    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::It => &IT,
        }
    }

    /// The language of a request: `query` (`?lang=`), the cookie, then `Accept-Language`
    /// by quality; English when nothing matches.
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> Lang {
        if let Some(lang) = query.and_then(Lang::from_code) {
            return lang;
        }
        if let Some(lang) = super::session::cookie(headers, LANG_COOKIE).and_then(Lang::from_code) {
            return lang;
        }
        let accepted = headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        let mut best: Option<(u16, Lang)> = None;
        for item in accepted {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_code) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality_per_mille);
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

/// `q=0.8` as 800; anything unreadable as 0 (not acceptable).
fn quality_per_mille(q: &str) -> u16 {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
    match (whole, digits.parse::<u16>()) {
        ("1", _) => 1000,
        ("0", Ok(f)) => f,
        _ => 0,
    }
}

/// The console's strings. `{placeholders}` are filled in by the pages.
pub(crate) struct Texts {
    pub(crate) html_lang: &'static str,
    pub(crate) language_name: &'static str,
    pub(crate) language_label: &'static str,
    pub(crate) title: &'static str,
    pub(crate) nav_overview: &'static str,
    pub(crate) nav_connectors: &'static str,
    pub(crate) nav_audit: &'static str,
    pub(crate) logout: &'static str,
    pub(crate) signed_in_as: &'static str,

    pub(crate) login_title: &'static str,
    pub(crate) login_token_label: &'static str,
    pub(crate) login_token_help: &'static str,
    pub(crate) login_button: &'static str,
    pub(crate) login_no_token: &'static str,
    pub(crate) login_enter: &'static str,
    pub(crate) login_wrong_token: &'static str,
    pub(crate) login_expired: &'static str,
    pub(crate) sessions_in_memory: &'static str,

    pub(crate) overview_title: &'static str,
    pub(crate) live_on: &'static str,
    pub(crate) live_off: &'static str,
    pub(crate) updated_at: &'static str,
    pub(crate) ready: &'static str,
    pub(crate) not_ready: &'static str,
    pub(crate) waiting: &'static str,
    pub(crate) longest_wait: &'static str,
    pub(crate) connectors_unhealthy: &'static str,
    pub(crate) outbox_backlog: &'static str,
    pub(crate) tasks_down: &'static str,
    pub(crate) by_brand: &'static str,
    pub(crate) tenant: &'static str,
    pub(crate) brand: &'static str,
    pub(crate) no_brand: &'static str,
    pub(crate) no_routing: &'static str,
    pub(crate) waiting_customers: &'static str,
    pub(crate) customer: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) message: &'static str,
    pub(crate) waited: &'static str,
    pub(crate) estimate: &'static str,
    pub(crate) estimate_about: &'static str,
    pub(crate) estimate_no_history: &'static str,
    pub(crate) estimate_nobody: &'static str,
    pub(crate) nobody_waiting: &'static str,
    pub(crate) all_connectors_healthy: &'static str,
    pub(crate) outbox_title: &'static str,
    pub(crate) pending: &'static str,
    pub(crate) due: &'static str,
    pub(crate) sending: &'static str,
    pub(crate) oldest_pending: &'static str,
    pub(crate) outbox_empty: &'static str,
    pub(crate) tasks_title: &'static str,
    pub(crate) all_tasks_running: &'static str,
    pub(crate) restarts: &'static str,
    pub(crate) down_since: &'static str,
    pub(crate) last_panic: &'static str,

    pub(crate) first_response_title: &'static str,
    pub(crate) first_response_none: &'static str,
    pub(crate) first_response_caption: &'static str,
    pub(crate) messages_title: &'static str,
    pub(crate) messages_none: &'static str,
    pub(crate) messages_in: &'static str,
    pub(crate) messages_out: &'static str,
    pub(crate) hour: &'static str,
    pub(crate) first_responses: &'static str,
    pub(crate) chart_values: &'static str,

    pub(crate) connectors_title: &'static str,
    pub(crate) connector: &'static str,
    pub(crate) plugin: &'static str,
    pub(crate) state: &'static str,
    pub(crate) enabled: &'static str,
    pub(crate) disabled: &'static str,
    pub(crate) circuit: &'static str,
    pub(crate) circuit_closed: &'static str,
    pub(crate) circuit_backing_off: &'static str,
    pub(crate) circuit_open: &'static str,
    pub(crate) faults: &'static str,
    pub(crate) last_fault: &'static str,
    pub(crate) loaded_at: &'static str,
    pub(crate) actions: &'static str,
    pub(crate) enable: &'static str,
    pub(crate) disable: &'static str,
    pub(crate) reset: &'static str,
    pub(crate) reload: &'static str,
    pub(crate) no_connectors: &'static str,
    pub(crate) none: &'static str,

    pub(crate) upload_title: &'static str,
    pub(crate) upload_note: &'static str,
    pub(crate) upload_file: &'static str,
    pub(crate) upload_button: &'static str,
    pub(crate) upload: &'static str,
    pub(crate) review_title: &'static str,
    pub(crate) running_now: &'static str,
    pub(crate) world: &'static str,
    pub(crate) contract: &'static str,
    pub(crate) contract_served: &'static str,
    pub(crate) contract_not_served: &'static str,
    pub(crate) capabilities: &'static str,
    pub(crate) imports: &'static str,
    pub(crate) size: &'static str,
    pub(crate) review_note: &'static str,
    pub(crate) confirm_swap: &'static str,
    pub(crate) cancel: &'static str,
    pub(crate) upload_cancelled: &'static str,
    pub(crate) rollback: &'static str,
    pub(crate) rollback_to: &'static str,
    pub(crate) grants: &'static str,
    pub(crate) grants_none: &'static str,
    pub(crate) hosts: &'static str,
    pub(crate) credentials: &'static str,
    pub(crate) secrets: &'static str,
    pub(crate) accounts_note: &'static str,
    pub(crate) account: &'static str,
    pub(crate) token_state: &'static str,
    pub(crate) account_connected: &'static str,
    pub(crate) account_expiring: &'static str,
    pub(crate) account_needs_reauth: &'static str,
    pub(crate) account_disconnected: &'static str,
    pub(crate) webhooks: &'static str,
    pub(crate) webhooks_live: &'static str,
    pub(crate) webhooks_not_live: &'static str,
    pub(crate) webhooks_not_used: &'static str,
    pub(crate) token_expires: &'static str,
    pub(crate) held_replies: &'static str,
    pub(crate) connect: &'static str,
    pub(crate) reauthorise: &'static str,
    pub(crate) connect_started: &'static str,
    pub(crate) erase_customer: &'static str,
    pub(crate) to_consent_title: &'static str,
    pub(crate) to_consent_link: &'static str,

    pub(crate) audit_title: &'static str,
    pub(crate) audit_note: &'static str,
    pub(crate) audit_older: &'static str,
    pub(crate) audit_empty: &'static str,
    pub(crate) when: &'static str,
    pub(crate) who: &'static str,
    pub(crate) what: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) who_admin: &'static str,
    pub(crate) who_loopback: &'static str,
    pub(crate) who_crm: &'static str,
    pub(crate) session: &'static str,
    pub(crate) who_user: &'static str,
    pub(crate) login_user_title: &'static str,
    pub(crate) login_username: &'static str,
    pub(crate) login_password: &'static str,
    pub(crate) login_user_button: &'static str,
    pub(crate) login_wrong_password: &'static str,
    pub(crate) login_admin_title: &'static str,
    pub(crate) admin_only: &'static str,
    pub(crate) outcome_done: &'static str,
    pub(crate) outcome_refused: &'static str,

    pub(crate) nav_operators: &'static str,
    pub(crate) nav_routing: &'static str,
    pub(crate) operators_title: &'static str,
    pub(crate) no_operators: &'static str,
    pub(crate) operator: &'static str,
    pub(crate) presence: &'static str,
    pub(crate) load: &'static str,
    pub(crate) skills: &'static str,
    pub(crate) languages: &'static str,
    pub(crate) accounts: &'static str,
    pub(crate) holds: &'static str,
    pub(crate) holds_none: &'static str,
    pub(crate) answered: &'static str,
    pub(crate) off_shift: &'static str,
    pub(crate) presence_online: &'static str,
    pub(crate) presence_away: &'static str,
    pub(crate) presence_offline: &'static str,
    pub(crate) set_presence: &'static str,

    pub(crate) routing_title: &'static str,
    pub(crate) no_routing_here: &'static str,
    pub(crate) live_chain: &'static str,
    pub(crate) shadow_chain: &'static str,
    pub(crate) no_shadow: &'static str,
    pub(crate) decisions: &'static str,
    pub(crate) assignments: &'static str,
    pub(crate) queued: &'static str,
    pub(crate) stage_failures: &'static str,
    pub(crate) disagreements: &'static str,
    pub(crate) decisions_compared: &'static str,
    pub(crate) last_disagreements: &'static str,
    pub(crate) conversation: &'static str,
    pub(crate) outcome_queue: &'static str,
    pub(crate) replay_title: &'static str,
    pub(crate) replay_note: &'static str,
    pub(crate) candidate_chain: &'static str,
    pub(crate) period: &'static str,
    pub(crate) sla_minutes: &'static str,
    pub(crate) replay_button: &'static str,
    pub(crate) replay: &'static str,
    pub(crate) period_last_hour: &'static str,
    pub(crate) period_last_hours: &'static str,
    pub(crate) period_last_days: &'static str,
    pub(crate) replay_result: &'static str,
    pub(crate) replay_what: &'static str,
    pub(crate) replay_truncated: &'static str,
    pub(crate) live_not_replayed: &'static str,
    pub(crate) conversations: &'static str,
    pub(crate) assigned_to: &'static str,
    pub(crate) never_assigned: &'static str,
    pub(crate) wait_p50_p95_max: &'static str,
    pub(crate) sla_missed: &'static str,
    pub(crate) queue_peak: &'static str,
    pub(crate) measure: &'static str,
    pub(crate) switch_note: &'static str,
    pub(crate) switch_button: &'static str,
    pub(crate) switch_chain: &'static str,

    pub(crate) refused_title: &'static str,
    pub(crate) refused_csrf: &'static str,
    pub(crate) refused_loopback: &'static str,
    pub(crate) refused_origin: &'static str,
    pub(crate) back_to_console: &'static str,
}

mod en;
mod it;

pub(crate) use en::EN;
pub(crate) use it::IT;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_language_follows_accept_language_by_quality() {
        assert_eq!(Lang::of(&accept("it-IT,it;q=0.9,en;q=0.8"), None), Lang::It);
        assert_eq!(Lang::of(&accept("en-GB,it;q=0.5"), None), Lang::En);
        assert_eq!(Lang::of(&accept("de-DE,it;q=0.4,en;q=0.3"), None), Lang::It);
        assert_eq!(Lang::of(&accept("it;q=0,en;q=0.1"), None), Lang::En);
        assert_eq!(Lang::of(&accept("fr"), None), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new(), None), Lang::En);
    }

    #[test]
    fn a_chosen_language_wins_over_the_browser() {
        let mut headers = accept("it");
        assert_eq!(Lang::of(&headers, Some("en")), Lang::En);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("centralino_lang=en"),
        );
        assert_eq!(Lang::of(&headers, None), Lang::En);
        assert_eq!(Lang::of(&headers, Some("it")), Lang::It);
    }
}
