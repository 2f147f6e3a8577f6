//! What a plugin may use outside its sandbox: the grants an admin gives each plugin
//! instance, and the secrets and credentials they name.
//!
//! Defined in the `centralino-runtime` crate (`centralino_runtime::capabilities`); re-exported here as part of
//! this crate's API.

pub use centralino_runtime::capabilities::{CREDENTIAL_PLACEHOLDER, Credential, Grants, Secret};

// The rest of the module, for the host's own use.
#[allow(unused_imports)]
pub(crate) use centralino_runtime::capabilities::*;
