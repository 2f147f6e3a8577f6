//! Polling: each account asked for what is new since its cursor, under this host's
//! polling lease; messages and the new cursor are committed together or not at all.

use serde::Serialize;

use super::Connector;
use super::call::CallKind;
use crate::store::leases::{Acquired, LeaseHolder};
use crate::store::{Ingested, Store};

/// What one poll of one account did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PollReport {
    /// The account.
    pub account: String,
    /// Messages stored (duplicates excluded).
    pub stored: usize,
    /// Messages already stored before.
    pub duplicates: usize,
    /// The failure, if the poll failed or was refused.
    pub error: Option<String>,
    /// The host holding the account's polling lease, when another host polls it (this
    /// one then did not); see RELIABILITY.md (poll leases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leased_to: Option<String>,
    /// When the platform asked not to be polled before (epoch ms on the host's clock, as
    /// the plugin's `next_poll_after_ms` said, at most [`MAX_POLL_PAUSE`] ahead): this
    /// poll was skipped, nothing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until_ms: Option<u64>,
}

/// The longest a plugin's `next_poll_after_ms` keeps an account from being polled: a
/// platform's windows are minutes to a day, so anything later is a broken value.
pub const MAX_POLL_PAUSE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Connector {
    /// Polls every account once, storing messages and cursors together. A failed or
    /// refused poll leaves the account's cursor where it was, so the next successful poll
    /// fetches the same messages again.
    ///
    /// Only accounts whose polling lease this host holds (or takes now) are polled, and a
    /// poll's messages and cursor are committed only if the lease is still this host's.
    pub(crate) async fn poll_all(
        &self,
        store: &Store,
        leases: &LeaseHolder,
    ) -> (Vec<PollReport>, Vec<Ingested>) {
        let mut reports = Vec::new();
        let mut all = Vec::new();
        for account in &self.accounts {
            let mut report = PollReport {
                account: account.clone(),
                stored: 0,
                duplicates: 0,
                error: None,
                leased_to: None,
                paused_until_ms: None,
            };
            // An account waiting for an admin's re-authorisation is not polled: its token
            // would only be refused again.
            if let Some(connected) = self.connected(account)
                && connected.waits()
            {
                report.error = Some(format!(
                    "polls paused: the account is {}; re-authorise it with `centralino accounts connect`",
                    connected.state()
                ));
                reports.push(report);
                continue;
            }
            // The platform said when to come back (the plugin's `next_poll_after_ms`).
            if let Some(until) = self.poll_paused_until(account) {
                tracing::trace!(tenant = %self.tenant, connector = %self.name, account, until, "poll skipped: the platform asked to wait");
                report.paused_until_ms = Some(until);
                reports.push(report);
                continue;
            }
            let active = self.active();
            if let Err(refused) = self.admit(&active) {
                tracing::debug!(tenant = %self.tenant, connector = %self.name, account, "poll skipped: {refused}");
                report.error = Some(refused.to_string());
                reports.push(report);
                continue;
            }
            // Held until the commit, so a shutdown releases the leases after it.
            let Some(_polling) = leases.enter().await else {
                report.error = Some("the host is stopping".to_string());
                reports.push(report);
                continue;
            };
            let ttl = leases.ttl(self.poll_interval);
            let fence = match store
                .acquire_poll_lease(&self.tenant, &self.name, account, leases, ttl)
                .await
            {
                Ok(Acquired::Held(fence)) => fence,
                Ok(Acquired::Elsewhere(holder)) => {
                    tracing::trace!(tenant = %self.tenant, connector = %self.name, account, holder, "polled by another host");
                    report.leased_to = Some(holder);
                    reports.push(report);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, connector = %self.name, account, "poll skipped, no lease: {e:#}");
                    report.error = Some(format!("taking the polling lease: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let cursor = match store.cursor(&self.tenant, &self.name, account).await {
                Ok(cursor) => cursor,
                Err(e) => {
                    report.error = Some(format!("reading the cursor: {e:#}"));
                    reports.push(report);
                    continue;
                }
            };
            let polled = self
                .call(&active, "poll", CallKind::Traffic, async |instance| {
                    Ok(instance.poll(account, cursor.as_deref()).await?)
                })
                .await;
            match polled {
                Ok(result) => {
                    match store
                        .ingest_polled_fenced(&fence, result.messages, result.cursor.as_deref())
                        .await
                    {
                        Ok(ingested) => {
                            self.pause_polls(account, result.next_poll_after_ms);
                            report.duplicates = ingested.iter().filter(|i| i.duplicate).count();
                            report.stored = ingested.len() - report.duplicates;
                            all.extend(ingested);
                        }
                        Err(e) => report.error = Some(format!("storing: {e:#}")),
                    }
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            if let Some(error) = &report.error {
                tracing::warn!(tenant = %self.tenant, connector = %self.name, account, "poll failed: {error}");
            }
            reports.push(report);
        }
        (reports, all)
    }
}

impl Connector {
    /// When `account`'s next poll may go out, if the platform asked to wait until later.
    fn poll_paused_until(&self, account: &str) -> Option<u64> {
        let now = self.now_ms();
        let pauses = self.poll_pauses.lock().ok()?;
        pauses.get(account).copied().filter(|until| *until > now)
    }

    /// Records the plugin's `next_poll_after_ms` for `account` (none clears it), bounded by
    /// [`MAX_POLL_PAUSE`].
    fn pause_polls(&self, account: &str, until: Option<u64>) {
        let now = self.now_ms();
        let cap = now.saturating_add(u64::try_from(MAX_POLL_PAUSE.as_millis()).unwrap_or(u64::MAX));
        if let Ok(mut pauses) = self.poll_pauses.lock() {
            match until.filter(|until| *until > now) {
                Some(until) => {
                    pauses.insert(account.to_string(), until.min(cap));
                }
                None => {
                    pauses.remove(account);
                }
            }
        }
    }
}
