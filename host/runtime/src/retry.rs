//! One retry policy for the whole host: [`Backoff`], a wait that doubles with every retry
//! from a first wait up to a cap, optionally spread by jitter.
//!
//! Where the host retries, and with which numbers (written here and nowhere else, except
//! the plugin limits, which the admin configures):
//!
//! | what is retried | policy | waits before retry 1, 2, 3 … | jitter |
//! | --- | --- | --- | --- |
//! | a reply that failed for a temporary reason (outbox; the 8th attempt is final) | [`OUTBOX`] | 1 s, 2 s, 4 s … 64 s (cap 512 s) | none |
//! | an event the CRM refused (CRM dispatcher) | [`CRM_EVENTS`] | 400 ms, 800 ms … 204.8 s | none |
//! | an idempotent HTTP request of a plugin after a 5xx or a timeout (`http_retries`, default 2) | [`HTTP_REQUEST`] | 400 ms, 800 ms … 12.8 s | ±50 % |
//! | calls to a connector that keeps faulting, from its 2nd fault in a row | `PluginLimits::backoff_after` | `fault_backoff` (1 s) doubling to `fault_backoff_max` (60 s) | none |
//! | an inbound file the media fetcher could not fetch for a temporary reason (the 8th try is final) | [`MEDIA_FETCH`] | 2 s, 4 s, 8 s … 128 s (cap 300 s) | none |
//! | a background task that panicked (outbox sender, dispatcher, pollers…) | [`TASK_RESTART`] | 1 s, 2 s, 4 s … 60 s | none |
//!
//! A rate-limited reply waits for the time the platform named instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Outbox: a reply whose send failed for a temporary reason (the platform's outage, a
/// plugin fault) is tried again after 1 s, doubling per failed attempt.
pub const OUTBOX: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(512));

/// CRM dispatcher: an event the CRM refused is delivered again after 400 ms, doubling per
/// failed delivery up to 204.8 s (400 ms · 2⁹).
pub const CRM_EVENTS: Backoff =
    Backoff::new(Duration::from_millis(400), Duration::from_millis(204_800));

/// HTTP capability: an idempotent request answered 5xx, or timed out, is sent again after
/// 400 ms, doubling per retry up to 12.8 s, each wait spread ±50 % so that the retries of
/// many connectors do not arrive together.
pub const HTTP_REQUEST: Backoff =
    Backoff::new(Duration::from_millis(400), Duration::from_millis(12_800)).with_jitter(500);

/// Media fetcher: an inbound file whose fetch failed for a temporary reason (the
/// platform's outage, a rate limit, a refused token being refreshed) is tried again after
/// 2 s, doubling per try up to 5 minutes, until [`MEDIA_FETCH_TRIES`] tries.
pub const MEDIA_FETCH: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));

/// Tries of one inbound file before it is `failed` with the last reason.
pub const MEDIA_FETCH_TRIES: u32 = 8;

/// Background tasks: a task that panicked starts again after 1 s, doubling per panic in a
/// row up to a minute (a run of a minute or more starts the count again).
pub const TASK_RESTART: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// Exponential backoff: the wait before retry `n` (0 for the first retry) is
/// `first · 2ⁿ`, at most `max`, then spread by the jitter. Defaults: factor 2 (fixed), no
/// jitter. The growth saturates: any retry count, up to `u64::MAX`, gives at most `max`
/// (before jitter), never an overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    first: Duration,
    /// The longest wait before jitter.
    max: Duration,
    /// Spread of each wait, in thousandths of it either way (500: from 50 % to 150 %);
    /// at most 1000. Default: 0.
    jitter_permille: u32,
}

impl Backoff {
    /// A wait of `first` before the first retry, doubling per retry up to `max`; no jitter.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            jitter_permille: 0,
        }
    }

    /// The same, each wait spread uniformly over ± `permille` thousandths of itself
    /// (capped at 1000, which spreads from nothing to twice the wait).
    pub const fn with_jitter(self, permille: u32) -> Self {
        Backoff {
            jitter_permille: if permille > 1000 { 1000 } else { permille },
            ..self
        }
    }

    /// The wait before retry `retry` (0 for the first).
    pub fn delay(&self, retry: u64) -> Duration {
        let wait = self.grown(retry);
        if self.jitter_permille == 0 {
            return wait;
        }
        // Spread, not secrecy: the clock's nanoseconds are random enough.
        let roll = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.spread(wait, roll)
    }

    /// [`delay`](Self::delay) in whole milliseconds, saturating.
    pub fn delay_ms(&self, retry: u64) -> u64 {
        u64::try_from(self.delay(retry).as_millis()).unwrap_or(u64::MAX)
    }

    /// `first · 2^retry`, at most `max`, computed exactly (in nanoseconds, 128 bits).
    fn grown(&self, retry: u64) -> Duration {
        if self.first.is_zero() {
            return Duration::ZERO;
        }
        let max = self.max.as_nanos();
        let nanos = u32::try_from(retry)
            .ok()
            .and_then(|retry| 1u128.checked_shl(retry))
            .and_then(|factor| self.first.as_nanos().checked_mul(factor))
            .map_or(max, |grown| grown.min(max));
        from_nanos(nanos)
    }

    /// `wait` scaled by a factor from `1 - jitter` to just under `1 + jitter`, chosen by
    /// `roll`.
    fn spread(&self, wait: Duration, roll: u32) -> Duration {
        let jitter = u128::from(self.jitter_permille);
        let permille = 1000 - jitter + u128::from(roll) % (2 * jitter);
        from_nanos(wait.as_nanos().saturating_mul(permille) / 1000)
    }
}

