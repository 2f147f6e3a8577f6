//! The host's sense of time, injected so tests and simulations run on time they move
//! themselves.
//!
//! Every decision the host makes on wall-clock time — is this retry due, has this lease
//! lapsed, is this event older than the retention, has this token expired, is this reply
//! past the platform's window — and every timestamp it stores reads one [`Clock`]: the
//! host's ([`crate::HostBuilder::clock`]), shared by its store, its background tasks, its
//! account book and the routing engines it builds. The default is [`SystemClock`].
//!
//! Tokio timers still pace the background tasks (how long the outbox sender idles between
//! passes, the pruner's hourly tick): they decide *when to look*, never *what is due*. A
//! test on a [`ManualClock`] moves the clock past a retry or a lease and lets the next pass
//! (at most a few milliseconds away) find it due, instead of waiting the real time.
//!
//! Not on this clock, on purpose: timestamps compared by another party against its own
//! real clock (the signature timestamp of the CRM webhook, the plugin's `clock` import),
//! and durations measured for metrics and limits (`Instant`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
        now_ms()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test keeps one
/// handle and gives another to the host or the engine.
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

    /// A clock standing at the system's time now, moving only when told to.
    #[cfg(any(test, feature = "test-support"))]
    pub fn at_system_time() -> Self {
        ManualClock::new(now_ms())
    }

    /// Moves to `ms`. Moving backwards is allowed (a replay may restart) but the engine
    /// assumes time does not go back while it runs.
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }

    /// Moves forward by `by`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn advance(&self, by: std::time::Duration) {
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

/// Now on `clock`, or on the system clock without one (a part given no clock).
pub(crate) fn read(clock: Option<&Arc<dyn Clock>>) -> u64 {
    clock.map_or_else(now_ms, |clock| clock.now_ms())
}

pub use centralino_runtime::calendar::now_ms;

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
