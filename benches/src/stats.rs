//! Small statistics over repeated measurements.

use std::time::Duration;

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`th percentile of `values` by nearest rank (0 when empty).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds per operation.
pub fn ns_per(elapsed: Duration, operations: u64) -> f64 {
    elapsed.as_nanos() as f64 / operations.max(1) as f64
}

/// Something timed in interleaved rounds: several ways of doing one operation.
pub trait Ways {
    /// How many ways there are.
    fn count(&self) -> usize;

    /// Runs `n` operations the `way`th way; returns the elapsed time.
    fn batch(
        &mut self,
        way: usize,
        n: u64,
    ) -> impl std::future::Future<Output = anyhow::Result<Duration>>;
}

/// Each way's median ns per operation and the operations timed.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    /// Median over the rounds.
    pub ns: f64,
    /// Operations timed in all rounds.
    pub operations: u64,
}

/// Times every way of `ways` in `rounds` rounds, each round running every way once in a
/// rotated order, so load that comes and goes falls on all of them alike. A way's batch is
/// sized by short trials (×4 until one lasts 5 ms) to last about `round_time`.
pub async fn interleaved(
    ways: &mut impl Ways,
    rounds: usize,
    round_time: Duration,
) -> anyhow::Result<Vec<Timed>> {
    let k = ways.count();
    let mut per_round = Vec::with_capacity(k);
    for way in 0..k {
        let mut n = 1u64;
        loop {
            let elapsed = ways.batch(way, n).await?;
            if elapsed >= Duration::from_millis(5) || n >= 1 << 24 {
                let per = elapsed.as_secs_f64() / n as f64;
                per_round.push(((round_time.as_secs_f64() / per) as u64).max(1));
                break;
            }
            n *= 4;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); k];
    for round in 0..rounds {
        for j in 0..k {
            let way = (round + j) % k;
            let elapsed = ways.batch(way, per_round[way]).await?;
            samples[way].push(ns_per(elapsed, per_round[way]));
        }
    }
    Ok(samples
        .iter()
        .zip(&per_round)
        .map(|(samples, n)| Timed {
            ns: median(samples),
            operations: n.saturating_mul(rounds as u64),
        })
        .collect())
}

/// A duration in the unit that reads best (ns, µs, ms, s).
pub fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// Bytes in KiB or MiB.
pub fn bytes(value: f64) -> String {
    if value.abs() < 1024.0 * 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{:.2} MiB", value / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&values), 3.0);
        assert_eq!(percentile(&values, 100.0), 5.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(median(&[]), 0.0);
    }
}
