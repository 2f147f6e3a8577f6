//! What a CRM does to a conversation through the host: reply, resolve, hand over, and set
//! an operator's presence. Routing's rules decide; its refusals come back typed.

use super::Host;
use crate::crm::CrmEvent;
use crate::error::Error;
use crate::ids::{ConversationId, TenantId};
use crate::store::{ConversationStatus, OutboxEntry};
use crate::types::Presence;

impl Host {
    /// Queues `operator`'s reply to a conversation in the outbox and returns the row; the
    /// host sends it in the background, once, and reports the outcome to the CRM. The
    /// reply is threaded under the customer's latest message and goes out from `account`
    /// (the operator's own account on the channel) or, when `None`, from the account the
    /// customer wrote to. With routing, the account is routing's choice (the operator's
    /// own where the channel allows it): `None` takes it, and any other account is
    /// refused. The same `idempotency_key` never queues a second reply.
    pub async fn reply(
        &self,
        tenant: impl Into<TenantId>,
        conversation_id: impl Into<ConversationId>,
        operator: &str,
        account: Option<&str>,
        text: &str,
        idempotency_key: &str,
    ) -> Result<OutboxEntry, Error> {
        self.reply_with_images(
            tenant,
            conversation_id,
            operator,
            account,
            text,
            &[],
            idempotency_key,
        )
        .await
    }

    /// [`Host::reply`] carrying `images` (see [`ReplyImage`](crate::ReplyImage) for what
    /// is accepted): each is checked (type, size, that its bytes are the type it says)
    /// and kept with the reply in the outbox, in the reply's transaction, so a retry
    /// after a restart still sends them. The connector uploads them the platform's way;
    /// one whose plugin does not declare the `attachments` capability fails the reply,
    /// saying so.
    #[allow(clippy::too_many_arguments)]
    pub async fn reply_with_images(
        &self,
        tenant: impl Into<TenantId>,
        conversation_id: impl Into<ConversationId>,
        operator: &str,
        account: Option<&str>,
        text: &str,
        images: &[crate::ReplyImage],
        idempotency_key: &str,
    ) -> Result<OutboxEntry, Error> {
        let tenant: &TenantId = &tenant.into();
        let conversation_id: &ConversationId = &conversation_id.into();
        super::media::check_images(images, self.inner.media_limits)?;
        // A blank text would go out as an empty post under the operator's name.
        if crate::types::is_blank_text(text) {
            return Err(Error::Refused(
                "the reply's text is blank: it has only whitespace or invisible characters"
                    .to_string(),
            ));
        }
        let store = &self.inner.store;
        // A retried request gets the reply its key queued, and routing is not told twice;
        // another reply under a used key is refused before routing hears of it, so a
        // refused reply never counts as the customer's answer.
        if let Some(queued) = store.outbox_by_key(tenant, idempotency_key).await? {
            return same_reply(
                queued,
                conversation_id,
                operator,
                text,
                images,
                idempotency_key,
            );
        }
        let conversation = store
            .conversation(tenant, conversation_id)
            .await?
            .ok_or_else(|| Error::UnknownConversation {
                tenant: tenant.into(),
                conversation: conversation_id.into(),
            })?;
        if conversation.status == ConversationStatus::Resolved {
            return Err(resolved(conversation_id));
        }
        let in_reply_to = store.latest_inbound_id(tenant, conversation_id).await?;
        let customer = (
            conversation.channel.clone(),
            conversation.customer_id.clone(),
        );
        let queue = |account: Option<String>| {
            let mut message = conversation.reply(
                account,
                in_reply_to.clone(),
                text.to_string(),
                idempotency_key.to_string(),
            );
            message.attachments = images.iter().map(crate::ReplyImage::described).collect();
            async move {
                store
                    .enqueue_reply_with_images(
                        tenant,
                        &conversation.channel,
                        conversation_id,
                        operator,
                        &message,
                        images,
                    )
                    .await
            }
        };
        let Some(routing) = self.inner.routing.get(tenant.as_str()) else {
            let (entry, new) = queue(account.map(str::to_string)).await?;
            return if new {
                Ok(entry)
            } else {
                same_reply(
                    entry,
                    conversation_id,
                    operator,
                    text,
                    images,
                    idempotency_key,
                )
            };
        };
        // With routing, only the assignee (or anyone after a transfer) may answer, and the
        // engine picks the sending account: the operator's own where the channel allows it.
        // Who holds the conversation is read from the store on PostgreSQL (another host may
        // have resolved or handed it over). The reply counts as the answer only once the
        // outbox has accepted it.
        let mut routing = routing.lock().await;
        let id = routing
            .current(store, tenant, conversation_id, &self.inner.brands(tenant))
            .await?
            .ok_or_else(|| resolved(conversation_id))?;
        let route = routing
            .engine
            .authorize_reply(id, operator)
            .map_err(|e| refused_by_routing(conversation_id, e))?;
        // The account asked for is honoured when it is the one routing allows, and refused
        // otherwise: a reply never goes out from an account nobody asked for silently.
        if let Some(asked) = account
            && asked != route.account
        {
            return Err(Error::Refused(format!(
                "`{operator}` answers conversation `{conversation_id}` from account `{}`, \
                 not `{asked}`: leave the account out to use it",
                route.account
            )));
        }
        let (entry, new) = queue(Some(route.account)).await?;
        if !new {
            // Queued meanwhile under the same key (a concurrent retry): already counted.
            return same_reply(
                entry,
                conversation_id,
                operator,
                text,
                images,
                idempotency_key,
            );
        }
        let first = routing
            .engine
            .conversation(id)
            .filter(|c| c.first_response_at.is_none())
            .map(|c| (c.brand.clone(), c.created_at));
        routing
            .engine
            .record_reply(id, operator)
            .map_err(|e| refused_by_routing(conversation_id, e))?;
        if let Some((brand, created_at)) = first {
            let after = routing.engine.now().saturating_sub(created_at);
            self.inner.metrics.brand_first_response(
                tenant,
                brand.as_deref(),
                operator,
                std::time::Duration::from_millis(after),
            );
        }
        // Stored with the customer, for stickiness on any of their channels.
        store
            .record_helper(
                tenant,
                &customer.0,
                &customer.1,
                operator,
                routing.engine.now(),
            )
            .await?;
        Ok(entry)
    }

