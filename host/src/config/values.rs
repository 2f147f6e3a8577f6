//! Values with a syntax of their own: secret references, credentials, plugin settings,
//! operator accounts and ids.
//!
//! Secrets are never written in the config: a value that is not a reference is refused,
//! and the error never repeats it (it may be a pasted token). References are resolved
//! only when the host is built ([`SecretRef::resolve`]), so a config can be checked on a
//! machine without the secrets.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::capabilities::Secret;

/// What a secret value must look like, for error messages.
const SECRET_EXPECTED: &str = "a secret reference, `env:NAME` or `file:PATH` (secrets are never \
                               written in the config: put the value in an environment variable \
                               or a file and name it here)";

/// Where a secret is kept: an environment variable or a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretRef {
    /// `env:NAME`: the environment variable `NAME` of the host process.
    Env(String),
    /// `file:PATH`: the file's contents, trailing whitespace removed; a relative path is
    /// relative to the config file's folder.
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl SecretRef {
    /// Reads `env:NAME` or `file:PATH`. The error never contains `text`.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() {
                return Err("`env:` names no variable: write `env:NAME`".to_string());
            }
            // Not quoted: what follows `env:` may be the secret itself, pasted by mistake.
            if !is_variable_name(name) {
                return Err(
                    "`env:` must be followed by an environment variable NAME matching \
                     `[A-Za-z_][A-Za-z0-9_]*` (what follows it here is not one, and is not \
                     shown in case it is the secret itself)"
                        .to_string(),
                );
            }
            return Ok(SecretRef::Env(name.to_string()));
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err("`file:` names no file: write `file:PATH`".to_string());
            }
            return Ok(SecretRef::File(PathBuf::from(path)));
        }
        Err(format!("expected {SECRET_EXPECTED}"))
    }

    /// Reads the secret: the variable from `env`, or the file (relative to `base_dir`).
    /// The error names the variable or file, never the value.
    pub fn resolve(
        &self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, String> {
        match self {
            SecretRef::Env(name) => match env(name) {
                None => Err(format!("environment variable `{name}` is not set")),
                Some(value) if value.is_empty() => {
                    Err(format!("environment variable `{name}` is empty"))
                }
                Some(value) => Ok(Secret::new(value)),
            },
            SecretRef::File(path) => {
                let path = super::resolve_path(base_dir, path);
                let mut bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read secret file `{}`: {e}", path.display()))?;
                while bytes.last().is_some_and(u8::is_ascii_whitespace) {
                    bytes.pop();
                }
                if bytes.is_empty() {
                    return Err(format!("secret file `{}` is empty", path.display()));
                }
                Ok(Secret::new(bytes))
            }
        }
    }
}

/// Refuses any non-string without echoing it (a pasted numeric token is still a secret).
macro_rules! refuse_scalars {
    ($what:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(format!("expected {}, found a boolean", $what)))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("expected {}, found a number", $what)))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom(format!("expected {}, found a number", $what)))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom(format!("expected {}, found a number", $what)))
        }
    };
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl Visitor<'_> for RefVisitor {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SECRET_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretRef, E> {
                SecretRef::parse(text).map_err(E::custom)
            }
            refuse_scalars!(SECRET_EXPECTED);
        }
        deserializer.deserialize_any(RefVisitor)
    }
}

/// How an account's credential reaches the platform; the host attaches it to requests
/// and the plugin only ever sees its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialRef {
    /// `credential = "env:NAME"`: `Authorization: Bearer <token>` (X API v2).
    Bearer(SecretRef),
    /// `credential = { query = "access_token", token = "env:NAME" }`: `?access_token=<token>`
    /// (Graph API page tokens).
    Query {
        /// The query parameter.
        parameter: String,
        /// The token.
        token: SecretRef,
    },
    /// `credential = { path = "env:NAME" }`: the token as the URL path segment where the
    /// plugin writes `{credential}` (bot APIs such as `/bot<token>/…`).
    Path(SecretRef),
    /// `credential = "connected"`: a token the host obtains through the connect flow
    /// (`centralino accounts connect`) and keeps fresh; needs the connector's `oauth`
    /// section and `host.token_key` (see [`crate::accounts`]).
    Connected,
}

impl CredentialRef {
    /// The secret behind it; none for a host-held token.
    pub fn token(&self) -> Option<&SecretRef> {
        match self {
            CredentialRef::Bearer(token)
            | CredentialRef::Query { token, .. }
            | CredentialRef::Path(token) => Some(token),
            CredentialRef::Connected => None,
        }
    }
}

impl Serialize for CredentialRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CredentialRef::Bearer(token) => serializer.collect_str(&format!("bearer {token}")),
            CredentialRef::Query { parameter, token } => {
                serializer.collect_str(&format!("{token} as ?{parameter}="))
            }
            CredentialRef::Path(token) => {
                serializer.collect_str(&format!("{token} in the URL path"))
            }
            CredentialRef::Connected => serializer.collect_str("connected (held by the host)"),
        }
    }
}

const CREDENTIAL_EXPECTED: &str = "a bearer token reference (`env:NAME` or `file:PATH`), a \
                                   query-parameter credential `{ query = \"access_token\", \
                                   token = \"env:NAME\" }`, a path credential \
                                   `{ path = \"env:NAME\" }`, or `\"connected\"` for a token \
                                   the host obtains with `centralino accounts connect`";

