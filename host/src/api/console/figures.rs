//! The overview's charts: first-response time p50 and p95 per hour over the last
//! [`HOURS`] hours, drawn as an SVG built on the server (no script, no chart library;
//! colours come from `console.css`, since the Content-Security-Policy allows no inline
//! style), and messages in and out per channel over the same hours.
//!
//! The figures come from the store and are read at most once per [`REFRESH`] (the live
//! overview samples every 500 ms; these change slowly and cost a scan).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Host;
use crate::store::{FirstResponse, MessageCount};

use super::html::{duration, escape};
use super::i18n::Lang;
use super::overview::table;

/// Hours the charts cover.
pub(crate) const HOURS: u64 = 12;
/// How long figures read from the store are reused.
pub(crate) const REFRESH: Duration = Duration::from_secs(30);
const HOUR_MS: u64 = 3_600_000;

/// First responses of one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// The hour's start (ms).
    pub(crate) from_ms: u64,
    pub(crate) responses: usize,
    pub(crate) p50_ms: Option<u64>,
    pub(crate) p95_ms: Option<u64>,
}

/// What the charts show, for every tenant (each page picks what its viewer may see).
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) now_ms: u64,
    /// First responses of the last hours, by tenant.
    pub(crate) responses: Vec<(String, FirstResponse)>,
    pub(crate) messages: Vec<MessageCount>,
}

/// Figures read from the store, reused for [`REFRESH`].
#[derive(Default)]
pub(crate) struct FiguresCache {
    last: Mutex<Option<(Instant, Arc<Figures>)>>,
}

impl FiguresCache {
    /// The figures of every tenant, from the cache while it is fresh.
    pub(crate) async fn get(&self, host: &Host) -> Arc<Figures> {
        if let Some((at, figures)) = self.lock().as_ref()
            && at.elapsed() < REFRESH
        {
            return figures.clone();
        }
        self.fresh(host).await
    }

    /// The figures read now (a page load asks for them), kept for the live updates.
    pub(crate) async fn fresh(&self, host: &Host) -> Arc<Figures> {
        let figures = Arc::new(read(host, host.store().now_ms()).await);
        *self.lock() = Some((Instant::now(), figures.clone()));
        figures
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Figures>)>> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn read(host: &Host, now_ms: u64) -> Figures {
    let since = now_ms.saturating_sub(HOURS * HOUR_MS);
    let mut responses = Vec::new();
    let mut messages = Vec::new();
    for tenant in host.tenants() {
        match host.store().first_responses(&tenant, since).await {
            Ok(found) => responses.extend(found.into_iter().map(|r| (tenant.clone(), r))),
            Err(e) => tracing::warn!(tenant, "the console could not read first responses: {e:#}"),
        }
        match host.store().message_counts(&tenant, since).await {
            Ok(found) => messages.extend(found),
            Err(e) => tracing::warn!(tenant, "the console could not count messages: {e:#}"),
        }
    }
    Figures {
        now_ms,
        responses,
        messages,
    }
}

/// Per hour (the last one ending now), the p50 and p95 of first responses sent in it.
pub(crate) fn buckets(responses: &[FirstResponse], now_ms: u64) -> Vec<Bucket> {
    let start = now_ms.saturating_sub(HOURS * HOUR_MS);
    (0..HOURS)
        .map(|index| {
            let from_ms = start + index * HOUR_MS;
            let mut times: Vec<u64> = responses
                .iter()
                .filter(|r| r.at_ms >= from_ms && r.at_ms < from_ms + HOUR_MS)
                .map(|r| r.after_ms)
                .collect();
            // The current hour includes the response sent this millisecond.
            if index + 1 == HOURS {
                times.extend(
                    responses
                        .iter()
                        .filter(|r| r.at_ms == from_ms + HOUR_MS)
                        .map(|r| r.after_ms),
                );
            }
            times.sort_unstable();
            Bucket {
                from_ms,
                responses: times.len(),
                p50_ms: percentile(&times, 50),
                p95_ms: percentile(&times, 95),
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], percent: usize) -> Option<u64> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A round ceiling for the chart's axis: a whole number of minutes or hours that reads
/// well (at least a minute).
fn axis_max(ms: u64) -> u64 {
    const MINUTE: u64 = 60_000;
    const NICE: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440];
    NICE.iter()
        .map(|minutes| minutes * MINUTE)
        .find(|max| *max >= ms)
        .unwrap_or_else(|| ms.div_ceil(1440 * MINUTE).saturating_mul(1440 * MINUTE))
}

const WIDTH: u64 = 640;
const HEIGHT: u64 = 220;
const LEFT: u64 = 64;
const RIGHT: u64 = 16;
const TOP: u64 = 16;
const BOTTOM: u64 = 36;

/// The first-response chart and the messages table; only `only`'s when given.
pub(crate) fn render(html: &mut String, lang: Lang, figures: &Figures, only: Option<&str>) {
    let t = lang.texts();
    let shown = |tenant: &str| only.is_none_or(|only| only == tenant);
    let responses: Vec<FirstResponse> = figures
        .responses
        .iter()
        .filter(|(tenant, _)| shown(tenant))
        .map(|(_, r)| *r)
        .collect();
    let buckets = buckets(&responses, figures.now_ms);
    let messages: Vec<&MessageCount> = figures
        .messages
        .iter()
        .filter(|m| shown(&m.tenant))
        .collect();
    let _ = write!(
        html,
        "<section id=\"first-response\">\n<h2>{}</h2>\n",
        escape(t.first_response_title)
    );
    let answered: usize = buckets.iter().map(|b| b.responses).sum();
    if answered == 0 {
        let _ = writeln!(
            html,
            "<p class=\"empty\">{}</p>",
            escape(t.first_response_none)
        );
    } else {
        chart(html, lang, &buckets);
    }
    html.push_str("</section>\n");

    let _ = write!(
        html,
        "<section id=\"messages\">\n<h2>{}</h2>\n",
        escape(t.messages_title)
    );
    if messages.is_empty() {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.messages_none));
    } else {
        let rows: Vec<String> = messages
            .iter()
            .map(|m| {
                format!(
                    "<tr id=\"messages-{tenant}-{channel}\"><td data-label=\"{th_t}\">{tenant}</td>\
                     <td data-label=\"{th_c}\">{channel}</td>\
                     <td data-label=\"{th_in}\" class=\"num\">{inbound}</td>\
                     <td data-label=\"{th_out}\" class=\"num\">{outbound}</td></tr>",
                    th_t = escape(t.tenant),
                    th_c = escape(t.channel),
                    th_in = escape(t.messages_in),
                    th_out = escape(t.messages_out),
                    tenant = escape(&m.tenant),
                    channel = escape(&m.channel),
                    inbound = m.inbound,
                    outbound = m.outbound,
                )
            })
            .collect();
        table(
            html,
            &[t.tenant, t.channel, t.messages_in, t.messages_out],
            &rows,
        );
    }
    html.push_str("</section>\n");
}

