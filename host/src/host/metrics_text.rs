//! `/metrics` at scrape time: the counters the host keeps, then what is read from its
//! state (connectors, routing, background tasks, the outbox).

use crate::Host;
use crate::connectors::Circuit;
use crate::metrics::{Exposition, presence_name};
use crate::types::Presence;

/// A family read at scrape time: name, help, and the value of one item.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

/// Renders every metric of `host`: the counted ones, then those read from its state.
pub(super) async fn render(host: &Host) -> String {
    let mut out = Exposition::default();
    host.metrics().render(&mut out);
    connectors(host, &mut out);
    routing(host, &mut out).await;
    tasks(host, &mut out);
    outbox(host, &mut out).await;
    accounts(host, &mut out).await;
    out.text
}

/// The supervised background tasks: up or down, and restarts after panics.
fn tasks(host: &Host, out: &mut Exposition) {
    let tasks = host.background_tasks();
    out.family(
        "centralino_task_up",
        "Whether a background task is running (0 between a panic and its restart).",
        "gauge",
    );
    for t in &tasks {
        let value = if t.running { 1.0 } else { 0.0 };
        out.sample("centralino_task_up", &[("task", t.task.clone())], value);
    }
    out.family(
        "centralino_task_restarts_total",
        "Background tasks started again after a panic.",
        "counter",
    );
    for t in &tasks {
        out.sample(
            "centralino_task_restarts_total",
            &[("task", t.task.clone())],
            t.restarts as f64,
        );
    }
}

/// Replies waiting in the outbox per tenant, and how long the oldest has waited.
async fn outbox(host: &Host, out: &mut Exposition) {
    let backlog = match host.store().outbox_backlog().await {
        Ok(backlog) => backlog,
        Err(e) => {
            tracing::warn!("metrics: reading the outbox backlog: {e:#}");
            return;
        }
    };
    // Every tenant gets its series, at zero when nothing waits, so alerts see it.
    let mut tenants = host.tenants();
    tenants.sort();
    let now = host.store().now_ms();
    out.family(
        "centralino_outbox_replies",
        "Replies in the outbox not sent yet, by state (`pending`, `due`, `sending`).",
        "gauge",
    );
    for tenant in &tenants {
        let b = backlog.iter().find(|b| &b.tenant == tenant);
        for (state, n) in [
            ("pending", b.map_or(0, |b| b.pending)),
            ("due", b.map_or(0, |b| b.due)),
            ("sending", b.map_or(0, |b| b.sending)),
        ] {
            out.sample(
                "centralino_outbox_replies",
                &[("tenant", tenant.to_string()), ("state", state.to_string())],
                n as f64,
            );
        }
    }
    out.family(
        "centralino_outbox_oldest_seconds",
        "How long the oldest reply not sent yet has been in the outbox (0 when none).",
        "gauge",
    );
    for tenant in &tenants {
        let oldest = backlog
            .iter()
            .find(|b| &b.tenant == tenant)
            .and_then(|b| {
                b.oldest_pending_ms
                    .into_iter()
                    .chain(b.oldest_sending_ms)
                    .min()
            })
            .map_or(0.0, |at| now.saturating_sub(at) as f64 / 1000.0);
        out.sample(
            "centralino_outbox_oldest_seconds",
            &[("tenant", tenant.to_string())],
            oldest,
        );
    }
}

