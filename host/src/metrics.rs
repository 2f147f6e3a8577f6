//! Prometheus metrics: what the host counts while it works, and the text exposition
//! served at `/metrics` on the admin listener.
//!
//! Two kinds of series:
//!
//! - **counted where things happen**, in [`Metrics`], which the [`Host`]
//!   owns: messages in, replies out, webhooks rejected, routing decision latency,
//!   first-response times;
//! - **read at scrape time** from the state the host keeps anyway (connector health,
//!   routing statistics, the queue, operators' presence), so nothing is counted twice.
//!
//! Every series carries its `tenant`; labels come from the configuration (tenants,
//! connectors, accounts), never from what a client sent, so a stranger posting to the
//! ingress cannot grow the label space. The exposition is written by hand (the text
//! format is small, and this keeps a dependency out of every CRM's build).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `centralino_messages_received_total` | counter | tenant, connector, account |
//! | `centralino_messages_duplicate_total` | counter | tenant, connector |
//! | `centralino_webhooks_rejected_total` | counter | tenant, connector, status |
//! | `centralino_replies_sent_total` | counter | tenant, connector, account, sender (`operator`, `auto`) |
//! | `centralino_reply_failures_total` | counter | tenant, connector, outcome (`retry`, `failed`) |
//! | `centralino_rate_limited_total` | counter | tenant, connector |
//! | `centralino_routing_decision_seconds` | histogram | tenant |
//! | `centralino_webhook_commit_deliveries` | histogram | tenant |
//! | `centralino_first_response_seconds` | histogram | tenant, connector |
//! | `centralino_brand_first_response_seconds` | histogram | tenant, brand, operator |
//! | `centralino_handling_seconds` | histogram | tenant, brand, operator |
//! | `centralino_service_level_total` | counter | tenant, brand, step (`at-risk`, `breached`) |
//! | `centralino_routing_decisions_total` | counter | tenant |
//! | `centralino_routing_assignments_total` | counter | tenant |
//! | `centralino_routing_queued_total` | counter | tenant |
//! | `centralino_routing_offer_timeouts_total` | counter | tenant |
//! | `centralino_routing_stage_failures_total` | counter | tenant |
//! | `centralino_queue_depth` | gauge | tenant |
//! | `centralino_operators` | gauge | tenant, presence |
//! | `centralino_plugin_faults_total` | counter | tenant, connector, plugin |
//! | `centralino_plugin_restarts_total` | counter | tenant, connector, plugin |
//! | `centralino_plugin_refused_calls_total` | counter | tenant, connector, plugin |
//! | `centralino_capability_denials_total` | counter | tenant, connector, plugin |
//! | `centralino_connector_circuit` | gauge | tenant, connector, state |
//! | `centralino_events_ignored_total` | counter | tenant, connector, reason (as the plugin gave it: `echo`, `own-post`, `direct_message_indicate_typing_events`…) |
//! | `centralino_connector_api_version_warning` | gauge | tenant, connector, kind (`served`: the platform answered with another API version; `retirement`: the configured version is near or past its end of life) |
//! | `centralino_connector_enabled` | gauge | tenant, connector |
//! | `centralino_plugin_calls_total` | counter | tenant, connector, plugin (name@version) |
//! | `centralino_plugin_reloads_total` | counter | tenant, connector, outcome (`swapped`, `refused`) |
//! | `centralino_config_reloads_total` | counter | outcome (`applied`, `refused`) |
//! | `centralino_task_up` | gauge | task |
//! | `centralino_task_restarts_total` | counter | task |
//! | `centralino_outbox_replies` | gauge | tenant, state (`pending`, `due`, `sending`) |
//! | `centralino_outbox_oldest_seconds` | gauge | tenant |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::types::Presence;

/// Buckets of the routing decision latency, in seconds (a chain of wasm stages takes
/// well under a millisecond when healthy; its deadline is a second).
const DECISION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Buckets of the webhook deliveries made durable by one commit (at most 32 share one).
const COMMIT_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// Buckets of the first-response time, in seconds: from a minute to a day.
const FIRST_RESPONSE_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];

