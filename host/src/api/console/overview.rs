//! The overview: what a supervisor would otherwise ask for on the phone. Who is waiting
//! (per tenant and brand, the longest wait, each customer's honest estimate), which
//! connectors are unhealthy, what the outbox holds, which background tasks are down.
//!
//! Below them, the charts of [`super::figures`]: first response p50/p95 per hour and
//! messages in and out per channel.
//!
//! [`sample`] reads it all from the [`Host`] in one go ([`Snapshot`]); [`render`] turns a
//! snapshot into the live part of the page, in the viewer's language. The page shows a
//! first snapshot at once; [`super::live`] streams the following ones.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::Host;
use crate::TaskHealth;
use crate::connectors::{Circuit, ConnectorHealth};
use crate::host::Readiness;
use crate::routing::WaitEstimate;
use crate::store::OutboxBacklog;

use super::figures::{Figures, FiguresCache};
use super::html::{duration, escape, fill, time};
use super::i18n::Lang;

/// Waiting customers listed per tenant, at most (the counts cover everyone).
const LISTED_PER_TENANT: usize = 50;
/// A customer's message, shown up to this many characters.
const TEXT_CHARS: usize = 140;

/// The host's state at one moment, as the overview shows it.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    taken_at_ms: u64,
    /// Judged for the viewer: the whole host, or a console user's tenant.
    ready: Readiness,
    tenants: Vec<TenantQueue>,
    unhealthy: Vec<ConnectorHealth>,
    outbox: Vec<OutboxBacklog>,
    tasks_down: Vec<TaskHealth>,
    figures: Arc<Figures>,
}

#[derive(Clone, Debug)]
struct TenantQueue {
    tenant: String,
    /// False when the tenant has no routing (then nobody is counted as waiting).
    routed: bool,
    brands: Vec<BrandQueue>,
    waiting: Vec<Waiting>,
    /// Waiting customers in all, listed or not.
    total: usize,
}

#[derive(Clone, Debug)]
struct BrandQueue {
    brand: Option<String>,
    waiting: usize,
    longest_ms: u64,
}

#[derive(Clone, Debug)]
struct Waiting {
    brand: Option<String>,
    channel: String,
    customer: String,
    text: String,
    waited_ms: u64,
    estimate: Option<WaitEstimate>,
}

/// Reads the overview's figures from the host. Each tenant's routing engine is held only
/// while its queue is copied; the charts' figures come from `figures`, read from the
/// store when they are stale (or, for a page load, when `fresh`).
pub(crate) async fn sample(host: &Host, figures: &FiguresCache, fresh: bool) -> Snapshot {
    let mut tenants = Vec::new();
    for tenant in host.tenants() {
        let queue = host
            .with_routing(&tenant, |engine| {
                let now = engine.now();
                let mut brands: Vec<BrandQueue> = Vec::new();
                let mut waiting = Vec::new();
                for id in engine.queue().iter() {
                    let Some(conversation) = engine.conversation(id) else {
                        continue;
                    };
                    let waited_ms = now.saturating_sub(conversation.waiting_since);
                    match brands.iter_mut().find(|b| b.brand == conversation.brand) {
                        Some(brand) => {
                            brand.waiting += 1;
                            brand.longest_ms = brand.longest_ms.max(waited_ms);
                        }
                        None => brands.push(BrandQueue {
                            brand: conversation.brand.clone(),
                            waiting: 1,
                            longest_ms: waited_ms,
                        }),
                    }
                    if waiting.len() < LISTED_PER_TENANT {
                        waiting.push(Waiting {
                            brand: conversation.brand.clone(),
                            channel: conversation.thread.channel.clone(),
                            customer: conversation.customer.clone(),
                            text: conversation.last_text.chars().take(TEXT_CHARS).collect(),
                            waited_ms,
                            estimate: engine.wait_estimate(id),
                        });
                    }
                }
                brands.sort_by(|a, b| a.brand.cmp(&b.brand));
                (brands, waiting, engine.queue().len())
            })
            .await;
        let (routed, (brands, waiting, total)) = match queue {
            Ok(queue) => (true, queue),
            Err(_) => (false, (Vec::new(), Vec::new(), 0)),
        };
        tenants.push(TenantQueue {
            tenant,
            routed,
            brands,
            waiting,
            total,
        });
    }
    // The outbox's backlog is read once, for the readiness card and the outbox table.
    let ready = host.readiness_facts().await;
    let outbox = ready.outbox().to_vec();
    Snapshot {
        taken_at_ms: host.store().now_ms(),
        ready,
        tenants,
        unhealthy: host
            .connector_health()
            .into_iter()
            .filter(|c| !c.enabled || c.circuit != Circuit::Closed || c.consecutive_faults > 0)
            .collect(),
        outbox,
        tasks_down: host
            .background_tasks()
            .into_iter()
            .filter(|t| !t.running)
            .collect(),
        figures: if fresh {
            figures.fresh(host).await
        } else {
            figures.get(host).await
        },
    }
}

