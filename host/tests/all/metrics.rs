//! `/metrics` on the admin listener, read by a Prometheus text-format parser (written
//! here, strict about what Prometheus itself refuses): the counters move when messages
//! arrive, webhooks are refused, routing decides and replies go out, per tenant.

use std::collections::BTreeMap;

use serde_json::json;

use crate::api::{ACME, ADMIN, Sidecar};
use crate::support::eventually;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: each family's type, and every sample.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the sample named `name` with exactly these labels; 0 when absent
    /// (a counter that has not moved yet).
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map_or(0.0, |s| s.value)
    }

    /// Samples of `name` whose labels include these.
    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other
            .parse()
            .map_err(|_| format!("`{other}` is not a value")),
    }
}

/// `{a="x",b="y"}` → labels, reading escapes (`\\`, `\"`, `\n`); returns the rest.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with `{`")?;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once('=').ok_or("a label needs `=`")?;
        let name = name.trim();
        if !is_label_name(name) {
            return Err(format!("`{name}` is not a label name"));
        }
        let mut chars = after
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".to_string()),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label `{name}` given twice"));
        }
        rest = &after[1 + end + 1..];
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        }
    }
}

/// Parses the text format, refusing what Prometheus would: bad names, samples of a
/// family with no `# TYPE` before them, a family typed twice, histograms whose buckets
/// are not cumulative or whose `+Inf` bucket is not the count.
pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    for (number, line) in text.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(fail(format!("`{name}` is not a metric name")));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(fail(format!("unknown type `{kind}`")));
                    }
                    if exposition
                        .types
                        .insert(name.to_string(), kind.to_string())
                        .is_some()
                    {
                        return Err(fail(format!("`{name}` typed twice")));
                    }
                }
                (Some("HELP"), Some(name), _) if !is_metric_name(name) => {
                    return Err(fail(format!("`{name}` is not a metric name")));
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("no value".to_string()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(fail(format!("`{name}` is not a metric name")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(&fail)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or_else(|| fail("no value".to_string()))?)
            .map_err(&fail)?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (exposition.types.get(base).map(String::as_str) == Some("histogram"))
                    .then_some(base)
            })
            .unwrap_or(name);
        if !exposition.types.contains_key(family) {
            return Err(fail(format!("`{name}` has no # TYPE before it")));
        }
        if exposition.types[family] == "counter" && value < 0.0 {
            return Err(fail("a counter below zero".to_string()));
        }
        exposition.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    check_histograms(&exposition)?;
    Ok(exposition)
}

fn check_histograms(exposition: &Exposition) -> Result<(), String> {
    for (family, kind) in &exposition.types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for sample in exposition.matching(&format!("{family}_bucket"), &[]) {
            let mut labels = sample.labels.clone();
            let le = labels
                .remove("le")
                .ok_or(format!("{family}: a bucket without `le`"))?;
            series
                .entry(labels)
                .or_default()
                .push((parse_value(&le)?, sample.value));
        }
        for (labels, buckets) in series {
            if !buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            {
                return Err(format!("{family}{labels:?}: buckets not cumulative"));
            }
            let count = exposition
                .samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && s.labels == labels)
                .ok_or(format!("{family}{labels:?}: no _count"))?;
            let last = buckets.last().ok_or("no buckets")?;
            if last.0 != f64::INFINITY || last.1 != count.value {
                return Err(format!("{family}{labels:?}: +Inf bucket is not the count"));
            }
        }
    }
    Ok(())
}

