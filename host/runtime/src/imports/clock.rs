//! `centralino:plugin/clock`: wall-clock time.

use crate::bindings::latest::clock::Host;
use crate::bindings::latest::types;
use crate::state::PluginState;

impl Host for PluginState {
    fn now_ms(&mut self) -> u64 {
        crate::calendar::now_ms()
    }
}

// `types` declares no functions, but the linker still wants its (empty) host trait.
impl types::Host for PluginState {}
