//! Log lines a flood would repeat: the first is written, the rest are counted and summed
//! up in the next line written, at most one line per interval.
//!
//! Anyone can send a webhook an unsigned request, and each is refused; a WARN line for
//! each would let a flood fill the disk and bury everything else in the log. Every refusal
//! is still counted in `centralino_webhooks_rejected_total`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a throttled line is written at most.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// One kind of line, throttled.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last line was written.
    logged_at: Option<Instant>,
    /// Events held back since.
    held_back: u64,
}

impl Throttle {
    pub(crate) fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            state: Mutex::new(State::default()),
        }
    }

    /// One more event at `now`: `Some(n)` when its line is to be written, `n` being how
    /// many events were held back since the last line; `None` when it is held back.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.logged_at {
            Some(at) if now.saturating_duration_since(at) < self.interval => {
                state.held_back = state.held_back.saturating_add(1);
                None
            }
            _ => {
                state.logged_at = Some(now);
                Some(std::mem::take(&mut state.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Throttle;

    #[test]
    fn the_first_event_is_logged_then_one_line_per_interval_counts_the_rest() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(throttle.admit(start), Some(0));
        for n in 1..=1000 {
            assert_eq!(throttle.admit(start + Duration::from_millis(n)), None);
        }
        assert_eq!(throttle.admit(start + Duration::from_secs(60)), Some(1000));
        assert_eq!(throttle.admit(start + Duration::from_secs(61)), None);
        assert_eq!(throttle.admit(start + Duration::from_secs(200)), Some(1));
    }
}
