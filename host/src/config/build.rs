//! From a checked config to what the host runs: secrets resolved, connectors with their
//! grants, a routing engine per tenant, and the plugin inspection `centralino check` does.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use super::error::{ConfigError, KeyPath, Problem};
use super::values::{CredentialRef, SecretRef};
use super::{Config, Connector, StoreLocation, Tenant};
use crate::HostBuilder;
use crate::capabilities::{Credential, Grants, Secret};
use crate::connectors::ConnectorSpec;
use crate::error::PluginId;
use crate::routing::{EngineBuilder, PolicyChain, ReplyRules, RoutingEngine, RoutingError};
use crate::runtime::{Runtime, World, inspect_file};
use crate::types::{AccountConfig, Capability, ConnectorConfig, Presence};

/// `token` as the admin and REST APIs compare it: surrounding whitespace trimmed (an HTTP
/// header never carries it); an error saying why when nothing is left, or whitespace or
/// control characters remain inside (such a token cannot be sent as `Bearer <token>`).
fn bearer_token(token: &Secret) -> Result<Secret, &'static str> {
    let value = token.expose().trim_ascii();
    if value.is_empty() {
        return Err("is empty or only whitespace");
    }
    if value
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("holds whitespace or control characters: a bearer token is one word");
    }
    Ok(Secret::new(value.to_vec()))
}

/// The secrets one connector was granted.
#[derive(Clone, Debug, Default)]
struct ConnectorSecrets {
    credentials: BTreeMap<String, Credential>,
    secrets: BTreeMap<String, Secret>,
    /// The OAuth app's client id and secret, for connected accounts.
    oauth: Option<(Secret, Option<Secret>)>,
    /// A disabled connector's references that are not set (with their keys).
    waiting: Vec<String>,
}

/// Every secret a config refers to, read from the environment and files. `Debug` shows
/// no value.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    store_url: Option<String>,
    admin_token: Option<Secret>,
    token_key: Option<Secret>,
    crm_webhook_secret: Option<Secret>,
    api_tokens: BTreeMap<String, Secret>,
    connectors: BTreeMap<(String, String), ConnectorSecrets>,
    count: usize,
}

impl std::fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecrets")
            // The URL may hold the database password.
            .field(
                "store_url",
                &self.store_url.as_deref().map(crate::store::redacted_url),
            )
            .field("admin_token", &self.admin_token)
            .field("token_key", &self.token_key)
            .field("crm_webhook_secret", &self.crm_webhook_secret)
            .field("api_tokens", &self.api_tokens)
            .field("connectors", &self.connectors)
            .field("count", &self.count)
            .finish()
    }
}

impl ResolvedSecrets {
    /// The admin API's token, when the config names one.
    pub fn admin_token(&self) -> Option<&Secret> {
        self.admin_token.as_ref()
    }

    /// The key sealing host-held tokens (`host.token_key`), if set.
    pub fn token_key(&self) -> Option<&Secret> {
        self.token_key.as_ref()
    }

    /// Each tenant's REST API token, by tenant id (tenants without one are left out).
    pub fn api_tokens(&self) -> &BTreeMap<String, Secret> {
        &self.api_tokens
    }