/// A counter family: one value per label set.
#[derive(Debug)]
struct Counter {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Counter {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn add(&self, labels: &[&str], by: u64) {
        let key = labels.iter().map(|l| (*l).to_string()).collect();
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *values.entry(key).or_default() += by;
    }

    pub(crate) fn render(&self, out: &mut Exposition) {
        out.family(self.name, self.help, "counter");
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for (key, value) in values.iter() {
            out.sample(self.name, &pairs(self.labels, key), *value as f64);
        }
    }
}

/// One histogram's buckets (non-cumulative counts), sum and count.
#[derive(Clone, Debug, Default)]
struct HistogramValue {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram family: one histogram per label set.
#[derive(Debug)]
struct Histogram {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    values: Mutex<BTreeMap<Vec<String>, HistogramValue>>,
}

impl Histogram {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        Histogram {
            name,
            help,
            labels,
            bounds,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn observe(&self, labels: &[&str], value: f64) {
        let key = labels.iter().map(|l| (*l).to_string()).collect();
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let entry = values.entry(key).or_insert_with(|| HistogramValue {
            buckets: vec![0; self.bounds.len()],
            ..HistogramValue::default()
        });
        if let Some(slot) = self.bounds.iter().position(|bound| value <= *bound)
            && let Some(bucket) = entry.buckets.get_mut(slot)
        {
            *bucket += 1;
        }
        entry.sum += value;
        entry.count += 1;
    }

    pub(crate) fn render(&self, out: &mut Exposition) {
        out.family(self.name, self.help, "histogram");
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let bucket_name = format!("{}_bucket", self.name);
        for (key, value) in values.iter() {
            let base = pairs(self.labels, key);
            let mut cumulative = 0;
            for (bound, count) in self.bounds.iter().zip(&value.buckets) {
                cumulative += count;
                let mut labels = base.clone();
                labels.push(("le", format_float(*bound)));
                out.sample(&bucket_name, &labels, cumulative as f64);
            }
            let mut labels = base.clone();
            labels.push(("le", "+Inf".to_string()));
            out.sample(&bucket_name, &labels, value.count as f64);
            out.sample(&format!("{}_sum", self.name), &base, value.sum);
            out.sample(&format!("{}_count", self.name), &base, value.count as f64);
        }
    }
}

fn pairs(names: &'static [&'static str], values: &[String]) -> Vec<(&'static str, String)> {
    names.iter().copied().zip(values.iter().cloned()).collect()
}

/// What the host counts as it works. The [`Host`] owns one; read it through
/// [`Host::metrics_text`].
#[derive(Debug)]
pub struct Metrics {
    messages_received: Counter,
    messages_duplicate: Counter,
    webhooks_rejected: Counter,
    replies_sent: Counter,
    reply_failures: Counter,
    rate_limited: Counter,
    decision_seconds: Histogram,
    commit_deliveries: Histogram,
    first_response_seconds: Histogram,
    brand_first_response_seconds: Histogram,
    handling_seconds: Histogram,
    service_levels: Counter,
    plugin_reloads: Counter,
    config_reloads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            messages_received: Counter::new(
                "centralino_messages_received_total",
                "Customer messages stored (duplicates excluded).",
                &["tenant", "connector", "account"],
            ),
            messages_duplicate: Counter::new(
                "centralino_messages_duplicate_total",
                "Customer messages delivered again and ignored (webhook redeliveries, overlapping polls).",
                &["tenant", "connector"],
            ),
            webhooks_rejected: Counter::new(
                "centralino_webhooks_rejected_total",
                "Webhook deliveries answered with a 4xx or 5xx status.",
                &["tenant", "connector", "status"],
            ),
            replies_sent: Counter::new(
                "centralino_replies_sent_total",
                "Replies the platform accepted: operators' and the host's automatic wait estimates.",
                &["tenant", "connector", "account", "sender"],
            ),
            reply_failures: Counter::new(
                "centralino_reply_failures_total",
                "Failed reply attempts: `retry` ones are tried again, `failed` ones are given up.",
                &["tenant", "connector", "outcome"],
            ),
            rate_limited: Counter::new(
                "centralino_rate_limited_total",
                "Replies the platform asked to slow down on (sent again after its wait).",
                &["tenant", "connector"],
            ),
            decision_seconds: Histogram::new(
                "centralino_routing_decision_seconds",
                "Time to place a customer message: the routing chain and the queue.",
                &["tenant"],
                DECISION_BUCKETS,
            ),
            commit_deliveries: Histogram::new(
                "centralino_webhook_commit_deliveries",
                "Webhook deliveries made durable by one commit of the store (SQLite, routed tenants): deliveries that arrive while another is written share its commit.",
                &["tenant"],
                COMMIT_BUCKETS,
            ),
            first_response_seconds: Histogram::new(
                "centralino_first_response_seconds",
                "Time from a conversation's first message to an operator's first reply reaching the platform.",
                &["tenant", "connector"],
                FIRST_RESPONSE_BUCKETS,
            ),
            brand_first_response_seconds: Histogram::new(
                "centralino_brand_first_response_seconds",
                "Time from a conversation's first message to its operator's first reply being queued, by brand (`none` without one) and operator.",
                &["tenant", "brand", "operator"],
                FIRST_RESPONSE_BUCKETS,
            ),
            handling_seconds: Histogram::new(
                "centralino_handling_seconds",
                "Time from a conversation's assignment to its resolution, by brand (`none` without one) and operator.",
                &["tenant", "brand", "operator"],
                FIRST_RESPONSE_BUCKETS,
            ),
            service_levels: Counter::new(
                "centralino_service_level_total",
                "Conversations that reached a step of their brand's first-response target: `at-risk`, `breached`.",
                &["tenant", "brand", "step"],
            ),
            plugin_reloads: Counter::new(
                "centralino_plugin_reloads_total",
                "Reloads of a connector's plugin: `swapped` ones took over, `refused` ones left the old version serving.",
                &["tenant", "connector", "outcome"],
            ),
            config_reloads: Counter::new(
                "centralino_config_reloads_total",
                "Reloads of centralino.toml: `applied`, or `refused` (invalid, nothing changed).",
                &["outcome"],
            ),
        }
    }
}

