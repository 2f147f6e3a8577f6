//! Per-plugin resource limits.

use std::time::Duration;

/// Limits applied to every instance of a plugin. The defaults suit a routing policy;
/// connectors that wait on platforms get a longer call deadline from their config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// Longest a single call may run before it is cut off. Default: 1 s.
    pub call_deadline: Duration,
    /// Linear memory cap per instance, in bytes. Default: 64 MiB.
    pub memory_bytes: usize,
    /// Most elements in any table. Default: 20,000.
    pub table_elements: usize,
    /// Most core instances a component may create. Default: 32.
    pub instances: usize,
    /// Most tables. Default: 32.
    pub tables: usize,
    /// Most linear memories. Default: 4.
    pub memories: usize,
    /// Log lines (log import plus stdout/stderr) an instance may write before further lines
    /// are dropped and counted. Default: 10,000.
    pub log_lines: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            call_deadline: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 32,
            tables: 32,
            memories: 4,
            log_lines: 10_000,
        }
    }
}
