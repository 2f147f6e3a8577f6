//! `centralino-bench`: runs the benchmarks and prints a report (Markdown) with the machine,
//! the load average, the command, and every figure next to its target.
//!
//! Run with `cargo xtask bench` (builds the plugins first), or directly:
//! `cargo run --release -p centralino-bench -- [--quick] [--only decision,ingest,…]`.

#![allow(clippy::expect_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use centralino::runtime::Runtime;
use centralino_bench::density::Allocator;
use centralino_bench::machine::{Machine, command_line, load_average};
use centralino_bench::stats::{bytes, human};
use centralino_bench::{cold, console, decision, density, floor, ingest, search, swap};
use clap::Parser;

/// The sections, in report order.
const SECTIONS: [&str; 7] = [
    "decision", "ingest", "density", "swap", "cold", "console", "search",
];

/// Benchmarks of centralino: decision cost, ingest throughput, tenant density, hot swap,
/// cold start. Prints a Markdown report; build the plugins first (`cargo xtask plugins`),
/// or run `cargo xtask bench`, which does both.
#[derive(Parser, Debug)]
#[command(name = "centralino-bench")]
struct Args {
    /// Tiny sizes and short runs: checks that every benchmark runs (seconds); the figures
    /// mean nothing.
    #[arg(long)]
    quick: bool,
    /// Only these sections (comma-separated): decision, ingest, density, swap, cold,
    /// console, search.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the built plugins are. Default: `$CENTRALINO_PLUGIN_DIR` or `target/plugins`.
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Ingest: messages per run.
    #[arg(long)]
    messages: Option<usize>,
    /// Ingest: messages per webhook delivery.
    #[arg(long)]
    batch: Option<usize>,
    /// Ingest: webhook deliveries in flight.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Ingest: rounds of the durable run and of the plain insert, interleaved.
    #[arg(long)]
    ingest_rounds: Option<usize>,
    /// Density: instance counts (comma-separated).
    #[arg(long, value_delimiter = ',')]
    instances: Vec<usize>,
    /// Density: allocators to compare (on-demand, pooling).
    #[arg(long, value_delimiter = ',')]
    allocators: Vec<String>,
    /// Console: rounds of the ingress load with and without the overview streaming.
    #[arg(long)]
    rounds: Option<usize>,
    /// Console: overview event streams open during the runs with the console.
    #[arg(long)]
    streams: Option<usize>,
    /// Search: messages stored before searching.
    #[arg(long)]
    search_messages: Option<usize>,
    /// Decision: the cargo target dir the Extism peer (`benches/extism-peer`) was built
    /// into; its figures join the table. Default: `target/extism-peer` when built there.
    #[arg(long)]
    extism: Option<PathBuf>,
    /// Search and ingest: also on this PostgreSQL server (a URL naming a database the user
    /// may connect to; a fresh database is made beside it). Default:
    /// `$CENTRALINO_BENCH_POSTGRES`; neither: SQLite only.
    #[arg(long)]
    postgres: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let main_started = Instant::now();
    let raw: Vec<String> = std::env::args().collect();
    // Child processes of the density and cold-start benchmarks.
    if raw.get(1).map(String::as_str) == Some(density::CHILD_ARG) {
        return density_child(&raw[2..]);
    }
    if raw.get(1).map(String::as_str) == Some(cold::CHILD_ARG) {
        return cold_child(&raw[2..], main_started);
    }
    if raw.get(1).map(String::as_str) == Some(PROFILE_ARG) {
        return profile_decisions(&raw[2..]);
    }
    let args = Args::parse();
    let plugins = args
        .plugins
        .clone()
        .unwrap_or_else(centralino_bench::default_plugin_dir);
    let sections: Vec<&str> = if args.only.is_empty() {
        SECTIONS.to_vec()
    } else {
        for name in &args.only {
            anyhow::ensure!(
                SECTIONS.contains(&name.as_str()),
                "unknown section `{name}` (known: {})",
                SECTIONS.join(", ")
            );
        }
        SECTIONS
            .into_iter()
            .filter(|s| args.only.iter().any(|o| o == s))
            .collect()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut report = Report::new(&args);
    report.flush();
    for section in sections {
        let load = load_average();
        let started = Instant::now();
        let body = match section {
            "decision" => tokio.block_on(decision_section(&args, &plugins))?,
            "ingest" => tokio.block_on(ingest_section(&args, &plugins))?,
            "density" => density_section(&args, &plugins)?,
            "swap" => tokio.block_on(swap_section(&args, &plugins))?,
            "console" => tokio.block_on(console_section(&args, &plugins))?,
            "search" => tokio.block_on(search_section(&args, &plugins))?,
            _ => cold_section(&args, &plugins)?,
        };
        report.section(section, &body, &load, started.elapsed());
        report.flush();
    }
    let _ = writeln!(
        report.text,
        "\nLoad average at the end: {}.",
        load_average()
    );
    report.flush();
    if let Some(path) = &args.report {
        std::fs::write(path, &report.text)?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// The report, printed section by section as it is measured.
struct Report {
    text: String,
    printed: usize,
    quick: bool,
}

impl Report {
    fn new(args: &Args) -> Report {
        let machine = Machine::detect();
        let mut text = String::new();
        let _ = writeln!(text, "# centralino benchmarks\n");
        if args.quick {
            let _ = writeln!(
                text,
                "**--quick: tiny sizes, a smoke run; these figures mean nothing.**\n"
            );
        }
        let _ = writeln!(text, "- machine: {}", machine.summary());
        let _ = writeln!(text, "- load average at the start: {}", load_average());
        let _ = writeln!(text, "- command: `{}`", command_line());
        Report {
            text,
            printed: 0,
            quick: args.quick,
        }
    }

    fn section(&mut self, name: &str, body: &str, load: &str, took: Duration) {
        let only = format!(
            "cargo run --release -p centralino-bench -- --only {name}{}",
            if self.quick { " --quick" } else { "" }
        );
        let _ = writeln!(
            self.text,
            "\n{body}\n_load average when the section started: {load}; took {:.1} s; this section alone: `{only}`_",
            took.as_secs_f64()
        );
    }

    fn flush(&mut self) {
        print!("{}", &self.text[self.printed..]);
        self.printed = self.text.len();
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

async fn decision_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let mut options = decision::Options::default();
    if args.quick {
        options.rounds = 3;
        options.round_time = Duration::from_millis(5);
    }
    let runtime = Runtime::new()?;
    let on_fiber = Runtime::builder().routing_on_fiber(true).build()?;
    let mut figures = decision::run(&runtime, &on_fiber, plugins, &options).await?;
    let extism_dir = args
        .extism
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/extism-peer"));
    let extism = match decision::ExtismPeer::in_target(&extism_dir) {
        Some(peer) => {
            decision::extism(&peer, &options, &mut figures)?;
            format!("the Extism peer from {}", extism_dir.display())
        }
        None => format!(
            "no Extism peer in {} (build it: see benches/extism-peer/Cargo.toml)",
            extism_dir.display()
        ),
    };
    let mut out = String::new();
    let _ = writeln!(out, "## 1. Decision cost: `route()` per decision\n");
    let _ = writeln!(
        out,
        "Median of {} interleaved rounds per side; wasm through `RouterInstance::route` (contract 0.3: the roster and the repeating strings kept in the instance, a `route` of flat values; host types → contract → guest → back, output caps checked; called on the caller's thread, the policy importing nothing that waits), on a fiber = the same in a runtime built with `routing_on_fiber(true)`, wasm 0.1 = the policy's released contract 0.1 build through the same call (every operator lowered per call), native = the plugin's code compiled into the host, HTTP = the native code behind axum on 127.0.0.1, called with reqwest (JSON, kept-alive connection), Extism = the same policy built with extism-pdk, JSON in and out, run by the extism crate ({extism}). Load average at the start: {}.\n",
        options.rounds,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let _ = writeln!(
        out,
        "| policy | operators | wasm | native | wasm / native | on a fiber | HTTP loopback | HTTP / wasm | wasm 0.1 | Extism | Extism / wasm |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let optional = |ns: Option<f64>| ns.map_or("–".to_string(), human);
    for f in &figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1}× | {} | {} | {:.0}× | {} | {} | {} |",
            f.policy.name(),
            f.agents,
            human(f.wasm_ns),
            human(f.native_ns),
            f.wasm_over_native(),
            human(f.wasm_on_fiber_ns),
            human(f.http_ns),
            f.http_over_wasm(),
            optional(f.wasm_v0_1_ns),
            optional(f.extism_ns),
            f.extism_ns.map_or("–".to_string(), |e| format!(
                "{:.0}×",
                e / f.wasm_ns.max(0.001)
            ))
        );
    }
    let floor = floor::run(options.rounds, options.round_time).await?;
    let _ = writeln!(
        out,
        "\nThe floor under every decision: wasmtime alone entering a component whose exports do nothing (src/floor.rs), medians of the same number of interleaved rounds:\n"
    );
    let _ = writeln!(out, "| export's arguments | without a fiber | on a fiber |");
    let _ = writeln!(out, "|---|---:|---:|");
    for (label, [plain, fiber]) in [
        ("none", floor.empty),
        ("one string", floor.one_string),
        ("seven strings (a 0.2 conversation's)", floor.seven_strings),
        (
            "a `route` of 0.2's shape (seven strings, 9 candidates, the time)",
            floor.route_02,
        ),
        (
            "a `route` with the conversation as a borrowed handle (9 candidates, the time)",
            floor.route_handle,
        ),
        (
            "a `route` of flat values (9 candidates, the time, the conversation's scalars and numbers)",
            floor.route_flat,
        ),
    ] {
        let _ = writeln!(out, "| {label} | {} | {} |", human(plain), human(fiber));
    }
    let _ = writeln!(out, "\nTargets (issue 18):");
    for f in &figures {
        let (limit, label) = if f.agents <= 9 {
            (1_000.0, "1 µs")
        } else {
            (3_000.0, "3 µs")
        };
        let _ = writeln!(
            out,
            "- {} at {} operators: {:.0} ns ≤ {label}: {}{}",
            f.policy.name(),
            f.agents,
            // In nanoseconds: `human` rounds 1,004 ns to "1.00 µs", which reads as met.
            f.wasm_ns,
            verdict(f.wasm_ns <= limit),
            if f.agents <= 9 {
                format!(
                    "; {:.1}× native ≤ 10×: {}",
                    f.wasm_over_native(),
                    verdict(f.wasm_over_native() <= 10.0)
                )
            } else {
                String::new()
            }
        );
    }
    Ok(out)
}

async fn console_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let mut options = ingest::Options::default();
    let mut rounds = 5;
    if args.quick {
        options.messages = 200;
        options.batch = 20;
        rounds = 1;
    }
    options.messages = args.messages.unwrap_or(options.messages);
    options.batch = args.batch.unwrap_or(options.batch);
    options.concurrency = args.concurrency.unwrap_or(options.concurrency);
    let rounds = args.rounds.unwrap_or(rounds);
    let streams = args.streams.unwrap_or(1);
    let runtime = Runtime::new()?;
    let f = console::run(&runtime, plugins, &options, rounds, streams).await?;
    let (without, with) = (console::median(&f.without), console::median(&f.with));
    let change = (with / without - 1.0) * 100.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 6. The console's live overview and the webhook path\n"
    );
    let _ = writeln!(
        out,
        "{} messages per run in signed Messenger deliveries of {} over HTTP to the ingress, {} in \
         flight, SQLite file, CRM open; with the console: logged in, the overview loaded and {} \
         event stream(s) open for the whole run. {} rounds, each on fresh hosts, alternating \
         which side goes first.\n",
        f.options.messages,
        f.options.batch,
        f.options.concurrency,
        f.streams,
        f.without.len()
    );
    let _ = writeln!(out, "| run | msg/s per round | median |\n|---|---|---:|");
    let list = |rates: &[f64]| {
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "| overview closed | {} | {without:.0} |",
        list(&f.without)
    );
    let _ = writeln!(
        out,
        "| overview streaming | {} | {with:.0} |",
        list(&f.with)
    );
    let _ = writeln!(
        out,
        "\nWith the overview streaming: {change:+.1}% ({} overview events received); \
         target: within 5% — {}.",
        f.events,
        verdict(change >= -5.0)
    );
    Ok(out)
}

async fn search_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let mut options = search::Options::default();
    if args.quick {
        options.messages = 2_000;
        options.rounds = 3;
    }
    options.messages = args.search_messages.unwrap_or(options.messages);
    let dir = centralino_bench::scratch_dir("search")?;
    let sqlite = format!("sqlite://{}", dir.join("centralino.db").display());
    let mut runs = vec![search::run(plugins, &sqlite, "SQLite (FTS5)", &options).await?];
    let postgres = args
        .postgres
        .clone()
        .or_else(|| std::env::var("CENTRALINO_BENCH_POSTGRES").ok())
        .filter(|url| !url.is_empty());
    if let Some(base) = &postgres {
        let url = search::fresh_postgres(base, "search").await?;
        runs.push(search::run(plugins, &url, "PostgreSQL (GIN)", &options).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 7. Search: one page over {} stored messages
",
        runs[0].messages
    );
    let _ = writeln!(
        out,
        "{} customer messages ({} per conversation, three channels and brands, Italian telecom \
         phrases from a fixed vocabulary, a customer code in each that occurs once), stored \
         through the store's ingest path; half the conversations assigned to nine operators, a \
         third resolved; measured once the CRM has every message's event (and, on PostgreSQL, after \
         `ANALYZE`, as autovacuum does in service). One page of 50 through `Host::search_messages` / \
         `Host::search_conversations` (the calls behind `GET /api/v1/messages` and \
         `/api/v1/conversations`): median and slowest of {} runs after a warm-up.{}\n",
        runs[0].messages,
        options.per_conversation,
        options.rounds,
        if postgres.is_none() {
            " PostgreSQL: not measured (give `--postgres URL` or `CENTRALINO_BENCH_POSTGRES`)."
        } else {
            ""
        }
    );
    let mut header = String::from("| query | rows |");
    let mut rule = String::from("|---|---:|");
    for run in &runs {
        let _ = write!(header, " {} median | slowest |", run.backend);
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (row, figure) in runs[0].figures.iter().enumerate() {
        let _ = write!(out, "| {} | {} |", figure.query, figure.rows);
        for run in &runs {
            let f = &run.figures[row];
            let _ = write!(
                out,
                " {} | {} |",
                human(f.median.as_nanos() as f64),
                human(f.max.as_nanos() as f64)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
    for run in &runs {
        let worst = run
            .figures
            .iter()
            .map(|f| f.median)
            .max()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- {}: filled in {:.1} s, CRM events delivered {:.1} s later; slowest median {} — \
             target < 50 ms: {}",
            run.backend,
            run.fill.as_secs_f64(),
            run.drain.as_secs_f64(),
            human(worst.as_nanos() as f64),
            verdict(worst < Duration::from_millis(50))
        );
    }
    Ok(out)
}

async fn ingest_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let mut options = ingest::Options::default();
    if args.quick {
        options.messages = 200;
        options.batch = 20;
        options.rounds = 1;
    }
    options.messages = args.messages.unwrap_or(options.messages);
    options.batch = args.batch.unwrap_or(options.batch);
    options.concurrency = args.concurrency.unwrap_or(options.concurrency);
    options.rounds = args.ingest_rounds.unwrap_or(options.rounds);
    options.postgres = args
        .postgres
        .clone()
        .or_else(|| std::env::var("CENTRALINO_BENCH_POSTGRES").ok())
        .filter(|url| !url.is_empty());
    let runtime = Runtime::new()?;
    let f = ingest::run(&runtime, plugins, &options).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 2. Ingest throughput: signed Facebook webhooks to SQLite and the CRM\n"
    );
    let _ = writeln!(
        out,
        "{} messages in deliveries of {} (Messenger batches entries: one entry per message, each from its own customer, so every message opens a conversation and is routed), {} deliveries in flight, chain `{}` over {} operators, SQLite file in {} (on disk, WAL), counting `Crm`.\n",
        f.options.messages,
        f.options.batch,
        f.options.concurrency,
        ingest::CHAIN,
        f.options.operators,
        f.database_dir
    );
    let rounds = |times: &[Duration]| {
        times
            .iter()
            .map(|t| format!("{:.0}", f.rate(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let share = f.limit.as_secs_f64() / f.durable.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "Both durable runs read back `{}`; {} rounds, interleaved (centralino, then the plain insert), medians below.\n",
        f.settings,
        f.durable_rounds.len()
    );
    let _ = writeln!(out, "| run | time | messages/s |");
    let _ = writeln!(out, "|---|---:|---:|");
    let _ = writeln!(
        out,
        "| durable: verified, normalised, deduplicated, routed, committed (CRM held) | {} | **{:.0}** (rounds: {}) |",
        human(f.durable.as_nanos() as f64),
        f.rate(f.durable),
        rounds(&f.durable_rounds)
    );
    let _ = writeln!(
        out,
        "| … webhook deliveries per commit of the store, on average (deliveries that wait while another is written share its commit) | | {} |",
        f.per_commit
            .iter()
            .map(|n| format!("{n:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| the store's limit: the same rows by a plain batched insert, one transaction per delivery, same connection and pragmas | {} | {:.0} (rounds: {}) |",
        human(f.limit.as_nanos() as f64),
        f.rate(f.limit),
        rounds(&f.limit_rounds)
    );
    let per_round = f
        .durable_rounds
        .iter()
        .zip(&f.limit_rounds)
        .map(|(ours, limit)| {
            format!(
                "{:.0}%",
                100.0 * limit.as_secs_f64() / ours.as_secs_f64().max(1e-9)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "| **centralino ÷ the store's limit** (medians) | | **{:.1}%** (each round ÷ the insert right after it: {per_round}) |",
        100.0 * share
    );
    if let Some(Err(e)) = &f.postgres {
        let _ = writeln!(out, "| PostgreSQL: not measured: {e} | | |");
    }
    if let Some(Ok((one, two))) = f.postgres {
        let _ = writeln!(
            out,
            "| PostgreSQL, durable, one host | {} | {:.0} |",
            human(one.as_nanos() as f64),
            f.rate(one)
        );
        let _ = writeln!(
            out,
            "| PostgreSQL, durable, two hosts sharing the database (half the deliveries each) | {} | {:.0} |",
            human(two.as_nanos() as f64),
            f.rate(two)
        );
    }
    let _ = writeln!(
        out,
        "| CRM drain of that backlog ({} events) | {} | {:.0} |",
        f.crm_events,
        human(f.crm_drain.as_nanos() as f64),
        f.rate(f.crm_drain)
    );
    let _ = writeln!(
        out,
        "| end to end, CRM open: last delivery acknowledged | {} | {:.0} |",
        human(f.end_to_end_acked.as_nanos() as f64),
        f.rate(f.end_to_end_acked)
    );
    let _ = writeln!(
        out,
        "| end to end, CRM open: last CRM event delivered | {} | {:.0} |",
        human(f.end_to_end.as_nanos() as f64),
        f.rate(f.end_to_end)
    );
    let total: Duration = f.stages.iter().map(|s| s.time).sum::<Duration>() + f.crm_drain;
    let _ = writeln!(
        out,
        "\nShare of time per stage (one delivery at a time, same public calls as the host; the CRM row is the drain above):\n"
    );
    let _ = writeln!(
        out,
        "| stage | time | per message | share | per message without disk (in-memory SQLite) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let per = |d: Duration| human(d.as_nanos() as f64 / f.options.messages.max(1) as f64);
    for (stage, cpu) in f.stages.iter().zip(&f.stages_in_memory) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0}% | {} |",
            stage.name,
            human(stage.time.as_nanos() as f64),
            per(stage.time),
            100.0 * stage.time.as_secs_f64() / total.as_secs_f64().max(1e-9),
            per(cpu.time)
        );
    }
    let _ = writeln!(
        out,
        "| CRM: claim, deliver, mark delivered (two events per message) | {} | {} | {:.0}% | |",
        human(f.crm_drain.as_nanos() as f64),
        per(f.crm_drain),
        100.0 * f.crm_drain.as_secs_f64() / total.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(
        out,
        "\n(composed run without the CRM: {:.0} messages/s; one statement's round trip to SQLite through the store's pool, `SELECT 1`: {})",
        f.rate(f.composed),
        human(f.round_trip.as_nanos() as f64)
    );
    let _ = writeln!(
        out,
        "\nTarget ≥ 25,000 messages/s durable: {:.0}: {}; ≥ 80% of the store's limit: {:.1}%: {}{}",
        f.rate(f.durable),
        verdict(f.rate(f.durable) >= 25_000.0),
        100.0 * share,
        verdict(share >= 0.8),
        if f.postgres.is_none() {
            ". PostgreSQL: not measured (give `--postgres URL` or `CENTRALINO_BENCH_POSTGRES`)."
        } else {
            ""
        }
    );
    Ok(out)
}

fn density_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let sizes = if !args.instances.is_empty() {
        args.instances.clone()
    } else if args.quick {
        vec![20, 50]
    } else {
        vec![1_000, 10_000]
    };
    let allocators: Vec<Allocator> = if args.allocators.is_empty() {
        vec![Allocator::OnDemand, Allocator::Pooling]
    } else {
        args.allocators
            .iter()
            .map(|a| Allocator::parse(a).ok_or_else(|| anyhow::anyhow!("unknown allocator `{a}`")))
            .collect::<anyhow::Result<_>>()?
    };
    let figures = density::run(plugins, &sizes, &allocators)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 3. Tenant density: `facebook` connector instances of one compiled component\n"
    );
    let _ = writeln!(
        out,
        "Each size in a fresh process, the component loaded from the artifact cache. Per instance: `ChannelInstance::ready` = instantiate from the shared `InstancePre` + `describe` + `configure`, each with its own store, grants and limits. Memory: `VmRSS` growth with every instance alive and idle, divided by the count; mappings: `/proc/self/maps` growth per instance. Pooling: `Runtime::builder().pooling(instances + 8)`.\n"
    );
    let _ = writeln!(
        out,
        "| allocator | instances | mean per instance | p99 | RSS per idle instance | RSS total | mappings per instance |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for f in &figures {
        let instances = match &f.failed {
            Some((made, _)) => format!("{} (**only {made} started**)", f.instances),
            None => f.instances.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {instances} | {} | {} | {} | {} | {:.1} |",
            f.allocator,
            human(f.mean_ns),
            human(f.p99_ns),
            bytes(f.rss_per_instance),
            bytes(f.rss_total as f64),
            f.maps_per_instance
        );
    }
    for f in figures.iter().filter(|f| f.failed.is_some()) {
        if let Some((made, error)) = &f.failed {
            let _ = writeln!(
                out,
                "\n{} × {}: instance {} failed to start: {error}. Each on-demand instance maps its own memory, guard regions and async stack; Linux's `vm.max_map_count` ({}) caps the process.",
                f.allocator,
                f.instances,
                made + 1,
                std::fs::read_to_string("/proc/sys/vm/max_map_count")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".to_string())
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTargets: ≤ 50 µs per instance, ≤ 1 MiB per idle instance."
    );
    for f in &figures {
        let _ = writeln!(
            out,
            "- {} × {}: {}: {}; {}: {}{}",
            f.allocator,
            f.instances,
            human(f.mean_ns),
            verdict(f.mean_ns <= 50_000.0),
            bytes(f.rss_per_instance),
            verdict(f.rss_per_instance <= 1024.0 * 1024.0),
            if f.failed.is_some() {
                " (but not every instance started)"
            } else {
                ""
            }
        );
    }
    Ok(out)
}

async fn swap_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let seconds = if args.quick { 1.5 } else { 6.0 };
    let f = swap::run(plugins, 1_000, seconds).await?;
    let mut out = String::new();
    let _ = writeln!(out, "## 4. Hot swap\n");
    let _ = writeln!(
        out,
        "A `Host` with the `facebook` connector under {:.0} messages/s of signed single-message deliveries (achieved {:.0}/s) through `Host::deliver_webhook_stored`; a new release written over the plugin file and swapped in with `Host::reload_connector` (compile and check beside the running version, configure, switch; calls in flight finish on the old version); then a broken build (the file cut in half) reloaded and refused.\n",
        f.rate.0, f.rate.1
    );
    let _ = writeln!(out, "| step | time |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(
        out,
        "| `reload_connector`: compile + check + configure + switch (cache miss) | {} |",
        human(f.reload.as_nanos() as f64)
    );
    let _ = writeln!(
        out,
        "| `reload_connector` of a broken build: refused | {} |",
        human(f.refused.as_nanos() as f64)
    );
    let _ = writeln!(
        out,
        "| the new version loaded again from the artifact cache (a restart) | {} |",
        human(f.compile_cached.as_nanos() as f64)
    );
    let _ = writeln!(
        out,
        "\n| traffic latency (from when due) | p50 | p99 | max |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (label, (p50, p99, max)) in [
        ("before the swap", f.before),
        ("during the swap", f.during),
        ("after the switch", f.after),
    ] {
        if max == 0.0 {
            let _ = writeln!(out, "| {label} | – | – | – |");
        } else {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} |",
                human(p50),
                human(p99),
                human(max)
            );
        }
    }
    let lost = f.sent.saturating_sub(f.stored);
    let _ = writeln!(
        out,
        "\nLatency counts from when a message was due, so it includes the 1 ms granularity of the sender's timer. Messages sent {}, acknowledged {}, stored {}, stored twice {}, lost {}. The broken build was refused: {}. Pause seen by traffic (max latency during the swap): {} (target ≤ 50 ms: {}); loss 0: {}.",
        f.sent,
        f.acknowledged,
        f.stored,
        f.duplicates,
        lost,
        f.refusal,
        human(f.during.2),
        verdict(f.during.2 <= 50e6),
        verdict(lost == 0 && f.duplicates == 0 && f.acknowledged == f.sent)
    );
    Ok(out)
}

fn cold_section(args: &Args, plugins: &std::path::Path) -> anyhow::Result<String> {
    let starts = if args.quick { 1 } else { 7 };
    let figures = cold::run(plugins, starts)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 5. Cold start: a host with three plugins (`facebook`, `skills`, `least-loaded`)\n"
    );
    let _ = writeln!(
        out,
        "Fresh process per start; SQLite file store. Medians of {starts} starts (the cache-filling start is a single one).\n"
    );
    let _ = writeln!(
        out,
        "| mode | main → ready | runtime | chain (2 policies) | host (store + connector) | process spawn → exit |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for f in &figures {
        let m = f.median;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            f.mode,
            cold::ms(m.ready_ns),
            cold::ms(m.runtime_ns),
            cold::ms(m.chain_ns),
            cold::ms(m.host_ns),
            cold::ms(m.process_ns)
        );
    }
    if let (Some(none), Some(hit)) = (figures.first(), figures.last()) {
        let _ = writeln!(
            out,
            "\nThe cache makes a start {:.1}× faster.",
            none.median.ready_ns / hit.median.ready_ns.max(1.0)
        );
    }
    Ok(out)
}

fn density_child(args: &[String]) -> anyhow::Result<()> {
    let [n, allocator, plugins, cache] = args else {
        anyhow::bail!(
            "usage: {} <instances> <allocator> <plugin dir> <cache dir>",
            density::CHILD_ARG
        );
    };
    let n: usize = n.parse()?;
    let allocator = Allocator::parse(allocator)
        .ok_or_else(|| anyhow::anyhow!("unknown allocator `{allocator}`"))?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let figure = tokio.block_on(density::measure(
        std::path::Path::new(plugins),
        n,
        allocator,
        Some(std::path::Path::new(cache)),
    ))?;
    println!("{}", density::to_json(&figure));
    Ok(())
}

fn cold_child(args: &[String], main_started: Instant) -> anyhow::Result<()> {
    let [plugins, cache] = args else {
        anyhow::bail!("usage: {} <plugin dir> <cache dir | ->", cold::CHILD_ARG);
    };
    let cache = (cache != "-").then(|| PathBuf::from(cache));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = tokio.block_on(cold::child(
        std::path::Path::new(plugins),
        cache.as_deref(),
        main_started,
    ))?;
    println!("{line}");
    Ok(())
}

/// Hidden: `__profile-decision <policy> <operators> <seconds>` runs wasm decisions in a
/// loop, for `perf record` or `valgrind --tool=callgrind`; `<policy>` names any routing
/// plugin in the plugin folder (default settings), not only those with a native peer.
const PROFILE_ARG: &str = "__profile-decision";

fn profile_decisions(args: &[String]) -> anyhow::Result<()> {
    let [policy, agents, seconds] = args else {
        anyhow::bail!("usage: {PROFILE_ARG} <policy> <operators> <seconds>");
    };
    let context = centralino_bench::fixtures::routing_context(agents.parse()?);
    let seconds: f64 = seconds.parse()?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        let runtime = Runtime::new()?;
        let plugins = centralino_bench::default_plugin_dir();
        let mut wasm = decision::instance(&runtime, &plugins, policy).await?;
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            for _ in 0..1000 {
                std::hint::black_box(wasm.route(&context).await?);
            }
            n += 1000;
        }
        eprintln!(
            "{n} decisions, {}",
            human(started.elapsed().as_nanos() as f64 / n as f64)
        );
        Ok(())
    })
}
