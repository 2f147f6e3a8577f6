//! From a checked config to what the host runs: secrets resolved, connectors with their
//! grants, a routing engine per tenant, and the plugin inspection `centralino check` does.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use super::error::{ConfigError, KeyPath, Problem};
use super::secrets::{ConnectorSecrets, ResolvedSecrets};
use super::{Config, Connector, StoreLocation, Tenant};
use crate::HostBuilder;
use crate::capabilities::Grants;
use crate::connectors::ConnectorSpec;
use crate::error::PluginId;
use crate::routing::{EngineBuilder, PolicyChain, ReplyRules, RoutingEngine, RoutingError};
use crate::runtime::{Runtime, World, inspect_file};
use crate::types::{AccountConfig, Capability, ConnectorConfig, Presence};

/// One plugin named in the config, inspected without compiling it.
#[derive(Clone, Debug, Serialize)]
pub struct PluginCheck {
    /// The tenant naming it.
    pub tenant: String,
    /// Where it is named (`connectors[0].plugin`, `routing.chain`).
    pub key: String,
    /// The component file.
    pub path: PathBuf,
    /// The plugin's name and version.
    pub plugin: PluginId,
    /// Its world.
    pub world: World,
    /// The contract version it was built against.
    pub contract: String,
}

impl Config {
    /// The runtime the config asks for (with its compiled-component cache).
    pub fn runtime(&self) -> Result<Runtime, crate::Error> {
        let mut builder = Runtime::builder().trust(self.trust.clone());
        if let Some(dir) = &self.cache_dir {
            builder = builder.cache_dir(dir);
        }
        if let Some(instances) = self.pooling_instances {
            builder = builder.pooling(instances);
        }
        Ok(builder.build()?)
    }

    /// The store URL, the reference resolved from `secrets`.
    pub fn store_url(&self, secrets: &ResolvedSecrets) -> String {
        match &self.store {
            StoreLocation::Url(url) => url.clone(),
            StoreLocation::Secret(_) => secrets.store_url.clone().unwrap_or_default(),
        }
    }

    /// Every connector of every tenant, with the grants its secrets give it; disabled ones
    /// have `enabled: false` (the host loads them and starts them disabled). `secrets` must
    /// come from this config's [`Config::resolve_secrets`].
    pub fn connector_specs(&self, secrets: &ResolvedSecrets) -> Vec<ConnectorSpec> {
        let mut specs = Vec::new();
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                let granted = secrets
                    .connectors
                    .get(&(tenant.id.clone(), connector.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                specs.push(connector_spec(tenant, connector, granted));
            }
        }
        specs
    }

