//! `centralino plugin webhook` and `centralino plugin poll`: run one captured delivery, or
//! one poll, through a plugin with an admin's configuration, and print what the plugin
//! made of it as JSON. Plugin authors and admins debug with these; nothing is stored.
//!
//! Exit status: 0 the plugin took the input; 1 the command could not run (config, files,
//! a plugin that does not load); 2 bad arguments; 3 the plugin refused the input (a 4xx
//! answer or an `invalid-input` error); 4 the plugin failed otherwise (5xx, an error, a
//! trap). What the plugin ignored on purpose is listed under `ignored` and summed up on
//! stderr. Only the tested connector's secrets need to be set.

use std::path::PathBuf;

use anyhow::Context as _;
use centralino::PluginFailure;
use centralino::config::{Config, StoreLocation};
use centralino::connectors::{ConnectorSpec, DEFAULT_TENANT};
use centralino::runtime::{Error, Runtime};
use centralino::types::WebhookRequest;

/// Which connector of which config the plugin stands in for.
#[derive(clap::Args)]
pub struct ConnectorArgs {
    /// The plugin component to run (it replaces the configured connector's plugin).
    plugin: PathBuf,
    /// The centralino.toml whose connector settings, accounts and secrets to use.
    #[arg(long, default_value = "centralino.toml")]
    config: PathBuf,
    /// The connector (default: the only one, or the one whose plugin has this file name).
    #[arg(long)]
    connector: Option<String>,
    /// The tenant.
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Override a connector setting, e.g. `api_base=http://127.0.0.1:9000` (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Allow the plugin to reach one more host, e.g. an emulator (repeatable).
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
}

/// `plugin webhook` arguments.
#[derive(clap::Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    connector: ConnectorArgs,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// File holding the raw body, exactly as the platform sent it.
    #[arg(long)]
    body: Option<PathBuf>,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Raw query string (for verification handshakes).
    #[arg(long, default_value = "")]
    query: String,
    /// The path below the connector's route, as the ingress hands it over (`/7001` for a
    /// per-bot URL).
    #[arg(long, default_value = "/")]
    path: String,
    /// Sign the body with the connector's configured secret, as the platform would: X's
    /// `x-twitter-webhooks-signature: sha256=<base64>` (consumer_secret) or Meta's
    /// `x-hub-signature-256: sha256=<hex>` (app_secret). Replaces a header of that name.
    #[arg(long)]
    sign: bool,
}

/// `plugin poll` arguments.
#[derive(clap::Args)]
pub struct PollArgs {
    #[command(flatten)]
    connector: ConnectorArgs,
    /// The account to poll.
    #[arg(long)]
    account: String,
    /// The cursor to poll from (default: from the beginning).
    #[arg(long)]
    cursor: Option<String>,
}

impl ConnectorArgs {
    /// The configured connector, with the plugin, settings and hosts of the command line.
    /// Only that connector's secrets are resolved: debugging one connector never needs the
    /// others', the admin token, the tenants' API tokens or the store's URL.
    fn spec(&self) -> anyhow::Result<ConnectorSpec> {
        let mut config = Config::load(&self.config)?;
        let Some(tenant) = config.tenants.iter().find(|t| t.id == self.tenant) else {
            let tenants: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
            anyhow::bail!(
                "{}: there is no tenant `{}` (tenants: {})",
                self.config.display(),
                self.tenant,
                tenants.join(", ")
            );
        };
        let names = || {
            tenant
                .connectors
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen = match &self.connector {
            Some(name) => tenant
                .connectors
                .iter()
                .find(|c| &c.name == name)
                .with_context(|| {
                    format!(
                        "{}: tenant `{}` has no connector `{name}` (it has: {})",
                        self.config.display(),
                        self.tenant,
                        names()
                    )
                })?,
            None => {
                let file = self.plugin.file_name();
                let only = tenant.connectors.len() == 1;
                let matching: Vec<_> = tenant
                    .connectors
                    .iter()
                    .filter(|c| only || c.plugin.file_name() == file)
                    .collect();
                match matching.as_slice() {
                    [one] => *one,
                    [] => anyhow::bail!(
                        "{}: no connector uses `{}`; name one with --connector (connectors: {})",
                        self.config.display(),
                        self.plugin.display(),
                        names()
                    ),
                    _ => anyhow::bail!(
                        "several connectors use this plugin; name one with --connector ({})",
                        names()
                    ),
                }
            }
        };
        let mut tenant = tenant.clone();
        tenant.connectors = vec![chosen.clone()];
        tenant.api_token = None;
        config.tenants = vec![tenant];
        config.admin_token = None;
        config.crm_webhook_secret = None;
        config.store = StoreLocation::Url("sqlite::memory:".to_string());
        let secrets = config.resolve_secrets()?;
        let mut spec = config
            .connector_specs(&secrets)
            .into_iter()
            .next()
            .context("the chosen connector vanished from the config")?;
        spec.plugin = self.plugin.clone();
        for setting in &self.settings {
            let (key, value) = setting
                .split_once('=')
                .with_context(|| format!("--setting `{setting}`: expected KEY=VALUE"))?;
            spec.config.settings.retain(|(k, _)| k != key);
            spec.config
                .settings
                .push((key.to_string(), value.to_string()));
        }
        spec.grants
            .allowed_hosts
            .extend(self.allow_hosts.iter().cloned());
        Ok(spec)
    }
}

fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// What a replay tells scripts through its exit status (also in `--help` and the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 0: the plugin took the input (a 2xx answer, or a poll result).
    Accepted,
    /// 3: the plugin refused the input: a 4xx answer (unsigned 401, forged 403, malformed
    /// 400), or an `invalid-input` error.
    Refused,
    /// 4: the plugin failed: any other error (platform down, credentials refused, a trap),
    /// or a 5xx answer.
    Failed,
}

