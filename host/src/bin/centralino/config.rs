//! `centralino init` and `centralino check`.
//!
//! `init` writes the telecom scenario (`examples/centralino.toml`) as a commented starter,
//! with the plugin folder filled in; it never overwrites a file without `--force`.
//!
//! `check` does everything short of starting: it reads and checks the config, inspects
//! every plugin it names (world and contract version, without compiling), and resolves
//! every secret reference, then prints a summary, or every problem with its file, line
//! and key. Unset variables and missing secret files are errors, since the host could
//! not start with them; `--skip-secrets` checks a config on a machine without them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use centralino::config::{Config, ConfigError, PluginCheck, StoreLocation, starter};
use serde::Serialize;

/// `centralino init`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write the config.
    #[arg(long, default_value = "centralino.toml")]
    path: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    force: bool,
    /// The folder with the built plugins, written into the config's `plugin_dir`.
    #[arg(long, env = "CENTRALINO_PLUGIN_DIR", default_value = "target/plugins")]
    plugin_dir: PathBuf,
}

/// `centralino check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The config file.
    #[arg(long, env = "CENTRALINO_CONFIG", default_value = "centralino.toml")]
    config: PathBuf,
    /// Print JSON instead of text (also for errors, on stdout).
    #[arg(long)]
    json: bool,
    /// Do not resolve `env:`/`file:` references (check a config without its secrets).
    #[arg(long)]
    skip_secrets: bool,
    /// Also compile every plugin and configure it with its settings and accounts, as the
    /// host does at start-up (slower: compiles unless `cache_dir` holds them).
    #[arg(long)]
    load: bool,
}

pub fn init(args: InitArgs) -> anyhow::Result<()> {
    if args.path.exists() && !args.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            args.path.display()
        );
    }
    // A relative plugin folder is relative to where the command runs; the config reads
    // it relative to its own folder, so it is made absolute unless the two are the same.
    let config_dir = args.path.parent().unwrap_or(Path::new(""));
    let plugin_dir = if args.plugin_dir.is_relative() && !config_dir.as_os_str().is_empty() {
        std::path::absolute(&args.plugin_dir)?
    } else {
        args.plugin_dir.clone()
    };
    let text = starter(&plugin_dir);
    // A folder that does not exist yet is created, as `init` is the first step anywhere.
    if !config_dir.as_os_str().is_empty() && !config_dir.exists() {
        std::fs::create_dir_all(config_dir).with_context(|| {
            format!(
                "cannot create the folder {} to write {} in: create it, or choose another \
                 --path",
                config_dir.display(),
                args.path.display()
            )
        })?;
        println!("created folder {}", config_dir.display());
    }
    std::fs::write(&args.path, &text).with_context(|| {
        format!(
            "cannot write {}: check that its folder is writable, or choose another --path",
            args.path.display()
        )
    })?;
    println!(
        "wrote {}: the telecom scenario (three brands on Twitter/X, a Facebook page, nine \
         operators)",
        args.path.display()
    );
    let config = Config::parse(&args.path, text)?;
    let references: Vec<String> = config
        .secret_references()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("before starting, provide the secrets it refers to:");
    for reference in references {
        println!("  {reference}");
    }
    println!(
        "then run: centralino check --config {}",
        args.path.display()
    );
    Ok(())
}

#[derive(Serialize)]
struct Summary {
    ok: bool,
    file: PathBuf,
    store: String,
    listen: String,
    admin_listen: String,
    admin_token: Option<String>,
    plugin_dir: PathBuf,
    /// Secret references resolved; none with `--skip-secrets`.
    secrets_resolved: Option<usize>,
    /// Whether every plugin was compiled and configured (`--load`).
    configured: bool,
    tenants: Vec<TenantSummary>,
}

#[derive(Serialize)]
struct TenantSummary {
    id: String,
    connectors: Vec<ConnectorSummary>,
    chain: Option<String>,
    /// The chain's plugins and versions, stage by stage.
    chain_plugins: Vec<String>,
    shadow: Option<String>,
    offer_timeout_minutes: Option<u64>,
    /// Brands whose waiting customers get automatic answers.
    auto_reply: Vec<String>,
    operators: Vec<OperatorSummary>,
}

#[derive(Serialize)]
struct ConnectorSummary {
    name: String,
    plugin: String,
    path: PathBuf,
    enabled: bool,
    poll_interval_secs: Option<u64>,
    allowed_hosts: Vec<String>,
    accounts: Vec<AccountSummary>,
}

