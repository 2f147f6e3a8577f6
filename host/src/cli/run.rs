//! `centralino run`: the host as a sidecar, from a centralino.toml: webhook ingress and
//! REST API on one listener, admin API and `/metrics` on another.

use std::path::PathBuf;

use anyhow::Context as _;
use centralino::api::admin::{AdminApi, check_exposure};
use centralino::api::{self, ApiTokens};
use centralino::config::Config;
use centralino::server::IngressLimits;

/// `run` arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, default_value = "centralino.toml")]
    config: PathBuf,
}

/// Starts every enabled connector and the routing of every tenant, serves the webhook
/// ingress with the REST API on `host.listen` and the admin API on `host.admin_listen`,
/// and runs until interrupted.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config::load(&args.config)?;
        let secrets = config.resolve_secrets()?;
        eprintln!("centralino: compiling and configuring plugins…");
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
            if let Some(plan) = &tenant.routing {
                builder = builder.auto_reply(plan.auto_reply);
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
        eprintln!(
            "centralino: webhook ingress and REST API on http://{} (/api/v1, /openapi.json)",
            config.listen
        );
        if tokens.is_empty() {
            eprintln!(
                "centralino: no tenant has an `api_token`, so the REST API refuses every call"
            );
        }
        eprintln!(
            "centralino: admin API on http://{} (/status, /metrics) (Ctrl-C to stop)",
            config.admin_listen
        );
        let limits = IngressLimits {
            max_body_bytes: config.max_webhook_body,
            ..IngressLimits::default()
        };
        let public = api::public_router(host.clone(), tokens);
        let admin = AdminApi::new(host.clone(), admin_token);
        tokio::select! {
            served = api::serve(public, listener, limits) => {
                served.context("serving the ingress and REST API")?;
            }
            served = admin.serve(admin_listener) => served.context("serving the admin API")?,
            _ = tokio::signal::ctrl_c() => eprintln!("centralino: stopping"),
        }
        Ok(())
    })
}
