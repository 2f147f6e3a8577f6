//! Connecting an account: the authorize URL with single-use state and PKCE, the callback,
//! the platform's subscription step, and disconnecting.

use super::*;

impl AccountBook {
    /// Starts a connect (or re-authorise) flow for `connector` of `tenant`: the authorize
    /// URL, with a single-use state and, when declared, a PKCE challenge.
    pub(crate) async fn start_connect(
        &self,
        tenant: &str,
        connector: &str,
        account: Option<&str>,
        return_to: ReturnTo,
    ) -> Result<ConnectStart, Error> {
        let app = self
            .apps
            .get(&(tenant.to_string(), connector.to_string()))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "connector `{connector}` of tenant `{tenant}` has no connected accounts \
                 (`credential = \"connected\"`) and OAuth app"
                ))
            })?;
        if let Some(account) = account
            && !self.slots.contains_key(&(
                tenant.to_string(),
                connector.to_string(),
                account.to_string(),
            ))
        {
            return Err(Error::Refused(format!(
                "account `{account}` is not a connected account of connector `{connector}`"
            )));
        }
        let state = random_token();
        let verifier = random_token();
        let now = self.now();
        let expires_at = now.saturating_add(CONNECT_TTL_MS);
        let sealed_verifier = self
            .sealer()?
            .seal(
                verifier.as_bytes(),
                &format!("connect/{tenant}/{connector}"),
            )
            .map_err(Error::Refused)?;
        self.store
            .put_connect(
                &hash(&state),
                &PendingConnect {
                    tenant: tenant.to_string(),
                    connector: connector.to_string(),
                    account: account.map(str::to_string),
                    sealed_verifier,
                    expires_at: ms(expires_at),
                    return_to: return_to.stored(),
                },
            )
            .await?;
        let base = oauth::endpoint(
            &app.app.endpoints,
            |e| e.authorize_url.as_ref(),
            Some(&app.declaration.authorize_url),
        )
        .unwrap_or_default();
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Refused(format!("the authorize URL `{base}` is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair(
                    "client_id",
                    &String::from_utf8_lossy(app.app.client_id.expose()),
                )
                .append_pair("redirect_uri", &app.app.redirect_url)
                .append_pair("state", &state);
            if !app.declaration.scopes.is_empty() {
                let separator = app.declaration.scope_separator.as_deref().unwrap_or(" ");
                query.append_pair("scope", &app.declaration.scopes.join(separator));
            }
            if app.declaration.pkce {
                let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(ConnectStart {
            authorize_url: url.to_string(),
            expires_at,
        })
    }

    /// Completes a connect flow from the platform's callback to `tenant`'s route: refuses
    /// an unknown, replayed, expired or other tenant's state, exchanges the code, checks
    /// who the token acts as, and stores the tokens. Answers where the browser goes next
    /// (known once the state is) and the accounts connected.
    pub(crate) async fn complete_connect(
        &self,
        tenant: &str,
        state: &str,
        code: &str,
    ) -> (ReturnTo, Result<Vec<AccountStatus>, Error>) {
        // Taken (deleted) whatever follows: a state is good for one callback.
        let pending = match self.store.take_connect(&hash(state)).await {
            Ok(Some(pending)) => pending,
            Ok(None) => {
                return (
                    ReturnTo::Page,
                    Err(Error::Refused(
                        "unknown or already used OAuth state: start the connect flow again"
                            .to_string(),
                    )),
                );
            }
            Err(e) => return (ReturnTo::Page, Err(e.into())),
        };
        let return_to = ReturnTo::from_stored(pending.return_to.as_deref());
        (return_to, self.finish_connect(tenant, pending, code).await)
    }

    /// Spends the state of a flow the platform ended without a code (the user refused
    /// consent); answers where the browser goes next.
    pub(crate) async fn abandon_connect(&self, state: &str) -> ReturnTo {
        match self.store.take_connect(&hash(state)).await {
            Ok(Some(pending)) => ReturnTo::from_stored(pending.return_to.as_deref()),
            _ => ReturnTo::Page,
        }
    }

    async fn finish_connect(
        &self,
        tenant: &str,
        pending: PendingConnect,
        code: &str,
    ) -> Result<Vec<AccountStatus>, Error> {
        if pending.tenant != tenant {
            return Err(Error::Refused(
                "this OAuth state was issued for another tenant".to_string(),
            ));
        }
        let now = self.now();
        if ms(now) > pending.expires_at {
            return Err(Error::Refused(
                "the OAuth state has expired: start the connect flow again".to_string(),
            ));
        }
        let connector = pending.connector.clone();
        let app = self
            .apps
            .get(&(tenant.to_string(), connector.clone()))
            .ok_or_else(|| {
                Error::Refused(format!("connector `{connector}` has no OAuth app any more"))
            })?;
        let verifier = self
            .sealer()?
            .open(
                &pending.sealed_verifier,
                &format!("connect/{tenant}/{connector}"),
            )
            .map_err(Error::Refused)?;
        let verifier = String::from_utf8_lossy(&verifier).into_owned();
        let grant = oauth::exchange_code(
            &self.http,
            &app.app,
            &app.declaration,
            code,
            app.declaration.pkce.then_some(verifier.as_str()),
        )
        .await
        .map_err(|e| Error::Refused(format!("exchanging the authorization code {e}")))?;
        let scopes = grant
            .scopes
            .clone()
            .unwrap_or_else(|| app.declaration.scopes.join(" "));
        let mut connected: Vec<(AccountKey, Option<String>, Tokens, Option<u64>)> = Vec::new();
        match &app.declaration.exchange {
            Some(Exchange::FacebookPages { accounts_url }) => {
                let long = oauth::long_lived(&self.http, &app.app, &app.declaration, &grant.access)
                    .await
                    .map_err(|e| {
                        Error::Refused(format!("exchanging for a long-lived token {e}"))
                    })?;
                let url = oauth::endpoint(
                    &app.app.endpoints,
                    |e| e.accounts_url.as_ref(),
                    Some(accounts_url),
                )
                .unwrap_or_default();
                let pages = oauth::pages(&self.http, &url, &app.declaration, &long.access)
                    .await
                    .map_err(|e| Error::Refused(format!("listing the pages {e}")))?;
                for page in pages {
                    let key = (tenant.to_string(), connector.clone(), page.id.clone());
                    let chosen = pending.account.as_ref().is_none_or(|a| a == &page.id);
                    if chosen && self.slots.contains_key(&key) {
                        let tokens = Tokens {
                            access: String::from_utf8_lossy(page.token.expose()).into_owned(),
                            refresh: None,
                        };
                        // Page tokens from a long-lived user token do not expire.
                        connected.push((key, page.name, tokens, None));
                    }
                }
                if connected.is_empty() {
                    return Err(Error::Refused(format!(
                        "the login manages none of the pages connector `{connector}` serves{}",
                        pending
                            .account
                            .as_ref()
                            .map(|a| format!(" (asked for `{a}`)"))
                            .unwrap_or_default()
                    )));
                }
            }
            None => {
                let (id, label) = match oauth::endpoint(&app.app.endpoints, |e| e.identity_url.as_ref(), app.declaration.identity_url.as_ref()) {
                    Some(url) => oauth::identity(&self.http, &url, &app.declaration, &grant.access)
                        .await
                        .map_err(|e| Error::Refused(format!("asking who the token acts as {e}")))?,
                    None => (
                        pending.account.clone().ok_or_else(|| Error::Refused(
                            "the connector declares no identity endpoint: connect with `--account ID`".to_string(),
                        ))?,
                        None,
                    ),
                };
                if let Some(wanted) = &pending.account
                    && wanted != &id
                {
                    return Err(Error::Refused(format!(
                        "the login is account `{id}`{}, not `{wanted}`: log in as the account being connected",
                        label
                            .as_ref()
                            .map(|l| format!(" (@{l})"))
                            .unwrap_or_default()
                    )));
                }
                let key = (tenant.to_string(), connector.clone(), id.clone());
                if !self.slots.contains_key(&key) {
                    return Err(Error::Refused(format!(
                        "the login is account `{id}`, which connector `{connector}` does not serve as a connected account"
                    )));
                }
                let tokens = Tokens {
                    access: String::from_utf8_lossy(grant.access.expose()).into_owned(),
                    refresh: grant
                        .refresh
                        .as_ref()
                        .map(|r| String::from_utf8_lossy(r.expose()).into_owned()),
                };
                let expires = grant
                    .expires_in
                    .map(|s| now.saturating_add(s.saturating_mul(1000)));
                connected.push((key, label, tokens, expires));
            }
        }
        let mut keys = Vec::new();
        for (key, label, tokens, expires_at) in connected {
            let (sealed, key_id) = self.seal(&key, &tokens)?;
            let before = self
                .store
                .token_row(&key)
                .await?
                .map(|r| AccountState::parse(&r.state));
            self.store
                .put_token(&TokenRow {
                    tenant: key.0.clone(),
                    connector: key.1.clone(),
                    account: key.2.clone(),
                    label,
                    state: AccountState::Connected.name().to_string(),
                    scopes: scopes.clone(),
                    expires_at: expires_at.map(ms),
                    key_id,
                    sealed,
                    generation: 0,
                    refresh_by: None,
                    refresh_until: None,
                    updated_at: 0,
                    subscribed_at: None,
                })
                .await?;
            self.counters.connected.fetch_add(1, Ordering::Relaxed);
            tracing::info!(tenant = %key.0, connector = %key.1, account = %key.2, "account connected");
            if let Err(e) = self.subscribe_one(&key, &tokens.access).await {
                tracing::warn!(tenant = %key.0, connector = %key.1, account = %key.2, "subscribing the account's webhooks: {e}");
            }
            self.sync().await?;
            if before != Some(AccountState::Connected) {
                self.changed(&key, AccountState::Connected, "connected by an admin")
                    .await?;
            }
            keys.push(key);
        }
        let statuses = self.statuses().await?;
        Ok(statuses
            .into_iter()
            .filter(|s| keys.iter().any(|k| k.2 == s.account && k.1 == s.connector))
            .collect())
    }

    /// Makes the platform send `key`'s webhooks, when the connector declares how; records
    /// the outcome. Idempotent at the platform.
    pub(super) async fn subscribe_one(&self, key: &AccountKey, access: &str) -> Result<(), String> {
        let Some(app) = self.apps.get(&(key.0.clone(), key.1.clone())) else {
            return Ok(());
        };
        let Some(step) = &app.declaration.subscribe else {
            return Ok(());
        };
        let mut url = oauth::endpoint(
            &app.app.endpoints,
            |e| e.subscribe_url.as_ref(),
            Some(&step.url),
        )
        .unwrap_or_default()
        .replace("{account}", &key.2);
        let id = (key.0.clone(), key.1.clone());
        let outcome = match &step.webhook {
            // The app's webhook first (once per app), then the account's subscription to it.
            Some(registration) => self
                .webhook_id(&id, app, registration)
                .await
                .map(|webhook| url = url.replace("{webhook}", &webhook)),
            None => Ok(()),
        };
        let outcome = match outcome {
            Ok(()) => {
                let token = Secret::new(access.to_string());
                let answered =
                    oauth::subscribe(&self.http, &url, &app.declaration, &token, &step.form).await;
                if answered.is_err() && step.webhook.is_some() {
                    // The webhook may be gone at the platform: look for it again next time.
                    self.forget_webhook(&id);
                }
                answered
            }
            Err(e) => Err(e),
        };
        let at = outcome.is_ok().then(|| ms(self.now()));
        self.store
            .set_subscribed(key, at)
            .await
            .map_err(|e| format!("{e:#}"))?;
        outcome
    }

    /// Subscribes every connected account of `connector` of `tenant` again (the platform
    /// lost a subscription, or the app was re-created); answers each account's status.
    pub(crate) async fn subscribe(
        &self,
        tenant: &str,
        connector: &str,
    ) -> Result<Vec<AccountStatus>, Error> {
        for row in self.store.token_rows().await? {
            let key = row.key();
            if key.0 != tenant || key.1 != connector {
                continue;
            }
            let Ok(tokens) = self.open(&row) else {
                continue;
            };
            if let Err(e) = self.subscribe_one(&key, &tokens.access).await {
                tracing::warn!(tenant = %key.0, connector = %key.1, account = %key.2, "subscribing the account's webhooks: {e}");
            }
        }
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .filter(|s| s.tenant == tenant && s.connector == connector)
            .collect())
    }

    /// Disconnects an account: revokes its token where the platform can, deletes it, and
    /// holds its replies until it is connected again.
    pub(crate) async fn disconnect(&self, key: &AccountKey) -> Result<bool, Error> {
        if let (Some(row), Some(app)) = (
            self.store.token_row(key).await?,
            self.apps.get(&(key.0.clone(), key.1.clone())),
        ) && let Some(url) = oauth::endpoint(
            &app.app.endpoints,
            |e| e.revoke_url.as_ref(),
            app.declaration.revoke_url.as_ref(),
        ) && let Ok(tokens) = self.open(&row)
        {
            let token = Secret::new(tokens.refresh.unwrap_or(tokens.access));
            if let Err(e) = oauth::revoke(&self.http, &app.app, &url, &token).await {
                tracing::warn!(tenant = %key.0, connector = %key.1, account = %key.2, "revoking the token: {e}");
            }
        }
        let deleted = self.store.delete_token(key).await?;
        if let Some(slot) = self.slots.get(key) {
            slot.update(None, 0, AccountState::Disconnected);
        }
        if deleted {
            self.changed(key, AccountState::Disconnected, "disconnected by an admin")
                .await?;
        }
        Ok(deleted)
    }
}
