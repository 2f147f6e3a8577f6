//! The outbox sender: claims the replies that are due, sends each once through its
//! connector, and settles the outcome (sent, retried with backoff, failed for good, or
//! handed back untouched while the connector is not taking calls), telling the CRM.

use std::time::Duration;

use super::{HOST_AUTHOR, HostInner, admin};
use crate::accounts::Recovery;
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
            inner
                .outbox_passes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
            .get(&(entry.tenant.to_string(), entry.connector.to_string()));
        let result = match connector {
            // A disabled connector's replies wait in the outbox, unsent and not failed.
            Some(c) if !c.is_enabled() => {
                let retry_at = inner.store.now_ms() + admin::DISABLED_OUTBOX_RECHECK_MS;
                inner.store.outbox_release(entry, retry_at).await?;
                continue;
            }
            // Past the platform's reply window: refused before any call, for the CRM to show.
            Some(c)
                if c.reply_window_applies()
                    && let Some(refusal) = outside_window(inner, c, entry).await? =>
            {
                settle(inner, entry, Err(Error::Refused(refusal))).await?;
                continue;
            }
            // A reply from an account waiting for re-authorisation is held, not tried.
            Some(c)
                if c.connected(&entry.message.account)
                    .is_some_and(|a| a.waits()) =>
            {
                inner
                    .store
                    .outbox_hold(entry, &entry.message.account)
                    .await?;
                continue;
            }
            Some(c) => {
                let message = match with_files(inner, entry).await? {
                    Ok(message) => message,
                    Err(refusal) => {
                        settle(inner, entry, Err(Error::Refused(refusal))).await?;
                        continue;
                    }
                };
                let result = c.send(message).await;
                // Whether the platform refused a host-held token in this send (401, 190).
                let refused = c
                    .connected(&entry.message.account)
                    .and_then(|a| a.take_refused());
                match result {
                    // Refused before reaching the plugin (backing off after faults, circuit
                    // open): not the reply's fault. It waits its turn, its attempts
                    // untouched, and goes out once the connector takes calls again.
                    Err(Error::Unavailable { retry_after_ms, .. }) => {
                        let wait = retry_after_ms
                            .map_or(UNAVAILABLE_RECHECK_MS, |ms| ms.min(UNAVAILABLE_RECHECK_MS));
                        let retry_at = inner.store.now_ms() + wait;
                        inner.store.outbox_release(entry, retry_at).await?;
                        continue;
                    }
                    Err(
                        failure @ Error::Plugin {
                            failure: PluginFailure::InvalidCredentials { .. },
                            ..
                        },
                    ) if refused.is_some() => {
                        let generation = refused.unwrap_or(i64::MAX);
                        token_refused(inner, entry, generation, failure).await?;
                        continue;
                    }
                    result => result,
                }
            }
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

/// How soon a reply whose host-held token was refused is tried again while the account's
/// fate is undecided (another host refreshing, the token endpoint unreachable).
const REFUSED_RECHECK_MS: u64 = 1_000;

/// `entry`'s reply with its files' bytes put back (the outbox keeps them beside it, see
/// `store/media.rs`), or why it cannot go out (its files are gone: an erasure).
async fn with_files(
    inner: &HostInner,
    entry: &OutboxEntry,
) -> anyhow::Result<Result<crate::types::OutboundMessage, String>> {
    let mut message = entry.message.clone();
    if message.attachments.is_empty() {
        return Ok(Ok(message));
    }
    let files = inner.store.outbound_media(&entry.tenant, &entry.id).await?;
    if files.len() != message.attachments.len() {
        return Ok(Err(format!(
            "the reply's {} file(s) are no longer in the store ({} found)",
            message.attachments.len(),
            files.len()
        )));
    }
    for (attachment, bytes) in message.attachments.iter_mut().zip(files) {
        attachment.data = bytes;
    }
    Ok(Ok(message))
}

/// Why `entry` is past its connector's reply window, if it is.
async fn outside_window(
    inner: &HostInner,
    connector: &crate::connectors::Connector,
    entry: &OutboxEntry,
) -> anyhow::Result<Option<String>> {
    let Some(last) = inner
        .store
        .last_inbound_at(&entry.tenant, &entry.conversation_id)
        .await?
    else {
        return Ok(None);
    };
    Ok(connector.outside_window(entry.message.kind, last, inner.store.now_ms()))
}

/// A send whose host-held token the platform refused: a newer or refreshed token sends
/// it again soon (counted as an attempt, so a platform that keeps refusing fresh tokens
/// ends it after the usual attempts); an account that needs an admin holds it, in order,
/// until re-authorised.
async fn token_refused(
    inner: &HostInner,
    entry: &OutboxEntry,
    generation: i64,
    failure: Error,
) -> anyhow::Result<()> {
    let key = (
        entry.tenant.to_string(),
        entry.connector.to_string(),
        entry.message.account.clone(),
    );
    let now = inner.store.now_ms();
    let reason = failure.to_string();
    match inner.accounts.after_refusal(&key, generation).await? {
        Recovery::NeedsReauth => {
            inner
                .store
                .outbox_hold(entry, &entry.message.account)
                .await?;
        }
        Recovery::Recovered if entry.attempts < 8 => {
            inner.store.outbox_failed(entry, &reason, Some(now)).await?;
        }
        Recovery::Later | Recovery::Unreachable if entry.attempts < 8 => {
            let retry_at = now + REFUSED_RECHECK_MS;
            inner
                .store
                .outbox_failed(entry, &reason, Some(retry_at))
                .await?;
        }
        Recovery::Recovered | Recovery::Later | Recovery::Unreachable => {
            settle(inner, entry, Err(failure)).await?;
        }
    }
    Ok(())
}

/// Records the outcome of one send, counts it and tells the CRM.
async fn settle(
    inner: &HostInner,
    entry: &OutboxEntry,
    result: Result<Sent, Error>,
) -> anyhow::Result<()> {
    let store = &inner.store;
    let now = inner.store.now_ms();
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
