//! Generated bindings, one module per contract line (each bound to its frozen copy under
//! `wit/since_vX.Y.Z/`), private to the runtime, as Zed's extension host keeps them.
//!
//! - [`v0_3`] is the latest line: its types convert to and from the host's own types
//!   ([`crate::types`]), and the host functions plugins import are written against it
//!   (`crate::imports`).
//! - [`v0_2`] and [`v0_1`] are the adapters that keep 0.2 and 0.1 plugins loading: their
//!   types convert to and from the latest line's, and their imports call the latest
//!   line's implementations.
//!
//! [`ChannelPre`] and [`ChannelBindings`] hold a connector of either line; each call
//! matches on it once, so nothing outside `runtime` knows which line a plugin speaks.
//! Routing policies are held the same way in `crate::router` (the lines' routing calls
//! differ in shape: 0.2 keeps the roster in the instance, 0.3 also the strings that
//! repeat and passes the rest as flat values).

#![allow(missing_docs)]

mod older;
pub(crate) mod v0_1;
pub(crate) mod v0_2;
pub(crate) mod v0_3;

pub(crate) use v0_3 as latest;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::error::PluginFailure;
use crate::state::PluginState;
use crate::types as own;

/// A linked connector of one contract line, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ChannelPre {
    V0_1(v0_1::channel::ChannelPre<PluginState>),
    V0_2(v0_2::channel::ChannelPre<PluginState>),
    V0_3(v0_3::channel::ChannelPre<PluginState>),
}

/// A linked routing policy of one contract line, ready to instantiate.
#[derive(Clone)]
pub(crate) struct RouterPre {
    pub(crate) line: RouterLine,
    /// Linked with the standard streams alone ([`crate::imports::stdio`]): nothing the
    /// instance imports waits, so its `route` may be called without a fiber.
    pub(crate) never_waits: bool,
}

/// A routing policy's instance-to-be, by contract line.
#[derive(Clone)]
pub(crate) enum RouterLine {
    V0_1(v0_1::routing_policy::RoutingPolicyPre<PluginState>),
    V0_2(v0_2::routing_policy::RoutingPolicyPre<PluginState>),
    V0_3(v0_3::routing_policy::RoutingPolicyPre<PluginState>),
}

/// The linkers of every line served, one per world and line; routing policies have two
/// per line, the standard streams alone tried first, then wasmtime's full WASI.
pub(crate) struct Linkers {
    router_v0_1: Linker<PluginState>,
    router_v0_2: Linker<PluginState>,
    router_v0_3: Linker<PluginState>,
    router_v0_1_streams: Linker<PluginState>,
    router_v0_2_streams: Linker<PluginState>,
    router_v0_3_streams: Linker<PluginState>,
    channel_v0_1: Linker<PluginState>,
    channel_v0_2: Linker<PluginState>,
    channel_v0_3: Linker<PluginState>,
}

impl Linkers {
    /// Every line's host functions (and WASI, which the SDK's std needs) in each linker.
    pub(crate) fn new(engine: &wasmtime::Engine) -> wasmtime::Result<Self> {
        use wasmtime::component::HasSelf;
        let wasi = |engine| -> wasmtime::Result<Linker<PluginState>> {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            Ok(linker)
        };
        let streams = |engine| -> wasmtime::Result<Linker<PluginState>> {
            let mut linker = Linker::new(engine);
            crate::imports::stdio::add_to_linker(&mut linker)?;
            Ok(linker)
        };
        let router_v0_1 = |mut linker| -> wasmtime::Result<Linker<PluginState>> {
            v0_1::routing_policy::RoutingPolicy::add_to_linker::<_, HasSelf<_>>(
                &mut linker,
                |s| s,
            )?;
            Ok(linker)
        };
        let router_v0_2 = |mut linker| -> wasmtime::Result<Linker<PluginState>> {
            v0_2::routing_policy::RoutingPolicy::add_to_linker::<_, HasSelf<_>>(
                &mut linker,
                |s| s,
            )?;
            Ok(linker)
        };
        let router_v0_3 = |mut linker| -> wasmtime::Result<Linker<PluginState>> {
            v0_3::routing_policy::RoutingPolicy::add_to_linker::<_, HasSelf<_>>(
                &mut linker,
                |s| s,
            )?;
            Ok(linker)
        };
        let mut channel_v0_1 = wasi(engine)?;
        v0_1::channel::Channel::add_to_linker::<_, HasSelf<_>>(&mut channel_v0_1, |s| s)?;
        let mut channel_v0_2 = wasi(engine)?;
        v0_2::channel::Channel::add_to_linker::<_, HasSelf<_>>(&mut channel_v0_2, |s| s)?;
        let mut channel_v0_3 = wasi(engine)?;
        v0_3::channel::Channel::add_to_linker::<_, HasSelf<_>>(&mut channel_v0_3, |s| s)?;
        Ok(Linkers {
            router_v0_1: router_v0_1(wasi(engine)?)?,
            router_v0_2: router_v0_2(wasi(engine)?)?,
            router_v0_3: router_v0_3(wasi(engine)?)?,
            router_v0_1_streams: router_v0_1(streams(engine)?)?,
            router_v0_2_streams: router_v0_2(streams(engine)?)?,
            router_v0_3_streams: router_v0_3(streams(engine)?)?,
            channel_v0_1,
            channel_v0_2,
            channel_v0_3,
        })
    }

