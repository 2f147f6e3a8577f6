//! Who may answer a conversation, and from which account.
//!
//! - Only the assignee may reply, so two operators never answer the same customer at
//!   once. A conversation a person *transferred* on purpose is shared work: any operator
//!   on the roster may reply to it.
//! - The reply goes out from the replying operator's own account on the conversation's
//!   channel when that channel allows personal accounts (Twitter: customers see
//!   `@TIM_Marco` answer), otherwise from the account the conversation came in on (a
//!   Facebook page answers as the page).

use std::collections::BTreeSet;

use serde::Serialize;

use super::agents::Roster;
use super::conversations::{Conversation, Status};
use crate::error::RoutingError;
use crate::types::MessageKind;

/// Channels where an operator answers from their own account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyRules {
    personal_channels: BTreeSet<String>,
}

impl Default for ReplyRules {
    /// Twitter/X only: on Facebook and Messenger a page answers as itself.
    fn default() -> Self {
        ReplyRules::new(["twitter", "x"])
    }
}

/// The account a reply goes out from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplyRoute {
    /// Channel.
    pub channel: String,
    /// Sending account.
    pub account: String,
    /// Whether it is the operator's personal account (otherwise the brand account).
    pub personal: bool,
}

impl ReplyRules {
    /// Operators answer from their own account on these channels.
    pub fn new<S: Into<String>>(personal_channels: impl IntoIterator<Item = S>) -> Self {
        ReplyRules {
            personal_channels: personal_channels.into_iter().map(Into::into).collect(),
        }
    }

    /// Checks that `operator` may reply to `conversation` and picks the account.
    pub fn route(
        &self,
        roster: &Roster,
        conversation: &Conversation,
        operator: &str,
    ) -> Result<ReplyRoute, RoutingError> {
        let replier = roster
            .operator(operator)
            .ok_or_else(|| RoutingError::UnknownOperator(operator.to_string()))?;
        if conversation.status == Status::Resolved {
            return Err(RoutingError::Resolved(conversation.id.named()));
        }
        let owns = conversation.assignee.as_deref() == Some(operator);
        if !owns && !conversation.transferred {
            let owner = match &conversation.assignee {
                Some(assignee) => format!("it is assigned to {assignee}"),
                None => "it is not assigned yet".to_string(),
            };
            return Err(RoutingError::NotAssignee {
                conversation: conversation.id.named(),
                operator: operator.to_string(),
                owner,
            });
        }
        let channel = &conversation.thread.channel;
        // Only public replies go out from a personal account: a private thread (an X DM)
        // belongs to the account the customer wrote to, and answering it from another
        // account would start a new thread the customer may not even accept.
        let personal = (self.personal_channels.contains(channel)
            && conversation.kind == MessageKind::PublicPost)
            .then(|| replier.account_on(channel))
            .flatten();
        Ok(match personal {
            Some(account) => ReplyRoute {
                channel: channel.clone(),
                account: account.id.clone(),
                personal: true,
            },
            None => ReplyRoute {
                channel: channel.clone(),
                account: conversation.thread.account.clone(),
                personal: false,
            },
        })
    }
}
