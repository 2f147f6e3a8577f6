//! Per-plugin resource limits, and the checks of what a call returns.
//!
//! Three kinds of limit, all enforced by the host whatever the plugin does:
//!
//! - **while a call runs**: compute time (epoch deadline), linear memory, tables and
//!   instances (a [`wasmtime::ResourceLimiter`]), log volume (lines and bytes per call);
//! - **on what a call returns**: messages per call, text per message, total bytes. A result
//!   over a cap is *refused*, never truncated: the call becomes a
//!   [`Fault::OutputLimit`](crate::Fault::OutputLimit) naming the plugin and the cap, the
//!   instance is discarded, and nothing of the result is stored or acknowledged (a poll
//!   keeps its cursor; a webhook is answered 503 so the platform delivers it again).
//!   Truncating would silently drop customer messages; refusing makes the problem visible
//!   and loses nothing. The result is copied out of the guest before it is checked, so the
//!   guest's memory cap also bounds what that copy can cost the host.
//! - **on a connector that keeps faulting**: backoff and a circuit breaker, applied by the
//!   connector supervisor (the host's `connectors` module).
//!
//! Log lines over the per-call budget are the exception to "refuse": they are dropped and
//! counted (and reported once per call), because the call's result is still good and
//! throwing it away would lose messages over a chatty plugin.

use std::time::Duration;

use crate::types::{Message, PollResult, Receipt, RoutingDecision, WebhookOutcome};

/// Limits applied to every instance of a plugin. The defaults suit a routing policy;
/// connectors that wait on platforms get a longer call deadline from their config.
///
/// Every default is safe for a plugin nobody has reviewed.
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
    /// Log lines (log import plus stdout/stderr) one call may write; further lines are
    /// dropped, counted and reported once. Default: 10,000.
    pub log_lines: u64,
    /// Log bytes one call may write, counted like `log_lines`. Default: 1 MiB.
    pub log_bytes: u64,
    /// Most messages one `poll` or `handle-webhook` call may return (receipts are counted
    /// separately against the same cap). Default: 1,000.
    pub max_messages_per_call: usize,
    /// Longest message text, in Unicode scalar values. Default: 65,536.
    pub max_text_chars: usize,
    /// Most bytes of text and data in one call's result (message fields, receipts, the
    /// webhook response, cursors, a routing decision's reason). Default: 8 MiB.
    pub max_output_bytes: usize,
    /// Timeout of one outgoing HTTP exchange; a plugin may ask for less. Default: 10 s.
    pub http_timeout: Duration,
    /// Largest response body handed to a plugin. Default: 4 MiB.
    pub http_max_response_bytes: usize,
    /// Retries of an idempotent request after a 5xx or a timeout. Default: 2.
    pub http_retries: u32,
    /// Longest the host holds a request while a platform rate-limit window is spent;
    /// beyond that the plugin gets `rate-limited` at once. Default: 2 s.
    pub http_rate_limit_hold: Duration,
    /// Consecutive faults after which a connector's circuit opens: its calls are refused
    /// until an admin resets it. Default: 5.
    pub circuit_open_after: u32,
    /// Pause after the second consecutive fault; it doubles with every further one.
    /// (The first fault is retried at once, on a fresh instance.) Default: 1 s.
    pub fault_backoff: Duration,
    /// Longest pause between attempts while backing off. Default: 60 s.
    pub fault_backoff_max: Duration,
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
            log_bytes: 1 << 20,
            max_messages_per_call: 1_000,
            max_text_chars: 65_536,
            max_output_bytes: 8 << 20,
            http_timeout: Duration::from_secs(10),
            http_max_response_bytes: 4 << 20,
            http_retries: 2,
            http_rate_limit_hold: Duration::from_secs(2),
            circuit_open_after: 5,
            fault_backoff: Duration::from_secs(1),
            fault_backoff_max: Duration::from_secs(60),
        }
    }
}

