//! `[host]`: listeners, the store, tokens, limits.

use super::*;

impl Checker<'_> {
    pub(super) fn host(&mut self, host: &HostSection) -> StoreLocation {
        let key = KeyPath::root().key("host");
        if let Some(url) = &host.crm_webhook {
            let at = key.key("crm_webhook");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.report(&at, format!("`{url}` is not an http(s) URL"));
            }
            if host.crm_webhook_secret.is_none() {
                self.report(
                    &at,
                    "the CRM webhooks are signed: add `crm_webhook_secret = \"env:NAME\"`"
                        .to_string(),
                );
            }
        }
        if !host.admin_listen.ip().is_loopback() && host.admin_token.is_none() {
            self.report(
                &key.key("admin_listen"),
                format!(
                    "`{}` is not a loopback address, so the admin API needs `admin_token` \
                     (e.g. `admin_token = \"env:CENTRALINO_ADMIN_TOKEN\"`)",
                    host.admin_listen
                ),
            );
        }
        if host.max_webhook_body_bytes == 0 {
            self.report(&key.key("max_webhook_body_bytes"), "must be at least 1");
        }
        if host.media_max_file_kib.saturating_mul(1024)
            > host.media_max_tenant_mib.saturating_mul(1 << 20)
        {
            self.report(
                &key.key("media_max_file_kib"),
                format!(
                    "{} KiB per file is more than the tenant's quota \
                     (`media_max_tenant_mib` = {}): no such file could ever be kept",
                    host.media_max_file_kib, host.media_max_tenant_mib
                ),
            );
        }
        for (name, value) in [
            ("media_max_file_kib", host.media_max_file_kib),
            ("media_max_tenant_mib", host.media_max_tenant_mib),
            ("watch_interval_ms", host.watch_interval_ms),
            ("header_read_timeout_ms", host.header_read_timeout_ms),
            ("body_read_timeout_ms", host.body_read_timeout_ms),
        ] {
            self.at_least_one(&key.key(name), Some(value), "");
        }
        self.at_least_one(&key.key("max_connections"), Some(host.max_connections), "");
        self.at_least_one(
            &key.key("max_connections_per_peer"),
            Some(host.max_connections_per_peer),
            "",
        );
        self.at_least_one(
            &key.key("pooling_instances"),
            host.pooling_instances,
            " (leave it out to allocate instances on demand)",
        );
        for (at, trusted) in host.trusted_keys.iter().enumerate() {
            if let Err(reason) = crate::runtime::PluginTrust::trusting([trusted.as_str()]) {
                self.report(&key.key("trusted_keys").index(at), reason);
            }
        }
        if host.require_signed && host.trusted_keys.is_empty() {
            self.report(
                &key.key("require_signed"),
                "is true but `trusted_keys` is empty: no plugin could load (add the public                  key `centralino plugin keygen` printed)",
            );
        }
        self.at_least_one(
            &key.key("poll_lease_ttl_secs"),
            host.poll_lease_ttl_secs,
            "",
        );
        if !self.plugin_dir.is_dir() {
            self.report(
                &key.key("plugin_dir"),
                format!("no folder `{}`", self.plugin_dir.display()),
            );
        }
        self.store(&key.key("store"), &host.store)
    }

    /// Checks the store URL: SQLite files are made absolute; a URL with a password in it
    /// must be a reference, like any other secret.
    pub(super) fn store(&mut self, key: &KeyPath, store: &str) -> StoreLocation {
        if store.starts_with("env:") || store.starts_with("file:") {
            return match SecretRef::parse(store) {
                Ok(reference) => StoreLocation::Secret(reference),
                Err(message) => {
                    self.report(key, message);
                    StoreLocation::Url(String::new())
                }
            };
        }
        if let Some(rest) = store
            .strip_prefix("postgres://")
            .or_else(|| store.strip_prefix("postgresql://"))
        {
            let user_info = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let in_user_info = user_info
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'));
            // `?password=…` sets the password as surely as `user:pass@` does.
            let in_query = rest
                .split_once('?')
                .map(|(_, query)| query.split('#').next().unwrap_or_default())
                .is_some_and(|query| {
                    query.split('&').any(|pair| {
                        let name = pair.split('=').next().unwrap_or_default();
                        percent_decoded(name).eq_ignore_ascii_case("password")
                    })
                });
            if in_user_info || in_query {
                let place = if in_user_info {
                    "`user:password@`"
                } else {
                    "`password=` in its query string"
                };
                self.report(
                    key,
                    format!(
                        "the URL holds a password ({place}), and secrets are never written in \
                         the config: put the URL in a variable and write \
                         `store = \"env:DATABASE_URL\"`"
                    ),
                );
            }
            return StoreLocation::Url(store.to_string());
        }
        let Some(rest) = store
            .strip_prefix("sqlite://")
            .or_else(|| store.strip_prefix("sqlite:"))
        else {
            self.report(
                key,
                "expected `sqlite://FILE`, `sqlite::memory:`, `postgres://…` or a reference \
                 `env:NAME`",
            );
            return StoreLocation::Url(String::new());
        };
        let (file, query) = match rest.split_once('?') {
            Some((file, query)) => (file, format!("?{query}")),
            None => (rest, String::new()),
        };
        if file.is_empty() || file == ":memory:" || Path::new(file).is_absolute() {
            return StoreLocation::Url(store.to_string());
        }
        StoreLocation::Url(format!(
            "sqlite://{}{query}",
            resolve_path(&self.base_dir, Path::new(file)).display()
        ))
    }

    /// Merges limit levels over `base`, reporting values that cannot work.
    pub(super) fn limits(
        &mut self,
        key: &KeyPath,
        base: PluginLimits,
        levels: &[&LimitsSection],
    ) -> PluginLimits {
        let mut limits = base;
        for level in levels {
            if let Some(ms) = level.call_deadline_ms {
                limits.call_deadline = Duration::from_millis(ms);
            }
            if let Some(mib) = level.memory_mib {
                limits.memory_bytes = usize::try_from(mib.min(4096) << 20).unwrap_or(usize::MAX);
            }
            if let Some(lines) = level.log_lines {
                limits.log_lines = lines;
            }
            if let Some(ms) = level.http_timeout_ms {
                limits.http_timeout = Duration::from_millis(ms);
            }
            if let Some(kib) = level.http_max_response_kib {
                limits.http_max_response_bytes =
                    usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX);
            }
            if let Some(retries) = level.http_retries {
                limits.http_retries = retries;
            }
            if let Some(ms) = level.http_rate_limit_hold_ms {
                limits.http_rate_limit_hold = Duration::from_millis(ms);
            }
            if let Some(bytes) = level.log_bytes {
                limits.log_bytes = bytes;
            }
            if let Some(n) = level.max_messages_per_call {
                limits.max_messages_per_call = n;
            }
            if let Some(n) = level.max_text_chars {
                limits.max_text_chars = n;
            }
            if let Some(n) = level.max_output_bytes {
                limits.max_output_bytes = n;
            }
            if let Some(n) = level.circuit_open_after {
                limits.circuit_open_after = n;
            }
            if let Some(ms) = level.fault_backoff_ms {
                limits.fault_backoff = Duration::from_millis(ms);
            }
            if let Some(ms) = level.fault_backoff_max_ms {
                limits.fault_backoff_max = Duration::from_millis(ms);
            }
        }
        if let Some(own) = levels.last() {
            self.at_least_one(&key.key("call_deadline_ms"), own.call_deadline_ms, "");
            self.at_least_one(&key.key("memory_mib"), own.memory_mib, "");
            self.at_least_one(&key.key("http_timeout_ms"), own.http_timeout_ms, "");
            self.at_least_one(
                &key.key("http_max_response_kib"),
                own.http_max_response_kib,
                "",
            );
            if own.memory_mib.is_some_and(|mib| mib > 4096) {
                self.report(
                    &key.key("memory_mib"),
                    "must be at most 4096: a plugin addresses 4 GiB at most",
                );
            }
            self.at_least_one(
                &key.key("max_messages_per_call"),
                own.max_messages_per_call,
                "",
            );
            self.at_least_one(&key.key("max_text_chars"), own.max_text_chars, "");
            self.at_least_one(&key.key("max_output_bytes"), own.max_output_bytes, "");
            self.at_least_one(&key.key("circuit_open_after"), own.circuit_open_after, "");
            // Checked on the merged values: either bound may come from the level above.
            if (own.fault_backoff_ms.is_some() || own.fault_backoff_max_ms.is_some())
                && limits.fault_backoff_max < limits.fault_backoff
            {
                let at = if own.fault_backoff_max_ms.is_some() {
                    "fault_backoff_max_ms"
                } else {
                    "fault_backoff_ms"
                };
                self.report(
                    &key.key(at),
                    format!(
                        "the longest pause ({} ms, `fault_backoff_max_ms`) is shorter than the \
                         first ({} ms, `fault_backoff_ms`)",
                        limits.fault_backoff_max.as_millis(),
                        limits.fault_backoff.as_millis()
                    ),
                );
            }
        }
        limits
    }
}
