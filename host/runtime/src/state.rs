//! What a plugin's `Store` holds: the identity used to tag logs and errors, the
//! capabilities granted to it, its resource limiter, and a locked-down WASI context.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::imports::HttpContext;
use super::limits::PluginLimits;
use crate::capabilities::Grants;
use crate::error::PluginId;

/// Stderr lines kept for fault reports.
const STDERR_LINES_KEPT: usize = 3;

/// Counts the log lines and bytes a plugin may still write in the current call; shared by
/// the `log` import and the stdout/stderr streams so neither can flood the host log. The
/// budget is renewed at the start of every call, so a long-lived instance is never muted
/// for good, and a flood within one call costs at most one budget.
#[derive(Debug)]
pub(crate) struct LogBudget {
    lines_per_call: u64,
    bytes_per_call: u64,
    remaining_lines: AtomicU64,
    remaining_bytes: AtomicU64,
    dropped_in_call: AtomicU64,
    /// The last lines the guest wrote to stderr (a panic message, usually), kept so a
    /// trap can be reported with the guest's own words.
    last_stderr: Mutex<VecDeque<String>>,
}

impl LogBudget {
    pub(crate) fn new(lines_per_call: u64, bytes_per_call: u64) -> Self {
        LogBudget {
            lines_per_call,
            bytes_per_call,
            remaining_lines: AtomicU64::new(lines_per_call),
            remaining_bytes: AtomicU64::new(bytes_per_call),
            dropped_in_call: AtomicU64::new(0),
            last_stderr: Mutex::new(VecDeque::new()),
        }
    }

    /// Renews the budget for a new call.
    pub(crate) fn begin_call(&self) {
        self.remaining_lines
            .store(self.lines_per_call, Ordering::Relaxed);
        self.remaining_bytes
            .store(self.bytes_per_call, Ordering::Relaxed);
        self.dropped_in_call.store(0, Ordering::Relaxed);
    }

    /// Takes one line of `bytes` from the budget; false (and counted) when it is spent.
    pub(crate) fn take(&self, bytes: usize) -> bool {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let spend = |budget: &AtomicU64, amount: u64| {
            budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    n.checked_sub(amount)
                })
                .is_ok()
        };
        let taken = spend(&self.remaining_lines, 1) && spend(&self.remaining_bytes, bytes);
        if !taken {
            self.dropped_in_call.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Takes what the guest last said on stderr, without Rust's backtrace hint.
    pub(crate) fn take_last_stderr(&self) -> Option<String> {
        let lines = std::mem::take(&mut *self.last_stderr.lock().ok()?);
        let said: Vec<String> = lines
            .into_iter()
            .filter(|l| !l.starts_with("note: run with"))
            .collect();
        (!said.is_empty()).then(|| said.join(" "))
    }

    fn remember_stderr(&self, line: &str) {
        if let Ok(mut last) = self.last_stderr.lock() {
            if last.len() == STDERR_LINES_KEPT {
                last.pop_front();
            }
            last.push_back(line.to_string());
        }
    }

    /// Lines refused in the current (or last) call.
    pub(crate) fn dropped_in_call(&self) -> u64 {
        self.dropped_in_call.load(Ordering::Relaxed)
    }

    /// The per-call budget, for reports.
    pub(crate) fn lines_per_call(&self) -> u64 {
        self.lines_per_call
    }
}

/// Requests for capabilities the plugin was not granted, in the current call. Each is
/// logged as it happens; the runtime collects them after the call so the connector's
/// supervisor can show them to admins.
#[derive(Debug, Default)]
pub(crate) struct Denials {
    /// How many in this call.
    pub(crate) count: u64,
    /// The first few reasons of this call (each names the plugin and what it asked for).
    pub(crate) reasons: Vec<String>,
}

/// Denial reasons kept per call; the rest are only counted.
const DENIALS_KEPT: usize = 4;

/// Enforces the per-plugin memory and table caps and remembers why it refused growth.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Set when a memory growth was refused, so the fault can be named precisely.
    pub(crate) memory_exceeded: bool,
    /// The size of the instance's largest linear memory (memories only grow).
    largest_memory: usize,
    /// `largest_memory` when the instance was ready for its first call.
    memory_at_start: usize,
}

impl Limiter {
    fn new(limits: &PluginLimits) -> Self {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            instances: limits.instances,
            tables: limits.tables,
            memories: limits.memories,
            memory_exceeded: false,
            largest_memory: 0,
            memory_at_start: 0,
        }
    }

    /// Notes the memory the instance starts its calls with (after instantiation and
    /// configuration).
    pub(crate) fn ready(&mut self) {
        self.memory_at_start = self.largest_memory;
    }

    /// The instance's largest linear memory, when calls grew it past three quarters of
    /// the cap (see [`crate::retire_if_swollen`]). An instance that starts that large and
    /// stays so is left alone: replacing it would only start another one just as large,
    /// before every call.
    pub(crate) fn swollen(&self) -> Option<usize> {
        (self.largest_memory > self.memory_bytes / 4 * 3
            && self.largest_memory > self.memory_at_start)
            .then_some(self.largest_memory)
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            wasmtime::bail!(
                "memory cap of {} bytes reached (asked for {desired})",
                self.memory_bytes
            );
        }
        self.largest_memory = self.largest_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Measures one call's compute time: wall time since it started, less the time the host
/// spent waiting on the plugin's behalf (HTTP).
#[derive(Debug)]
pub(crate) struct CallClock {
    started: Instant,
    pub(crate) waited: Duration,
    budget: Duration,
}

impl CallClock {
    fn new(budget: Duration) -> Self {
        CallClock {
            started: Instant::now(),
            waited: Duration::ZERO,
            budget,
        }
    }

