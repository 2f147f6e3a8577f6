//! A tenant's console users: a username, the one tenant they see, and a password kept
//! only as an Argon2id hash (a PHC string with its own random salt). They are added with
//! `centralino console add-user` ([`add_console_user`]); the admin token sees every tenant.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::Error;
use crate::store::{Store, StoredConsoleUser};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Adds a console user of `tenant` (or gives an existing username a new tenant and
/// password). The password is hashed with Argon2id; the store never sees it. Refuses a
/// username that is empty, longer than 64 characters or has anything but letters, digits,
/// `.`, `-`, `_` and `@`, and a password shorter than [`MIN_PASSWORD_CHARS`].
pub async fn add_console_user(
    store: &Store,
    tenant: &str,
    username: &str,
    password: &str,
) -> Result<(), Error> {
    let valid_name = !username.is_empty()
        && username.chars().count() <= 64
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if !valid_name {
        return Err(Error::Refused(format!(
            "username `{username}`: expected 1 to 64 letters, digits, `.`, `-`, `_` or `@`"
        )));
    }
    if tenant.trim().is_empty() {
        return Err(Error::Refused("a console user needs a tenant".to_string()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::Refused(format!(
            "the password of `{username}` is shorter than {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let password_hash = hash(password)?;
    store
        .put_console_user(&StoredConsoleUser {
            username: username.to_string(),
            tenant: tenant.to_string(),
            password_hash,
        })
        .await?;
    tracing::info!(tenant, username, "console user added");
    Ok(())
}

fn hash(password: &str) -> Result<String, Error> {
    let random = uuid::Uuid::new_v4();
    let salt = SaltString::encode_b64(random.as_bytes())
        .map_err(|e| Error::Refused(format!("making a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Refused(format!("hashing the password: {e}")))
}

/// Whether `password` is `user`'s; a stored hash that cannot be read never matches.
pub(crate) fn verify(user: &StoredConsoleUser, password: &str) -> bool {
    match PasswordHash::new(&user.password_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(
                username = user.username,
                "a console user's stored hash is unreadable: {e}"
            );
            false
        }
    }
}

/// Checks a username and password against the store, spending an Argon2 verification
/// even for an unknown username, so the time taken does not say which usernames exist.
pub(crate) async fn check(
    store: &Store,
    username: &str,
    password: &str,
) -> Option<StoredConsoleUser> {
    let found = match store.console_user(username).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("the console could not read its users: {e:#}");
            None
        }
    };
    let password = password.to_string();
    let verdict = tokio::task::spawn_blocking(move || match found {
        Some(user) => verify(&user, &password).then_some(user),
        None => {
            let _ = hash(&password);
            None
        }
    })
    .await;
    verdict.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_is_stored_hashed_and_only_it_logs_in() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        add_console_user(&store, "tim", "ops.tim", "correct horse battery")
            .await
            .unwrap();
        let stored = store.console_user("ops.tim").await.unwrap().unwrap();
        assert!(
            stored.password_hash.starts_with("$argon2id$"),
            "{}",
            stored.password_hash
        );
        assert!(!stored.password_hash.contains("correct horse"));
        assert_eq!(
            check(&store, "ops.tim", "correct horse battery")
                .await
                .unwrap()
                .tenant,
            "tim"
        );
        assert!(
            check(&store, "ops.tim", "correct horse batterY")
                .await
                .is_none()
        );
        assert!(
            check(&store, "nobody", "correct horse battery")
                .await
                .is_none()
        );
        assert!(
            add_console_user(&store, "tim", "ops tim", "correct horse battery")
                .await
                .is_err()
        );
        assert!(
            add_console_user(&store, "tim", "short", "too short")
                .await
                .is_err()
        );
    }
}
