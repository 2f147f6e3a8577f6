//! Checks beyond the schema, turning the file as written into a [`Config`].
//!
//! Every check reports into one list, so an admin sees all that is wrong at once, in the
//! order of the file. Checks avoid cascades: a missing plugin file does not also produce
//! errors for the accounts of its connector, nor a missing stage for the settings of the
//! others; a missing plugin folder is one problem, not one per plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, KeyPath, Problem, Source};
use super::file::{
    AccountSection, ConfigFile, ConnectorSection, HostSection, LimitsSection, OperatorSection,
    RoutingSection,
};
use super::values::{SecretRef, SettingValue};
use super::{Account, Config, Connector, RoutingPlan, StoreLocation, Tenant, resolve_path};
use crate::connectors::DEFAULT_TENANT;
use crate::routing::{ChainSpec, ChannelAccount, Operator, RoutingError};
use crate::runtime::PluginLimits;
use crate::types::Pairs;

/// Turns serde's wording into an admin's: TOML has keys and tables, not fields and maps.
pub(crate) fn friendly_serde_message(message: &str) -> String {
    let mut text = message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace(
            "invalid socket address syntax",
            "expected an address such as `127.0.0.1:8080`",
        );
    for (rust, words) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        if let Some(rest) = text.strip_suffix(rust) {
            text = format!("{rest}{words}");
        }
    }
    if let Some(at) = text.find("expected struct ") {
        text.truncate(at);
        text.push_str("expected a table");
    }
    text
}

/// Letters, digits, `-`, `_`: safe in a URL path and a metric label.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a plugin is named by path rather than by name (the rule of routing stages).
fn is_path(plugin: &str) -> bool {
    plugin.contains('/') || plugin.ends_with(".wasm")
}

