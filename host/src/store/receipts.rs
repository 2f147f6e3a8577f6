//! What a platform says about messages already stored: receipts for the company's replies
//! (delivered, read, failed) and customers deleting or editing what they wrote.
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
//!
//! An edit (Messenger's `message_edit`, and other platforms' edits) replaces the stored
//! message's text, records when (`edited_at`), and tells the CRM (`message-edited`, with the
//! new text). Only a later edit replaces an earlier one, and an edit repeated by the
//! platform changes nothing and tells the CRM nothing; a deleted message stays deleted. An
//! edit of a message the host never stored (it arrived before the host served the account,
//! or was lost upstream) is stored as the message it now is: the customer's words are
//! never dropped. The CRM's `message-received` events still held keep the text they
//! carried: the `message-edited` that follows them says what changed, in order.
//!
//! Where a platform gives an edited version an id of its own (X), the edit names it
//! (`crate::conventions::VERSION`) and the host records it in `message_versions`: a
//! deletion naming the version then empties the message the host knows by the original's
//! id (X deletes the whole chain when any version is deleted, and may name any of them).

use sqlx::Row;

use super::text::{read, stored};
use super::{Backend, Ingested, events, ms};
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

/// A customer edited a message the host may have stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    /// The message as it reads now, as the connector reported it (marker included: stored
    /// as a new message when the original never was, it says it was edited).
    pub(crate) message: Message,
    /// When the customer edited it (ms).
    pub(crate) at: u64,
}

/// What a delivery or a poll says besides the messages to store: receipts, and the
/// deletions and edits that travel as marked messages (see `crate::conventions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Amendments {
    /// Receipts for the company's replies.
    pub(crate) receipts: Vec<Receipt>,
    /// Messages the customers deleted.
    pub(crate) deletions: Vec<Deletion>,
    /// Messages the customers edited.
    pub(crate) edits: Vec<Edit>,
}

impl Amendments {
    /// Splits what a connector reported into the messages to store and their amendments.
    pub(crate) fn split(messages: Vec<Message>, receipts: Vec<Receipt>) -> (Vec<Message>, Self) {
        let mut amendments = Amendments {
            receipts,
            ..Amendments::default()
        };
        let mut to_store = Vec::with_capacity(messages.len());
        for message in messages {
            if crate::conventions::is_deletion(&message) {
                amendments.deletions.push(Deletion::from_message(&message));
            } else if let Some(at) = crate::conventions::edited_at(&message) {
                amendments.edits.push(Edit { message, at });
            } else {
                to_store.push(message);
            }
        }
        (to_store, amendments)
    }

