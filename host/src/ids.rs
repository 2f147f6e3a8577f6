//! Identifiers: the tenant, connector and conversation ids a CRM receives in events and
//! records and passes back to [`Host`](crate::Host)'s methods, and the routing engine's own
//! number for a conversation. (The bottom of the crate: it depends on nothing.)
//!
//! [`TenantId`], [`ConnectorId`] and [`ConversationId`] are text, and serialise as plain
//! strings, so JSON and stored data look the same as with `String`. Being distinct types,
//! one cannot be passed where another is expected: the host's methods take
//! `impl Into<TenantId>` (and so on), so a CRM passes the id it got from an event, or text it
//! kept (`"default"`, a string from its own database) — but never a connector's id as a
//! tenant. They compare with `&str` and dereference to `str`.
//!
//! ```
//! use centralino::{ConnectorId, TenantId};
//!
//! let tenant = TenantId::from("default");
//! assert_eq!(tenant, "default");
//! assert_eq!(tenant.len(), 7); // a `str` method, through `Deref`
//! assert_eq!(serde_json::to_string(&tenant).unwrap(), r#""default""#);
//! let connector: ConnectorId = "twitter".into();
//! assert_eq!(format!("{tenant}/{connector}"), "default/twitter");
//! ```
//!
//! ```compile_fail
//! # use centralino::{ConnectorId, TenantId};
//! let connector = ConnectorId::from("twitter");
//! let tenant: TenantId = connector.into(); // a connector is not a tenant
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a text id type with its conversions and comparisons.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id `id`.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

text_id! {
    /// A tenant: one company (or one of a group's companies) with its own connectors,
    /// operators, routing and data. A host without tenants configured has one, `default`.
    TenantId
}

text_id! {
    /// A connector's name within its tenant, as configured (`twitter`, `facebook`).
    ConnectorId
}

text_id! {
    /// A stored conversation's id: what events, records and the REST API carry, and what
    /// [`Host::reply`](crate::Host::reply), [`Host::transfer`](crate::Host::transfer) and
    /// [`Host::resolve`](crate::Host::resolve) take. Opaque text.
    ConversationId
}

/// The routing engine's number for a conversation it holds, shown as `conv-17`. Internal to
/// the engine; the CRM sees [`ConversationId`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationNumber(pub u64);

impl ConversationNumber {
    /// This number as a [`ConversationId`] (`conv-17`), for errors of an engine that runs
    /// without a store; the host names the stored conversation instead.
    pub(crate) fn named(self) -> ConversationId {
        ConversationId(self.to_string())
    }
}

impl fmt::Display for ConversationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conv-{}", self.0)
    }
}

impl FromStr for ConversationNumber {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.strip_prefix("conv-")
            .and_then(|n| n.parse().ok())
            .map(ConversationNumber)
            .ok_or_else(|| format!("`{text}` is not a conversation id (conv-N)"))
    }
}