fn connectors(host: &Host, out: &mut Exposition) {
    let health = host.connector_health();
    let label = |h: &crate::connectors::ConnectorHealth| {
        vec![
            ("tenant", h.tenant.to_string()),
            ("connector", h.connector.to_string()),
            ("plugin", h.plugin.to_string()),
        ]
    };
    let families: [Family<crate::connectors::ConnectorHealth>; 4] = [
        (
            "centralino_plugin_faults_total",
            "Plugin calls that trapped, ran past their deadline or exceeded a limit.",
            |h| h.faults,
        ),
        (
            "centralino_plugin_restarts_total",
            "Fresh plugin instances started after a fault discarded one.",
            |h| h.instances_started.saturating_sub(1),
        ),
        (
            "centralino_plugin_refused_calls_total",
            "Calls refused without reaching the plugin while it backed off or its circuit was open.",
            |h| h.refused_calls,
        ),
        (
            "centralino_capability_denials_total",
            "Capability requests the host refused (host off the allow-list, credential or secret not granted).",
            |h| h.denials,
        ),
    ];
    for (name, help, value) in families {
        out.family(name, help, "counter");
        for h in &health {
            out.sample(name, &label(h), value(h) as f64);
        }
    }
    let name = "centralino_connector_circuit";
    out.family(
        name,
        "1 for the state a connector's circuit is in: closed (calls go through), backing-off, open.",
        "gauge",
    );
    for h in &health {
        for (state, circuit) in [
            ("closed", Circuit::Closed),
            ("backing-off", Circuit::BackingOff),
            ("open", Circuit::Open),
        ] {
            let labels = [
                ("tenant", h.tenant.to_string()),
                ("connector", h.connector.to_string()),
                ("state", state.to_string()),
            ];
            out.sample(name, &labels, if h.circuit == circuit { 1.0 } else { 0.0 });
        }
    }
    let name = "centralino_events_ignored_total";
    out.family(
        name,
        "Platform events a connector ignored on purpose, by the reason it gave.",
        "counter",
    );
    for h in &health {
        for (reason, count) in &h.ignored {
            let labels = [
                ("tenant", h.tenant.to_string()),
                ("connector", h.connector.to_string()),
                ("reason", reason.clone()),
            ];
            out.sample(name, &labels, *count as f64);
        }
    }
    let name = "centralino_connector_api_version_warning";
    out.family(
        name,
        "1 when a connector's platform API version needs an admin: served (the platform answered with another version than asked) or retirement (the configured version is near or past its end of life).",
        "gauge",
    );
    for h in &health {
        for (kind, warned) in [
            ("served", h.api_version_served.is_some()),
            ("retirement", h.api_version_retirement.is_some()),
        ] {
            let labels = [
                ("tenant", h.tenant.to_string()),
                ("connector", h.connector.to_string()),
                ("kind", kind.to_string()),
            ];
            out.sample(name, &labels, if warned { 1.0 } else { 0.0 });
        }
    }
    let name = "centralino_plugin_calls_total";
    out.family(
        name,
        "Calls that reached a connector's plugin, by the plugin version that served them.",
        "counter",
    );
    for h in &health {
        for (plugin, calls) in &h.calls_by_version {
            let labels = [
                ("tenant", h.tenant.to_string()),
                ("connector", h.connector.to_string()),
                ("plugin", plugin.clone()),
            ];
            out.sample(name, &labels, *calls as f64);
        }
    }
    let name = "centralino_connector_enabled";
    out.family(
        name,
        "1 while a connector takes calls, 0 while an admin has it disabled.",
        "gauge",
    );
    for h in &health {
        let labels = [
            ("tenant", h.tenant.to_string()),
            ("connector", h.connector.to_string()),
        ];
        out.sample(name, &labels, if h.enabled { 1.0 } else { 0.0 });
    }
}

/// Per tenant: the engine's counters, the queue and the roster, read under its lock.
struct TenantRoutingSnapshot {
    tenant: String,
    stats: crate::routing::RoutingStats,
    queue_depth: usize,
    presence: [(Presence, usize); 3],
}

