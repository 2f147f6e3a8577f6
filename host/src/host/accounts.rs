//! The host's account methods: status, connect, callback, disconnect (see
//! [`crate::accounts`]). The admin API, the console and `centralino accounts` call these.

use super::Host;
use crate::accounts::{AccountStatus, ConnectStart, ReturnTo};
use crate::error::Error;
use crate::ids::{ConnectorId, TenantId};

impl Host {
    /// Every host-held account: its state, scopes, expiry and held replies; never a token.
    pub async fn accounts(&self) -> Result<Vec<AccountStatus>, Error> {
        Ok(self.inner.accounts.statuses().await?)
    }

    /// Starts connecting (or re-authorising) an account of `connector` of `tenant`: the
    /// URL the admin's browser opens to consent. With `account`, the callback accepts only
    /// a login as that account (on Facebook: only that page). The flow's state is
    /// single-use and expires after ten minutes.
    pub async fn connect_account(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        account: Option<&str>,
    ) -> Result<ConnectStart, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        self.inner
            .accounts
            .start_connect(tenant, connector, account, ReturnTo::Page)
            .await
    }

    /// [`Host::connect_account`] for the console: the callback sends the browser back to
    /// the console's connectors page.
    pub(crate) async fn connect_account_from_console(
        &self,
        tenant: &str,
        connector: &str,
        account: Option<&str>,
    ) -> Result<ConnectStart, Error> {
        self.inner
            .accounts
            .start_connect(tenant, connector, account, ReturnTo::Console)
            .await
    }

    /// Completes a connect flow from the platform's redirect to `tenant`'s callback route:
    /// refuses a forged, replayed, expired or other tenant's `state`, exchanges `code` and
    /// stores the tokens sealed. Held replies of the accounts connected go out, in order.
    pub async fn complete_connect(
        &self,
        tenant: impl Into<TenantId>,
        state: &str,
        code: &str,
    ) -> Result<Vec<AccountStatus>, Error> {
        let tenant: &TenantId = &tenant.into();
        self.complete_connect_returning(tenant, state, code).await.1
    }

    /// Ends a connect flow the platform sent back without a code (consent refused): its
    /// state is spent; answers where the browser goes next.
    pub(crate) async fn abandon_connect(&self, state: &str) -> ReturnTo {
        self.inner.accounts.abandon_connect(state).await
    }

    /// [`Host::complete_connect`], with where the browser goes next.
    pub(crate) async fn complete_connect_returning(
        &self,
        tenant: &str,
        state: &str,
        code: &str,
    ) -> (ReturnTo, Result<Vec<AccountStatus>, Error>) {
        self.inner
            .accounts
            .complete_connect(tenant, state, code)
            .await
    }

    /// Disconnects an account: revokes its token where the platform can and forgets it;
    /// its replies wait until it is connected again. False when it held no token.
    pub async fn disconnect_account(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
        account: &str,
    ) -> Result<bool, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        let key = (
            tenant.to_string(),
            connector.to_string(),
            account.to_string(),
        );
        if self.inner.accounts.slot(&key).is_none() {
            return Err(Error::Refused(format!(
                "account `{account}` is not a connected account of connector `{connector}` of tenant `{tenant}`"
            )));
        }
        self.inner.accounts.disconnect(&key).await
    }

    /// Makes the platform send the webhooks of every connected account of `connector`
    /// again (idempotent); answers their status, with `subscribed`.
    pub async fn subscribe_accounts(
        &self,
        tenant: impl Into<TenantId>,
        connector: impl Into<ConnectorId>,
    ) -> Result<Vec<AccountStatus>, Error> {
        let tenant: &TenantId = &tenant.into();
        let connector: &ConnectorId = &connector.into();
        self.inner.accounts.subscribe(tenant, connector).await
    }

    /// Refreshes and re-checks every host-held account now, as the background task does
    /// periodically.
    pub async fn check_accounts(&self) -> Result<(), Error> {
        Ok(self.inner.accounts.tick().await?)
    }

    /// Token refreshes this host made, and those that failed.
    pub fn token_refreshes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let counters = &self.inner.accounts.counters;
        (
            counters.refreshed.load(Ordering::Relaxed),
            counters.refresh_failed.load(Ordering::Relaxed),
        )
    }
}
