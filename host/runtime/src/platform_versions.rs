//! Platform API versions: a platform answering with another version than the one asked
//! for, and a configured version near or past its documented end of life.
//!
//! Meta serves a call to a retired Graph version with the oldest version still available,
//! and says which in the `facebook-api-version` response header; nothing fails, so the
//! behaviour under a connector can change without anyone noticing. The host compares that
//! header with the version in the request's path on every response a plugin fetches, and
//! checks the version a connector is configured with (setting `api_version`) against
//! Meta's published retirement dates. Both show in the host's `ConnectorHealth`,
//! `centralino status` and `centralino_connector_api_version_warning` in `/metrics`.

use crate::types::Pairs;

/// Graph API versions with a published end of life: (version, date, ms since the epoch).
/// From Meta's Graph API changelog; later versions have no date yet.
const GRAPH_RETIREMENTS: &[(&str, &str, u64)] = &[
    ("v19.0", "2026-05-21", 1_779_321_600_000),
    ("v20.0", "2026-09-24", 1_790_208_000_000),
];

/// How long before a version's end of life the host starts warning.
const WARN_BEFORE_MS: u64 = 90 * 24 * 60 * 60 * 1000;

/// The response header in which Graph names the version that served a call.
pub const GRAPH_VERSION_HEADER: &str = "facebook-api-version";

/// The Graph version a request URL asks for: the first path segment shaped `vN.N`.
pub fn asked_version(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/')?.1;
    path.split(['/', '?'])
        .find(|segment| is_version(segment))
        .map(str::to_string)
}

fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|rest| {
        rest.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

/// What to tell the admin when a response to a request for `url` was served by another
/// version than it asked for; `None` when they agree or either is unknown.
pub fn served_differently(url: &str, headers: &[(String, String)]) -> Option<String> {
    let served = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(GRAPH_VERSION_HEADER))
        .map(|(_, value)| value.trim())?;
    let asked = asked_version(url)?;
    (served != asked).then(|| {
        format!(
            "Graph served API version {served} to a request for {asked}: {asked} is retired or \
             unavailable, so Meta answered with another version; set `api_version` to a \
             current one"
        )
    })
}

/// What to tell the admin about the Graph version `settings` configure (setting
/// `api_version`) at `now_ms`: past or within 90 days of its end of life. `None` for a
/// connector of another plugin, no such setting, or a version with no published end.
pub fn retirement(plugin: &str, settings: &Pairs, now_ms: u64) -> Option<String> {
    if plugin != "facebook" {
        return None;
    }
    let version = settings
        .iter()
        .find(|(name, _)| name == "api_version")
        .map(|(_, value)| value.as_str())?;
    let (_, date, end) = GRAPH_RETIREMENTS
        .iter()
        .find(|(retiring, _, _)| *retiring == version)?;
    if now_ms >= *end {
        Some(format!(
            "Graph API {version} (setting `api_version`) was retired on {date}: Meta serves its \
             calls with a newer version; set a current one"
        ))
    } else if end - now_ms <= WARN_BEFORE_MS {
        let days = (end - now_ms).div_ceil(24 * 60 * 60 * 1000);
        Some(format!(
            "Graph API {version} (setting `api_version`) retires on {date}, in {days} days; set \
             a current one"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asked_version_is_the_first_version_shaped_segment_of_the_path() {
        assert_eq!(
            asked_version("https://graph.facebook.com/v25.0/me/messages?access_token=x").as_deref(),
            Some("v25.0")
        );
        assert_eq!(
            asked_version("http://127.0.0.1:9/v19.0/555_1/comments").as_deref(),
            Some("v19.0")
        );
        assert_eq!(asked_version("https://api.x.com/2/tweets"), None);
        assert_eq!(asked_version("https://v19.0/me"), None);
    }

    #[test]
    fn a_different_served_version_is_reported_and_the_same_is_not() {
        let url = "https://graph.facebook.com/v19.0/me/messages";
        let served = |v: &str| vec![("facebook-api-version".to_string(), v.to_string())];
        assert!(
            served_differently(url, &served("v21.0"))
                .is_some_and(|notice| notice.contains("v21.0") && notice.contains("v19.0"))
        );
        assert_eq!(served_differently(url, &served("v19.0")), None);
        assert_eq!(served_differently(url, &[]), None);
    }

    #[test]
    fn retirement_warns_ninety_days_ahead_and_after_the_date() {
        let settings = |v: &str| vec![("api_version".to_string(), v.to_string())];
        let may_21 = 1_779_321_600_000;
        let day = 24 * 60 * 60 * 1000;
        assert!(
            retirement("facebook", &settings("v19.0"), may_21)
                .is_some_and(|n| n.contains("was retired on 2026-05-21"))
        );
        assert!(
            retirement("facebook", &settings("v19.0"), may_21 - 10 * day)
                .is_some_and(|n| n.contains("in 10 days"))
        );
        assert_eq!(
            retirement("facebook", &settings("v19.0"), may_21 - 91 * day),
            None
        );
        assert_eq!(retirement("facebook", &settings("v25.0"), may_21), None);
        assert_eq!(retirement("twitter", &settings("v19.0"), may_21), None);
        assert_eq!(retirement("facebook", &Vec::new(), may_21), None);
    }
}
