//! One call into a plugin, around the export itself: its budgets set before it
//! ([`begin_call`]), what it did short of a fault collected after it ([`end_call`],
//! [`CallNotes`]), an instance swollen past three quarters of its memory cap marked for
//! replacement ([`retire_if_swollen`]), its result held to the output caps
//! ([`check_output`]), and a failure named for the admin ([`fault`],
//! [`instantiate_fault`]). `channel` and `router` wrap every export call in these.

use std::time::Duration;

use wasmtime::{Store, Trap};

use crate::limits::{CheckOutput, OutputViolation};
use crate::state::{self, PluginState};
use crate::{Error, Fault, PluginId, PluginLimits};

/// Starts the compute budget of one call and renews its log budget.
pub(crate) fn begin_call(store: &mut Store<PluginState>, budget: Duration) {
    let state = store.data_mut();
    state.call_clock.start(budget);
    state.log_budget.begin_call();
    state.denials = state::Denials::default();
    state.api_version_served = None;
    state.ignored.clear();
    store.set_epoch_deadline(1);
}

/// Collects what a finished call (successful or not) did that admins should hear about.
pub(crate) fn end_call(store: &mut Store<PluginState>, function: &'static str) -> CallNotes {
    let state = store.data_mut();
    let dropped = state.log_budget.dropped_in_call();
    // The common call: nothing to report, and nothing to take out of the state.
    if dropped == 0
        && state.denials.count == 0
        && state.api_version_served.is_none()
        && state.ignored.is_empty()
    {
        return CallNotes::default();
    }
    let denials = std::mem::take(&mut state.denials);
    let mut notes = CallNotes {
        denials: denials.count,
        last_denial: denials.reasons.last().cloned(),
        log_lines_dropped: dropped,
        last_log_overflow: None,
        api_version_served: state.api_version_served.take(),
        ignored: std::mem::take(&mut state.ignored),
    };
    if dropped > 0 {
        let report = format!(
            "plugin {} wrote more log than its budget of {} lines per call allows in \
             `{function}` (caps: log_lines, log_bytes); {dropped} lines dropped",
            state.plugin,
            state.log_budget.lines_per_call()
        );
        tracing::warn!(plugin = %state.plugin, function, dropped, "{report}");
        notes.last_log_overflow = Some(report);
    }
    notes
}

/// Whether the instance behind `store` should be replaced before its next call: its linear
/// memory grew past three quarters of its cap. Memory never shrinks, so a plugin whose
/// heap creeps up call after call (a leak, or a language runtime whose collector keeps
/// what it freed) would otherwise fault mid-call at the cap, losing that call's work; a
/// fresh instance between calls costs only a start. Logs the figures when it says yes.
pub(crate) fn retire_if_swollen(store: &Store<PluginState>, function: &'static str) -> bool {
    let state = store.data();
    let Some(bytes) = state.limiter.swollen() else {
        return false;
    };
    tracing::info!(
        plugin = %state.plugin,
        function,
        memory_bytes = bytes,
        "plugin {}: linear memory at {} KiB after `{function}`, over three quarters of its \
         cap (limits.memory_bytes); the instance is replaced before the next call",
        state.plugin,
        bytes >> 10
    );
    true
}

/// What calls did that an admin should hear about although the calls themselves went on:
/// capability requests the host refused, log lines over the budget. Accumulated per
/// plugin instance holder across instance replacements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallNotes {
    /// Capability requests refused: a host off the allow-list, a credential or secret not
    /// granted.
    pub denials: u64,
    /// The last refused request; it names the plugin and what it asked for.
    pub last_denial: Option<String>,
    /// Log lines dropped over the per-call budget.
    pub log_lines_dropped: u64,
    /// The last log overflow; it names the plugin, the call and the cap.
    pub last_log_overflow: Option<String>,
    /// The platform answered with another API version than the request asked for (Graph's
    /// `facebook-api-version`); what to tell the admin.
    pub api_version_served: Option<String>,
    /// Platform events the plugin ignored on purpose, by the reason it gave (a
    /// `centralino:ignored reason=…` log line; docs/contract-versioning.md).
    pub ignored: std::collections::BTreeMap<String, u64>,
}

impl CallNotes {
    /// Adds `other` (newer) to these notes.
    pub fn absorb(&mut self, other: CallNotes) {
        self.denials += other.denials;
        self.log_lines_dropped += other.log_lines_dropped;
        if other.last_denial.is_some() {
            self.last_denial = other.last_denial;
        }
        if other.last_log_overflow.is_some() {
            self.last_log_overflow = other.last_log_overflow;
        }
        if other.api_version_served.is_some() {
            self.api_version_served = other.api_version_served;
        }
        // Most calls ignore nothing; an empty map's iterator still costs ~80 instructions.
        if !other.ignored.is_empty() {
            for (reason, count) in other.ignored {
                crate::conventions::count_ignored(&mut self.ignored, &reason, count);
            }
        }
    }

    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.denials == 0
            && self.log_lines_dropped == 0
            && self.api_version_served.is_none()
            && self.ignored.is_empty()
    }
}

/// Checks a call's result against the output caps; a result over a cap becomes an
/// [`Fault::OutputLimit`] naming the plugin and the cap.
pub(crate) fn check_output<T: CheckOutput>(
    plugin: &PluginId,
    function: &'static str,
    value: &T,
    limits: &PluginLimits,
) -> Result<(), Error> {
    value.check_output(limits).map_err(|OutputViolation(detail)| {
        tracing::warn!(plugin = %plugin, function, fault = %Fault::OutputLimit, "{detail}; result refused, instance discarded");
        Error::Fault {
            plugin: plugin.clone(),
            function,
            fault: Fault::OutputLimit,
            detail,
        }
    })
}

/// Turns a failed call into an [`Error::Fault`], naming what happened.
pub(crate) fn fault(
    store: &Store<PluginState>,
    function: &'static str,
    error: &wasmtime::Error,
) -> Error {
    let state = store.data();
    let kind = if state.limiter.memory_exceeded {
        Fault::MemoryLimit
    } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        Fault::Deadline
    } else {
        Fault::Trap
    };
    let mut detail = error.root_cause().to_string();
    if let Some(said) = state.log_budget.take_last_stderr() {
        detail = format!("{detail} (guest stderr: {said})");
    }
    tracing::warn!(plugin = %state.plugin, function, fault = %kind, "{detail}; instance discarded");
    Error::Fault {
        plugin: (*state.plugin).clone(),
        function,
        fault: kind,
        detail,
    }
}

pub(crate) fn instantiate_fault(plugin: &PluginId, error: &wasmtime::Error) -> Error {
    Error::Fault {
        plugin: plugin.clone(),
        function: "instantiate",
        fault: Fault::Instantiate,
        detail: format!("{error:#}"),
    }
}
