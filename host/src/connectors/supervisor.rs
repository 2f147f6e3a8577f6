//! Fault counting, backoff and the circuit of one connector, and the counters its health
//! shows. Pure bookkeeping: no plugin call and no `await` happens under its lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::health::{Circuit, Incident};
use crate::clock::Clock;
use crate::error::{Error, Fault};
use crate::runtime::{CallNotes, PluginLimits};

/// Fault counting, backoff and the circuit of one connector.
#[derive(Debug)]
pub(super) struct Supervisor {
    open_after: u32,
    limits: PluginLimits,
    pub(super) consecutive: u32,
    pub(super) faults: u64,
    pub(super) refused: u64,
    /// While backing off: when calls may go through again (monotonic, and for display).
    pub(super) retry_at: Option<(Instant, u64)>,
    pub(super) opened_at_ms: Option<u64>,
    pub(super) last_fault: Option<Incident>,
    pub(super) instances_started: u64,
    pub(super) denials: u64,
    pub(super) last_denial: Option<Incident>,
    pub(super) rejections: u64,
    pub(super) last_rejection: Option<Incident>,
    pub(super) log_lines_dropped: u64,
    pub(super) last_log_overflow: Option<Incident>,
    pub(super) api_version_served: Option<Incident>,
    pub(super) ignored: std::collections::BTreeMap<String, u64>,
    pub(super) reloads: u64,
    pub(super) reload_failures: u64,
    pub(super) last_reload: Option<Incident>,
    pub(super) last_reload_error: Option<Incident>,
    pub(super) calls_by_version: std::collections::BTreeMap<String, u64>,
    /// The host's clock, for the incidents' times (backoff waits are timed on `Instant`).
    clock: Option<Arc<dyn Clock>>,
}

impl Supervisor {
    pub(super) fn new(limits: &PluginLimits, clock: Option<Arc<dyn Clock>>) -> Self {
        Supervisor {
            clock,
            open_after: limits.circuit_open_after.max(1),
            limits: limits.clone(),
            consecutive: 0,
            faults: 0,
            refused: 0,
            retry_at: None,
            opened_at_ms: None,
            last_fault: None,
            instances_started: 0,
            denials: 0,
            last_denial: None,
            rejections: 0,
            last_rejection: None,
            log_lines_dropped: 0,
            last_log_overflow: None,
            api_version_served: None,
            ignored: std::collections::BTreeMap::new(),
            reloads: 0,
            reload_failures: 0,
            last_reload: None,
            last_reload_error: None,
            calls_by_version: std::collections::BTreeMap::new(),
        }
    }

    /// A new version took over: its limits apply, and the circuit closes (the new version
    /// just proved it starts and configures).
    pub(super) fn swapped(&mut self, limits: &PluginLimits, message: String) {
        self.open_after = limits.circuit_open_after.max(1);
        self.limits = limits.clone();
        self.reset();
        // A new version or new settings: whether the platform still serves another API
        // version is for the next responses to say.
        self.api_version_served = None;
        self.reloads += 1;
        self.last_reload = Some(Incident {
            at_ms: self.now_ms(),
            message,
        });
        self.last_reload_error = None;
    }

    /// The plugin rejected a webhook delivery as invalid input; `message` says why.
    pub(super) fn rejected(&mut self, message: String) {
        self.rejections = self.rejections.saturating_add(1);
        self.last_rejection = Some(Incident {
            at_ms: self.now_ms(),
            message,
        });
    }

    pub(super) fn reload_refused(&mut self, message: String) {
        self.reload_failures += 1;
        self.last_reload_error = Some(Incident {
            at_ms: self.now_ms(),
            message,
        });
    }

    /// `Err` (reason, retry after ms) when calls are refused right now; counts the refusal.
    pub(super) fn admit(&mut self) -> Result<(), (String, Option<u64>)> {
        if self.opened_at_ms.is_some() {
            self.refused += 1;
            return Err((
                format!(
                    "its circuit is open after {} consecutive faults (last: {}); an admin \
                     must reset it",
                    self.consecutive,
                    self.last_fault
                        .as_ref()
                        .map_or("unknown", |f| f.message.as_str())
                ),
                None,
            ));
        }
        if let Some((until, _)) = self.retry_at {
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                self.refused += 1;
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                return Err((
                    format!(
                        "backing off after {} consecutive faults; next attempt in {ms} ms",
                        self.consecutive
                    ),
                    Some(ms),
                ));
            }
        }
        Ok(())
    }

    /// Counts a call's outcome; returns what changed, for the log.
    pub(super) fn record<T>(&mut self, result: &Result<T, Error>) -> Option<Transition> {
        // A result refused by policy (over an output cap) is counted and shown, but it is
        // not the plugin failing: the same oversized delivery, redelivered by the platform
        // again and again, must not open the circuit for every good delivery after it.
        if let Err(
            error @ Error::Fault {
                fault: Fault::OutputLimit,
                ..
            },
        ) = result
        {
            self.faults += 1;
            self.last_fault = Some(Incident {
                at_ms: self.now_ms(),
                message: error.to_string(),
            });
            return None;
        }
        let Err(error @ Error::Fault { .. }) = result else {
            // The plugin answered (with a result or its own error): it works.
            let recovered = self.consecutive > 0;
            self.consecutive = 0;
            self.retry_at = None;
            return recovered.then_some(Transition::Recovered);
        };
        self.consecutive = self.consecutive.saturating_add(1);
        self.faults += 1;
        let now = self.now_ms();
        self.last_fault = Some(Incident {
            at_ms: now,
            message: error.to_string(),
        });
        if self.consecutive >= self.open_after {
            self.retry_at = None;
            self.opened_at_ms = Some(now);
            return Some(Transition::Opened);
        }
        let wait = self.limits.backoff_after(self.consecutive);
        if wait.is_zero() {
            return None;
        }
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let at = Instant::now();
        self.retry_at = Some((
            at.checked_add(wait).unwrap_or(at),
            now.saturating_add(wait_ms),
        ));
        Some(Transition::BackingOff(wait))
    }

    pub(super) fn absorb(&mut self, notes: CallNotes, new_instances: u64) {
        self.instances_started += new_instances;
        let now = self.now_ms();
        self.denials += notes.denials;
        self.log_lines_dropped += notes.log_lines_dropped;
        if let Some(message) = notes.last_denial {
            self.last_denial = Some(Incident {
                at_ms: now,
                message,
            });
        }
        if let Some(message) = notes.last_log_overflow {
            self.last_log_overflow = Some(Incident {
                at_ms: now,
                message,
            });
        }
        for (reason, count) in notes.ignored {
            crate::conventions::count_ignored(&mut self.ignored, &reason, count);
        }
        if let Some(message) = notes.api_version_served {
            self.api_version_served = Some(Incident {
                at_ms: now,
                message,
            });
        }
    }

    pub(super) fn circuit(&self) -> Circuit {
        if self.opened_at_ms.is_some() {
            Circuit::Open
        } else if self
            .retry_at
            .is_some_and(|(until, _)| until > Instant::now())
        {
            Circuit::BackingOff
        } else {
            Circuit::Closed
        }
    }

    pub(super) fn reset(&mut self) {
        self.consecutive = 0;
        self.retry_at = None;
        self.opened_at_ms = None;
    }
}

/// A change of a connector's circuit worth a log line.
pub(super) enum Transition {
    Recovered,
    BackingOff(Duration),
    Opened,
}

impl Supervisor {
    fn now_ms(&self) -> u64 {
        crate::clock::read(self.clock.as_ref())
    }
}
