//! `centralino demo`: the telecom scenario on embedded defaults.
//!
//! Three brands, nine operators with their own Twitter accounts and a capacity of three
//! conversations each. Simulated customers write in at a steady pace; every conversation is
//! placed by the `round-robin` routing policy running as a WebAssembly component, waits in
//! the queue when nobody has capacity, and is resolved after a handling time. The clock is
//! simulated, so the demo ends in moments and prints the same figures on every run.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{
    Agent, MessageKind, Presence, QueueStats, RoutingAction, RoutingContext, RoutingConversation,
};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Conversations to simulate.
    #[arg(long, default_value_t = 270)]
    conversations: u32,
    /// Folder with the built plugin components.
    #[arg(long, env = "CENTRALINO_PLUGIN_DIR", default_value = "target/plugins")]
    plugins: PathBuf,
}

const BRANDS: [(&str, [&str; 3]); 3] = [
    ("tim", ["Marco", "Giulia", "Luca"]),
    ("telecom-italia", ["Sara", "Paolo", "Chiara"]),
    ("impresa-semplice", ["Andrea", "Francesca", "Roberto"]),
];

const CUSTOMER_TEXTS: [&str; 4] = [
    "il mio modem non va",
    "la fibra è lenta da stamattina",
    "fattura doppia questo mese?",
    "disservizio linea fissa in zona Prati",
];

struct Busy {
    agent: usize,
    until: u64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(simulate(args))
}

async fn simulate(args: DemoArgs) -> anyhow::Result<()> {
    let path = args.plugins.join("round-robin.wasm");
    println!("centralino demo: one telco, three brands, nine operators");
    let started = Instant::now();
    let runtime = Runtime::builder()
        .cache_dir(args.plugins.join(".cache"))
        .build()?;
    let policy = runtime.load_router(&path).with_context(|| {
        format!(
            "loading {} (build it with `cargo xtask plugins`)",
            path.display()
        )
    })?;
    println!(
        "loaded routing policy {} (compiled-artifact cache: {}) in {} ms",
        policy.id(),
        format!("{:?}", policy.cache_outcome()).to_lowercase(),
        started.elapsed().as_millis()
    );
    let mut router = policy.instance(Vec::new(), PluginLimits::default());

    let mut agents: Vec<Agent> = BRANDS
        .iter()
        .flat_map(|(brand, names)| {
            names.iter().map(move |name| Agent {
                id: name.to_lowercase(),
                name: (*name).to_string(),
                skills: vec![(*brand).to_string()],
                languages: vec!["it".to_string()],
                accounts: vec![format!("TIM_{name}")],
                capacity: 3,
                load: 0,
                presence: Presence::Online,
                last_assigned_at: None,
            })
        })
        .collect();
    let mut assigned = vec![0u32; agents.len()];
    let mut busy: Vec<Busy> = Vec::new();
    let mut queue: VecDeque<(u32, u64)> = VecDeque::new();
    let mut waits: Vec<u64> = Vec::new();
    let mut queue_peak = 0usize;
    let mut decision_ns: u128 = 0;
    let mut decisions = 0u32;
    let mut seed: u64 = 0x5eed;

    // A customer every 15 simulated seconds, and an outage burst (one every 2 s) in the
    // middle third; handling takes 2 to 8 minutes, so the burst overruns the 27 seats.
    let third = u64::from(args.conversations / 3);
    let arrivals: Vec<u64> = (0..u64::from(args.conversations))
        .map(|i| match i {
            i if i < third => i * 15_000,
            i if i < 2 * third => third * 15_000 + (i - third) * 2_000,
            i => third * 17_000 + (i - 2 * third) * 15_000,
        })
        .collect();
    let mut now = 0u64;
    let mut next = 0usize;
    while next < arrivals.len() || !queue.is_empty() || !busy.is_empty() {
        // Advance the clock to the next event: an arrival or a resolution.
        let next_arrival = arrivals.get(next).copied().unwrap_or(u64::MAX);
        let next_free = busy.iter().map(|b| b.until).min().unwrap_or(u64::MAX);
        now = next_arrival.min(next_free);
        if now == u64::MAX {
            break;
        }
        busy.retain(|b| {
            if b.until <= now {
                if let Some(agent) = agents.get_mut(b.agent) {
                    agent.load = agent.load.saturating_sub(1);
                }
                false
            } else {
                true
            }
        });
        if next_arrival == now {
            queue.push_back((u32::try_from(next).unwrap_or(u32::MAX), now));
            next += 1;
        }
        queue_peak = queue_peak.max(queue.len());

        // Place waiting conversations, oldest first, while the policy finds someone.
        while let Some(&(conversation, since)) = queue.front() {
            let text = CUSTOMER_TEXTS[conversation as usize % CUSTOMER_TEXTS.len()];
            let context = RoutingContext {
                conversation: RoutingConversation {
                    id: format!("conv-{conversation}"),
                    channel: "twitter".to_string(),
                    account: "TIM_Official".to_string(),
                    brand: None,
                    language: Some("it".to_string()),
                    customer: format!("customer-{conversation}"),
                    kind: MessageKind::PublicPost,
                    text: text.to_string(),
                    priority: 0,
                    previous_agent: None,
                    previous_agent_at: None,
                    waiting_since: since,
                },
                agents: agents.clone(),
                queue: QueueStats {
                    waiting: u32::try_from(queue.len()).unwrap_or(u32::MAX),
                    oldest_wait_ms: now - since,
                    average_handle_ms: 300_000,
                },
                now,
            };
            let t = Instant::now();
            let decision = router.route(&context).await?;
            decision_ns += t.elapsed().as_nanos();
            decisions += 1;
            let RoutingAction::Assign(id) = decision.action else {
                break;
            };
            let Some(index) = agents.iter().position(|a| a.id == id) else {
                anyhow::bail!("policy {} assigned unknown operator `{id}`", router.id());
            };
            queue.pop_front();
            agents[index].load += 1;
            agents[index].last_assigned_at = Some(now);
            assigned[index] += 1;
            waits.push(now - since);
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let handle = 120_000 + (seed >> 33) % 360_000;
            busy.push(Busy {
                agent: index,
                until: now + handle,
            });
        }
    }

    println!();
    println!("{:<10} {:<18} {:>13}", "operator", "brand", "conversations");
    for (agent, count) in agents.iter().zip(&assigned) {
        println!(
            "{:<10} {:<18} {:>13}",
            agent.name,
            agent.skills.join(","),
            count
        );
    }
    waits.sort_unstable();
    let p50 = waits.get(waits.len() / 2).copied().unwrap_or(0);
    let p95 = waits.get(waits.len() * 95 / 100).copied().unwrap_or(0);
    let max = waits.last().copied().unwrap_or(0);
    println!();
    println!("conversations placed   {}", waits.len());
    println!("queue peak             {queue_peak}");
    println!(
        "wait p50 / p95 / max   {} s / {} s / {} s",
        p50 / 1000,
        p95 / 1000,
        max / 1000
    );
    println!(
        "routing decisions      {decisions} ({} µs each on average, in wasm)",
        decision_ns / u128::from(decisions.max(1)) / 1000
    );
    println!(
        "simulated time         {} min; real time {} ms",
        now / 60_000,
        started.elapsed().as_millis()
    );
    Ok(())
}