async fn scrape(sidecar: &Sidecar) -> Exposition {
    let answer = sidecar
        .raw(
            sidecar.admin,
            "GET",
            "/metrics",
            &[("authorization", &format!("Bearer {ADMIN}"))],
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    parse(&answer.text).unwrap_or_else(|e| panic!("{e}\n{}", answer.text))
}

#[tokio::test]
async fn metrics_parse_and_the_counters_move_per_tenant() {
    let sidecar = Sidecar::start().await;
    let received = "centralino_messages_received_total";
    let acme = [
        ("tenant", "acme"),
        ("connector", "echo"),
        ("account", "support"),
    ];
    let globex = [
        ("tenant", "globex"),
        ("connector", "echo"),
        ("account", "support"),
    ];
    let before = scrape(&sidecar).await;
    assert_eq!(before.types[received], "counter");
    assert_eq!(
        before.types["centralino_routing_decision_seconds"],
        "histogram"
    );
    assert_eq!(before.types["centralino_queue_depth"], "gauge");
    assert_eq!(before.value(received, &acme), 0.0);
    let online = [("tenant", "acme"), ("presence", "online")];
    assert_eq!(before.value("centralino_operators", &online), 2.0);
    let closed = [
        ("tenant", "acme"),
        ("connector", "echo"),
        ("state", "closed"),
    ];
    assert_eq!(before.value("centralino_connector_circuit", &closed), 1.0);

    // Two messages to acme (one delivered twice), a refused delivery, a stranger's
    // delivery to a connector that does not exist.
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    assert_eq!(sidecar.deliver("acme", "mario: il modem non va").await, 200);
    assert_eq!(sidecar.deliver("acme", "lucia: fibra lenta").await, 200);
    assert_eq!(sidecar.deliver("acme", "no colon here").await, 400);
    let stranger = sidecar
        .raw(
            sidecar.public,
            "POST",
            "/tenants/acme/webhooks/made-up",
            &[],
            Some("x: y"),
        )
        .await;
    assert_eq!(stranger.status, 404);

    let after = scrape(&sidecar).await;
    assert_eq!(after.value(received, &acme), 2.0);
    assert_eq!(after.value(received, &globex), 0.0, "nothing crosses");
    assert_eq!(
        after.value(
            "centralino_messages_duplicate_total",
            &[("tenant", "acme"), ("connector", "echo")]
        ),
        1.0
    );
    let rejected = "centralino_webhooks_rejected_total";
    assert_eq!(
        after.value(
            rejected,
            &[("tenant", "acme"), ("connector", "echo"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            rejected,
            &[("tenant", ""), ("connector", ""), ("status", "404")]
        ),
        1.0,
        "a stranger's made-up route is counted without its names"
    );
    assert!(
        after
            .matching(rejected, &[("connector", "made-up")])
            .is_empty()
    );
    let acme_tenant = [("tenant", "acme")];
    assert_eq!(
        after.value("centralino_routing_decisions_total", &acme_tenant),
        2.0
    );
    assert_eq!(
        after.value("centralino_routing_assignments_total", &acme_tenant),
        2.0
    );
    assert_eq!(
        after.value("centralino_routing_decision_seconds_count", &acme_tenant),
        2.0
    );
    assert_eq!(
        after.value(
            "centralino_routing_decisions_total",
            &[("tenant", "globex")]
        ),
        0.0
    );
    assert_eq!(after.value("centralino_queue_depth", &acme_tenant), 0.0);
    let echo = [
        ("tenant", "acme"),
        ("connector", "echo"),
        ("plugin", "echo-channel@0.1.0"),
    ];
    assert_eq!(after.value("centralino_plugin_faults_total", &echo), 0.0);
    assert_eq!(after.value("centralino_plugin_restarts_total", &echo), 0.0);

    // A third customer waits: the queue gauge says so.
    assert_eq!(
        sidecar.deliver("acme", "piero: fattura sbagliata").await,
        200
    );
    let waiting = scrape(&sidecar).await;
    assert_eq!(waiting.value("centralino_queue_depth", &acme_tenant), 1.0);
    assert_eq!(
        waiting.value("centralino_routing_queued_total", &acme_tenant),
        1.0
    );

    // An operator's reply goes out: replies sent and the first-response time move.
    let list = sidecar
        .get(
            ACME,
            "/api/v1/conversations",
            "/api/v1/conversations?status=assigned",
        )
        .await;
    let conversation = &list.body["conversations"][0];
    let id = conversation["id"].as_str().unwrap();
    let assignee = conversation["assignee"].as_str().unwrap();
    let answer = sidecar.reply(ACME, id, "m-1", assignee, "ciao").await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    // The operator's reply, and the wait estimate the third customer got.
    let first_response = "centralino_first_response_seconds_count";
    let tenant_echo = [("tenant", "acme"), ("connector", "echo")];
    let replies = "centralino_replies_sent_total";
    let by = |sender| {
        [
            ("tenant", "acme"),
            ("connector", "echo"),
            ("account", "support"),
            ("sender", sender),
        ]
    };
    eventually("both replies to be counted", async || {
        let now = scrape(&sidecar).await;
        now.value(replies, &by("operator")) + now.value(replies, &by("auto")) == 2.0
    })
    .await;
    let sent = scrape(&sidecar).await;
    assert_eq!(sent.value(replies, &by("operator")), 1.0);
    assert_eq!(sent.value(replies, &by("auto")), 1.0);
    assert_eq!(
        sent.value(first_response, &tenant_echo),
        1.0,
        "only a person's reply starts the clock"
    );
    assert_eq!(
        sent.value(
            "centralino_first_response_seconds_count",
            &[("tenant", "globex"), ("connector", "echo")]
        ),
        0.0
    );
    // Resolving drains the queue; the first response stays counted once.
    let resolved = sidecar
        .post(
            ACME,
            "/api/v1/conversations/{id}/resolve",
            &format!("/api/v1/conversations/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(resolved.status, 200);
    let drained = scrape(&sidecar).await;
    assert_eq!(drained.value("centralino_queue_depth", &acme_tenant), 0.0);
    assert_eq!(drained.value(first_response, &tenant_echo), 1.0);
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"2\"} 3\n";
    let parsed = parse(good).unwrap();
    assert_eq!(parsed.value("a_total", &[("x", "1\"2")]), 3.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total{1x=\"1\"} 1\n",
        "# TYPE a_total counter\na_total{x=1} 1\n",
        "# TYPE a_total counter\na_total{x=\"1\"}\n",
        "# TYPE a counter\n# TYPE a gauge\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 2\n",
    ] {
        assert!(parse(bad).is_err(), "accepted:\n{bad}");
    }
}
