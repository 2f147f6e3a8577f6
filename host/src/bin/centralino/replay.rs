//! `centralino route replay`: recorded traffic through one or more routing chains, to
//! compare them before switching.
//!
//! ```sh
//! centralino route replay --events examples/replay/telecom-day.jsonl \
//!     --policy "round-robin" --policy "priority > sticky > skills > least-loaded"
//! ```
//!
//! Each chain gets a fresh engine on a simulated clock and the same events; the report
//! shows assignments per operator, waiting times and first-response SLA misses. The
//! events format is documented in `centralino::routing::replay`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use centralino::routing::{
    ChainSpec, PolicyChain, ReplayEvents, ReplayOptions, ReplayReport, parse_events, replay,
};
use centralino::runtime::{PluginLimits, Runtime};

/// `centralino route …`
#[derive(clap::Args)]
pub struct RouteArgs {
    #[command(subcommand)]
    command: RouteCommand,
}

#[derive(clap::Subcommand)]
enum RouteCommand {
    /// Replay recorded events through routing chains and compare what each would have done.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// A routing chain, e.g. "priority > skills(require_language=false) > least-loaded".
    /// Repeat to compare chains on the same events.
    #[arg(long = "policy", required = true)]
    policies: Vec<String>,
    /// The events file (JSON Lines).
    #[arg(long)]
    events: PathBuf,
    /// First-response SLA, in minutes.
    #[arg(long, default_value_t = 15)]
    sla_minutes: u64,
    /// Take a conversation back from an assignee who has not answered within this many
    /// minutes (default: never). A conversation whose recorded reply takes longer than
    /// this is never answered: every assignee lets it lapse in turn.
    #[arg(long)]
    offer_timeout_minutes: Option<u64>,
    /// Folder with the built plugin components.
    #[arg(long, env = "CENTRALINO_PLUGIN_DIR", default_value = "target/plugins")]
    plugins: PathBuf,
    /// Print JSON (an array with one report per chain) instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `centralino route …`.
pub fn run(args: RouteArgs) -> anyhow::Result<()> {
    let RouteCommand::Replay(args) = args.command;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(run_replay(args))
}

async fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    // Parse every chain before reading events or loading plugins: a typo fails at once.
    let specs = args
        .policies
        .iter()
        .map(|policy| policy.parse::<ChainSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let text = std::fs::read_to_string(&args.events)
        .with_context(|| format!("reading {}", args.events.display()))?;
    let events = parse_events(&args.events.display().to_string(), &text)?;
    let runtime = Runtime::builder()
        .cache_dir(args.plugins.join(".cache"))
        .build()?;
    let options = ReplayOptions {
        sla: Duration::from_secs(args.sla_minutes.saturating_mul(60)),
        offer_timeout: args
            .offer_timeout_minutes
            .map(|minutes| Duration::from_secs(minutes.saturating_mul(60))),
        ..ReplayOptions::default()
    };
    if let Some(timeout) = options.offer_timeout {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let slow = events
            .handling
            .values()
            .filter(|h| h.reply_after_ms.is_some_and(|ms| ms >= timeout_ms))
            .count();
        if slow > 0 {
            eprintln!(
                "warning: {slow} conversations take longer to answer than the offer timeout; \
                 they will pass from operator to operator without a reply"
            );
        }
    }
    let mut reports = Vec::with_capacity(specs.len());
    for spec in &specs {
        // The error already names the file or the plugin; its source chain would repeat it.
        let chain = PolicyChain::load(&runtime, spec, &args.plugins, &PluginLimits::default())
            .await
            .map_err(|e| anyhow::anyhow!("loading chain `{spec}`: {e}"))?;
        reports.push(replay(chain, &events, &options).await);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_text(&args, &events, &reports);
    }
    Ok(())
}

fn print_text(args: &ReplayArgs, events: &ReplayEvents, reports: &[ReplayReport]) {
    println!(
        "replay of {}: {} timed events, {} conversation threads",
        args.events.display(),
        events.timed.len(),
        events.conversation_keys()
    );
    for report in reports {
        let assigned = report.conversations - report.never_assigned;
        println!();
        println!("chain: {}", report.chain);
        println!("  {:<16} {:>8}", "operator", "assigned");
        for count in &report.assignments {
            println!("  {:<16} {:>8}", count.operator, count.assigned);
        }
        println!(
            "  conversations          {} ({assigned} assigned, {} never)",
            report.conversations, report.never_assigned
        );
        println!(
            "  wait p50 / p95 / max   {} / {} / {}",
            duration(report.wait_p50_ms),
            duration(report.wait_p95_ms),
            duration(report.wait_max_ms)
        );
        println!(
            "  first-response SLA     {} missed of {} ({} min)",
            report.sla_missed, report.conversations, report.sla_minutes
        );
        println!("  queue peak             {}", report.queue_peak);
        println!("  offer timeouts         {}", report.offer_timeouts);
        println!("  stage failures         {}", report.stage_failures);
        println!(
            "  simulated              {} ({} routing decisions)",
            duration(report.simulated_ms),
            report.decisions
        );
    }
}

/// `0 s`, `42 s`, `6 min 40 s`, `2 h 05 min`.
fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}
