//! Per-plugin resource limits.

use std::time::Duration;

/// Limits applied to every instance of a plugin. The defaults suit a routing policy;
/// connectors that wait on platforms get a longer call deadline from their config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// Longest a single call may compute before it is cut off. Time the host spends on the
    /// plugin's behalf (waiting for HTTP responses) does not count. Default: 1 s.
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
    /// Timeout of one outgoing HTTP exchange; a plugin may ask for less. Default: 10 s.
    pub http_timeout: Duration,
    /// Largest response body handed to a plugin. Default: 4 MiB.
    pub http_max_response_bytes: usize,
    /// Retries of an idempotent request after a 5xx or a timeout. Default: 2.
    pub http_retries: u32,
    /// Longest the host holds a request while a platform rate-limit window is spent;
    /// beyond that the plugin gets `rate-limited` at once. Default: 2 s.
    pub http_rate_limit_hold: Duration,
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
            http_timeout: Duration::from_secs(10),
            http_max_response_bytes: 4 << 20,
            http_retries: 2,
            http_rate_limit_hold: Duration::from_secs(2),
        }
    }
}
