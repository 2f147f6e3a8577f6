//! `centralino run`: the host as a sidecar, from a centralino.toml.

use std::path::PathBuf;

use anyhow::Context as _;
use centralino::config::Config;

/// `run` arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, default_value = "centralino.toml")]
    config: PathBuf,
}

/// Starts every enabled connector and the routing of every tenant, serves the webhook
/// ingress, and runs until interrupted.
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
        let host = builder.build().await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "{}: host.listen: cannot listen on {}",
                    args.config.display(),
                    config.listen
                )
            })?;
        eprintln!(
            "centralino: webhook ingress on http://{} (Ctrl-C to stop)",
            config.listen
        );
        tokio::select! {
            served = host.serve(listener) => served.context("serving the ingress")?,
            _ = tokio::signal::ctrl_c() => eprintln!("centralino: stopping"),
        }
        Ok(())
    })
}