    /// A host builder with the config's store, webhook body limit and enabled connectors,
    /// on `runtime` (share it with the routing engines). `secrets` must come from this
    /// config's [`Config::resolve_secrets`].
    pub fn host_builder(&self, runtime: Runtime, secrets: &ResolvedSecrets) -> HostBuilder {
        let mut builder = HostBuilder::default()
            .runtime(runtime)
            .store(self.store_url(secrets))
            .max_webhook_body(self.max_webhook_body)
            .host_id(self.host_id.clone());
        if let Some(ttl) = self.poll_lease_ttl {
            builder = builder.poll_lease_ttl(ttl);
        }
        builder = builder.retention(self.retention).media_limits(self.media);
        for tenant in &self.tenants {
            if tenant.retention != crate::store::ContentRetention::forever() {
                builder = builder.content_retention(tenant.id.clone(), tenant.retention);
            }
        }
        if let Some(key) = &secrets.token_key {
            builder = builder.token_key(key.clone());
        }
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                let (Some(section), Some(granted)) = (
                    &connector.oauth,
                    secrets
                        .connectors
                        .get(&(tenant.id.clone(), connector.name.clone())),
                ) else {
                    continue;
                };
                let Some((client_id, client_secret)) = &granted.oauth else {
                    continue;
                };
                let callback = if tenant.id == crate::connectors::DEFAULT_TENANT {
                    "/oauth/callback".to_string()
                } else {
                    format!("/tenants/{}/oauth/callback", tenant.id)
                };
                let app = crate::accounts::OAuthApp {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    redirect_url: section
                        .redirect_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{}{callback}", self.admin_listen)),
                    endpoints: crate::accounts::Endpoints {
                        authorize_url: section.authorize_url.clone(),
                        token_url: section.token_url.clone(),
                        revoke_url: section.revoke_url.clone(),
                        identity_url: section.identity_url.clone(),
                        accounts_url: section.accounts_url.clone(),
                        subscribe_url: section.subscribe_url.clone(),
                        webhooks_url: section.webhooks_url.clone(),
                    },
                    webhook_url: section.webhook_url.clone(),
                    app_token: granted.app_token.clone(),
                };
                builder = builder.oauth_app(tenant.id.clone(), connector.name.clone(), app);
            }
        }
        if let (Some(url), Some(secret)) = (&self.crm_webhook, &secrets.crm_webhook_secret) {
            match crate::crm::WebhookCrm::new(url.clone(), secret.clone()) {
                Ok(crm) => builder = builder.crm(std::sync::Arc::new(crm)),
                Err(e) => tracing::error!("host.crm_webhook: cannot create the HTTP client: {e:#}"),
            }
        }
        self.connector_specs(secrets)
            .into_iter()
            .fold(builder, HostBuilder::connector)
    }

    /// Inspects every plugin the config names, without compiling anything: connectors
    /// must be `channel` components, routing stages `routing-policy` ones, all of a
    /// contract version this host serves. Every failure is reported with its key.
    pub fn inspect_plugins(&self) -> Result<Vec<PluginCheck>, ConfigError> {
        let mut problems = Vec::new();
        let mut checks = Vec::new();
        let mut inspected = HashMap::new();
        let mut check = |tenant: &Tenant,
                         key: KeyPath,
                         label: Option<&str>,
                         path: PathBuf,
                         world: World,
                         problems: &mut Vec<Problem>| {
            let inspection = inspected
                .entry(path.clone())
                .or_insert_with(|| inspect_file(&path).map_err(|e| e.to_string()))
                .clone()
                .and_then(|info| {
                    info.ensure_loadable(&path, Some(world))
                        .map(|()| info)
                        .map_err(|e| e.to_string())
                });
            match inspection {
                Ok(info) => checks.push(PluginCheck {
                    tenant: tenant.id.clone(),
                    key: key.to_string(),
                    path,
                    plugin: info.plugin,
                    world: info.world,
                    contract: info.contract.to_string(),
                }),
                Err(message) => {
                    let message = match label {
                        Some(stage) => format!("stage `{stage}`: {message}"),
                        None => message,
                    };
                    problems.push(self.source.problem(&key, message));
                }
            }
        };
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                check(
                    tenant,
                    connector.key.key("plugin"),
                    None,
                    connector.plugin.clone(),
                    World::Channel,
                    &mut problems,
                );
            }
            let Some(plan) = &tenant.routing else {
                continue;
            };
            let chains = [
                ("chain", Some(&plan.chain)),
                ("shadow", plan.shadow.as_ref()),
            ];
            for (name, spec) in chains {
                for stage in spec.iter().flat_map(|spec| &spec.stages) {
                    check(
                        tenant,
                        plan.key.key(name),
                        Some(&stage.plugin),
                        stage.component_path(&plan.plugin_dir),
                        World::RoutingPolicy,
                        &mut problems,
                    );
                }
            }
        }
        if problems.is_empty() {
            Ok(checks)
        } else {
            Err(self.source.error(problems))
        }
    }
}

