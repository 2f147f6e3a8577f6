//! The CRM dispatcher: stored events out to the [`Crm`], in order, at least once.

use std::sync::Arc;
use std::time::Duration;

use crate::crm::Crm;
use crate::store::Store;

/// Delivers stored events to `crm` until the task running it is stopped.
pub(crate) async fn dispatcher(store: Store, crm: Arc<dyn Crm>, host_id: String) {
    {
        loop {
            let idle = match dispatch_once(&store, crm.as_ref(), &host_id).await {
                Ok(delivered) => delivered == 0,
                Err(e) => {
                    tracing::error!("CRM dispatcher: {e:#}");
                    true
                }
            };
            if idle {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Delivers the events that are due, in order, stopping at the first failure (so the CRM
/// never sees a later event before an earlier one). Returns how many were delivered.
pub(crate) async fn dispatch_once(
    store: &Store,
    crm: &dyn Crm,
    host_id: &str,
) -> anyhow::Result<usize> {
    let batch = store.claim_events(host_id, 100).await?;
    if !batch.is_empty() {
        tracing::debug!(events = batch.len(), "delivering CRM events");
    }
    // Delivered events are marked together, once the batch is over: a crash before that
    // redelivers them with their stable ids, as a crash between a delivery and its mark
    // always could.
    let mut delivered = Vec::with_capacity(batch.len());
    let mut failed = None;
    let mut pending = batch.into_iter();
    for (delivery, attempts) in pending.by_ref() {
        match crm.deliver(&delivery).await {
            Ok(()) => delivered.push(delivery.id),
            Err(e) => {
                let retry = u64::try_from(attempts.saturating_sub(1)).unwrap_or(0);
                let wait = crate::retry::CRM_EVENTS.delay(retry);
                tracing::warn!(event = %delivery.id, attempts, "CRM refused an event, retrying in {wait:?}: {e:#}");
                failed = Some((delivery.id, format!("{e:#}"), wait));
                break;
            }
        }
    }
    store.events_delivered(&delivered).await?;
    if let Some((id, reason, wait)) = failed {
        store.event_failed(&id, &reason, wait).await?;
    }
    // Events claimed after a failure go back untouched, to keep the order.
    let rest: Vec<String> = pending.map(|(delivery, _)| delivery.id).collect();
    store.events_release(&rest).await?;
    let delivered = delivered.len();
    Ok(delivered)
}