    /// Links a routing policy built against `contract` (a line [`crate::inspect::serves`]):
    /// with the standard streams alone when they are all the WASI it imports, else with
    /// wasmtime's full WASI.
    ///
    /// A policy that imports more than the streams is told why at debug level (the
    /// first import the streams alone lack), so its author can see why it runs on a fiber.
    pub(crate) fn router(
        &self,
        plugin: &crate::PluginId,
        contract: &semver::Version,
        component: &Component,
    ) -> wasmtime::Result<RouterPre> {
        let line = line(contract)?;
        let (streams, full) = match line {
            Line::V0_1 => (&self.router_v0_1_streams, &self.router_v0_1),
            Line::V0_2 => (&self.router_v0_2_streams, &self.router_v0_2),
            Line::V0_3 => (&self.router_v0_3_streams, &self.router_v0_3),
        };
        let (pre, never_waits) = match streams.instantiate_pre(component) {
            Ok(pre) => (pre, true),
            Err(refused) => {
                let pre = full.instantiate_pre(component)?;
                tracing::debug!(
                    %plugin,
                    "routing policy linked with full WASI and called on a fiber: \
                     the standard streams alone do not serve it ({refused:#})"
                );
                (pre, false)
            }
        };
        let line = match line {
            Line::V0_1 => RouterLine::V0_1(v0_1::routing_policy::RoutingPolicyPre::new(pre)?),
            Line::V0_2 => RouterLine::V0_2(v0_2::routing_policy::RoutingPolicyPre::new(pre)?),
            Line::V0_3 => RouterLine::V0_3(v0_3::routing_policy::RoutingPolicyPre::new(pre)?),
        };
        Ok(RouterPre { line, never_waits })
    }

    /// Links a connector built against `contract`.
    pub(crate) fn channel(
        &self,
        contract: &semver::Version,
        component: &Component,
    ) -> wasmtime::Result<ChannelPre> {
        Ok(match line(contract)? {
            Line::V0_1 => ChannelPre::V0_1(v0_1::channel::ChannelPre::new(pre(
                &self.channel_v0_1,
                component,
            )?)?),
            Line::V0_2 => ChannelPre::V0_2(v0_2::channel::ChannelPre::new(pre(
                &self.channel_v0_2,
                component,
            )?)?),
            Line::V0_3 => ChannelPre::V0_3(v0_3::channel::ChannelPre::new(pre(
                &self.channel_v0_3,
                component,
            )?)?),
        })
    }
}

fn pre(
    linker: &Linker<PluginState>,
    component: &Component,
) -> wasmtime::Result<InstancePre<PluginState>> {
    linker.instantiate_pre(component)
}

enum Line {
    V0_1,
    V0_2,
    V0_3,
}

fn line(contract: &semver::Version) -> wasmtime::Result<Line> {
    match (contract.major, contract.minor) {
        (0, 1) => Ok(Line::V0_1),
        (0, 2) => Ok(Line::V0_2),
        (0, 3) => Ok(Line::V0_3),
        _ => wasmtime::bail!("no binding for contract {contract}"),
    }
}

/// An instantiated connector of either line.
pub(crate) enum ChannelBindings {
    V0_1(v0_1::channel::Channel),
    V0_2(v0_2::channel::Channel),
    V0_3(v0_3::channel::Channel),
}

/// What a connector export returned, in the host's types: a wasm fault outside, the
/// plugin's own error inside.
pub(crate) type Called<T> = wasmtime::Result<Result<T, PluginFailure>>;

fn host<T, U: Into<T>, E: Into<PluginFailure>>(r: wasmtime::Result<Result<U, E>>) -> Called<T> {
    r.map(|r| r.map(Into::into).map_err(Into::into))
}

