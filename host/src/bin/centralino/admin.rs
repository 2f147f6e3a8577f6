//! `centralino status`, `centralino connectors list|reset|reload|enable|disable`,
//! `centralino reload` and `centralino agents presence`: admin commands that talk to a
//! running host's admin API.
//!
//! The host is found at `--admin` (or `CENTRALINO_ADMIN_URL`, default
//! `http://127.0.0.1:8081`); the token is read from `CENTRALINO_ADMIN_TOKEN`, never from
//! the command line (where `ps` would show it). Output is readable text; `--json` prints
//! the admin API's answer as it is, for scripts.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Environment variable holding the admin token.
const TOKEN_VARIABLE: &str = "CENTRALINO_ADMIN_TOKEN";

/// Where the host is and how to print.
#[derive(clap::Args)]
pub struct Target {
    /// The running host's admin API.
    #[arg(
        long,
        value_name = "URL",
        env = "CENTRALINO_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub(crate) admin: String,
    /// Print the admin API's JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `status` arguments.
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

/// `connectors` subcommands.
#[derive(clap::Subcommand)]
pub enum ConnectorsCommand {
    /// Every connector with its health: circuit, faults, restarts, refused calls.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Close a connector's circuit, so calls reach its plugin again.
    Reset {
        /// The connector's name.
        name: String,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
    /// Hot-swap a connector's plugin from its file (every connector's without a name): the
    /// new version is compiled, checked and configured first; if it fails, the old one
    /// keeps serving and the reason is printed.
    Reload {
        /// The connector's name; all connectors when left out.
        name: Option<String>,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
    /// Let a disabled connector take calls again (queued replies go out).
    Enable {
        /// The connector's name.
        name: String,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
    /// Stop a connector taking calls: webhooks are answered 503 with `Retry-After` (the
    /// platform delivers them again later), polls pause, replies wait in the outbox.
    Disable {
        /// The connector's name.
        name: String,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
}

/// `reload` arguments.
#[derive(clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    target: Target,
}

/// `agents` subcommands.
#[derive(clap::Subcommand)]
pub enum AgentsCommand {
    /// Set an operator's presence: online drains the queue, offline re-routes their
    /// unanswered conversations.
    Presence {
        /// The operator's id.
        id: String,
        /// The new presence.
        presence: PresenceArg,
        /// The operator's tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
}

/// A presence as written on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PresenceArg {
    /// Taking conversations.
    Online,
    /// Working, not taking new conversations.
    Away,
    /// Not working.
    Offline,
}

impl PresenceArg {
    fn as_str(self) -> &'static str {
        match self {
            PresenceArg::Online => "online",
            PresenceArg::Away => "away",
            PresenceArg::Offline => "offline",
        }
    }
}

/// `centralino status`.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let answer = call(&args.target, "GET", "/status", None)?;
    if args.target.json {
        return print_json(&answer);
    }
    let ready = if answer["ready"].as_bool() == Some(true) {
        "ready".to_string()
    } else {
        format!("NOT READY: {}", text(&answer["not_ready"]))
    };
    println!("centralino at {}: {ready}", args.target.admin);
    println!("waiting conversations: {}", number(&answer["queue_depth"]));
    println!();
    let mut rows = vec![row(&[
        "TENANT",
        "QUEUE",
        "ONLINE",
        "AWAY",
        "OFFLINE",
        "DECISIONS",
        "ASSIGNED",
        "QUEUED",
    ])];
    for tenant in answer["tenants"].as_array().into_iter().flatten() {
        let routing = &tenant["routing"];
        if routing.is_null() {
            rows.push(vec![text(&tenant["tenant"]), "no routing".to_string()]);
            continue;
        }
        rows.push(vec![
            text(&tenant["tenant"]),
            number(&routing["queue_depth"]),
            number(&routing["operators"]["online"]),
            number(&routing["operators"]["away"]),
            number(&routing["operators"]["offline"]),
            number(&routing["stats"]["decisions"]),
            number(&routing["stats"]["assignments"]),
            number(&routing["stats"]["queued"]),
        ]);
    }
    print_table(&rows);
    println!();
    print_connectors(&answer["connectors"]);
    if answer["accounts"].as_array().is_some_and(|a| !a.is_empty()) {
        println!();
        super::accounts::print_accounts(&answer["accounts"]);
    }
    Ok(())
}

/// `centralino connectors …`.
pub fn connectors(command: ConnectorsCommand) -> anyhow::Result<()> {
    match command {
        ConnectorsCommand::List { target } => {
            let answer = call(&target, "GET", "/connectors", None)?;
            if target.json {
                return print_json(&answer);
            }
            print_connectors(&answer["connectors"]);
        }
        ConnectorsCommand::Reset {
            name,
            tenant,
            target,
        } => {
            let path = format!("/connectors/{}/{}/reset", segment(&tenant), segment(&name));
            let answer = call(&target, "POST", &path, None)?;
            if target.json {
                return print_json(&answer);
            }
            println!(
                "connector `{name}` of tenant `{tenant}` reset: circuit {}",
                text(&answer["circuit"])
            );
        }
        ConnectorsCommand::Reload {
            name: Some(name),
            tenant,
            target,
        } => {
            let path = format!("/connectors/{}/{}/reload", segment(&tenant), segment(&name));
            let answer = call(&target, "POST", &path, None)?;
            if target.json {
                return print_json(&answer);
            }
            print_reload(&answer);
        }
        ConnectorsCommand::Reload {
            name: None, target, ..
        } => {
            let answer = call(&target, "POST", "/connectors/reload", None)?;
            if target.json {
                print_json(&answer)?;
            } else {
                for report in answer["connectors"].as_array().into_iter().flatten() {
                    print_reload(report);
                }
            }
            if answer["swapped"].as_bool() != Some(true) {
                bail!("some connectors kept their old version (see above)");
            }
        }
        ConnectorsCommand::Enable {
            name,
            tenant,
            target,
        } => switch(&name, &tenant, &target, true)?,
        ConnectorsCommand::Disable {
            name,
            tenant,
            target,
        } => switch(&name, &tenant, &target, false)?,
    }
    Ok(())
}

/// Enables or disables a connector.
fn switch(name: &str, tenant: &str, target: &Target, enable: bool) -> anyhow::Result<()> {
    let action = if enable { "enable" } else { "disable" };
    let path = format!("/connectors/{}/{}/{action}", segment(tenant), segment(name));
    let answer = call(target, "POST", &path, None)?;
    if target.json {
        return print_json(&answer);
    }
    let state = if answer["enabled"].as_bool() == Some(true) {
        "enabled: it takes calls, queued replies go out"
    } else {
        "disabled: webhooks get 503 with Retry-After, polls pause, replies wait in the outbox"
    };
    println!("connector `{name}` of tenant `{tenant}` {state}");
    Ok(())
}

/// One reload report as a line.
fn print_reload(report: &Value) {
    let label = format!("{}/{}", text(&report["tenant"]), text(&report["connector"]));
    let plugin = |v: &Value| format!("{}@{}", text(&v["name"]), text(&v["version"]));
    match report["error"].as_str() {
        None => println!(
            "{label}: swapped {} → {} in {} ms",
            plugin(&report["previous"]),
            plugin(&report["plugin"]),
            number(&report["took_ms"])
        ),
        Some(error) => println!(
            "{label}: REFUSED, {} keeps serving: {error}",
            plugin(&report["plugin"])
        ),
    }
}

/// `centralino reload`.
pub fn reload(args: ReloadArgs) -> anyhow::Result<()> {
    let answer = call(&args.target, "POST", "/reload", None)?;
    if args.target.json {
        return print_json(&answer);
    }
    println!("{} reloaded", text(&answer["file"]));
    for report in answer["connectors"].as_array().into_iter().flatten() {
        print_reload(report);
    }
    for (key, what) in [("enabled", "enabled"), ("disabled", "disabled")] {
        for connector in answer[key].as_array().into_iter().flatten() {
            println!("{}: {what}", text(connector));
        }
    }
    for routing in answer["routing"].as_array().into_iter().flatten() {
        let operators = &routing["operators"];
        let list = |key: &str| {
            let names: Vec<String> = operators[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(", ")
            }
        };
        println!(
            "tenant {}: chain `{}`; operators added {}, updated {}, removed {}, kept until \
             their conversations end {}",
            text(&routing["tenant"]),
            text(&routing["chain"]),
            list("added"),
            list("updated"),
            list("removed"),
            list("retained")
        );
    }
    for item in answer["restart_required"].as_array().into_iter().flatten() {
        println!("not applied until a restart: {}", text(item));
    }
    Ok(())
}

/// `centralino agents …`.
pub fn agents(command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::Presence {
            id,
            presence,
            tenant,
            target,
        } => {
            let path = format!("/operators/{}/{}/presence", segment(&tenant), segment(&id));
            let body = serde_json::json!({ "presence": presence.as_str() });
            let answer = call(&target, "POST", &path, Some(body))?;
            if target.json {
                return print_json(&answer);
            }
            println!(
                "operator `{id}` of tenant `{tenant}` is now {}",
                presence.as_str()
            );
        }
    }
    Ok(())
}

fn print_connectors(connectors: &Value) {
    let mut rows = vec![row(&[
        "TENANT",
        "CONNECTOR",
        "ENABLED",
        "PLUGIN",
        "CIRCUIT",
        "FAULTS",
        "RESTARTS",
        "REFUSED",
        "LAST FAULT",
    ])];
    for c in connectors.as_array().into_iter().flatten() {
        let plugin = format!(
            "{}@{}",
            text(&c["plugin"]["name"]),
            text(&c["plugin"]["version"])
        );
        let restarts = c["instances_started"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(1);
        let enabled = if c["enabled"].as_bool() == Some(false) {
            "no"
        } else {
            "yes"
        };
        rows.push(vec![
            text(&c["tenant"]),
            text(&c["connector"]),
            enabled.to_string(),
            plugin,
            text(&c["circuit"]),
            number(&c["faults"]),
            restarts.to_string(),
            number(&c["refused_calls"]),
            c["last_fault"]["message"]
                .as_str()
                .unwrap_or("-")
                .to_string(),
        ]);
    }
    if rows.len() == 1 {
        println!("no connectors");
    } else {
        print_table(&rows);
    }
    for c in connectors.as_array().into_iter().flatten() {
        if let Some(error) = c["last_reload_error"]["message"].as_str() {
            println!(
                "{}/{}: last reload refused: {error}",
                text(&c["tenant"]),
                text(&c["connector"])
            );
        }
        // Platform API versions that need the admin (see connectors::versions).
        let warnings = [
            c["api_version_retirement"].as_str(),
            c["api_version_served"]["message"].as_str(),
        ];
        for warning in warnings.into_iter().flatten() {
            println!(
                "{}/{}: API version: {warning}",
                text(&c["tenant"]),
                text(&c["connector"])
            );
        }
    }
}

pub(crate) fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_string()).collect()
}

/// Prints rows as columns, each as wide as its widest cell.
pub(crate) fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

pub(crate) fn number(value: &Value) -> String {
    value
        .as_u64()
        .map_or_else(|| text(value), |n| n.to_string())
}

pub(crate) fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A path segment with the characters a URL path cannot hold escaped.
pub(crate) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Calls the admin API and returns its JSON answer; a refusal becomes an error with the
/// API's message.
pub(crate) fn call(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", target.admin.trim_end_matches('/'));
    let token = std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = client.request(method, &url);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body)?);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the admin API at {url}: is `centralino run` running there? \
                 (set --admin or CENTRALINO_ADMIN_URL)"
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let message = answer["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let hint = if token.is_some() {
                format!("{TOKEN_VARIABLE} is not the host's admin token")
            } else {
                format!("set {TOKEN_VARIABLE} to the host's admin token")
            };
            bail!("the admin API refused the call ({message}): {hint}");
        }
        bail!("{url}: {status}: {message}");
    })
}
