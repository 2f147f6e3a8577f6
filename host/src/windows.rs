//! Reply windows: how long after the customer's last message a platform accepts a reply,
//! as a connector declares it (the `centralino-reply-window` section, read at
//! inspection). The host refuses a reply past the window before any call is made, with a
//! reason the CRM can show (`outside_messaging_window`), instead of letting the platform
//! refuse it.
//!
//! Defined in the `centralino-runtime` crate (`centralino_runtime::windows`); re-exported here as part of
//! this crate's API.

pub use centralino_runtime::windows::{
    OUTSIDE_MESSAGING_WINDOW, REPLY_WINDOW_SECTION, ReplyWindow,
};

// The rest of the module, for the host's own use.
#[allow(unused_imports)]
pub(crate) use centralino_runtime::windows::*;
