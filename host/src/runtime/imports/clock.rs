//! `centralino:plugin/clock`: wall-clock time.

use crate::runtime::bindings::v0_1::clock::Host;
use crate::runtime::bindings::v0_1::types;
use crate::runtime::state::PluginState;

impl Host for PluginState {
    fn now_ms(&mut self) -> u64 {
        crate::clock::now_ms()
    }
}

// `types` declares no functions, but the linker still wants its (empty) host trait.
impl types::Host for PluginState {}
