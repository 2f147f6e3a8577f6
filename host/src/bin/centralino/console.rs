//! `centralino console add-user`: a tenant's console user, written to the store the
//! config names (the host need not run; on PostgreSQL every host sharing the database
//! knows the user at once).
//!
//! ```sh
//! CENTRALINO_CONSOLE_PASSWORD='…' centralino console add-user \
//!     --config centralino.toml --tenant tim --username ops.tim
//! ```
//!
//! The password is read from the environment variable `--password-env` names (default
//! `CENTRALINO_CONSOLE_PASSWORD`) or, when that is unset, from the first line of standard
//! input; never from the command line, where other users of the machine could read it.

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use centralino::api::add_console_user;
use centralino::config::Config;
use centralino::store::Store;

/// `centralino console …`
#[derive(clap::Subcommand)]
pub enum ConsoleCommand {
    /// Add a tenant's console user (or set an existing user's tenant and password).
    AddUser(AddUserArgs),
}

#[derive(clap::Args)]
pub struct AddUserArgs {
    /// The config whose store keeps the console's users.
    #[arg(long, default_value = "centralino.toml")]
    config: PathBuf,
    /// The one tenant the user sees.
    #[arg(long)]
    tenant: String,
    /// The username they log in with.
    #[arg(long)]
    username: String,
    /// The environment variable holding the password (else: the first line of stdin).
    #[arg(long, default_value = "CENTRALINO_CONSOLE_PASSWORD")]
    password_env: String,
}

/// Runs `centralino console …`.
pub fn run(command: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::AddUser(args) = command;
    let config = Config::load(&args.config)?;
    if !config.tenants.iter().any(|t| t.id == args.tenant) {
        anyhow::bail!(
            "{}: no tenant `{}` (tenants: {})",
            args.config.display(),
            args.tenant,
            config
                .tenants
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let password = match std::env::var(&args.password_env) {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let secrets = config.resolve_secrets()?;
    let url = config.store_url(&secrets);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        let store = Store::open(&url).await?;
        add_console_user(&store, &args.tenant, &args.username, &password).await?;
        anyhow::Ok(())
    })?;
    println!(
        "console user `{}` of tenant `{}` added to {}",
        args.username,
        args.tenant,
        centralino::store::redacted_url(&url)
    );
    Ok(())
}
