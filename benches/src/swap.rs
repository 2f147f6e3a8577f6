//! Hot swap, as far as the host supports it today.
//!
//! The host has **no hot-swap operation yet**: a [`Host`](centralino::Host)'s connectors
//! are fixed when it is built. What exists are the pieces a swap would be made of, and this
//! module times them under live traffic:
//!
//! 1. compile and link the new plugin version ([`Runtime::load_channel`]): here the
//!    `facebook` component with one custom section appended, so its bytes (and its cache
//!    key) are new, exactly like a new release; done on a blocking thread;
//! 2. start the new version's instance and configure it ([`ChannelInstance::ready`]);
//! 3. switch: replace the connector's instance under the same lock webhook calls take (as
//!    the host's connector supervisor holds its instance), and drop the old one after.
//!
//! Meanwhile a caller sends one signed single-message delivery every millisecond (1,000
//! messages/s) through that lock, as the ingress would. The figures: each step's time, the
//! traffic's latency before and during the swap (latency counts from when the message was
//! due, so a stall shows), and messages lost (sent minus normalised).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use centralino::runtime::{ChannelInstance, Runtime};
use tokio::sync::Mutex;

use crate::fixtures::{facebook_config, facebook_spec, messenger_batch, signed_delivery};
use crate::stats::percentile;

/// The figures.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Compiling and linking the new version (no cache: new bytes).
    pub compile: Duration,
    /// The same load served from the compiled-artifact cache (a restart after it).
    pub compile_cached: Duration,
    /// Starting and configuring the new instance.
    pub ready: Duration,
    /// Holding the connector's lock to replace the instance.
    pub switch: Duration,
    /// Messages sent.
    pub sent: u64,
    /// Messages normalised (old or new version).
    pub normalised: u64,
    /// Target and achieved rate, messages/s.
    pub rate: (f64, f64),
    /// Latency before the swap started: p50, p99, max (ns).
    pub before: (f64, f64, f64),
    /// Latency while the swap ran (compile to switch): p50, p99, max (ns).
    pub during: (f64, f64, f64),
    /// Latency after the switch: p50, p99, max (ns).
    pub after: (f64, f64, f64),
}

/// `component` with a custom section appended: a valid component with new bytes.
fn new_version(component: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
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
    let path = dir.join("facebook-0.1.1.wasm");
    std::fs::write(&path, bytes)?;
    Ok(path)
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
    let runtime = Runtime::builder().cache_dir(dir.join("cache")).build()?;
    let current = crate::component(plugins, "facebook")?;
    let (config, grants) = facebook_config();
    let limits = facebook_spec(plugins).limits;
    let plugin = runtime.load_channel(&current)?;
    let mut first = plugin.instance(config.clone(), grants.clone(), limits.clone());
    first.ready().await?;
    let connector: Arc<Mutex<ChannelInstance>> = Arc::new(Mutex::new(first));

    // The traffic: one message due every 1/rate s, latency counted from when it was due.
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (seconds * f64::from(rate)) as u64;
    let traffic = {
        let connector = connector.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let origin = Instant::now();
            let mut log = Vec::with_capacity(total as usize);
            let mut normalised = 0u64;
            for n in 0..total {
                ticks.tick().await;
                let due = origin + period * n as u32;
                let request = signed_delivery(messenger_batch(n, 1));
                let outcome = connector.lock().await.handle_webhook(request).await?;
                normalised += outcome.messages.len() as u64;
                log.push((due, Instant::now()));
            }
            Ok::<_, anyhow::Error>((log, normalised, origin.elapsed()))
        })
    };

    // The swap, a third of the way in.
    tokio::time::sleep(Duration::from_secs_f64(seconds / 3.0)).await;
    let swap_started = Instant::now();
    let path = new_version(&current, &dir)?;
    let compiling = runtime.clone();
    let compile_path = path.clone();
    let new_plugin =
        tokio::task::spawn_blocking(move || compiling.load_channel(&compile_path)).await??;
    let compile = swap_started.elapsed();
    let t = Instant::now();
    let mut next = new_plugin.instance(config, grants, limits);
    next.ready().await?;
    let ready = t.elapsed();
    let t = Instant::now();
    let old = {
        let mut guard = connector.lock().await;
        std::mem::replace(&mut *guard, next)
    };
    let switch = t.elapsed();
    let swap_ended = Instant::now();
    drop(old);

    let (log, normalised, elapsed) = traffic.await??;
    // A restart after the swap: the new version comes from the cache.
    let t = Instant::now();
    runtime.load_channel(&path)?;
    let compile_cached = t.elapsed();
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
        compile,
        compile_cached,
        ready,
        switch,
        sent: log.len() as u64,
        normalised,
        rate: (
            f64::from(rate),
            log.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        ),
        before: spread(&latency(origin, swap_started)),
        during: spread(&latency(swap_started, swap_ended)),
        after: spread(&latency(swap_ended, far)),
    })
}
