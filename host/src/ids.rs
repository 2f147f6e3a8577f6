//! Identifiers shared by the layers (the bottom of the crate: it depends on nothing).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The host's id of a conversation, shown as `conv-17`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationId(pub u64);

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conv-{}", self.0)
    }
}

impl FromStr for ConversationId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.strip_prefix("conv-")
            .and_then(|n| n.parse().ok())
            .map(ConversationId)
            .ok_or_else(|| format!("`{text}` is not a conversation id (conv-N)"))
    }
}