async fn routing(host: &Host, out: &mut Exposition) {
    let mut snapshots = Vec::new();
    for tenant in host.tenants() {
        let snapshot = host
            .with_routing(&tenant, |engine| {
                let now = engine.now();
                let mut presence = [
                    (Presence::Online, 0),
                    (Presence::Away, 0),
                    (Presence::Offline, 0),
                ];
                for (operator, _) in engine.roster().iter() {
                    let effective = engine
                        .roster()
                        .effective_presence(&operator.id, now)
                        .unwrap_or(Presence::Offline);
                    if let Some((_, count)) = presence.iter_mut().find(|(p, _)| *p == effective) {
                        *count += 1;
                    }
                }
                TenantRoutingSnapshot {
                    tenant: tenant.clone(),
                    stats: engine.stats(),
                    queue_depth: engine.queue().len(),
                    presence,
                }
            })
            .await;
        if let Ok(snapshot) = snapshot {
            snapshots.push(snapshot);
        }
    }
    let counters: [Family<crate::routing::RoutingStats>; 5] = [
        (
            "centralino_routing_decisions_total",
            "Runs of the routing chain.",
            |s| s.decisions,
        ),
        (
            "centralino_routing_assignments_total",
            "Conversations the chain gave to an operator (re-routes included, transfers not).",
            |s| s.assignments,
        ),
        (
            "centralino_routing_queued_total",
            "Conversations that had to wait for an operator.",
            |s| s.queued,
        ),
        (
            "centralino_routing_offer_timeouts_total",
            "Assignments taken back because the operator did not answer in time.",
            |s| s.offer_timeouts,
        ),
        (
            "centralino_routing_stage_failures_total",
            "Failed stages of the routing chain (each treated as `pass`).",
            |s| s.stage_failures,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, help, "counter");
        for s in &snapshots {
            out.sample(
                name,
                &[("tenant", s.tenant.to_string())],
                value(&s.stats) as f64,
            );
        }
    }
    let name = "centralino_queue_depth";
    out.family(name, "Conversations waiting for an operator now.", "gauge");
    for s in &snapshots {
        out.sample(
            name,
            &[("tenant", s.tenant.to_string())],
            s.queue_depth as f64,
        );
    }
    let name = "centralino_operators";
    out.family(
        name,
        "Operators by effective presence (working hours applied).",
        "gauge",
    );
    for s in &snapshots {
        for (presence, count) in s.presence {
            let labels = [
                ("tenant", s.tenant.to_string()),
                ("presence", presence_name(presence).to_string()),
            ];
            out.sample(name, &labels, count as f64);
        }
    }
}

/// Host-held accounts ([`crate::accounts`]): each account's state as a one-hot gauge, and
/// the token refreshes this host made. Never a token.
async fn accounts(host: &Host, out: &mut Exposition) {
    let accounts = match host.accounts().await {
        Ok(accounts) => accounts,
        Err(e) => {
            tracing::warn!("metrics: reading the accounts: {e}");
            return;
        }
    };
    if accounts.is_empty() {
        return;
    }
    out.family(
        "centralino_account_state",
        "Host-held accounts by state (`connected`, `expiring`, `needs-reauth`, `disconnected`): 1 for the account's current state.",
        "gauge",
    );
    for account in &accounts {
        for state in crate::accounts::AccountState::ALL {
            out.sample(
                "centralino_account_state",
                &[
                    ("tenant", account.tenant.to_string()),
                    ("connector", account.connector.to_string()),
                    ("account", account.account.clone()),
                    ("state", state.name().to_string()),
                ],
                if account.state == state { 1.0 } else { 0.0 },
            );
        }
    }
    out.family(
        "centralino_account_held_replies",
        "Replies held until their account is re-authorised.",
        "gauge",
    );
    for account in &accounts {
        out.sample(
            "centralino_account_held_replies",
            &[
                ("tenant", account.tenant.to_string()),
                ("connector", account.connector.to_string()),
                ("account", account.account.clone()),
            ],
            account.held_replies as f64,
        );
    }
    let (refreshed, failed) = host.token_refreshes();
    out.family(
        "centralino_token_refreshes_total",
        "Token refreshes this host made, by result (`ok`, `failed`).",
        "counter",
    );
    out.sample(
        "centralino_token_refreshes_total",
        &[("result", "ok".to_string())],
        refreshed as f64,
    );
    out.sample(
        "centralino_token_refreshes_total",
        &[("result", "failed".to_string())],
        failed as f64,
    );
}