impl<'de> Deserialize<'de> for CredentialRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CredentialVisitor;
        impl<'de> Visitor<'de> for CredentialVisitor {
            type Value = CredentialRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(CREDENTIAL_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CredentialRef, E> {
                if text == "connected" {
                    return Ok(CredentialRef::Connected);
                }
                SecretRef::parse(text)
                    .map(CredentialRef::Bearer)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CredentialRef, A::Error> {
                let mut parameter: Option<String> = None;
                let mut token: Option<SecretRef> = None;
                let mut path: Option<SecretRef> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "query" => parameter = Some(map.next_value()?),
                        "token" => token = Some(map.next_value()?),
                        "path" => path = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}`, expected `query` and `token`, or `path`"
                            )));
                        }
                    }
                }
                if let Some(path) = path {
                    if parameter.is_some() || token.is_some() {
                        return Err(de::Error::custom(
                            "a path credential is `{ path = \"env:NAME\" }` alone, without `query` or `token`",
                        ));
                    }
                    return Ok(CredentialRef::Path(path));
                }
                let parameter = parameter.ok_or_else(|| de::Error::missing_field("query"))?;
                if parameter.is_empty() {
                    return Err(de::Error::custom(
                        "`query` names no parameter: write e.g. `query = \"access_token\"`",
                    ));
                }
                let token = token.ok_or_else(|| de::Error::missing_field("token"))?;
                Ok(CredentialRef::Query { parameter, token })
            }
            refuse_scalars!(CREDENTIAL_EXPECTED);
        }
        deserializer.deserialize_any(CredentialVisitor)
    }
}

/// A plugin setting: plugins take strings, so numbers and booleans are written as such
/// for convenience (`level = 7`) and passed as their text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SettingValue(pub String);

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SettingVisitor;
        impl Visitor<'_> for SettingVisitor {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SettingValue, E> {
                Ok(SettingValue(text.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<SettingValue, E> {
                Ok(SettingValue(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SettingValue, E> {
                Ok(SettingValue(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SettingValue, E> {
                Ok(SettingValue(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<SettingValue, E> {
                Ok(SettingValue(value.to_string()))
            }
        }
        deserializer.deserialize_any(SettingVisitor)
    }
}

/// An id that may be written as a string or, being numeric on most platforms, as a bare
/// number (`id = 1443000001`).
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    struct IdVisitor;
    impl Visitor<'_> for IdVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a whole number")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            Ok(text.to_string())
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    deserializer.deserialize_any(IdVisitor)
}

/// One of an operator's personal accounts: a connector of the same tenant and one of its
/// accounts, by id or handle. Written `"twitter:TIM_Marco"` or
/// `{ channel = "twitter", id = "TIM_Marco" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorAccount {
    /// The connector's name.
    pub channel: String,
    /// The account's id or handle (a leading `@` is ignored).
    pub id: String,
}

const ACCOUNT_EXPECTED: &str = "an account `\"connector:account\"` (e.g. \
                                `\"twitter:TIM_Marco\"`) or a table `{ channel = \"twitter\", \
                                id = \"TIM_Marco\" }`";

impl<'de> Deserialize<'de> for OperatorAccount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AccountVisitor;
        impl<'de> Visitor<'de> for AccountVisitor {
            type Value = OperatorAccount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ACCOUNT_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<OperatorAccount, E> {
                match text.split_once(':') {
                    Some((channel, id)) if !channel.is_empty() && !id.is_empty() => {
                        Ok(OperatorAccount {
                            channel: channel.to_string(),
                            id: id.trim_start_matches('@').to_string(),
                        })
                    }
                    _ => Err(E::custom(format!(
                        "`{text}` is not an account: expected {ACCOUNT_EXPECTED}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OperatorAccount, A::Error> {
                let mut channel: Option<String> = None;
                let mut id: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "channel" => channel = Some(map.next_value()?),
                        "id" => id = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}`, expected `channel` or `id`"
                            )));
                        }
                    }
                }
                Ok(OperatorAccount {
                    channel: channel.ok_or_else(|| de::Error::missing_field("channel"))?,
                    id: id
                        .ok_or_else(|| de::Error::missing_field("id"))?
                        .trim_start_matches('@')
                        .to_string(),
                })
            }
        }
        deserializer.deserialize_any(AccountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_inline_values_are_refused_without_being_repeated() {
        assert_eq!(
            SecretRef::parse("env:TWITTER_TOKEN"),
            Ok(SecretRef::Env("TWITTER_TOKEN".into()))
        );
        assert_eq!(
            SecretRef::parse("file:secrets/x"),
            Ok(SecretRef::File("secrets/x".into()))
        );
        let err = SecretRef::parse("AAAAsupersecret").unwrap_err();
        assert!(!err.contains("supersecret"), "{err}");
        assert!(SecretRef::parse("env:1X").is_err());
        // A token pasted after `env:` is not repeated either.
        let err = SecretRef::parse("env:sk-live/AAAA+supersecret==").unwrap_err();
        assert!(!err.contains("supersecret"), "{err}");
        assert!(err.contains("environment variable NAME"), "{err}");
        assert!(SecretRef::parse("env:").is_err());
    }

    #[test]
    fn env_references_resolve_through_the_given_environment() {
        let env = |name: &str| (name == "SET").then(|| "value".to_string());
        let dir = Path::new(".");
        assert_eq!(
            SecretRef::Env("SET".into()).resolve(dir, &env),
            Ok(Secret::new("value"))
        );
        assert_eq!(
            SecretRef::Env("UNSET".into()).resolve(dir, &env),
            Err("environment variable `UNSET` is not set".to_string())
        );
    }
}
