//! The engine's sense of time, injectable so tests and replays run on simulated time.
//!
//! Every timestamp the routing engine stores or hands to a policy comes from one
//! [`Clock`]. A host uses [`SystemClock`]; tests and `centralino route replay` use a
//! [`ManualClock`] they move forward themselves, so a simulated day takes milliseconds and
//! no test ever sleeps.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of the current time in milliseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::clock::now_ms()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test keeps one
/// handle and gives another to the engine.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Moves to `ms`. Moving backwards is allowed (a replay may restart) but the engine
    /// assumes time does not go back while it runs.
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }

    /// Moves forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_a_manual_clock_share_the_time() {
        let clock = ManualClock::new(1_000);
        let engine_side: Arc<dyn Clock> = Arc::new(clock.clone());
        clock.advance(Duration::from_secs(90));
        assert_eq!(engine_side.now_ms(), 91_000);
        clock.set(5);
        assert_eq!(engine_side.now_ms(), 5);
    }
}
