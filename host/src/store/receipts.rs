//! What a platform says about messages already stored: receipts for the company's replies
//! (delivered, read, failed) and customers deleting what they wrote.
//!
//! Both are applied in the transaction that stores the rest of the delivery, with their CRM
//! events, so the platform is acknowledged only once the CRM is sure to hear of them.
//!
//! A receipt names either a message (a reply's platform id, or any message of the thread:
//! X names the last DM the customer read) or a whole thread (Messenger's watermark, whose
//! receipt names the thread key). Either way it covers every reply of the conversation
//! sent up to that point: a reply read implies the ones before it were read. A reply's
//! state only moves forward (none → delivered → read); `failed` applies only to the reply
//! it names, and only while nothing better is known. Each change is one `reply-receipt`
//! event; a receipt repeated by the platform changes nothing and tells the CRM nothing.
//!
//! A deletion empties the stored message (text, attachments, extras), marks it deleted,
//! scrubs its text from the CRM events still held, and tells the CRM (`message-deleted`):
//! platforms' terms (X's developer agreement) require honouring a customer's deletion.

use sqlx::Row;

use super::ms;
use super::text::{read, stored};
use crate::crm::CrmEvent;
use crate::types::{DeliveryState, Message, Receipt};

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// A customer deleted a message the host may have stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Deletion {
    /// The company account it was written to.
    pub(crate) account: String,
    /// The platform's id of the deleted message.
    pub(crate) external_id: String,
    /// When the platform says it was deleted (ms).
    pub(crate) at: u64,
}

impl Deletion {
    /// The deletion a connector reported as a message (see `crate::conventions`).
    pub(crate) fn from_message(message: &Message) -> Self {
        Deletion {
            account: message.account.clone(),
            external_id: message.external_id.clone(),
            at: message.created_at,
        }
    }
}

/// What a delivery changed besides the messages it stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Replies whose delivery state moved forward.
    pub(crate) receipts: usize,
    /// Receipts that named nothing the host sent or stored.
    pub(crate) receipts_unmatched: usize,
    /// Stored messages emptied and marked deleted.
    pub(crate) deletions: usize,
    /// Deletions of messages the host never stored (or deleted before).
    pub(crate) deletions_unmatched: usize,
}

/// How far a reply's delivery has got; `failed` is apart.
fn rank(state: Option<&str>) -> u8 {
    match state {
        Some("read") => 2,
        Some("delivered") => 1,
        _ => 0,
    }
}

fn state_str(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Delivered => "delivered",
        DeliveryState::Read => "read",
        DeliveryState::Failed => "failed",
    }
}

/// Reads a stored delivery state.
pub(super) fn parse_state(state: Option<String>) -> Option<DeliveryState> {
    match state.as_deref() {
        Some("delivered") => Some(DeliveryState::Delivered),
        Some("read") => Some(DeliveryState::Read),
        Some("failed") => Some(DeliveryState::Failed),
        _ => None,
    }
}