/// A duration of `nanos` nanoseconds, or the longest one if it does not fit.
fn from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder of a division by 10⁹ always fits in a u32.
        Ok(secs) => Duration::new(secs, u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0)),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_wait_doubles_from_the_first_and_stops_at_the_cap() {
        let backoff = Backoff::new(SECOND, Duration::from_secs(10));
        let waits: Vec<u64> = (0..6).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn huge_retry_counts_saturate_at_the_cap_without_overflow() {
        let backoff = Backoff::new(SECOND, Duration::from_secs(60));
        for retry in [31, 32, 33, 63, 64, 65, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(
                backoff.delay(retry),
                Duration::from_secs(60),
                "retry {retry}"
            );
        }
        let unbounded = Backoff::new(Duration::from_millis(500), Duration::MAX);
        assert_eq!(unbounded.delay(u64::MAX), Duration::MAX);
        assert_eq!(unbounded.delay(40), Duration::from_secs(1 << 39));
        let tiny = Backoff::new(Duration::from_nanos(1), Duration::from_secs(86_400));
        assert_eq!(tiny.delay(33), Duration::from_nanos(1 << 33));
        assert_eq!(tiny.delay(47), Duration::from_secs(86_400));
        assert_eq!(Backoff::new(Duration::MAX, SECOND).delay(0), SECOND);
        assert_eq!(
            Backoff::new(Duration::ZERO, SECOND).delay(u64::MAX),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_covers_them() {
        let backoff =
            Backoff::new(Duration::from_millis(400), Duration::from_secs(60)).with_jitter(500);
        for retry in 0..8 {
            let base = backoff.grown(retry);
            for roll in [0, 1, 499, 500, 999, 1000, 123_456_789, u32::MAX] {
                let wait = backoff.spread(base, roll);
                assert!(
                    wait >= base / 2 && wait < base * 3 / 2,
                    "retry {retry}, roll {roll}: {wait:?}"
                );
            }
            assert_eq!(backoff.spread(base, 0), base / 2);
            assert_eq!(backoff.spread(base, 500), base);
            assert_eq!(backoff.spread(base, 999), base * 1499 / 1000);
            let live = backoff.delay(retry);
            assert!(
                live >= base / 2 && live < base * 3 / 2,
                "retry {retry}: {live:?}"
            );
        }
        let whole = Backoff::new(SECOND, SECOND).with_jitter(5000);
        assert_eq!(whole.spread(SECOND, 0), Duration::ZERO);
        assert_eq!(whole.spread(Duration::MAX, 1999), Duration::MAX);
    }

    #[test]
    fn without_jitter_the_wait_is_exact() {
        let backoff = Backoff::new(Duration::from_millis(400), Duration::from_secs(60));
        assert_eq!(backoff.delay(3), Duration::from_millis(3_200));
        assert_eq!(backoff.delay_ms(3), 3_200);
        assert_eq!(
            Backoff::new(Duration::MAX, Duration::MAX).delay_ms(0),
            u64::MAX
        );
    }

    /// The numbers each place used before the policy was one type, retry by retry.
    #[test]
    fn each_place_keeps_its_numbers() {
        // Outbox: 500 ms · 2^attempts, attempts (this one included) clamped to 1..=10.
        for attempts in 0..20i64 {
            let old = 500 * (1u64 << attempts.clamp(1, 10));
            let retry = u64::try_from(attempts.saturating_sub(1)).unwrap_or(0);
            assert_eq!(OUTBOX.delay_ms(retry), old, "outbox, attempts {attempts}");
        }
        // CRM dispatcher: 200 ms · 2^attempts (this one included, so at least 1), attempts
        // clamped to 10, then at most 300 s (which the clamp kept it under).
        for attempts in 1..20i64 {
            let old = Duration::from_millis(200u64.saturating_mul(1 << attempts.clamp(0, 10)))
                .min(Duration::from_secs(300));
            let retry = u64::try_from(attempts - 1).unwrap_or(0);
            assert_eq!(CRM_EVENTS.delay(retry), old, "crm, attempts {attempts}");
        }
        // HTTP: 200 ms · 2^min(attempt, 6) for retry `attempt` (from 1), before jitter.
        for attempt in 1..12u32 {
            let old = Duration::from_millis(200u64 << attempt.min(6));
            assert_eq!(
                HTTP_REQUEST.grown(u64::from(attempt - 1)),
                old,
                "http, attempt {attempt}"
            );
        }
        // Plugin limits: fault_backoff · 2^min(consecutive - 2, 20), at most fault_backoff_max.
        let pairs = [
            (1_000, 60_000),
            (1, 86_400_000),
            (0, 5),
            (7_000, 1),
            (u64::MAX, 60_000),
        ];
        for (first, max) in pairs {
            let limits = crate::PluginLimits {
                fault_backoff: Duration::from_millis(first),
                fault_backoff_max: Duration::from_millis(max),
                ..crate::PluginLimits::default()
            };
            for consecutive in (0..40).chain([u32::MAX]) {
                let old = if consecutive < 2 {
                    Duration::ZERO
                } else {
                    let doublings = (consecutive - 2).min(20);
                    limits
                        .fault_backoff
                        .saturating_mul(1u32 << doublings)
                        .min(limits.fault_backoff_max)
                };
                assert_eq!(
                    limits.backoff_after(consecutive),
                    old,
                    "limits {first} ms, {max} ms, {consecutive}"
                );
            }
        }
    }
}