    /// Closes a conversation: the operator's seat frees and the queue moves. Resolving a
    /// resolved conversation changes nothing; an unknown one is an error.
    pub async fn resolve(
        &self,
        tenant: impl Into<TenantId>,
        conversation_id: impl Into<ConversationId>,
    ) -> Result<(), Error> {
        let tenant: &TenantId = &tenant.into();
        let conversation_id: &ConversationId = &conversation_id.into();
        let store = &self.inner.store;
        let conversation = store
            .conversation(tenant, conversation_id)
            .await?
            .ok_or_else(|| Error::UnknownConversation {
                tenant: tenant.into(),
                conversation: conversation_id.into(),
            })?;
        if conversation.status == ConversationStatus::Resolved {
            return Ok(());
        }
        let event = CrmEvent::ConversationResolved {
            conversation_id: conversation_id.into(),
        };
        let Some(routing) = self.inner.routing.get(tenant.as_str()) else {
            store
                .set_conversation_state(tenant, conversation_id, ConversationStatus::Resolved, None)
                .await?;
            store.append_event(tenant, &event).await?;
            return Ok(());
        };
        let mut routing = routing.lock().await;
        let brand = self.inner.brands(tenant);
        let mut change = routing
            .open(store, tenant, &[(conversation_id, false)], &brand)
            .await?;
        // Unknown to routing now: another host resolved it meanwhile.
        let Some(id) = routing.engine_id(conversation_id) else {
            routing.finish(store, tenant, change, Vec::new()).await?;
            return Ok(());
        };
        let handled = routing
            .engine
            .conversation(id)
            .and_then(|c| Some((c.brand.clone(), c.assignee.clone()?, c.assigned_at?)));
        let now = routing.engine.now();
        match routing.engine.resolve(id).await {
            Ok(notices) => change.notices.extend(notices),
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                return Err(refused_by_routing(conversation_id, e));
            }
        }
        if let Some((brand, operator, assigned_at)) = handled {
            let after = std::time::Duration::from_millis(now.saturating_sub(assigned_at));
            self.inner
                .metrics
                .handled(tenant, brand.as_deref(), &operator, after);
        }
        change
            .record_resolved(store, tenant, conversation_id)
            .await?;
        routing.finish(store, tenant, change, vec![event]).await?;
        if let Some(operator) = &conversation.assignee {
            store
                .record_helper(
                    tenant,
                    &conversation.channel,
                    &conversation.customer_id,
                    operator,
                    routing.engine.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Sets an operator's presence; coming online drains the queue, going offline re-routes
    /// their unanswered conversations. The presence is stored: the operator keeps it
    /// across restarts, and on PostgreSQL every host sharing the database routes on it.
    pub async fn set_presence(
        &self,
        tenant: impl Into<TenantId>,
        operator: &str,
        presence: Presence,
    ) -> Result<(), Error> {
        let tenant: &TenantId = &tenant.into();
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let store = &self.inner.store;
        let mut change = routing
            .open(store, tenant, &[], &self.inner.brands(tenant))
            .await?;
        let notices = match routing.engine.set_presence(operator, presence).await {
            Ok(notices) => notices,
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                return Err(Error::Routing {
                    conversation: None,
                    source: Box::new(e),
                });
            }
        };
        change.notices.extend(notices);
        // Until the change commits, the next one applies whatever the store has.
        routing.saw_presence(operator, None);
        let stored = change
            .record_presence(store, tenant, operator, presence)
            .await?;
        routing.finish(store, tenant, change, Vec::new()).await?;
        routing.saw_presence(operator, Some(stored));
        Ok(())
    }

    /// Hands a conversation to another operator.
    pub async fn transfer(
        &self,
        tenant: impl Into<TenantId>,
        conversation_id: impl Into<ConversationId>,
        to: &str,
    ) -> Result<(), Error> {
        let tenant: &TenantId = &tenant.into();
        let conversation_id: &ConversationId = &conversation_id.into();
        let mut routing = self.inner.tenant_routing(tenant).await?;
        let store = &self.inner.store;
        let mut change = routing
            .open(
                store,
                tenant,
                &[(conversation_id, false)],
                &self.inner.brands(tenant),
            )
            .await?;
        let result = match routing.engine_id(conversation_id) {
            Some(id) => routing
                .engine
                .transfer(id, to)
                .await
                .map_err(|e| refused_by_routing(conversation_id, e)),
            None => Err(resolved(conversation_id)),
        };
        match result {
            Ok(notices) => {
                change.notices.extend(notices);
                change
                    .record_transfer(store, tenant, conversation_id, to)
                    .await?;
                routing.finish(store, tenant, change, Vec::new()).await?;
                Ok(())
            }
            Err(e) => {
                routing.finish(store, tenant, change, Vec::new()).await?;
                Err(e)
            }
        }
    }
}

/// The reply queued under an idempotency key, when it is the reply asked for again;
/// otherwise the key was used for another reply.
fn same_reply(
    queued: OutboxEntry,
    conversation_id: &str,
    operator: &str,
    text: &str,
    images: &[crate::ReplyImage],
    key: &str,
) -> Result<OutboxEntry, Error> {
    let described: Vec<_> = images.iter().map(crate::ReplyImage::described).collect();
    let same = queued.conversation_id == conversation_id
        && queued.author == operator
        && queued.message.text == text
        && queued.message.attachments == described;
    if same {
        Ok(queued)
    } else {
        Err(Error::IdempotencyKeyReused {
            key: key.to_string(),
        })
    }
}

/// The refusal of a change to a conversation that is resolved (or that the store no longer
/// holds open).
fn resolved(conversation_id: &str) -> Error {
    Error::ConversationResolved {
        conversation: conversation_id.into(),
    }
}

/// Routing's refusal of a change to `conversation_id`, naming it by the store's id instead
/// of the engine's number.
fn refused_by_routing(conversation_id: &str, error: crate::routing::RoutingError) -> Error {
    let conversation = ConversationId::from(conversation_id);
    Error::Routing {
        source: Box::new(error.about(&conversation)),
        conversation: Some(conversation),
    }
}
