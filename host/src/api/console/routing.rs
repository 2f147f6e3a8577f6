//! The routing page: per tenant, the live chain and the shadow chain with how often they
//! disagreed and on what; a replay of a candidate chain (and, beside it, the live one)
//! over the traffic the store holds for a chosen period, compared side by side; and a
//! switch to the candidate, loaded and configured first like a config reload loads a
//! chain, so a missing plugin or a bad setting is refused before anything changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Host;
use crate::routing::{
    ChainSpec, Outcome, PolicyChain, ReplayOptions, ReplayReport, RoutingStats, ShadowStats, replay,
};
use crate::runtime::PluginLimits;

use super::html::{duration, escape, fill, time};
use super::i18n::Lang;
use super::overview::table;

/// The periods a replay can cover, in hours back from now.
pub(crate) const PERIODS: [u64; 5] = [1, 6, 24, 7 * 24, 30 * 24];
/// The first-response SLA a replay measures when the form gives none, in minutes.
const DEFAULT_SLA_MINUTES: u64 = 15;

/// One tenant's chains, as the page shows them.
#[derive(Clone, Debug)]
pub(crate) struct TenantChains {
    tenant: String,
    routed: bool,
    chain: String,
    stats: RoutingStats,
    shadow: Option<ShadowView>,
}

#[derive(Clone, Debug)]
struct ShadowView {
    spec: String,
    stats: ShadowStats,
    /// Newest first.
    recent: Vec<DisagreementRow>,
}

#[derive(Clone, Debug)]
struct DisagreementRow {
    at: u64,
    /// Channel and customer, when the conversation is still known; else its id.
    conversation: String,
    text: String,
    active: Outcome,
    active_reason: String,
    shadow: Outcome,
    shadow_reason: String,
}

/// The last replay a session ran, shown until it runs another.
#[derive(Clone, Debug)]
pub(crate) struct ReplayResult {
    tenant: String,
    hours: u64,
    from_ms: u64,
    to_ms: u64,
    conversations: usize,
    messages: usize,
    truncated: bool,
    candidate_spec: String,
    candidate: ReplayReport,
    /// The live chain over the same traffic; why not, when it could not be loaded again.
    live: Result<ReplayReport, String>,
}

/// Reads each tenant's chains from the host (each engine held while it is copied).
pub(crate) async fn sample(host: &Host, tenants: &[String]) -> Vec<TenantChains> {
    let mut out = Vec::new();
    for tenant in tenants {
        let read = host
            .with_routing(tenant, |engine| {
                let shadow = engine.shadow().map(|shadow| ShadowView {
                    spec: shadow.spec().to_string(),
                    stats: shadow.stats(),
                    recent: shadow
                        .recent()
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .map(|d| {
                            let known = engine
                                .conversations()
                                .iter()
                                .find(|c| c.id.to_string() == d.conversation);
                            DisagreementRow {
                                at: d.at,
                                conversation: known.map_or_else(
                                    || d.conversation.clone(),
                                    |c| format!("{} · {}", c.thread.channel, c.customer),
                                ),
                                text: known
                                    .map(|c| c.last_text.chars().take(100).collect())
                                    .unwrap_or_default(),
                                active: d.active.clone(),
                                active_reason: d.active_reason.clone(),
                                shadow: d.shadow.clone(),
                                shadow_reason: d.shadow_reason.clone(),
                            }
                        })
                        .collect(),
                });
                (engine.chain().spec().to_string(), engine.stats(), shadow)
            })
            .await;
        out.push(match read {
            Ok((chain, stats, shadow)) => TenantChains {
                tenant: tenant.clone(),
                routed: true,
                chain,
                stats,
                shadow,
            },
            Err(_) => TenantChains {
                tenant: tenant.clone(),
                routed: false,
                chain: String::new(),
                stats: RoutingStats::default(),
                shadow: None,
            },
        });
    }
    out
}

/// Parses and loads a chain as a config reload does: every stage's plugin compiled,
/// checked and configured, so what is wrong is said now, naming the plugin.
pub(crate) async fn load(
    host: &Host,
    plugin_dir: Option<&Path>,
    spec: &str,
) -> Result<PolicyChain, String> {
    let spec: ChainSpec = spec.trim().parse().map_err(|e| format!("{e}"))?;
    let dir = match plugin_dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            if let Some(stage) = spec
                .stages
                .iter()
                .find(|s| !(s.plugin.contains('/') || s.plugin.ends_with(".wasm")))
            {
                return Err(format!(
                    "stage `{}` names a plugin, but this console knows no plugin folder \
                     (`centralino run` gives it host.plugin_dir; an embedder calls \
                     AdminApi::with_plugin_dir): name the stage by its .wasm path",
                    stage.plugin
                ));
            }
            PathBuf::new()
        }
    };
    PolicyChain::load(host.runtime(), &spec, &dir, &PluginLimits::default())
        .await
        .map_err(|e| format!("{e}"))
}