impl ChannelPre {
    pub(crate) async fn instantiate_async(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<ChannelBindings> {
        Ok(match self {
            ChannelPre::V0_1(pre) => ChannelBindings::V0_1(pre.instantiate_async(store).await?),
            ChannelPre::V0_2(pre) => ChannelBindings::V0_2(pre.instantiate_async(store).await?),
            ChannelPre::V0_3(pre) => ChannelBindings::V0_3(pre.instantiate_async(store).await?),
        })
    }
}

impl ChannelBindings {
    pub(crate) async fn describe(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<own::ConnectorDescription> {
        Ok(match self {
            ChannelBindings::V0_1(b) => {
                let d = b.centralino_plugin_connector().call_describe(store).await?;
                latest::connector::Description::from(d).into()
            }
            ChannelBindings::V0_2(b) => {
                let d = b.centralino_plugin_connector().call_describe(store).await?;
                latest::connector::Description::from(d).into()
            }
            ChannelBindings::V0_3(b) => b
                .centralino_plugin_connector()
                .call_describe(store)
                .await?
                .into(),
        })
    }

    pub(crate) async fn configure(
        &self,
        store: &mut Store<PluginState>,
        config: own::ConnectorConfig,
    ) -> Called<()> {
        let config = latest::connector::Config::from(config);
        match self {
            ChannelBindings::V0_1(b) => host(
                b.centralino_plugin_connector()
                    .call_configure(store, &config.into())
                    .await,
            ),
            ChannelBindings::V0_2(b) => host(
                b.centralino_plugin_connector()
                    .call_configure(store, &config.into())
                    .await,
            ),
            ChannelBindings::V0_3(b) => host(
                b.centralino_plugin_connector()
                    .call_configure(store, &config)
                    .await,
            ),
        }
    }

    pub(crate) async fn poll(
        &self,
        store: &mut Store<PluginState>,
        account: &str,
        cursor: Option<&str>,
    ) -> Called<own::PollResult> {
        match self {
            ChannelBindings::V0_1(b) => {
                let r = b
                    .centralino_plugin_connector()
                    .call_poll(store, account, cursor)
                    .await;
                host::<own::PollResult, latest::connector::PollResult, _>(
                    r.map(|r| r.map(Into::into)),
                )
            }
            ChannelBindings::V0_2(b) => {
                let r = b
                    .centralino_plugin_connector()
                    .call_poll(store, account, cursor)
                    .await;
                host::<own::PollResult, latest::connector::PollResult, _>(
                    r.map(|r| r.map(Into::into)),
                )
            }
            ChannelBindings::V0_3(b) => host(
                b.centralino_plugin_connector()
                    .call_poll(store, account, cursor)
                    .await,
            ),
        }
    }

    pub(crate) async fn handle_webhook(
        &self,
        store: &mut Store<PluginState>,
        request: own::WebhookRequest,
    ) -> Called<own::WebhookOutcome> {
        let request = latest::connector::WebhookRequest::from(request);
        match self {
            ChannelBindings::V0_1(b) => {
                let r = b
                    .centralino_plugin_connector()
                    .call_handle_webhook(store, &request.into())
                    .await;
                host::<own::WebhookOutcome, latest::connector::WebhookOutcome, _>(
                    r.map(|r| r.map(Into::into)),
                )
            }
            ChannelBindings::V0_2(b) => {
                let r = b
                    .centralino_plugin_connector()
                    .call_handle_webhook(store, &request.into())
                    .await;
                host::<own::WebhookOutcome, latest::connector::WebhookOutcome, _>(
                    r.map(|r| r.map(Into::into)),
                )
            }
            ChannelBindings::V0_3(b) => host(
                b.centralino_plugin_connector()
                    .call_handle_webhook(store, &request)
                    .await,
            ),
        }
    }

    pub(crate) async fn send(
        &self,
        store: &mut Store<PluginState>,
        message: own::OutboundMessage,
    ) -> Called<own::Sent> {
        let message = latest::types::OutboundMessage::from(message);
        match self {
            ChannelBindings::V0_1(b) => {
                let message = match v0_1::outbound(message) {
                    Ok(message) => message,
                    Err(refused) => return Ok(Err(refused.into())),
                };
                let r = b
                    .centralino_plugin_connector()
                    .call_send(store, &message)
                    .await;
                host::<own::Sent, latest::connector::Sent, _>(r.map(|r| r.map(Into::into)))
            }
            ChannelBindings::V0_2(b) => {
                let r = b
                    .centralino_plugin_connector()
                    .call_send(store, &message)
                    .await;
                host::<own::Sent, latest::connector::Sent, _>(r.map(|r| r.map(Into::into)))
            }
            ChannelBindings::V0_3(b) => host(
                b.centralino_plugin_connector()
                    .call_send(store, &message)
                    .await,
            ),
        }
    }
}