/// Applies one receipt; `None` when it names nothing stored, else how many replies moved.
pub(super) async fn apply_receipt(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    receipt: &Receipt,
    crm: &mut Vec<CrmEvent>,
) -> anyhow::Result<Option<usize>> {
    let at = ms(receipt.at);
    // The conversations it covers, and up to when.
    let named = sqlx::query(
        "SELECT conversation_id, created_at FROM messages
         WHERE tenant = $1 AND channel = $2 AND account = $3 AND external_id = $4",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(&receipt.account))
    .bind(stored(&receipt.external_id))
    .fetch_optional(&mut **tx)
    .await?;
    let covered: Vec<(String, i64)> = match named {
        Some(row) => vec![(row.try_get("conversation_id")?, row.try_get("created_at")?)],
        None => sqlx::query(
            "SELECT id FROM conversations
             WHERE tenant = $1 AND channel = $2 AND account = $3 AND thread_key = $4",
        )
        .bind(tenant)
        .bind(channel)
        .bind(stored(&receipt.account))
        .bind(stored(&receipt.external_id))
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, at)))
        .collect::<anyhow::Result<_>>()?,
    };
    if covered.is_empty() {
        return Ok(None);
    }
    let mut changed = 0;
    for (conversation_id, up_to) in covered {
        // The conversation's sent replies up to `up_to`, by the time the platform gave.
        let replies = sqlx::query(
            "SELECT o.id, o.external_id, o.delivery FROM outbox o
             JOIN messages m ON m.tenant = o.tenant AND m.channel = o.channel
                 AND m.external_id = o.external_id AND m.direction = 'outbound'
             WHERE o.tenant = $1 AND o.channel = $2 AND o.conversation_id = $3
                 AND o.status = 'sent' AND m.created_at <= $4",
        )
        .bind(tenant)
        .bind(channel)
        .bind(&conversation_id)
        .bind(up_to)
        .fetch_all(&mut **tx)
        .await?;
        for reply in replies {
            let external_id = read(reply.try_get("external_id")?);
            let current: Option<String> = reply.try_get("delivery")?;
            let moves = match receipt.state {
                DeliveryState::Failed => current.is_none() && external_id == receipt.external_id,
                state => rank(Some(state_str(state))) > rank(current.as_deref()),
            };
            if !moves {
                continue;
            }
            let outbox_id: String = reply.try_get("id")?;
            sqlx::query("UPDATE outbox SET delivery = $2, delivery_at = $3 WHERE id = $1")
                .bind(&outbox_id)
                .bind(state_str(receipt.state))
                .bind(at)
                .execute(&mut **tx)
                .await?;
            crm.push(CrmEvent::ReplyReceipt {
                conversation_id: conversation_id.clone().into(),
                outbox_id,
                external_id,
                state: receipt.state,
                at: receipt.at,
            });
            changed += 1;
        }
    }
    Ok(Some(changed))
}

/// Empties and marks the deleted message; `false` when no such message is stored (or it
/// was deleted before).
pub(super) async fn delete(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    deletion: &Deletion,
    crm: &mut Vec<CrmEvent>,
) -> anyhow::Result<bool> {
    let row = sqlx::query(
        "SELECT id, conversation_id FROM messages
         WHERE tenant = $1 AND channel = $2 AND account = $3 AND external_id = $4
             AND direction = 'inbound' AND deleted_at IS NULL",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(&deletion.account))
    .bind(stored(&deletion.external_id))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let message_id: String = row.try_get("id")?;
    let conversation_id: String = row.try_get("conversation_id")?;
    sqlx::query(
        "UPDATE messages SET text = '', attachments = '[]', extra = '[]', deleted_at = $2
         WHERE id = $1",
    )
    .bind(&message_id)
    .bind(ms(deletion.at))
    .execute(&mut **tx)
    .await?;
    super::media::delete_of_message(tx, &message_id).await?;
    scrub_events(tx, tenant, &message_id).await?;
    crm.push(CrmEvent::MessageDeleted {
        conversation_id: conversation_id.into(),
        connector: channel.into(),
        message_id,
        external_id: deletion.external_id.clone(),
        at: deletion.at,
    });
    Ok(true)
}

/// Empties the deleted message in the `message-received` events still stored (pending, or
/// delivered and kept until retention removes them), so its text leaves the database.
async fn scrub_events(tx: &mut Tx<'_>, tenant: &str, message_id: &str) -> anyhow::Result<()> {
    // Host ids are hex UUIDs, so the pattern holds no LIKE wildcard.
    let pattern = format!("%\"message_id\":\"{message_id}\"%");
    let rows =
        sqlx::query("SELECT id, payload FROM crm_events WHERE tenant = $1 AND payload LIKE $2")
            .bind(tenant)
            .bind(pattern)
            .fetch_all(&mut **tx)
            .await?;
    for row in rows {
        let id: String = row.try_get("id")?;
        let payload: String = row.try_get("payload")?;
        let mut event: CrmEvent = serde_json::from_str(&payload)?;
        if let CrmEvent::MessageReceived {
            message_id: ref of,
            ref mut message,
            ..
        } = event
            && of == message_id
        {
            message.text.clear();
            message.attachments.clear();
            message.extra.clear();
            sqlx::query("UPDATE crm_events SET payload = $2 WHERE id = $1")
                .bind(&id)
                .bind(serde_json::to_string(&event)?)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
