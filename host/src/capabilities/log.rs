//! `centralino:plugin/log`: plugin log lines into the host log, tagged and capped.

use crate::runtime::bindings::v0_1::log::{Host, Level};
use crate::runtime::state::PluginState;

impl Host for PluginState {
    fn write(&mut self, level: Level, message: String) {
        if !self.log_budget.take() {
            return;
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
