//! `[[operator]]` and `[routing]`: operators, their accounts, the chains.

use super::*;

impl Checker<'_> {
    pub(super) fn operators(
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

    pub(super) fn routing(
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
        if section.auto_reply.is_some() {
            self.report(
                &key.key("auto_reply"),
                "automatic answers are configured per brand now, off unless a brand turns \
                 them on: remove this key and write `auto_reply = true` with templates under \
                 `[[brands]]` (see docs/answers.md)",
            );
        }
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
            handling_window: section.handling_window.unwrap_or(50),
            limits,
            plugin_dir: self.plugin_dir.clone(),
            key: key.clone(),
        })
    }

    /// Parses a chain and checks that every stage's plugin file exists (reporting the
    /// missing ones; the spec is returned as long as it parses).
    pub(super) fn chain(&mut self, key: &KeyPath, text: &str) -> Option<ChainSpec> {
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
