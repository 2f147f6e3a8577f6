//! The traits a plugin implements, and the adapters that turn them into the contract's
//! exports.
//!
//! The contract's exports are free functions; a plugin's state (validated settings, an
//! account list) lives between calls. The adapters keep the value `configure` returned in
//! one slot per instance and hand it to every later call, so a plugin is an ordinary type
//! with methods. The host configures an instance before any other call and makes a fresh,
//! reconfigured instance after a fault, so the slot is always the latest configuration.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::channel::exports::centralino::plugin::connector::{
    self, Config, Description, PollResult, Sent, WebhookOutcome, WebhookRequest,
};
use crate::bindings::routing_policy::exports::centralino::plugin::router::{
    self, Agent, AgentHandle, Decision, Name,
};
use crate::route_abi::{self, FlatRoute};
use crate::routing::RoutingContext;
use crate::{OutboundMessage, PluginError, Result};

/// A channel connector: receives customer messages from a platform and sends replies.
///
/// Only `describe`, `configure` and `send` are required. The defaults refuse polling and
/// answer webhooks with `404`, which is right for a connector that does not offer them
/// (and does not declare the capability in [`Connector::describe`]).
pub trait Connector: Sized + 'static {
    /// What the connector is: channel name, capabilities, longest text. Called before
    /// `configure`, so it cannot depend on settings.
    fn describe() -> Description;

    /// Validates the admin's configuration and builds the connector. A bad setting is
    /// [`PluginError::InvalidInput`] naming it.
    fn configure(config: Config) -> Result<Self>;

    /// Fetches what arrived for `account` since `cursor` (the cursor this connector
    /// returned last time, or none on the first poll), oldest first.
    ///
    /// The host stores the messages and the returned cursor together (no cursor keeps the
    /// old one), so a failed poll is repeated from the old cursor. What the first poll
    /// fetches is the connector's choice, to be documented with it: *start from now* (learn
    /// the platform's newest id, return no messages) or a bounded *backfill* (the most
    /// recent page), never the whole history. `next_poll_after_ms` is the earliest time
    /// (milliseconds since the epoch) to poll again when the platform asked for a pause.
    /// `centralino plugin new --kind channel --poll` writes an example of both (a
    /// `backfill` setting chooses).
    fn poll(&mut self, account: &str, cursor: Option<&str>) -> Result<PollResult> {
        let _ = cursor;
        Err(PluginError::invalid_input(format!(
            "the {} connector does not poll (account `{account}`)",
            Self::describe().channel
        )))
    }

    /// Handles one webhook delivery: verify, then parse, then normalise.
    fn handle_webhook(&mut self, request: WebhookRequest) -> Result<WebhookOutcome> {
        let _ = request;
        Ok(WebhookOutcome::refuse(
            404,
            "this connector does not take webhooks",
        ))
    }

    /// Sends a reply from `message.account`.
    fn send(&mut self, message: OutboundMessage) -> Result<Sent>;
}

/// A routing policy: one stage of the admin's routing chain.
pub trait Router: Sized + 'static {
    /// Applies the policy's settings (see [`Settings`](crate::Settings)).
    fn configure(settings: Vec<(String, String)>) -> Result<Self>;

    /// Decides for one conversation. The SDK keeps the operators' profiles and the strings
    /// the host announced and joins them with each call's conversation and candidates
    /// ([`crate::routing`]).
    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision>;
}

thread_local! {
    /// The plugin value the last `configure` returned. A component instance is
    /// single-threaded and the host never re-enters it, so one slot serves every call.
    static CONFIGURED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn keep<T: 'static>(value: T) -> Result<()> {
    CONFIGURED.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| PluginError::transient("the plugin was re-entered during configure"))?;
        *slot = Some(Box::new(value));
        Ok(())
    })
}

fn with_configured<T: 'static, R>(
    what: impl FnOnce() -> String,
    call: impl FnOnce(&mut T) -> Result<R>,
) -> Result<R> {
    CONFIGURED.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| PluginError::transient("the plugin was re-entered"))?;
        match slot.as_mut().and_then(|value| value.downcast_mut::<T>()) {
            Some(value) => call(value),
            None => Err(PluginError::invalid_input(format!(
                "the {} is not configured",
                what()
            ))),
        }
    })
}

/// Adapts a [`Connector`] to the contract's `connector` export. Used by
/// [`export_connector!`](crate::export_connector); not meant to be named directly.
pub struct ConnectorExport<T>(PhantomData<T>);

fn connector_name<T: Connector>() -> String {
    format!("{} connector", T::describe().channel)
}

impl<T: Connector> connector::Guest for ConnectorExport<T> {
    fn describe() -> Description {
        T::describe()
    }

    fn configure(config: Config) -> Result<()> {
        keep(T::configure(config)?)
    }

    fn poll(account: String, cursor: Option<String>) -> Result<PollResult> {
        with_configured(connector_name::<T>, |c: &mut T| {
            c.poll(&account, cursor.as_deref())
        })
    }

    fn handle_webhook(request: WebhookRequest) -> Result<WebhookOutcome> {
        with_configured(connector_name::<T>, |c: &mut T| c.handle_webhook(request))
    }

    fn send(message: OutboundMessage) -> Result<Sent> {
        with_configured(connector_name::<T>, |c: &mut T| c.send(message))
    }
}

/// Adapts a [`Router`] to the contract's `router` export. Used by
/// [`export_router!`](crate::export_router); not meant to be named directly.
pub struct RouterExport<T>(PhantomData<T>);

impl<T: Router> router::Guest for RouterExport<T> {
    fn configure(settings: Vec<(String, String)>) -> Result<()> {
        keep(T::configure(settings)?)
    }

    fn update_roster(upserts: Vec<Agent>, removed: Vec<AgentHandle>) {
        crate::routing::update_roster(upserts, removed);
    }

    fn update_names(names: Vec<Name>) {
        crate::routing::update_names(names);
    }
}

impl<T: Router> RouterExport<T> {
    /// The contract's `route` export, written by hand (`route_abi`): called by the
    /// function [`export_router!`](crate::export_router) exports.
    ///
    /// # Safety
    /// `flat` holds the core values the host passed to `route`, passed once (the canonical
    /// ABI's call of `route`: the candidates' list allocated through `cabi_realloc`).
    #[doc(hidden)]
    pub unsafe fn route(flat: FlatRoute) -> *mut u8 {
        // What the generated exports do first (WASI's constructors, once per instance).
        #[cfg(target_arch = "wasm32")]
        wit_bindgen::rt::run_ctors_once();
        // SAFETY: the caller's promise.
        let arguments = unsafe { route_abi::lift(flat) };
        // The arguments (the candidates' list) are freed when they drop, after the call.
        let result = arguments.and_then(|arguments| {
            with_configured(
                || "routing policy".to_string(),
                |r: &mut T| {
                    crate::routing::with_context(
                        &arguments.conversation,
                        arguments.rows(),
                        arguments.now,
                        |c| r.route(c),
                    )
                },
            )
        });
        route_abi::hand_back(result)
    }
}
