//! The host's own types for everything that crosses the plugin contract.
//!
//! Generated bindings stay private to the runtime (`bindings`); CRM vendors and the rest of the
//! host work with these types, which do not change when a new contract version adds
//! bindings.

use serde::{Deserialize, Serialize};

/// Author recorded for messages the host itself sends (auto-replies).
pub const HOST_AUTHOR: &str = "centralino";

/// Ordered `name = value` pairs (settings, headers, platform extras).
pub type Pairs = Vec<(String, String)>;

/// How a message reached the company.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// A public post addressed to an account (a mention, a reply in a thread).
    PublicPost,
    /// A private one-to-one message.
    PrivateMessage,
    /// A comment under one of the account's posts.
    Comment,
}

/// A person on a platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The platform's id.
    pub id: String,
    /// Public handle, without `@`.
    pub handle: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// An attachment of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `image`, `video`, `audio`, `file`, `location`, `sticker`, or a platform word.
    pub kind: String,
    /// Address, if any.
    pub url: Option<String>,
    /// MIME type, if known.
    pub mime_type: Option<String>,
    /// Alt text, file name or coordinates.
    pub description: Option<String>,
}

/// A customer's message, normalised by a connector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The platform's id (deduplication key together with channel and account).
    pub external_id: String,
    /// The company account that received it.
    pub account: String,
    /// Thread key: messages sharing it belong to one conversation.
    pub conversation_key: String,
    /// Who wrote it.
    pub author: Person,
    /// Full plain text.
    pub text: String,
    /// How it arrived.
    pub kind: MessageKind,
    /// The platform id this message answers.
    pub in_reply_to: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// Platform extras.
    pub extra: Pairs,
}

/// A reply for a connector to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Account to send from.
    pub account: String,
    /// Conversation it belongs to.
    pub conversation_key: String,
    /// Public reply, private message or comment reply.
    pub kind: MessageKind,
    /// Recipient platform id for private messages.
    pub recipient: Option<String>,
    /// Platform id being answered.
    pub in_reply_to: Option<String>,
    /// Text.
    pub text: String,
    /// Files to send with the text (contract 0.2 and later; a connector built against
    /// 0.1 cannot take any, and a reply with files is refused before it is called).
    pub attachments: Vec<OutboundAttachment>,
    /// Outbox key; never sent twice.
    pub idempotency_key: String,
}

/// What kind of file an [`OutboundAttachment`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    /// A picture (`image/jpeg`, `image/png`, `image/gif`, `image/webp`).
    Image,
    /// A video.
    Video,
    /// A sound recording.
    Audio,
    /// Any other file.
    File,
}

/// A file sent with a reply: the bytes, handed to the connector, which uploads them the
/// platform's way.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundAttachment {
    /// What kind of file.
    pub kind: MediaKind,
    /// MIME type, such as `image/jpeg`.
    pub mime_type: String,
    /// File name without a path (`photo.jpg`).
    pub file_name: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for OutboundAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundAttachment")
            .field("kind", &self.kind)
            .field("mime_type", &self.mime_type)
            .field("file_name", &self.file_name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// What a connector can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Threaded public replies.
    PublicReply,
    /// Private messages.
    PrivateMessage,
    /// Replies to comments.
    CommentReply,
    /// Receives webhooks.
    Webhook,
    /// Polls.
    Polling,
    /// Sends attachments.
    Attachments,
}

/// A connector's description of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorDescription {
    /// Channel name (`twitter`).
    pub channel: String,
    /// One line for admins.
    pub summary: String,
    /// What it can do.
    pub capabilities: Vec<Capability>,
    /// Longest text accepted by `send` (0 = unlimited).
    pub max_text_length: u32,
}

/// One account served by a connector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConfig {
    /// Account id.
    pub id: String,
    /// Public handle.
    pub handle: Option<String>,
    /// Name of the credential the host attaches for this account.
    pub credential: Option<String>,
    /// Account-level settings.
    pub settings: Pairs,
}

/// Connector configuration as the plugin sees it (secrets only by name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorConfig {
    /// Connector-level settings.
    pub settings: Pairs,
    /// Accounts.
    pub accounts: Vec<AccountConfig>,
}

/// Result of one poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResult {
    /// New messages, oldest first.
    pub messages: Vec<Message>,
    /// Cursor for the next poll (none keeps the old one).
    pub cursor: Option<String>,
    /// Earliest time to poll again.
    pub next_poll_after_ms: Option<u64>,
}

/// A webhook delivery as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Upper-case method.
    pub method: String,
    /// Path below the connector's route.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Pairs,
    /// Raw body.
    pub body: Vec<u8>,
}

/// The answer to a webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Pairs,
    /// Body.
    pub body: Vec<u8>,
}