struct Checker<'a> {
    source: &'a Source,
    base_dir: PathBuf,
    plugin_dir: PathBuf,
    /// Whether `plugin_dir` exists; when it does not, that one problem covers every plugin
    /// named in it.
    plugin_dir_ok: bool,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, key: &KeyPath, message: impl Into<String>) {
        self.problems.push(self.source.problem(key, message));
    }

    fn line(&self, key: &KeyPath) -> String {
        self.source
            .line_of(key)
            .map_or_else(String::new, |line| format!(" at line {line}"))
    }

    fn at_least_one<T: Copy + PartialOrd + From<u8>>(
        &mut self,
        key: &KeyPath,
        value: Option<T>,
        why: &str,
    ) {
        if value.is_some_and(|v| v < T::from(1)) {
            self.report(key, format!("must be at least 1{why}"));
        }
    }

    /// The `.wasm` files in the plugin folder, by name, for "did you mean" lists.
    fn available_plugins(&self) -> String {
        let mut names: Vec<String> = std::fs::read_dir(&self.plugin_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".wasm").map(str::to_string)
            })
            .collect();
        names.sort();
        if names.is_empty() {
            "it has no .wasm files".to_string()
        } else {
            format!("found: {}", names.join(", "))
        }
    }

    /// Resolves a plugin name or path; reports it when the file is missing. `what` is
    /// `plugin` or `stage`.
    fn plugin_file(&mut self, key: &KeyPath, plugin: &str, what: &str) -> Option<PathBuf> {
        if is_path(plugin) {
            let path = resolve_path(&self.base_dir, Path::new(plugin));
            if !path.is_file() {
                self.report(
                    key,
                    format!("unknown {what} `{plugin}`: no file `{}`", path.display()),
                );
                return None;
            }
            return Some(path);
        }
        let path = self.plugin_dir.join(format!("{plugin}.wasm"));
        if self.plugin_dir_ok && !path.is_file() {
            let available = self.available_plugins();
            self.report(
                key,
                format!(
                    "unknown {what} `{plugin}`: no file `{}` ({available})",
                    path.display()
                ),
            );
            return None;
        }
        Some(path)
    }

    fn host(&mut self, host: &HostSection) -> StoreLocation {
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
        for (name, value) in [
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
    fn store(&mut self, key: &KeyPath, store: &str) -> StoreLocation {
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
    fn limits(
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

    #[allow(clippy::too_many_arguments)]
    fn tenant(
        &mut self,
        id: String,
        key: KeyPath,
        global_limits: &LimitsSection,
        connectors: &[ConnectorSection],
        routing: Option<&RoutingSection>,
        operators: &[OperatorSection],
        api_token: Option<&SecretRef>,
    ) -> Tenant {
        let connectors = self.connectors(&key, global_limits, connectors);
        let operators = self.operators(&key, &connectors, operators);
        let routing = match routing {
            Some(section) => Some(self.routing(&key.key("routing"), global_limits, section)),
            None if !operators.is_empty() => Some(self.routing(
                &key.key("routing"),
                global_limits,
                &RoutingSection::default(),
            )),
            None => None,
        }
        .flatten();
        Tenant {
            id,
            connectors,
            operators,
            routing,
            api_token: api_token.cloned(),
            key,
        }
    }

    fn connectors(
        &mut self,
        tenant: &KeyPath,
        global_limits: &LimitsSection,
        sections: &[ConnectorSection],
    ) -> Vec<Connector> {
        let mut seen: BTreeMap<&str, KeyPath> = BTreeMap::new();
        let mut connectors = Vec::new();
        for (index, section) in sections.iter().enumerate() {
            let key = tenant.key("connectors").index(index);
            let name = section.name.as_str();
            if !is_name(name) {
                self.report(
                    &key.key("name"),
                    format!("`{name}` is not a connector name: use letters, digits, `-` and `_`"),
                );
            } else if let Some(first) = seen.get(name) {
                let line = self.line(&first.key("name"));
                self.report(
                    &key.key("name"),
                    format!("duplicate connector `{name}` (first defined{line})"),
                );
            } else {
                seen.insert(name, key.clone());
            }
            let plugin = self
                .plugin_file(&key.key("plugin"), &section.plugin, "plugin")
                .unwrap_or_default();
            self.at_least_one(
                &key.key("poll_interval_secs"),
                section.poll_interval_secs,
                "",
            );
            for (at, entry) in section.allowed_hosts.iter().enumerate() {
                // `http://host:port` marks a local emulator that may get credentials over
                // plain HTTP; anything else is a bare host.
                let host = entry.strip_prefix("http://").unwrap_or(entry);
                let bad = host.is_empty()
                    || host.contains("://")
                    || host.contains(['/', '@', ' ', '?', '#']);
                if bad {
                    self.report(
                        &key.key("allowed_hosts").index(at),
                        format!(
                            "`{entry}` is not a host: write the host, with a port if needed, \
                             such as `api.x.com` or `127.0.0.1:9000` (or `http://host:port` \
                             for a local emulator that may receive credentials over plain \
                             HTTP)"
                        ),
                    );
                }
            }
            for name in section.secrets.keys().filter(|name| name.is_empty()) {
                self.report(
                    &key.key("secrets").key(name.clone()),
                    "a secret needs a name",
                );
            }
            let base = PluginLimits {
                call_deadline: Duration::from_secs(5),
                ..PluginLimits::default()
            };
            let limits = self.limits(&key.key("limits"), base, &[global_limits, &section.limits]);
            let accounts = self.accounts(&key, name, &section.accounts);
            connectors.push(Connector {
                name: section.name.clone(),
                plugin,
                enabled: section.enabled,
                poll_interval: section.poll_interval_secs.map(Duration::from_secs),
                allowed_hosts: section.allowed_hosts.clone(),
                settings: pairs(&section.settings),
                secrets: section.secrets.clone(),
                limits,
                accounts,
                oauth: section.oauth.clone(),
                key,
            });
        }
        connectors
    }

    fn accounts(
        &mut self,
        connector_key: &KeyPath,
        connector: &str,
        sections: &[AccountSection],
    ) -> Vec<Account> {
        let mut ids: BTreeMap<&str, KeyPath> = BTreeMap::new();
        let mut handles: BTreeMap<String, (&str, KeyPath)> = BTreeMap::new();
        let mut accounts = Vec::new();
        for (index, section) in sections.iter().enumerate() {
            let key = connector_key.key("accounts").index(index);
            let id = section.id.as_str();
            if id.is_empty() {
                self.report(&key.key("id"), "an account needs an id");
            } else if let Some(first) = ids.get(id) {
                let line = self.line(&first.key("id"));
                self.report(
                    &key.key("id"),
                    format!(
                        "duplicate account `{id}` in connector `{connector}` (first defined{line})"
                    ),
                );
            } else {
                ids.insert(id, key.clone());
            }
            let handle = section
                .handle
                .as_deref()
                .map(|h| h.trim().trim_start_matches('@').to_string())
                .filter(|h| !h.is_empty());
            if let Some(handle) = &handle {
                let folded = handle.to_ascii_lowercase();
                if let Some((other, first)) = handles.get(&folded) {
                    let line = self.line(&first.key("handle"));
                    self.report(
                        &key.key("handle"),
                        format!("handle `{handle}` is already account `{other}`'s{line}"),
                    );
                } else {
                    handles.insert(folded, (id, key.clone()));
                }
            }
            accounts.push(Account {
                id: section.id.clone(),
                handle,
                brand: section.brand.clone().filter(|b| !b.is_empty()),
                credential: section.credential.clone(),
                settings: pairs(&section.settings),
            });
        }
        accounts
    }

    fn operators(
        &mut self,
        tenant: &KeyPath,
        connectors: &[Connector],
        sections: &[OperatorSection],
    ) -> Vec<Operator> {
        let mut seen: BTreeMap<&str, KeyPath> = BTreeMap::new();
        let mut owners: BTreeMap<ChannelAccount, (&str, KeyPath)> = BTreeMap::new();
        let mut operators = Vec::new();
        let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
        for (index, section) in sections.iter().enumerate() {
            let key = tenant.key("operators").index(index);
            let id = section.id.as_str();
            if !is_name(id) {
                self.report(
                    &key.key("id"),
                    format!("`{id}` is not an operator id: use letters, digits, `-` and `_`"),
                );
            } else if let Some(first) = seen.get(id) {
                let line = self.line(&first.key("id"));
                self.report(
                    &key.key("id"),
                    format!("duplicate operator `{id}` (first defined{line})"),
                );
            } else {
                seen.insert(id, key.clone());
            }
            if section.capacity == 0 {
                self.report(
                    &key.key("capacity"),
                    "must be at least 1: an operator with no capacity never gets a conversation",
                );
            }
            let mut accounts: Vec<ChannelAccount> = Vec::new();
            for (at, written) in section.accounts.iter().enumerate() {
                let account_key = key.key("accounts").index(at);
                let Some(connector) = connectors.iter().find(|c| c.name == written.channel) else {
                    let known = if names.is_empty() {
                        "there are none".to_string()
                    } else {
                        format!("connectors: {}", names.join(", "))
                    };
                    self.report(
                        &account_key,
                        format!(
                            "no connector `{}` in this tenant ({known})",
                            written.channel
                        ),
                    );
                    continue;
                };
                let found = connector.accounts.iter().find(|a| {
                    a.id == written.id
                        || a.handle
                            .as_deref()
                            .is_some_and(|h| h.eq_ignore_ascii_case(&written.id))
                });
                let Some(found) = found else {
                    self.report(
                        &account_key,
                        format!(
                            "connector `{}` has no account `{}` (by id or handle)",
                            connector.name, written.id
                        ),
                    );
                    continue;
                };
                let account = ChannelAccount {
                    channel: connector.name.clone(),
                    id: found.id.clone(),
                };
                if accounts.iter().any(|a| a.channel == account.channel) {
                    self.report(
                        &account_key,
                        format!(
                            "operator `{id}` already has an account on `{}`; replies go out \
                             from one",
                            connector.name
                        ),
                    );
                    continue;
                }
                if let Some((owner, first)) = owners.get(&account) {
                    let line = self.line(first);
                    self.report(
                        &account_key,
                        format!(
                            "account `{}:{}` is already operator `{owner}`'s{line}",
                            written.channel, written.id
                        ),
                    );
                    continue;
                }
                owners.insert(account.clone(), (id, account_key));
                accounts.push(account);
            }
            operators.push(Operator {
                id: section.id.clone(),
                name: section
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| section.id.clone()),
                skills: section.skills.clone(),
                languages: section.languages.clone(),
                accounts,
                capacity: section.capacity,
                hours: section.hours.clone(),
            });
        }
        operators
    }

    fn routing(
        &mut self,
        key: &KeyPath,
        global_limits: &LimitsSection,
        section: &RoutingSection,
    ) -> Option<RoutingPlan> {
        let problems_before = self.problems.len();
        let chain = self.chain(&key.key("chain"), &section.chain);
        let shadow = section
            .shadow
            .as_deref()
            .map(|text| self.chain(&key.key("shadow"), text));
        let chains_ok = self.problems.len() == problems_before;
        // Stage settings: each table must name a stage, and may not repeat a setting
        // already given in parentheses.
        let mut stages: BTreeSet<&str> = BTreeSet::new();
        for spec in chain.iter().chain(shadow.iter().flatten()) {
            stages.extend(spec.stages.iter().map(|s| s.plugin.as_str()));
        }
        for (stage, settings) in &section.settings {
            let stage_key = key.key("settings").key(stage.clone());
            if !stages.contains(stage.as_str()) {
                let listed: Vec<&str> = stages.iter().copied().collect();
                self.report(
                    &stage_key,
                    format!(
                        "no stage `{stage}` in `chain` or `shadow` (stages: {})",
                        listed.join(", ")
                    ),
                );
                continue;
            }
            for name in settings.keys() {
                let inline = chain
                    .iter()
                    .chain(shadow.iter().flatten())
                    .flat_map(|spec| &spec.stages)
                    .filter(|written| &written.plugin == stage)
                    .any(|written| written.settings.iter().any(|(k, _)| k == name));
                if inline {
                    self.report(
                        &stage_key.key(name.clone()),
                        format!("also given in parentheses in `{stage}(…)`; keep one of the two"),
                    );
                }
            }
        }
        self.at_least_one(
            &key.key("offer_timeout_minutes"),
            section.offer_timeout_minutes,
            " (leave it out to never take a conversation back)",
        );
        self.at_least_one(&key.key("handling_window"), section.handling_window, "");
        let limits = self.limits(
            &key.key("limits"),
            PluginLimits::default(),
            &[global_limits, &section.limits],
        );
        let merge = |mut spec: ChainSpec| {
            for stage in &mut spec.stages {
                if let Some(settings) = section.settings.get(&stage.plugin) {
                    stage.settings.extend(pairs(settings));
                }
                if is_path(&stage.plugin) {
                    stage.plugin = resolve_path(&self.base_dir, Path::new(&stage.plugin))
                        .display()
                        .to_string();
                }
            }
            spec
        };
        if !chains_ok {
            return None;
        }
        let chain = merge(chain?);
        let shadow = match shadow {
            Some(spec) => Some(merge(spec?)),
            None => None,
        };
        Some(RoutingPlan {
            chain,
            shadow,
            offer_timeout: section
                .offer_timeout_minutes
                .map(|minutes| Duration::from_secs(minutes.saturating_mul(60))),
            auto_reply: section.auto_reply,
            handling_window: section.handling_window.unwrap_or(50),
            limits,
            plugin_dir: self.plugin_dir.clone(),
            key: key.clone(),
        })
    }

    /// Parses a chain and checks that every stage's plugin file exists (reporting the
    /// missing ones; the spec is returned as long as it parses).
    fn chain(&mut self, key: &KeyPath, text: &str) -> Option<ChainSpec> {
        let spec = match text.parse::<ChainSpec>() {
            Ok(spec) => spec,
            Err(RoutingError::ChainSpec { reason, .. }) => {
                self.report(key, format!("`{text}` does not parse: {reason}"));
                return None;
            }
            Err(other) => {
                self.report(key, other.to_string());
                return None;
            }
        };
        for stage in &spec.stages {
            self.plugin_file(key, &stage.plugin, "stage");
        }
        Some(spec)
    }
}

fn pairs(settings: &BTreeMap<String, SettingValue>) -> Pairs {
    settings
        .iter()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect()
}

/// Checks a deserialised file and builds the [`Config`].
pub(crate) fn check(
    file: ConfigFile,
    source: Source,
    base_dir: PathBuf,
) -> Result<Config, ConfigError> {
    let plugin_dir = resolve_path(&base_dir, &file.host.plugin_dir);
    let mut checker = Checker {
        source: &source,
        plugin_dir_ok: plugin_dir.is_dir(),
        plugin_dir: plugin_dir.clone(),
        base_dir: base_dir.clone(),
        problems: Vec::new(),
    };
    let store = checker.host(&file.host);
    checker.limits(
        &KeyPath::root().key("limits"),
        PluginLimits::default(),
        &[&file.limits],
    );

    let mut tenants = Vec::new();
    if file.tenants.is_empty() {
        tenants.push(checker.tenant(
            DEFAULT_TENANT.to_string(),
            KeyPath::root(),
            &file.limits,
            &file.connectors,
            file.routing.as_ref(),
            &file.operators,
            file.api_token.as_ref(),
        ));
    } else {
        let top_level = [
            (
                "connectors",
                !file.connectors.is_empty(),
                "[[tenants.connectors]]",
            ),
            ("routing", file.routing.is_some(), "[tenants.routing]"),
            (
                "operators",
                !file.operators.is_empty(),
                "[[tenants.operators]]",
            ),
            (
                "api_token",
                file.api_token.is_some(),
                "[[tenants]] api_token",
            ),
        ];
        for (name, present, instead) in top_level {
            if present {
                checker.report(
                    &KeyPath::root().key(name),
                    format!("with `[[tenants]]`, each tenant has its own: write `{instead}`"),
                );
            }
        }
        let mut seen: BTreeMap<&str, KeyPath> = BTreeMap::new();
        for (index, section) in file.tenants.iter().enumerate() {
            let key = KeyPath::root().key("tenants").index(index);
            let id = section.id.as_str();
            if !is_name(id) {
                checker.report(
                    &key.key("id"),
                    format!("`{id}` is not a tenant id: use letters, digits, `-` and `_`"),
                );
            } else if let Some(first) = seen.get(id) {
                let line = checker.line(&first.key("id"));
                checker.report(
                    &key.key("id"),
                    format!("duplicate tenant `{id}` (first defined{line})"),
                );
            } else {
                seen.insert(id, key.clone());
            }
            tenants.push(checker.tenant(
                section.id.clone(),
                key,
                &file.limits,
                &section.connectors,
                section.routing.as_ref(),
                &section.operators,
                section.api_token.as_ref(),
            ));
        }
    }

    // Accounts whose tokens the host obtains need the app and the key that seals them.
    let mut key_reported = false;
    for tenant in &tenants {
        for connector in &tenant.connectors {
            let Some(index) = connector
                .accounts
                .iter()
                .position(|a| a.credential == Some(super::values::CredentialRef::Connected))
            else {
                continue;
            };
            if connector.oauth.is_none() {
                checker.report(
                    &connector.key.key("accounts").index(index).key("credential"),
                    format!(
                        "a `connected` account needs connector `{}`'s OAuth app: add \
                         `[connectors.oauth]` with `client_id` (and `client_secret`) as \
                         secret references",
                        connector.name
                    ),
                );
            }
            if file.host.token_key.is_none() && !key_reported {
                key_reported = true;
                checker.report(
                    &KeyPath::root().key("host").key("token_key"),
                    "`connected` accounts keep their tokens sealed in the store: set \
                     `token_key = \"env:CENTRALINO_TOKEN_KEY\"` (32 random bytes or more, \
                     e.g. `openssl rand -hex 32`)",
                );
            }
        }
    }

    if !checker.problems.is_empty() {
        let problems = std::mem::take(&mut checker.problems);
        return Err(source.error(problems));
    }
    let host = &file.host;
    Ok(Config {
        path: source.file().to_path_buf(),
        store,
        listen: host.listen,
        admin_listen: host.admin_listen,
        api_listen: host.api_listen,
        admin_token: host.admin_token.clone(),
        token_key: host.token_key.clone(),
        plugin_dir,
        cache_dir: host
            .cache_dir
            .as_ref()
            .map(|dir| resolve_path(&base_dir, dir)),
        max_webhook_body: host.max_webhook_body_bytes,
        host_id: host.host_id.clone(),
        crm_webhook: host.crm_webhook.clone(),
        crm_webhook_secret: host.crm_webhook_secret.clone(),
        poll_lease_ttl: host.poll_lease_ttl_secs.map(Duration::from_secs),
        retention: (host.retention_days > 0)
            .then(|| Duration::from_secs(host.retention_days.saturating_mul(24 * 3600))),
        watch_plugins: host
            .watch_plugins
            .then(|| Duration::from_millis(host.watch_interval_ms)),
        log_format: host.log_format,
        ingress: crate::server::IngressLimits {
            max_body_bytes: host.max_webhook_body_bytes,
            header_read_timeout: Duration::from_millis(host.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(host.body_read_timeout_ms),
            max_connections: host.max_connections,
            max_connections_per_peer: host.max_connections_per_peer,
        },
        pooling_instances: host.pooling_instances,
        tenants,
        base_dir,
        source,
    })
}

/// `text` with its `%XX` escapes decoded (as a URL parser reads a query parameter's name);
/// other bytes, and malformed escapes, as they are.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_wording_becomes_toml_wording() {
        assert_eq!(
            friendly_serde_message("invalid type: string \"3\", expected u32"),
            "invalid type: string \"3\", expected a whole number"
        );
        assert_eq!(
            friendly_serde_message("unknown field `stor`, expected `store` or `n`"),
            "unknown key `stor`, expected `store` or `n`"
        );
        assert_eq!(
            friendly_serde_message("invalid type: string \"x\", expected struct HostSection"),
            "invalid type: string \"x\", expected a table"
        );
    }
}
