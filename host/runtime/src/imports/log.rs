//! `centralino:plugin/log`: plugin log lines into the host log, tagged and capped.

use crate::bindings::latest::log::{Host, Level};
use crate::state::PluginState;

/// Longest line written to the host log; the rest of a longer message is cut.
const MAX_LINE: usize = 4096;

impl Host for PluginState {
    fn write(&mut self, level: Level, mut message: String) {
        // Counted before the log budget, so a flood of lines cannot hide what was ignored.
        if let Some(reason) = crate::conventions::ignored_reason(&message) {
            crate::conventions::count_ignored(&mut self.ignored, reason, 1);
        }
        if !self.log_budget.take(message.len()) {
            return;
        }
        if message.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "centralino::plugin", %plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "centralino::plugin", %plugin, "{message}"),
            Level::Info => tracing::info!(target: "centralino::plugin", %plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "centralino::plugin", %plugin, "{message}"),
            Level::Error => tracing::error!(target: "centralino::plugin", %plugin, "{message}"),
        }
    }
}