/// Replays `candidate` (and the live chain beside it) over `tenant`'s stored traffic of
/// the last `hours`.
pub(crate) async fn run_replay(
    host: &Host,
    plugin_dir: Option<&Path>,
    tenant: &str,
    candidate: &str,
    hours: u64,
    sla_minutes: u64,
) -> Result<ReplayResult, String> {
    let chain = load(host, plugin_dir, candidate).await?;
    let live_spec = host
        .with_routing(tenant, |engine| engine.chain().spec().to_string())
        .await
        .map_err(|e| e.to_string())?;
    let to_ms = host.store().now_ms().saturating_add(1);
    let from_ms = to_ms.saturating_sub(hours.saturating_mul(3_600_000));
    let traffic = host
        .stored_traffic(tenant, from_ms, to_ms)
        .await
        .map_err(|e| e.to_string())?;
    let options = ReplayOptions {
        sla: Duration::from_secs(sla_minutes.saturating_mul(60)),
        ..ReplayOptions::default()
    };
    let candidate_report = replay(chain, &traffic.events, &options).await;
    let live = match load(host, plugin_dir, &live_spec).await {
        Ok(chain) => Ok(replay(chain, &traffic.events, &options).await),
        Err(e) => Err(e),
    };
    Ok(ReplayResult {
        tenant: tenant.to_string(),
        hours,
        from_ms,
        to_ms,
        conversations: traffic.conversations,
        messages: traffic.messages,
        truncated: traffic.truncated,
        candidate_spec: candidate.trim().to_string(),
        candidate: candidate_report,
        live,
    })
}

/// The SLA a form asks for, in minutes (1 to a week); the default when it gives none.
pub(crate) fn sla_minutes(field: Option<&str>) -> Result<u64, String> {
    match field.map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(DEFAULT_SLA_MINUTES),
        Some(text) => match text.parse::<u64>() {
            Ok(minutes) if (1..=7 * 24 * 60).contains(&minutes) => Ok(minutes),
            _ => Err(format!("SLA `{text}`: expected whole minutes, 1 to 10080")),
        },
    }
}

/// A period a form asks for, in hours; only [`PERIODS`] are offered.
pub(crate) fn period_hours(field: Option<&str>) -> Result<u64, String> {
    let text = field.unwrap_or_default().trim();
    text.parse::<u64>()
        .ok()
        .filter(|hours| PERIODS.contains(hours))
        .ok_or_else(|| format!("period `{text}`: expected one of {PERIODS:?} hours"))
}

fn period_label(lang: Lang, hours: u64) -> String {
    let t = lang.texts();
    match hours {
        1 => t.period_last_hour.to_string(),
        h if h >= 48 && h % 24 == 0 => fill(t.period_last_days, &[("days", &(h / 24).to_string())]),
        h => fill(t.period_last_hours, &[("hours", &h.to_string())]),
    }
}

fn outcome(lang: Lang, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Assign(operator) => format!("→ {operator}"),
        Outcome::Queue => lang.texts().outcome_queue.to_string(),
    }
}

