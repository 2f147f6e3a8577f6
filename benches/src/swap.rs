//! Hot swap under traffic, through the host's own operation.
//!
//! A [`Host`] with the `facebook` connector (its plugin file in a scratch directory, an
//! in-memory store: the store is not what is measured here) takes one signed
//! single-message delivery every millisecond (1,000 messages/s) through
//! [`Host::deliver_webhook_stored`], as the ingress would. A third of the way in, a new
//! release is written over the plugin file (the same component with a custom section
//! appended: new bytes, a new cache key) and [`Host::reload_connector`] swaps it in: the
//! host compiles and checks the candidate beside the running version, configures an
//! instance of it, then switches; calls in flight finish on the old version. Two thirds in,
//! a broken build (the file cut in half) is written and reloaded: it must be refused while
//! the new version keeps serving.
//!
//! The figures: the reload's time, the traffic's latency before, during and after the swap
//! (latency counts from when the message was due, so a stall shows), and messages lost or
//! stored twice (every delivery must be acknowledged and stored exactly once).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::connectors::DEFAULT_TENANT;

use crate::fixtures::{facebook_spec, messenger_batch, signed_delivery};
use crate::stats::percentile;

/// The figures.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The swap: compile, check, configure and switch, as `reload_connector` took it.
    pub reload: Duration,
    /// The refused reload of a broken build.
    pub refused: Duration,
    /// Why the broken build was refused.
    pub refusal: String,
    /// The same new version loaded again from the artifact cache (a restart after it).
    pub compile_cached: Duration,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries acknowledged with 200.
    pub acknowledged: u64,
    /// Messages stored (each once).
    pub stored: u64,
    /// Messages reported as duplicates (stored twice would show here).
    pub duplicates: u64,
    /// Target and achieved rate, messages/s.
    pub rate: (f64, f64),
    /// Latency before the swap started: p50, p99, max (ns).
    pub before: (f64, f64, f64),
    /// Latency while the swap ran: p50, p99, max (ns).
    pub during: (f64, f64, f64),
    /// Latency after the switch (including the refused reload): p50, p99, max (ns).
    pub after: (f64, f64, f64),
}

/// `component` with a custom section appended: a valid component with new bytes.
fn new_version(component: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = std::fs::read(component)?;
    let name = b"centralino-bench-version";
    let payload = b"0.1.1";
    let size = 1 + name.len() + payload.len();
    anyhow::ensure!(size < 128, "custom section too long for a one-byte size");
    bytes.push(0); // custom section id
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// Replaces `path` with `bytes` the way a deployment should: write beside, then rename.
fn install(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let staged: PathBuf = path.with_extension("wasm.new");
    std::fs::write(&staged, bytes)?;
    std::fs::rename(&staged, path)?;
    Ok(())
}

fn spread(latencies: &[f64]) -> (f64, f64, f64) {
    (
        percentile(latencies, 50.0),
        percentile(latencies, 99.0),
        percentile(latencies, 100.0),
    )
}

/// Runs the swap under `rate` messages/s for about `seconds` of traffic.
pub async fn run(plugins: &Path, rate: u32, seconds: f64) -> anyhow::Result<Figure> {
    let dir = crate::scratch_dir("swap")?;
    let runtime = centralino::runtime::Runtime::builder()
        .cache_dir(dir.join("cache"))
        .build()?;
    let shipped = crate::component(plugins, "facebook")?;
    let installed = dir.join("facebook.wasm");
    std::fs::copy(&shipped, &installed)?;
    let mut spec = facebook_spec(plugins);
    spec.plugin = installed.clone();
    let name = spec.name.clone();
    let host = Host::builder()
        .runtime(runtime.clone())
        .store("sqlite::memory:")
        .connector(spec)
        .build()
        .await?;

    // The traffic: one message due every 1/rate s, latency counted from when it was due.
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (seconds * f64::from(rate)) as u64;
    let traffic = {
        let host = host.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let origin = Instant::now();
            let mut log = Vec::with_capacity(total as usize);
            let (mut acknowledged, mut stored, mut duplicates) = (0u64, 0u64, 0u64);
            for n in 0..total {
                ticks.tick().await;
                let due = origin + period * n as u32;
                let request = signed_delivery(messenger_batch(n, 1));
                let (response, ingested) = host
                    .deliver_webhook_stored(DEFAULT_TENANT, &name, request)
                    .await;
                if response.status == 200 {
                    acknowledged += 1;
                }
                stored += ingested.iter().filter(|i| !i.duplicate).count() as u64;
                duplicates += ingested.iter().filter(|i| i.duplicate).count() as u64;
                log.push((due, Instant::now()));
            }
            Ok::<_, anyhow::Error>((log, acknowledged, stored, duplicates, origin.elapsed()))
        })
    };

    // The swap, a third of the way in.
    tokio::time::sleep(Duration::from_secs_f64(seconds / 3.0)).await;
    let swap_started = Instant::now();
    let release = new_version(&shipped)?;
    install(&installed, &release)?;
    let report = host.reload_connector(DEFAULT_TENANT, &name).await?;
    let reload = swap_started.elapsed();
    let swap_ended = Instant::now();
    anyhow::ensure!(
        report.swapped,
        "the new version was refused: {}",
        report.error.unwrap_or_default()
    );

    // A broken build, two thirds in: refused, the new version keeps serving.
    tokio::time::sleep(Duration::from_secs_f64(seconds / 3.0)).await;
    install(&installed, &release[..release.len() / 2])?;
    let t = Instant::now();
    let broken = host.reload_connector(DEFAULT_TENANT, &name).await?;
    let refused = t.elapsed();
    anyhow::ensure!(!broken.swapped, "a truncated build was swapped in");
    let refusal = broken.error.unwrap_or_default();

    let (log, acknowledged, stored, duplicates, elapsed) = traffic.await??;
    // A restart after the swap: the new version comes from the cache.
    install(&installed, &release)?;
    let t = Instant::now();
    runtime.load_channel(&installed)?;
    let compile_cached = t.elapsed();
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);

    let latency = |from: Instant, to: Instant| -> Vec<f64> {
        log.iter()
            .filter(|(due, _)| *due >= from && *due < to)
            .map(|(due, done)| done.duration_since(*due).as_nanos() as f64)
            .collect()
    };
    let far = swap_ended + Duration::from_secs(3600);
    let origin = log.first().map(|(due, _)| *due).unwrap_or(swap_started);
    Ok(Figure {
        reload,
        refused,
        refusal,
        compile_cached,
        sent: log.len() as u64,
        acknowledged,
        stored,
        duplicates,
        rate: (
            f64::from(rate),
            log.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        ),
        before: spread(&latency(origin, swap_started)),
        during: spread(&latency(swap_started, swap_ended)),
        after: spread(&latency(swap_ended, far)),
    })
}
