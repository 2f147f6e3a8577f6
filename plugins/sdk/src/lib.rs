//! The guest SDK for centralino plugins: write a channel connector or a routing policy as
//! plain Rust, and let the SDK speak the WIT contract (`centralino:plugin@0.3.0`).
//!
//! A connector is a type that implements [`Connector`]; [`export_connector!`] turns it into
//! the component's exports and embeds the metadata the host reads before instantiating
//! (name and version from `Cargo.toml`, the contract version). Everything around the
//! platform logic comes from here:
//!
//! | need | use |
//! | --- | --- |
//! | settings with defaults, unknown keys refused by name | [`Settings`], [`SecretName`] |
//! | accounts validated once, credentials by name | [`Accounts`], [`Account`] |
//! | JSON over the host's `http` import, credential attached by the host | [`http::Api`] |
//! | webhook signatures and verify tokens checked by the host's `signing` | [`signing`] |
//! | webhook answers (`200`, `401`, `403`, malformed `400`) | [`WebhookOutcome`] helpers in [`webhook`] |
//! | errors the host understands | [`PluginError`] constructors, [`Result`] |
//! | logging into the host log | [`info!`], [`warn!`], [`debug!`], [`error!`] |
//! | clocks, RFC 3339, HTML entities, cursors | [`time`], [`text`], [`cursor`] |
//! | deletions and languages within contract 0.1 | [`conventions`] |
//!
//! ```no_run
//! use centralino_sdk::prelude::*;
//!
//! pub struct Hello {
//!     greeting: String,
//!     accounts: Accounts,
//! }
//!
//! impl Connector for Hello {
//!     fn describe() -> Description {
//!         Description {
//!             channel: "hello".to_string(),
//!             summary: "Says hello.".to_string(),
//!             capabilities: vec![Capability::PrivateMessage],
//!             max_text_length: 1000,
//!         }
//!     }
//!
//!     fn configure(config: Config) -> Result<Self> {
//!         // Unknown keys are refused here, by name; values are checked as they are read.
//!         let settings = Settings::parse("hello connector", config.settings, &["greeting"])?;
//!         Ok(Hello {
//!             greeting: settings.string_or("greeting", "ciao"),
//!             accounts: Accounts::parse(config.accounts, "hello account", |_| Ok(()))?,
//!         })
//!     }
//!
//!     fn send(&mut self, message: OutboundMessage) -> Result<Sent> {
//!         self.accounts.require(&message.account)?;
//!         centralino_sdk::info!("{} {}", self.greeting, message.conversation_key);
//!         Ok(Sent::now(message.idempotency_key))
//!     }
//! }
//!
//! centralino_sdk::export_connector!(Hello);
//! # fn main() {}
//! ```
//!
//! A routing policy is a type that implements [`Router`], exported with [`export_router!`]:
//! [`routing`] hands it the conversation and the candidates as plain values (the operators'
//! profiles and, since contract 0.3, the conversation's repeating strings announced once
//! per instance; the strings that are new with each conversation asked of the host only by
//! a policy that reads them) and has an example.
//!
//! # How the bindings are shared
//!
//! The SDK runs `wit_bindgen::generate!` once per world ([`bindings::channel`],
//! [`bindings::routing_policy`], the second reusing the first's shared interfaces), with
//! public export macros. The SDK's own object code then only describes the worlds'
//! *imports*, which the component tooling drops when unused, so linking the SDK never makes
//! a routing policy claim to export a connector. The exports are described where
//! [`export_connector!`] or [`export_router!`] is invoked: in the plugin crate. No cargo
//! feature selects a world, so a workspace build (which unifies features) serves both kinds.

pub mod alloc;
pub mod bindings;
pub mod conventions;
pub mod cursor;
mod errors;
mod export;
pub mod http;
pub mod log;
mod reason_parts;
mod route_abi;
pub mod routing;
mod settings;
pub mod signing;
pub mod text;
pub mod time;
pub mod webhook;

pub use bindings::channel::centralino::plugin::types::{
    Attachment, MediaKind, Message, MessageKind, OutboundAttachment, OutboundMessage, Person,
    PluginError, RateLimit,
};
pub use export::{Connector, ConnectorExport, Router, RouterExport};
#[doc(hidden)]
pub use route_abi::FlatRoute;
pub use settings::{Account, Accounts, SecretName, Settings, numeric_id};