/// The page's body; `last` is the session's last replay.
pub(crate) fn render(
    lang: Lang,
    csrf: &str,
    tenants: &[TenantChains],
    last: Option<&ReplayResult>,
) -> String {
    let t = lang.texts();
    let mut html = String::new();
    if tenants.iter().all(|q| !q.routed) {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.no_routing_here));
        return html;
    }
    for q in tenants.iter().filter(|q| q.routed) {
        let tenant = escape(&q.tenant);
        let _ = write!(
            html,
            "<section id=\"routing-{tenant}\">\n<h2>{label} {tenant}</h2>\n\
             <dl class=\"facts\">\n<dt>{live_label}</dt><dd><code id=\"live-chain-{tenant}\">{chain}</code></dd>\n\
             <dt>{decisions_label}</dt><dd>{decisions} · {assignments_label} {assignments} · \
             {queued_label} {queued} · {failures_label} {failures}</dd>\n",
            label = escape(t.tenant),
            live_label = escape(t.live_chain),
            chain = escape(&q.chain),
            decisions_label = escape(t.decisions),
            decisions = q.stats.decisions,
            assignments_label = escape(t.assignments),
            assignments = q.stats.assignments,
            queued_label = escape(t.queued),
            queued = q.stats.queued,
            failures_label = escape(t.stage_failures),
            failures = q.stats.stage_failures,
        );
        match &q.shadow {
            None => {
                let _ = writeln!(
                    html,
                    "<dt>{}</dt><dd id=\"shadow-chain-{tenant}\">{}</dd>\n</dl>",
                    escape(t.shadow_chain),
                    escape(t.no_shadow),
                );
            }
            Some(shadow) => {
                let _ = writeln!(
                    html,
                    "<dt>{shadow_label}</dt><dd><code id=\"shadow-chain-{tenant}\">{spec}</code></dd>\n\
                     <dt>{disagreed_label}</dt><dd><strong id=\"disagreed-{tenant}\">{disagreed}</strong> \
                     / {compared} {compared_label}</dd>\n</dl>",
                    shadow_label = escape(t.shadow_chain),
                    spec = escape(&shadow.spec),
                    disagreed_label = escape(t.disagreements),
                    disagreed = shadow.stats.disagreed,
                    compared = shadow.stats.compared,
                    compared_label = escape(t.decisions_compared),
                );
                if !shadow.recent.is_empty() {
                    let _ = writeln!(html, "<h3>{}</h3>", escape(t.last_disagreements));
                    let rows: Vec<String> = shadow
                        .recent
                        .iter()
                        .map(|d| {
                            format!(
                                "<tr class=\"disagreement\"><td data-label=\"{th_when}\">{when}</td>\
                                 <td data-label=\"{th_c}\">{conversation}<br>\
                                 <span class=\"muted text\">{text}</span></td>\
                                 <td data-label=\"{th_live}\"><strong>{active}</strong><br>\
                                 <span class=\"muted\">{active_reason}</span></td>\
                                 <td data-label=\"{th_shadow}\"><strong>{shadow}</strong><br>\
                                 <span class=\"muted\">{shadow_reason}</span></td></tr>",
                                th_when = escape(t.when),
                                th_c = escape(t.conversation),
                                th_live = escape(t.live_chain),
                                th_shadow = escape(t.shadow_chain),
                                when = time(d.at, true),
                                conversation = escape(&d.conversation),
                                text = escape(&d.text),
                                active = escape(&outcome(lang, &d.active)),
                                active_reason = escape(&d.active_reason),
                                shadow = escape(&outcome(lang, &d.shadow)),
                                shadow_reason = escape(&d.shadow_reason),
                            )
                        })
                        .collect();
                    table(
                        &mut html,
                        &[t.when, t.conversation, t.live_chain, t.shadow_chain],
                        &rows,
                    );
                }
            }
        }
        replay_form(&mut html, lang, csrf, &q.tenant, last);
        if let Some(result) = last.filter(|r| r.tenant == q.tenant) {
            comparison(&mut html, lang, csrf, result);
        }
        html.push_str("</section>\n");
    }
    html
}

fn replay_form(
    html: &mut String,
    lang: Lang,
    csrf: &str,
    tenant: &str,
    last: Option<&ReplayResult>,
) {
    let t = lang.texts();
    let last = last.filter(|r| r.tenant == tenant);
    let mut options = String::new();
    let chosen = last.map_or(24, |r| r.hours);
    for hours in PERIODS {
        let _ = write!(
            options,
            "<option value=\"{hours}\"{selected}>{label}</option>",
            selected = if hours == chosen { " selected" } else { "" },
            label = escape(&period_label(lang, hours)),
        );
    }
    let tenant = escape(tenant);
    let _ = writeln!(
        html,
        "<h3>{title}</h3>\n<p class=\"note\">{note}</p>\n\
         <form class=\"stacked\" method=\"post\" action=\"routing\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\n\
         <label for=\"candidate-{tenant}\">{chain_label}</label>\n\
         <input id=\"candidate-{tenant}\" name=\"chain\" type=\"text\" required \
         spellcheck=\"false\" autocomplete=\"off\" value=\"{value}\" \
         placeholder=\"priority &gt; skills &gt; least-loaded\">\n\
         <div class=\"row\"><span><label for=\"period-{tenant}\">{period_label}</label>\n\
         <select id=\"period-{tenant}\" name=\"period\">{options}</select></span>\n\
         <span><label for=\"sla-{tenant}\">{sla_label}</label>\n\
         <input id=\"sla-{tenant}\" name=\"sla\" type=\"number\" min=\"1\" max=\"10080\" \
         value=\"{sla}\"></span></div>\n\
         <button id=\"replay-{tenant}\" type=\"submit\" name=\"action\" value=\"replay\">{button}</button>\n\
         </form>",
        title = escape(t.replay_title),
        note = escape(t.replay_note),
        csrf = escape(csrf),
        chain_label = escape(t.candidate_chain),
        value = escape(last.map_or("", |r| r.candidate_spec.as_str())),
        period_label = escape(t.period),
        sla_label = escape(t.sla_minutes),
        sla = last.map_or(DEFAULT_SLA_MINUTES, |r| r.candidate.sla_minutes),
        button = escape(t.replay_button),
    );
}