impl Metrics {
    /// A customer message was stored.
    pub(crate) fn message_received(&self, tenant: &str, connector: &str, account: &str) {
        self.messages_received.add(&[tenant, connector, account], 1);
    }

    /// A customer message had been stored before.
    pub(crate) fn message_duplicate(&self, tenant: &str, connector: &str) {
        self.messages_duplicate.add(&[tenant, connector], 1);
    }

    /// A webhook delivery was answered with `status` (counted when 4xx or 5xx).
    pub(crate) fn webhook_answered(&self, tenant: &str, connector: &str, status: u16) {
        if status >= 400 {
            self.webhooks_rejected
                .add(&[tenant, connector, &status.to_string()], 1);
        }
    }

    /// A reply reached the platform; `automatic` when the host wrote it (a wait estimate).
    pub(crate) fn reply_sent(&self, tenant: &str, connector: &str, account: &str, automatic: bool) {
        let sender = if automatic { "auto" } else { "operator" };
        self.replies_sent
            .add(&[tenant, connector, account, sender], 1);
    }

    /// A reply attempt failed; `retried` when it will be tried again.
    pub(crate) fn reply_failed(&self, tenant: &str, connector: &str, retried: bool) {
        let outcome = if retried { "retry" } else { "failed" };
        self.reply_failures.add(&[tenant, connector, outcome], 1);
    }

    /// The platform rate-limited a reply.
    pub(crate) fn rate_limited(&self, tenant: &str, connector: &str) {
        self.rate_limited.add(&[tenant, connector], 1);
    }

    /// The routing chain placed a conversation in `took`.
    pub(crate) fn routing_decision(&self, tenant: &str, took: Duration) {
        self.decision_seconds.observe(&[tenant], took.as_secs_f64());
    }

