//! A webhook delivery in one transaction: its messages, receipts and deletions with every
//! CRM event they cause, and, on SQLite, what routing decided for it.
//!
//! [`Store::begin_delivery`] writes the delivery and leaves the transaction open; the
//! host records the routing outcome in it ([`OpenDelivery::record_routing`]) and commits
//! once ([`OpenDelivery::commit`]): one commit, so one wait for the disk, per delivery.
//! Dropped without committing, everything rolls back and the platform is answered with a
//! retry. On SQLite the store has one connection, so while a delivery is open nothing
//! else reaches the database: whatever routing reads meanwhile goes through the open
//! delivery too.

use std::collections::HashMap;

use anyhow::Context as _;

use super::assignments::{RoutedConversation, routed_conversation_in};
use super::{Applied, Backend, ConversationStatus, Deletion, Ingested, Store, events, ingest, ms};
use crate::crm::CrmEvent;
use crate::types::{Message, Receipt};

/// A delivery written but not committed (see the module docs).
#[cfg_attr(feature = "test-support", visibility::make(pub))]
pub(crate) struct OpenDelivery {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    tenant: String,
    clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
    /// Whether an author of the delivery's messages was filed under a customer before it.
    returning: bool,
}

impl Store {
    /// Stores one webhook delivery in one transaction: its messages (as
    /// [`Store::ingest`]), its receipts and its deletions, with every CRM event they cause.
    pub(crate) async fn ingest_delivery(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        receipts: &[Receipt],
        deletions: &[Deletion],
    ) -> anyhow::Result<(Vec<Ingested>, Applied)> {
        let (delivery, ingested, applied) = self
            .begin_delivery(tenant, channel, messages, receipts, deletions)
            .await?;
        delivery.commit().await?;
        Ok((ingested, applied))
    }

    /// [`Store::ingest`], leaving the transaction open for the routing outcome
    /// (benchmarks: the host's ingest path, one stage at a time).
    #[cfg(feature = "test-support")]
    pub async fn begin_ingest(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
    ) -> anyhow::Result<(OpenDelivery, Vec<Ingested>)> {
        let (delivery, ingested, _) = self
            .begin_delivery(tenant, channel, messages, &[], &[])
            .await?;
        Ok((delivery, ingested))
    }

    /// [`Store::ingest_delivery`], leaving the transaction open for the caller to add the
    /// routing outcome and commit.
    pub(crate) async fn begin_delivery(
        &self,
        tenant: &str,
        channel: &str,
        messages: &[Message],
        receipts: &[Receipt],
        deletions: &[Deletion],
    ) -> anyhow::Result<(OpenDelivery, Vec<Ingested>, Applied)> {
        let mut tx = self.pool.begin().await?;
        let now = ms(self.now_ms());
        let (ingested, returning) = if messages.is_empty() {
            (Vec::new(), false)
        } else {
            ingest::stored_and_authors(&mut tx, self.backend, tenant, channel, messages, now)
                .await?
        };
        let mut applied = Applied::default();
        let mut crm = Vec::new();
        for receipt in receipts {
            let changed =
                super::receipts::apply_receipt(&mut tx, tenant, channel, receipt, &mut crm).await?;
            match changed {
                Some(n) => applied.receipts += n,
                None => applied.receipts_unmatched += 1,
            }
        }
        for deletion in deletions {
            if super::receipts::delete(&mut tx, tenant, channel, deletion, &mut crm).await? {
                applied.deletions += 1;
            } else {
                applied.deletions_unmatched += 1;
            }
        }
        events::append_many(&mut tx, self.backend, tenant, &crm, now).await?;
        let delivery = OpenDelivery {
            tx,
            backend: self.backend,
            tenant: tenant.to_string(),
            clock: self.clock.clone(),
            returning,
        };
        Ok((delivery, ingested, applied))
    }
}

impl OpenDelivery {
    /// [`Store::routed_conversation`], read inside the delivery.
    pub(crate) async fn routed_conversation(
        &mut self,
        id: &str,
    ) -> anyhow::Result<Option<RoutedConversation>> {
        routed_conversation_in(&mut self.tx, &self.tenant, id).await
    }

    /// [`Store::helpers`], read inside the delivery; not read at all when every author
    /// was filed by this delivery (a new customer has no last helper).
    pub(crate) async fn helpers(
        &mut self,
        channel: &str,
        platform_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, (String, u64)>> {
        if !self.returning {
            return Ok(HashMap::new());
        }
        super::customers::helpers_in(
            &mut self.tx,
            self.backend,
            &self.tenant,
            channel,
            platform_ids,
        )
        .await
    }

    /// [`Store::record_routing`], inside the delivery.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn record_routing(
        &mut self,
        changes: &[(String, ConversationStatus, Option<String>)],
        events: &[CrmEvent],
    ) -> anyhow::Result<()> {
        if changes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let now = crate::clock::read(self.clock.as_ref());
        super::assignments::record_routing_in(
            &mut self.tx,
            self.backend,
            &self.tenant,
            changes,
            events,
            now,
        )
        .await
    }

    /// Commits the delivery: its messages, their events and the routing outcome at once.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn commit(self) -> anyhow::Result<()> {
        self.tx
            .commit()
            .await
            .context("committing a webhook delivery")
    }
}