    /// Whether there is nothing to apply.
    pub(crate) fn is_empty(&self) -> bool {
        self.receipts.is_empty() && self.deletions.is_empty() && self.edits.is_empty()
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
    /// Stored messages whose text an edit replaced.
    pub(crate) edits: usize,
    /// Edits of messages the host never stored, stored as the messages they now are.
    pub(crate) edits_stored_new: usize,
}

impl Applied {
    /// Logs what changed and what named nothing stored (`source`: `webhook`, or the account
    /// whose poll carried it); nothing when nothing did.
    pub(crate) fn log(&self, tenant: &str, connector: &str, source: &str) {
        if self == &Applied::default() {
            return;
        }
        tracing::debug!(
            tenant,
            connector,
            source,
            receipts = self.receipts,
            receipts_unmatched = self.receipts_unmatched,
            deletions = self.deletions,
            deletions_unmatched = self.deletions_unmatched,
            edits = self.edits,
            edits_stored_new = self.edits_stored_new,
            "receipts, deletions and edits applied"
        );
    }
}

/// Stores `messages`, then applies `amendments` in the same transaction (an amendment may
/// name one of those messages): one outcome per message stored (the edits of messages
/// never stored included), whether one of their authors was filed before, and what the
/// amendments changed.
pub(super) async fn store_and_amend(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    messages: &[Message],
    amendments: &Amendments,
    now: i64,
) -> anyhow::Result<(Vec<Ingested>, bool, Applied)> {
    let (mut ingested, returning) = if messages.is_empty() {
        (Vec::new(), false)
    } else {
        super::ingest::stored_and_authors(tx, backend, tenant, channel, messages, now).await?
    };
    let (stored_new, returning_too, applied) =
        apply(tx, backend, tenant, channel, amendments, now).await?;
    ingested.extend(stored_new);
    Ok((ingested, returning || returning_too, applied))
}

/// Applies `amendments` inside the transaction that stored the messages they came with
/// (so an amendment may name one of those), appends the CRM events they cause, and stores
/// the edits of messages never stored as new messages: their outcomes, whether one of
/// their authors was filed before, and what changed.
async fn apply(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    channel: &str,
    amendments: &Amendments,
    now: i64,
) -> anyhow::Result<(Vec<Ingested>, bool, Applied)> {
    let mut applied = Applied::default();
    let mut crm = Vec::new();
    for receipt in &amendments.receipts {
        match apply_receipt(tx, tenant, channel, receipt, &mut crm).await? {
            Some(n) => applied.receipts += n,
            None => applied.receipts_unmatched += 1,
        }
    }
    for deletion in &amendments.deletions {
        if delete(tx, tenant, channel, deletion, &mut crm).await? {
            applied.deletions += 1;
        } else {
            applied.deletions_unmatched += 1;
        }
    }
    // Edits of messages never stored, the latest of each message only: stored as it now
    // reads (two edits of one message in a delivery would otherwise store the first and
    // take the second for its duplicate).
    let mut never_stored: Vec<&Edit> = Vec::new();
    for amendment in &amendments.edits {
        match edit(tx, tenant, channel, amendment, &mut crm).await? {
            Edited::Applied => applied.edits += 1,
            Edited::Stale => {}
            Edited::NotStored => {
                let same = |e: &&Edit| {
                    e.message.account == amendment.message.account
                        && e.message.external_id == amendment.message.external_id
                };
                match never_stored.iter_mut().find(|e| same(e)) {
                    Some(earlier) if earlier.at <= amendment.at => *earlier = amendment,
                    Some(_) => {}
                    None => never_stored.push(amendment),
                }
            }
        }
    }
    events::append_many(tx, backend, tenant, &crm, now).await?;
    if never_stored.is_empty() {
        return Ok((Vec::new(), false, applied));
    }
    let never_stored: Vec<Message> = never_stored
        .into_iter()
        .map(|e| e.message.clone())
        .collect();
    let (ingested, returning) =
        super::ingest::stored_and_authors(tx, backend, tenant, channel, &never_stored, now).await?;
    applied.edits_stored_new = ingested.iter().filter(|i| !i.duplicate).count();
    for (message, outcome) in never_stored.iter().zip(&ingested) {
        if let Some(version) = crate::conventions::version(message)
            && !outcome.erased
        {
            let stored_as = (
                outcome.message_id.as_str(),
                outcome.conversation_id.as_str(),
            );
            remember_version(tx, tenant, channel, &message.account, version, stored_as).await?;
        }
    }
    Ok((ingested, returning, applied))
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
    // The message with this id, or the one an edit said this id is a version of.
    let row = sqlx::query(
        "SELECT id, conversation_id, external_id FROM messages
         WHERE tenant = $1 AND channel = $2 AND account = $3 AND external_id = $4
             AND direction = 'inbound' AND deleted_at IS NULL
         UNION ALL
         SELECT m.id, m.conversation_id, m.external_id FROM message_versions v
             JOIN messages m ON m.id = v.message_id
         WHERE v.tenant = $1 AND v.channel = $2 AND v.account = $3 AND v.external_id = $4
             AND m.direction = 'inbound' AND m.deleted_at IS NULL",
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
    let external_id = read(row.try_get("external_id")?);
    // Guarded: on PostgreSQL another host may apply the same deletion meanwhile; this
    // update then waits for its commit, finds the message deleted and changes nothing, so
    // the CRM hears of the deletion once.
    let emptied = sqlx::query(
        "UPDATE messages SET text = '', attachments = '[]', extra = '[]', deleted_at = $2
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(&message_id)
    .bind(ms(deletion.at))
    .execute(&mut **tx)
    .await?;
    if emptied.rows_affected() == 0 {
        return Ok(false);
    }
    super::media::delete_of_message(tx, &message_id).await?;
    scrub_events(tx, tenant, &message_id).await?;
    crm.push(CrmEvent::MessageDeleted {
        conversation_id: conversation_id.into(),
        connector: channel.into(),
        message_id,
        external_id,
        at: deletion.at,
    });
    Ok(true)
}

/// What an edit did.
enum Edited {
    /// The stored text was replaced.
    Applied,
    /// Nothing to do: the message was deleted, a later edit is stored, or this one was.
    Stale,
    /// No such message is stored.
    NotStored,
}

/// Replaces the edited message's stored text (see the module docs).
async fn edit(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    edit: &Edit,
    crm: &mut Vec<CrmEvent>,
) -> anyhow::Result<Edited> {
    let message = &edit.message;
    let row = sqlx::query(
        "SELECT id, conversation_id FROM messages
         WHERE tenant = $1 AND channel = $2 AND account = $3 AND external_id = $4
             AND direction = 'inbound'",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(&message.account))
    .bind(stored(&message.external_id))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Edited::NotStored);
    };
    let message_id: String = row.try_get("id")?;
    let conversation_id: String = row.try_get("conversation_id")?;
    if let Some(version) = crate::conventions::version(message) {
        let stored_as = (message_id.as_str(), conversation_id.as_str());
        remember_version(tx, tenant, channel, &message.account, version, stored_as).await?;
    }
    // Replaced only while not deleted, not already reading so, and not edited later. The
    // conditions are the update's own: on PostgreSQL another host may apply this edit (or
    // a deletion, or a later edit) meanwhile; the update then waits for its commit, sees
    // what it wrote and changes nothing, so the CRM hears of the edit once.
    let replaced = sqlx::query(
        "UPDATE messages SET text = $2, edited_at = $3
         WHERE id = $1 AND deleted_at IS NULL AND text <> $2
             AND (edited_at IS NULL OR edited_at <= $3)",
    )
    .bind(&message_id)
    .bind(stored(&message.text))
    .bind(ms(edit.at))
    .execute(&mut **tx)
    .await?;
    if replaced.rows_affected() == 0 {
        return Ok(Edited::Stale);
    }
    crm.push(CrmEvent::MessageEdited {
        conversation_id: conversation_id.into(),
        connector: channel.into(),
        message_id,
        external_id: message.external_id.clone(),
        text: message.text.clone(),
        at: edit.at,
    });
    Ok(Edited::Applied)
}

/// Records that the platform's id `version` names the stored message `stored_as` (its id
/// and conversation) too; a repeat changes nothing.
async fn remember_version(
    tx: &mut Tx<'_>,
    tenant: &str,
    channel: &str,
    account: &str,
    version: &str,
    stored_as: (&str, &str),
) -> anyhow::Result<()> {
    let (message_id, conversation_id) = stored_as;
    sqlx::query(
        "INSERT INTO message_versions
             (tenant, channel, account, external_id, message_id, conversation_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, channel, account, external_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(channel)
    .bind(stored(account))
    .bind(stored(version))
    .bind(message_id)
    .bind(conversation_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Empties the deleted message in the `message-received` and `message-edited` events still
/// stored (pending, or delivered and kept until retention removes them), so its text leaves
/// the database.
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
        let scrubbed = match &mut event {
            CrmEvent::MessageReceived {
                message_id: of,
                message,
                ..
            } if of == message_id => {
                message.text.clear();
                message.attachments.clear();
                message.extra.clear();
                true
            }
            CrmEvent::MessageEdited {
                message_id: of,
                text,
                ..
            } if of == message_id => {
                text.clear();
                true
            }
            _ => false,
        };
        if scrubbed {
            sqlx::query("UPDATE crm_events SET payload = $2 WHERE id = $1")
                .bind(&id)
                .bind(serde_json::to_string(&event)?)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