/// The live part of the overview (what the page shows inside `#live`); with `only`, just
/// that tenant's (a console user's view: no other tenant, no host-wide tasks, and the
/// State card judged on that tenant's connectors, pollers and replies, with what serves
/// every tenant).
pub(crate) fn render(lang: Lang, snapshot: &Snapshot, only: Option<&str>) -> String {
    if let Some(only) = only {
        let mine = Snapshot {
            tenants: snapshot
                .tenants
                .iter()
                .filter(|q| q.tenant == only)
                .cloned()
                .collect(),
            unhealthy: snapshot
                .unhealthy
                .iter()
                .filter(|c| c.tenant == only)
                .cloned()
                .collect(),
            outbox: snapshot
                .outbox
                .iter()
                .filter(|o| o.tenant == only)
                .cloned()
                .collect(),
            tasks_down: Vec::new(),
            ..snapshot.clone()
        };
        return render_all(lang, &mine, Some(only));
    }
    render_all(lang, snapshot, None)
}

fn render_all(lang: Lang, snapshot: &Snapshot, only: Option<&str>) -> String {
    let t = lang.texts();
    let mut html = String::with_capacity(4096);
    let waiting: usize = snapshot.tenants.iter().map(|q| q.total).sum();
    let longest = snapshot
        .tenants
        .iter()
        .flat_map(|q| q.brands.iter().map(|b| b.longest_ms))
        .max();
    let pending: u64 = snapshot.outbox.iter().map(|o| o.pending + o.sending).sum();
    let _ = write!(
        html,
        "<p class=\"updated\">{updated} <time id=\"updated\">{at}</time></p>\n\
         <ul class=\"cards\">\n",
        updated = escape(t.updated_at),
        at = time(snapshot.taken_at_ms, false),
    );
    let (ready_class, ready_text) = match snapshot.ready.judge(only) {
        Ok(()) => ("ok", t.ready.to_string()),
        Err(reason) => ("bad", format!("{}: {reason}", t.not_ready)),
    };
    card(&mut html, "ready", ready_class, t.state, &ready_text);
    let waiting_class = if waiting == 0 { "ok" } else { "warn" };
    card(
        &mut html,
        "waiting-total",
        waiting_class,
        t.waiting,
        &waiting.to_string(),
    );
    card(
        &mut html,
        "longest-wait",
        waiting_class,
        t.longest_wait,
        &longest.map_or_else(|| "–".to_string(), duration),
    );
    card(
        &mut html,
        "unhealthy-count",
        if snapshot.unhealthy.is_empty() {
            "ok"
        } else {
            "bad"
        },
        t.connectors_unhealthy,
        &snapshot.unhealthy.len().to_string(),
    );
    card(
        &mut html,
        "outbox-count",
        if pending == 0 { "ok" } else { "warn" },
        t.outbox_backlog,
        &pending.to_string(),
    );
    card(
        &mut html,
        "tasks-down-count",
        if snapshot.tasks_down.is_empty() {
            "ok"
        } else {
            "bad"
        },
        t.tasks_down,
        &snapshot.tasks_down.len().to_string(),
    );
    html.push_str("</ul>\n");

    // Waiting, by brand.
    let _ = write!(
        html,
        "<section id=\"by-brand\">\n<h2>{}</h2>\n",
        escape(t.by_brand)
    );
    let brand_rows: Vec<String> = snapshot
        .tenants
        .iter()
        .flat_map(|q| {
            let tenant = q.tenant.as_str();
            let routed = q.routed;
            let rows: Vec<String> = if !routed {
                vec![format!(
                    "<tr><td data-label=\"{th}\">{tenant}</td><td colspan=\"3\">{none}</td></tr>",
                    th = escape(t.tenant),
                    tenant = escape(tenant),
                    none = escape(t.no_routing),
                )]
            } else {
                q.brands
                    .iter()
                    .map(|b| {
                        format!(
                            "<tr><td data-label=\"{th_t}\">{tenant}</td>\
                             <td data-label=\"{th_b}\">{brand}</td>\
                             <td data-label=\"{th_w}\" class=\"num\">{waiting}</td>\
                             <td data-label=\"{th_l}\" class=\"num\">{longest}</td></tr>",
                            th_t = escape(t.tenant),
                            th_b = escape(t.brand),
                            th_w = escape(t.waiting),
                            th_l = escape(t.longest_wait),
                            tenant = escape(tenant),
                            brand = escape(b.brand.as_deref().unwrap_or(t.no_brand)),
                            waiting = b.waiting,
                            longest = duration(b.longest_ms),
                        )
                    })
                    .collect()
            };
            rows
        })
        .collect();
    if waiting == 0 && snapshot.tenants.iter().all(|q| q.routed) {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.nobody_waiting));
    } else {
        table(
            &mut html,
            &[t.tenant, t.brand, t.waiting, t.longest_wait],
            &brand_rows,
        );
    }
    html.push_str("</section>\n");

    // Each waiting customer.
    let _ = write!(
        html,
        "<section id=\"waiting\">\n<h2>{}</h2>\n",
        escape(t.waiting_customers)
    );
    let waiting_rows: Vec<String> = snapshot
        .tenants
        .iter()
        .flat_map(|q| q.waiting.iter().map(move |w| (q.tenant.as_str(), w)))
        .map(|(tenant, w)| {
            format!(
                "<tr><td data-label=\"{th_t}\">{tenant}</td>\
                 <td data-label=\"{th_b}\">{brand}</td>\
                 <td data-label=\"{th_c}\">{channel}</td>\
                 <td data-label=\"{th_u}\">{customer}</td>\
                 <td data-label=\"{th_m}\" class=\"text\">{text}</td>\
                 <td data-label=\"{th_w}\" class=\"num\">{waited}</td>\
                 <td data-label=\"{th_e}\">{estimate}</td></tr>",
                th_t = escape(t.tenant),
                th_b = escape(t.brand),
                th_c = escape(t.channel),
                th_u = escape(t.customer),
                th_m = escape(t.message),
                th_w = escape(t.waited),
                th_e = escape(t.estimate),
                tenant = escape(tenant),
                brand = escape(w.brand.as_deref().unwrap_or(t.no_brand)),
                channel = escape(&w.channel),
                customer = escape(&w.customer),
                text = escape(&w.text),
                waited = duration(w.waited_ms),
                estimate = escape(&estimate(lang, w.estimate.as_ref())),
            )
        })
        .collect();
    if waiting_rows.is_empty() {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.nobody_waiting));
    } else {
        table(
            &mut html,
            &[
                t.tenant, t.brand, t.channel, t.customer, t.message, t.waited, t.estimate,
            ],
            &waiting_rows,
        );
    }
    html.push_str("</section>\n");

    super::figures::render(&mut html, lang, &snapshot.figures, only);

    // Unhealthy connectors.
    let _ = write!(
        html,
        "<section id=\"unhealthy\">\n<h2>{}</h2>\n",
        escape(t.connectors_unhealthy)
    );
    if snapshot.unhealthy.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"empty\">{}</p>",
            escape(t.all_connectors_healthy)
        );
    } else {
        let rows: Vec<String> = snapshot
            .unhealthy
            .iter()
            .map(|c| {
                format!(
                    "<tr><td data-label=\"{th_c}\">{tenant}/{name}</td>\
                     <td data-label=\"{th_s}\">{state}</td>\
                     <td data-label=\"{th_k}\">{circuit}</td>\
                     <td data-label=\"{th_f}\">{fault}</td></tr>",
                    th_c = escape(t.connector),
                    th_s = escape(t.state),
                    th_k = escape(t.circuit),
                    th_f = escape(t.last_fault),
                    tenant = escape(&c.tenant),
                    name = escape(&c.connector),
                    state = escape(if c.enabled { t.enabled } else { t.disabled }),
                    circuit = escape(circuit(lang, c.circuit)),
                    fault = escape(
                        c.last_fault
                            .as_ref()
                            .map_or(t.none, |incident| incident.message.as_str())
                    ),
                )
            })
            .collect();
        table(
            &mut html,
            &[t.connector, t.state, t.circuit, t.last_fault],
            &rows,
        );
    }
    html.push_str("</section>\n");

    // The outbox.
    let _ = write!(
        html,
        "<section id=\"outbox\">\n<h2>{}</h2>\n",
        escape(t.outbox_title)
    );
    if snapshot.outbox.is_empty() {
        let _ = writeln!(html, "<p class=\"empty\">{}</p>", escape(t.outbox_empty));
    } else {
        let rows: Vec<String> = snapshot
            .outbox
            .iter()
            .map(|o| {
                format!(
                    "<tr><td data-label=\"{th_t}\">{tenant}</td>\
                     <td data-label=\"{th_p}\" class=\"num\">{pending}</td>\
                     <td data-label=\"{th_d}\" class=\"num\">{due}</td>\
                     <td data-label=\"{th_s}\" class=\"num\">{sending}</td>\
                     <td data-label=\"{th_o}\" class=\"num\">{oldest}</td></tr>",
                    th_t = escape(t.tenant),
                    th_p = escape(t.pending),
                    th_d = escape(t.due),
                    th_s = escape(t.sending),
                    th_o = escape(t.oldest_pending),
                    tenant = escape(&o.tenant),
                    pending = o.pending,
                    due = o.due,
                    sending = o.sending,
                    oldest = o.oldest_pending_ms.map_or_else(
                        || "–".to_string(),
                        |at| duration(snapshot.taken_at_ms.saturating_sub(at))
                    ),
                )
            })
            .collect();
        table(
            &mut html,
            &[t.tenant, t.pending, t.due, t.sending, t.oldest_pending],
            &rows,
        );
    }
    html.push_str("</section>\n");

    // Background tasks that are down.
    let _ = write!(
        html,
        "<section id=\"tasks\">\n<h2>{}</h2>\n",
        escape(t.tasks_title)
    );
    if snapshot.tasks_down.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"empty\">{}</p>",
            escape(t.all_tasks_running)
        );
    } else {
        let rows: Vec<String> = snapshot
            .tasks_down
            .iter()
            .map(|task| {
                format!(
                    "<tr><td data-label=\"{th_t}\">{name}</td>\
                     <td data-label=\"{th_d}\">{since}</td>\
                     <td data-label=\"{th_r}\" class=\"num\">{restarts}</td>\
                     <td data-label=\"{th_p}\">{panic}</td></tr>",
                    th_t = escape(t.tasks_title),
                    th_d = escape(t.down_since),
                    th_r = escape(t.restarts),
                    th_p = escape(t.last_panic),
                    name = escape(&task.task),
                    since = task
                        .down_since_ms
                        .map_or_else(|| "–".to_string(), |at| time(at, true)),
                    restarts = task.restarts,
                    panic = escape(task.last_panic.as_deref().unwrap_or(t.none)),
                )
            })
            .collect();
        table(
            &mut html,
            &[t.tasks_title, t.down_since, t.restarts, t.last_panic],
            &rows,
        );
    }
    html.push_str("</section>\n");
    html
}

