//! Search and paged lists for CRMs ([`Host::search_conversations`],
//! [`Host::search_messages`], [`Host::conversation_messages`]): each call reads one page
//! in SQL, whatever the tenant holds. How the index and the cursors work: the store's
//! `search.rs`.

use super::Host;
use crate::error::Error;
use crate::ids::{ConversationId, TenantId};
use crate::store::{
    ConversationRecord, InvalidCursor, InvalidQuery, Page, SearchQuery, StoredMessage, page_limit,
};

impl From<InvalidQuery> for Error {
    fn from(invalid: InvalidQuery) -> Self {
        Error::InvalidQuery(invalid.0)
    }
}

/// A store failure, or the caller's cursor of another list.
fn store_error(error: anyhow::Error) -> Error {
    match error.downcast_ref::<InvalidCursor>() {
        Some(invalid) => Error::InvalidQuery(invalid.to_string()),
        None => Error::Other(error),
    }
}

impl Host {
    /// One page of `tenant`'s conversations matching `query`, newest first (by creation).
    /// Hand the page's `next_cursor` back in [`SearchQuery::after`] for the next one: rows
    /// already stored are never repeated or skipped, whatever arrives meanwhile.
    ///
    /// A bad limit, search text or cursor is [`Error::InvalidQuery`], naming the field.
    pub async fn search_conversations(
        &self,
        tenant: impl Into<TenantId>,
        query: &SearchQuery,
    ) -> Result<Page<ConversationRecord>, Error> {
        let tenant: &TenantId = &tenant.into();
        let checked = query.check(self.brand_accounts(tenant, query.brand.as_deref()))?;
        self.inner
            .store
            .search_conversations(tenant, &checked)
            .await
            .map_err(store_error)
    }

    /// One page of `tenant`'s messages matching `query` (both directions unless it says),
    /// newest stored first; paged like [`Host::search_conversations`].
    pub async fn search_messages(
        &self,
        tenant: impl Into<TenantId>,
        query: &SearchQuery,
    ) -> Result<Page<StoredMessage>, Error> {
        let tenant: &TenantId = &tenant.into();
        let checked = query.check(self.brand_accounts(tenant, query.brand.as_deref()))?;
        self.inner
            .store
            .search_messages(tenant, &checked)
            .await
            .map_err(store_error)
    }

    /// One page of a conversation's messages, oldest first: at most `limit` (1 to
    /// [`crate::store::MAX_PAGE`], [`crate::store::DEFAULT_PAGE`] when `None`), after
    /// `cursor` (the previous page's `next_cursor`). [`Error::UnknownConversation`] when
    /// the tenant has no such conversation.
    pub async fn conversation_messages(
        &self,
        tenant: impl Into<TenantId>,
        conversation: impl Into<ConversationId>,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Page<StoredMessage>, Error> {
        let tenant: &TenantId = &tenant.into();
        let conversation: &ConversationId = &conversation.into();
        let limit = page_limit(limit)?;
        let store = &self.inner.store;
        if store.conversation(tenant, conversation).await?.is_none() {
            return Err(Error::UnknownConversation {
                tenant: tenant.into(),
                conversation: conversation.into(),
            });
        }
        store
            .conversation_messages(tenant, conversation, limit, cursor)
            .await
            .map_err(store_error)
    }

    /// The `(channel, account)` pairs configured with `brand` for `tenant`; `None` when no
    /// brand is asked for (an unknown brand has none, so nothing matches).
    fn brand_accounts(&self, tenant: &str, brand: Option<&str>) -> Option<Vec<(String, String)>> {
        let brand = brand?;
        let mut accounts: Vec<(String, String)> = self
            .inner
            .connectors
            .iter()
            .filter(|((of, _), _)| of == tenant)
            .flat_map(|((_, channel), connector)| {
                connector
                    .brands
                    .iter()
                    .filter(|(_, b)| b.as_str() == brand)
                    .map(move |(account, _)| (channel.clone(), account.clone()))
            })
            .collect();
        accounts.sort();
        Some(accounts)
    }
}
