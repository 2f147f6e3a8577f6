//! The outbox sender: claims the replies that are due, sends each once through its
//! connector, and settles the outcome (sent, retried with backoff, failed for good, or
//! handed back untouched while the connector is not taking calls), telling the CRM.

use std::time::Duration;

use super::{HOST_AUTHOR, HostInner, admin};
use crate::crm::CrmEvent;
use crate::error::{Error, PluginFailure};
use crate::store::OutboxEntry;
use crate::types::Sent;

/// Sends due outbox rows until the host is dropped.
pub(super) async fn outbox_sender(host: std::sync::Weak<HostInner>) {
    {
        loop {
            let Some(inner) = host.upgrade() else { return };
            let handled = match send_due(&inner).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("outbox: {e:#}");
                    0
                }
            };
            drop(inner);
            if handled == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Claims and sends the replies that are due; returns how many were handled.
async fn send_due(inner: &HostInner) -> anyhow::Result<usize> {
    let batch = inner.store.claim_outbox(&inner.host_id, 32).await?;
    for entry in &batch {
        let connector = inner
            .connectors
            .get(&(entry.tenant.clone(), entry.connector.clone()));
        let result = match connector {
            // A disabled connector's replies wait in the outbox, unsent and not failed.
            Some(c) if !c.is_enabled() => {
                let retry_at = crate::clock::now_ms() + admin::DISABLED_OUTBOX_RECHECK_MS;
                inner.store.outbox_release(entry, retry_at).await?;
                continue;
            }
            Some(c) => match c.send(entry.message.clone()).await {
                // Refused before reaching the plugin (backing off after faults, circuit
                // open): not the reply's fault. It waits its turn, its attempts untouched,
                // and goes out once the connector takes calls again.
                Err(Error::Unavailable { retry_after_ms, .. }) => {
                    let wait = retry_after_ms
                        .map_or(UNAVAILABLE_RECHECK_MS, |ms| ms.min(UNAVAILABLE_RECHECK_MS));
                    let retry_at = crate::clock::now_ms() + wait;
                    inner.store.outbox_release(entry, retry_at).await?;
                    continue;
                }
                result => result,
            },
            None => Err(Error::UnknownConnector {
                tenant: entry.tenant.clone(),
                connector: entry.connector.clone(),
            }),
        };
        settle(inner, entry, result).await?;
    }
    Ok(batch.len())
}

/// Longest a reply waits before trying again a connector that refused it without calling
/// the plugin (an open circuit waits for an admin: this is how soon after a reset the
/// reply goes out).
const UNAVAILABLE_RECHECK_MS: u64 = 2_000;

/// Records the outcome of one send, counts it and tells the CRM.
async fn settle(
    inner: &HostInner,
    entry: &OutboxEntry,
    result: Result<Sent, Error>,
) -> anyhow::Result<()> {
    let store = &inner.store;
    let now = crate::clock::now_ms();
    let failure = match result {
        Ok(sent) => {
            first_response(inner, entry, sent.sent_at).await;
            store
                .outbox_sent(entry, &sent.external_id, sent.sent_at)
                .await?;
            inner.metrics.reply_sent(
                &entry.tenant,
                &entry.connector,
                &entry.message.account,
                entry.author == HOST_AUTHOR,
            );
            let event = CrmEvent::ReplySent {
                conversation_id: entry.conversation_id.clone(),
                outbox_id: entry.id.clone(),
                external_id: sent.external_id,
            };
            store.append_event(&entry.tenant, &event).await?;
            return Ok(());
        }
        Err(e) => e,
    };
    let reason = failure.to_string();
    // Temporary failures are retried (a few times); refusals are final and reported.
    let retry_at = match &failure {
        Error::Plugin {
            failure: PluginFailure::RateLimited { retry_after_ms, .. },
            ..
        } => Some(now.saturating_add(*retry_after_ms)),
        Error::Plugin {
            failure: PluginFailure::Transient { .. },
            ..
        }
        | Error::Fault { .. } => {
            let retry = u64::try_from(entry.attempts.saturating_sub(1)).unwrap_or(0);
            Some(now.saturating_add(crate::retry::OUTBOX.delay_ms(retry)))
        }
        _ => None,
    }
    .filter(|_| entry.attempts < 8);
    if matches!(
        failure,
        Error::Plugin {
            failure: PluginFailure::RateLimited { .. },
            ..
        }
    ) {
        inner.metrics.rate_limited(&entry.tenant, &entry.connector);
    }
    inner
        .metrics
        .reply_failed(&entry.tenant, &entry.connector, retry_at.is_some());
    tracing::warn!(outbox = %entry.id, retry = retry_at.is_some(), "reply not sent: {reason}");
    store.outbox_failed(entry, &reason, retry_at).await?;
    if retry_at.is_none() {
        let event = CrmEvent::ReplyFailed {
            conversation_id: entry.conversation_id.clone(),
            outbox_id: entry.id.clone(),
            reason,
            uncertain: false,
        };
        store.append_event(&entry.tenant, &event).await?;
    }
    Ok(())
}

/// Observes the first-response time when `entry` is the first reply of a person (not the
/// host's wait estimate) to reach the platform, before the store records it.
async fn first_response(inner: &HostInner, entry: &OutboxEntry, sent_at: u64) {
    if entry.author == HOST_AUTHOR {
        return;
    }
    let Ok(Some(conversation)) = inner
        .store
        .conversation(&entry.tenant, &entry.conversation_id)
        .await
    else {
        return;
    };
    if conversation.first_response_at.is_none() {
        let began = u64::try_from(conversation.created_at).unwrap_or(0);
        let after = Duration::from_millis(sent_at.saturating_sub(began));
        inner
            .metrics
            .first_response(&entry.tenant, &entry.connector, after);
    }
}
