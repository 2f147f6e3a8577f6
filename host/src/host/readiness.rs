//! Readiness: whether the host can take work, and when it cannot, why. The facts are read
//! once ([`Readiness`]) and judged for the whole host or for one tenant, so the console can
//! show a tenant's console user that tenant's state without naming any other tenant.

use std::time::Duration;

use super::Host;
use super::tasks::TaskHealth;
use crate::store::OutboxBacklog;

/// How long a due reply may wait unsent (or a send last) before the host reports itself
/// not ready: the sender handles dozens of replies a second, so minutes mean it is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// What readiness is judged from, read at one moment.
#[derive(Clone, Debug)]
pub(crate) struct Readiness {
    /// Whether the store answered a query.
    store: Result<(), String>,
    /// `(tenant, connector)` of every enabled connector without a started instance.
    not_started: Vec<(String, String)>,
    /// The supervised tasks.
    tasks: Vec<TaskHealth>,
    /// The outbox's backlog per tenant, or why it could not be read.
    outbox: Result<Vec<OutboxBacklog>, String>,
    now_ms: u64,
}

impl Readiness {
    /// `Ok` when the host (`tenant = None`) or `tenant` can take work; else why not. For
    /// a tenant only its own connectors, pollers and replies count, with what serves every
    /// tenant (the store, the host-wide tasks).
    pub(crate) fn judge(&self, tenant: Option<&str>) -> Result<(), String> {
        let mine = |t: &str| tenant.is_none_or(|only| only == t);
        self.store.clone()?;
        let waiting: Vec<String> = self
            .not_started
            .iter()
            .filter(|(t, _)| mine(t))
            .map(|(t, c)| format!("{t}/{c}"))
            .collect();
        if !waiting.is_empty() {
            return Err(format!("connectors not started: {}", waiting.join(", ")));
        }
        let down: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| !t.running)
            .filter(|t| {
                // `poller:<tenant>/<connector>` is a tenant's; the others serve everyone.
                t.task
                    .strip_prefix("poller:")
                    .and_then(|rest| rest.split_once('/'))
                    .is_none_or(|(t, _)| mine(t))
            })
            .map(|t| {
                format!(
                    "{} (panicked: {}; restarting)",
                    t.task,
                    t.last_panic.as_deref().unwrap_or("unknown cause")
                )
            })
            .collect();
        if !down.is_empty() {
            return Err(format!("background tasks down: {}", down.join(", ")));
        }
        let backlog = self.outbox.as_ref().map_err(Clone::clone)?;
        let stuck_ms = u64::try_from(STUCK_AFTER.as_millis()).unwrap_or(u64::MAX);
        let stuck: Vec<String> = backlog
            .iter()
            .filter(|b| mine(&b.tenant))
            .filter_map(|b| {
                let oldest = b
                    .oldest_due_ms
                    .into_iter()
                    .chain(b.oldest_sending_ms)
                    .min()?;
                let waited = self.now_ms.saturating_sub(oldest);
                (waited >= stuck_ms).then(|| {
                    format!(
                        "tenant `{}`: {} replies due and {} sending, the oldest waiting {} s",
                        b.tenant,
                        b.due,
                        b.sending,
                        waited / 1000
                    )
                })
            })
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!("replies are stuck: {}", stuck.join("; ")))
        }
    }

    /// The outbox's backlog read with the facts (empty when it could not be read).
    pub(crate) fn outbox(&self) -> &[OutboxBacklog] {
        self.outbox.as_deref().unwrap_or_default()
    }
}

impl Host {
    /// Whether the host can take work: the store answers a query, every connector has
    /// started an instance of its plugin, every background task runs and no reply is stuck
    /// in the outbox. The error says what is not ready.
    pub async fn readiness(&self) -> Result<(), String> {
        self.readiness_facts().await.judge(None)
    }

    /// The facts readiness is judged from, read now.
    pub(crate) async fn readiness_facts(&self) -> Readiness {
        let store = self
            .inner
            .store
            .ping()
            .await
            .map_err(|e| format!("the store does not answer: {e:#}"));
        let outbox = match &store {
            Ok(()) => self
                .inner
                .store
                .outbox_backlog()
                .await
                .map_err(|e| format!("reading the outbox backlog: {e:#}")),
            Err(e) => Err(e.clone()),
        };
        Readiness {
            store,
            not_started: self
                .connector_health()
                .into_iter()
                .filter(|h| h.enabled && h.instances_started == 0)
                .map(|h| (h.tenant.into_string(), h.connector.into_string()))
                .collect(),
            tasks: self.inner.task_book.health(),
            outbox,
            now_ms: self.inner.store.now_ms(),
        }
    }

    /// The supervised background tasks (outbox sender, CRM dispatcher, routing ticker,
    /// pruner, pollers, plugin watcher): whether each runs, and its restarts after panics.
    pub fn background_tasks(&self) -> Vec<TaskHealth> {
        self.inner.task_book.health()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(tenant: &str, oldest_due_ms: Option<u64>) -> OutboxBacklog {
        OutboxBacklog {
            tenant: tenant.into(),
            pending: 3,
            due: 3,
            sending: 0,
            oldest_pending_ms: oldest_due_ms,
            oldest_due_ms,
            oldest_sending_ms: None,
        }
    }

    fn task(name: &str, running: bool) -> TaskHealth {
        TaskHealth {
            task: name.to_string(),
            running,
            restarts: 1,
            down_since_ms: None,
            last_panic: (!running).then(|| "boom".to_string()),
        }
    }

    #[test]
    fn a_tenant_is_judged_by_its_own_connectors_pollers_and_replies_only() {
        let now = 10_000_000;
        let facts = Readiness {
            store: Ok(()),
            not_started: vec![("wind".into(), "twitter".into())],
            tasks: vec![
                task("outbox-sender", true),
                task("poller:wind/twitter", false),
            ],
            outbox: Ok(vec![
                backlog("wind", Some(0)),
                backlog("default", Some(now)),
            ]),
            now_ms: now,
        };
        let host = facts.judge(None).unwrap_err();
        assert!(host.contains("wind/twitter"), "{host}");
        assert_eq!(facts.judge(Some("default")), Ok(()));
        assert!(facts.judge(Some("wind")).is_err());

        // What serves every tenant counts for each.
        let facts = Readiness {
            tasks: vec![task("outbox-sender", false)],
            not_started: Vec::new(),
            outbox: Ok(Vec::new()),
            ..facts
        };
        let tenant = facts.judge(Some("default")).unwrap_err();
        assert!(tenant.contains("outbox-sender"), "{tenant}");
        let facts = Readiness {
            store: Err("the store does not answer: gone".into()),
            tasks: Vec::new(),
            ..facts
        };
        assert!(facts.judge(Some("default")).unwrap_err().contains("store"));
    }
}
