//! Credentials on the way out and on the way back: where a path credential goes, whether a
//! credential may travel to a URL at all, and scrubbing every echoed copy from what a
//! server answers.

use super::split_url;
use crate::bindings::latest::http::HttpError;
use crate::capabilities::{CREDENTIAL_PLACEHOLDER, Credential};

/// Whether a credential may travel to `url`: over TLS always; over plain HTTP only to this
/// machine (loopback) or to a host the admin marked as a local emulator (`http://…` entry).
pub(super) fn credential_transport_allowed(url: &str, entry: &str) -> bool {
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return true;
    }
    if entry
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return true;
    }
    let Ok((_, authority)) = split_url(url) else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Puts a path-segment credential where the URL's path has the placeholder (exactly once,
/// percent-encoded as a segment). The placeholder anywhere else, or with another kind of
/// credential, or missing for a path credential, is refused: a token never lands in a
/// query string or a host name by accident.
pub(super) fn with_path_credential(
    url: &str,
    credential: Option<&Credential>,
) -> Result<String, HttpError> {
    let encoded = "%7Bcredential%7D";
    let (path_part, rest) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let raw =
        path_part.matches(CREDENTIAL_PLACEHOLDER).count() + path_part.matches(encoded).count();
    let elsewhere = rest.contains(CREDENTIAL_PLACEHOLDER) || rest.contains(encoded);
    match credential {
        Some(Credential::PathSegment(token)) => {
            if raw != 1 || elsewhere {
                return Err(HttpError::InvalidRequest(format!(
                    "a path credential needs `{CREDENTIAL_PLACEHOLDER}` exactly once in the URL path"
                )));
            }
            let token: String = token
                .expose()
                .iter()
                .map(|&b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            let path = path_part
                .replacen(CREDENTIAL_PLACEHOLDER, &token, 1)
                .replacen(encoded, &token, 1);
            Ok(format!("{path}{rest}"))
        }
        _ if raw > 0 || elsewhere => Err(HttpError::InvalidRequest(format!(
            "`{CREDENTIAL_PLACEHOLDER}` in a URL needs a path credential"
        ))),
        _ => Ok(url.to_string()),
    }
}

/// The forms in which an attached credential could come back in a response: as sent, and
/// percent-encoded as it appears in a URL echoed by an error page.
pub(super) fn credential_forms(credential: Option<&Credential>) -> Vec<Vec<u8>> {
    let token = match credential {
        Some(Credential::Bearer(token) | Credential::PathSegment(token)) => token,
        Some(Credential::QueryParameter { token, .. }) => token,
        // Resolved to its current token before a request is made.
        Some(Credential::Connected(_)) | None => return Vec::new(),
    };
    let raw = token.expose().to_vec();
    // Too short to be told apart from ordinary text: leave the response alone.
    if raw.len() < 6 {
        return Vec::new();
    }
    let encoded: Vec<u8> = raw
        .iter()
        .flat_map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => vec![b],
            other => format!("%{other:02X}").into_bytes(),
        })
        .collect();
    if encoded == raw {
        vec![raw]
    } else {
        vec![raw, encoded]
    }
}

/// What replaces an echoed credential.
const SCRUBBED: &[u8] = b"[credential]";

/// Replaces every copy of the attached credential in `bytes`.
pub(super) fn scrub(bytes: &mut Vec<u8>, credential: Option<&Credential>) {
    for form in credential_forms(credential) {
        if bytes.windows(form.len()).any(|w| w == form.as_slice()) {
            let mut out = Vec::with_capacity(bytes.len());
            let mut at = 0;
            while at < bytes.len() {
                if bytes[at..].starts_with(&form) {
                    out.extend_from_slice(SCRUBBED);
                    at += form.len();
                } else {
                    out.push(bytes[at]);
                    at += 1;
                }
            }
            *bytes = out;
        }
    }
}

/// [`scrub`] for text.
pub(super) fn scrub_text(text: String, credential: Option<&Credential>) -> String {
    if credential.is_none() {
        return text;
    }
    let mut bytes = text.into_bytes();
    scrub(&mut bytes, credential);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_credential_is_scrubbed_raw_and_percent_encoded() {
        let bearer = Credential::Bearer(crate::capabilities::Secret::new("tok/en+secret"));
        let mut body = b"auth: Bearer tok/en+secret; url: /x?t=tok%2Fen%2Bsecret".to_vec();
        scrub(&mut body, Some(&bearer));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "auth: Bearer [credential]; url: /x?t=[credential]"
        );
        let short = Credential::Bearer(crate::capabilities::Secret::new("ab"));
        let mut body = b"abc".to_vec();
        scrub(&mut body, Some(&short));
        assert_eq!(body, b"abc");
    }

    #[test]
    fn credentials_travel_over_tls_or_to_this_machine_or_to_a_marked_emulator() {
        assert!(credential_transport_allowed(
            "https://api.x.com/2",
            "api.x.com"
        ));
        assert!(!credential_transport_allowed(
            "http://api.x.com/2",
            "api.x.com"
        ));
        assert!(credential_transport_allowed(
            "http://127.0.0.1:9000/2",
            "127.0.0.1:9000"
        ));
        assert!(credential_transport_allowed(
            "http://[::1]:9000/2",
            "[::1]:9000"
        ));
        assert!(credential_transport_allowed(
            "http://localhost:9000/2",
            "localhost"
        ));
        assert!(credential_transport_allowed(
            "http://emulator:8080/2",
            "http://emulator:8080"
        ));
        assert!(!credential_transport_allowed(
            "http://10.0.0.8/2",
            "10.0.0.8"
        ));
    }

    #[test]
    fn a_path_credential_goes_exactly_where_the_placeholder_is() {
        let token = Credential::PathSegment(crate::capabilities::Secret::new("123:AB/c"));
        let bearer = Credential::Bearer(crate::capabilities::Secret::new("t"));
        let url = "https://bots.example.org/bot{credential}/sendMessage?x=1";
        assert_eq!(
            with_path_credential(url, Some(&token)).unwrap(),
            "https://bots.example.org/bot123:AB%2Fc/sendMessage?x=1"
        );
        let encoded = "https://bots.example.org/bot%7Bcredential%7D/getUpdates";
        assert_eq!(
            with_path_credential(encoded, Some(&token)).unwrap(),
            "https://bots.example.org/bot123:AB%2Fc/getUpdates"
        );
        // Refused: no placeholder, two of them, one in the query, or the wrong credential kind.
        assert!(with_path_credential("https://bots.example.org/bot/getMe", Some(&token)).is_err());
        assert!(with_path_credential("https://h/{credential}/{credential}", Some(&token)).is_err());
        assert!(
            with_path_credential("https://h/bot{credential}?t={credential}", Some(&token)).is_err()
        );
        assert!(with_path_credential(url, Some(&bearer)).is_err());
        assert!(with_path_credential(url, None).is_err());
        assert_eq!(
            with_path_credential("https://h/a", Some(&bearer)).unwrap(),
            "https://h/a"
        );
    }
}
