//! Customers through the host: the CRM links, unlinks and merges identities, reads a
//! customer's history across channels, exports everything held about them and erases it
//! (see [`crate::store`]'s `customers.rs` and `erasure.rs` for what each does to the data).

use super::Host;
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::{
    ConversationStatus, Customer, CustomerExport, CustomerRefusal, Erasure, HistoryCursor,
    HistoryPage,
};

/// Most messages one page of a customer's history holds.
pub const MAX_HISTORY_PAGE: usize = 500;

fn unknown(tenant: &str, customer: &str) -> Error {
    Error::UnknownCustomer {
        tenant: tenant.into(),
        customer: customer.to_string(),
    }
}

fn refused(tenant: &str, refusal: CustomerRefusal) -> Error {
    match refusal {
        CustomerRefusal::UnknownCustomer(id) => unknown(tenant, &id),
        CustomerRefusal::NotTheirs => {
            Error::Refused("the identity is not one of this customer's".to_string())
        }
        CustomerRefusal::LastIdentity => Error::Refused(
            "this is the customer's only identity: unlinking it would leave an empty record"
                .to_string(),
        ),
        CustomerRefusal::SameCustomer => {
            Error::Refused("a customer cannot be merged into itself".to_string())
        }
    }
}

impl Host {
    /// A customer of `tenant`, with their identities on every channel.
    pub async fn customer(&self, tenant: impl Into<TenantId>, id: &str) -> Result<Customer, Error> {
        let tenant: &TenantId = &tenant.into();
        self.inner
            .store
            .customer(tenant, id)
            .await?
            .ok_or_else(|| unknown(tenant, id))
    }

    /// The customer an identity (a connector's name and the platform's id of the person,
    /// as a conversation's `customer_id` gives it) belongs to. Every identity that wrote
    /// has one.
    pub async fn customer_by_identity(
        &self,
        tenant: impl Into<TenantId>,
        channel: &str,
        platform_id: &str,
    ) -> Result<Customer, Error> {
        let tenant: &TenantId = &tenant.into();
        self.inner
            .store
            .customer_by_identity(tenant, channel, platform_id)
            .await?
            .ok_or_else(|| unknown(tenant, &format!("{channel}:{platform_id}")))
    }

    /// Links an identity to customer `id`: from now on it is the same person (history,
    /// export, erasure, and stickiness: their next conversation on any channel goes to the
    /// operator who last helped them). The identity may be one that never wrote yet. A
    /// customer left without identities by the move is merged into `id`. Returns the
    /// customer.
    pub async fn link_identity(
        &self,
        tenant: impl Into<TenantId>,
        id: &str,
        channel: &str,
        platform_id: &str,
    ) -> Result<Customer, Error> {
        let tenant: &TenantId = &tenant.into();
        let store = &self.inner.store;
        if channel.trim().is_empty() || platform_id.trim().is_empty() {
            return Err(Error::Refused(
                "an identity needs a channel and a platform id".to_string(),
            ));
        }
        store
            .link_identity(tenant, id, channel, platform_id)
            .await?
            .map_err(|r| refused(tenant, r))?;
        tracing::info!(
            tenant = %tenant,
            customer = id,
            channel,
            "identity linked to a customer"
        );
        self.customer(tenant, id).await
    }

    /// Takes an identity away from customer `id`; it becomes a customer of its own (the
    /// customer's only identity cannot be taken). Returns customer `id` as it is now.
    pub async fn unlink_identity(
        &self,
        tenant: impl Into<TenantId>,
        id: &str,
        channel: &str,
        platform_id: &str,
    ) -> Result<Customer, Error> {
        let tenant: &TenantId = &tenant.into();
        self.inner
            .store
            .unlink_identity(tenant, id, channel, platform_id)
            .await?
            .map_err(|r| refused(tenant, r))?;
        tracing::info!(
            tenant = %tenant,
            customer = id,
            channel,
            "identity unlinked from a customer"
        );
        self.customer(tenant, id).await
    }

