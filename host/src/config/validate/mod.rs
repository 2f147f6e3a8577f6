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
    RetentionSection, RoutingSection,
};
use super::values::{SecretRef, SettingValue};
use super::{Account, Config, Connector, RoutingPlan, StoreLocation, Tenant, resolve_path};
use crate::answers::Brand;
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

    #[allow(clippy::too_many_arguments)]
    fn tenant(
        &mut self,
        id: String,
        key: KeyPath,
        global_limits: &LimitsSection,
        connectors: &[ConnectorSection],
        routing: Option<&RoutingSection>,
        operators: &[OperatorSection],
        brands: &[Brand],
        api_token: Option<&SecretRef>,
        retention: Option<&RetentionSection>,
    ) -> Tenant {
        let retention = self.retention(&key.key("retention"), retention);
        let connectors = self.connectors(&key, global_limits, connectors);
        let operators = self.operators(&key, &connectors, operators);
        self.brands(&key, &connectors, brands);
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
            brands: brands.to_vec(),
            retention,
            key,
        }
    }

    /// `[[brands]]`: ids unique and used by an account, templates for the brand's
    /// language, placeholders known for each template, service levels in range.
    fn brands(&mut self, tenant: &KeyPath, connectors: &[Connector], brands: &[Brand]) {
        let mut seen: BTreeMap<&str, KeyPath> = BTreeMap::new();
        let used: BTreeSet<&str> = connectors
            .iter()
            .flat_map(|c| &c.accounts)
            .filter_map(|a| a.brand.as_deref())
            .collect();
        for (index, brand) in brands.iter().enumerate() {
            let key = tenant.key("brands").index(index);
            let id = brand.id.as_str();
            if let Some(first) = seen.get(id) {
                let line = self.line(&first.key("id"));
                self.report(
                    &key.key("id"),
                    format!("duplicate brand `{id}` (first defined{line})"),
                );
            } else {
                seen.insert(id, key.clone());
            }
            if !id.is_empty() && !used.contains(id) {
                let listed: Vec<&str> = used.iter().copied().collect();
                let listed = if listed.is_empty() {
                    "no account names a brand".to_string()
                } else {
                    format!("accounts name: {}", listed.join(", "))
                };
                self.report(
                    &key.key("id"),
                    format!("no account of this tenant has `brand = \"{id}\"` ({listed})"),
                );
            }
            for (path, problem) in brand.problems() {
                let at = path
                    .split('.')
                    .fold(key.clone(), |at, part| at.key(part.to_string()));
                self.report(&at, problem);
            }
        }
    }

    /// A tenant's `[retention]`: each key at least one day.
    fn retention(
        &mut self,
        key: &KeyPath,
        section: Option<&RetentionSection>,
    ) -> crate::store::ContentRetention {
        let mut retention = crate::store::ContentRetention::forever();
        let Some(section) = section else {
            return retention;
        };
        for (name, days, what) in [
            (
                "conversations_days",
                section.conversations_days,
                "conversations",
            ),
            ("messages_days", section.messages_days, "messages"),
        ] {
            let Some(days) = days else { continue };
            if !(1..=36_500).contains(&days) {
                self.report(
                    &key.key(name),
                    format!(
                        "must be between 1 and 36500 days, not {days}: leave it out to keep \
                         {what} forever"
                    ),
                );
                continue;
            }
            let keep = Duration::from_secs(days * 24 * 3600);
            retention = match what {
                "conversations" => retention.conversations(keep),
                _ => retention.messages(keep),
            };
        }
        retention
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
            &file.brands,
            file.api_token.as_ref(),
            file.retention.as_ref(),
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
            ("brands", !file.brands.is_empty(), "[[tenants.brands]]"),
            (
                "api_token",
                file.api_token.is_some(),
                "[[tenants]] api_token",
            ),
            ("retention", file.retention.is_some(), "[tenants.retention]"),
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
            if section.require_signed && file.host.trusted_keys.is_empty() {
                checker.report(
                    &key.key("require_signed"),
                    "is true but `[host] trusted_keys` is empty: none of this tenant's \
                     plugins could load",
                );
            }
            tenants.push(checker.tenant(
                section.id.clone(),
                key,
                &file.limits,
                &section.connectors,
                section.routing.as_ref(),
                &section.operators,
                &section.brands,
                section.api_token.as_ref(),
                section.retention.as_ref(),
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
    // Checked above: every key parses.
    let trust = crate::runtime::PluginTrust::trusting(host.trusted_keys.iter().cloned())
        .unwrap_or_default()
        .require_signed(host.require_signed);
    let trust = file
        .tenants
        .iter()
        .filter(|t| t.require_signed)
        .fold(trust, |trust, t| trust.require_signed_for(t.id.clone()));
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
        media: crate::MediaLimits::new(
            host.media_max_file_kib.saturating_mul(1 << 10),
            host.media_max_tenant_mib.saturating_mul(1 << 20),
        ),
        watch_plugins: host
            .watch_plugins
            .then(|| Duration::from_millis(host.watch_interval_ms)),
        log_format: host.log_format,
        ingress: crate::serve::IngressLimits {
            max_body_bytes: host.max_webhook_body_bytes,
            header_read_timeout: Duration::from_millis(host.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(host.body_read_timeout_ms),
            max_connections: host.max_connections,
            max_connections_per_peer: host.max_connections_per_peer,
        },
        pooling_instances: host.pooling_instances,
        trust,
        tenants,
        base_dir,
        source,
        secret_references: Vec::new(),
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

mod connectors;
mod host;
mod routing;

#[cfg(test)]
mod tests;