fn chart(html: &mut String, lang: Lang, buckets: &[Bucket]) {
    let t = lang.texts();
    let top = buckets
        .iter()
        .filter_map(|b| b.p95_ms.max(b.p50_ms))
        .max()
        .unwrap_or(0);
    let max = axis_max(top);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slots = u64::try_from(buckets.len()).unwrap_or(1).max(1);
    let x =
        |index: usize| LEFT + plot_w * (2 * u64::try_from(index).unwrap_or(0) + 1) / (2 * slots);
    let y = |ms: u64| TOP + plot_h - plot_h * ms.min(max) / max;
    let _ = write!(
        html,
        "<figure class=\"chart\">\n<svg id=\"first-response-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-labelledby=\"first-response-caption\" preserveAspectRatio=\"xMidYMid meet\">\n"
    );
    // Grid and the y axis's labels: 0, half, max.
    for (value, label) in [
        (0, "0".to_string()),
        (max / 2, duration(max / 2)),
        (max, duration(max)),
    ] {
        let _ = writeln!(
            html,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\"/>\
             <text class=\"axis\" x=\"{lx}\" y=\"{ly}\" text-anchor=\"end\">{label}</text>",
            x2 = WIDTH - RIGHT,
            yy = y(value),
            lx = LEFT - 6,
            ly = y(value) + 4,
            label = escape(&label),
        );
    }
    // The x axis: every third hour, as a UTC time of day.
    for (index, bucket) in buckets.iter().enumerate() {
        if index % 3 == 0 || index + 1 == buckets.len() {
            let hour = (bucket.from_ms / HOUR_MS) % 24;
            let _ = writeln!(
                html,
                "<text class=\"axis\" x=\"{xx}\" y=\"{yy}\" text-anchor=\"middle\">{hour:02}:00</text>",
                xx = x(index),
                yy = HEIGHT - BOTTOM + 18,
            );
        }
    }
    for (class, value) in [
        ("p95", (|b: &Bucket| b.p95_ms) as fn(&Bucket) -> Option<u64>),
        ("p50", |b: &Bucket| b.p50_ms),
    ] {
        // A line through consecutive hours with answers; a dot on each.
        let mut segment: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        for (index, bucket) in buckets.iter().enumerate() {
            match value(bucket) {
                Some(ms) => segment.push(format!("{},{}", x(index), y(ms))),
                None => {
                    if !segment.is_empty() {
                        lines.push(std::mem::take(&mut segment));
                    }
                }
            }
        }
        if !segment.is_empty() {
            lines.push(segment);
        }
        for points in lines {
            let _ = writeln!(
                html,
                "<polyline class=\"line {class}\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        for (index, bucket) in buckets.iter().enumerate() {
            if let Some(ms) = value(bucket) {
                let _ = writeln!(
                    html,
                    "<circle class=\"dot {class}\" cx=\"{}\" cy=\"{}\" r=\"3.5\"><title>{class} {}: {}</title></circle>",
                    x(index),
                    y(ms),
                    super::html::time(bucket.from_ms, false),
                    duration(ms),
                );
            }
        }
    }
    html.push_str("</svg>\n");
    let _ = writeln!(
        html,
        "<figcaption id=\"first-response-caption\"><span class=\"key p50\">p50</span> \
         <span class=\"key p95\">p95</span> {caption}</figcaption>\n</figure>",
        caption = escape(t.first_response_caption),
    );
    // The same figures as a table, for screen readers and exact values.
    let rows: Vec<String> = buckets
        .iter()
        .filter(|b| b.responses > 0)
        .map(|b| {
            format!(
                "<tr><td data-label=\"{th_h}\">{hour}</td>\
                 <td data-label=\"{th_n}\" class=\"num\">{n}</td>\
                 <td data-label=\"p50\" class=\"num\">{p50}</td>\
                 <td data-label=\"p95\" class=\"num\">{p95}</td></tr>",
                th_h = escape(t.hour),
                th_n = escape(t.first_responses),
                hour = super::html::time(b.from_ms, false),
                n = b.responses,
                p50 = b.p50_ms.map_or_else(|| "–".to_string(), duration),
                p95 = b.p95_ms.map_or_else(|| "–".to_string(), duration),
            )
        })
        .collect();
    let _ = writeln!(
        html,
        "<details><summary>{}</summary>",
        escape(t.chart_values)
    );
    table(html, &[t.hour, t.first_responses, "p50", "p95"], &rows);
    html.push_str("</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_responses_fall_in_their_hour_and_give_nearest_rank_percentiles() {
        let now = 100 * HOUR_MS;
        let response = |hours_ago: u64, after_s: u64| FirstResponse {
            at_ms: now - hours_ago * HOUR_MS + 1,
            after_ms: after_s * 1000,
        };
        let mut responses: Vec<FirstResponse> = (1..=20).map(|s| response(1, s * 10)).collect();
        responses.push(response(20, 5));
        let buckets = buckets(&responses, now);
        assert_eq!(buckets.len(), 12);
        let last = buckets[11];
        assert_eq!(last.responses, 20);
        assert_eq!(last.p50_ms, Some(100_000));
        assert_eq!(last.p95_ms, Some(190_000));
        assert!(
            buckets[..11]
                .iter()
                .all(|b| b.responses == 0 && b.p50_ms.is_none())
        );
    }

    #[test]
    fn the_axis_ends_on_a_round_figure() {
        assert_eq!(axis_max(0), 60_000);
        assert_eq!(axis_max(61_000), 120_000);
        assert_eq!(axis_max(190_000), 300_000);
        assert_eq!(axis_max(4_000_000), 7_200_000);
        assert_eq!(axis_max(90_000_000), 172_800_000);
    }

    #[test]
    fn the_chart_is_an_svg_without_inline_style_or_script() {
        let now = 100 * HOUR_MS;
        let responses = [FirstResponse {
            at_ms: now - 1000,
            after_ms: 42_000,
        }];
        let figures = Figures {
            now_ms: now,
            responses: responses.iter().map(|r| ("tim".to_string(), *r)).collect(),
            messages: Vec::new(),
        };
        let mut html = String::new();
        render(&mut html, Lang::En, &figures, Some("wind"));
        assert!(!html.contains("<svg"), "another tenant's figures: {html}");
        render(&mut html, Lang::En, &figures, Some("tim"));
        assert!(html.contains("<svg id=\"first-response-chart\""), "{html}");
        assert!(html.contains("<circle class=\"dot p50\""), "{html}");
        assert!(
            !html.contains("style=") && !html.contains("<script"),
            "{html}"
        );
    }
}
