//! Thread keys: written by the webhook path, read back by `send` to find whom to answer.
//!
//! - `fb:<page id>:<psid>`: a Messenger conversation (a PSID is page-scoped, so the page
//!   is part of the customer's identity).
//! - `fb:<page id>:comment:<top-level comment id>`: a comment and the replies under it.
//!   Facebook nests replies one level deep, so the top-level comment is every reply's
//!   parent and names the whole thread.

/// A conversation, as its thread key names it.
#[derive(Debug, PartialEq, Eq)]
pub enum Thread<'k> {
    /// Messenger conversation between a page and a customer.
    Messenger {
        /// Page id.
        page: &'k str,
        /// The customer's page-scoped id.
        psid: &'k str,
    },
    /// Comment thread under one of the page's posts.
    Comments {
        /// Page id.
        page: &'k str,
        /// Id of the top-level comment.
        root: &'k str,
    },
}

impl<'k> Thread<'k> {
    /// The thread a key names; `None` for a key this connector did not write.
    pub fn parse(key: &'k str) -> Option<Thread<'k>> {
        let rest = key.strip_prefix("fb:")?;
        let (page, rest) = rest.split_once(':')?;
        match rest.strip_prefix("comment:") {
            Some(root) if is_graph_id(root) => Some(Thread::Comments { page, root }),
            None if is_psid(rest) => Some(Thread::Messenger { page, psid: rest }),
            _ => None,
        }
    }

    /// The thread key.
    pub fn key(&self) -> String {
        match self {
            Thread::Messenger { page, psid } => format!("fb:{page}:{psid}"),
            Thread::Comments { page, root } => format!("fb:{page}:comment:{root}"),
        }
    }
}

/// A page-scoped id: decimal digits.
pub use centralino_sdk::text::is_digits as is_psid;

/// A Graph object id such as a comment id (`<post>_<comment>`): digits and underscores,
/// safe to put in a URL path.
pub fn is_graph_id(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}
