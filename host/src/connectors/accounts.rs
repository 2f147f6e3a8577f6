//! Which of a connector's accounts use a host-held token ([`crate::accounts`]).

use super::Connector;
use crate::accounts::ConnectedCredential;
use crate::capabilities::Credential;

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

    /// Every account of this connector with a host-held token.
    pub(crate) fn connected_accounts(&self) -> Vec<(String, ConnectedCredential)> {
        self.accounts
            .iter()
            .filter_map(|account| Some((account.clone(), self.connected(account)?)))
            .collect()
    }
}
