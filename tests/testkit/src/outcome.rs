//! Assertions on what a connector produced.

use centralino_runtime::types::{Message, WebhookOutcome};
use centralino_runtime::{Error, PluginFailure};

/// Assertions on a [`WebhookOutcome`].
pub trait Outcome {
    /// The one message of a `200` delivery.
    fn only_message(&self) -> &Message;
    /// Asserts the response status and that nothing was delivered.
    fn assert_refused(&self, status: u16);
    /// Asserts a `200` that delivered nothing (an event that is not a customer message).
    fn assert_acknowledged_with_nothing(&self);
}

impl Outcome for WebhookOutcome {
    fn only_message(&self) -> &Message {
        assert_eq!(self.response.status, 200, "{self:?}");
        match self.messages.as_slice() {
            [message] => message,
            other => panic!("expected one message, got {}: {other:?}", other.len()),
        }
    }

    fn assert_refused(&self, status: u16) {
        assert_eq!(self.response.status, status, "{self:?}");
        assert!(self.messages.is_empty(), "{:?}", self.messages);
        assert!(self.receipts.is_empty(), "{:?}", self.receipts);
    }

    fn assert_acknowledged_with_nothing(&self) {
        self.assert_refused(200);
    }
}

/// The plugin's own failure inside `err`; panics on any other error (a trap, a load
/// failure), naming it.
pub fn failure(err: &Error) -> &PluginFailure {
    match err {
        Error::Plugin { failure, .. } => failure,
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}