impl Config {
    /// Compiles every plugin and configures an instance with its settings and accounts, as
    /// the host does at start-up, without opening the store or serving anything: a setting
    /// or account the plugin refuses is reported here, with its key. A connector with a
    /// poll interval must say it can poll. Disabled connectors are configured too (with
    /// their secrets if `secrets` has them: configuring needs none).
    pub async fn configure_plugins(
        &self,
        runtime: &Runtime,
        secrets: &ResolvedSecrets,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                let granted = secrets
                    .connectors
                    .get(&(tenant.id.clone(), connector.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let spec = connector_spec(tenant, connector, granted);
                let configured = async {
                    let plugin = runtime.load_channel(&spec.plugin)?;
                    runtime
                        .trust()
                        .check_for_tenant(&tenant.id, &spec.plugin, plugin.info())?;
                    let mut instance = plugin.instance(spec.config, spec.grants, spec.limits);
                    instance.ready().await?;
                    let polls = instance
                        .description()
                        .is_some_and(|d| d.capabilities.contains(&Capability::Polling));
                    Ok::<_, crate::Error>((plugin.id().clone(), polls))
                };
                match configured.await {
                    Ok((plugin, false)) if connector.poll_interval.is_some() => {
                        problems.push(self.source.problem(
                            &connector.key.key("poll_interval_secs"),
                            format!(
                                "plugin {plugin} does not poll (it only receives webhooks): \
                                 leave `poll_interval_secs` out"
                            ),
                        ));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        problems.push(self.source.problem(&connector.key, error.to_string()));
                    }
                }
            }
            let Some(plan) = &tenant.routing else {
                continue;
            };
            let chains = [
                ("chain", Some(&plan.chain)),
                ("shadow", plan.shadow.as_ref()),
            ];
            for (name, spec) in chains {
                for stage in spec.iter().flat_map(|spec| &spec.stages) {
                    let configured = async {
                        let plugin = runtime.load_router(stage.component_path(&plan.plugin_dir))?;
                        plugin
                            .instance(stage.settings.clone(), plan.limits.clone())
                            .ready()
                            .await
                    };
                    if let Err(error) = configured.await {
                        problems.push(self.source.problem(
                            &plan.key.key(name),
                            format!("stage `{}`: {error}", stage.plugin),
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.source.error(problems))
        }
    }
}

fn connector_spec(
    tenant: &Tenant,
    connector: &Connector,
    granted: ConnectorSecrets,
) -> ConnectorSpec {
    let accounts = connector
        .accounts
        .iter()
        .map(|account| AccountConfig {
            id: account.id.clone(),
            handle: account.handle.clone(),
            // Credentials are granted under the account's id.
            credential: account.credential.as_ref().map(|_| account.id.clone()),
            settings: account.settings.clone(),
        })
        .collect();
    let brands = connector
        .accounts
        .iter()
        .filter_map(|a| Some((a.id.clone(), a.brand.clone()?)))
        .collect();
    let config = ConnectorConfig {
        settings: connector.settings.clone(),
        accounts,
    };
    let mut grants = Grants::default();
    grants.allowed_hosts = connector.allowed_hosts.clone();
    grants.credentials = granted.credentials;
    grants.secrets = granted.secrets;
    ConnectorSpec {
        tenant: tenant.id.clone().into(),
        grants,
        limits: connector.limits.clone(),
        poll_interval: connector.poll_interval,
        brands,
        enabled: connector.enabled,
        ..ConnectorSpec::new(connector.name.clone(), connector.plugin.clone(), config)
    }
}

impl Tenant {
    /// Operators reply from their own account on every channel where one of them has an
    /// account (Twitter in the telecom scenario), and as the receiving account elsewhere
    /// (a Facebook page answers as the page).
    pub fn reply_rules(&self) -> ReplyRules {
        let channels: std::collections::BTreeSet<&str> = self
            .operators
            .iter()
            .flat_map(|operator| operator.accounts.iter().map(|a| a.channel.as_str()))
            .collect();
        ReplyRules::new(channels)
    }

    /// Loads the tenant's chain (and shadow chain) on `runtime`, configuring every stage,
    /// and returns an engine builder with the offer timeout, reply rules and handling
    /// window of the config; none when the tenant has no routing. Set a clock on it, or
    /// use [`Tenant::engine`].
    pub async fn engine_builder(
        &self,
        runtime: &Runtime,
    ) -> Result<Option<EngineBuilder>, RoutingError> {
        let Some(plan) = &self.routing else {
            return Ok(None);
        };
        let chain = PolicyChain::load(runtime, &plan.chain, &plan.plugin_dir, &plan.limits).await?;
        let mut builder = RoutingEngine::builder(chain)
            .reply_rules(self.reply_rules())
            .handling_window(plan.handling_window);
        if let Some(timeout) = plan.offer_timeout {
            builder = builder.offer_timeout(timeout);
        }
        if let Some(shadow) = &plan.shadow {
            let shadow = PolicyChain::load(runtime, shadow, &plan.plugin_dir, &plan.limits).await?;
            builder = builder.shadow(shadow);
        }
        Ok(Some(builder))
    }

    /// The tenant's routing engine with every operator on its roster, offline until they
    /// say otherwise; none when the tenant has no routing.
    pub async fn engine(&self, runtime: &Runtime) -> Result<Option<RoutingEngine>, RoutingError> {
        let Some(builder) = self.engine_builder(runtime).await? else {
            return Ok(None);
        };
        let mut engine = builder.build();
        self.add_operators(&mut engine).await;
        Ok(Some(engine))
    }

    /// Puts every operator of the tenant on `engine`'s roster, offline.
    pub async fn add_operators(&self, engine: &mut RoutingEngine) {
        for operator in &self.operators {
            engine
                .add_operator(operator.clone(), Presence::Offline)
                .await;
        }
    }
}
