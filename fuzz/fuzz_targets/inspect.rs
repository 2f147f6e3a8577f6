//! Arbitrary bytes as a plugin file: the host inspects every component (world, contract
//! version, metadata) before compiling it, so inspection must refuse anything with an
//! error, never panic.
#![no_main]

use std::path::Path;

use centralino::runtime::{World, inspect};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.wasm");
    if let Ok(info) = inspect(path, bytes) {
        let _ = info.ensure_loadable(path, Some(World::Channel));
        let _ = info.ensure_loadable(path, Some(World::RoutingPolicy));
        let _ = info.ensure_loadable(path, None);
    }
});
