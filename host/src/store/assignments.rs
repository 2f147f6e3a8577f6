//! What routing keeps in the store so it survives a restart, and so a host sharing the
//! database can pick up a conversation another host routed: each open conversation's
//! status, assignee, when the assignee got it and whether a person handed it over, plus
//! the customer's latest text (what a policy reads when it is routed again).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{ConversationRecord, ConversationStatus, Store, conversation_from_row, ms};
use crate::clock::now_ms;

/// A stored conversation with what routing needs to take it up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedConversation {
    /// The conversation.
    pub record: ConversationRecord,
    /// When the current assignee got it (ms), if recorded.
    pub assigned_at: Option<i64>,
    /// Whether a person handed it over (then any operator may reply).
    pub transferred: bool,
    /// Text of the customer's latest message.
    pub last_text: String,
    /// Customer messages so far.
    pub messages: i64,
}

const SELECT: &str = "SELECT c.*,
        (SELECT m.text FROM messages m
         WHERE m.tenant = c.tenant AND m.conversation_id = c.id AND m.direction = 'inbound'
         ORDER BY m.created_at DESC, m.received_at DESC, m.batch_index DESC LIMIT 1) AS last_text,
        (SELECT COUNT(*) FROM messages m
         WHERE m.tenant = c.tenant AND m.conversation_id = c.id AND m.direction = 'inbound')
            AS inbound_messages
     FROM conversations c";

impl Store {
    /// Every conversation of `tenant` that is not resolved, oldest first, for routing to
    /// take up at start-up.
    pub async fn open_conversations(
        &self,
        tenant: &str,
    ) -> anyhow::Result<Vec<RoutedConversation>> {
        let sql = format!(
            "{SELECT} WHERE c.tenant = $1 AND c.status <> 'resolved' ORDER BY c.created_at, c.id"
        );
        let rows = sqlx::query(&sql).bind(tenant).fetch_all(&self.pool).await?;
        rows.iter().map(routed_from_row).collect()
    }

    /// One conversation of `tenant` with its routing state.
    pub async fn routed_conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<RoutedConversation>> {
        let sql = format!("{SELECT} WHERE c.tenant = $1 AND c.id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| routed_from_row(&r)).transpose()
    }

    /// Records that `operator` holds a conversation now (assigned by routing, or handed
    /// over by a person when `transferred`).
    pub async fn set_conversation_assignee(
        &self,
        tenant: &str,
        id: &str,
        operator: &str,
        transferred: bool,
    ) -> anyhow::Result<()> {
        let now = ms(now_ms());
        sqlx::query(
            "UPDATE conversations SET status = $3, assignee = $4, assigned_at = $5,
                transferred = $6, updated_at = $5
             WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(ConversationStatus::Assigned.as_str())
        .bind(operator)
        .bind(now)
        .bind(i64::from(transferred))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn routed_from_row(row: &AnyRow) -> anyhow::Result<RoutedConversation> {
    Ok(RoutedConversation {
        record: conversation_from_row(row)?,
        assigned_at: row.try_get("assigned_at")?,
        transferred: row.try_get::<i64, _>("transferred")? != 0,
        last_text: row
            .try_get::<Option<String>, _>("last_text")?
            .unwrap_or_default(),
        messages: row.try_get("inbound_messages")?,
    })
}
