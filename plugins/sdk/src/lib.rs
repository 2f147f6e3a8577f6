//! Guest-side helpers for centralino plugins.
//!
//! Every plugin calls [`plugin_metadata!`] once. It embeds a small JSON document in a
//! custom section named [`METADATA_SECTION`]; the host reads it *before* compiling or
//! instantiating the component, so it can name the plugin in every error and refuse a
//! contract version it does not serve.
//!
//! ```ignore
//! wit_bindgen::generate!({ path: "../../wit", world: "routing-policy" });
//! centralino_sdk::plugin_metadata!();
//! ```
#![no_std]

/// Name of the custom section that carries the plugin's metadata.
pub const METADATA_SECTION: &str = "centralino-plugin";

/// Version of the WIT contract (`centralino:plugin`) this SDK is written against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Embeds `{"name": …, "version": …, "contract": …}` in the component.
///
/// Name and version default to the crate's `Cargo.toml`; the contract version defaults to
/// [`CONTRACT_VERSION`]. Pass `contract = "x.y.z"` only for a plugin built against
/// another contract version.
#[macro_export]
macro_rules! plugin_metadata {
    () => {
        $crate::plugin_metadata!(contract = "0.1.0");
    };
    (contract = $contract:literal) => {
        const _: () = {
            const JSON: &str = concat!(
                "{\"name\":\"",
                env!("CARGO_PKG_NAME"),
                "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\",\"contract\":\"",
                $contract,
                "\"}"
            );
            const LEN: usize = JSON.len();
            #[used]
            #[unsafe(link_section = "centralino-plugin")]
            static METADATA: [u8; LEN] = {
                let bytes = JSON.as_bytes();
                let mut out = [0u8; LEN];
                let mut i = 0;
                while i < LEN {
                    out[i] = bytes[i];
                    i += 1;
                }
                out
            };
        };
    };
}
