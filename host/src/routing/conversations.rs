//! Conversations: customer messages threaded per platform thread, with the status and
//! timestamps care is measured by.
//!
//! A conversation is keyed by its [`ThreadKey`] (channel, receiving account, the
//! connector's conversation key: a tweet reply chain, a DM thread, a comment thread).
//! While it is not resolved, every new customer message on that thread joins it: a
//! customer who writes three times gets one conversation and one operator, not three.
//! After resolution the next message opens a new conversation.
//!
//! ```text
//!   open ──chain──► assigned ──resolve──► resolved
//!     │               ▲   │
//!     └──► waiting ───┘   └──offer timeout──► (re-routed: assigned to another, or waiting)
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::types::{Message, MessageKind};

pub use crate::ids::ConversationNumber;

/// Where a conversation lives on its platform: messages with the same key belong to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ThreadKey {
    /// Channel (`twitter`).
    pub channel: String,
    /// The company account that received it (`TIM_Official`).
    pub account: String,
    /// The connector's thread key.
    pub key: String,
}

/// Where a conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Received, not yet placed by the chain.
    Open,
    /// In the queue: nobody could take it.
    Waiting,
    /// An operator holds it.
    Assigned,
    /// Done; its operator's seat is free again.
    Resolved,
}

/// An operator passed over for one conversation after letting its offer time out, until
/// `until` (so a one-person team still gets it back eventually).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The operator.
    pub operator: String,
    /// When the exclusion lapses (ms since the epoch).
    pub until: u64,
}

/// One conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Host id.
    pub id: ConversationNumber,
    /// Platform thread.
    pub thread: ThreadKey,
    /// Brand of the receiving account, if configured.
    pub brand: Option<String>,
    /// Language, if known.
    pub language: Option<String>,
    /// Platform id of the customer.
    pub customer: String,
    /// How the first message arrived.
    pub kind: MessageKind,
    /// Where it stands.
    pub status: Status,
    /// Who holds it.
    pub assignee: Option<String>,
    /// Whether a person handed it over on purpose (then others may reply too).
    pub transferred: bool,
    /// Priority (0 normal; higher first), as the chain last set it.
    pub priority: u8,
    /// Text of the customer's latest message.
    pub last_text: String,
    /// Customer messages so far.
    pub messages: u32,
    /// When the first message arrived.
    pub created_at: u64,
    /// When the customer started waiting (for queue order and wait figures).
    pub waiting_since: u64,
    /// When the current assignee got it.
    pub assigned_at: Option<u64>,
    /// When anyone first got it: the customer's wait ends here.
    pub first_assigned_at: Option<u64>,
    /// When an operator first replied.
    pub first_response_at: Option<u64>,
    /// When it was resolved.
    pub resolved_at: Option<u64>,
    /// How many times it was given to an operator (more than one after re-routing).
    pub offers: u32,
    /// Operators passed over after an offer timeout.
    pub excluded: Vec<Exclusion>,
}

impl Conversation {
    /// Whether it still needs work (not resolved).
    pub fn is_open(&self) -> bool {
        self.status != Status::Resolved
    }

    /// Ids of operators excluded at `now`.
    pub fn excluded_at(&self, now: u64) -> Vec<String> {
        self.excluded
            .iter()
            .filter(|e| e.until > now)
            .map(|e| e.operator.clone())
            .collect()
    }
}

/// A customer message as routing needs it: the thread, who wrote, and what the CRM knows
/// about the receiving account (brand) and the text (language).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerMessage {
    /// Channel (`twitter`).
    pub channel: String,
    /// Receiving account.
    pub account: String,
    /// Thread key.
    pub conversation_key: String,
    /// Platform id of the customer.
    pub customer: String,
    /// Brand of the receiving account.
    pub brand: Option<String>,
    /// Language of the text, if known.
    pub language: Option<String>,
    /// How it arrived.
    pub kind: MessageKind,
    /// Text.
    pub text: String,
}

impl CustomerMessage {
    /// From a connector's normalised message; brand and language are for the caller to add
    /// (they come from account configuration and language detection, not the platform).
    pub fn from_message(channel: &str, message: &Message) -> Self {
        CustomerMessage {
            channel: channel.to_string(),
            account: message.account.clone(),
            conversation_key: message.conversation_key.clone(),
            customer: message.author.id.clone(),
            brand: None,
            language: None,
            kind: message.kind,
            text: message.text.clone(),
        }
    }

    /// The thread it belongs to.
    pub fn thread(&self) -> ThreadKey {
        ThreadKey {
            channel: self.channel.clone(),
            account: self.account.clone(),
            key: self.conversation_key.clone(),
        }
    }
}

/// Every conversation, with an index of the open ones by thread.
#[derive(Clone, Debug, Default)]
pub struct Conversations {
    all: BTreeMap<ConversationNumber, Conversation>,
    open_by_thread: HashMap<ThreadKey, ConversationNumber>,
    next_id: u64,
}