impl PluginLimits {
    /// How long to refuse calls after `consecutive` faults in a row: nothing after the
    /// first, then `fault_backoff` doubling up to `fault_backoff_max` (at most 2²⁰ times
    /// `fault_backoff`), by the host's one retry policy (`Backoff`).
    pub fn backoff_after(&self, consecutive: u32) -> Duration {
        if consecutive < 2 {
            return Duration::ZERO;
        }
        let doublings = (consecutive - 2).min(20);
        crate::retry::Backoff::new(self.fault_backoff, self.fault_backoff_max)
            .delay(u64::from(doublings))
    }
}

/// A result over one of the output caps: which cap, and by how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutputViolation(pub(crate) String);

/// Checks a call's result against the output caps of [`PluginLimits`].
pub(crate) trait CheckOutput {
    /// `Err` names the first cap the result exceeds.
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation>;
}

/// Adds up the bytes of a result and stops at the first cap exceeded.
struct Meter<'a> {
    limits: &'a PluginLimits,
    bytes: usize,
}

impl<'a> Meter<'a> {
    fn new(limits: &'a PluginLimits) -> Self {
        Meter { limits, bytes: 0 }
    }

    fn add(&mut self, bytes: usize) -> Result<(), OutputViolation> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_output_bytes {
            return Err(OutputViolation(format!(
                "returned more than {} bytes in one call (cap: max_output_bytes)",
                self.limits.max_output_bytes
            )));
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), OutputViolation> {
        self.add(text.len())
    }

    fn option(&mut self, text: Option<&String>) -> Result<(), OutputViolation> {
        self.add(text.map_or(0, String::len))
    }

    fn pairs(&mut self, pairs: &[(String, String)]) -> Result<(), OutputViolation> {
        for (name, value) in pairs {
            self.add(name.len().saturating_add(value.len()))?;
        }
        Ok(())
    }

    fn count(&self, what: &str, n: usize) -> Result<(), OutputViolation> {
        let cap = self.limits.max_messages_per_call;
        if n > cap {
            return Err(OutputViolation(format!(
                "returned {n} {what} in one call; the cap is {cap} (max_messages_per_call)"
            )));
        }
        Ok(())
    }

    fn messages(&mut self, messages: &[Message]) -> Result<(), OutputViolation> {
        self.count("messages", messages.len())?;
        for (index, m) in messages.iter().enumerate() {
            let chars = m.text.chars().count();
            if chars > self.limits.max_text_chars {
                return Err(OutputViolation(format!(
                    "returned a message (#{index}, external id `{}`) with {chars} characters \
                     of text; the cap is {} (max_text_chars)",
                    clip(&m.external_id),
                    self.limits.max_text_chars
                )));
            }
            self.text(&m.external_id)?;
            self.text(&m.account)?;
            self.text(&m.conversation_key)?;
            self.text(&m.author.id)?;
            self.option(m.author.handle.as_ref())?;
            self.option(m.author.display_name.as_ref())?;
            self.text(&m.text)?;
            self.option(m.in_reply_to.as_ref())?;
            for a in &m.attachments {
                self.text(&a.kind)?;
                self.option(a.url.as_ref())?;
                self.option(a.mime_type.as_ref())?;
                self.option(a.description.as_ref())?;
            }
            self.pairs(&m.extra)?;
        }
        Ok(())
    }

    fn receipts(&mut self, receipts: &[Receipt]) -> Result<(), OutputViolation> {
        self.count("receipts", receipts.len())?;
        for r in receipts {
            self.text(&r.account)?;
            self.text(&r.external_id)?;
        }
        Ok(())
    }
}