    /// Merges customer `from` into `into`: every identity of `from` becomes `into`'s, the
    /// later of their last helpers is kept, and `from` is gone. Returns `into`.
    pub async fn merge_customers(
        &self,
        tenant: impl Into<TenantId>,
        into: &str,
        from: &str,
    ) -> Result<Customer, Error> {
        let tenant: &TenantId = &tenant.into();
        self.inner
            .store
            .merge_customers(tenant, into, from)
            .await?
            .map_err(|r| refused(tenant, r))?;
        tracing::info!(tenant = %tenant, customer = into, merged = from, "customers merged");
        self.customer(tenant, into).await
    }

    /// One page of a customer's history across every channel, newest first: at most
    /// `limit` messages (1 to [`MAX_HISTORY_PAGE`], else [`Error::InvalidQuery`]), after
    /// `after` (a page's `next`).
    pub async fn customer_history(
        &self,
        tenant: impl Into<TenantId>,
        id: &str,
        limit: usize,
        after: Option<&HistoryCursor>,
    ) -> Result<HistoryPage, Error> {
        let tenant: &TenantId = &tenant.into();
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(Error::InvalidQuery(format!(
                "`limit`: a history page holds 1 to {MAX_HISTORY_PAGE} messages, not {limit}"
            )));
        }
        self.customer(tenant, id).await?;
        Ok(self
            .inner
            .store
            .customer_history(tenant, id, limit, after)
            .await?)
    }

    /// Everything the host holds about a customer, in one value (serialise it as JSON for
    /// the data subject): the customer and identities, the links suggested, and every
    /// conversation with its messages and replies.
    pub async fn export_customer(
        &self,
        tenant: impl Into<TenantId>,
        id: &str,
    ) -> Result<CustomerExport, Error> {
        let tenant: &TenantId = &tenant.into();
        let export = self
            .inner
            .store
            .export_customer(tenant, id)
            .await?
            .ok_or_else(|| unknown(tenant, id))?;
        tracing::info!(tenant = %tenant, customer = id, "customer exported");
        Ok(export)
    }

    /// Erases a customer (a data subject's request): their open conversations are resolved
    /// (seats free, the CRM is told), then every text, identity and attachment of theirs
    /// is removed, keeping the counts reports need; the CRM gets
    /// [`CustomerErased`](crate::crm::CrmEvent::CustomerErased), the audit log an entry,
    /// and a tombstone keeps redelivered webhooks and replayed events from bringing them
    /// back. It cannot be undone.
    pub async fn erase_customer(
        &self,
        tenant: impl Into<TenantId>,
        id: &str,
    ) -> Result<Erasure, Error> {
        let tenant: &TenantId = &tenant.into();
        let store = &self.inner.store;
        let export = store
            .export_customer(tenant, id)
            .await?
            .ok_or_else(|| unknown(tenant, id))?;
        for exported in &export.conversations {
            if exported.conversation.status != ConversationStatus::Resolved {
                self.resolve(tenant, &exported.conversation.id).await?;
            }
        }
        let erasure = store
            .erase_customer(tenant, id, "crm")
            .await?
            .ok_or_else(|| unknown(tenant, id))?;
        if let Some(routing) = self.inner.routing.get(tenant.as_str()) {
            let mut routing = routing.lock().await;
            let ids: Vec<_> = export
                .conversations
                .iter()
                .filter_map(|c| routing.engine_id(&c.conversation.id))
                .collect();
            let identities: Vec<(String, String)> = export
                .customer
                .identities
                .iter()
                .map(|i| (i.channel.clone(), i.platform_id.clone()))
                .collect();
            routing.engine.forget_customer(&ids, &identities);
        }
        tracing::info!(
            tenant = %tenant,
            customer = id,
            conversations = erasure.conversations,
            messages = erasure.messages,
            "customer erased"
        );
        Ok(erasure)
    }
}
