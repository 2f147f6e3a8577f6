//! The `centralino` command: run the host beside a CRM, administer a running one, check a
//! config, inspect and exercise plugins, replay routing, run the telecom demo.
//!
//! One module per command: `run`; `config` (`init`, `check`); `admin` (`status`, `reload`,
//! `connectors`, `agents`); `inspect`, `plugin_replay` (`plugin webhook`, `plugin poll`)
//! and `scaffold` (`plugin new`, from `templates/`); `replay` (`route replay`); `demo`.
//! The binary is built with the default feature `cli`, which alone brings clap,
//! tracing-subscriber and the platform emulators: a CRM that links the library without
//! default features gets none of them.

use std::path::PathBuf;
use std::process::ExitCode;

use centralino::config::LogFormat;
use clap::{Parser, Subcommand};

/// `println!` for every command, replacing std's: output to a closed pipe
/// (`centralino check | head`) ends the process quietly instead of panicking with
/// "failed printing to stdout: Broken pipe".
macro_rules! println {
    () => {
        $crate::print_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout. When the reader has gone away (a broken pipe), the process exits at
/// once with success, as a command whose output was cut short by `head` should; any
/// other write error is reported on stderr and ends the process with failure.
fn print_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

mod accounts;
mod admin;
mod config;
mod console;
mod demo;
mod inspect;
mod plugin_replay;
mod replay;
mod run;
mod scaffold;
mod sign;

/// centralino: social customer care on a WebAssembly plugin host.
#[derive(Parser)]
#[command(name = "centralino", version, about)]
struct Cli {
    /// How to log: `pretty` or `json` (one object per line). Default: `host.log_format` of
    /// the config for `run`, else `pretty`.
    #[arg(
        long,
        global = true,
        env = "CENTRALINO_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Run the host from a centralino.toml: connectors, routing, webhook ingress.
    Run(run::RunArgs),
    /// Run the telecom demo on embedded defaults and print what happened.
    Demo(demo::DemoArgs),
    /// Work with routing chains (replay recorded traffic).
    Route(replay::RouteArgs),
    /// Write a commented starter centralino.toml (the telecom scenario).
    Init(config::InitArgs),
    /// Check a centralino.toml and the plugins it names, without starting anything.
    Check(config::CheckArgs),
    /// Show a running host's readiness, routing and connectors (admin API).
    Status(admin::StatusArgs),
    /// Re-read a running host's centralino.toml and apply it: routing chains, operators,
    /// connectors' plugins and settings (admin API; the host also reloads on SIGHUP).
    Reload(admin::ReloadArgs),
    /// List, reset, reload, enable or disable a running host's connectors (admin API).
    Connectors {
        #[command(subcommand)]
        command: admin::ConnectorsCommand,
    },
    /// Set operators' presence on a running host (admin API).
    Agents {
        #[command(subcommand)]
        command: admin::AgentsCommand,
    },
    /// Manage the admin console's per-tenant users (in the config's store).
    Console {
        #[command(subcommand)]
        command: console::ConsoleCommand,
    },
    /// Accounts whose tokens the host holds: list, connect (OAuth), disconnect.
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// The key that seals host-held tokens: rotate it.
    Keys {
        #[command(subcommand)]
        command: accounts::KeysCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's world, contract version, exports and requested capabilities.
    Inspect {
        /// The component file (`.wasm`).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run one captured webhook delivery through a plugin and print what it makes of it.
    ///
    /// Exit status: 0 taken, 1 could not run, 2 bad arguments, 3 the plugin refused the
    /// input (4xx or invalid input), 4 the plugin failed (5xx, an error, a trap).
    Webhook(plugin_replay::WebhookArgs),
    /// Poll one account once through a plugin and print the messages and cursor.
    ///
    /// Exit status: 0 polled, 1 could not run, 2 bad arguments, 3 the plugin refused the
    /// input (invalid input), 4 the plugin failed (an error, a trap).
    Poll(plugin_replay::PollArgs),
    /// Create a new plugin crate (a channel connector or a routing policy).
    New(scaffold::NewArgs),
    /// Create an Ed25519 key for signing plugins; prints the public key admins trust.
    Keygen(sign::KeygenArgs),
    /// Sign a component, so hosts that trust your key load it (and notice any change).
    Sign(sign::SignArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = init_logging(&cli);
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    let verdict =
        |result: anyhow::Result<plugin_replay::Verdict>| result.map(|v| ExitCode::from(v.code()));
    let result = match cli.command {
        Command::Plugin {
            command: PluginCommand::Inspect { file, json },
        } => done(inspect::run(&file, json)),
        Command::Plugin {
            command: PluginCommand::Webhook(args),
        } => verdict(plugin_replay::webhook(args)),
        Command::Plugin {
            command: PluginCommand::Poll(args),
        } => verdict(plugin_replay::poll(args)),
        Command::Plugin {
            command: PluginCommand::New(args),
        } => done(scaffold::run(args)),
        Command::Plugin {
            command: PluginCommand::Keygen(args),
        } => done(sign::keygen(args)),
        Command::Plugin {
            command: PluginCommand::Sign(args),
        } => done(sign::run(args)),
        Command::Run(args) => done(run::run(args, format)),
        Command::Demo(args) => done(demo::run(args)),
        Command::Route(args) => done(replay::run(args)),
        Command::Init(args) => done(config::init(args)),
        Command::Check(args) => done(config::check(args)),
        Command::Status(args) => done(admin::status(args)),
        Command::Reload(args) => done(admin::reload(args)),
        Command::Connectors { command } => done(admin::connectors(command)),
        Command::Agents { command } => done(admin::agents(command)),
        Command::Console { command } => done(console::run(command)),
        Command::Accounts { command } => done(accounts::accounts(command)),
        Command::Keys { command } => done(accounts::keys(command)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            match format {
                LogFormat::Json => tracing::error!("{e:#}"),
                LogFormat::Pretty => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Sets up `tracing` on stderr: pretty or JSON lines, filtered by `RUST_LOG` (default:
/// warnings, and for `run` also the host's own information: swaps, reloads, circuits).
fn init_logging(cli: &Cli) -> LogFormat {
    let (format, default_filter) = match &cli.command {
        Command::Run(args) => (
            cli.log_format
                .unwrap_or_else(|| run::log_format_of(args.config_path())),
            "warn,centralino=info,centralino::plugin=warn",
        ),
        _ => (cli.log_format.unwrap_or_default(), "warn"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    format
}
