//! The WebAssembly runtime: one shared engine, components checked before they are
//! compiled, compiled artifacts cached on disk, and instances that are cheap to replace.
//!
//! Defined in the `centralino-runtime` crate (`centralino_runtime`); re-exported here as part of
//! this crate's API.

pub use centralino_runtime::{
    CONTRACT_PACKAGE, CacheOutcome, CallNotes, ChannelInstance, ChannelPlugin, Error, Inspection,
    METADATA_SECTION, Metadata, POOLED_MEMORY_BYTES, PluginLimits, PluginSignature, PluginTrust,
    RouterInstance, RouterPlugin, Runtime, RuntimeBuilder, SIGNATURE_SECTION, SUPPORTED_CONTRACTS,
    SigningKey, World, generate_key, inspect, inspect_file, serves, sign,
};

// The rest of the module, for the host's own use.
#[allow(unused_imports)]
pub(crate) use centralino_runtime::*;