#[derive(Serialize)]
struct AccountSummary {
    id: String,
    handle: Option<String>,
    brand: Option<String>,
    credential: Option<String>,
}

#[derive(Serialize)]
struct OperatorSummary {
    id: String,
    name: String,
    skills: Vec<String>,
    languages: Vec<String>,
    capacity: u32,
    accounts: Vec<String>,
    working_hours: bool,
}

#[derive(Serialize)]
struct Failure<'a> {
    ok: bool,
    file: &'a Path,
    problems: Vec<ProblemLine<'a>>,
}

#[derive(Serialize)]
struct ProblemLine<'a> {
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
    text: String,
}

pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    match checked(&args) {
        Ok(summary) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print_summary(&summary);
            }
            Ok(())
        }
        Err(error) => {
            if args.json {
                let lines = error.lines();
                let failure = Failure {
                    ok: false,
                    file: &error.file,
                    problems: error
                        .problems
                        .iter()
                        .zip(lines)
                        .map(|(problem, text)| ProblemLine {
                            line: problem.line,
                            key: problem.key.as_deref(),
                            message: &problem.message,
                            text,
                        })
                        .collect(),
                };
                println!("{}", serde_json::to_string_pretty(&failure)?);
            }
            Err(error.into())
        }
    }
}

/// Loads, inspects and resolves; the summary, or every problem found by the first step
/// that failed.
fn checked(args: &CheckArgs) -> Result<Summary, ConfigError> {
    let config = Config::load(&args.config).map_err(|mut error| {
        if !args.config.exists()
            && let Some(problem) = error.problems.first_mut()
        {
            problem
                .message
                .push_str(" (write a starter with `centralino init`)");
        }
        error
    })?;
    let plugins = config.inspect_plugins()?;
    let secrets = if args.skip_secrets {
        None
    } else {
        Some(config.resolve_secrets()?)
    };
    if args.load {
        let whole = |message: String| ConfigError::whole_file(&config.path, message);
        let runtime = config
            .runtime()
            .map_err(|e| whole(format!("cannot start the plugin runtime: {e}")))?;
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| whole(format!("cannot start the async runtime: {e}")))?;
        let secrets = secrets.clone().unwrap_or_default();
        tokio.block_on(config.configure_plugins(&runtime, &secrets))?;
    }
    Ok(summarise(
        &config,
        &plugins,
        secrets.as_ref().map(|s| s.len()),
        args.load,
    ))
}

fn summarise(
    config: &Config,
    plugins: &[PluginCheck],
    secrets_resolved: Option<usize>,
    configured: bool,
) -> Summary {
    let by_path: HashMap<&Path, String> = plugins
        .iter()
        .map(|check| (check.path.as_path(), check.plugin.to_string()))
        .collect();
    let tenants = config
        .tenants
        .iter()
        .map(|tenant| {
            let connectors = tenant
                .connectors
                .iter()
                .map(|c| ConnectorSummary {
                    name: c.name.clone(),
                    plugin: by_path.get(c.plugin.as_path()).cloned().unwrap_or_default(),
                    path: c.plugin.clone(),
                    enabled: c.enabled,
                    poll_interval_secs: c.poll_interval.map(|d| d.as_secs()),
                    allowed_hosts: c.allowed_hosts.clone(),
                    accounts: c
                        .accounts
                        .iter()
                        .map(|a| AccountSummary {
                            id: a.id.clone(),
                            handle: a.handle.clone(),
                            brand: a.brand.clone(),
                            credential: a.credential.as_ref().map(|c| match c.token() {
                                Some(token) => token.to_string(),
                                None => "connected".to_string(),
                            }),
                        })
                        .collect(),
                })
                .collect();
            let operators = tenant
                .operators
                .iter()
                .map(|o| OperatorSummary {
                    id: o.id.clone(),
                    name: o.name.clone(),
                    skills: o.skills.clone(),
                    languages: o.languages.clone(),
                    capacity: o.capacity,
                    accounts: o
                        .accounts
                        .iter()
                        .map(|a| {
                            let handle = tenant
                                .connector(&a.channel)
                                .and_then(|c| c.accounts.iter().find(|x| x.id == a.id))
                                .and_then(|x| x.handle.clone());
                            format!("{}:{}", a.channel, handle.unwrap_or_else(|| a.id.clone()))
                        })
                        .collect(),
                    working_hours: o.hours.is_some(),
                })
                .collect();
            let routing = tenant.routing.as_ref();
            TenantSummary {
                id: tenant.id.clone(),
                connectors,
                chain: routing.map(|r| r.chain.to_string()),
                chain_plugins: plugins
                    .iter()
                    .filter(|p| p.tenant == tenant.id && p.key.ends_with("chain"))
                    .map(|p| p.plugin.to_string())
                    .collect(),
                shadow: routing.and_then(|r| r.shadow.as_ref().map(ToString::to_string)),
                offer_timeout_minutes: routing
                    .and_then(|r| r.offer_timeout.map(|t| t.as_secs() / 60)),
                auto_reply: tenant
                    .brands
                    .iter()
                    .filter(|b| b.auto_reply)
                    .map(|b| b.id.clone())
                    .collect(),
                operators,
            }
        })
        .collect();
    Summary {
        ok: true,
        file: config.path.clone(),
        store: match &config.store {
            // Never a credential, even one the config should not hold.
            StoreLocation::Url(url) => centralino::store::redacted_url(url),
            StoreLocation::Secret(reference) => format!("from {reference}"),
        },
        listen: config.listen.to_string(),
        admin_listen: config.admin_listen.to_string(),
        admin_token: config.admin_token.as_ref().map(ToString::to_string),
        plugin_dir: config.plugin_dir.clone(),
        secrets_resolved,
        configured,
        tenants,
    }
}

