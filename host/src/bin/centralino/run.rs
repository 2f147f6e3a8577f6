//! `centralino run`: the host as a sidecar, from a centralino.toml: webhook ingress and
//! REST API on one listener, admin API and `/metrics` on another.

use std::path::PathBuf;

use anyhow::Context as _;
use centralino::api::{self, ApiTokens};
use centralino::api::{AdminApi, check_exposure};
use centralino::config::{Config, ConfigReloader};

/// Whether the process logs JSON: then the status lines below are log events too, so
/// stderr stays one JSON object per line.
static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A status line for the admin: `centralino: …` on stderr, or an info event in JSON mode.
macro_rules! say {
    ($($arg:tt)*) => {{
        let text = format!($($arg)*);
        if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
            let text = text.strip_prefix("centralino: ").unwrap_or(&text);
            tracing::info!(target: "centralino::run", "{text}");
        } else {
            eprintln!("{text}");
        }
    }};
}

/// `run` arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, default_value = "centralino.toml")]
    config: PathBuf,
    /// Watch the connectors' plugin files and hot-swap a changed one (as
    /// `host.watch_plugins = true`).
    #[arg(long)]
    watch: bool,
}

impl RunArgs {
    /// The configuration file.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }
}

/// `host.log_format` of a config file, read before the full check (which logs); pretty
/// when the file or the key is missing or unreadable (the check reports it properly).
pub fn log_format_of(path: &std::path::Path) -> centralino::config::LogFormat {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("host")?.get("log_format")?.as_str()?.parse().ok())
        .unwrap_or_default()
}

/// Starts every enabled connector and the routing of every tenant, serves the webhook
/// ingress with the REST API on `host.listen` and the admin API on `host.admin_listen`,
/// and runs until interrupted.
pub fn run(args: RunArgs, format: centralino::config::LogFormat) -> anyhow::Result<()> {
    JSON_LOG.store(
        format == centralino::config::LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config::load(&args.config)?;
        let secrets = config.resolve_secrets()?;
        say!("centralino: compiling and configuring plugins…");
        let plugins = config.runtime()?;
        let mut builder = config.host_builder(plugins.clone(), &secrets);
        for tenant in &config.tenants {
            if let Some(engine) = tenant
                .engine(&plugins)
                .await
                .with_context(|| format!("routing of tenant `{}`", tenant.id))?
            {
                builder = builder.tenant_routing(tenant.id.clone(), engine);
            }
            for brand in &tenant.brands {
                builder = builder.tenant_brand(tenant.id.clone(), brand.clone());
            }
        }
        // The admin API without a token must stay on loopback: checked before anything
        // listens (the config check refuses it too; this is the second lock).
        let admin_token = secrets.admin_token();
        check_exposure(config.admin_listen, admin_token.is_some())
            .with_context(|| format!("{}: host.admin_listen", args.config.display()))?;
        let tokens = ApiTokens::from_tenants(secrets.api_tokens())
            .with_context(|| format!("{}: api_token", args.config.display()))?;
        let host = builder.build().await?;
        for (tenant, connector, waiting) in secrets.waiting() {
            say!(
                "centralino: connector `{connector}` of tenant `{tenant}` is disabled and waits \
                 for: {}",
                waiting.join(", ")
            );
        }
        let watch = config
            .watch_plugins
            .or(args.watch.then_some(std::time::Duration::from_secs(1)));
        if let Some(every) = watch {
            host.watch_plugins(every);
            say!(
                "centralino: watching the plugin files (every {} ms); a changed file is \
                 hot-swapped once it compiles and configures",
                every.as_millis()
            );
        }
        let reloader = std::sync::Arc::new(ConfigReloader::new(config.clone(), plugins.clone()));
        // Listening for SIGHUP before announcing anything, so a reload asked for as soon as
        // the host says it is up never meets the signal's default action (exit).
        let hangups = hangup_signal();
        let bind = |address: std::net::SocketAddr, key: &'static str| {
            let file = args.config.display().to_string();
            async move {
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("{file}: host.{key}: cannot listen on {address}"))
            }
        };
        let listener = bind(config.listen, "listen").await?;
        let admin_listener = bind(config.admin_listen, "admin_listen").await?;
        let api_listener = match config.api_listen {
            Some(address) => Some(bind(address, "api_listen").await?),
            None => None,
        };
        match config.api_listen {
            Some(api) => say!(
                "centralino: webhook ingress on http://{}; REST API on http://{api} (/api/v1, \
                 /openapi.json)",
                config.listen
            ),
            None => say!(
                "centralino: webhook ingress and REST API on http://{} (/api/v1, /openapi.json)",
                config.listen
            ),
        }
        if tokens.is_empty() {
            say!("centralino: no tenant has an `api_token`, so the REST API refuses every call");
        }
        say!(
            "centralino: admin API on http://{} (/status, /metrics) (Ctrl-C to stop)",
            config.admin_listen
        );
        let limits = config.ingress.clone();
        // With `api_listen`, webhooks and the CRM's calls never share a connection pool.
        let (public, rest) = match api_listener {
            Some(api_listener) => (
                api::ingress_router(host.clone()),
                Some((api::rest_router(host.clone(), tokens), api_listener)),
            ),
            None => (api::public_router(host.clone(), tokens), None),
        };
        let serve_rest = async {
            match rest {
                Some((router, listener)) => api::serve(router, listener, limits.clone()).await,
                None => std::future::pending().await,
            }
        };
        let admin = AdminApi::new(host.clone(), admin_token)
            .with_reloader(reloader.clone())
            .with_plugin_dir(config.plugin_dir.clone());
        tokio::select! {
            served = api::serve(public, listener, limits.clone()) => {
                served.context("serving the ingress and REST API")?;
            }
            served = serve_rest => served.context("serving the REST API")?,
            served = admin.serve(admin_listener) => served.context("serving the admin API")?,
            _ = tokio::signal::ctrl_c() => say!("centralino: stopping"),
            _ = terminated() => say!("centralino: stopping (SIGTERM)"),
            _ = reload_on_hangup(&host, &reloader, hangups) => {}
        }
        // Hosts sharing the database take this one's accounts over at their next poll.
        if let Err(e) = host.shutdown().await {
            say!("centralino: releasing the polling leases: {e:#}");
        }
        Ok(())
    })
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

/// The stream of SIGHUPs, where there is such a signal.
fn hangup_signal() -> Hangups {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    None
}

/// Reloads the config on every SIGHUP (never resolves; nothing to do where there is no
/// such signal).
async fn reload_on_hangup(host: &centralino::Host, reloader: &ConfigReloader, hangups: Hangups) {
    #[cfg(not(unix))]
    let _ = hangups;
    #[cfg(unix)]
    if let Some(mut signal) = hangups {
        while signal.recv().await.is_some() {
            match reloader.reload(host).await {
                Ok(report) => {
                    say!(
                        "centralino: {} reloaded (SIGHUP): {} plugins swapped, routing of {} \
                         tenants replaced",
                        reloader.path().display(),
                        report.connectors.len(),
                        report.routing.len()
                    );
                    for item in &report.restart_required {
                        say!("centralino: not applied until a restart: {item}");
                    }
                }
                Err(e) => say!("centralino: reload refused, nothing changed: {e}"),
            }
        }
    }
    std::future::pending::<()>().await
}

/// Resolves when the process gets SIGTERM (never where there is no such signal).
async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut signal) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        signal.recv().await;
        return;
    }
    std::future::pending::<()>().await
}