    /// Starts timing a new call with `budget` of compute time.
    pub(crate) fn start(&mut self, budget: Duration) {
        *self = CallClock::new(budget);
    }

    /// Whether the call has used up its compute budget.
    pub(crate) fn expired(&self) -> bool {
        self.started.elapsed().saturating_sub(self.waited) >= self.budget
    }
}

/// The data of every plugin `Store`.
pub(crate) struct PluginState {
    pub(crate) plugin: Arc<PluginId>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) http: HttpContext,
    pub(crate) call_clock: CallClock,
    /// The instance's calls keep the thread until they end or time out instead of
    /// yielding at every epoch tick (a policy linked with the standard streams alone, on
    /// the fast path): its `route` is called without a fiber.
    pub(crate) never_yields: bool,
    pub(crate) limiter: Limiter,
    pub(crate) log_budget: Arc<LogBudget>,
    pub(crate) denials: Denials,
    /// The platform answered this call's request with another API version than it asked.
    pub(crate) api_version_served: Option<String>,
    /// Platform events the plugin said it ignored in this call, by reason.
    pub(crate) ignored: std::collections::BTreeMap<String, u64>,
    /// What the `current-conversation` import answers (a 0.3 routing policy, during
    /// `route`).
    pub(crate) current: crate::flat_route::Current,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl PluginState {
    pub(crate) fn new(
        plugin: Arc<PluginId>,
        grants: Arc<Grants>,
        http: HttpContext,
        limits: &PluginLimits,
    ) -> Self {
        let log_budget = Arc::new(LogBudget::new(limits.log_lines, limits.log_bytes));
        // No files, no environment, no arguments, no sockets, no name lookups: only the
        // contract's imports reach the outside. Output goes to the host log, tagged.
        let wasi = WasiCtxBuilder::new()
            .stdout(LogOutput {
                plugin: plugin.clone(),
                stream: "stdout",
                budget: log_budget.clone(),
            })
            .stderr(LogOutput {
                plugin: plugin.clone(),
                stream: "stderr",
                budget: log_budget.clone(),
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PluginState {
            http,
            call_clock: CallClock::new(limits.call_deadline),
            never_yields: false,
            limiter: Limiter::new(limits),
            plugin,
            grants,
            log_budget,
            denials: Denials::default(),
            api_version_served: None,
            ignored: std::collections::BTreeMap::new(),
            current: crate::flat_route::Current::default(),
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// A writer of the guest's `stream` (`stdout` or `stderr`) into the host log.
    pub(crate) fn line_writer(&self, stream: &'static str) -> LineWriter {
        LineWriter::new(self.plugin.clone(), stream, self.log_budget.clone())
    }

    /// Records (and logs) a refused capability request; `reason` names the plugin.
    pub(crate) fn denied(&mut self, reason: &str) {
        tracing::warn!(plugin = %self.plugin, "capability denied: {reason}");
        self.denials.count += 1;
        if self.denials.reasons.len() < DENIALS_KEPT {
            self.denials.reasons.push(reason.to_string());
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A guest's stdout or stderr, written line by line into the host log.
struct LogOutput {
    plugin: Arc<PluginId>,
    stream: &'static str,
    budget: Arc<LogBudget>,
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(
            self.plugin.clone(),
            self.stream,
            self.budget.clone(),
        ))
    }
}

/// Longest line kept from guest output; the rest of an overlong line is cut.
const MAX_LINE: usize = 4096;

/// Cuts a guest's output into lines and logs each, tagged with the plugin and the stream,
/// while the call's log budget lasts.
pub(crate) struct LineWriter {
    plugin: Arc<PluginId>,
    stream: &'static str,
    budget: Arc<LogBudget>,
    pending: Vec<u8>,
}

impl LineWriter {
    fn new(plugin: Arc<PluginId>, stream: &'static str, budget: Arc<LogBudget>) -> Self {
        LineWriter {
            plugin,
            stream,
            budget,
            pending: Vec::new(),
        }
    }

    /// Takes `buf`, logging every line it completes.
    pub(crate) fn write(&mut self, buf: &[u8]) {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else if self.pending.len() < MAX_LINE {
                self.pending.push(byte);
            }
        }
    }

    /// Logs the line left unfinished, if any.
    pub(crate) fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending)
            .trim_end()
            .to_string();
        self.pending.clear();
        if self.stream == "stderr" && !line.is_empty() {
            self.budget.remember_stderr(&line);
        }
        if self.budget.take(line.len()) {
            tracing::info!(target: "centralino::plugin", plugin = %self.plugin, stream = self.stream, "{line}");
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().finish();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter as _;

    use super::Limiter;
    use crate::PluginLimits;

    fn limiter(cap: usize) -> Limiter {
        Limiter::new(&PluginLimits {
            memory_bytes: cap,
            ..PluginLimits::default()
        })
    }

    #[test]
    fn an_instance_is_swollen_only_when_its_calls_grew_it_past_three_quarters_of_the_cap() {
        let mut small = limiter(1000);
        assert!(small.memory_growing(0, 100, None).unwrap());
        small.ready();
        assert!(small.memory_growing(100, 750, None).unwrap());
        assert_eq!(small.swollen(), None, "three quarters is not over them");
        assert!(small.memory_growing(750, 751, None).unwrap());
        assert_eq!(small.swollen(), Some(751));

        // Started over three quarters: left alone until a call grows it.
        let mut big = limiter(1000);
        assert!(big.memory_growing(0, 900, None).unwrap());
        big.ready();
        assert_eq!(big.swollen(), None);
        assert!(big.memory_growing(900, 901, None).unwrap());
        assert_eq!(big.swollen(), Some(901));
    }
}