fn comparison(html: &mut String, lang: Lang, csrf: &str, r: &ReplayResult) {
    let t = lang.texts();
    let _ = writeln!(
        html,
        "<div id=\"replay-result\" class=\"result\">\n<h3>{title}</h3>\n<p class=\"note\">{what}</p>",
        title = escape(t.replay_result),
        what = escape(&fill(
            t.replay_what,
            &[
                ("period", &period_label(lang, r.hours)),
                ("from", &time(r.from_ms, true)),
                ("to", &time(r.to_ms, true)),
                ("conversations", &r.conversations.to_string()),
                ("messages", &r.messages.to_string()),
            ]
        )),
    );
    if r.truncated {
        let _ = writeln!(
            html,
            "<p class=\"flash warn\">{}</p>",
            escape(t.replay_truncated)
        );
    }
    if let Err(why) = &r.live {
        let _ = writeln!(
            html,
            "<p class=\"flash warn\">{}: {}</p>",
            escape(t.live_not_replayed),
            escape(why)
        );
    }
    let live = r.live.as_ref().ok();
    // Every operator either run assigned to, in the order the runs met them.
    let mut operators: Vec<&str> = Vec::new();
    for count in live
        .iter()
        .flat_map(|l| l.assignments.iter())
        .chain(r.candidate.assignments.iter())
    {
        if !operators.contains(&count.operator.as_str()) {
            operators.push(&count.operator);
        }
    }
    let cell = |id: &str, which: &str, value: String| {
        format!(
            "<td data-label=\"{which}\" id=\"replay-{id}\" class=\"num\">{value}</td>",
            which = escape(which),
            value = escape(&value),
        )
    };
    let mut rows = Vec::new();
    let mut row = |key: &str, label: String, value: &dyn Fn(&ReplayReport) -> String| {
        let live_cell = match live {
            Some(report) => cell(&format!("live-{key}"), t.live_chain, value(report)),
            None => cell(&format!("live-{key}"), t.live_chain, "–".to_string()),
        };
        rows.push(format!(
            "<tr><th scope=\"row\">{label}</th>{live_cell}{candidate}</tr>",
            label = escape(&label),
            candidate = cell(
                &format!("candidate-{key}"),
                t.candidate_chain,
                value(&r.candidate)
            ),
        ));
    };
    row("conversations", t.conversations.to_string(), &|report| {
        report.conversations.to_string()
    });
    for operator in &operators {
        let name = operator.to_string();
        row(
            &format!("assigned-{operator}"),
            fill(t.assigned_to, &[("operator", operator)]),
            &move |report| {
                report
                    .assignments
                    .iter()
                    .find(|c| c.operator == name)
                    .map_or(0, |c| c.assigned)
                    .to_string()
            },
        );
    }
    row("never", t.never_assigned.to_string(), &|report| {
        report.never_assigned.to_string()
    });
    row("wait", t.wait_p50_p95_max.to_string(), &|report| {
        format!(
            "{} / {} / {}",
            duration(report.wait_p50_ms),
            duration(report.wait_p95_ms),
            duration(report.wait_max_ms)
        )
    });
    row(
        "sla",
        fill(
            t.sla_missed,
            &[("minutes", &r.candidate.sla_minutes.to_string())],
        ),
        &|report| format!("{} / {}", report.sla_missed, report.conversations),
    );
    row("queue-peak", t.queue_peak.to_string(), &|report| {
        report.queue_peak.to_string()
    });
    row("failures", t.stage_failures.to_string(), &|report| {
        report.stage_failures.to_string()
    });
    let _ = write!(
        html,
        "<table class=\"compare\">\n<thead><tr><th scope=\"col\">{metric}</th>\
         <th scope=\"col\">{live_label}<br><code>{live_spec}</code></th>\
         <th scope=\"col\">{candidate_label}<br><code>{candidate_spec}</code></th></tr></thead>\n<tbody>\n",
        metric = escape(t.measure),
        live_label = escape(t.live_chain),
        live_spec = escape(live.map_or("", |l| l.chain.as_str())),
        candidate_label = escape(t.candidate_chain),
        candidate_spec = escape(&r.candidate_spec),
    );
    for row in rows {
        html.push_str(&row);
        html.push('\n');
    }
    html.push_str("</tbody>\n</table>\n");
    let tenant = escape(&r.tenant);
    let _ = writeln!(
        html,
        "<form method=\"post\" action=\"routing\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
         <input type=\"hidden\" name=\"chain\" value=\"{chain}\">\
         <p class=\"note\">{note}</p>\
         <button id=\"switch-{tenant}\" type=\"submit\" name=\"action\" value=\"switch\">{button}</button>\
         </form>\n</div>",
        csrf = escape(csrf),
        chain = escape(&r.candidate_spec),
        note = escape(t.switch_note),
        button = escape(t.switch_button),
    );
}
