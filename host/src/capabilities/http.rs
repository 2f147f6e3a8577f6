//! `centralino:plugin/http`: outgoing HTTP on the plugin's behalf.
//!
//! Every request is checked against the plugin's allow-list and credential grants before
//! anything leaves the host. This build has no outgoing transport yet (it arrives with the
//! channel connectors), so an allowed request fails with `connection`, saying so.

use crate::runtime::bindings::v0_1::http::{Host, HttpError, Request, Response};
use crate::runtime::state::PluginState;

/// Whether `url`'s host (with its port, when one is given) is on `allowed`.
///
/// Entries are `host` (any port) or `host:port`; matching is exact and case-insensitive,
/// so `api.x.com` does not admit `evil-api.x.com`.
pub fn host_allowed(url: &str, allowed: &[String]) -> Result<bool, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}` has no plain host"));
    }
    let authority = authority.to_ascii_lowercase();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    Ok(allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == authority || entry == host
    }))
}

impl Host for PluginState {
    async fn fetch(&mut self, request: Request) -> Result<Response, HttpError> {
        let allowed = host_allowed(&request.url, &self.grants.allowed_hosts)
            .map_err(HttpError::InvalidRequest)?;
        if !allowed {
            return Err(HttpError::Denied(format!(
                "plugin {} may not reach `{}`: not on its allow-list",
                self.plugin, request.url
            )));
        }
        if let Some(name) = &request.credential
            && !self.grants.credentials.contains_key(name)
        {
            return Err(HttpError::Denied(format!(
                "credential `{name}` is not granted to plugin {}",
                self.plugin
            )));
        }
        Err(HttpError::Connection(
            "this host build has no outgoing HTTP transport".to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn allow_list_matches_exact_hosts_only() {
        let allowed = vec!["api.x.com".to_string(), "127.0.0.1:9000".to_string()];
        assert_eq!(
            host_allowed("https://api.x.com/2/tweets", &allowed),
            Ok(true)
        );
        assert_eq!(
            host_allowed("https://API.X.COM:443/2/tweets", &allowed),
            Ok(true)
        );
        assert_eq!(host_allowed("https://evil-api.x.com/", &allowed), Ok(false));
        assert_eq!(
            host_allowed("https://api.x.com.evil.net/", &allowed),
            Ok(false)
        );
        assert_eq!(host_allowed("http://127.0.0.1:9000/x", &allowed), Ok(true));
        assert_eq!(host_allowed("http://127.0.0.1:9001/x", &allowed), Ok(false));
        assert!(host_allowed("https://user@api.x.com/", &allowed).is_err());
        assert!(host_allowed("ftp://api.x.com/", &allowed).is_err());
        assert_eq!(host_allowed("https://api.x.com/", &[]), Ok(false));
    }
}
