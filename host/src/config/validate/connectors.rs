//! `[[connector]]`: plugin, settings, grants and accounts.

use super::*;

impl Checker<'_> {
    pub(super) fn connectors(
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

    pub(super) fn accounts(
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
}
