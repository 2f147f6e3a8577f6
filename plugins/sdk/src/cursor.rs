//! Poll cursors: the host stores whatever string a connector returns and hands it back on
//! the next poll, so a connector may keep structured state there as JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{PluginError, Result};

/// The state in `cursor`, or `T::default()` on the first poll.
pub fn read<T: DeserializeOwned + Default>(cursor: Option<&str>) -> Result<T> {
    match cursor {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            PluginError::invalid_input(format!("cursor `{text}` was not written by this connector"))
        }),
    }
}

/// `state` as a cursor string.
pub fn write<T: Serialize>(state: &T) -> Result<String> {
    serde_json::to_string(state)
        .map_err(|e| PluginError::transient(format!("could not write the cursor: {e}")))
}