fn print_summary(summary: &Summary) {
    println!("{}: ok", summary.file.display());
    println!("  store          {}", summary.store);
    println!("  webhooks       http://{}", summary.listen);
    let token = summary
        .admin_token
        .as_ref()
        .map_or_else(|| "no token".to_string(), |t| format!("token {t}"));
    println!("  admin API      http://{} ({token})", summary.admin_listen);
    println!("  plugins        {}", summary.plugin_dir.display());
    if summary.configured {
        println!("  configured     every plugin accepted its settings and accounts");
    }
    match summary.secrets_resolved {
        Some(count) => println!("  secrets        {count} references resolved"),
        None => println!("  secrets        not resolved (--skip-secrets)"),
    }
    for tenant in &summary.tenants {
        println!();
        println!("tenant {}", tenant.id);
        for c in &tenant.connectors {
            let state = if c.enabled { "" } else { " (disabled)" };
            let receive = c
                .poll_interval_secs
                .map_or_else(|| "webhooks".to_string(), |s| format!("polls every {s} s"));
            let hosts = if c.allowed_hosts.is_empty() {
                "no HTTP".to_string()
            } else {
                format!("hosts {}", c.allowed_hosts.join(", "))
            };
            println!(
                "  connector {}{state}: {}, {receive}, {hosts}",
                c.name, c.plugin
            );
            for a in &c.accounts {
                let name = a
                    .handle
                    .as_deref()
                    .map_or_else(String::new, |h| format!(" @{h}"));
                let brand = a
                    .brand
                    .as_deref()
                    .map_or_else(String::new, |b| format!(" brand {b}"));
                let credential = a.credential.as_deref().map_or_else(
                    || " no credential".to_string(),
                    |c| format!(" credential {c}"),
                );
                println!("    account {}{name}{brand}{credential}", a.id);
            }
        }
        if let Some(chain) = &tenant.chain {
            println!("  chain          {chain}");
            println!("  stages         {}", tenant.chain_plugins.join(" > "));
        }
        if let Some(shadow) = &tenant.shadow {
            println!("  shadow         {shadow}");
        }
        if let Some(minutes) = tenant.offer_timeout_minutes {
            println!("  offer timeout  {minutes} min");
        }
        if tenant.auto_reply.is_empty() {
            println!("  auto-reply     off");
        } else {
            println!("  auto-reply     {}", tenant.auto_reply.join(", "));
        }
        let seats: u32 = tenant.operators.iter().map(|o| o.capacity).sum();
        println!(
            "  operators      {} ({seats} seats)",
            tenant.operators.len()
        );
        for o in &tenant.operators {
            let hours = if o.working_hours {
                ", working hours"
            } else {
                ""
            };
            println!(
                "    {:<14} capacity {}, skills {}, languages {}, replies as {}{hours}",
                o.id,
                o.capacity,
                list(&o.skills),
                list(&o.languages),
                list(&o.accounts),
            );
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}
