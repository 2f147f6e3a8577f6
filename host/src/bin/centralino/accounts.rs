//! `centralino accounts list|connect|subscribe|disconnect` (through a running host's admin
//! API) and
//! `centralino keys rotate` (on the store, with the hosts stopped).
//!
//! `accounts connect` prints the platform's authorize URL; the admin opens it, logs in as
//! the account and consents; the platform sends the browser back to the host's
//! `/oauth/callback`, which completes the flow, and the command reports the account
//! connected.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use centralino::capabilities::Secret;
use centralino::config::{Config, SecretRef};
use serde_json::{Value, json};

use crate::admin::{Target, call, number, print_json, print_table, row, segment, text};

/// `accounts` subcommands.
#[derive(clap::Subcommand)]
pub enum AccountsCommand {
    /// Every host-held account: state, scopes, expiry, replies held (never a token).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Connect (or re-authorise) an account: prints the URL to open, and waits until the
    /// platform's callback reaches the host.
    Connect {
        /// The connector (`twitter`, `facebook`).
        connector: String,
        /// The account to connect: the login must be this account (on Facebook, this
        /// page). Default: any account of the connector the login is.
        #[arg(long)]
        account: Option<String>,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// How long to wait for the callback, in seconds (the flow expires after 600).
        #[arg(long, default_value_t = 600)]
        wait: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Make the platform send the webhooks of every connected account of a connector
    /// again (idempotent; done on connect too).
    Subscribe {
        /// The connector.
        connector: String,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
    /// Revoke an account's token and forget it; its replies wait until it is connected
    /// again.
    Disconnect {
        /// The connector.
        connector: String,
        /// The account.
        account: String,
        /// Its tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        target: Target,
    },
}

/// `keys` subcommands.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Re-seal every stored token under a new token key, in one transaction. Stop the
    /// hosts first, then set `host.token_key` to the new reference and start them again.
    Rotate {
        /// The configuration file (its store and its current `host.token_key`).
        #[arg(long, default_value = "centralino.toml")]
        config: PathBuf,
        /// The new key, as a reference (`env:NAME` or `file:PATH`).
        #[arg(long, value_name = "REFERENCE")]
        new: String,
    },
}

/// `centralino accounts …`.
pub fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::List { target } => {
            let answer = call(&target, "GET", "/accounts", None)?;
            if target.json {
                return print_json(&answer);
            }
            print_accounts(&answer);
        }
        AccountsCommand::Connect {
            connector,
            account,
            tenant,
            wait,
            target,
        } => connect(&target, &tenant, &connector, account.as_deref(), wait)?,
        AccountsCommand::Subscribe {
            connector,
            tenant,
            target,
        } => {
            let path = format!(
                "/accounts/{}/{}/subscribe",
                segment(&tenant),
                segment(&connector)
            );
            let answer = call(&target, "POST", &path, None)?;
            if target.json {
                return print_json(&answer);
            }
            print_accounts(&answer);
        }
        AccountsCommand::Disconnect {
            connector,
            account,
            tenant,
            target,
        } => {
            let path = format!(
                "/accounts/{}/{}/{}/disconnect",
                segment(&tenant),
                segment(&connector),
                segment(&account)
            );
            let answer = call(&target, "POST", &path, None)?;
            if target.json {
                return print_json(&answer);
            }
            println!(
                "account `{account}` of `{connector}` disconnected; its replies wait until it is connected again"
            );
        }
    }
    Ok(())
}

/// The accounts of `connector` of `tenant` as the host has them now.
fn of_connector(target: &Target, tenant: &str, connector: &str) -> anyhow::Result<Vec<Value>> {
    let answer = call(target, "GET", "/accounts", None)?;
    Ok(answer
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["tenant"] == tenant && a["connector"] == connector)
        .cloned()
        .collect())
}

fn connect(
    target: &Target,
    tenant: &str,
    connector: &str,
    account: Option<&str>,
    wait: u64,
) -> anyhow::Result<()> {
    let before = of_connector(target, tenant, connector)?;
    let path = format!(
        "/accounts/{}/{}/connect",
        segment(tenant),
        segment(connector)
    );
    let body = account.map(|a| json!({ "account": a }));
    let started = call(target, "POST", &path, body)?;
    let url = started["authorize_url"]
        .as_str()
        .context("the host answered no authorize URL")?;
    if target.json {
        print_json(&started)?;
    } else {
        println!("Open this URL in a browser, log in as the account to connect and allow access:");
        println!();
        println!("  {url}");
        println!();
        println!("Waiting for the platform to send the browser back to the host…");
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = of_connector(target, tenant, connector)?;
        // Connected now, and changed since the flow started (a new token).
        let done: Vec<&Value> = now
            .iter()
            .filter(|a| account.is_none_or(|id| a["account"] == id))
            .filter(|a| a["state"] == "connected")
            .filter(|a| {
                !before.iter().any(|b| {
                    b["account"] == a["account"]
                        && b["state"] == a["state"]
                        && b["updated_at"] == a["updated_at"]
                })
            })
            .collect();
        if !done.is_empty() {
            for a in done {
                println!(
                    "connected: {connector} account {}{} (scopes: {})",
                    text(&a["account"]),
                    a["label"]
                        .as_str()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default(),
                    a["scopes"]
                        .as_array()
                        .map(|s| s.iter().map(text).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default()
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "no callback reached the host within {wait} s: run the command again for a \
                 new URL (the host's log says why a callback was refused)"
            );
        }
    }
}

/// The accounts table (`accounts list`, `status`).
pub(crate) fn print_accounts(accounts: &Value) {
    let mut rows = vec![row(&[
        "TENANT",
        "CONNECTOR",
        "ACCOUNT",
        "WHO",
        "STATE",
        "EXPIRES",
        "HELD",
        "WEBHOOKS",
    ])];
    for a in accounts.as_array().into_iter().flatten() {
        let expires = a["expires_at"].as_u64().map_or("-".to_string(), |at| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            if at <= now {
                "expired".to_string()
            } else {
                format!("in {} min", (at - now) / 60_000)
            }
        });
        rows.push(vec![
            text(&a["tenant"]),
            text(&a["connector"]),
            text(&a["account"]),
            text(&a["label"]),
            text(&a["state"]),
            expires,
            number(&a["held_replies"]),
            match a["subscribed"].as_bool() {
                Some(true) => "subscribed".to_string(),
                Some(false) => "NOT SUBSCRIBED".to_string(),
                None => "-".to_string(),
            },
        ]);
    }
    print_table(&rows);
}

/// `centralino keys …`.
pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Rotate { config, new } = command;
    let loaded = Config::load(&config)?;
    let secrets = loaded.resolve_secrets()?;
    let old = secrets.token_key().with_context(|| {
        format!(
            "{}: host.token_key is not set: there is no key to rotate from",
            config.display()
        )
    })?;
    let reference = SecretRef::parse(&new).map_err(|e| anyhow::anyhow!("--new: {e}"))?;
    let base = config
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let new_key: Secret = reference
        .resolve(&base, &|name| std::env::var(name).ok())
        .map_err(|e| anyhow::anyhow!("--new {reference}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let count = runtime.block_on(async {
        let store = centralino::store::Store::open(&loaded.store_url(&secrets)).await?;
        anyhow::Ok(centralino::accounts::rotate_token_key(&store, old, &new_key).await?)
    })?;
    println!(
        "{count} token(s) re-sealed under the new key; now set `token_key = \"{reference}\"` \
         in [host] of {} and start the hosts",
        config.display()
    );
    Ok(())
}