/// The contract's `connector` interface: what a channel connector exports.
pub mod connector {
    pub use crate::bindings::channel::exports::centralino::plugin::connector::{
        Account, Capability, Config, DeliveryState, Description, PollResult, Receipt, Sent,
        WebhookOutcome, WebhookRequest, WebhookResponse,
    };
}

/// The contract's `router` interface: what a routing policy exports. Its `Conversation`
/// is the contract's record (strings as name handles); a policy reads
/// [`routing::Conversation`], the SDK's view of it with the strings resolved.
pub mod router {
    pub use crate::bindings::routing_policy::exports::centralino::plugin::router::{
        Action, Agent, AgentHandle, Candidate, Conversation, Decision, Name, NameHandle, Presence,
    };
}

pub use connector::{
    Capability, Config, DeliveryState, Description, PollResult, Receipt, Sent, WebhookOutcome,
    WebhookRequest, WebhookResponse,
};

/// A plugin call's result: the contract's [`PluginError`] is the error.
pub type Result<T, E = PluginError> = core::result::Result<T, E>;

/// Everything a connector usually needs, for `use centralino_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::connector::{
        Capability, Config, DeliveryState, Description, PollResult, Receipt, Sent, WebhookOutcome,
        WebhookRequest,
    };
    pub use crate::{
        Account, Accounts, Attachment, Connector, Message, MessageKind, OutboundMessage, Person,
        PluginError, Result, Router, SecretName, Settings,
    };
}

/// Name of the custom section that carries the plugin's metadata.
pub const METADATA_SECTION: &str = "centralino-plugin";

/// Version of the WIT contract (`centralino:plugin`) this SDK is written against.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// Exports a [`Connector`] as the component's `connector` and embeds the plugin metadata.
///
/// Invoke it once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[doc(hidden)]
        type __CentralinoConnectorExport = $crate::ConnectorExport<$connector>;
        $crate::bindings::channel::export!(
            __CentralinoConnectorExport with_types_in $crate::bindings::channel
        );
        $crate::plugin_metadata!();
    };
}

/// Exports a [`Router`] as the component's `router` and embeds the plugin metadata.
///
/// Invoke it once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_router {
    ($router:ty) => {
        #[doc(hidden)]
        type __CentralinoRouterExport = $crate::RouterExport<$router>;
        $crate::bindings::routing_policy::export!(
            __CentralinoRouterExport with_types_in $crate::bindings::routing_policy
        );
        // `route` is exported by hand (the SDK's `route_abi`), not by the bindings: its
        // parameters are the canonical ABI's 16 core values for `route`, in order.
        const _: () = {
            #[unsafe(export_name = "centralino:plugin/router@0.3.0#route")]
            #[allow(clippy::too_many_arguments)]
            unsafe extern "C" fn __centralino_route(
                channel: i32,
                account: i32,
                brand_tag: i32,
                brand: i32,
                language_tag: i32,
                language: i32,
                kind: i32,
                priority: i32,
                previous_agent_tag: i32,
                previous_agent: i32,
                previous_agent_at_tag: i32,
                previous_agent_at: i64,
                waiting_since: i64,
                candidates: *mut u8,
                candidates_len: usize,
                now: i64,
            ) -> *mut u8 {
                let flat = $crate::FlatRoute {
                    channel,
                    account,
                    brand_tag,
                    brand,
                    language_tag,
                    language,
                    kind,
                    priority,
                    previous_agent_tag,
                    previous_agent,
                    previous_agent_at_tag,
                    previous_agent_at,
                    waiting_since,
                    candidates,
                    candidates_len,
                    now,
                };
                // SAFETY: called by the host as the canonical ABI calls `route`.
                unsafe { __CentralinoRouterExport::route(flat) }
            }
        };
        $crate::plugin_metadata!();
    };
}

/// Name of the custom section that carries a connector's OAuth declaration.
pub const OAUTH_SECTION: &str = "centralino-oauth";

/// Name of the custom section that carries a connector's rate-limit declaration.
pub const RATE_LIMITS_SECTION: &str = "centralino-rate-limits";