/// Delivery state of a message the company sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Delivered to the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// Failed.
    Failed,
}

/// A receipt for a sent message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Sending account.
    pub account: String,
    /// Platform id of the sent message.
    pub external_id: String,
    /// New state.
    pub state: DeliveryState,
    /// When.
    pub at: u64,
}

/// Everything one webhook delivery produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOutcome {
    /// The answer for the platform (sent after `messages` are stored).
    pub response: WebhookResponse,
    /// Customer messages.
    pub messages: Vec<Message>,
    /// Receipts.
    pub receipts: Vec<Receipt>,
}

/// A sent reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Platform id.
    pub external_id: String,
    /// When the platform accepted it.
    pub sent_at: u64,
}

/// Whether an operator is working right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// Working and taking conversations.
    Online,
    /// Working but not taking new conversations.
    Away,
    /// Not working.
    Offline,
}

/// An operator as a routing policy sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Brands and skills.
    pub skills: Vec<String>,
    /// Languages.
    pub languages: Vec<String>,
    /// Accounts the operator may reply from.
    pub accounts: Vec<String>,
    /// Concurrent conversations allowed.
    pub capacity: u32,
    /// Conversations held now.
    pub load: u32,
    /// Presence.
    pub presence: Presence,
    /// When last given a conversation.
    pub last_assigned_at: Option<u64>,
}

/// The conversation to place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingConversation {
    /// Host id.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Receiving account.
    pub account: String,
    /// Brand of the account.
    pub brand: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// Customer platform id.
    pub customer: String,
    /// How it arrived.
    pub kind: MessageKind,
    /// Latest customer text.
    pub text: String,
    /// Priority so far.
    pub priority: u8,
    /// Operator who last helped this customer.
    pub previous_agent: Option<String>,
    /// When that was.
    pub previous_agent_at: Option<u64>,
    /// When the customer started waiting.
    pub waiting_since: u64,
}

/// Queue statistics at decision time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Conversations waiting.
    pub waiting: u32,
    /// Oldest wait, ms.
    pub oldest_wait_ms: u64,
    /// Average recent handling time, ms.
    pub average_handle_ms: u64,
}

/// Everything one routing stage sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingContext {
    /// The conversation.
    pub conversation: RoutingConversation,
    /// Candidates, best first.
    pub agents: Vec<Agent>,
    /// Queue statistics.
    pub queue: QueueStats,
    /// Decision time.
    pub now: u64,
    /// Identifies the operators' profiles (id, name, skills, languages, accounts,
    /// capacity) the context was built from: two contexts with the same non-zero version
    /// carry the same profile for every operator id. `0` means unknown. A policy built
    /// against contract 0.2 keeps the profiles between calls; with a known version the
    /// runtime sends it only the operators it has not seen, without comparing profiles.
    #[serde(default)]
    pub roster_version: u64,
}

/// What a routing stage wants done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "agents", rename_all = "kebab-case")]
pub enum RoutingAction {
    /// Assign to this operator; the chain stops.
    Assign(String),
    /// Keep only these candidates, best first; empty queues the conversation.
    Narrow(Vec<String>),
    /// Queue now; the chain stops.
    Enqueue,
    /// No opinion.
    Pass,
}

/// A routing stage's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingDecision {
    /// What to do.
    pub action: RoutingAction,
    /// New priority, if changed.
    pub priority: Option<u8>,
    /// Why.
    pub reason: String,
}

/// Whether `text` shows nothing: empty, or only [blank characters](is_blank_char).
/// Sent as a post, such a text is a blank post; replies must have something to read.
#[doc(hidden)]
pub fn is_blank_text(text: &str) -> bool {
    text.chars().all(is_blank_char)
}

/// Whether `c` shows nothing: whitespace, control characters and the invisible format
/// characters (zero-width spaces and joiners, direction marks, word joiners, byte-order
/// marks, soft hyphens, Hangul fillers, variation selectors, tags). The OpenAPI document
/// derives its pattern for a reply's text from this.
#[doc(hidden)]
pub fn is_blank_char(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

#[cfg(test)]
mod blank_text_tests {
    use super::is_blank_text;

    #[test]
    fn whitespace_and_invisible_characters_alone_are_blank() {
        for text in [
            "",
            " ",
            "\n\t ",
            "\u{200B}",
            " \u{200B}\u{200D}\u{FEFF}\u{2060} ",
            "\u{3164}",
        ] {
            assert!(is_blank_text(text), "{text:?}");
        }
        for text in ["ok", " \u{200B}a", "👍", "\u{200D}👍", "."] {
            assert!(!is_blank_text(text), "{text:?}");
        }
    }
}