fn card(html: &mut String, id: &str, class: &str, label: &str, value: &str) {
    let _ = writeln!(
        html,
        "<li class=\"card {class}\"><span class=\"label\">{label}</span> \
         <strong id=\"{id}\">{value}</strong></li>",
        label = escape(label),
        value = escape(value),
    );
}

/// A table with a header row; cells carry `data-label` so narrow screens show each row as
/// a card with its labels.
pub(crate) fn table(html: &mut String, headers: &[&str], rows: &[String]) {
    html.push_str("<table>\n<thead><tr>");
    for header in headers {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(header));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        html.push_str(row);
        html.push('\n');
    }
    html.push_str("</tbody>\n</table>\n");
}

/// A circuit's state in words.
pub(crate) fn circuit(lang: Lang, circuit: Circuit) -> &'static str {
    let t = lang.texts();
    match circuit {
        Circuit::Closed => t.circuit_closed,
        Circuit::BackingOff => t.circuit_backing_off,
        Circuit::Open => t.circuit_open,
    }
}

fn estimate(lang: Lang, estimate: Option<&WaitEstimate>) -> String {
    let t = lang.texts();
    match estimate {
        None => "–".to_string(),
        Some(WaitEstimate::About { position, minutes }) => fill(
            t.estimate_about,
            &[
                ("position", &position.to_string()),
                ("minutes", &minutes.to_string()),
            ],
        ),
        Some(WaitEstimate::NoHistory { position }) => fill(
            t.estimate_no_history,
            &[("position", &position.to_string())],
        ),
        Some(WaitEstimate::NobodyAtWork { position }) => {
            fill(t.estimate_nobody, &[("position", &position.to_string())])
        }
    }
}