impl Verdict {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Refused => 3,
            Verdict::Failed => 4,
        }
    }

    fn of_status(status: u16) -> Self {
        match status {
            200..=399 => Verdict::Accepted,
            400..=499 => Verdict::Refused,
            _ => Verdict::Failed,
        }
    }

    fn of_error(error: &Error) -> Self {
        match error {
            Error::Plugin {
                failure: PluginFailure::InvalidInput { .. },
                ..
            } => Verdict::Refused,
            _ => Verdict::Failed,
        }
    }
}

/// The signature header `--sign` adds for the connector's channel: X signs with the
/// consumer secret in base64, Meta with the app secret in hex, both HMAC-SHA256 of the raw
/// body.
fn signature_header(
    channel: &str,
    secrets: &std::collections::BTreeMap<String, centralino::capabilities::Secret>,
    body: &[u8],
) -> anyhow::Result<(String, String)> {
    use base64::Engine as _;
    let base64 = |mac: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(mac);
    let (secret_name, header, encode): (&str, &str, &dyn Fn(Vec<u8>) -> String) = match channel {
        "twitter" => ("consumer_secret", "x-twitter-webhooks-signature", &base64),
        "facebook" => ("app_secret", "x-hub-signature-256", &hex::encode),
        other => anyhow::bail!(
            "--sign knows X's (twitter) and Meta's (facebook) signatures; this plugin's \
             channel is `{other}`: pass the header with --header"
        ),
    };
    let secret = secrets.get(secret_name).with_context(|| {
        format!(
            "--sign needs the connector's secret `{secret_name}`, which the config does not set"
        )
    })?;
    let signature = format!("sha256={}", encode(secret.hmac_sha256(body)));
    Ok((header.to_string(), signature))
}

/// The ignored events of a call, printed on stderr in one line for people.
fn summarise_ignored(ignored: &std::collections::BTreeMap<String, u64>) {
    if ignored.is_empty() {
        return;
    }
    let parts: Vec<String> = ignored
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    eprintln!("ignored on purpose: {}", parts.join(", "));
}

/// Runs one delivery through the plugin and prints the response and messages.
pub fn webhook(args: WebhookArgs) -> anyhow::Result<Verdict> {
    let spec = args.connector.spec()?;
    let body = match &args.body {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("reading the body {}", path.display()))?
        }
        None => Vec::new(),
    };
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header `{header}`: expected `Name: value`"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    tokio()?.block_on(async {
        let plugin = Runtime::new()?.load_channel(&spec.plugin)?;
        let mut instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        if args.sign {
            instance.ready().await?;
            let channel = instance
                .description()
                .map(|d| d.channel.clone())
                .unwrap_or_default();
            let (name, value) = signature_header(&channel, &spec.grants.secrets, &body)?;
            headers.retain(|(known, _)| *known != name);
            headers.push((name, value));
        }
        let request = WebhookRequest {
            method: args.method.to_ascii_uppercase(),
            path: args.path.clone(),
            query: args.query.clone(),
            headers,
            body,
        };
        let result = instance.handle_webhook(request).await;
        let ignored = instance.take_notes().ignored;
        summarise_ignored(&ignored);
        let (json, verdict) = match result {
            Ok(outcome) => (
                serde_json::json!({
                    "plugin": plugin.id().to_string(),
                    "response": {
                        "status": outcome.response.status,
                        "headers": outcome.response.headers,
                        "body": String::from_utf8_lossy(&outcome.response.body),
                    },
                    "messages": outcome.messages,
                    "receipts": outcome.receipts,
                    "ignored": ignored,
                }),
                Verdict::of_status(outcome.response.status),
            ),
            Err(e) => (
                serde_json::json!({
                    "plugin": plugin.id().to_string(),
                    "error": e.to_string(),
                    "ignored": ignored,
                }),
                Verdict::of_error(&e),
            ),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        Ok(verdict)
    })
}

/// Polls one account once through the plugin and prints the messages and the new cursor.
pub fn poll(args: PollArgs) -> anyhow::Result<Verdict> {
    let spec = args.connector.spec()?;
    tokio()?.block_on(async {
        let plugin = Runtime::new()?.load_channel(&spec.plugin)?;
        let mut instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        let result = instance.poll(&args.account, args.cursor.as_deref()).await;
        let ignored = instance.take_notes().ignored;
        summarise_ignored(&ignored);
        let (json, verdict) = match result {
            Ok(result) => (
                serde_json::json!({
                    "plugin": plugin.id().to_string(),
                    "account": args.account,
                    "messages": result.messages,
                    "cursor": result.cursor,
                    "next_poll_after_ms": result.next_poll_after_ms,
                    "ignored": ignored,
                }),
                Verdict::Accepted,
            ),
            Err(e) => (
                serde_json::json!({
                    "plugin": plugin.id().to_string(),
                    "account": args.account,
                    "error": e.to_string(),
                    "ignored": ignored,
                }),
                Verdict::of_error(&e),
            ),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        Ok(verdict)
    })
}
