//! Readiness: whether the host can take work, and when it cannot, why.

use std::time::Duration;

use super::Host;
use super::tasks::TaskHealth;

/// How long a due reply may wait unsent (or a send last) before the host reports itself
/// not ready: the sender handles dozens of replies a second, so minutes mean it is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

impl Host {
    /// Whether the host can take work: the store answers a query and every connector has
    /// started an instance of its plugin. The error says what is not ready.
    pub async fn readiness(&self) -> Result<(), String> {
        self.inner
            .store
            .ping()
            .await
            .map_err(|e| format!("the store does not answer: {e:#}"))?;
        let waiting: Vec<String> = self
            .connector_health()
            .into_iter()
            .filter(|h| h.enabled && h.instances_started == 0)
            .map(|h| format!("{}/{}", h.tenant, h.connector))
            .collect();
        if !waiting.is_empty() {
            return Err(format!("connectors not started: {}", waiting.join(", ")));
        }
        self.inner.task_book.readiness()?;
        self.outbox_readiness().await
    }

    /// `Err` when replies are stuck: due for longer than [`STUCK_AFTER`] without being
    /// sent, or in the middle of a send for that long.
    async fn outbox_readiness(&self) -> Result<(), String> {
        let now = self.inner.store.now_ms();
        let stuck_ms = u64::try_from(STUCK_AFTER.as_millis()).unwrap_or(u64::MAX);
        let backlog = self
            .inner
            .store
            .outbox_backlog()
            .await
            .map_err(|e| format!("reading the outbox backlog: {e:#}"))?;
        let stuck: Vec<String> = backlog
            .iter()
            .filter_map(|b| {
                let oldest = b
                    .oldest_due_ms
                    .into_iter()
                    .chain(b.oldest_sending_ms)
                    .min()?;
                let waited = now.saturating_sub(oldest);
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

    /// The supervised background tasks (outbox sender, CRM dispatcher, routing ticker,
    /// pruner, pollers, plugin watcher): whether each runs, and its restarts after panics.
    pub fn background_tasks(&self) -> Vec<TaskHealth> {
        self.inner.task_book.health()
    }
}