impl Conversations {
    /// Adds `message` to the open conversation of its thread, or opens one. Returns the
    /// conversation's id and whether the message joined an existing one.
    pub fn receive(&mut self, message: &CustomerMessage, now: u64) -> (ConversationNumber, bool) {
        let thread = message.thread();
        if let Some(id) = self.open_by_thread.get(&thread).copied()
            && let Some(conversation) = self.all.get_mut(&id)
        {
            conversation.messages += 1;
            conversation.last_text = message.text.clone();
            // The brand and language may only become known later; never forget them.
            if conversation.language.is_none() {
                conversation.language = message.language.clone();
            }
            if conversation.brand.is_none() {
                conversation.brand = message.brand.clone();
            }
            return (id, true);
        }
        self.next_id += 1;
        let id = ConversationNumber(self.next_id);
        self.all.insert(
            id,
            Conversation {
                id,
                thread: thread.clone(),
                brand: message.brand.clone(),
                language: message.language.clone(),
                customer: message.customer.clone(),
                kind: message.kind,
                status: Status::Open,
                assignee: None,
                transferred: false,
                priority: 0,
                last_text: message.text.clone(),
                messages: 1,
                created_at: now,
                waiting_since: now,
                assigned_at: None,
                first_assigned_at: None,
                first_response_at: None,
                resolved_at: None,
                offers: 0,
                excluded: Vec::new(),
            },
        );
        self.open_by_thread.insert(thread, id);
        (id, false)
    }

    /// A conversation.
    pub fn get(&self, id: ConversationNumber) -> Option<&Conversation> {
        self.all.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: ConversationNumber) -> Option<&mut Conversation> {
        self.all.get_mut(&id)
    }

    /// The open conversation of a thread.
    pub fn open_on(&self, thread: &ThreadKey) -> Option<&Conversation> {
        self.open_by_thread
            .get(thread)
            .and_then(|id| self.all.get(id))
    }

    /// Every conversation, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Conversation> {
        self.all.values()
    }

    /// Number of conversations, resolved included.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether there are none.
    #[cfg(feature = "test-support")]
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Takes in a conversation kept elsewhere (a durable store, after a restart), under a
    /// new id; while it is open, later messages of its thread join it. Returns the id.
    pub(crate) fn restore(&mut self, mut conversation: Conversation) -> ConversationNumber {
        self.next_id += 1;
        let id = ConversationNumber(self.next_id);
        conversation.id = id;
        if conversation.is_open() {
            self.open_by_thread.insert(conversation.thread.clone(), id);
        }
        self.all.insert(id, conversation);
        id
    }

    /// Forgets a conversation altogether (its storing was rolled back), freeing its thread.
    pub(crate) fn forget(&mut self, id: ConversationNumber) {
        if let Some(conversation) = self.all.remove(&id)
            && self.open_by_thread.get(&conversation.thread) == Some(&id)
        {
            self.open_by_thread.remove(&conversation.thread);
        }
    }

    /// Marks a conversation resolved and frees its thread for a new one.
    pub(crate) fn close(&mut self, id: ConversationNumber, now: u64) {
        if let Some(conversation) = self.all.get_mut(&id) {
            conversation.status = Status::Resolved;
            conversation.resolved_at = Some(now);
            self.open_by_thread.remove(&conversation.thread);
        }
    }
}

/// Who last helped each customer on each channel, for stickiness.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CustomerHistory {
    last: HashMap<String, (String, u64)>,
}

impl CustomerHistory {
    fn key(channel: &str, customer: &str) -> String {
        format!("{channel}\u{1f}{customer}")
    }

    /// Records that `operator` helped the customer at `at`.
    pub fn record(&mut self, channel: &str, customer: &str, operator: &str, at: u64) {
        self.last
            .insert(Self::key(channel, customer), (operator.to_string(), at));
    }

    /// Records `operator` as the customer's last helper at `at` unless a later help is
    /// known (what a durable store shared by several hosts says).
    pub(crate) fn remember(&mut self, channel: &str, customer: &str, operator: &str, at: u64) {
        if self.last(channel, customer).is_none_or(|(_, known)| known <= at) {
            self.record(channel, customer, operator, at);
        }
    }

    /// Forgets who helped the customer (an erasure).
    pub(crate) fn forget(&mut self, channel: &str, customer: &str) {
        self.last.remove(&Self::key(channel, customer));
    }

    /// The operator who last helped the customer, and when.
    pub fn last(&self, channel: &str, customer: &str) -> Option<(&str, u64)> {
        self.last
            .get(&Self::key(channel, customer))
            .map(|(operator, at)| (operator.as_str(), *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str, text: &str) -> CustomerMessage {
        CustomerMessage {
            channel: "twitter".into(),
            account: "TIM_Official".into(),
            conversation_key: key.into(),
            customer: "42".into(),
            brand: Some("tim".into()),
            language: None,
            kind: MessageKind::PublicPost,
            text: text.into(),
        }
    }

    #[test]
    fn messages_on_an_open_thread_join_one_conversation() {
        let mut all = Conversations::default();
        let (first, joined) = all.receive(&message("t1", "il modem non va"), 1);
        assert!(!joined);
        let mut later = message("t1", "ancora niente");
        later.language = Some("it".into());
        let (second, joined) = all.receive(&later, 2);
        assert!(joined);
        assert_eq!(first, second);
        let conversation = all.get(first).unwrap();
        assert_eq!(conversation.messages, 2);
        assert_eq!(conversation.last_text, "ancora niente");
        assert_eq!(conversation.language.as_deref(), Some("it"));
        assert_eq!(conversation.created_at, 1);
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn a_resolved_thread_opens_a_new_conversation() {
        let mut all = Conversations::default();
        let (first, _) = all.receive(&message("t1", "ciao"), 1);
        all.close(first, 5);
        let (second, joined) = all.receive(&message("t1", "di nuovo io"), 9);
        assert!(!joined);
        assert_ne!(first, second);
        assert_eq!(all.get(first).unwrap().status, Status::Resolved);
    }

    #[test]
    fn conversation_ids_round_trip_through_text() {
        assert_eq!("conv-17".parse::<ConversationNumber>(), Ok(ConversationNumber(17)));
        assert_eq!(ConversationNumber(17).to_string(), "conv-17");
        assert!("17".parse::<ConversationNumber>().is_err());
    }
}
