//! Keeping tokens alive: refresh ahead of expiry and after a refusal, claimed so that one
//! host spends a single-use refresh token; states as the results say.

use super::*;

impl AccountBook {
    /// Refreshes what is due and deals with refused tokens. Run by the `accounts` task.
    pub(crate) async fn tick(&self) -> anyhow::Result<()> {
        self.sync().await?;
        // Tokens the platform refused since the last look (polls and sends alike).
        for (key, slot) in &self.slots {
            if let Some(generation) = slot.take_refused() {
                self.after_refusal(key, generation).await?;
            }
        }
        let now = self.now();
        for row in self.store.token_rows().await? {
            let key = row.key();
            let Some(app) = self.apps.get(&(key.0.clone(), key.1.clone())) else {
                continue;
            };
            let state = AccountState::parse(&row.state);
            if !matches!(state, AccountState::Connected | AccountState::Expiring) {
                continue;
            }
            let Some(expires_at) = row.expires_at.and_then(|t| u64::try_from(t).ok()) else {
                continue;
            };
            if app.declaration.refresh {
                if now >= refresh_at(expires_at)
                    && self.refresh(&key, row.generation).await? == Recovery::Unreachable
                    && state == AccountState::Connected
                {
                    // The platform could not be reached: say so while the token lasts.
                    self.mark(
                        &key,
                        AccountState::Expiring,
                        "the token expires soon and refreshing it keeps failing",
                    )
                    .await?;
                }
            } else if now.saturating_add(EXPIRING_WARN_MS) >= expires_at
                && state == AccountState::Connected
            {
                self.mark(
                    &key,
                    AccountState::Expiring,
                    "the token expires within a day and the platform issues no refresh token",
                )
                .await?;
            }
        }
        Ok(())
    }

    /// After the platform refused the token of `key` at `generation`: a newer token is
    /// used if there is one, else the token is refreshed, else the account needs an admin.
    pub(crate) async fn after_refusal(
        &self,
        key: &AccountKey,
        generation: i64,
    ) -> anyhow::Result<Recovery> {
        let Some(row) = self.store.token_row(key).await? else {
            return Ok(Recovery::NeedsReauth);
        };
        if AccountState::parse(&row.state) == AccountState::NeedsReauth {
            return Ok(Recovery::NeedsReauth);
        }
        if row.generation > generation {
            self.sync().await?;
            return Ok(Recovery::Recovered);
        }
        let refreshable = self
            .apps
            .get(&(key.0.clone(), key.1.clone()))
            .is_some_and(|a| a.declaration.refresh);
        if !refreshable {
            self.mark(
                key,
                AccountState::NeedsReauth,
                "the platform refused the token",
            )
            .await?;
            return Ok(Recovery::NeedsReauth);
        }
        self.refresh(key, row.generation).await
    }

    /// Refreshes `key`'s token if this host wins the claim for `generation`.
    pub(super) async fn refresh(
        &self,
        key: &AccountKey,
        generation: i64,
    ) -> anyhow::Result<Recovery> {
        let _one = self.refreshing.lock().await;
        let Some(app) = self.apps.get(&(key.0.clone(), key.1.clone())) else {
            return Ok(Recovery::NeedsReauth);
        };
        let now = self.now();
        let claimed = self
            .store
            .claim_refresh(
                key,
                generation,
                &self.host_id,
                ms(now),
                ms(now.saturating_add(REFRESH_CLAIM_MS)),
            )
            .await?;
        if !claimed {
            // Another host refreshes it (or did): follow the store.
            self.sync().await?;
            let row = self.store.token_row(key).await?;
            return Ok(match row {
                Some(row) if row.generation > generation => Recovery::Recovered,
                Some(row) if AccountState::parse(&row.state) == AccountState::NeedsReauth => {
                    Recovery::NeedsReauth
                }
                _ => Recovery::Later,
            });
        }
        let Some(row) = self.store.token_row(key).await? else {
            return Ok(Recovery::NeedsReauth);
        };
        let tokens = match self.open(&row) {
            Ok(tokens) => tokens,
            Err(e) => {
                self.mark(key, AccountState::NeedsReauth, &e).await?;
                return Ok(Recovery::NeedsReauth);
            }
        };
        let Some(refresh_token) = tokens.refresh.map(Secret::new) else {
            self.mark(
                key,
                AccountState::NeedsReauth,
                "the token expired and there is no refresh token",
            )
            .await?;
            return Ok(Recovery::NeedsReauth);
        };
        match oauth::refresh(&self.http, &app.app, &app.declaration, &refresh_token).await {
            Ok(grant) => {
                // The new pair is stored before the new access token is used: a single-use
                // refresh token, once spent, is never needed again.
                let refresh = grant.refresh.or(if app.declaration.rotating_refresh {
                    None
                } else {
                    Some(refresh_token)
                });
                let tokens = Tokens {
                    access: String::from_utf8_lossy(grant.access.expose()).into_owned(),
                    refresh: refresh.map(|r| String::from_utf8_lossy(r.expose()).into_owned()),
                };
                let (sealed, key_id) = self.seal(key, &tokens)?;
                let next = TokenRow {
                    sealed,
                    key_id,
                    expires_at: grant
                        .expires_in
                        .map(|s| ms(now.saturating_add(s.saturating_mul(1000)))),
                    scopes: grant.scopes.unwrap_or(row.scopes.clone()),
                    state: AccountState::Connected.name().to_string(),
                    ..row.clone()
                };
                if !self.store.finish_refresh(&next, &self.host_id).await? {
                    tracing::error!(tenant = %key.0, connector = %key.1, account = %key.2, "a refresh finished after its claim lapsed; the store keeps the other host's tokens");
                    return Ok(Recovery::Later);
                }
                self.counters.refreshed.fetch_add(1, Ordering::Relaxed);
                if let Some(slot) = self.slots.get(key) {
                    slot.update(
                        Some(grant.access),
                        row.generation + 1,
                        AccountState::Connected,
                    );
                }
                tracing::info!(tenant = %key.0, connector = %key.1, account = %key.2, "token refreshed");
                if AccountState::parse(&row.state) != AccountState::Connected {
                    self.changed(key, AccountState::Connected, "token refreshed")
                        .await?;
                }
                Ok(Recovery::Recovered)
            }
            Err(oauth::Failure::Refused(why)) => {
                self.counters.refresh_failed.fetch_add(1, Ordering::Relaxed);
                self.mark(
                    key,
                    AccountState::NeedsReauth,
                    &format!("refreshing the token was refused: {why}"),
                )
                .await?;
                Ok(Recovery::NeedsReauth)
            }
            Err(oauth::Failure::Transient(why)) => {
                self.counters.refresh_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tenant = %key.0, connector = %key.1, account = %key.2, "refreshing the token failed, will retry: {why}");
                Ok(Recovery::Unreachable)
            }
        }
    }
}