    /// How many references were resolved.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the config refers to no secret at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The references of disabled connectors that are not set yet, by tenant and
    /// connector: such a connector is built, and enabling it before they are set (and the
    /// config reloaded) leaves its plugin without them.
    pub fn waiting(&self) -> Vec<(String, String, Vec<String>)> {
        self.connectors
            .iter()
            .filter(|(_, granted)| !granted.waiting.is_empty())
            .map(|((tenant, name), granted)| {
                (tenant.clone(), name.clone(), granted.waiting.clone())
            })
            .collect()
    }
}

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
    /// Resolves every secret reference from the process environment and files. See
    /// [`Config::resolve_secrets_with`].
    pub fn resolve_secrets(&self) -> Result<ResolvedSecrets, ConfigError> {
        self.resolve_secrets_with(|name| std::env::var(name).ok())
    }

    /// Resolves every secret reference: the admin token, the store URL when it is a
    /// reference, and the secrets and credentials of every connector (a disabled one may
    /// wait for its secrets: those unset are listed in [`ResolvedSecrets::waiting`]). `env` looks variables up; files are read relative to
    /// the config file. Every unresolved reference is reported, each with its key and the
    /// variable or file.
    pub fn resolve_secrets_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedSecrets, ConfigError> {
        let mut problems = Vec::new();
        let mut resolved = ResolvedSecrets::default();
        let mut resolve =
            |key: &KeyPath, reference: &SecretRef, problems: &mut Vec<Problem>| match reference
                .resolve(&self.base_dir, &env)
            {
                Ok(secret) => {
                    resolved.count += 1;
                    Some(secret)
                }
                Err(message) => {
                    problems.push(self.source.problem(key, message));
                    None
                }
            };
        let host = KeyPath::root().key("host");
        // A bearer token that cannot be sent in a header would lock its API for good.
        let bearer = |key: &KeyPath,
                      reference: &SecretRef,
                      token: Secret,
                      problems: &mut Vec<Problem>| match bearer_token(&token) {
            Ok(token) => Some(token),
            Err(why) => {
                problems.push(
                    self.source
                        .problem(key, format!("the token in `{reference}` {why}")),
                );
                None
            }
        };
        let token_key = self
            .token_key
            .as_ref()
            .and_then(|r| resolve(&host.key("token_key"), r, &mut problems));
        let admin_token = self.admin_token.as_ref().and_then(|r| {
            let key = host.key("admin_token");
            let token = resolve(&key, r, &mut problems)?;
            bearer(&key, r, token, &mut problems)
        });
        let crm_webhook_secret = self
            .crm_webhook_secret
            .as_ref()
            .and_then(|r| resolve(&host.key("crm_webhook_secret"), r, &mut problems));
        let mut api_tokens: BTreeMap<String, Secret> = BTreeMap::new();
        for tenant in &self.tenants {
            let Some(reference) = &tenant.api_token else {
                continue;
            };
            let key = tenant.key.key("api_token");
            let Some(token) = resolve(&key, reference, &mut problems)
                .and_then(|token| bearer(&key, reference, token, &mut problems))
            else {
                continue;
            };
            // The admin token opens every tenant: a tenant holding it would hold them all.
            if admin_token.as_ref() == Some(&token) {
                problems.push(self.source.problem(
                    &key,
                    format!(
                        "`{reference}` holds the same token as `host.admin_token`: the admin \
                         token opens every tenant, so no tenant's `api_token` may be it"
                    ),
                ));
                continue;
            }
            // A token names its tenant: two tenants sharing one could not be told apart.
            if let Some((other, _)) = api_tokens.iter().find(|(_, known)| **known == token) {
                problems.push(self.source.problem(
                    &key,
                    format!(
                        "`{reference}` holds the same token as tenant `{other}`'s `api_token`: \
                         each tenant needs a token of its own"
                    ),
                ));
                continue;
            }
            api_tokens.insert(tenant.id.clone(), token);
        }
        let store_url = match &self.store {
            StoreLocation::Url(_) => None,
            StoreLocation::Secret(reference) => {
                let key = host.key("store");
                resolve(&key, reference, &mut problems).and_then(|secret| {
                    match String::from_utf8(secret.expose().to_vec()) {
                        Ok(url) => Some(url),
                        Err(_) => {
                            problems.push(self.source.problem(
                                &key,
                                format!("the store URL in `{reference}` is not UTF-8 text"),
                            ));
                            None
                        }
                    }
                })
            }
        };
        let mut connectors = BTreeMap::new();
        for tenant in &self.tenants {
            for connector in &tenant.connectors {
                // A disabled connector may wait for its secrets: what is set is granted,
                // what is not is listed in `waiting`, not a problem.
                let mut own = Vec::new();
                let mut granted = ConnectorSecrets::default();
                for (name, reference) in &connector.secrets {
                    let key = connector.key.key("secrets").key(name.clone());
                    if let Some(secret) = resolve(&key, reference, &mut own) {
                        granted.secrets.insert(name.clone(), secret);
                    }
                }
                for (index, account) in connector.accounts.iter().enumerate() {
                    let Some(credential) = &account.credential else {
                        continue;
                    };
                    let key = connector.key.key("accounts").index(index).key("credential");
                    let credential = match credential {
                        CredentialRef::Bearer(reference) => {
                            resolve(&key, reference, &mut own).map(Credential::Bearer)
                        }
                        CredentialRef::Query { parameter, token } => {
                            resolve(&key.key("token"), token, &mut own).map(|token| {
                                Credential::QueryParameter {
                                    name: parameter.clone(),
                                    token,
                                }
                            })
                        }
                        CredentialRef::Path(reference) => {
                            resolve(&key, reference, &mut own).map(Credential::PathSegment)
                        }
                        CredentialRef::Connected => Some(Credential::Connected(
                            crate::accounts::ConnectedCredential::new(),
                        )),
                    };
                    if let Some(credential) = credential {
                        granted.credentials.insert(account.id.clone(), credential);
                    }
                }
                if let Some(oauth) = &connector.oauth {
                    let key = connector.key.key("oauth");
                    let id = resolve(&key.key("client_id"), &oauth.client_id, &mut own);
                    let secret = match &oauth.client_secret {
                        Some(reference) => {
                            resolve(&key.key("client_secret"), reference, &mut own).map(Some)
                        }
                        None => Some(None),
                    };
                    if let (Some(id), Some(secret)) = (id, secret) {
                        granted.oauth = Some((id, secret));
                    }
                }
                if connector.enabled {
                    problems.extend(own);
                } else {
                    granted.waiting = own
                        .into_iter()
                        .map(|p| match p.key {
                            Some(key) => format!("{key}: {}", p.message),
                            None => p.message,
                        })
                        .collect();
                }
                connectors.insert((tenant.id.clone(), connector.name.clone()), granted);
            }
        }
        if !problems.is_empty() {
            return Err(self.source.error(problems));
        }
        resolved.admin_token = admin_token;
        resolved.token_key = token_key;
        resolved.api_tokens = api_tokens;
        resolved.crm_webhook_secret = crm_webhook_secret;
        resolved.store_url = store_url;
        resolved.connectors = connectors;
        Ok(resolved)
    }

    /// The runtime the config asks for (with its compiled-component cache).
    pub fn runtime(&self) -> Result<Runtime, crate::Error> {
        let mut builder = Runtime::builder();
        if let Some(dir) = &self.cache_dir {
            builder = builder.cache_dir(dir);
        }
        if let Some(instances) = self.pooling_instances {
            builder = builder.pooling(instances);
        }
        builder.build()
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
        builder = builder.retention(self.retention);
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
                    },
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
    ConnectorSpec {
        tenant: tenant.id.clone(),
        grants: Grants {
            allowed_hosts: connector.allowed_hosts.clone(),
            credentials: granted.credentials,
            secrets: granted.secrets,
        },
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