/// The start of an id a plugin made up, short enough for a log line.
fn clip(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

impl CheckOutput for PollResult {
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation> {
        let mut meter = Meter::new(limits);
        meter.option(self.cursor.as_ref())?;
        meter.messages(&self.messages)
    }
}

impl CheckOutput for WebhookOutcome {
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation> {
        let mut meter = Meter::new(limits);
        meter.add(self.response.body.len())?;
        meter.pairs(&self.response.headers)?;
        meter.messages(&self.messages)?;
        meter.receipts(&self.receipts)
    }
}

impl CheckOutput for crate::types::Sent {
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation> {
        Meter::new(limits).text(&self.external_id)
    }
}

impl CheckOutput for crate::types::ConnectorDescription {
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation> {
        let mut meter = Meter::new(limits);
        meter.text(&self.channel)?;
        meter.text(&self.summary)
    }
}

impl CheckOutput for RoutingDecision {
    fn check_output(&self, limits: &PluginLimits) -> Result<(), OutputViolation> {
        let mut meter = Meter::new(limits);
        meter.text(&self.reason)?;
        match &self.action {
            crate::types::RoutingAction::Assign(id) => meter.text(id),
            crate::types::RoutingAction::Narrow(ids) => {
                meter.count("operators", ids.len())?;
                ids.iter().try_for_each(|id| meter.text(id))
            }
            crate::types::RoutingAction::Enqueue | crate::types::RoutingAction::Pass => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{MessageKind, Person};

    fn message(text: &str) -> Message {
        Message {
            external_id: "1".to_string(),
            account: "a".to_string(),
            conversation_key: "k".to_string(),
            author: Person {
                id: "p".to_string(),
                handle: None,
                display_name: None,
            },
            text: text.to_string(),
            kind: MessageKind::PublicPost,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 0,
            extra: Vec::new(),
        }
    }

    fn poll(messages: Vec<Message>) -> PollResult {
        PollResult {
            messages,
            cursor: None,
            next_poll_after_ms: None,
        }
    }

    #[test]
    fn backoff_starts_at_the_second_fault_and_doubles_up_to_the_cap() {
        let limits = PluginLimits {
            fault_backoff: Duration::from_secs(1),
            fault_backoff_max: Duration::from_secs(5),
            ..PluginLimits::default()
        };
        let waits: Vec<u64> = (0..7).map(|n| limits.backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 5, 5]);
        assert_eq!(limits.backoff_after(u32::MAX).as_secs(), 5);
    }

    #[test]
    fn a_result_within_the_caps_passes() {
        let limits = PluginLimits::default();
        assert_eq!(poll(vec![message("ciao")]).check_output(&limits), Ok(()));
    }

    #[test]
    fn too_many_messages_name_the_cap() {
        let limits = PluginLimits {
            max_messages_per_call: 2,
            ..PluginLimits::default()
        };
        let result = poll(vec![message("a"), message("b"), message("c")]);
        let OutputViolation(why) = result.check_output(&limits).unwrap_err();
        assert!(why.contains("returned 3 messages"), "{why}");
        assert!(why.contains("max_messages_per_call"), "{why}");
    }

    #[test]
    fn text_is_counted_in_characters_not_bytes() {
        let limits = PluginLimits {
            max_text_chars: 4,
            ..PluginLimits::default()
        };
        assert_eq!(poll(vec![message("èèèè")]).check_output(&limits), Ok(()));
        let OutputViolation(why) = poll(vec![message("èèèèè")])
            .check_output(&limits)
            .unwrap_err();
        assert!(why.contains("5 characters"), "{why}");
        assert!(why.contains("max_text_chars"), "{why}");
    }

    #[test]
    fn total_bytes_include_every_field() {
        let limits = PluginLimits {
            max_output_bytes: 64,
            ..PluginLimits::default()
        };
        let mut m = message("short");
        m.extra = vec![("k".to_string(), "v".repeat(100))];
        let OutputViolation(why) = poll(vec![m]).check_output(&limits).unwrap_err();
        assert!(why.contains("max_output_bytes"), "{why}");
    }

    #[test]
    fn long_ids_are_clipped_in_reports() {
        assert_eq!(clip("abc"), "abc");
        assert_eq!(clip(&"x".repeat(100)).chars().count(), 41);
    }
}