/// Declares how the connector's platform authorises, so the host can connect, refresh and
/// re-authorise its accounts (the admin gives only the app's client id and secret).
///
/// The argument is one JSON object, read by the host at inspection, before anything is
/// compiled; a malformed one makes the host refuse the plugin with the reason. Keys:
/// `flow` (`"authorization-code"`), `pkce`, `authorize_url`, `token_url`, `revoke_url`,
/// `identity_url` with `identity_id` (a JSON pointer to the account id in its answer),
/// `scopes`, `scope_separator`, `client_auth` (`"basic"` or `"body"`), `attach`
/// (`"bearer"` or `{"query": "access_token"}`), `refresh`, `rotating_refresh`, and
/// `exchange` (`{"kind": "facebook-pages", "accounts_url": …}`).
///
/// ```
/// centralino_sdk::oauth!(r#"{"flow": "authorization-code", "pkce": true,
///     "authorize_url": "https://x.com/i/oauth2/authorize",
///     "token_url": "https://api.x.com/2/oauth2/token",
///     "scopes": ["tweet.read", "tweet.write", "users.read", "offline.access"],
///     "attach": "bearer", "refresh": true, "rotating_refresh": true}"#);
/// ```
///
/// The section is new metadata, not a contract change: a host that does not read it
/// loads the plugin as before, and a plugin without it keeps static credentials.
#[macro_export]
macro_rules! oauth {
    ($json:literal) => {
        $crate::__embed_section!("centralino-oauth", $json);
    };
}

/// Declares how long after the customer's last message the platform accepts a reply, so
/// the host refuses a late reply before any call (`outside_messaging_window`) instead of
/// the platform. One JSON object: `kinds` (reply kinds it applies to, `"private-message"`…),
/// `hours`, and optionally `extended_hours` with the connector setting that enables them
/// (`extended_setting`).
///
/// ```
/// centralino_sdk::reply_window!(r#"{"kinds": ["private-message"], "hours": 24,
///     "extended_hours": 168, "extended_setting": "human_agent"}"#);
/// ```
#[macro_export]
macro_rules! reply_window {
    ($json:literal) => {
        $crate::__embed_section!("centralino-reply-window", $json);
    };
}

/// Declares the platform's own rate-limit headers, when the host does not read them by
/// itself. The host already understands `Retry-After`, the IETF `RateLimit` and
/// `RateLimit-Policy` fields (and the older drafts' `RateLimit-Remaining`/`-Reset`),
/// X's `x-rate-limit-*`, the common `X-RateLimit-Remaining`/`X-RateLimit-Reset` (a reset
/// in seconds, epoch seconds or RFC 3339) and Graph's usage headers: a connector for such
/// a platform declares nothing. One JSON object: `reset` (the header naming when the window
/// resets), optionally `remaining` (the header counting the calls left; `0` means spent)
/// and `reset_format` (`"auto"`, `"delta-seconds"`, `"epoch-seconds"`, `"epoch-millis"`,
/// `"rfc3339"` or `"http-date"`).
///
/// ```
/// centralino_sdk::rate_limits!(r#"{"remaining": "x-quota-left", "reset": "x-quota-reset",
///     "reset_format": "delta-seconds"}"#);
/// ```
#[macro_export]
macro_rules! rate_limits {
    ($json:literal) => {
        $crate::__embed_section!("centralino-rate-limits", $json);
    };
}

/// Embeds `{"name": …, "version": …, "contract": …}` in the component.
///
/// [`export_connector!`] and [`export_router!`] call it; call it yourself only when you
/// generate bindings of your own (a plugin built against another contract version).
/// Name and version default to the crate's `Cargo.toml`; the contract version defaults to
/// [`CONTRACT_VERSION`].
#[macro_export]
macro_rules! plugin_metadata {
    () => {
        $crate::plugin_metadata!(contract = "0.3.0");
    };
    (contract = $contract:literal) => {
        $crate::__embed_section!(
            "centralino-plugin",
            concat!(
                "{\"name\":\"",
                env!("CARGO_PKG_NAME"),
                "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\",\"contract\":\"",
                $contract,
                "\"}"
            )
        );
    };
}

/// Embeds `json` in the component as the custom section `section`; the macros above are
/// the public way to call it.
#[doc(hidden)]
#[macro_export]
macro_rules! __embed_section {
    ($section:literal, $json:expr) => {
        const _: () = {
            const JSON: &str = $json;
            const LEN: usize = JSON.len();
            #[used]
            #[unsafe(link_section = $section)]
            static SECTION: [u8; LEN] = {
                let bytes = JSON.as_bytes();
                let mut out = [0u8; LEN];
                let mut i = 0;
                while i < LEN {
                    out[i] = bytes[i];
                    i += 1;
                }
                out
            };
        };
    };
}
