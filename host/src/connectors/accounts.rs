//! Which of a connector's accounts use a host-held token ([`crate::accounts`]), and
//! whether a reply is still inside the platform's reply window ([`crate::windows`]).

use super::Connector;
use crate::capabilities::Credential;
use crate::capabilities::connected::ConnectedCredential;

impl Connector {
    /// The connected credential `account` uses, when its token is host-held.
    pub(crate) fn connected(&self, account: &str) -> Option<ConnectedCredential> {
        let active = self.active();
        let name = active
            .spec
            .config
            .accounts
            .iter()
            .find(|a| a.id == account)?
            .credential
            .as_ref()?;
        match active.spec.grants.credentials.get(name)? {
            Credential::Connected(connected) => Some(connected.clone()),
            _ => None,
        }
    }

    /// Why a reply of `kind` to a customer who last wrote at `last_inbound_ms` may not go
    /// out now, by the reply window the serving plugin declares ([`crate::windows`]).
    pub(crate) fn outside_window(
        &self,
        kind: crate::types::MessageKind,
        last_inbound_ms: u64,
        now_ms: u64,
    ) -> Option<String> {
        let active = self.active();
        active.reply_window.as_ref()?.refusal(
            kind,
            &active.spec.config.settings,
            last_inbound_ms,
            now_ms,
        )
    }

    /// Whether the serving plugin declares a reply window.
    pub(crate) fn reply_window_applies(&self) -> bool {
        self.active().reply_window.is_some()
    }

    /// Every account of this connector with a host-held token.
    pub(crate) fn connected_accounts(&self) -> Vec<(String, ConnectedCredential)> {
        self.accounts
            .iter()
            .filter_map(|account| Some((account.clone(), self.connected(account)?)))
            .collect()
    }
}
