//! One call into a connector's plugin, the same way for every caller: lock the version's
//! instance → admit (refuse fast while disabled, backing off or open) → call → observe
//! (count the outcome, collect the instance's notes, log a change of the circuit).

use std::sync::atomic::Ordering;

use tracing::Instrument as _;

use super::supervisor::Transition;
use super::{Active, Connector};
use crate::error::Error;
use crate::runtime::ChannelInstance;

/// `Retry-After` of a webhook refused because its connector is disabled: platforms retry
/// 5xx answers, so the delivery comes back once an admin enables the connector.
const DISABLED_RETRY_AFTER_MS: u64 = 30_000;

/// What a call goes through besides the plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallKind {
    /// A webhook delivery, a poll or a send: refused fast while the connector is disabled,
    /// backing off or open; its outcome is counted.
    Traffic,
    /// Configuring the serving version (at start, or when enabled): never refused, its
    /// outcome counted.
    Configure,
    /// Configuring a reload's candidate, which serves nothing yet: neither refused nor
    /// counted (a failure refuses the reload instead; what it noted joins the health when
    /// it is installed).
    Candidate,
}

impl Connector {
    /// Runs `call` on `active`'s instance inside the span of `function` (the WIT name), as
    /// `kind` says: lock → admit → call → observe.
    pub(super) async fn call<T>(
        &self,
        active: &Active,
        function: &'static str,
        kind: CallKind,
        call: impl AsyncFnOnce(&mut ChannelInstance) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let span = self.span(active, function);
        async {
            let mut instance = active.instance.lock().await;
            if kind == CallKind::Traffic {
                self.admit(active)?;
            }
            let result = call(&mut instance).await;
            if kind != CallKind::Candidate {
                self.observe(active, &mut instance, &result);
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Sends through the plugin; refused fast while the connector is disabled, backs off
    /// or is open.
    pub(crate) async fn send(
        &self,
        message: crate::types::OutboundMessage,
    ) -> Result<crate::types::Sent, Error> {
        let active = self.active();
        let plugin = active.plugin.clone();
        self.call(&active, "send", CallKind::Traffic, async move |instance| {
            // Files go only to a connector that says it sends them.
            if !message.attachments.is_empty() {
                instance.ready().await?;
                let sends_files = instance.description().is_some_and(|d| {
                    d.capabilities
                        .contains(&crate::types::Capability::Attachments)
                });
                if !sends_files {
                    return Err(Error::Refused(format!(
                        "plugin {plugin} does not send attachments (it does not declare the \
                         `attachments` capability): the reply's {} file(s) cannot go out",
                        message.attachments.len()
                    )));
                }
            }
            Ok(instance.send(message).await?)
        })
        .await
    }

    /// The span of one plugin call: which plugin and version, for which connector.
    fn span(&self, active: &Active, function: &'static str) -> tracing::Span {
        tracing::info_span!(
            "plugin_call",
            tenant = %self.tenant,
            connector = %self.name,
            plugin = %active.plugin.name,
            version = %active.plugin.version,
            function,
        )
    }

    /// Refuses fast while the connector is disabled, backs off or its circuit is open.
    pub(super) fn admit(&self, active: &Active) -> Result<(), Error> {
        if !self.is_enabled() {
            return Err(Error::Unavailable {
                connector: self.name.clone().into(),
                plugin: active.plugin.clone(),
                reason: "disabled by an admin".to_string(),
                retry_after_ms: Some(DISABLED_RETRY_AFTER_MS),
            });
        }
        self.supervisor()
            .admit()
            .map_err(|(reason, retry_after_ms)| Error::Unavailable {
                connector: self.name.clone().into(),
                plugin: active.plugin.clone(),
                reason,
                retry_after_ms,
            })
    }

    /// Counts a call's outcome and collects the instance's notes.
    fn observe<T>(
        &self,
        active: &Active,
        instance: &mut ChannelInstance,
        result: &Result<T, Error>,
    ) {
        let started = instance.instances_started();
        let new_instances =
            started.saturating_sub(active.started_seen.swap(started, Ordering::Relaxed));
        let mut supervisor = self.supervisor();
        supervisor.absorb(instance.take_notes(), new_instances);
        *supervisor
            .calls_by_version
            .entry(active.plugin.to_string())
            .or_default() += 1;
        let transition = supervisor.record(result);
        let consecutive = supervisor.consecutive;
        drop(supervisor);
        let (tenant, connector, plugin) = (&self.tenant, &self.name, &active.plugin);
        match transition {
            Some(Transition::Recovered) => tracing::info!(
                tenant, connector, %plugin, "plugin answered again after {consecutive} faults"
            ),
            Some(Transition::BackingOff(wait)) => tracing::warn!(
                tenant, connector, %plugin,
                "{consecutive} consecutive faults; calls refused for {} ms", wait.as_millis()
            ),
            Some(Transition::Opened) => tracing::error!(
                tenant, connector, %plugin,
                "circuit opened after {consecutive} consecutive faults; calls refused until an admin resets the connector"
            ),
            None => {}
        }
    }
}
