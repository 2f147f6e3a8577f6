//! The contract's generated bindings, one module per world.
//!
//! Most plugins never name these modules: the crate root re-exports the types, and
//! [`export_connector!`](crate::export_connector) / [`export_router!`](crate::export_router)
//! drive the export macros. They are public so a plugin can reach anything the SDK does not
//! wrap (the raw imports, for example).

#![allow(missing_docs)]

/// World `channel`: imports `log`, `clock`, `http`, `signing`; exports `connector`.
pub mod channel {
    wit_bindgen::generate!({
        path: "wit",
        world: "channel",
        pub_export_macro: true,
        default_bindings_module: "centralino_sdk::bindings::channel",
        // So plugin authors can compare what they build in their own tests.
        additional_derives: [PartialEq, Eq],
    });
}

/// World `routing-policy`: imports `log`, `clock`, `current-conversation`; exports
/// `router`. Shares the channel world's types, so one [`PluginError`](crate::PluginError)
/// serves both. Its `route` function is not in the generated `Guest` trait nor exported by
/// its `export!`: the SDK exports it by hand (reading the candidates in place), so a
/// routing policy is exported with [`export_router!`](crate::export_router).
pub mod routing_policy {
    wit_bindgen::generate!({
        path: "wit",
        world: "routing-policy",
        pub_export_macro: true,
        // Exported by hand (`route_abi`): the policy reads the candidates where the host
        // wrote them.
        skip: ["route"],
        default_bindings_module: "centralino_sdk::bindings::routing_policy",
        additional_derives: [PartialEq, Eq],
        with: {
            "centralino:plugin/types@0.3.0": crate::bindings::channel::centralino::plugin::types,
            "centralino:plugin/log@0.3.0": crate::bindings::channel::centralino::plugin::log,
            "centralino:plugin/clock@0.3.0": crate::bindings::channel::centralino::plugin::clock,
        },
    });
}