    /// One commit of the store made `deliveries` webhook deliveries durable.
    pub(crate) fn deliveries_committed(&self, tenant: &str, deliveries: usize) {
        self.commit_deliveries.observe(&[tenant], deliveries as f64);
    }

    /// An operator's first reply reached the platform `after` the conversation began.
    pub(crate) fn first_response(&self, tenant: &str, connector: &str, after: Duration) {
        self.first_response_seconds
            .observe(&[tenant, connector], after.as_secs_f64());
    }

    /// A connector's plugin was reloaded (`swapped`) or the candidate refused.
    /// An operator's first reply to a conversation of `brand` was queued `after` the
    /// customer's first message.
    pub(crate) fn brand_first_response(
        &self,
        tenant: &str,
        brand: Option<&str>,
        operator: &str,
        after: Duration,
    ) {
        self.brand_first_response_seconds.observe(
            &[tenant, brand.unwrap_or("none"), operator],
            after.as_secs_f64(),
        );
    }

    /// An operator resolved a conversation of `brand` `after` it was assigned.
    pub(crate) fn handled(&self, tenant: &str, brand: Option<&str>, operator: &str, after: Duration) {
        self.handling_seconds.observe(
            &[tenant, brand.unwrap_or("none"), operator],
            after.as_secs_f64(),
        );
    }

    /// A conversation reached a service-level step.
    pub(crate) fn service_level(&self, tenant: &str, brand: &str, step: &str) {
        self.service_levels.add(&[tenant, brand, step], 1);
    }

    pub(crate) fn plugin_reload(&self, tenant: &str, connector: &str, swapped: bool) {
        let outcome = if swapped { "swapped" } else { "refused" };
        self.plugin_reloads.add(&[tenant, connector, outcome], 1);
    }

    /// centralino.toml was reloaded (`applied`) or refused.
    pub(crate) fn config_reload(&self, applied: bool) {
        let outcome = if applied { "applied" } else { "refused" };
        self.config_reloads.add(&[outcome], 1);
    }

    pub(crate) fn render(&self, out: &mut Exposition) {
        for counter in [
            &self.messages_received,
            &self.messages_duplicate,
            &self.webhooks_rejected,
            &self.replies_sent,
            &self.reply_failures,
            &self.rate_limited,
            &self.plugin_reloads,
            &self.config_reloads,
        ] {
            counter.render(out);
        }
        self.decision_seconds.render(out);
        self.commit_deliveries.render(out);
        self.first_response_seconds.render(out);
        self.brand_first_response_seconds.render(out);
        self.handling_seconds.render(out);
        self.service_levels.render(out);
    }
}

/// The Prometheus text format (version 0.0.4), written family by family.
#[derive(Default)]
pub(crate) struct Exposition {
    pub(crate) text: String,
}

impl Exposition {
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_float(value));
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_float(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    format!("{value}")
}

/// How a presence is written in the API and in metric labels.
pub(crate) fn presence_name(presence: Presence) -> &'static str {
    match presence {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Offline => "offline",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.message_received("acme", "echo", "support");
        metrics.message_received("acme", "echo", "support");
        metrics.routing_decision("acme", Duration::from_micros(300));
        let mut out = Exposition::default();
        metrics.render(&mut out);
        let text = out.text;
        assert!(text.contains("# TYPE centralino_messages_received_total counter\n"));
        assert!(text.contains(
            "centralino_messages_received_total{tenant=\"acme\",connector=\"echo\",account=\"support\"} 2\n"
        ));
        assert!(text.contains(
            "centralino_routing_decision_seconds_bucket{tenant=\"acme\",le=\"0.00025\"} 0\n"
        ));
        assert!(text.contains(
            "centralino_routing_decision_seconds_bucket{tenant=\"acme\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "centralino_routing_decision_seconds_bucket{tenant=\"acme\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains("centralino_routing_decision_seconds_count{tenant=\"acme\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
