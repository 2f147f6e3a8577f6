//! The retention task: every hour (the first time a minute after start-up) it deletes
//! what the host no longer needs, as of now on the host's clock: delivered CRM events and
//! finished replies past [`HostBuilder::retention`](super::HostBuilder::retention), and
//! each tenant's conversations and messages past its
//! [`ContentRetention`](crate::store::ContentRetention).

use std::sync::Weak;
use std::time::Duration;

use super::HostInner;

/// How often the host prunes what it no longer needs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prunes every [`PRUNE_EVERY`] until the host is dropped.
pub(super) async fn pruner(host: Weak<HostInner>) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let Some(inner) = host.upgrade() else { return };
        if let Err(e) = prune(&inner).await {
            tracing::error!("pruning the store: {e:#}");
        }
        drop(inner);
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// One pass of the retention task.
async fn prune(inner: &HostInner) -> anyhow::Result<()> {
    let store = &inner.store;
    if let Some(keep) = inner.retention {
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        let pruned = store.prune(store.now_ms().saturating_sub(keep_ms)).await?;
        if pruned != Default::default() {
            tracing::info!(
                events = pruned.events,
                replies = pruned.replies,
                "pruned delivered CRM events and finished replies past the retention period"
            );
        }
    }
    let mut tenants: Vec<_> = inner.content_retention.iter().collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    for (tenant, retention) in tenants {
        let pruned = store.prune_content(tenant, retention).await?;
        if pruned != Default::default() {
            tracing::info!(
                tenant,
                conversations = pruned.conversations,
                messages = pruned.messages,
                "applied the tenant's retention of conversations and messages"
            );
            store.forget_erased_bytes().await?;
        }
    }
    Ok(())
}

#[cfg(feature = "test-support")]
impl super::Host {
    /// Runs one pass of the retention task now (it otherwise runs every hour), on the
    /// host's clock: for tests that move a manual clock past a retention period.
    #[doc(hidden)]
    pub async fn run_retention(&self) -> Result<(), crate::error::Error> {
        Ok(prune(&self.inner).await?)
    }
}
