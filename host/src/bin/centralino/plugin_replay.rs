//! `centralino plugin webhook` and `centralino plugin poll`: run one captured delivery, or
//! one poll, through a plugin with an admin's configuration, and print what the plugin
//! made of it as JSON. Plugin authors and admins debug with these; nothing is stored.

use std::path::PathBuf;

use anyhow::Context as _;
use centralino::config::Config;
use centralino::connectors::{ConnectorSpec, DEFAULT_TENANT};
use centralino::runtime::Runtime;
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
    fn spec(&self) -> anyhow::Result<ConnectorSpec> {
        let config = Config::load(&self.config)?;
        let secrets = config.resolve_secrets()?;
        let specs: Vec<ConnectorSpec> = config
            .connector_specs(&secrets)
            .into_iter()
            .filter(|s| s.tenant == self.tenant)
            .collect();
        let names = || {
            specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut spec = match &self.connector {
            Some(name) => specs
                .iter()
                .find(|s| &s.name == name)
                .cloned()
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
                let matching: Vec<&ConnectorSpec> = specs
                    .iter()
                    .filter(|s| specs.len() == 1 || s.plugin.file_name() == file)
                    .collect();
                match matching.as_slice() {
                    [one] => (*one).clone(),
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

/// Runs one delivery through the plugin and prints the response and messages.
pub fn webhook(args: WebhookArgs) -> anyhow::Result<()> {
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
    let request = WebhookRequest {
        method: args.method.to_ascii_uppercase(),
        path: "/".to_string(),
        query: args.query.clone(),
        headers,
        body,
    };
    tokio()?.block_on(async {
        let plugin = Runtime::new()?.load_channel(&spec.plugin)?;
        let mut instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        let outcome = instance.handle_webhook(request).await?;
        let json = serde_json::json!({
            "plugin": plugin.id().to_string(),
            "response": {
                "status": outcome.response.status,
                "headers": outcome.response.headers,
                "body": String::from_utf8_lossy(&outcome.response.body),
            },
            "messages": outcome.messages,
            "receipts": outcome.receipts,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        Ok(())
    })
}

/// Polls one account once through the plugin and prints the messages and the new cursor.
pub fn poll(args: PollArgs) -> anyhow::Result<()> {
    let spec = args.connector.spec()?;
    tokio()?.block_on(async {
        let plugin = Runtime::new()?.load_channel(&spec.plugin)?;
        let mut instance = plugin.instance(
            spec.config.clone(),
            spec.grants.clone(),
            spec.limits.clone(),
        );
        let result = instance.poll(&args.account, args.cursor.as_deref()).await?;
        let json = serde_json::json!({
            "plugin": plugin.id().to_string(),
            "account": args.account,
            "messages": result.messages,
            "cursor": result.cursor,
            "next_poll_after_ms": result.next_poll_after_ms,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        Ok(())
    })
}
